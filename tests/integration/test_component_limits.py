"""Per-component limits (XEP-0114, issue 9 item 7): bandwidth (a shaper on
what the component sends), connection rate per domain, stanza size of its
own; and the component gauges in `xmppctl stats`."""

import time

from rawxmpp import NS_CLIENT, assert_closed_with, q, to_string
from test_components import connected_raw_component, raw_component

RATE = 2000  # bytes per second for slow.localhost
READ_CHUNK = 16384  # what the server reads at once before the shaper pauses it

SERVER_CONFIG = {
    "components": {
        "slow.localhost": {"secret": "slow-secret", "bytes_per_second": RATE},
        "flappy.localhost": {"secret": "flappy-secret", "connections_per_minute": 3},
        "small.localhost": {"secret": "small-secret", "max_stanza_bytes": 2048},
    },
}


def test_a_component_is_held_to_its_bytes_per_second(server):
    """What the component sends beyond one second's burst arrives no faster
    than the rate: ~22 kB at 2 kB/s take seconds, not milliseconds. Everything arrives."""
    alice_jid, alice_pw = server.new_user("alice")
    n, size = 20, 1000
    with server.raw_login(alice_jid, alice_pw) as alice:
        alice.become_available()
        with connected_raw_component(server, "slow.localhost", "slow-secret") as comp:
            started = time.monotonic()
            burst = "".join(
                "<message from='bot@slow.localhost' to='%s' id='s%02d' type='chat'><body>%s</body></message>"
                % (alice_jid, i, "b" * size) for i in range(n))
            comp.send(burst)
            got = []
            deadline = time.monotonic() + 40
            while len(got) < n and time.monotonic() < deadline:
                e = alice.recv(1.0)
                if e is not None and e.tag == q(NS_CLIENT, "message"):
                    got.append(e)
            elapsed = time.monotonic() - started
            assert [m.get("id") for m in got] == ["s%02d" % i for i in range(n)]
            # A lower bound only: the shaper guarantees the pace, a slow
            # machine can only make it slower. The one-second burst and the
            # last read (paused after, not before) are not delayed.
            floor = (len(burst) - RATE - READ_CHUNK) / RATE * 0.9
            assert elapsed >= floor, "%d bytes crossed in %.1f s, faster than %d bytes/s" % (
                len(burst), elapsed, RATE)
            r = server.ctl("stats")
            assert "components_connected: 1" in r.stdout, r.stdout
            assert "component_queue_bytes_max: " in r.stdout, r.stdout
            comp.end_stream()


def test_more_connections_per_minute_than_allowed_are_refused(server):
    for _ in range(3):
        with connected_raw_component(server, "flappy.localhost", "flappy-secret") as c:
            c.end_stream()
    with raw_component(server, "flappy.localhost") as c:
        elems = c.read_until_closed(5)
        assert_closed_with(c, "policy-violation", elems)
        text = " ".join(to_string(e) for e in elems)
        assert "more than 3 connections per minute for flappy.localhost" in text, text
    assert "flappy.localhost stream error <policy-violation/>" in server.log_text()
    # Other components are unaffected.
    with connected_raw_component(server, "small.localhost", "small-secret") as c:
        c.end_stream()


def test_a_component_stanza_over_its_own_limit_ends_the_stream(server):
    alice_jid, _ = server.new_user("alice")
    with connected_raw_component(server, "small.localhost", "small-secret") as c:
        c.send("<message from='x@small.localhost' to='%s'><body>%s</body></message>" % (alice_jid, "y" * 1500))
        c.send("<message from='x@small.localhost' to='%s'><body>%s</body></message>" % (alice_jid, "y" * 3000))
        assert_closed_with(c, "policy-violation", c.read_until_closed(5))
