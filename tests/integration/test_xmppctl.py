"""xmppctl against a running server: accounts, sessions, status, stats."""

import re
import time

import pytest

from harness import run, slix_client
from rawxmpp import NS_CLIENT, NS_SASL, q, stream_error_condition, to_string

# delete_old_messages belongs to the offline module.
SERVER_CONFIG = {"modules": {"offline": {}}}


def ctl_ok(server, *args):
    r = server.ctl(*args)
    assert r.returncode == 0, "xmppctl %s -> %d\nstdout: %s\nstderr: %s" % (
        " ".join(args), r.returncode, r.stdout, r.stderr)
    return r


def plain_login_result(server, user, password):
    with server.raw() as c:
        c.open_stream()
        c.starttls()
        answer = c.auth_plain(user, password)
        c.end_stream()
        return answer.tag


def test_status(server):
    r = ctl_ok(server, "status")
    assert r.stdout.strip() or r.stderr.strip(), "status printed nothing"


def test_register_twice_fails(server):
    ctl_ok(server, "register", "twice", "localhost", "first-pw")
    r = server.ctl("register", "twice", "localhost", "second-pw")
    assert r.returncode != 0, "second register of the same user succeeded: %s" % r.stdout
    assert r.stderr.strip(), "no error message on stderr"
    # ... and did not overwrite the password
    assert plain_login_result(server, "twice", "first-pw") == q(NS_SASL, "success")
    assert plain_login_result(server, "twice", "second-pw") == q(NS_SASL, "failure")


def test_register_unknown_host_fails(server):
    r = server.ctl("register", "someone", "not-served.example", "pw")
    assert r.returncode != 0
    assert r.stderr.strip()


def test_check_account(server):
    ctl_ok(server, "register", "checked", "localhost", "pw-checked")
    assert server.ctl("check_account", "checked", "localhost").returncode == 0
    r = server.ctl("check_account", "never-registered", "localhost")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)


def test_change_password(server):
    ctl_ok(server, "register", "changer", "localhost", "old-password")
    assert plain_login_result(server, "changer", "old-password") == q(NS_SASL, "success")
    ctl_ok(server, "change_password", "changer", "localhost", "new-password")
    assert plain_login_result(server, "changer", "old-password") == q(NS_SASL, "failure")
    assert plain_login_result(server, "changer", "new-password") == q(NS_SASL, "success")

    # SCRAM credentials were replaced too
    async def scram(password):
        c = slix_client("changer@localhost", password, server, sasl_mech="SCRAM-SHA-256")
        err = None
        try:
            await c.login(server.c2s_port, timeout=10)
        except AssertionError as e:
            err = e
        if err is None:
            await c.logout()
        else:
            c.kill()
        return err

    assert run(scram("new-password")) is None
    assert run(scram("old-password")) is not None


def test_change_password_of_unknown_user_fails(server):
    r = server.ctl("change_password", "ghost", "localhost", "whatever")
    assert r.returncode != 0
    assert r.stderr.strip()


def test_registered_users(server):
    for name in ("listed1", "listed2", "listed3"):
        ctl_ok(server, "register", name, "localhost", "pw")
    r = ctl_ok(server, "registered_users", "localhost")
    lines = [l.strip() for l in r.stdout.splitlines() if l.strip()]
    # one per line; accept "user" or "user@host"
    names = {l.split("@")[0] for l in lines}
    assert {"listed1", "listed2", "listed3"} <= names, lines
    assert "never-registered" not in names


def test_unregister(server):
    ctl_ok(server, "register", "leaving", "localhost", "pw-leaving")
    assert plain_login_result(server, "leaving", "pw-leaving") == q(NS_SASL, "success")
    ctl_ok(server, "unregister", "leaving", "localhost")
    assert server.ctl("check_account", "leaving", "localhost").returncode == 1
    assert plain_login_result(server, "leaving", "pw-leaving") == q(NS_SASL, "failure")
    lines = ctl_ok(server, "registered_users", "localhost").stdout.split()
    assert "leaving" not in {l.split("@")[0] for l in lines}


def test_connected_users_and_kick_session(server):
    ctl_ok(server, "register", "online", "localhost", "pw-online")
    a = server.raw_login("online@localhost", "pw-online", "kickme")
    b = server.raw_login("online@localhost", "pw-online", "stays")
    try:
        listed = ctl_ok(server, "connected_users").stdout.split()
        assert "online@localhost/kickme" in listed, listed
        assert "online@localhost/stays" in listed, listed

        ctl_ok(server, "kick_session", "online", "localhost", "kickme", "test kick")
        elements = a.read_until_closed(timeout=10)
        assert a.eof, "the kicked session is still open"
        assert a.stream_ended, "kicked without </stream:stream>"
        cond = stream_error_condition(elements)
        assert cond is not None, "kicked without a stream error: %s" % [to_string(e) for e in elements]

        listed = ctl_ok(server, "connected_users").stdout.split()
        assert "online@localhost/kickme" not in listed, listed
        assert "online@localhost/stays" in listed, listed
        # the other session is untouched
        answer = b.iq("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
        assert answer.get("type") == "result"
    finally:
        a.close()
        b.close()


def test_kick_unknown_session_fails(server):
    r = server.ctl("kick_session", "nobody", "localhost", "nothing", "reason")
    assert r.returncode != 0
    assert r.stderr.strip()


def parse_number_after(pattern, text):
    for line in text.splitlines():
        if re.search(pattern, line, re.I):
            m = re.search(r"(-?\d+(?:\.\d+)?)\s*$", line) or re.search(r"[:=\s](-?\d+)", line)
            if m:
                return float(m.group(1)), line
    return None, None


def test_stats(server):
    ctl_ok(server, "register", "counted", "localhost", "pw-counted")
    clients = [server.raw_login("counted@localhost", "pw-counted", "c%d" % i) for i in range(3)]
    try:
        r = ctl_ok(server, "stats")
        text = r.stdout
        sessions, line = parse_number_after(r"session", text)
        assert sessions is not None, "no sessions count in stats:\n%s" % text
        assert sessions >= 3, "3 sessions are open but stats says: %s" % line
        queue, qline = parse_number_after(r"outbound", text)
        assert queue is not None, "no outbound-queue gauge in stats:\n%s" % text
        assert queue >= 0
    finally:
        for c in clients:
            c.close()
    # the count goes down again when they leave
    deadline = time.monotonic() + 5
    while True:
        after, line = parse_number_after(r"session", ctl_ok(server, "stats").stdout)
        if after is not None and after <= sessions - 3:
            break
        if time.monotonic() > deadline:
            pytest.fail("sessions count did not drop after 3 clients left: %s" % line)
        time.sleep(0.2)


def test_unknown_command_fails(server):
    r = server.ctl("no_such_command")
    assert r.returncode != 0
    assert r.stderr.strip()


def is_message(e):
    return e.tag == q(NS_CLIENT, "message")


def offline_count(server, user):
    return int(ctl_ok(server, "get_offline_count", user, "localhost").stdout.strip())


def test_delete_old_messages(server):
    ctl_ok(server, "register", "oldsender", "localhost", "pw")
    ctl_ok(server, "register", "oldkeeper", "localhost", "pw")
    with server.raw_login("oldsender@localhost", "pw") as c:
        for i in range(3):
            c.send("<message to='oldkeeper@localhost' id='old%d' type='chat'><body>%d</body></message>" % (i, i))
        deadline = time.monotonic() + 5
        while offline_count(server, "oldkeeper") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert offline_count(server, "oldkeeper") == 3
    # younger than a day: kept
    r = ctl_ok(server, "delete_old_messages", "1")
    assert re.search(r"\b0\b", r.stdout), r.stdout
    assert offline_count(server, "oldkeeper") == 3
    for bad in ("-1", "soon"):
        r = server.ctl("delete_old_messages", bad)
        assert r.returncode != 0, (bad, r.stdout)
    assert offline_count(server, "oldkeeper") == 3
    time.sleep(1.1)  # stored in an earlier second than "now"
    r = ctl_ok(server, "delete_old_messages", "0")
    assert re.search(r"\b3\b", r.stdout), r.stdout
    assert offline_count(server, "oldkeeper") == 0


def test_send_message(server):
    ctl_ok(server, "register", "ctlfrom", "localhost", "pw")
    ctl_ok(server, "register", "ctlto", "localhost", "pw")
    with server.raw_login("ctlto@localhost", "pw", "desk") as c:
        c.become_available()
        ctl_ok(server, "send_message", "ctlfrom@localhost", "ctlto@localhost", "hello from xmppctl")
        m = c.wait_for(is_message, timeout=5)
        assert m.get("from") == "ctlfrom@localhost", to_string(m)
        assert m.get("type") == "chat", to_string(m)
        assert m.findtext(q(NS_CLIENT, "body")) == "hello from xmppctl", to_string(m)
        # FROM must be one of ours, TO a JID
        assert server.ctl("send_message", "someone@remote.example", "ctlto@localhost", "x").returncode != 0
        assert server.ctl("send_message", "ctlfrom@localhost", "not a jid@", "x").returncode != 0
        # a control character XML cannot carry is refused, not sent as broken XML
        r = server.ctl("send_message", "ctlfrom@localhost", "ctlto@localhost", "bell\x07")
        assert r.returncode == 2 and "control character" in r.stderr, (r.returncode, r.stdout, r.stderr)
        assert not [to_string(e) for e in c.collect(0.5) if is_message(e)]
        # a multi-line body arrives as it was written
        ctl_ok(server, "send_message", "ctlfrom@localhost", "ctlto@localhost", "two\r\nlines")
        m = c.wait_for(is_message, timeout=5)
        assert m.findtext(q(NS_CLIENT, "body")) == "two\r\nlines", repr(m.findtext(q(NS_CLIENT, "body")))


def test_send_stanza(server):
    ctl_ok(server, "register", "rawfrom", "localhost", "pw")
    ctl_ok(server, "register", "rawto", "localhost", "pw")
    with server.raw_login("rawto@localhost", "pw", "desk") as c:
        c.become_available()
        xml = ("<message xmlns='jabber:client' type='normal' id='raw1'><body>raw</body>"
               "<extra xmlns='urn:example:ctl' n='1'>kept</extra></message>")
        ctl_ok(server, "send_stanza", "rawfrom@localhost/tool", "rawto@localhost/desk", xml)
        m = c.wait_for(is_message, timeout=5)
        assert (m.get("from"), m.get("to"), m.get("id")) == (
            "rawfrom@localhost/tool", "rawto@localhost/desk", "raw1"), to_string(m)
        extra = m.find(q("urn:example:ctl", "extra"))
        assert extra is not None and extra.get("n") == "1" and extra.text == "kept", to_string(m)
        for bad in ("<message xmlns='jabber:client'><body>unclosed", "<foo xmlns='jabber:client'/>"):
            r = server.ctl("send_stanza", "rawfrom@localhost", "rawto@localhost", bad)
            assert r.returncode != 0, (bad, r.stdout)
        assert not [to_string(e) for e in c.collect(0.5) if is_message(e)]
