"""Stanza errors for things nobody handles (RFC 6120 §8.3, RFC 6121 §8.5)."""

import pytest

from rawxmpp import NS_CLIENT, q, stanza_error, to_string

UNKNOWN_QUERY = "<query xmlns='urn:example:nothing'/>"


def assert_iq_error(answer, iq_type_cond, expect_from=None):
    etype, cond = stanza_error(answer)
    assert answer.get("type") == "error", to_string(answer)
    assert (etype, cond) == iq_type_cond, "expected %s, got %s: %s" % (
        iq_type_cond, (etype, cond), to_string(answer))
    if expect_from is not None:
        assert answer.get("from") == expect_from, to_string(answer)


@pytest.fixture
def alice(server):
    jid, pw = server.new_user("alice")
    c = server.raw_login(jid, pw, "r1")
    yield c
    c.close()


def test_unknown_namespace_to_server(server, alice):
    answer = alice.iq("get", "localhost", UNKNOWN_QUERY)
    assert_iq_error(answer, ("cancel", "service-unavailable"), expect_from="localhost")
    assert answer.get("to") == alice.jid, to_string(answer)


def test_unknown_namespace_to_server_without_to(server, alice):
    """No 'to' means the server itself (RFC 6120 §8.1.1.1)."""
    answer = alice.iq("get", None, UNKNOWN_QUERY)
    assert_iq_error(answer, ("cancel", "service-unavailable"))


def test_unknown_set_to_server(server, alice):
    answer = alice.iq("set", "localhost", UNKNOWN_QUERY)
    assert_iq_error(answer, ("cancel", "service-unavailable"))


def test_unknown_namespace_to_own_bare_jid(server, alice):
    bare = alice.jid.split("/")[0]
    answer = alice.iq("get", bare, UNKNOWN_QUERY)
    assert_iq_error(answer, ("cancel", "service-unavailable"))


def test_iq_to_nonexistent_local_user(server, alice):
    answer = alice.iq("get", "bob2@localhost", UNKNOWN_QUERY)
    assert_iq_error(answer, ("cancel", "service-unavailable"), expect_from="bob2@localhost")


def test_message_to_nonexistent_local_user(server, alice):
    alice.send("<message to='bob2@localhost' id='m-nouser' type='chat'><body>anyone?</body></message>")
    answer = alice.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"))
    assert answer.get("type") == "error", to_string(answer)
    assert answer.get("id") == "m-nouser", to_string(answer)
    assert answer.get("from") == "bob2@localhost", to_string(answer)
    assert stanza_error(answer) == ("cancel", "service-unavailable"), to_string(answer)


def test_iq_to_unknown_domain(server, alice):
    answer = alice.iq("get", "nowhere.example", "<query xmlns='jabber:iq:version'/>")
    etype, cond = stanza_error(answer)
    assert answer.get("type") == "error", to_string(answer)
    assert cond == "remote-server-not-found", to_string(answer)
    assert etype == "cancel", to_string(answer)
    assert answer.get("from") == "nowhere.example", to_string(answer)


def test_message_to_unknown_domain(server, alice):
    alice.send("<message to='someone@nowhere.example' id='m-far' type='chat'><body>hi</body></message>")
    answer = alice.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"))
    assert answer.get("id") == "m-far"
    assert stanza_error(answer)[1] == "remote-server-not-found", to_string(answer)


def test_iq_error_keeps_session_usable(server, alice):
    alice.iq("get", "localhost", UNKNOWN_QUERY)
    answer = alice.iq("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
    assert answer.get("type") == "result", to_string(answer)


def test_iq_get_without_payload_is_bad_request(server, alice):
    """RFC 6120 §8.2.3: an iq get/set has exactly one payload child."""
    answer = alice.iq("get", "localhost", "")
    assert answer.get("type") == "error", to_string(answer)
    assert stanza_error(answer)[1] == "bad-request", to_string(answer)


def test_chat_to_offline_user_is_bounced_or_stored(server, alice):
    """RFC 6121 §8.5.2.2.1 / XEP-0160: a chat message to a registered user
    with no available resource is stored offline or bounced with
    <service-unavailable/>; it must not just vanish."""
    bob_jid, bob_pw = server.new_user("offline")
    alice.send("<message to='%s' id='m-offline' type='chat'><body>while you were out</body></message>"
               % bob_jid)
    answer = alice.recv(2.0)
    if answer is not None and answer.tag == q(NS_CLIENT, "message"):
        assert answer.get("type") == "error", to_string(answer)
        assert answer.get("id") == "m-offline", to_string(answer)
        assert stanza_error(answer)[1] == "service-unavailable", to_string(answer)
        return
    assert answer is None, to_string(answer)
    # No bounce: then it was stored and comes with bob's initial presence.
    with server.raw_login(bob_jid, bob_pw) as bob:
        bob.send_presence()
        got = bob.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"), timeout=5)
        assert got.findtext(q(NS_CLIENT, "body")) == "while you were out", to_string(got)


def test_chat_to_connected_but_unavailable_user_is_not_lost(server, alice):
    """A user whose only session has not sent initial presence has no
    available resource (RFC 6121 §8.5.2.1.1 delivers bare-JID messages to
    available resources): the message is bounced, stored or delivered,
    not silently dropped."""
    bob_jid, bob_pw = server.new_user("quiet")
    with server.raw_login(bob_jid, bob_pw) as bob:
        alice.send("<message to='%s' id='m-quiet' type='chat'><body>psst</body></message>" % bob_jid)
        answer = alice.recv(2.0)
        delivered = [e for e in bob.collect(0.5) if e.tag == q(NS_CLIENT, "message")]
        if answer is not None and answer.tag == q(NS_CLIENT, "message"):
            assert stanza_error(answer)[1] == "service-unavailable", to_string(answer)
            return
        if delivered:
            assert delivered[0].findtext(q(NS_CLIENT, "body")) == "psst"
            return
        bob.send_presence()
        got = bob.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"), timeout=5)
        assert got.findtext(q(NS_CLIENT, "body")) == "psst", to_string(got)
