"""Timers: a login that does not finish in limits.login_timeout, and a
silent session that does not answer the server's XEP-0199 ping."""

import socket
import time

from rawxmpp import NS_CLIENT, q, stream_error_condition, to_string

SERVER_CONFIG = {
    "limits": {"login_timeout": 2},
    "modules": {"ping": {"interval": 5, "timeout": 2}},
}

NS_PING = "urn:xmpp:ping"


def is_server_ping(e):
    return (e.tag == q(NS_CLIENT, "iq") and e.get("type") == "get"
            and e.find(q(NS_PING, "ping")) is not None)


def test_login_timeout(server):
    silent = socket.create_connection(("127.0.0.1", server.c2s_port))
    with server.raw() as c:
        started = time.monotonic()
        c.open_stream()
        c.starttls()  # then nothing: no authentication
        elements = c.read_until_closed(timeout=10)
        took = time.monotonic() - started
        assert stream_error_condition(elements) == "connection-timeout", [
            to_string(e) for e in elements]
        assert c.eof
        assert took < 8, "closed only after %.1fs with login_timeout 2" % took
    # a connection that never even sent a stream header is closed as well
    silent.settimeout(8)
    try:
        while silent.recv(4096):
            pass
    except ConnectionResetError:
        pass
    silent.close()


def test_unanswered_server_ping_closes_only_that_session(server):
    jid, pw = server.new_user("idle")
    answers = server.raw_login(jid, pw, "answers")
    mute = server.raw_login(jid, pw, "mute")
    try:
        # Both are silent; the server pings each after `interval` seconds.
        ping = answers.wait_for(is_server_ping, timeout=12)
        assert ping.get("from") == "localhost", to_string(ping)
        assert ping.get("to") == answers.jid, to_string(ping)
        answers.send("<iq type='result' id='%s' to='localhost'/>" % ping.get("id"))

        mute.wait_for(is_server_ping, timeout=12)
        elements = mute.read_until_closed(timeout=10)
        assert stream_error_condition(elements) == "connection-timeout", [
            to_string(e) for e in elements]
        assert mute.eof

        # the one that answered is still there after the ping timeout
        answer = answers.iq("get", "localhost", "<ping xmlns='%s'/>" % NS_PING)
        assert answer.get("type") == "result", to_string(answer)
    finally:
        answers.close()
        mute.close()
