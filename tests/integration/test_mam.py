"""Message archive (XEP-0313, urn:xmpp:mam:2): what is archived, stanza-ids
(XEP-0359), queries with filters and XEP-0059 paging both ways, preferences
(XEP-0441), limits and the admin commands - through slixmpp's plugins and
on the wire."""

import asyncio
import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from harness import run, slix_client
from rawxmpp import NS_CLIENT, next_id, q, stanza_error, to_string

NS_MAM = "urn:xmpp:mam:2"
NS_SID = "urn:xmpp:sid:0"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_FORWARD = "urn:xmpp:forward:0"
NS_DELAY = "urn:xmpp:delay"
NS_DATA = "jabber:x:data"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"

MAX_PAGE = 6
MAX_PER_USER = 12

SERVER_CONFIG = {
    "modules": {
        "carbons": {},
        "disco": {},
        "ping": {},
        "version": {"show_os": False},
        "offline": {},
        "roster": {},
        # retention_days > 0 starts the hourly purge (it runs once at start).
        "mam": {"max_page_size": MAX_PAGE, "max_messages_per_user": MAX_PER_USER, "retention_days": 3650},
    }
}

ID_RE = re.compile(r"^[0-9a-f]{16}$")
STAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


# ------------------------------------------------------------------ helpers


class Pair:
    """alice and bob, logged in with raw clients; bob available."""

    def __init__(self, server):
        self.alice_jid, alice_pw = server.new_user("alice")
        self.bob_jid, self.bob_pw = server.new_user("bob")
        self.alice = server.raw_login(self.alice_jid, alice_pw, "a1")
        self.bob = server.raw_login(self.bob_jid, self.bob_pw, "b1")
        self.bob.become_available()

    def close(self):
        self.alice.close()
        self.bob.close()

    def send(self, body, extra="", type_="chat"):
        """alice -> bob's bare JID; returns what bob got."""
        self.alice.send("<message to='%s' type='%s' id='%s'><body>%s</body>%s</message>"
                        % (self.bob_jid, type_, next_id("m"), body, extra))
        return self.bob.wait_for(lambda e: e.tag == q(NS_CLIENT, "message")
                                 and e.findtext(q(NS_CLIENT, "body")) == body)


@pytest.fixture
def pair(server):
    p = Pair(server)
    yield p
    p.close()


def stanza_ids(message):
    return [(s.get("by"), s.get("id")) for s in message.findall(q(NS_SID, "stanza-id"))]


def form(**fields):
    out = ["<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
           "<value>urn:xmpp:mam:2</value></field>"]
    for var, value in fields.items():
        values = value if isinstance(value, list) else [value]
        out.append("<field var='%s'>%s</field>" % (var.replace("_", "-"),
                                                   "".join("<value>%s</value>" % v for v in values)))
    out.append("</x>")
    return "".join(out)


def rsm(max_=None, after=None, before=None):
    out = "<set xmlns='%s'>" % NS_RSM
    if max_ is not None:
        out += "<max>%d</max>" % max_
    if after is not None:
        out += "<after>%s</after>" % after
    if before is not None:
        out += "<before>%s</before>" % before if before else "<before/>"
    return out + "</set>"


def query(client, inner="", queryid="q1", to=None, timeout=10.0):
    """An archive query; returns (result messages in arrival order, the iq
    answer). Anything else arriving meanwhile is ignored."""
    iq_id = next_id("mam")
    to_attr = " to='%s'" % to if to else ""
    client.send("<iq type='set' id='%s'%s><query xmlns='%s' queryid='%s'>%s</query></iq>"
                % (iq_id, to_attr, NS_MAM, queryid, inner))
    results = []
    while True:
        e = client.recv(timeout)
        assert e is not None, "no answer to the query; results so far: %s" % [to_string(r) for r in results]
        if e.tag == q(NS_CLIENT, "iq") and e.get("id") == iq_id:
            return results, e
        if e.tag == q(NS_CLIENT, "message") and e.find(q(NS_MAM, "result")) is not None:
            results.append(e)


def page(client, inner="", **kw):
    """A query that must succeed: (bodies, result ids, fin)."""
    results, iq = query(client, inner, **kw)
    assert iq.get("type") == "result", to_string(iq)
    fin = iq.find(q(NS_MAM, "fin"))
    assert fin is not None, to_string(iq)
    bodies = [r.findtext("/".join((q(NS_MAM, "result"), q(NS_FORWARD, "forwarded"), q(NS_CLIENT, "message"),
                                   q(NS_CLIENT, "body")))) for r in results]
    ids = [r.find(q(NS_MAM, "result")).get("id") for r in results]
    return bodies, ids, fin


def fin_set(fin):
    s = fin.find(q(NS_RSM, "set"))
    return s.findtext(q(NS_RSM, "first")), s.findtext(q(NS_RSM, "last")), int(s.findtext(q(NS_RSM, "count")))


def query_error(client, inner="", **kw):
    results, iq = query(client, inner, **kw)
    assert iq.get("type") == "error", to_string(iq)
    assert results == []
    return stanza_error(iq)[1]


def mam_client(jid, pw, server, **kw):
    c = slix_client(jid, pw, server, **kw)
    for plugin in ("xep_0030", "xep_0059", "xep_0297", "xep_0313", "xep_0359", "xep_0441"):
        c.register_plugin(plugin)
    return c


# ------------------------------------------------------- through slixmpp


def test_account_disco_advertises_the_archive(server):
    jid, pw = server.new_user("alice")

    async def scenario():
        alice = await mam_client(jid, pw, server).login(server.c2s_port)
        info = await alice["xep_0030"].get_info(jid=jid)
        features = set(info["disco_info"]["features"])
        assert {NS_MAM, NS_MAM + "#extended", NS_SID} <= features, features
        assert ("account", "registered", None, None) in info["disco_info"]["identities"], \
            info["disco_info"]["identities"]
        await alice.logout()

    run(scenario())


def test_slixmpp_archives_both_sides_and_queries_them(server):
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")

    async def scenario():
        alice = await mam_client(alice_jid, alice_pw, server).login(server.c2s_port)
        bob = await mam_client(bob_jid, bob_pw, server).login(server.c2s_port)
        stamped = []
        for i in range(3):
            alice.send_message(mto=bob_jid, mbody="hello %d" % i, mtype="chat")
            got = await bob.next_message()
            assert got["body"] == "hello %d" % i
            assert got["stanza_id"]["by"] == bob_jid, got
            stamped.append(got["stanza_id"]["id"])
        assert len(set(stamped)) == 3

        iq = await bob["xep_0313"].retrieve(with_jid=alice.boundjid.bare)
        results = iq["mam"]["results"]
        assert [r["mam_result"]["forwarded"]["stanza"]["body"] for r in results] == \
            ["hello 0", "hello 1", "hello 2"]
        # The archive id is the stanza-id the message was delivered with.
        assert [r["mam_result"]["id"] for r in results] == stamped
        for r in results:
            forwarded = r["mam_result"]["forwarded"]
            assert forwarded["stanza"]["from"] == alice.boundjid
            assert abs(forwarded["delay"]["stamp"] - datetime.now(timezone.utc)) < timedelta(minutes=5)
        assert iq["mam_fin"]["rsm"]["count"] == "3"

        # alice's own archive has her outgoing copies, without stanza-ids.
        iq = await alice["xep_0313"].retrieve()
        results = iq["mam"]["results"]
        assert [r["mam_result"]["forwarded"]["stanza"]["body"] for r in results] == \
            ["hello 0", "hello 1", "hello 2"]
        assert all(r["mam_result"]["forwarded"]["stanza"]["to"].bare == bob_jid for r in results)
        await asyncio.gather(alice.logout(), bob.logout())

    run(scenario())


def test_slixmpp_iterates_pages_both_ways(server):
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")

    async def scenario():
        alice = await mam_client(alice_jid, alice_pw, server).login(server.c2s_port)
        bob = await mam_client(bob_jid, bob_pw, server).login(server.c2s_port)
        for i in range(8):
            alice.send_message(mto=bob_jid, mbody="m%d" % i, mtype="chat")
            await bob.next_message()
        forward = [m["mam_result"]["forwarded"]["stanza"]["body"]
                   async for m in bob["xep_0313"].iterate(rsm={"max": 3})]
        assert forward == ["m%d" % i for i in range(8)]
        backward = [m["mam_result"]["forwarded"]["stanza"]["body"]
                    async for m in bob["xep_0313"].iterate(rsm={"max": 3}, reverse=True)]
        assert backward == ["m%d" % i for i in reversed(range(8))]
        await asyncio.gather(alice.logout(), bob.logout())

    run(scenario())


def test_slixmpp_preferences(server):
    jid, pw = server.new_user("alice")

    async def scenario():
        alice = await mam_client(jid, pw, server).login(server.c2s_port)
        default, always, never = await alice["xep_0441"].get_preferences()
        assert (default, set(always), set(never)) == ("always", set(), set())
        await alice["xep_0441"].set_preferences(default="never", always=["romeo@example.net"],
                                                never=["tybalt@example.net/sword"])
        default, always, never = await alice["xep_0441"].get_preferences()
        assert default == "never"
        assert {str(j) for j in always} == {"romeo@example.net"}
        assert {str(j) for j in never} == {"tybalt@example.net/sword"}
        await alice.logout()

    run(scenario())


# ------------------------------------------------------------- on the wire


def test_result_messages_come_before_the_fin(server, pair):
    for i in range(3):
        got = pair.send("wire %d" % i)
        assert len(stanza_ids(got)) == 1
    results, iq = query(pair.bob, queryid="f27")
    assert len(results) == 3
    for r in results:
        assert r.get("to") == pair.bob.jid, to_string(r)
        assert r.get("from") == pair.bob_jid, to_string(r)
        result = r.find(q(NS_MAM, "result"))
        assert result.get("queryid") == "f27"
        assert ID_RE.match(result.get("id")), to_string(r)
        forwarded = result.find(q(NS_FORWARD, "forwarded"))
        assert STAMP_RE.match(forwarded.find(q(NS_DELAY, "delay")).get("stamp")), to_string(r)
        original = forwarded.find(q(NS_CLIENT, "message"))
        assert original.get("from") == pair.alice.jid
        assert original.get("to") == pair.bob_jid
        assert original.get("type") == "chat"
        # The stored copy is the delivered one, stanza-id included.
        assert stanza_ids(original) == [(pair.bob_jid, result.get("id"))], to_string(r)
    assert iq.get("type") == "result", to_string(iq)
    fin = iq.find(q(NS_MAM, "fin"))
    assert fin.get("complete") == "true", to_string(iq)
    ids = [r.find(q(NS_MAM, "result")).get("id") for r in results]
    assert ids == sorted(ids)
    assert fin_set(fin) == (ids[0], ids[-1], 3)
    # Nothing of the query after its answer.
    late = [e for e in pair.bob.collect(0.3) if e.find(q(NS_MAM, "result")) is not None]
    assert late == [], [to_string(e) for e in late]


def test_paging_forward_backward_and_flipped(server, pair):
    for i in range(5):
        pair.send("p%d" % i)
    all_bodies = ["p%d" % i for i in range(5)]
    bodies, ids, fin = page(pair.bob, rsm(max_=2))
    assert bodies == all_bodies[0:2] and fin.get("complete") == "false"
    assert fin_set(fin) == (ids[0], ids[1], 5)
    bodies, ids2, fin = page(pair.bob, rsm(max_=2, after=ids[1]))
    assert bodies == all_bodies[2:4] and fin.get("complete") == "false"
    bodies, ids3, fin = page(pair.bob, rsm(max_=2, after=ids2[1]))
    assert bodies == all_bodies[4:5] and fin.get("complete") == "true"

    # An empty <before/> is the last page, oldest first within it.
    bodies, last_ids, fin = page(pair.bob, rsm(max_=2, before=""))
    assert bodies == all_bodies[3:5] and fin.get("complete") == "false"
    bodies, _, fin = page(pair.bob, rsm(max_=2, before=last_ids[0]))
    assert bodies == all_bodies[1:3] and fin.get("complete") == "false"
    bodies, _, fin = page(pair.bob, rsm(max_=2, before=ids[1]))
    assert bodies == all_bodies[0:1] and fin.get("complete") == "true"

    # flip-page: the same page, newest first; <first/> and <last/> unchanged.
    bodies, flipped, fin = page(pair.bob, rsm(max_=3, before="") + "<flip-page/>")
    assert bodies == list(reversed(all_bodies[2:5]))
    assert fin_set(fin)[:2] == (flipped[-1], flipped[0])

    # max 0: just the count.
    bodies, _, fin = page(pair.bob, rsm(max_=0))
    assert bodies == [] and fin_set(fin) == (None, None, 5)


def test_page_size_is_capped(server, pair):
    for i in range(MAX_PAGE + 2):
        pair.send("c%d" % i)
    bodies, _, fin = page(pair.bob, rsm(max_=100))
    assert len(bodies) == MAX_PAGE and fin.get("complete") == "false"
    bodies, _, fin = page(pair.bob)
    assert len(bodies) == MAX_PAGE and fin_set(fin)[2] == MAX_PAGE + 2


def test_filters(server, pair):
    carol_jid, carol_pw = server.new_user("carol")
    carol = server.raw_login(carol_jid, carol_pw, "phone")
    try:
        pair.send("from alice 1")
        carol.send("<message to='%s' type='chat'><body>from carol</body></message>" % pair.bob_jid)
        pair.bob.wait_for(lambda e: e.findtext(q(NS_CLIENT, "body")) == "from carol")
        pair.send("from alice 2")
        bodies, ids, _ = page(pair.bob)
        assert bodies == ["from alice 1", "from carol", "from alice 2"]

        assert page(pair.bob, form(**{"with": pair.alice_jid}))[0] == ["from alice 1", "from alice 2"]
        assert page(pair.bob, form(**{"with": carol_jid + "/phone"}))[0] == ["from carol"]
        assert page(pair.bob, form(**{"with": carol_jid + "/laptop"}))[0] == []
        assert page(pair.bob, form(after_id=ids[0]))[0] == bodies[1:]
        assert page(pair.bob, form(before_id=ids[2]))[0] == bodies[:2]
        assert page(pair.bob, form(after_id=ids[0], before_id=ids[2]))[0] == bodies[1:2]
        assert page(pair.bob, form(ids=[ids[2], ids[0]]))[0] == [bodies[0], bodies[2]]

        # start and end are inclusive, by the delay stamps of the results.
        results, _ = query(pair.bob)
        stamps = [r.find(".//" + q(NS_DELAY, "delay")).get("stamp") for r in results]
        # (Fixed-width stamps compare like the times they denote.)
        assert page(pair.bob, form(start=stamps[1]))[0] == [b for b, t in zip(bodies, stamps) if t >= stamps[1]]
        assert page(pair.bob, form(end=stamps[1]))[0] == [b for b, t in zip(bodies, stamps) if t <= stamps[1]]
        assert page(pair.bob, form(start=stamps[0], end=stamps[2]))[0] == bodies
        future = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert page(pair.bob, form(start=future))[0] == []
        assert page(pair.bob, form(end="2000-01-01T00:00:00+01:00"))[0] == []
    finally:
        carol.close()


def test_query_errors(server, pair):
    pair.send("e0")
    missing = "0000000000000001"
    # XEP-0313 §4.1.5: an unknown field is feature-not-implemented.
    assert query_error(pair.bob, form(**{"include-groupchat": "true"})) == "feature-not-implemented"
    assert query_error(pair.bob, form(start="last tuesday")) == "bad-request"
    # §4.1.3 and §4.3.3: ids that are not in the archive.
    assert query_error(pair.bob, form(after_id=missing)) == "item-not-found"
    assert query_error(pair.bob, form(before_id="not-an-id")) == "item-not-found"
    assert query_error(pair.bob, form(ids=[missing])) == "item-not-found"
    assert query_error(pair.bob, rsm(after=missing)) == "item-not-found"
    assert query_error(pair.bob, rsm(before=missing)) == "item-not-found"
    # Another user's archive (§7.1), or an id of another user's archive.
    assert query_error(pair.alice, to=pair.bob_jid) == "forbidden"
    _, bob_ids, _ = page(pair.bob)
    assert query_error(pair.alice, form(ids=bob_ids)) == "item-not-found"


def test_query_form(server, pair):
    answer = pair.bob.iq("get", None, "<query xmlns='%s'/>" % NS_MAM)
    assert answer.get("type") == "result", to_string(answer)
    x = answer.find("%s/%s" % (q(NS_MAM, "query"), q(NS_DATA, "x")))
    fields = {f.get("var"): f.get("type") for f in x.findall(q(NS_DATA, "field"))}
    assert fields == {"FORM_TYPE": "hidden", "with": "jid-single", "start": "text-single",
                      "end": "text-single", "before-id": "text-single", "after-id": "text-single",
                      "ids": "list-multi"}, fields


def test_metadata(server, pair):
    answer = pair.bob.iq("get", None, "<metadata xmlns='%s'/>" % NS_MAM)
    assert answer.get("type") == "result" and len(answer.find(q(NS_MAM, "metadata"))) == 0, to_string(answer)
    for i in range(3):
        pair.send("md%d" % i)
    _, ids, _ = page(pair.bob)
    answer = pair.bob.iq("get", None, "<metadata xmlns='%s'/>" % NS_MAM)
    md = answer.find(q(NS_MAM, "metadata"))
    assert md.find(q(NS_MAM, "start")).get("id") == ids[0], to_string(answer)
    assert md.find(q(NS_MAM, "end")).get("id") == ids[-1], to_string(answer)
    assert STAMP_RE.match(md.find(q(NS_MAM, "end")).get("timestamp"))


def test_spoofed_stanza_ids_are_replaced(server, pair):
    got = pair.send("spoof", "<stanza-id xmlns='%s' by='%s' id='forged'/>"
                             "<stanza-id xmlns='%s' by='room@muc.example' id='other'/>"
                    % (NS_SID, pair.bob_jid.upper(), NS_SID))
    ids = stanza_ids(got)
    assert ("room@muc.example", "other") in ids
    ours = [i for by, i in ids if by.lower() == pair.bob_jid]
    assert len(ours) == 1 and ours[0] != "forged" and ID_RE.match(ours[0]), ids
    assert page(pair.bob, form(ids=ours))[0] == ["spoof"]


def test_carbon_copies_carry_the_stanza_id(server, pair):
    ns_carbons = "urn:xmpp:carbons:2"
    with server.raw_login(pair.bob_jid, pair.bob_pw, "b2") as b2:
        b2.become_available()
        answer = b2.iq("set", None, "<enable xmlns='%s'/>" % ns_carbons)
        assert answer.get("type") == "result", to_string(answer)
        pair.alice.send("<message to='%s' type='chat'><body>to b1</body>"
                        "<stanza-id xmlns='%s' by='%s' id='forged'/></message>"
                        % (pair.bob.jid, NS_SID, pair.bob_jid))
        got = pair.bob.wait_for(lambda e: e.findtext(q(NS_CLIENT, "body")) == "to b1")
        carbon = b2.wait_for(lambda e: e.find(q(ns_carbons, "received")) is not None)
        copy = carbon.find("/".join((q(ns_carbons, "received"), q(NS_FORWARD, "forwarded"),
                                     q(NS_CLIENT, "message"))))
        assert copy.findtext(q(NS_CLIENT, "body")) == "to b1", to_string(carbon)
        assert len(stanza_ids(got)) == 1 and stanza_ids(got)[0][1] != "forged"
        assert stanza_ids(copy) == stanza_ids(got), to_string(carbon)


def test_what_is_not_archived(server, pair):
    hints = "urn:xmpp:hints"
    pair.send("kept")
    pair.send("no-store", "<no-store xmlns='%s'/>" % hints)
    pair.send("no-permanent-store", "<no-permanent-store xmlns='%s'/>" % hints)
    pair.send("headline", type_="headline")
    # A chat state alone is not archived; with a <store/> hint it is.
    pair.alice.send("<message to='%s' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/>"
                    "</message>" % pair.bob_jid)
    stored = pair.bob.wait_for(lambda e: e.find(q("http://jabber.org/protocol/chatstates", "active")) is not None)
    assert stanza_ids(stored) == []
    pair.alice.send("<message to='%s' type='chat'><store xmlns='%s'/><gone "
                    "xmlns='http://jabber.org/protocol/chatstates'/></message>" % (pair.bob_jid, hints))
    stored = pair.bob.wait_for(lambda e: e.find(q("http://jabber.org/protocol/chatstates", "gone")) is not None)
    assert len(stanza_ids(stored)) == 1
    results, _ = query(pair.bob)
    assert len(results) == 2
    assert results[0].findtext(".//" + q(NS_CLIENT, "body")) == "kept"
    got = pair.send("no-store 2", "<no-store xmlns='%s'/>" % hints)
    assert stanza_ids(got) == []


def test_message_to_self_is_archived_once(server, pair):
    pair.alice.send("<message to='%s' type='chat'><body>note to self</body></message>" % pair.alice_jid)
    bodies, _, _ = page(pair.alice)
    assert bodies == ["note to self"]


def test_preferences_decide_and_are_enforced(server, pair):
    answer = pair.bob.iq("get", None, "<prefs xmlns='%s'/>" % NS_MAM)
    prefs = answer.find(q(NS_MAM, "prefs"))
    assert prefs.get("default") == "always", to_string(answer)

    answer = pair.bob.iq("set", None, "<prefs xmlns='%s' default='never'><always><jid>%s</jid></always>"
                                      "<never/></prefs>" % (NS_MAM, pair.alice_jid.upper()))
    assert answer.get("type") == "result", to_string(answer)
    prefs = answer.find(q(NS_MAM, "prefs"))
    assert prefs.get("default") == "never"
    assert [j.text for j in prefs.iter(q(NS_MAM, "jid"))] == [pair.alice_jid]

    carol_jid, carol_pw = server.new_user("carol")
    carol = server.raw_login(carol_jid, carol_pw)
    try:
        carol.send("<message to='%s' type='chat'><body>not archived</body></message>" % pair.bob_jid)
        got = pair.bob.wait_for(lambda e: e.findtext(q(NS_CLIENT, "body")) == "not archived")
        assert stanza_ids(got) == []
        assert len(stanza_ids(pair.send("archived"))) == 1
        assert page(pair.bob)[0] == ["archived"]
        # The sender's side follows the sender's preferences.
        assert page(carol)[0] == ["not archived"]
    finally:
        carol.close()

    answer = pair.bob.iq("set", None, "<prefs xmlns='%s' default='sometimes'/>" % NS_MAM)
    assert stanza_error(answer)[1] == "bad-request", to_string(answer)


def test_default_roster_archives_contacts_only(server, pair):
    """XEP-0313 §7: with default='roster' only messages to and from JIDs in
    the user's roster are archived; a stranger's carry no stanza-id."""
    bob = pair.bob_jid.split("@")[0]
    r = server.ctl("add_rosteritem", bob, "localhost", pair.alice_jid.split("@")[0], "localhost", "", "",
                   "none")
    assert r.returncode == 0, (r.stdout, r.stderr)
    answer = pair.bob.iq("set", None, "<prefs xmlns='%s' default='roster'/>" % NS_MAM)
    assert answer.find(q(NS_MAM, "prefs")).get("default") == "roster", to_string(answer)

    carol_jid, carol_pw = server.new_user("carol")
    carol = server.raw_login(carol_jid, carol_pw)
    try:
        carol.send("<message to='%s' type='chat'><body>from a stranger</body></message>" % pair.bob_jid)
        got = pair.bob.wait_for(lambda e: e.findtext(q(NS_CLIENT, "body")) == "from a stranger")
        assert stanza_ids(got) == []
        got = pair.send("from a contact")
        assert [by for by, _ in stanza_ids(got)] == [pair.bob_jid]
        assert page(pair.bob)[0] == ["from a contact"]

        # (to full JIDs: neither carol nor alice sent initial presence)
        pair.bob.send("<message to='%s' type='chat'><body>to a stranger</body></message>" % carol.jid)
        carol.wait_for(lambda e: e.findtext(q(NS_CLIENT, "body")) == "to a stranger")
        pair.bob.send("<message to='%s' type='chat'><body>to a contact</body></message>" % pair.alice.jid)
        pair.alice.wait_for(lambda e: e.findtext(q(NS_CLIENT, "body")) == "to a contact")
        # The sender's copy is written once the roster answered, after the
        # message left: wait for it.
        deadline = time.monotonic() + 10
        while True:
            bodies = page(pair.bob)[0]
            if len(bodies) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert bodies == ["from a contact", "to a contact"]
    finally:
        carol.close()


def test_offline_messages_carry_their_archive_id(server):
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")
    with server.raw_login(alice_jid, alice_pw) as alice:
        # With stream management, the ack of the message means it is in
        # offline storage (committed), so bob's login below will find it.
        alice.send("<enable xmlns='urn:xmpp:sm:3'/>")
        alice.wait_for(q("urn:xmpp:sm:3", "enabled"))
        alice.send("<message to='%s' type='chat'><body>while you were out</body></message>" % bob_jid)
        deadline = time.monotonic() + 10
        while True:
            alice.send("<r xmlns='urn:xmpp:sm:3'/>")
            if alice.wait_for(q("urn:xmpp:sm:3", "a")).get("h") == "1":
                break
            assert time.monotonic() < deadline, "the message was never acknowledged"
            time.sleep(0.05)
    with server.raw_login(bob_jid, bob_pw) as bob:
        bob.send_presence()
        got = bob.wait_for(lambda e: e.findtext(q(NS_CLIENT, "body")) == "while you were out")
        ours = [i for by, i in stanza_ids(got) if by == bob_jid]
        assert len(ours) == 1, to_string(got)
        _, ids, _ = page(bob)
        assert ids == ours


def test_per_user_limit_keeps_the_newest(server, pair):
    for i in range(MAX_PER_USER + 3):
        pair.send("l%d" % i)
    bodies = []
    after = None
    while True:
        got, ids, fin = page(pair.bob, rsm(max_=MAX_PAGE, after=after))
        bodies += got
        if fin.get("complete") == "true":
            break
        after = ids[-1]
    assert bodies == ["l%d" % i for i in range(3, MAX_PER_USER + 3)]
    r = server.ctl("get_mam_count", pair.bob_jid.split("@")[0], "localhost")
    assert r.returncode == 0 and r.stdout.strip() == str(MAX_PER_USER), (r.stdout, r.stderr)


def test_xmppctl_delete_old_mam_messages(server, pair):
    user = pair.bob_jid.split("@")[0]
    pair.send("old news")
    r = server.ctl("get_mam_count", user, "localhost")
    assert r.returncode == 0 and r.stdout.strip() == "1", (r.stdout, r.stderr)
    # Younger than a day: kept.
    r = server.ctl("delete_old_mam_messages", "1")
    assert r.returncode == 0 and r.stdout.startswith("Deleted "), (r.stdout, r.stderr)
    assert server.ctl("get_mam_count", user, "localhost").stdout.strip() == "1"
    r = server.ctl("delete_old_mam_messages", "0")
    assert r.returncode == 0 and re.match(r"Deleted [1-9]\d* messages", r.stdout), (r.stdout, r.stderr)
    assert server.ctl("get_mam_count", user, "localhost").stdout.strip() == "0"
    assert page(pair.bob)[0] == []
    r = server.ctl("delete_old_mam_messages", "soon")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    # The periodic purge ran at start (retention_days is set).
    assert "retention purge removed" in server.log_text()


def test_account_removal_deletes_the_archive(server, pair):
    user = pair.bob_jid.split("@")[0]
    pair.send("forget me")
    pair.bob.iq("set", None, "<prefs xmlns='%s' default='never'/>" % NS_MAM)
    assert server.ctl("get_mam_count", user, "localhost").stdout.strip() == "1"
    pair.bob.close()
    r = server.ctl("unregister", user, "localhost")
    assert r.returncode == 0, (r.stdout, r.stderr)
    server.register(user, "new-password-1")
    # The archive goes in a storage job of its own after the account's.
    deadline = time.monotonic() + 10
    while server.ctl("get_mam_count", user, "localhost").stdout.strip() != "0":
        assert time.monotonic() < deadline, "the archive of a removed account is still there"
        time.sleep(0.1)
    with server.raw_login(pair.bob_jid, "new-password-1") as bob:
        answer = bob.iq("get", None, "<prefs xmlns='%s'/>" % NS_MAM)
        assert answer.find(q(NS_MAM, "prefs")).get("default") == "always", to_string(answer)
