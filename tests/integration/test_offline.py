"""Offline messages (XEP-0160, RFC 6121 §8.5.2.2.1) with the offline module
on: stored while the user has no available resource, delivered at the next
non-negative initial presence, in order, with a XEP-0203 delay, once."""

from datetime import datetime, timedelta, timezone

from rawxmpp import NS_CLIENT, q, stanza_error, to_string

QUOTA = 5
SERVER_CONFIG = {"modules": {"offline": {"max_messages": QUOTA}}}

NS_DELAY = "urn:xmpp:delay"


def messages(elements):
    return [e for e in elements if e.tag == q(NS_CLIENT, "message")]


def send_chat(client, to, body, msg_id, type_="chat"):
    client.send("<message to='%s' id='%s' type='%s'><body>%s</body></message>"
                % (to, msg_id, type_, body))


def no_bounce(client, wait=0.7):
    bounced = messages(client.collect(wait))
    assert not bounced, "bounced: %s" % [to_string(b) for b in bounced]


def test_stored_then_delivered_in_order_with_delay(server):
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")
    before = datetime.now(timezone.utc) - timedelta(seconds=2)
    with server.raw_login(alice_jid, alice_pw) as alice:
        for i in range(3):
            send_chat(alice, bob_jid, "offline %d" % i, "off-%d" % i)
        no_bounce(alice)
        alice_full = alice.jid

    with server.raw_login(bob_jid, bob_pw) as bob:
        # Connected but not available yet: nothing is pushed.
        early = messages(bob.collect(0.7))
        assert not early, "delivered before initial presence: %s" % [to_string(m) for m in early]
        bob.send_presence()
        got = []
        while len(got) < 3:
            got.append(bob.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"), timeout=5))
        assert [m.findtext(q(NS_CLIENT, "body")) for m in got] == ["offline 0", "offline 1", "offline 2"]
        assert [m.get("id") for m in got] == ["off-0", "off-1", "off-2"]
        for m in got:
            assert m.get("from") == alice_full, to_string(m)
            delay = m.find(q(NS_DELAY, "delay"))
            assert delay is not None, "no XEP-0203 delay: %s" % to_string(m)
            assert delay.get("from") == "localhost", to_string(delay)
            stamp = datetime.strptime(delay.get("stamp").replace("Z", "+0000")[:19] + "+0000",
                                      "%Y-%m-%dT%H:%M:%S%z")
            assert before <= stamp <= datetime.now(timezone.utc) + timedelta(seconds=2), delay.get("stamp")
        extra = messages(bob.collect(0.5))
        assert not extra, "delivered twice: %s" % [to_string(m) for m in extra]

    # Delivered once: the next session finds nothing.
    with server.raw_login(bob_jid, bob_pw) as bob:
        bob.send_presence()
        again = messages(bob.collect(1.0))
        assert not again, "offline messages delivered again: %s" % [to_string(m) for m in again]


def test_negative_priority_does_not_fetch(server):
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")
    with server.raw_login(alice_jid, alice_pw) as alice:
        send_chat(alice, bob_jid, "wait for me", "neg-1")
        no_bounce(alice)
    with server.raw_login(bob_jid, bob_pw) as bob:
        bob.send_presence(priority=-1)
        early = messages(bob.collect(1.0))
        assert not early, "delivered to a negative-priority resource: %s" % [to_string(m) for m in early]
        bob.send_presence(priority=1)
        got = bob.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"), timeout=5)
        assert got.findtext(q(NS_CLIENT, "body")) == "wait for me"


def test_quota_then_service_unavailable(server):
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")
    with server.raw_login(alice_jid, alice_pw) as alice:
        for i in range(QUOTA):
            send_chat(alice, bob_jid, "q%d" % i, "q-%d" % i)
        no_bounce(alice)
        send_chat(alice, bob_jid, "one too many", "q-over")
        bounce = alice.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"), timeout=5)
        assert bounce.get("type") == "error" and bounce.get("id") == "q-over", to_string(bounce)
        assert stanza_error(bounce)[1] == "service-unavailable", to_string(bounce)
    with server.raw_login(bob_jid, bob_pw) as bob:
        bob.send_presence()
        got = []
        while len(got) < QUOTA:
            got.append(bob.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"), timeout=5))
        assert [m.get("id") for m in got] == ["q-%d" % i for i in range(QUOTA)]


def test_headline_is_not_stored(server):
    """RFC 6121 §8.5.2.2.1: a headline to a user with no available resource
    is silently ignored."""
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")
    with server.raw_login(alice_jid, alice_pw) as alice:
        send_chat(alice, bob_jid, "breaking news", "h-1", type_="headline")
        send_chat(alice, bob_jid, "a chat after it", "c-1")
        no_bounce(alice)
    with server.raw_login(bob_jid, bob_pw) as bob:
        bob.send_presence()
        got = bob.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"), timeout=5)
        assert got.get("id") == "c-1", "expected only the chat, got %s" % to_string(got)
        rest = messages(bob.collect(0.5))
        assert not rest, [to_string(m) for m in rest]
