"""An external component (XEP-0114) written with another project's library:
xmpp.js's @xmpp/component (Node.js), in components/echo_component.mjs,
started by the test and plugged into xmppd. c2s users (the raw client)
talk to it: chat echoed back, disco#info and a custom iq answered, an
unknown iq refused by the component; the component asks a user and the
server with iqs of its own, writes to an offline user who gets the message
at the next login, and gets the bounce of a message to nobody.

@xmpp/component is installed once per run by `npm ci` from
components/package-lock.json into components/node_modules (gitignored);
npm's own cache (~/.npm) keeps later installs off the network. scripts/test
installs node and npm (Debian's nodejs + npm when no npm is on the PATH).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import pytest

from rawxmpp import NS_CLIENT, q, stanza_error, to_string

COMPONENTS_DIR = Path(__file__).resolve().parent / "components"
DOMAIN = "js.localhost"
SECRET = "js-component-secret"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_ECHO = "urn:xmppd:test:echo"
NS_VERSION = "jabber:iq:version"
NS_DELAY = "urn:xmpp:delay"

SERVER_CONFIG = {
    "modules": {"offline": {}},
    "components": {DOMAIN: {"secret": SECRET}},
}


# ------------------------------------------------------------ npm install


def _lock_digest() -> str:
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        h.update((COMPONENTS_DIR / name).read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def xmppjs() -> Path:
    """components/node_modules with the locked @xmpp/component, installed
    by `npm ci` unless the last install was from the same package files.
    Skips (with the reason) when node or npm is missing or npm fails."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm not found: scripts/test installs them (Debian's nodejs and npm)")
    modules = COMPONENTS_DIR / "node_modules"
    stamp = modules / ".xmppd-installed"
    digest = _lock_digest()
    if not (stamp.exists() and stamp.read_text().strip() == digest):
        r = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
            cwd=COMPONENTS_DIR, capture_output=True, text=True, timeout=300,
            stdin=subprocess.DEVNULL,
        )
        if r.returncode != 0:
            pytest.skip("npm ci could not install @xmpp/component (%d): %s"
                        % (r.returncode, (r.stderr or r.stdout).strip()[-800:]))
        stamp.write_text(digest + "\n")
    return modules


# -------------------------------------------------- the component process


class NodeComponent:
    """echo_component.mjs under node: commands as JSON lines on its stdin,
    events as JSON lines from its stdout (read by a thread into a queue)."""

    def __init__(self, server, workdir: Path) -> None:
        env = dict(os.environ,
                   XMPP_SERVICE="xmpp://127.0.0.1:%d" % server.component_port,
                   XMPP_DOMAIN=DOMAIN, XMPP_SECRET=SECRET)
        self.stderr_path = workdir / "echo_component.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [shutil.which("node"), str(COMPONENTS_DIR / "echo_component.mjs")],
            cwd=COMPONENTS_DIR, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, text=True, bufsize=1,
        )
        self.events: "queue.Queue[dict]" = queue.Queue()
        self.seen: list = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line:
                try:
                    self.events.put(json.loads(line))
                except ValueError:
                    self.events.put({"event": "garbage", "line": line})
        self.events.put({"event": "exit"})

    def command(self, **cmd) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def wait(self, match: Callable[[dict], bool], timeout: float = 5.0) -> dict:
        """The next event that matches; earlier ones are kept in `seen`.
        An "error" event or the process ending fails the test."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                ev = self.events.get(timeout=max(0.0, remaining))
            except queue.Empty:
                raise AssertionError("no matching event from the component within %ss; seen: %s; stderr: %s"
                                     % (timeout, self.seen[-10:], self.stderr()))
            self.seen.append(ev)
            if match(ev):
                return ev
            if ev["event"] in ("error", "exit", "garbage"):
                raise AssertionError("component: %s; stderr: %s" % (ev, self.stderr()))

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> Optional[int]:
        if self.proc.poll() is None:
            try:
                self.command(op="stop")
                self.proc.wait(timeout=5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        return self.proc.returncode


def event(name: str, **fields) -> Callable[[dict], bool]:
    return lambda ev: ev.get("event") == name and all(ev.get(k) == v for k, v in fields.items())


def received_stanza(ev: dict):
    import xml.etree.ElementTree as ET

    # xmpp.js serialises without the stream's default namespace.
    return ET.fromstring(ev["xml"])


# ------------------------------------------------------------------- test


def test_xmppjs_echo_component(server, xmppjs, tmp_path):
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")
    comp = NodeComponent(server, tmp_path)
    try:
        online = comp.wait(event("online"), timeout=15)
        assert online["jid"] == DOMAIN, online
        listed = server.ctl("list_components").stdout
        assert any(line.startswith(DOMAIN + " connected") for line in listed.splitlines()), listed

        with server.raw_login(alice_jid, alice_pw, "desk") as alice:
            alice.become_available()

            # A chat message is echoed from the address it was sent to; the
            # component saw the server-stamped 'from' (alice's full JID).
            alice.send("<message to='echo@%s/any' type='chat' id='c1'><body>hello xmpp.js</body>"
                       "<thread>t-1</thread></message>" % DOMAIN)
            got = comp.wait(event("received"))
            stanza = received_stanza(got)
            assert stanza.tag == "message" and stanza.get("from") == alice.jid, got
            echo = alice.wait_for(q(NS_CLIENT, "message"))
            assert echo.get("from") == "echo@%s/any" % DOMAIN, to_string(echo)
            assert echo.get("to") == alice.jid and echo.get("type") == "chat", to_string(echo)
            assert echo.findtext(q(NS_CLIENT, "body")) == "echo: hello xmpp.js", to_string(echo)
            assert echo.findtext(q(NS_CLIENT, "thread")) == "t-1", to_string(echo)

            # disco#info to the component's domain is answered by the component.
            info = alice.iq("get", DOMAIN, "<query xmlns='%s'/>" % NS_DISCO_INFO)
            assert info.get("type") == "result" and info.get("from") == DOMAIN, to_string(info)
            identity = info.find("%s/%s" % (q(NS_DISCO_INFO, "query"), q(NS_DISCO_INFO, "identity")))
            assert identity is not None and identity.attrib == {
                "category": "component", "type": "generic", "name": "xmpp.js echo"}, to_string(info)
            features = {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
            assert features == {NS_DISCO_INFO, NS_ECHO}, features

            # A custom iq at a JID of the component's domain.
            r = alice.iq("get", "echo@" + DOMAIN, "<reverse xmlns='%s'>xmppd ✓</reverse>" % NS_ECHO)
            assert r.get("type") == "result", to_string(r)
            assert r.findtext(q(NS_ECHO, "reverse")) == "✓ dppmx", to_string(r)

            # A namespace the component does not know: its own error, routed back.
            r = alice.iq("get", DOMAIN, "<query xmlns='urn:xmppd:test:unknown'/>")
            assert r.get("type") == "error" and r.get("from") == DOMAIN, to_string(r)
            assert stanza_error(r) == ("cancel", "service-unavailable"), to_string(r)

            # The component asks alice's client (full JID) and gets her answer.
            comp.command(op="iq", tag="version", to=alice.jid, ns=NS_VERSION, name="query",
                         **{"from": "bot@" + DOMAIN})
            asked = alice.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("type") == "get")
            assert asked.get("from") == "bot@" + DOMAIN and asked.get("to") == alice.jid, to_string(asked)
            assert asked.find(q(NS_VERSION, "query")) is not None, to_string(asked)
            alice.send("<iq type='result' id='%s' to='%s'><query xmlns='%s'><name>rawxmpp</name>"
                       "<version>1</version></query></iq>" % (asked.get("id"), asked.get("from"), NS_VERSION))
            answer = comp.wait(event("iq-result", tag="version"))
            assert "<name>rawxmpp</name>" in answer["xml"], answer

            # ... and the server itself (its ping module answers).
            comp.command(op="iq", tag="ping", to="localhost", ns="urn:xmpp:ping", name="ping")
            pong = received_stanza(comp.wait(event("iq-result", tag="ping")))
            assert pong.get("from") == "localhost" and pong.get("to") == DOMAIN, pong.attrib

        # A message from the component to an offline user waits in storage ...
        comp.command(op="message", to=bob_jid, id="n1", body="while you were away",
                     **{"from": "news@" + DOMAIN})
        comp.wait(event("sent", id="n1"))
        deadline = time.monotonic() + 5
        while server.ctl("get_offline_count", bob_jid.split("@")[0], "localhost").stdout.strip() != "1":
            assert time.monotonic() < deadline, "the component's message was not stored for offline bob"
            time.sleep(0.05)
        # ... and reaches bob at his next login, stamped with a delay.
        with server.raw_login(bob_jid, bob_pw, "phone") as bob:
            bob.become_available()
            msg = bob.wait_for(q(NS_CLIENT, "message"))
            assert msg.get("from") == "news@" + DOMAIN and msg.get("id") == "n1", to_string(msg)
            assert msg.findtext(q(NS_CLIENT, "body")) == "while you were away", to_string(msg)
            delay = msg.find(q(NS_DELAY, "delay"))
            assert delay is not None and delay.get("from") == "localhost", to_string(msg)

        # A message to a user who does not exist comes back to the component
        # as an error from that address.
        comp.command(op="message", to="nobody@localhost", id="x1", body="anyone?")
        bounce = comp.wait(lambda ev: ev.get("event") == "received" and "x1" in ev["xml"])
        stanza = received_stanza(bounce)
        assert stanza.get("type") == "error" and stanza.get("from") == "nobody@localhost", bounce
        assert "service-unavailable" in bounce["xml"], bounce
    finally:
        rc = comp.stop()
    assert rc == 0, "the component exited with %s; stderr: %s" % (rc, comp.stderr())
    # Its </stream:stream> took it out of the routing table.
    deadline = time.monotonic() + 5
    while DOMAIN + " disconnected" not in server.ctl("list_components").stdout:
        assert time.monotonic() < deadline, server.ctl("list_components").stdout
        time.sleep(0.05)
