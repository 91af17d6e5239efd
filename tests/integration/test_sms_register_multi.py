"""Phone-number registration with `devices: multi`: each verified device
keeps its own key, xmppctl list_devices shows them, revoke_device removes
one and ends only the sessions that logged in with it. Also here, where
gateway_retries is 1: a send that fails once and then works, one that
fails twice (503), and countries_allow. The single-device behaviour and
the rest of the API: test_sms_register.py."""

import asyncio
import time

from harness import run, slix_client
from rawxmpp import NS_CLIENT, q, to_string
from sms_helpers import (Api, Gateway, assert_ended_not_authorized, ctl_ok, device_key, devices, jid_of,
                         new_number, plain_auth, scram_auth)

GATEWAY = Gateway()

SERVER_CONFIG = {
    "http": {},
    "modules": {
        "sms_register": {
            "devices": "multi",
            "gateway": "command",
            "gateway_command": str(GATEWAY.command),
            "gateway_retries": 1,
            "gateway_timeout": 5,
            "pins_per_number_per_hour": 10,
            "countries_allow": "DE",
        },
    },
}


def wait_for_last_login(server, jid, device, timeout=5.0):
    """list_devices' last_login of `device` once it is set (it is written
    after the login, in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        found = {d[0]: d for d in devices(server, jid)}[device]
        if found[3] != "never":
            return found[3]
        assert time.monotonic() < deadline, "last_login of %s is still never" % device
        time.sleep(0.1)


def test_each_device_keeps_its_key(server):
    api = Api(server)
    phone = new_number()
    jid, user = jid_of(phone), phone[1:]
    key1, key2 = device_key("phone"), device_key("tablet")
    first = api.register(GATEWAY, phone, key1, "Phone")
    assert first["created"] is True

    async def scenario():
        c1 = slix_client(jid, key1, server, sasl_mech="SCRAM-SHA-256")
        await c1.login(server.c2s_port)
        # A second device registers while the first is online: nothing ends.
        second = await asyncio.get_running_loop().run_in_executor(
            None, lambda: api.register(GATEWAY, phone, key2, "Tablet", expect=200))
        assert second["created"] is False and second["jid"] == jid
        assert second["device"] != first["device"]
        c2 = slix_client(jid, key2, server, sasl_mech="SCRAM-SHA-256")
        await c2.login(server.c2s_port)
        # Both sessions work: each gets a message from the other.
        c1.send_message(mto=c2.boundjid, mbody="from the phone")
        c2.send_message(mto=c1.boundjid, mbody="from the tablet")
        assert (await c2.next_message())["body"] == "from the phone"
        assert (await c1.next_message())["body"] == "from the tablet"
        assert not c1.stream_errors and not c2.stream_errors
        await c1.logout()
        await c2.logout()
        return second

    second = run(scenario())
    listed = devices(server, jid)
    # Oldest first, to the second: the two may share one.
    assert sorted((d[0], d[1]) for d in listed) == sorted(
        [(first["device"], "Phone"), (second["device"], "Tablet")]), listed
    for d in listed:
        assert d[2].endswith("Z") and d[2] != "never", d
        wait_for_last_login(server, jid, d[0])
    assert plain_auth(server, user, key1) == "success"
    assert plain_auth(server, user, key2) == "success"


def test_revoke_device_ends_only_its_sessions(server):
    api = Api(server)
    phone = new_number()
    jid, user = jid_of(phone), phone[1:]
    key1, key2 = device_key("lost"), device_key("kept")
    lost = api.register(GATEWAY, phone, key1, "lost phone")["device"]
    kept = api.register(GATEWAY, phone, key2, "kept phone", expect=200)["device"]
    sender_jid, sender_pw = server.new_user("sender")

    gone = [server.raw_login(jid, key1, "lost-%d" % n) for n in range(2)]
    stays = server.raw_login(jid, key2, "kept")
    sender = server.raw_login(sender_jid, sender_pw)
    try:
        for c in gone + [stays]:
            c.become_available()
        out = ctl_ok(server, "revoke_device", jid, lost)
        assert out.strip() == "Device %s of %s revoked (2 sessions ended)" % (lost, jid), out
        for c in gone:
            assert_ended_not_authorized(c, "this device was revoked")
        # The other device's session goes on.
        sender.send("<message to='%s' type='chat' id='after'><body>still here?</body></message>"
                    % stays.jid)
        got = stays.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"), timeout=5)
        assert got.findtext(q(NS_CLIENT, "body")) == "still here?", to_string(got)
        assert not stays.eof
    finally:
        for c in gone + [stays, sender]:
            c.close()

    assert plain_auth(server, user, key1) == "failure"
    assert scram_auth(server, user, key1) == "failure"
    assert scram_auth(server, user, key2) == "success"
    assert [d[0] for d in devices(server, jid)] == [kept]

    again = server.ctl("revoke_device", jid, lost)
    assert again.returncode == 1 and "no device %s" % lost in again.stdout + again.stderr, again
    other = server.ctl("revoke_device", "someone@elsewhere.example", kept)
    assert other.returncode == 1, other
    assert [d[0] for d in devices(server, jid)] == [kept]


def test_an_unregistered_number_registers_anew(server):
    api = Api(server)
    phone = new_number()
    jid, user = jid_of(phone), phone[1:]
    old = device_key("before")
    api.register(GATEWAY, phone, old)
    ctl_ok(server, "unregister", user, "localhost")
    assert devices(server, jid) == []
    new = device_key("after")
    again = api.register(GATEWAY, phone, new)
    assert again["created"] is True
    assert plain_auth(server, user, old) == "failure"
    assert plain_auth(server, user, new) == "success"


def test_countries_allow_refuses_the_others(server):
    api = Api(server)
    for phone, region in (("+447400123456", "GB"), ("+33612345678", "FR")):
        r = api.request_pin(phone)
        assert r.status == 403, r
        assert r.body == {"error": "country-not-allowed",
                          "text": "numbers of %s cannot register on this server" % region}, r
        assert GATEWAY.attempts(phone) == 0


def test_a_send_that_fails_once_is_retried(server):
    api = Api(server)
    phone = new_number()
    GATEWAY.flaky(phone)
    start = time.monotonic()
    r = api.request_pin(phone)
    assert r.status == 202, r
    assert time.monotonic() - start >= 0.9, "no pause before the retry"
    assert GATEWAY.attempts(phone) == 2
    assert len(GATEWAY.texts(phone)) == 1
    assert api.verify(phone, GATEWAY.last_pin(phone), device_key("retried")).status == 201


def test_a_send_that_fails_after_its_retries_is_503(server):
    api = Api(server)
    phone = new_number()
    GATEWAY.fail(phone)
    try:
        r = api.request_pin(phone)
    finally:
        GATEWAY.fail(phone, on=False)
    assert r.status == 503 and r.body["error"] == "gateway-failed", r
    assert r.retry_after is not None and r.retry_after > 0, r.headers
    assert GATEWAY.attempts(phone) == 2, "gateway_retries is 1: two runs of the command"
    assert GATEWAY.texts(phone) == []
    r = api.request_pin(phone)
    assert r.status == 202, r
