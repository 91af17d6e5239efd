"""A client that does not read must not make the server buffer without
bound: past limits.max_outbound_bytes its session is closed with
<policy-violation/>, and everybody else carries on."""

import time

from rawxmpp import NS_CLIENT, q, stream_error_condition, to_string

SERVER_CONFIG = {"limits": {"max_outbound_bytes": 262144}}

CHUNK = "m" * 8000


def test_slow_reader_is_cut_off(server):
    alice_jid, alice_pw = server.new_user("flood")
    bob_jid, bob_pw = server.new_user("slow")
    bob = server.raw_login(bob_jid, bob_pw, "slow", rcvbuf=4096)
    alice = server.raw_login(alice_jid, alice_pw)
    try:
        sent = 0
        gone = False
        deadline = time.monotonic() + 60
        # Kernel buffers on both sides of the loopback absorb a few MB first;
        # keep sending until the server lets bob go (or 40 MB went out).
        while sent < 5000 and time.monotonic() < deadline:
            # Small bursts, and alice reads in between: she must not become a
            # slow reader herself once bob's bounces come back to her.
            for _ in range(4):
                alice.send("<message to='%s' type='chat' id='f%d'><body>%s</body></message>"
                           % (bob.jid, sent, CHUNK))
                sent += 1
            alice.collect(0.02)  # drain what comes back (bounces once bob is gone)
            if sent % 40 == 0:
                listed = server.ctl("connected_users").stdout.split()
                if bob.jid not in listed:
                    gone = True
                    break
        assert gone, "bob (not reading) is still connected after %d messages of 8 kB" % sent
        assert sent * len(CHUNK) > 262144, "bob was cut off before the limit was reached"
        assert not alice.eof, "the sender's session was closed too"

        # alice is unaffected
        answer = alice.iq("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>", timeout=10)
        assert answer.get("type") == "result", to_string(answer)

        # bob finds <policy-violation/> at the end of what was already on its way
        elements = bob.read_until_closed(timeout=30)
        assert bob.eof, "bob's connection was not closed"
        cond = stream_error_condition(elements)
        assert cond == "policy-violation", "got %r after %d elements" % (cond, len(elements))
        got = [e for e in elements if e.tag == q(NS_CLIENT, "message")]
        # what did arrive arrived in order
        ids = [int(e.get("id")[1:]) for e in got]
        assert ids == sorted(ids), "messages out of order"
    finally:
        alice.close()
        bob.close()
