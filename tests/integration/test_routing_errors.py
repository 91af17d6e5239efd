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
