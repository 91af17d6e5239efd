"""A real gateway as an external component (XEP-0114): Debian's biboumi
(XMPP <-> IRC) connected to xmppd, with Debian's ngircd as the IRC server,
both started by the test on free ports with configs of their own (never the
system services). An XMPP user (the raw client) configures biboumi's IRC
server with an ad-hoc command (XEP-0050), joins the IRC channel #test as
the MUC room #test%localhost@irc.localhost (biboumi's CHANNEL%SERVER@GATEWAY
syntax, `localhost` being the IRC server's name in biboumi), and talks with
an IRC user speaking raw IRC over a socket: channel messages and private
messages both ways; when the XMPP session ends, xmppd's unavailable presence
for the room (RFC 6121 §4.6.3, roster module) takes the user off IRC.

Both sides of the conversation are saved in the server's directory as
biboumi-irc.txt, and as transcripts/biboumi-irc.txt (SQLite run) when
XMPPD_TEST_WRITE_TRANSCRIPTS is set.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, List, Optional, Tuple
from xml.sax.saxutils import escape, quoteattr

import pytest

from harness import free_port
from rawxmpp import NS_CLIENT, RawXmpp, XmppProtocolError, local_name, namespace, q, to_string

GATEWAY = "irc.localhost"
SECRET = "biboumi-component-secret"
IRC_SERVER = "localhost"  # the IRC server's name in biboumi's JIDs
ROOM = "#test%%%s@%s" % (IRC_SERVER, GATEWAY)
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_DATA = "jabber:x:data"
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
TRANSCRIPT = Path(__file__).resolve().parent / "transcripts" / "biboumi-irc.txt"

SERVER_CONFIG = {
    # roster: directed presence is undone at logout (RFC 6121 §4.6.3).
    "modules": {"roster": {}, "offline": {}},
    "components": {GATEWAY: {"secret": SECRET}},
}


def program(name: str) -> Optional[str]:
    return shutil.which(name) or next(
        (p for p in ("/usr/sbin/" + name, "/usr/bin/" + name) if os.access(p, os.X_OK)), None)


# -------------------------------------------------------------- transcript


def wire(e: ET.Element, parent_ns: str = NS_CLIENT) -> str:
    """An element as it looks on the client's stream: a namespace is declared
    only where it differs from its parent's, jabber:client at the top."""
    ns = namespace(e.tag)
    name = local_name(e.tag)
    text = "<" + name
    if ns != parent_ns:
        text += " xmlns=" + quoteattr(ns)
    for k, v in e.attrib.items():
        if k.startswith("{http://www.w3.org/XML/1998/namespace}"):
            k = "xml:" + local_name(k)
        text += " %s=%s" % (k, quoteattr(v))
    inner = escape(e.text or "") + "".join(wire(c, ns) + escape(c.tail or "") for c in e)
    return text + (">%s</%s>" % (inner, name) if inner else "/>")


class Transcript:
    """Both sides, in the order the test read them: what the XMPP client and
    the IRC client sent (as sent) and received (each line or top-level
    element), with the time each was read off its socket."""

    def __init__(self) -> None:
        self.entries: List[Tuple[float, str]] = []
        self.start = time.monotonic()

    def add(self, stamp: float, who: str, arrow: str, text: str) -> None:
        self.entries.append((stamp, "%-4s %s %s" % (who, arrow, text)))

    def note(self, text: str) -> None:
        now = time.monotonic()
        self.entries.append((now, "\n# [%.2f s] %s" % (now - self.start, text)))

    def text(self) -> str:
        lines = [line for _, line in sorted(self.entries, key=lambda e: e[0])]
        return "\n".join(lines).lstrip("\n") + "\n"


class XmppSide(RawXmpp):
    """The raw client, with every element it sends and reads in a transcript."""

    def __init__(self, port: int, cafile: str, transcript: Transcript) -> None:
        super().__init__(port, cafile=cafile)
        self.transcript: Optional[Transcript] = None
        self._pending_transcript = transcript

    def record(self) -> None:
        """From now on (after the login, which is not interesting here)."""
        self.transcript = self._pending_transcript

    def send(self, data) -> None:
        if self.transcript is not None:
            self.transcript.add(time.monotonic(), "xmpp", "->",
                                data.decode() if isinstance(data, bytes) else data)
        super().send(data)

    def _feed(self, data: bytes) -> None:
        before = len(self.received)
        ended = self.stream_ended
        super()._feed(data)
        if self.transcript is not None:
            now = time.monotonic()
            for e in self.received[before:]:
                self.transcript.add(now, "xmpp", "<-", wire(e))
            if self.stream_ended and not ended:
                self.transcript.add(now, "xmpp", "<-", "</stream:stream>")


class IrcClient:
    """Raw IRC (RFC 2812) over a socket: lines out, lines in, PINGs answered."""

    def __init__(self, port: int, nick: str, transcript: Transcript) -> None:
        self.nick = nick
        self.transcript = transcript
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.lines: List[str] = []
        self._unread: List[str] = []

    def send(self, line: str) -> None:
        self.transcript.add(time.monotonic(), "irc", "->", line)
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        if not data:
            raise AssertionError("the IRC server closed the connection; last lines: %s" % self.lines[-10:])
        self.buf += data
        now = time.monotonic()
        while b"\r\n" in self.buf:
            raw, self.buf = self.buf.split(b"\r\n", 1)
            line = raw.decode("utf-8", errors="replace")
            self.lines.append(line)
            self.transcript.add(now, "irc", "<-", line)
            if line.startswith("PING "):
                self.send("PONG " + line[5:])
            else:
                self._unread.append(line)
        return True

    def wait_for(self, match: Callable[[str], bool], timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            while self._unread:
                line = self._unread.pop(0)
                if match(line):
                    return line
            if not self._fill(deadline) and time.monotonic() >= deadline:
                raise AssertionError("no matching IRC line within %ss; last lines: %s"
                                     % (timeout, self.lines[-15:]))

    def register(self, realname: str) -> None:
        self.send("NICK " + self.nick)
        self.send("USER %s 0 * :%s" % (self.nick, realname))
        self.wait_for(lambda l: irc_command(l) == "001")
        # End of the MOTD (or no MOTD): registration is over.
        self.wait_for(lambda l: irc_command(l) in ("376", "422"))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def irc_command(line: str) -> str:
    parts = line.split(" ")
    return parts[1] if line.startswith(":") and len(parts) > 1 else parts[0]


def irc_from(line: str) -> str:
    """The nick of a line's prefix (':nick!user@host CMD ...')."""
    return line[1:].split(" ", 1)[0].split("!", 1)[0] if line.startswith(":") else ""


# ------------------------------------------------------------------ daemons


class IrcGateway:
    """ngircd and biboumi, each with its own config in a temporary directory."""

    def __init__(self, server, workdir: Path) -> None:
        self.dir = workdir
        self.dir.mkdir()
        self.irc_port = free_port()
        while self.irc_port in (server.component_port, server.c2s_port, server.tls_port):
            self.irc_port = free_port()
        self.procs: List[Tuple[str, subprocess.Popen]] = []
        self._logs = []
        includes = self.dir / "ngircd.conf.d"
        includes.mkdir()
        self.ngircd_conf = self.dir / "ngircd.conf"
        self.ngircd_conf.write_text(
            "[Global]\n"
            "Name = ngircd.test\n"
            "Info = ngircd for xmppd's integration tests\n"
            "AdminInfo1 = xmppd tests\nAdminInfo2 = loopback only\nAdminEMail = nobody@localhost\n"
            "Listen = 127.0.0.1\n"
            "Ports = %d\n"
            "MotdPhrase = test network\n"
            "[Limits]\n"
            "PingTimeout = 120\n"
            # no flood penalties: the test sends in bursts and waits for answers
            "MaxPenaltyTime = 0\n"
            "[Options]\n"
            "DNS = no\nIdent = no\nPAM = no\n"
            # not /etc/ngircd/ngircd.conf.d: nothing of the system's config
            "IncludeDir = %s\n" % (self.irc_port, includes))
        self.biboumi_conf = self.dir / "biboumi.cfg"
        self.biboumi_conf.write_text(
            "hostname=%s\n"
            "password=%s\n"
            "xmpp_server_ip=127.0.0.1\n"
            "port=%d\n"
            "db_name=%s\n"
            # no identd on port 113 (biboumi would take it, running as root)
            "identd_port=0\n"
            "log_level=0\n"
            "realname_customization=true\n"
            % (GATEWAY, SECRET, server.component_port, self.dir / "biboumi.sqlite"))

    def _spawn(self, name: str, argv: List[str]) -> subprocess.Popen:
        log = open(self.dir / ("%s.log" % name), "wb")
        self._logs.append(log)
        proc = subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
        self.procs.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        try:
            return (self.dir / ("%s.log" % name)).read_text(errors="replace")
        except OSError:
            return ""

    def start(self, server) -> None:
        ngircd = self._spawn("ngircd", [program("ngircd"), "--nodaemon", "--config", str(self.ngircd_conf)])
        deadline = time.monotonic() + 10
        while "ready" not in self.log("ngircd"):
            assert ngircd.poll() is None, "ngircd exited (%s):\n%s" % (ngircd.returncode, self.log("ngircd"))
            assert time.monotonic() < deadline, "ngircd not ready:\n" + self.log("ngircd")
            time.sleep(0.05)
        biboumi = self._spawn("biboumi", [program("biboumi"), str(self.biboumi_conf)])
        deadline = time.monotonic() + 10
        while True:
            listed = server.ctl("list_components").stdout
            if any(line.startswith(GATEWAY + " connected") for line in listed.splitlines()):
                break
            assert biboumi.poll() is None, "biboumi exited (%s):\n%s" % (biboumi.returncode, self.log("biboumi"))
            assert time.monotonic() < deadline, "biboumi did not connect:\n%s\n%s" % (
                listed, self.log("biboumi")[-3000:])
            time.sleep(0.05)

    def stop(self) -> None:
        # biboumi first: it says goodbye to the IRC server and waits 2 s at most.
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for log in self._logs:
            log.close()


# ------------------------------------------------------------------- tests


@pytest.fixture
def irc_gateway(server):
    """ngircd and biboumi for one test, their configs and logs in the
    server's directory (kept with XMPPD_TEST_KEEP or when the server fails)."""
    missing = [p for p in ("biboumi", "ngircd") if not program(p)]
    if missing:
        pytest.skip("%s not installed (Debian packages; scripts/test installs them)" % " and ".join(missing))
    gw = IrcGateway(server, server.dir / "irc")
    try:
        gw.start(server)
        yield gw
    finally:
        gw.stop()


def muc_status_codes(presence: ET.Element) -> set:
    return {s.get("code") for s in presence.iter(q(NS_MUC_USER, "status"))}


def test_biboumi_bridges_an_xmpp_user_and_an_irc_user(server, irc_gateway):
    alice_jid, alice_pw = server.new_user("alice")
    t = Transcript()
    alice = XmppSide(server.c2s_port, server.cafile, t)
    bob: Optional[IrcClient] = None
    try:
        alice.connect()
        alice.login(alice_jid.split("@")[0], alice_pw, "desk")
        alice.become_available()
        alice.record()
        nick = alice_jid.split("@")[0]
        room_self = "%s/%s" % (ROOM, nick)

        t.note("%s is logged in to xmppd; biboumi is connected to xmppd as the component %s"
               % (alice.jid, GATEWAY))
        info = alice.iq("get", GATEWAY, "<query xmlns='%s'/>" % NS_DISCO_INFO)
        assert info.get("type") == "result", to_string(info)
        identity = info.find("%s/%s" % (q(NS_DISCO_INFO, "query"), q(NS_DISCO_INFO, "identity")))
        assert identity is not None and (identity.get("category"), identity.get("type")) == ("conference", "irc")
        features = {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
        assert {NS_MUC, NS_COMMANDS} <= features, features

        t.note("alice points biboumi's IRC server '%s' at the test's ngircd (127.0.0.1, port %d, "
               "no TLS, no throttling) with the ad-hoc command 'configure' (XEP-0050)" % (IRC_SERVER, irc_gateway.irc_port))
        server_jid = "%s@%s" % (IRC_SERVER, GATEWAY)
        form = alice.iq("set", server_jid, "<command xmlns='%s' node='configure' action='execute'/>" % NS_COMMANDS)
        command = form.find(q(NS_COMMANDS, "command"))
        assert form.get("type") == "result" and command is not None, to_string(form)
        assert command.get("status") == "executing", to_string(form)
        fields = {f.get("var") for f in command.iter(q(NS_DATA, "field"))}
        assert {"address", "ports", "tls_ports"} <= fields, fields
        done = alice.iq("set", server_jid,
                        "<command xmlns='%s' node='configure' sessionid=%s action='complete'>"
                        "<x xmlns='%s' type='submit'>"
                        "<field var='address'><value>127.0.0.1</value></field>"
                        "<field var='ports'><value>%d</value></field>"
                        "<field var='tls_ports'/>"
                        "<field var='throttle_limit'><value>-1</value></field>"
                        "</x></command>"
                        % (NS_COMMANDS, quoteattr(command.get("sessionid")), NS_DATA, irc_gateway.irc_port))
        finished = done.find(q(NS_COMMANDS, "command"))
        assert done.get("type") == "result" and finished is not None, to_string(done)
        assert finished.get("status") == "completed", to_string(done)

        t.note("bob, a plain IRC client, registers with ngircd and joins #test")
        bob = IrcClient(irc_gateway.irc_port, "bob", t)
        bob.register("Bob on IRC")
        bob.send("JOIN #test")
        bob.wait_for(lambda l: irc_command(l) == "366")  # end of NAMES: in the channel

        t.note("alice joins the room %s as '%s' (XEP-0045 §7.2): biboumi connects to ngircd for her "
               "and joins #test" % (ROOM, nick))
        alice.send("<presence to=%s><x xmlns='%s'/></presence>" % (quoteattr(room_self), NS_MUC))
        self_presence = alice.wait_for(
            lambda e: e.tag == q(NS_CLIENT, "presence") and e.get("from") == room_self, timeout=15)
        assert self_presence.get("type") is None, to_string(self_presence)
        assert "110" in muc_status_codes(self_presence), to_string(self_presence)
        # bob (the channel's operator) was listed before her own presence.
        occupants = [e for e in alice.received if e.tag == q(NS_CLIENT, "presence")
                     and e.get("from") == ROOM + "/bob"]
        assert occupants, "no presence of the IRC user bob in the room"
        item = occupants[0].find("%s/%s" % (q(NS_MUC_USER, "x"), q(NS_MUC_USER, "item")))
        assert item is not None and item.get("role") == "moderator", to_string(occupants[0])
        joined = bob.wait_for(lambda l: irc_command(l) == "JOIN" and irc_from(l) == nick)
        assert joined.endswith("#test"), joined
        alice.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and e.get("type") == "groupchat"
                       and e.find(q(NS_CLIENT, "subject")) is not None)

        t.note("XMPP -> IRC: alice writes to the room")
        alice.send("<message to=%s type='groupchat' id='g1'><body>hello from xmpp, é ✓</body></message>"
                   % quoteattr(ROOM))
        line = bob.wait_for(lambda l: irc_command(l) == "PRIVMSG")
        assert irc_from(line) == nick and line.split(" ", 2)[2] == "#test :hello from xmpp, é ✓", line
        echo = alice.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and e.get("id") == "g1")
        assert echo.get("from") == room_self and echo.get("type") == "groupchat", to_string(echo)

        t.note("IRC -> XMPP: bob writes to the channel")
        bob.send("PRIVMSG #test :hello from irc, ü ✓")
        msg = alice.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and e.get("from") == ROOM + "/bob")
        assert msg.get("type") == "groupchat" and msg.get("to") == alice.jid, to_string(msg)
        assert msg.findtext(q(NS_CLIENT, "body")) == "hello from irc, ü ✓", to_string(msg)

        t.note("XMPP -> IRC, private: alice writes to bob%%%s@%s" % (IRC_SERVER, GATEWAY))
        alice.send("<message to='bob%%%s@%s' type='chat' id='p1'><body>psst, bob</body></message>"
                   % (IRC_SERVER, GATEWAY))
        line = bob.wait_for(lambda l: irc_command(l) == "PRIVMSG")
        assert irc_from(line) == nick and line.split(" ", 2)[2] == "bob :psst, bob", line

        t.note("IRC -> XMPP, private: bob answers alice's nick")
        bob.send("PRIVMSG %s :psst, alice" % nick)
        msg = alice.wait_for(lambda e: e.tag == q(NS_CLIENT, "message")
                             and e.get("from") == "bob%%%s@%s" % (IRC_SERVER, GATEWAY))
        assert msg.get("type") == "chat" and msg.get("to") == alice.jid, to_string(msg)
        assert msg.findtext(q(NS_CLIENT, "body")) == "psst, alice", to_string(msg)

        t.note("alice closes her stream without leaving the room: xmppd sends the room her "
               "unavailable presence (RFC 6121 §4.6.3), and biboumi takes her off IRC")
        alice.end_stream()
        while alice.recv(5) is not None:
            pass
        assert alice.stream_ended, "xmppd did not answer </stream:stream> with its own"
        bob.wait_for(lambda l: irc_from(l) == nick and irc_command(l) in ("PART", "QUIT"))
        t.note("done")
    except (AssertionError, XmppProtocolError):
        print("---- transcript so far ----\n" + t.text())
        print("---- biboumi log (tail) ----\n" + irc_gateway.log("biboumi")[-6000:])
        print("---- ngircd log ----\n" + irc_gateway.log("ngircd")[-3000:])
        raise
    finally:
        alice.close()
        if bob is not None:
            bob.close()
        text = (
            "An XMPP user of xmppd and an IRC user of ngircd talk through biboumi, an XMPP <-> IRC\n"
            "gateway connected to xmppd as an external component (XEP-0114), from\n"
            "tests/integration/test_biboumi_gateway.py. 'xmpp' lines are alice's c2s stream ('->'\n"
            "sent, '<-' received, one top-level element a line); 'irc' lines are bob's raw IRC\n"
            "connection. Lines are in the order the test read them off the two sockets.\n\n"
            + t.text())
        (server.dir / "biboumi-irc.txt").write_text(text)
        if os.environ.get("XMPPD_TEST_WRITE_TRANSCRIPTS") and server.backend == "sqlite":
            TRANSCRIPT.parent.mkdir(exist_ok=True)
            TRANSCRIPT.write_text(text)
