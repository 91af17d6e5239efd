"""Phone-number registration (modules/sms_register) over the HTTP listener,
with `devices: single`: POST /v1/register/pin texts a PIN through the
`command` gateway (a shell script of sms_helpers.py that writes the text
to a file the test reads), POST /v1/register/verify trades it for a device
key, and the key logs in as <digits>@localhost with SCRAM-SHA-256 (slixmpp)
and PLAIN (rawxmpp). The limits, refusals and failures of both endpoints,
and xmppctl pending_pins. Multiple devices per number:
test_sms_register_multi.py."""

import re

import pytest

from harness import run, slix_client
from rawxmpp import NS_CLIENT, q, to_string
from sms_helpers import (Api, Gateway, at_once, assert_ended_not_authorized, ctl_ok, device_key, devices,
                         expire_pin, jid_of, new_number, pending_pins, plain_auth, scram_auth,
                         statuses, wrong_pin)

GATEWAY = Gateway()
MAX_ATTEMPTS = 3
PER_NUMBER = 2
PER_IP = 4
LIFETIME = 300
HOUR = 3600

SERVER_CONFIG = {
    "http": {},
    "modules": {
        "offline": {},
        "sms_register": {
            "devices": "single",
            "gateway": "command",
            "gateway_command": str(GATEWAY.command),
            "gateway_retries": 0,
            "gateway_timeout": 5,
            "pin_lifetime": LIFETIME,
            "max_verify_attempts": MAX_ATTEMPTS,
            "pins_per_number_per_hour": PER_NUMBER,
            "pins_per_ip_per_hour": PER_IP,
            # Spaces and lower case are taken.
            "countries_deny": "FR, cu",
            "message": "Your {host} code: {pin}. Do not share it.",
        },
    },
}

REVOKED_TEXT = "this number was registered on another device"


def pending_line(server, phone):
    lines = [line for line in pending_pins(server) if line.split()[0] == phone]
    assert len(lines) <= 1, lines
    return lines[0] if lines else None


# ------------------------------------------------------------------ accounts


def test_new_account_then_scram_login(server):
    api = Api(server)
    phone = new_number()
    typed = "%s %s %s %s" % (phone[:3], phone[3:6], phone[6:10], phone[10:])  # "+49 151 1210 0001"
    sent = api.request_pin(typed)
    assert sent.status == 202, sent
    assert sent.body == {"status": "sent", "phone": phone}, "not normalised to E.164: %s" % sent
    # The gateway got the E.164 number and the configured text.
    texts = GATEWAY.texts(phone)
    assert len(texts) == 1, texts
    assert re.fullmatch(r"Your localhost code: \d{5}\. Do not share it\.", texts[0]), texts[0]

    key = device_key("first")
    done = api.verify(typed, GATEWAY.last_pin(phone), key, "Pixel 7")
    assert done.status == 201, done
    assert done.body["jid"] == jid_of(phone) == phone[1:] + "@localhost"
    assert done.body["created"] is True
    assert re.fullmatch(r"[A-Za-z0-9_-]{12}", done.body["device"]), done.body
    assert server.ctl("check_account", phone[1:], "localhost").returncode == 0

    async def scenario():
        c = slix_client(done.body["jid"], key, server, sasl_mech="SCRAM-SHA-256")
        await c.login(server.c2s_port)
        assert c.mechanism == "SCRAM-SHA-256"
        assert c.boundjid.bare == done.body["jid"]
        await c.logout()

    run(scenario())
    assert plain_auth(server, phone[1:], key) == "success"
    assert plain_auth(server, phone[1:], key + "x") == "failure"
    assert pending_line(server, phone) is None, "the PIN outlived its use"


def test_second_device_ends_the_first_and_gets_its_messages(server):
    api = Api(server)
    phone = new_number()
    jid, user = jid_of(phone), phone[1:]
    key1, key2 = device_key("old"), device_key("new")
    first = api.register(GATEWAY, phone, key1, "old phone")
    sender_jid, sender_pw = server.new_user("sender")

    online = server.raw_login(jid, key1, "online")
    online.become_available()
    bound_only = server.raw_login(jid, key1, "no-presence")  # bound, never available
    sender = server.raw_login(sender_jid, sender_pw)
    try:
        # A PIN request alone changes nothing for the running sessions.
        assert api.request_pin(phone).status == 202
        second = api.verify(phone, GATEWAY.last_pin(phone), key2, "new phone")
        assert second.status == 200, second
        assert second.body == {"jid": jid, "device": second.body["device"], "created": False}
        assert second.body["device"] != first["device"]

        for session in (online, bound_only):
            assert_ended_not_authorized(session, REVOKED_TEXT)

        assert plain_auth(server, user, key1) == "failure"
        assert scram_auth(server, user, key1) == "failure"
        assert [d[0] for d in devices(server, jid)] == [second.body["device"]]

        # No device online: the offline module keeps the message.
        sender.send("<message to='%s' type='chat' id='m1'><body>for the new phone</body></message>" % jid)
        bounced = [e for e in sender.collect(0.5) if e.tag == q(NS_CLIENT, "message")]
        assert not bounced, [to_string(e) for e in bounced]
    finally:
        for c in (online, bound_only, sender):
            c.close()

    async def scenario():
        c = slix_client(jid, key2, server, sasl_mech="SCRAM-SHA-256")
        await c.login(server.c2s_port)
        m = await c.next_message()
        assert m["body"] == "for the new phone"
        assert m["from"].bare == sender_jid
        await c.logout()

    run(scenario())


# ------------------------------------------------------------------ PINs


def test_wrong_pins_burn_the_pin(server):
    api = Api(server)
    phone = new_number()
    assert api.request_pin(phone).status == 202
    pin = GATEWAY.last_pin(phone)
    key = device_key("burn")
    for left in range(MAX_ATTEMPTS - 1, 0, -1):
        r = api.verify(phone, wrong_pin(pin), key)
        assert r.status == 403, r
        assert r.body["error"] == "wrong-pin" and r.body["attempts_left"] == left, r
        assert pending_line(server, phone).endswith(" attempts=%d" % (MAX_ATTEMPTS - left))
    r = api.verify(phone, wrong_pin(pin), key)
    assert r.status == 429 and r.body["error"] == "pin-burned", r
    assert r.retry_after is not None and r.retry_after >= 1, r.headers
    # The PIN is gone: the right one is too late.
    r = api.verify(phone, pin, key)
    assert r.status == 404 and r.body["error"] == "no-pin", r
    assert pending_line(server, phone) is None
    assert server.ctl("check_account", phone[1:], "localhost").returncode == 1
    assert plain_auth(server, phone[1:], key) == "failure"
    # A new PIN may be asked for, and works.
    api.register(GATEWAY, phone, key)


def test_guesses_at_once_get_max_attempts_between_them(server):
    """On PostgreSQL the checks run on several connections: a burst of wrong
    PINs must still be counted one by one, and a burst of right ones must
    use the PIN once."""
    api = Api(server)
    phone = new_number()
    assert api.request_pin(phone).status == 202
    pin = GATEWAY.last_pin(phone)
    burst = 4 * MAX_ATTEMPTS
    replies = api.post_at_once("/v1/register/verify", [
        {"phone": phone, "pin": wrong_pin(pin), "device_key": device_key("guess")}] * burst)
    assert statuses(replies) == {(403, "wrong-pin"): MAX_ATTEMPTS - 1, (429, "pin-burned"): 1,
                                 (404, "no-pin"): burst - MAX_ATTEMPTS}, replies
    assert sorted(r.body["attempts_left"] for r in replies if r.status == 403) == list(
        range(1, MAX_ATTEMPTS))

    phone = new_number()
    assert api.request_pin(phone).status == 202
    pin = GATEWAY.last_pin(phone)
    replies = api.post_at_once("/v1/register/verify", [
        {"phone": phone, "pin": pin, "device_key": device_key("same pin %d" % n)} for n in range(4)])
    assert statuses(replies) == {(201, None): 1, (404, "no-pin"): 3}, replies
    assert len(devices(server, jid_of(phone))) == 1


def test_an_expired_pin_is_refused_then_gone(server):
    """A PIN lives at least 30 s: the test moves its expiry into the past in
    the database instead of waiting (the unit tests check expiry by the clock
    in pins.cpp)."""
    api = Api(server)
    phone = new_number()
    assert api.request_pin(phone).status == 202
    pin = GATEWAY.last_pin(phone)
    expire_pin(server, phone)
    assert pending_line(server, phone) is None, "pending_pins lists an expired PIN"
    r = api.verify(phone, pin, device_key("late"))
    assert r.status == 410 and r.body["error"] == "pin-expired", r
    r = api.verify(phone, pin, device_key("late"))
    assert r.status == 404 and r.body["error"] == "no-pin", r
    # An expired PIN is not outstanding: a new one is sent at once.
    api.register(GATEWAY, phone, device_key("on time"))


def test_pending_pins_lists_the_number_never_the_pin(server):
    api = Api(server)
    phone = new_number()
    assert api.request_pin(phone).status == 202
    pin = GATEWAY.last_pin(phone)
    out = ctl_ok(server, "pending_pins")
    line = pending_line(server, phone)
    m = re.fullmatch(r"\+\d+ created=(\S+)T(\d\d):(\d\d):(\d\d)Z expires=(\S+)T(\d\d):(\d\d):(\d\d)Z "
                     r"attempts=0", line)
    assert m, line
    created = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + int(m.group(4))
    expires = int(m.group(6)) * 3600 + int(m.group(7)) * 60 + int(m.group(8))
    assert (expires - created) % 86400 == LIFETIME, line
    # The numbers (this test's and others') are digits too: look past them.
    assert pin not in re.sub(r"\+\d+", "+N", out), out


# ------------------------------------------------------------------ limits


def test_rate_limits_per_number_with_retry_after(server):
    api = Api(server)
    phone = new_number()
    assert api.request_pin(phone).status == 202
    r = api.request_pin(phone)
    assert r.status == 429 and r.body["error"] == "pin-outstanding", r
    assert "still valid" in r.body["text"]
    assert LIFETIME - 10 <= r.retry_after <= LIFETIME, r.headers
    assert len(GATEWAY.texts(phone)) == 1, "a second text was sent"

    api.verify(phone, GATEWAY.last_pin(phone), device_key("a"))
    for _ in range(PER_NUMBER - 1):
        api.register(GATEWAY, phone, device_key("b"), expect=200)
    r = api.request_pin(phone)
    assert r.status == 429 and r.body["error"] == "rate-limited", r
    assert "this number" in r.body["text"], r
    assert HOUR - 10 <= r.retry_after <= HOUR, r.headers
    # From another address too: the limit is the number's.
    r = Api(server).request_pin(phone)
    assert r.status == 429 and r.body["error"] == "rate-limited", r
    # The address itself may still ask for other numbers.
    assert api.request_pin(new_number()).status == 202


def test_rate_limit_per_address_with_retry_after(server):
    api = Api(server)
    for _ in range(PER_IP):
        r = api.request_pin(new_number())
        assert r.status == 202, r
    phone = new_number()
    r = api.request_pin(phone)
    assert r.status == 429 and r.body["error"] == "rate-limited", r
    assert "this address" in r.body["text"], r
    assert HOUR - 10 <= r.retry_after <= HOUR, r.headers
    assert GATEWAY.attempts(phone) == 0
    # The same number from another address is fine.
    assert Api(server).request_pin(phone).status == 202


def test_requests_at_once_keep_the_limits(server):
    """Bursts of PIN requests: from one address for many numbers, and for one
    number from many addresses."""
    api = Api(server)
    replies = api.post_at_once("/v1/register/pin", [{"phone": new_number()} for _ in range(PER_IP + 4)])
    assert statuses(replies) == {(202, None): PER_IP, (429, "rate-limited"): 4}, replies

    phone = new_number()
    replies = at_once([(Api(server), "/v1/register/pin", {"phone": phone}) for _ in range(6)])
    assert statuses(replies) == {(202, None): 1, (429, "pin-outstanding"): 5}, replies
    assert len(GATEWAY.texts(phone)) == 1


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize("phone, text", [
    ("12345", "the phone number must be in international form, starting with + and the country code"),
    ("hello", "the phone number must be in international form, starting with + and the country code"),
    ("+99912", "unknown country calling code"),
    ("+hello", "not a phone number"),
    ("+49 151", "not a valid phone number for its country"),
    ("", "the phone number is empty"),
])
def test_invalid_numbers_are_400_naming_the_problem(server, phone, text):
    api = Api(server)
    for r in (api.request_pin(phone), api.verify(phone, "12345", device_key("x"))):
        assert r.status == 400, r
        assert r.body == {"error": "invalid-phone", "text": text}, r


def test_malformed_requests_are_400(server):
    api = Api(server)
    for body in (b"not json", b"[1, 2]", {"phone": 4915112345678}, {}):
        r = api.post("/v1/register/pin", body)
        assert r.status == 400 and r.body["error"] == "bad-request", (body, r)


def test_denied_country_is_403_and_nothing_is_sent(server):
    api = Api(server)
    for phone, region in (("+33612345678", "FR"), ("+5351234567", "CU")):
        r = api.request_pin(phone)
        assert r.status == 403, r
        assert r.body == {"error": "country-not-allowed",
                          "text": "numbers of %s cannot register on this server" % region}, r
        assert api.verify(phone, "12345", device_key("x")).status == 403
        assert GATEWAY.attempts(phone) == 0


def test_verify_checks_its_fields_before_the_pin(server):
    api = Api(server)
    phone = new_number()
    assert api.request_pin(phone).status == 202
    pin = GATEWAY.last_pin(phone)
    bad = [
        {"phone": phone, "pin": pin, "device_key": "k" * 15},
        # 1023 bytes is the most SASL PLAIN takes per field (xmpp/sasl/plain.cpp).
        {"phone": phone, "pin": pin, "device_key": "k" * 1024},
        {"phone": phone, "pin": pin},
        {"phone": phone, "pin": "abcde", "device_key": "k" * 16},
        {"phone": phone, "pin": pin[:-1], "device_key": "k" * 16},
        {"phone": phone, "pin": int(pin), "device_key": "k" * 16},
        {"phone": phone, "pin": pin, "device_key": "k" * 16, "device_name": "n" * 65},
    ]
    for body in bad:
        r = api.post("/v1/register/verify", body)
        assert r.status == 400 and r.body["error"] == "bad-request", (body, r)
    # None of them cost an attempt.
    assert pending_line(server, phone).endswith(" attempts=0")
    key = "k" * 1023  # the longest key taken
    r = api.verify(phone, pin, key, "n" * 64)
    assert r.status == 201, r
    assert plain_auth(server, phone[1:], key) == "success"
    assert scram_auth(server, phone[1:], key) == "success"
    assert devices(server, jid_of(phone))[0][1] == "n" * 64


def test_verify_without_a_pin_is_404(server):
    r = Api(server).verify(new_number(), "12345", device_key("x"))
    assert r.status == 404 and r.body["error"] == "no-pin", r


# ------------------------------------------------------------------ gateway


def test_gateway_failure_is_503_and_does_not_count(server):
    """gateway_retries is 0 here: one run of the command per request. More
    failures than both limits allow, then the gateway works again and the
    next request is granted: failed sends count against no limit and leave
    no PIN outstanding."""
    api = Api(server)
    phone = new_number()
    GATEWAY.fail(phone)
    try:
        for n in range(1, max(PER_NUMBER, PER_IP) + 1):
            r = api.request_pin(phone)
            assert r.status == 503, r
            assert r.body["error"] == "gateway-failed", r
            assert r.retry_after is not None and r.retry_after > 0, r.headers
            assert GATEWAY.attempts(phone) == n
    finally:
        GATEWAY.fail(phone, on=False)
    assert GATEWAY.texts(phone) == []
    assert pending_line(server, phone) is None
    r = api.request_pin(phone)
    assert r.status == 202, r
    assert api.verify(phone, GATEWAY.last_pin(phone), device_key("after")).status == 201


def test_an_account_made_before_its_phone_registration_loses_its_password(server):
    """devices: single means only the newest device logs in: an account the
    administrator made with that number's name keeps nothing of its own."""
    api = Api(server)
    phone = new_number()
    assert server.ctl("register", phone[1:], "localhost", "admin-made-pw").returncode == 0
    assert plain_auth(server, phone[1:], "admin-made-pw") == "success"
    key = device_key("later")
    body = api.register(GATEWAY, phone, key, "Pixel 9", expect=200)
    assert body["created"] is False
    assert plain_auth(server, phone[1:], "admin-made-pw") == "failure"
    assert plain_auth(server, phone[1:], key) == "success"
