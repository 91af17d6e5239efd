"""Stream-level errors (RFC 6120 §4.9): what exactly the server sends before
it closes, and that the other sessions do not notice."""

from harness import run, slix_client
from rawxmpp import NS_CLIENT, assert_closed_with, q, to_string

# The harness default, repeated here because the tests depend on it.
SERVER_CONFIG = {"limits": {"max_stanza_bytes": 10000}}


def message_bodies(elements):
    return [e.findtext(q(NS_CLIENT, "body")) for e in elements if e.tag == q(NS_CLIENT, "message")]


def test_not_well_formed_closes_only_that_stream(server):
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")
    carol_jid, carol_pw = server.new_user("carol")

    with server.raw_login(bob_jid, bob_pw, "desk") as bob:
        bob.become_available()
        with server.raw_login(alice_jid, alice_pw, "x") as alice:
            alice.send("<message to='%s'><body></message>" % bob_jid)
            elements = alice.read_until_closed(timeout=10)
            assert_closed_with(alice, "not-well-formed", elements)

        # bob's session is unharmed: a message still reaches him ...
        with server.raw_login(carol_jid, carol_pw) as carol:
            carol.send("<message to='%s' id='after-1' type='chat'><body>still there?</body></message>"
                       % bob_jid)
            got = bob.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"))
            assert got.findtext(q(NS_CLIENT, "body")) == "still there?", to_string(got)
            assert got.get("from") == carol.jid
            # ... and he can still send
            bob.send("<message to='%s' type='chat'><body>yes</body></message>" % carol.jid)
            back = carol.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"))
            assert back.findtext(q(NS_CLIENT, "body")) == "yes"
            # nothing of alice's broken stanza leaked to bob
            assert "" not in message_bodies(bob.received) and None not in message_bodies(bob.received)


def test_not_well_formed_with_slixmpp_bystander(server):
    """Same, with a real client library as the bystander."""
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")

    async def scenario():
        bob = await slix_client(bob_jid, bob_pw, server).login(server.c2s_port)
        alice = server.raw_login(alice_jid, alice_pw)
        alice.send("<message><body>unclosed</message>")
        elements = alice.read_until_closed(timeout=10)
        alice.close()
        assert_closed_with(alice, "not-well-formed", elements)
        with server.raw_login(alice_jid, alice_pw) as again:
            again.send("<message to='%s' type='chat'><body>second try</body></message>" % bob_jid)
            got = await bob.next_message()
        assert got["body"] == "second try"
        assert not bob.stream_errors
        await bob.logout()

    run(scenario())


def test_bad_xml_before_authentication(server):
    with server.raw() as c:
        c.open_stream()
        c.send("<iq type='get' id='1'><query xmlns='jabber:iq:version'></iq>")
        elements = c.read_until_closed(timeout=10)
        assert_closed_with(c, "not-well-formed", elements)


def test_oversized_stanza_is_policy_violation(server):
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")
    with server.raw_login(bob_jid, bob_pw) as bob, server.raw_login(alice_jid, alice_pw) as alice:
        # Just under the limit: delivered.
        alice.send("<message to='%s' type='chat'><body>%s</body></message>" % (bob.jid, "a" * 9000))
        got = bob.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"))
        assert len(got.findtext(q(NS_CLIENT, "body"))) == 9000

        # Over it: <policy-violation/> and the stream ends.
        alice.send("<message to='%s' type='chat'><body>%s</body></message>" % (bob.jid, "b" * 20000))
        elements = alice.read_until_closed(timeout=10)
        assert_closed_with(alice, "policy-violation", elements)
        leaked = message_bodies(bob.collect(1.0))
        assert not leaked, "bob got something from the oversized stanza: %s" % leaked


def test_endless_stanza_is_cut_off(server):
    """A stanza that never ends must not be buffered without bound: the
    limit applies while it is still being received."""
    alice_jid, alice_pw = server.new_user("alice")
    with server.raw_login(alice_jid, alice_pw) as alice:
        alice.send("<message to='%s'><body>" % alice_jid)
        for _ in range(6):
            alice.send("c" * 5000)
        elements = alice.read_until_closed(timeout=10)
        assert_closed_with(alice, "policy-violation", elements)


def test_spoofed_from_is_invalid_from(server):
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")
    with server.raw_login(bob_jid, bob_pw, "x") as bob, server.raw_login(alice_jid, alice_pw) as alice:
        bob.become_available()  # so that bare-JID messages reach him
        # Control: a 'from' that is alice's own full JID is fine (RFC 6120 §8.1.2.1).
        alice.send("<message from='%s' to='%s' type='chat'><body>honest</body></message>"
                   % (alice.jid, bob_jid))
        got = bob.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"))
        assert got.findtext(q(NS_CLIENT, "body")) == "honest"
        assert got.get("from") == alice.jid

        alice.send("<message from='%s/x' to='%s' type='chat'><body>spoofed</body></message>"
                   % (bob_jid, bob_jid))
        elements = alice.read_until_closed(timeout=10)
        assert_closed_with(alice, "invalid-from", elements)
        leaked = message_bodies(bob.collect(1.5))
        assert not leaked, "bob received: %s" % leaked
