"""Blocking (XEP-0191) together with presence subscriptions (RFC 6121): a
subscribed contact who gets blocked is told the user went away (§3.3) and
gets the current presence back on unblock (§3.4); at login neither the probe
answers nor the stored subscription requests bypass either side's block
list."""

import time

from rawxmpp import NS_CLIENT, q, to_string

NS_BLOCKING = "urn:xmpp:blocking"

SERVER_CONFIG = {"modules": {"roster": {}, "blocking": {}}}


def bare(jid):
    return jid.split("/")[0]


def block(c, *jids, verb="block"):
    items = "".join("<item jid='%s'/>" % j for j in jids)
    answer = c.iq("set", None, "<%s xmlns='%s'>%s</%s>" % (verb, NS_BLOCKING, items, verb))
    assert answer.get("type") == "result", to_string(answer)


def unblock(c, *jids):
    block(c, *jids, verb="unblock")


def ctl_ok(server, *args):
    r = server.ctl(*args)
    assert r.returncode == 0, "xmppctl %s: %d %s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr)


def mutual(server, a_jid, b_jid):
    ctl_ok(server, "add_rosteritem", a_jid.split("@")[0], "localhost", b_jid.split("@")[0], "localhost",
           "", "", "both")


def presences(c, frm_bare, wait=0.8, type_=None):
    """Presence stanzas from any resource of frm_bare that arrive within `wait` s."""
    return [e for e in c.collect(wait)
            if e.tag == q(NS_CLIENT, "presence") and bare(e.get("from") or "") == frm_bare
            and (type_ is None or (e.get("type") or "") == type_)]


def wait_presence(c, frm, type_="", timeout=5.0):
    return c.wait_for(lambda e: e.tag == q(NS_CLIENT, "presence") and e.get("from") == frm
                      and (e.get("type") or "") == type_, timeout)


def logout(c):
    c.end_stream()
    c.read_until_closed(5)
    c.close()


def test_block_sends_unavailable_and_unblock_current_presence(server):
    """XEP-0191 §3.3: blocking a subscribed contact sends them the user's
    unavailable; §3.4: unblocking sends the current presence again."""
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")
    mutual(server, alice_jid, bob_jid)
    with server.raw_login(bob_jid, bob_pw, "phone") as bob, \
            server.raw_login(alice_jid, alice_pw, "desk") as alice:
        bob.become_available()
        alice.send("<presence><status>here</status></presence>")
        wait_presence(bob, alice.jid)
        block(alice, bob_jid)
        wait_presence(bob, alice.jid, "unavailable")
        # and nothing from alice after that
        alice.send("<presence><status>still here</status></presence>")
        assert presences(bob, alice_jid) == []
        unblock(alice, bob_jid)
        back = wait_presence(bob, alice.jid)
        assert back.findtext(q(NS_CLIENT, "status")) == "still here", to_string(back)


def test_probe_answers_at_login_honour_the_block_both_ways(server):
    """A blocked subscribed contact that is online: the blocker logging in
    does not see the contact's presence, and the contact logging in does not
    see the blocker's."""
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")
    mutual(server, alice_jid, bob_jid)
    with server.raw_login(alice_jid, alice_pw, "setup") as alice:
        block(alice, bob_jid)
    with server.raw_login(bob_jid, bob_pw, "phone") as bob:
        bob.become_available()
        # alice logs in while bob is online: her probe must not show bob
        with server.raw_login(alice_jid, alice_pw, "desk") as alice:
            alice.become_available()
            assert presences(alice, bob_jid) == [], "blocked bob's presence reached alice"
            assert presences(bob, alice_jid) == [], "alice's presence reached blocked bob"
            # bob logs in again while alice is online: his probe must not show alice
            with server.raw_login(bob_jid, bob_pw, "tablet") as bob2:
                bob2.become_available()
                assert presences(bob2, alice_jid) == [], "alice's presence reached blocked bob at login"
                # the block is the only reason: once lifted, presence flows
                unblock(alice, bob_jid)
                wait_presence(bob2, alice.jid)


def test_stored_request_from_blocked_contact_not_shown_at_login(server):
    """A subscription request stored while the user was offline is not shown
    once its sender is blocked; it is kept and shown after the unblock."""
    alice_jid, alice_pw = server.new_user("alice")
    carol_jid, carol_pw = server.new_user("carol")
    with server.raw_login(carol_jid, carol_pw, "tab") as carol:
        carol.send("<presence to='%s' type='subscribe'/>" % alice_jid)
        carol.iq("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
    time.sleep(0.3)
    with server.raw_login(alice_jid, alice_pw, "desk") as alice:
        block(alice, carol_jid)  # before her initial presence
        alice.send_presence()
        assert presences(alice, carol_jid, wait=1.0) == [], "blocked carol's request was shown"
        unblock(alice, carol_jid)
        logout(alice)
    with server.raw_login(alice_jid, alice_pw, "desk") as alice:
        alice.send_presence()
        got = presences(alice, carol_jid, wait=2.0, type_="subscribe")
        assert len(got) == 1, [to_string(e) for e in got]
