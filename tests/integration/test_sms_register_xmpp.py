"""Phone-number registration over XMPP (XEP-0077 with a XEP-0004 form, the
sms_register module's `in_band` flow): a client on a fresh stream submits
its number, gets the PIN by SMS (the `command` gateway writes it to a file
the test reads), submits number, PIN and a device key, then logs in with
the key over SCRAM-SHA-256."""

import os
import re
import stat
import tempfile
import time
from pathlib import Path

from harness import run, slix_client
from rawxmpp import q, stanza_error, to_string

NS_REGISTER = "jabber:iq:register"
NS_DATA = "jabber:x:data"
FORM_TYPE = "urn:xmppd:register:phone"

_DIR = Path(tempfile.mkdtemp(prefix="xmppd-it-sms-"))
_OUTBOX = _DIR / "outbox.txt"
_GATEWAY = _DIR / "send-sms"
_GATEWAY.write_text("#!/bin/sh\nprintf '%%s %%s\\n' \"$1\" \"$2\" >> '%s'\n" % _OUTBOX)
_GATEWAY.chmod(_GATEWAY.stat().st_mode | stat.S_IXUSR)

SERVER_CONFIG = {
    "modules": {
        "offline": {},
        "sms_register": {"gateway": "command", "gateway_command": str(_GATEWAY), "max_verify_attempts": 2},
    },
}


def submit(c, **fields):
    values = "".join("<field var='%s'><value>%s</value></field>" % (k, v) for k, v in fields.items())
    return c.iq("set", None, "<query xmlns='%s'><x xmlns='%s' type='submit'>"
                             "<field var='FORM_TYPE'><value>%s</value></field>%s</x></query>"
                % (NS_REGISTER, NS_DATA, FORM_TYPE, values))


def unauthenticated(server):
    c = server.raw()
    c.open_stream()
    c.starttls()
    return c


def last_pin(phone: str) -> str:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if _OUTBOX.exists():
            for line in reversed(_OUTBOX.read_text().splitlines()):
                if line.startswith(phone + " "):
                    return re.search(r"\b(\d{5})\b", line).group(1)
        time.sleep(0.05)
    raise AssertionError("no SMS to %s in %s" % (phone, _OUTBOX))


def test_a_phone_registers_over_xmpp_and_logs_in_with_its_key(server):
    phone = "+4915112340001"
    with unauthenticated(server) as c:
        assert c.feature("http://jabber.org/features/iq-register", "register") is not None
        form = c.iq("get", None, "<query xmlns='%s'/>" % NS_REGISTER)
        x = form.find(q(NS_REGISTER, "query")).find(q(NS_DATA, "x"))
        assert x is not None and x.get("type") == "form", to_string(form)
        assert {f.get("var") for f in x.findall(q(NS_DATA, "field"))} >= {"FORM_TYPE", "phone", "pin", "device_key"}

        bad = submit(c, phone="12345")
        assert stanza_error(bad) == ("modify", "not-acceptable"), to_string(bad)
        assert "international form" in to_string(bad)

        sent = submit(c, phone="+49 151 1234 0001")
        assert sent.get("type") == "result", to_string(sent)
        pin = last_pin(phone)
        again = submit(c, phone=phone)
        assert stanza_error(again) == ("wait", "resource-constraint"), to_string(again)

        wrong = submit(c, phone=phone, pin="00000" if pin != "00000" else "11111", device_key="k" * 24)
        assert stanza_error(wrong) == ("auth", "not-authorized"), to_string(wrong)
        assert "1 attempts left" in to_string(wrong)
        ok = submit(c, phone=phone, pin=pin, device_key="phone-key-0001-secret", device_name="Pixel 8")
        assert ok.get("type") == "result", to_string(ok)
        assert ok.find(q(NS_REGISTER, "query")).findtext(q(NS_REGISTER, "username")) == "4915112340001"

    async def scenario():
        client = slix_client("4915112340001@localhost", "phone-key-0001-secret", server, sasl_mech="SCRAM-SHA-256")
        await client.login(server.c2s_port)
        client.disconnect()

    run(scenario())
    r = server.ctl("list_devices", "4915112340001@localhost")
    assert r.returncode == 0 and 'name="Pixel 8"' in r.stdout, r.stdout + r.stderr
    assert "last_login=never" not in r.stdout, r.stdout


def test_the_last_wrong_pin_burns_it(server):
    phone = "+4915112340002"
    with unauthenticated(server) as c:
        assert submit(c, phone=phone).get("type") == "result"
        pin = last_pin(phone)
        other = "00000" if pin != "00000" else "11111"
        first = submit(c, phone=phone, pin=other, device_key="k" * 24)
        assert stanza_error(first) == ("auth", "not-authorized")
        burned = submit(c, phone=phone, pin=other, device_key="k" * 24)
        assert stanza_error(burned) == ("wait", "resource-constraint"), to_string(burned)
        late = submit(c, phone=phone, pin=pin, device_key="k" * 24)
        assert stanza_error(late) == ("cancel", "item-not-found"), to_string(late)
    assert server.ctl("check_account", "4915112340002", "localhost").returncode != 0
