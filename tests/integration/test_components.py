"""External components (XEP-0114): a slixmpp ComponentXMPP echo service
plugged into xmppd, talking with c2s users; the handshake's failures
(wrong secret, unknown domain, conflict), a spoofed 'from', and what users
get while a component is disconnected."""

import asyncio
import hashlib
import tempfile
import time
from pathlib import Path

from harness import run, slix_client, slixmpp
from rawxmpp import NS_CLIENT, RawXmpp, assert_closed_with, q, stanza_error, to_string

NS_COMPONENT = "jabber:component:accept"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"

_SECRET_FILE = Path(tempfile.mkdtemp(prefix="xmppd-it-comp-")) / "gone.secret"
_SECRET_FILE.write_text("gone-secret\n")

SERVER_CONFIG = {
    "modules": {"offline": {}},
    "limits": {"max_outbound_bytes": 262144},
    "components": {
        "echo.localhost": {"secret": "echo-secret"},
        "raw.localhost": {"secret": "raw-secret"},
        "spoof.localhost": {"secret": "spoof-secret"},
        "ctl.localhost": {"secret": "ctl-secret"},
        "queue.localhost": {"secret": "queue-secret"},
        "gone.localhost": {"secret_file": str(_SECRET_FILE)},
    },
}


class RawComponent(RawXmpp):
    """A hand-driven component stream (jabber:component:accept)."""

    def open(self, domain: str):
        self._reset_parser()
        self.send("<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:component:accept' "
                  "xmlns:stream='http://etherx.jabber.org/streams'>" % domain)
        deadline = time.monotonic() + 5
        while not self.stream_attrs and not self.eof and time.monotonic() < deadline:
            self._fill(deadline)
        assert self.stream_attrs.get("id"), "no stream id from the server: %r" % self.stream_attrs
        return self.stream_attrs

    def handshake(self, secret: str) -> None:
        digest = hashlib.sha1((self.stream_attrs["id"] + secret).encode()).hexdigest()
        self.send("<handshake>%s</handshake>" % digest)


def raw_component(server, domain: str, **kw) -> RawComponent:
    c = RawComponent(server.component_port, domain=domain, **kw)
    c.connect()
    c.open(domain)
    return c


def connected_raw_component(server, domain: str, secret: str, **kw) -> RawComponent:
    c = raw_component(server, domain, **kw)
    c.handshake(secret)
    ok = c.wait_for(q(NS_COMPONENT, "handshake"), timeout=5)
    assert ok.text in (None, ""), to_string(ok)
    return c


# ------------------------------------------------------------- slixmpp echo


class EchoComponent(slixmpp.ComponentXMPP if slixmpp else object):
    """Answers every chat message with 'echo: <body>' from the JID it was sent to."""

    def __init__(self, jid: str, secret: str, port: int) -> None:
        super().__init__(jid, secret, "127.0.0.1", port)
        self.use_ipv6 = False
        self.use_aiodns = False
        self.auto_reconnect = False
        self.register_plugin("xep_0030")
        self["xep_0030"].add_identity(category="component", itype="generic", name="Echo")
        self.started: asyncio.Future = asyncio.get_running_loop().create_future()
        self.add_event_handler("session_start", lambda _e: self.started.done() or self.started.set_result(True))
        self.add_event_handler("message", self._echo)

    def _echo(self, msg) -> None:
        if msg["type"] in ("chat", "normal") and msg["body"]:
            msg.reply("echo: %s" % msg["body"]).send()


def test_echo_component_answers_messages_and_disco_and_reaches_offline_users(server):
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")

    async def scenario():
        echo = EchoComponent("echo.localhost", "echo-secret", server.component_port)
        echo.connect()
        await asyncio.wait_for(echo.started, 10)

        alice = slix_client(alice_jid, alice_pw, server)
        alice.register_plugin("xep_0030")
        await alice.login(server.c2s_port)
        alice.send_message(mto="someone@echo.localhost/x", mbody="hello component", mtype="chat")
        reply = await alice.next_message()
        assert reply["body"] == "echo: hello component", reply
        assert str(reply["from"]) == "someone@echo.localhost/x", reply
        # disco#info to the component's domain is answered by the component.
        info = await alice["xep_0030"].get_info(jid="echo.localhost", timeout=5)
        identities = info["disco_info"]["identities"]
        assert ("component", "generic", None, "Echo") in identities, identities
        # The server's disco#items lists the connected component.
        items = await alice["xep_0030"].get_items(jid="localhost", timeout=5)
        assert "echo.localhost" in [str(i[0]) for i in items["disco_items"]["items"]], items

        # A message from the component to a user who is offline waits for them.
        echo.send_message(mto=bob_jid, mfrom="news@echo.localhost", mbody="while you were away",
                          mtype="chat")
        await asyncio.sleep(1.0)
        bob = slix_client(bob_jid, bob_pw, server)
        await bob.login(server.c2s_port)
        got = await bob.next_message(timeout=5)
        assert got["body"] == "while you were away", got
        assert str(got["from"]) == "news@echo.localhost", got

        await bob.logout()
        await alice.logout()
        await echo.disconnect()
        await asyncio.sleep(0.2)

    run(scenario())


# ---------------------------------------------------------------- handshake


def test_wrong_secret_is_not_authorized_and_logged_with_the_peer(server):
    with raw_component(server, "raw.localhost") as c:
        c.handshake("not-the-secret")
        assert_closed_with(c, "not-authorized", c.read_until_closed(5))
    log = server.log_text()
    assert "raw.localhost stream error <not-authorized/>" in log
    assert "127.0.0.1" in [line for line in log.splitlines() if "<not-authorized/>" in line][-1]


def test_unknown_domain_is_host_unknown(server):
    with raw_component(server, "nobody.localhost") as c:
        assert_closed_with(c, "host-unknown", c.read_until_closed(5))


def test_a_second_connection_for_a_domain_gets_conflict(server):
    with connected_raw_component(server, "raw.localhost", "raw-secret") as first:
        with raw_component(server, "raw.localhost") as second:
            second.handshake("raw-secret")
            assert_closed_with(second, "conflict", second.read_until_closed(5))
        # The first stream is still the component's.
        first.send("<message from='a@raw.localhost' to='raw.localhost' id='self'><body>x</body></message>")
        back = first.wait_for(q(NS_COMPONENT, "message"), timeout=5)
        assert back.get("id") == "self", to_string(back)
        first.end_stream()


def test_a_spoofed_from_is_invalid_from(server):
    alice_jid, _ = server.new_user("alice")
    with connected_raw_component(server, "spoof.localhost", "spoof-secret") as c:
        c.send("<message from='%s' to='%s' type='chat'><body>spoof</body></message>" % (alice_jid, alice_jid))
        assert_closed_with(c, "invalid-from", c.read_until_closed(5))


def test_a_component_that_stops_reading_is_cut_off(server):
    alice_jid, alice_pw = server.new_user("flood")
    chunk = "m" * 8000
    with connected_raw_component(server, "queue.localhost", "queue-secret", rcvbuf=4096):
        with server.raw_login(alice_jid, alice_pw) as alice:
            sent = 0
            gone = False
            deadline = time.monotonic() + 60
            while sent < 5000 and time.monotonic() < deadline:
                for _ in range(4):
                    alice.send("<message to='sink@queue.localhost' type='chat' id='f%d'><body>%s</body></message>"
                               % (sent, chunk))
                    sent += 1
                alice.collect(0.02)  # bounces once the component is gone
                if sent % 40 == 0 and "queue.localhost disconnected" in server.ctl("list_components").stdout:
                    gone = True
                    break
            assert gone, "the component (not reading) is still connected after %d messages of 8 kB" % sent
            assert sent * len(chunk) > 262144, "cut off before the limit was reached"
            assert not alice.eof, "the sender's session was closed too"
            r = alice.iq("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
            assert r.get("type") == "result", to_string(r)
    assert "queue.localhost outbound queue over 262144 bytes" in server.log_text()


# ------------------------------------------------------------- disconnected


def test_a_disconnected_component_gets_service_unavailable(server):
    alice_jid, alice_pw = server.new_user("alice")
    with server.raw_login(alice_jid, alice_pw) as alice:
        alice.send("<message to='user@gone.localhost' id='m1' type='chat'><body>hi</body></message>")
        err = alice.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"), timeout=5)
        assert stanza_error(err) == ("cancel", "service-unavailable"), to_string(err)
        assert err.get("from") == "user@gone.localhost", to_string(err)
        reply = alice.iq("get", "gone.localhost", "<query xmlns='%s'/>" % NS_DISCO_INFO)
        assert stanza_error(reply) == ("cancel", "service-unavailable"), to_string(reply)
        alice.send("<presence to='gone.localhost'/>")
        extra = [e for e in alice.collect(0.7) if e.tag != q(NS_CLIENT, "presence")]
        assert not extra, [to_string(e) for e in extra]

    # The secret_file secret is the component's secret; once it is connected
    # the same stanzas reach it.
    with connected_raw_component(server, "gone.localhost", "gone-secret") as comp:
        with server.raw_login(alice_jid, alice_pw) as alice:
            alice.send("<message to='user@gone.localhost' id='m2' type='chat'><body>now</body></message>")
            got = comp.wait_for(q(NS_COMPONENT, "message"), timeout=5)
            assert got.get("id") == "m2" and got.get("from", "").startswith(alice_jid), to_string(got)
            assert got.findtext(q(NS_COMPONENT, "body")) == "now", to_string(got)
        comp.end_stream()


# ------------------------------------------------------------------ xmppctl


def test_xmppctl_lists_and_disconnects_components(server):
    with connected_raw_component(server, "ctl.localhost", "ctl-secret") as c:
        r = server.ctl("list_components")
        assert r.returncode == 0, r.stdout + r.stderr
        lines = {line.split()[0]: line for line in r.stdout.splitlines()}
        assert "connected since=" in lines["ctl.localhost"], r.stdout
        assert "peer=127.0.0.1" in lines["ctl.localhost"], r.stdout
        assert lines["gone.localhost"] == "gone.localhost disconnected", r.stdout
        r = server.ctl("disconnect_component", "ctl.localhost")
        assert r.returncode == 0, r.stdout + r.stderr
        assert_closed_with(c, "policy-violation", c.read_until_closed(5))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        r = server.ctl("list_components")
        if "ctl.localhost disconnected" in r.stdout:
            break
        time.sleep(0.1)
    assert "ctl.localhost disconnected" in r.stdout, r.stdout
    assert server.ctl("disconnect_component", "ctl.localhost").returncode == 1
    assert server.ctl("disconnect_component", "nope.localhost").returncode == 1
