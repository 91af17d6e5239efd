"""XEP-0077 in-band registration with the `register` module: slixmpp
registers an account on a fresh stream and logs in with it; the form, a
taken name, the per-address limit, and once logged in a password change and
the account's removal."""

import asyncio

from harness import run, slix_client
from rawxmpp import NS_CLIENT, q, stanza_error, to_string

NS_REGISTER = "jabber:iq:register"
NS_FEATURE = "http://jabber.org/features/iq-register"
LIMIT = 4

SERVER_CONFIG = {"modules": {"register": {"registrations_per_ip_per_hour": LIMIT}}}


def unauthenticated(server):
    c = server.raw()
    c.open_stream()
    c.starttls()
    return c


def test_slixmpp_registers_in_band_then_logs_in(server):
    """A real client's XEP-0077 support: slixmpp's xep_0077 plugin fills the
    form on a new stream, then authenticates with the new account. First in
    this module: it uses one of the per-address registrations."""

    async def scenario():
        c = slix_client("helen@localhost", "helen-pw-1", server)
        c.register_plugin("xep_0077")
        c["xep_0077"].force_registration = True
        # slixmpp 1.8.3 holds every stanza back until its session has
        # started (xmlstream.send, "NOT SENT"), its own registration iq too;
        # later versions let it through. This lets it through here.
        c._always_send_everything = True
        registered = asyncio.get_running_loop().create_future()

        async def on_register(form):
            resp = c.Iq()
            resp["type"] = "set"
            resp["register"]["username"] = "helen"
            resp["register"]["password"] = "helen-pw-1"
            try:
                await resp.send()
                registered.set_result(True)
            except Exception as e:  # an IqError names the condition
                registered.set_exception(e)

        c.add_event_handler("register", on_register)
        await c.login(server.c2s_port)
        assert await asyncio.wait_for(registered, 10)
        assert c.boundjid.bare == "helen@localhost"
        c.disconnect()

    run(scenario())


def test_the_form_and_a_new_account_a_taken_name_and_the_limit_per_address(server):
    """One test, because the limit counts every attempt from 127.0.0.1
    (slixmpp's above was the first of 4)."""
    with unauthenticated(server) as c:
        assert c.feature(NS_FEATURE, "register") is not None, to_string(c.features)
        form = c.iq("get", None, "<query xmlns='%s'/>" % NS_REGISTER)
        assert form.get("type") == "result", to_string(form)
        query = form.find(q(NS_REGISTER, "query"))
        assert query.find(q(NS_REGISTER, "username")) is not None
        assert query.find(q(NS_REGISTER, "password")) is not None
        assert query.findtext(q(NS_REGISTER, "instructions"))
        made = c.iq("set", None, "<query xmlns='%s'><username>carol</username><password>carol-pw-1</password>"
                                 "</query>" % NS_REGISTER)
        assert made.get("type") == "result", to_string(made)
        taken = c.iq("set", None, "<query xmlns='%s'><username>carol</username><password>other</password>"
                                  "</query>" % NS_REGISTER)
        assert stanza_error(taken) == ("cancel", "conflict"), to_string(taken)
        missing = c.iq("set", None, "<query xmlns='%s'><username>dave</username></query>" % NS_REGISTER)
        assert stanza_error(missing) == ("modify", "not-acceptable"), to_string(missing)
    # The new account logs in; the two attempts above counted, one is left.
    with server.raw_login("carol@localhost", "carol-pw-1") as carol:
        carol.end_stream()
    with unauthenticated(server) as c:
        ok = c.iq("set", None, "<query xmlns='%s'><username>erin</username><password>erin-pw-1</password>"
                               "</query>" % NS_REGISTER)
        assert ok.get("type") == "result", to_string(ok)
        refused = c.iq("set", None, "<query xmlns='%s'><username>frank</username><password>frank-pw</password>"
                                    "</query>" % NS_REGISTER)
        assert stanza_error(refused) == ("wait", "resource-constraint"), to_string(refused)
        assert "too many registrations" in to_string(refused)
    assert server.ctl("check_account", "frank", "localhost").returncode != 0


def test_a_stream_that_asks_too_often_is_closed(server):
    with unauthenticated(server) as c:
        for _ in range(10):
            r = c.iq("get", None, "<query xmlns='%s'/>" % NS_REGISTER)
            assert r.get("type") == "result"
        c.send("<iq type='get' id='x11'><query xmlns='%s'/></iq>" % NS_REGISTER)
        elems = c.read_until_closed(5)
        assert any("policy-violation" in to_string(e) for e in elems), [to_string(e) for e in elems]


def test_before_starttls_an_iq_is_still_not_authorized(server):
    c = server.raw()
    c.open_stream()
    c.send("<iq type='get' id='r1'><query xmlns='%s'/></iq>" % NS_REGISTER)
    elems = c.read_until_closed(5)
    assert any("not-authorized" in to_string(e) for e in elems), [to_string(e) for e in elems]
    c.close()


def test_logged_in_a_user_changes_the_password_then_removes_the_account(server):
    jid, pw = server.new_user("gina")
    user = jid.split("@")[0]
    with server.raw_login(jid, pw) as c:
        info = c.iq("get", None, "<query xmlns='%s'/>" % NS_REGISTER)
        query = info.find(q(NS_REGISTER, "query"))
        assert query.find(q(NS_REGISTER, "registered")) is not None, to_string(info)
        assert query.findtext(q(NS_REGISTER, "username")) == user
        changed = c.iq("set", None, "<query xmlns='%s'><username>%s</username><password>new-pw-2</password>"
                                    "</query>" % (NS_REGISTER, user))
        assert changed.get("type") == "result", to_string(changed)
        c.end_stream()
    with server.raw_login(jid, "new-pw-2") as c:
        gone = c.iq("set", None, "<query xmlns='%s'><remove/></query>" % NS_REGISTER)
        assert gone.get("type") == "result", to_string(gone)
    assert server.ctl("check_account", user, "localhost").returncode != 0
