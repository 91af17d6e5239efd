"""XEP-0191 blocking: the block list (get, block, unblock, unblock all) with
pushes, what a blocked entity gets (nothing: XEP-0191 §3.4), what the user
gets when writing to a blocked JID (<not-acceptable/><blocked/>, §3.5), bad
input, persistence, offline users and account removal.

cache_offline_users is 0 here, so a list goes from memory at its user's last
logout and stanzas to offline users take the path that waits for a load."""

import asyncio
import time

import pytest

from harness import run, slix_client
from rawxmpp import NS_CLIENT, q, stanza_error, to_string

NS_BLOCKING = "urn:xmpp:blocking"
NS_BLOCKING_ERRORS = "urn:xmpp:blocking:errors"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"

SERVER_CONFIG = {
    "modules": {
        "disco": {},
        "ping": {},
        "version": {"show_os": False},
        "offline": {},
        "vcard": {},
        "last": {},
        "blocking": {"max_items": 5, "cache_offline_users": 0},
    }
}


def items_xml(*jids):
    return "".join("<item jid='%s'/>" % j for j in jids)


def blocklist(c):
    answer = c.iq("get", None, "<blocklist xmlns='%s'/>" % NS_BLOCKING)
    assert answer.get("type") == "result", to_string(answer)
    bl = answer.find(q(NS_BLOCKING, "blocklist"))
    assert bl is not None, to_string(answer)
    return sorted(i.get("jid") for i in bl.findall(q(NS_BLOCKING, "item")))


def block(c, *jids):
    answer = c.iq("set", None, "<block xmlns='%s'>%s</block>" % (NS_BLOCKING, items_xml(*jids)))
    assert answer.get("type") == "result", to_string(answer)


def unblock(c, *jids):
    answer = c.iq("set", None, "<unblock xmlns='%s'>%s</unblock>" % (NS_BLOCKING, items_xml(*jids)))
    assert answer.get("type") == "result", to_string(answer)


def is_message(e):
    return e.tag == q(NS_CLIENT, "message")


def error_of(c, stanza_id, timeout=5.0):
    return c.wait_for(lambda e: e.get("id") == stanza_id and e.get("type") == "error", timeout)


def wait_offline(server, bare, timeout=5.0):
    """Until xmppctl connected_users no longer lists the user."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = server.ctl("connected_users")
        if not any(line.split("/")[0] == bare for line in r.stdout.split()):
            return
        time.sleep(0.05)
    raise AssertionError("%s still connected after %ss" % (bare, timeout))


@pytest.fixture
def pair(server):
    """(alice, bob): two available raw sessions of fresh users."""
    a_jid, a_pw = server.new_user("alice")
    b_jid, b_pw = server.new_user("bob")
    alice = server.raw_login(a_jid, a_pw, "home")
    bob = server.raw_login(b_jid, b_pw, "desk")
    alice.become_available()
    bob.become_available()
    yield alice, bob
    alice.close()
    bob.close()


def test_feature_advertised(server, pair):
    alice, _ = pair
    answer = alice.iq("get", "localhost", "<query xmlns='%s'/>" % NS_DISCO_INFO)
    features = {f.get("var") for f in answer.iter(q(NS_DISCO_INFO, "feature"))}
    assert NS_BLOCKING in features, sorted(features)


def test_block_list_round_trip_is_normalised_and_deduplicated(server, pair):
    alice, _ = pair
    assert blocklist(alice) == []
    block(alice, "Romeo@Example.NET", "romeo@example.net", "example.com", "juliet@example.org/Balcony")
    assert blocklist(alice) == ["example.com", "juliet@example.org/Balcony", "romeo@example.net"]
    unblock(alice, "example.com", "never-blocked@example.net")
    assert blocklist(alice) == ["juliet@example.org/Balcony", "romeo@example.net"]
    unblock(alice)  # XEP-0191 §3.5: an empty unblock clears the list
    assert blocklist(alice) == []


def test_blocked_contact_gets_service_unavailable_and_user_sees_nothing(server, pair):
    alice, bob = pair
    block(alice, bob.jid.split("/")[0])

    # message: bounced as if alice were not there, not delivered
    bob.send("<message to='%s' id='m1' type='chat'><body>hello?</body></message>" % alice.jid)
    err = error_of(bob, "m1")
    assert stanza_error(err) == ("cancel", "service-unavailable"), to_string(err)
    assert err.find(q(NS_BLOCKING_ERRORS, "blocked")) is None, "the block must not be revealed"
    # to the bare JID too
    bob.send("<message to='%s' id='m2' type='chat'><body>hello?</body></message>"
             % alice.jid.split("/")[0])
    assert stanza_error(error_of(bob, "m2"))[1] == "service-unavailable"

    # iq get to a full JID and to the bare JID (answered by the server for alice)
    answer = bob.iq("get", alice.jid, "<ping xmlns='urn:xmpp:ping'/>")
    assert stanza_error(answer)[1] == "service-unavailable", to_string(answer)
    answer = bob.iq("get", alice.jid.split("/")[0], "<vCard xmlns='vcard-temp'/>")
    assert stanza_error(answer)[1] == "service-unavailable", to_string(answer)
    answer = bob.iq("get", alice.jid.split("/")[0], "<query xmlns='jabber:iq:last'/>")
    assert stanza_error(answer)[1] == "service-unavailable", to_string(answer)

    # presence: dropped without an error
    bob.send("<presence to='%s' id='p1'/>" % alice.jid)
    bob.send("<presence to='%s' type='subscribe' id='p2'/>" % alice.jid.split("/")[0])
    assert [to_string(e) for e in bob.collect(0.7) if e.get("type") == "error"] == []

    got = alice.collect(0.7)
    assert not any(bob.jid.split("/")[0] in (e.get("from") or "") for e in got), \
        [to_string(e) for e in got]


def test_user_writing_to_a_blocked_jid_gets_blocked_error(server, pair):
    alice, bob = pair
    bob_bare = bob.jid.split("/")[0]
    block(alice, bob_bare)

    alice.send("<message to='%s' id='out1' type='chat'><body>hi</body></message>" % bob_bare)
    err = error_of(alice, "out1")
    assert stanza_error(err) == ("cancel", "not-acceptable"), to_string(err)
    assert err.find("%s/%s" % (q(NS_CLIENT, "error"), q(NS_BLOCKING_ERRORS, "blocked"))) is not None, \
        to_string(err)
    assert err.get("from") == bob_bare and err.get("to") == alice.jid, to_string(err)

    answer = alice.iq("get", bob.jid, "<ping xmlns='urn:xmpp:ping'/>")
    assert stanza_error(answer)[1] == "not-acceptable", to_string(answer)

    alice.send("<presence to='%s' id='dp1'/>" % bob.jid)
    err = error_of(alice, "dp1")
    assert err.tag == q(NS_CLIENT, "presence") and stanza_error(err)[1] == "not-acceptable"

    assert [to_string(e) for e in bob.collect(0.7) if e.get("from", "").startswith(alice.jid)] == []

    # The server itself is never blocked, even with the domain on the list.
    block(alice, "localhost")
    answer = alice.iq("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
    assert answer.get("type") == "result", to_string(answer)
    unblock(alice)


def test_domain_and_full_jid_items(server, pair):
    alice, bob = pair
    bob_bare = bob.jid.split("/")[0]
    # Only another resource of bob is blocked: bob/desk still gets through.
    block(alice, bob_bare + "/elsewhere")
    bob.send("<message to='%s' id='f1' type='chat'><body>through</body></message>" % alice.jid)
    got = alice.wait_for(is_message)
    assert got.findtext(q(NS_CLIENT, "body")) == "through"
    # The whole domain: bob is in it.
    block(alice, "localhost")
    bob.send("<message to='%s' id='f2' type='chat'><body>not through</body></message>" % alice.jid)
    assert stanza_error(error_of(bob, "f2"))[1] == "service-unavailable"
    unblock(alice, "localhost")
    bob.send("<message to='%s' id='f3' type='chat'><body>through again</body></message>" % alice.jid)
    assert alice.wait_for(is_message).findtext(q(NS_CLIENT, "body")) == "through again"


def test_pushes_reach_resources_that_asked(server):
    jid, pw = server.new_user("pushy")

    async def scenario():
        first = slix_client(jid, pw, server)
        second = slix_client(jid, pw, server)
        for c in (first, second):
            c.register_plugin("xep_0191")
        await first.login(server.c2s_port)
        await second.login(server.c2s_port)
        blocked, unblocked = asyncio.Queue(), asyncio.Queue()
        second.add_event_handler("blocked", blocked.put_nowait)
        second.add_event_handler("unblocked", unblocked.put_nowait)

        # second asks for the list, so it gets pushes
        listed = await second["xep_0191"].get_blocked(timeout=5)
        assert set(listed["blocklist"]["items"]) == set()

        await first["xep_0191"].block(["spam@example.net", "example.com"], timeout=5)
        push = await asyncio.wait_for(blocked.get(), 5)
        assert {str(j) for j in push["block"]["items"]} == {"spam@example.net", "example.com"}
        assert push["from"].bare == jid

        listed = await second["xep_0191"].get_blocked(timeout=5)
        assert {str(j) for j in listed["blocklist"]["items"]} == {"spam@example.net", "example.com"}

        await first["xep_0191"].unblock(["example.com"], timeout=5)
        push = await asyncio.wait_for(unblocked.get(), 5)
        assert {str(j) for j in push["unblock"]["items"]} == {"example.com"}

        await first["xep_0191"].unblock([], timeout=5)  # an empty unblock: all
        push = await asyncio.wait_for(unblocked.get(), 5)
        assert len(push["unblock"]["items"]) == 0
        listed = await first["xep_0191"].get_blocked(timeout=5)
        assert set(listed["blocklist"]["items"]) == set()
        await asyncio.gather(first.logout(), second.logout())

    run(scenario())


def test_resource_that_never_asked_gets_no_push(server):
    jid, pw = server.new_user("quiet")
    asker = server.raw_login(jid, pw, "asker")
    silent = server.raw_login(jid, pw, "silent")
    try:
        blocklist(asker)
        block(asker, "nobody@example.net")
        push = asker.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("type") == "set")
        assert push.find(q(NS_BLOCKING, "block")) is not None, to_string(push)
        asker.send("<iq type='result' id='%s' to='%s'/>" % (push.get("id"), push.get("from")))
        got = [e for e in silent.collect(1.0) if e.tag == q(NS_CLIENT, "iq")]
        assert got == [], [to_string(e) for e in got]
    finally:
        asker.close()
        silent.close()


def test_bad_input(server, pair):
    alice, bob = pair
    block(alice, "kept@example.net")

    def set_error(payload):
        answer = alice.iq("set", None, payload)
        assert answer.get("type") == "error", to_string(answer)
        return stanza_error(answer)[1]

    assert set_error("<block xmlns='%s'/>" % NS_BLOCKING) == "bad-request"
    assert set_error("<block xmlns='%s'><item/></block>" % NS_BLOCKING) == "bad-request"
    assert set_error("<block xmlns='%s'><thing jid='a@b'/></block>" % NS_BLOCKING) == "bad-request"
    assert set_error("<block xmlns='%s'><item jid='@@bad'/></block>" % NS_BLOCKING) == "jid-malformed"
    assert set_error("<blocklist xmlns='%s'/>" % NS_BLOCKING) == "bad-request"
    # max_items is 5: one is there, five more would make six; nothing is half-written
    answer = alice.iq("set", None, "<block xmlns='%s'>%s</block>"
                      % (NS_BLOCKING, items_xml(*("n%d@example.net" % i for i in range(5)))))
    assert stanza_error(answer)[1] == "policy-violation", to_string(answer)
    assert answer.find("%s/%s" % (q(NS_CLIENT, "error"),
                                  q("urn:ietf:params:xml:ns:xmpp-stanzas", "text"))) is not None
    assert blocklist(alice) == ["kept@example.net"]
    # someone else's list
    answer = bob.iq("get", alice.jid.split("/")[0], "<blocklist xmlns='%s'/>" % NS_BLOCKING)
    assert stanza_error(answer)[1] in ("forbidden", "service-unavailable"), to_string(answer)


def test_list_survives_logout_and_applies_while_offline(server):
    a_jid, a_pw = server.new_user("offblock")
    b_jid, b_pw = server.new_user("blocked")
    c_jid, c_pw = server.new_user("friend")
    alice = server.raw_login(a_jid, a_pw, "one")
    block(alice, b_jid)
    alice.close()

    bob = server.raw_login(b_jid, b_pw)
    carol = server.raw_login(c_jid, c_pw)
    try:
        wait_offline(server, a_jid)
        bob.send("<message to='%s' id='off1' type='chat'><body>let me in</body></message>" % a_jid)
        assert stanza_error(error_of(bob, "off1"))[1] == "service-unavailable"
        bob.send("<message to='%s' id='off2' type='chat'><body>again</body></message>" % a_jid)
        assert stanza_error(error_of(bob, "off2"))[1] == "service-unavailable"
        carol.send("<message to='%s' id='off3' type='chat'><body>from a friend</body></message>" % a_jid)
        assert [e for e in carol.collect(0.7) if e.get("type") == "error"] == []
    finally:
        bob.close()
        carol.close()

    alice = server.raw_login(a_jid, a_pw, "two")
    try:
        alice.send_presence()
        bodies = []
        for e in alice.collect(1.5):
            if is_message(e):
                bodies.append(e.findtext(q(NS_CLIENT, "body")))
        assert bodies == ["from a friend"], bodies
        assert blocklist(alice) == [b_jid]
    finally:
        alice.close()


def test_account_removal_forgets_the_list(server):
    server.register("shortlived", "pw-shortlived")
    c = server.raw_login("shortlived@localhost", "pw-shortlived")
    block(c, "x@example.net")
    c.close()
    assert server.ctl("unregister", "shortlived", "localhost").returncode == 0
    server.register("shortlived", "pw-shortlived")
    c = server.raw_login("shortlived@localhost", "pw-shortlived")
    try:
        assert blocklist(c) == []
    finally:
        c.close()
