"""limits.idle_timeout: without the ping module's keepalive, a logged-in
client that sends nothing for that long is closed with <connection-timeout/>;
a client that keeps talking (whitespace keepalives count) stays."""

import time

from rawxmpp import stream_error_condition, to_string

SERVER_CONFIG = {
    "limits": {"idle_timeout": 3},
    "modules": {"ping": None},
}


def test_silent_client_is_closed_and_a_talking_one_stays(server):
    jid, pw = server.new_user("idler")
    silent = server.raw_login(jid, pw, "silent")
    talker = server.raw_login(jid, pw, "talker")
    try:
        started = time.monotonic()
        deadline = started + 15
        seen = []
        closed = None
        while time.monotonic() < deadline and closed is None:
            talker.send(" ")  # RFC 6120 §4.6.1 whitespace keepalive
            seen.extend(silent.read_until_closed(timeout=1))
            if silent.eof:
                closed = seen
        took = time.monotonic() - started
        assert closed is not None, "the silent session was never closed"
        assert stream_error_condition(closed) == "connection-timeout", [to_string(e) for e in closed]
        assert took >= 2, "closed after %.1fs with idle_timeout 3" % took
        # the talker was never idle for 3 s and is still served
        answer = talker.iq("get", "localhost", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
        assert answer.get("type") == "result", to_string(answer)
    finally:
        silent.close()
        talker.close()
