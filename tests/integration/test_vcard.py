"""XEP-0054 vcard-temp and the XEP-0153 avatar hash: set and get through
slixmpp and on the wire, others' vCards, the size limit, malformed photos,
the hash the server puts into the user's presence, xmppctl get_vcard and
set_vcard, account removal."""

import asyncio
import base64
import hashlib
import time

from harness import run, slix_client
from rawxmpp import NS_CLIENT, q, stanza_error, to_string

NS_VCARD = "vcard-temp"
NS_UPDATE = "vcard-temp:x:update"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

MAX_BYTES = 4096

SERVER_CONFIG = {
    "modules": {
        "disco": {},
        "ping": {},
        "version": {"show_os": False},
        "vcard": {"max_bytes": MAX_BYTES},
        "blocking": {},
    }
}

# A tiny "image": any bytes will do for the hash.
AVATAR = bytes(range(256)) * 3
AVATAR_B64 = base64.b64encode(AVATAR).decode()
AVATAR_SHA1 = hashlib.sha1(AVATAR).hexdigest()


def vcard_xml(fields: str) -> str:
    return "<vCard xmlns='%s'>%s</vCard>" % (NS_VCARD, fields)


def photo_xml(b64: str) -> str:
    # Wrapped at 76 columns, as many clients do.
    lines = "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
    return "<PHOTO><TYPE>image/png</TYPE><BINVAL>%s</BINVAL></PHOTO>" % lines


def get_vcard(c, to=None):
    answer = c.iq("get", to, "<vCard xmlns='%s'/>" % NS_VCARD)
    return answer


def set_vcard(c, fields):
    return c.iq("set", None, vcard_xml(fields))


def photo_of(presence):
    x = presence.find(q(NS_UPDATE, "x"))
    if x is None:
        return None
    return x.findtext(q(NS_UPDATE, "photo"))


def test_feature_advertised(server):
    jid, pw = server.new_user("disco")
    c = server.raw_login(jid, pw)
    try:
        answer = c.iq("get", "localhost", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
        features = {f.get("var") for f in answer.iter(q("http://jabber.org/protocol/disco#info", "feature"))}
        assert NS_VCARD in features, sorted(features)
    finally:
        c.close()


def test_round_trip_through_slixmpp_and_read_by_another_user(server):
    jid, pw = server.new_user("juliet")
    other_jid, other_pw = server.new_user("romeo")

    async def scenario():
        juliet = slix_client(jid, pw, server)
        romeo = slix_client(other_jid, other_pw, server)
        for c in (juliet, romeo):
            c.register_plugin("xep_0054")
        await juliet.login(server.c2s_port)
        await romeo.login(server.c2s_port)

        empty = await juliet["xep_0054"].get_vcard(jid, cached=False, timeout=5)
        assert empty["vcard_temp"]["FN"] == ""

        card = juliet["xep_0054"].make_vcard()
        card["FN"] = "Juliet Capulet \u2764"
        card["NICKNAME"] = "jc"
        card["PHOTO"]["TYPE"] = "image/png"
        card["PHOTO"]["BINVAL"] = AVATAR
        await juliet["xep_0054"].publish_vcard(card, timeout=5)

        mine = await juliet["xep_0054"].get_vcard(jid, cached=False, timeout=5)
        assert mine["vcard_temp"]["FN"] == "Juliet Capulet \u2764"
        assert mine["vcard_temp"]["NICKNAME"] in ("jc", ["jc"])  # slixmpp: a list
        theirs = await romeo["xep_0054"].get_vcard(jid, cached=False, timeout=5)
        assert theirs["vcard_temp"]["FN"] == "Juliet Capulet \u2764"
        assert theirs["vcard_temp"]["PHOTO"]["BINVAL"] == AVATAR
        await asyncio.gather(juliet.logout(), romeo.logout())

    run(scenario())


def test_raw_rules(server):
    a_jid, a_pw = server.new_user("rawcard")
    b_jid, b_pw = server.new_user("other")
    alice = server.raw_login(a_jid, a_pw)
    bob = server.raw_login(b_jid, b_pw)
    try:
        # no vCard yet: an empty one
        answer = get_vcard(bob, a_jid)
        assert answer.get("type") == "result", to_string(answer)
        card = answer.find(q(NS_VCARD, "vCard"))
        assert card is not None and len(card) == 0, to_string(answer)

        answer = set_vcard(alice, "<FN>Alice &amp; Co</FN><N><GIVEN>Alice</GIVEN></N>")
        assert answer.get("type") == "result", to_string(answer)
        card = get_vcard(bob, a_jid).find(q(NS_VCARD, "vCard"))
        assert card.findtext(q(NS_VCARD, "FN")) == "Alice & Co"
        assert card.findtext("%s/%s" % (q(NS_VCARD, "N"), q(NS_VCARD, "GIVEN"))) == "Alice"

        # only the owner may set it
        answer = bob.iq("set", a_jid, vcard_xml("<FN>hijacked</FN>"))
        assert stanza_error(answer)[1] == "forbidden", to_string(answer)
        # a user that does not exist looks like one without the feature
        answer = get_vcard(alice, "nobody-here@localhost")
        assert stanza_error(answer)[1] == "service-unavailable", to_string(answer)
        # not a vCard
        answer = alice.iq("get", None, "<query xmlns='%s'/>" % NS_VCARD)
        assert stanza_error(answer)[1] == "bad-request", to_string(answer)
        # a photo that is not base64
        answer = set_vcard(alice, "<PHOTO><BINVAL>not base64 !</BINVAL></PHOTO>")
        assert stanza_error(answer)[1] == "bad-request", to_string(answer)

        # too big: refused with a text, the stored one is untouched
        answer = set_vcard(alice, "<FN>%s</FN>" % ("x" * MAX_BYTES))
        assert stanza_error(answer) == ("modify", "not-acceptable"), to_string(answer)
        assert answer.find("%s/%s" % (q(NS_CLIENT, "error"), q(NS_STANZAS, "text"))) is not None
        card = get_vcard(alice).find(q(NS_VCARD, "vCard"))
        assert card.findtext(q(NS_VCARD, "FN")) == "Alice & Co"

        # an empty vCard removes it
        assert set_vcard(alice, "").get("type") == "result"
        card = get_vcard(bob, a_jid).find(q(NS_VCARD, "vCard"))
        assert len(card) == 0
    finally:
        alice.close()
        bob.close()


def test_avatar_hash_in_presence(server):
    jid, pw = server.new_user("avatar")
    peer_jid, peer_pw = server.new_user("peer")
    first = server.raw_login(jid, pw, "first")
    second = server.raw_login(jid, pw, "second")
    peer = server.raw_login(peer_jid, peer_pw, "p")
    try:
        second.become_available()
        # No vCard: the server says "no avatar" with an empty <photo/>. The
        # server reads the hash when the session binds; a presence sent
        # before that read is done goes out as the client wrote it, so the
        # first one may lack the element.
        for attempt in range(20):
            first.send("<presence id='p%d'/>" % attempt)
            seen = second.wait_for(lambda e: e.tag == q(NS_CLIENT, "presence") and e.get("from") == first.jid)
            if photo_of(seen) is not None:
                break
            time.sleep(0.05)
        assert photo_of(seen) == "", to_string(seen)

        assert set_vcard(first, "<FN>Av</FN>" + photo_xml(AVATAR_B64)).get("type") == "result"
        # The client's own (stale) hash is replaced with the server's.
        first.send("<presence><show>away</show><x xmlns='%s'><photo>0123</photo></x></presence>" % NS_UPDATE)
        seen = second.wait_for(lambda e: e.tag == q(NS_CLIENT, "presence") and e.get("from") == first.jid)
        assert photo_of(seen) == AVATAR_SHA1, to_string(seen)
        assert len(seen.findall(q(NS_UPDATE, "x"))) == 1, to_string(seen)
        assert seen.findtext(q(NS_CLIENT, "show")) == "away"

        # Directed presence carries it too.
        first.send("<presence to='%s'/>" % peer.jid)
        seen = peer.wait_for(lambda e: e.tag == q(NS_CLIENT, "presence") and e.get("from") == first.jid)
        assert photo_of(seen) == AVATAR_SHA1, to_string(seen)

        # unavailable presence does not
        first.send("<presence type='unavailable' to='%s'/>" % peer.jid)
        seen = peer.wait_for(lambda e: e.tag == q(NS_CLIENT, "presence") and e.get("type") == "unavailable")
        assert seen.find(q(NS_UPDATE, "x")) is None, to_string(seen)
    finally:
        first.close()
        second.close()
        peer.close()


def test_avatar_set_through_slixmpp_xep_0153(server):
    jid, pw = server.new_user("slixavatar")

    async def scenario():
        setter = slix_client(jid, pw, server)
        watcher = slix_client(jid, pw, server)
        for c in (setter, watcher):
            c.register_plugin("xep_0054")
            c.register_plugin("xep_0153")
        await setter.login(server.c2s_port)
        await watcher.login(server.c2s_port)
        await setter["xep_0153"].set_avatar(avatar=AVATAR, mtype="image/png", timeout=5)

        def has_hash(p):
            return p["from"] == setter.boundjid and p["vcard_temp_update"]["photo"] == AVATAR_SHA1

        await watcher.next_presence(has_hash, timeout=5)
        await asyncio.gather(setter.logout(), watcher.logout())

    run(scenario())


def test_xmppctl_get_and_set(server):
    jid, pw = server.new_user("ctlcard")
    user = jid.split("@")[0]
    r = server.ctl("set_vcard", user, "localhost", "FN", "Set By Admin")
    assert r.returncode == 0, r.stdout + r.stderr
    r = server.ctl("set_vcard", user, "localhost", "n.given", "Given")
    assert r.returncode == 0, r.stdout + r.stderr
    r = server.ctl("get_vcard", user, "localhost", "FN")
    assert (r.returncode, r.stdout) == (0, "Set By Admin\n"), r
    r = server.ctl("get_vcard", user, "localhost", "N.GIVEN")
    assert (r.returncode, r.stdout) == (0, "Given\n"), r
    r = server.ctl("get_vcard", user, "localhost", "NICKNAME")
    assert (r.returncode, r.stdout) == (0, "\n"), r

    c = server.raw_login(jid, pw)
    try:
        card = get_vcard(c).find(q(NS_VCARD, "vCard"))
        assert card.findtext(q(NS_VCARD, "FN")) == "Set By Admin"
        # xmppctl keeps what the client stored
        assert set_vcard(c, "<FN>Mine</FN><NICKNAME>nick</NICKNAME>" + photo_xml(AVATAR_B64)).get("type") == "result"
        assert server.ctl("set_vcard", user, "localhost", "FN", "Changed").returncode == 0
        card = get_vcard(c).find(q(NS_VCARD, "vCard"))
        assert card.findtext(q(NS_VCARD, "FN")) == "Changed"
        assert card.findtext(q(NS_VCARD, "NICKNAME")) == "nick"
        assert card.find(q(NS_VCARD, "PHOTO")) is not None
    finally:
        c.close()

    assert server.ctl("get_vcard", "no-such-user", "localhost", "FN").returncode == 1
    assert server.ctl("set_vcard", "no-such-user", "localhost", "FN", "x").returncode == 1
    assert server.ctl("set_vcard", user, "localhost", "<bad>", "x").returncode == 2
    assert server.ctl("get_vcard", user, "localhost").returncode == 2  # arity


def test_account_removal_deletes_the_vcard(server):
    server.register("cardgone", "pw-cardgone")
    c = server.raw_login("cardgone@localhost", "pw-cardgone")
    assert set_vcard(c, "<FN>Soon gone</FN>").get("type") == "result"
    c.close()
    assert server.ctl("unregister", "cardgone", "localhost").returncode == 0
    server.register("cardgone", "pw-cardgone")
    r = server.ctl("get_vcard", "cardgone", "localhost", "FN")
    assert (r.returncode, r.stdout) == (0, "\n"), r
