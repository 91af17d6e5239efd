"""What the server itself answers: disco#info (XEP-0030), ping (XEP-0199),
software version (XEP-0092) - through slixmpp's plugins and on the wire."""

import asyncio

import pytest

from harness import run, slix_client
from rawxmpp import NS_CLIENT, q, stanza_error, to_string

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_PING = "urn:xmpp:ping"
NS_VERSION = "jabber:iq:version"


@pytest.fixture
def alice(server):
    jid, pw = server.new_user("alice")
    c = server.raw_login(jid, pw)
    yield c
    c.close()


def test_disco_info_raw(server, alice):
    answer = alice.iq("get", "localhost", "<query xmlns='%s'/>" % NS_DISCO_INFO)
    assert answer.get("type") == "result", to_string(answer)
    assert answer.get("from") == "localhost", to_string(answer)
    query = answer.find(q(NS_DISCO_INFO, "query"))
    assert query is not None, to_string(answer)
    features = {f.get("var") for f in query.findall(q(NS_DISCO_INFO, "feature"))}
    for ns in (NS_DISCO_INFO, NS_PING, NS_VERSION):
        assert ns in features, "%s missing from disco#info: %s" % (ns, sorted(features))
    identities = [(i.get("category"), i.get("type")) for i in query.findall(q(NS_DISCO_INFO, "identity"))]
    assert ("server", "im") in identities, identities


def test_ping_raw(server, alice):
    answer = alice.iq("get", "localhost", "<ping xmlns='%s'/>" % NS_PING)
    assert answer.get("type") == "result", to_string(answer)
    assert answer.get("from") == "localhost", to_string(answer)
    assert len(answer) == 0, "a ping result is empty: %s" % to_string(answer)


def test_version_raw(server, alice):
    answer = alice.iq("get", "localhost", "<query xmlns='%s'/>" % NS_VERSION)
    assert answer.get("type") == "result", to_string(answer)
    query = answer.find(q(NS_VERSION, "query"))
    assert query is not None, to_string(answer)
    assert query.findtext(q(NS_VERSION, "name")) == "xmppd", to_string(answer)
    assert query.findtext(q(NS_VERSION, "version")), to_string(answer)
    # show_os: false in the test config
    assert query.find(q(NS_VERSION, "os")) is None, to_string(answer)


def test_version_set_is_refused(server, alice):
    answer = alice.iq("set", "localhost", "<query xmlns='%s'/>" % NS_VERSION)
    assert answer.get("type") == "error", to_string(answer)
    assert stanza_error(answer)[1] in ("bad-request", "not-allowed", "feature-not-implemented",
                                       "service-unavailable"), to_string(answer)


def test_services_through_slixmpp(server):
    jid, pw = server.new_user("slix")

    async def scenario():
        c = slix_client(jid, pw, server)
        c.register_plugin("xep_0030")
        c.register_plugin("xep_0199")
        c.register_plugin("xep_0092")
        await c.login(server.c2s_port)

        info = await c["xep_0030"].get_info(jid="localhost", timeout=5)
        features = set(info["disco_info"]["features"])
        assert {NS_DISCO_INFO, NS_PING, NS_VERSION} <= features, sorted(features)

        rtt = await c["xep_0199"].ping("localhost", timeout=5)
        assert rtt is not None and rtt >= 0

        version = await c["xep_0092"].get_version("localhost", timeout=5)
        assert version["software_version"]["name"] == "xmppd", version
        await c.logout()

    run(scenario())


def test_ping_to_a_client_is_routed_and_answered(server):
    """An iq to a full JID goes to that session, and its answer comes back."""
    jid, pw = server.new_user("pingme")
    pinger_jid, pinger_pw = server.new_user("pinger")

    async def scenario():
        c = slix_client(jid, pw, server)
        c.register_plugin("xep_0199")
        await c.login(server.c2s_port)
        # The raw client blocks, so it runs in a thread while slixmpp's loop
        # keeps going and answers the ping.
        pinger = await asyncio.to_thread(server.raw_login, pinger_jid, pinger_pw)
        try:
            answer = await asyncio.to_thread(
                pinger.iq, "get", c.boundjid.full, "<ping xmlns='%s'/>" % NS_PING, 5)
        finally:
            pinger.close()
        assert answer.get("type") == "result", to_string(answer)
        assert answer.get("from") == c.boundjid.full, to_string(answer)
        assert answer.get("to") == pinger.jid, to_string(answer)
        await c.logout()

    run(scenario())
