"""The delivery promise (issue 5): what the server acknowledged survives
kill -9; a dropped connection resumes with nothing lost or duplicated
beyond what 'h' says, and a session not resumed in time hands its
unacknowledged messages to offline storage; receipts (XEP-0184) and chat
markers (XEP-0333) pass through live, offline and resumed paths as the
devices sent them; carbons (XEP-0280) with the private and no-copy hints;
client state indication (XEP-0352); the offline quota.

Every test runs on a server of its own (some stop or kill it), with the
module's config and, where a test needs other values, @server_config."""

import asyncio
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest

from harness import run, slix_client
from rawxmpp import NS_CLIENT, NS_SASL, NS_STANZA_ERRORS, assert_closed_with, q, stanza_error, to_string

RESUME_TIMEOUT = 2
SERVER_CONFIG = {
    "modules": {"offline": {"max_messages": 1000}, "carbons": {}, "roster": {}},
    "stream_management": {"enabled": True, "resume_timeout": RESUME_TIMEOUT},
}

NS_SM = "urn:xmpp:sm:3"
NS_DELAY = "urn:xmpp:delay"
NS_RECEIPTS = "urn:xmpp:receipts"
NS_MARKERS = "urn:xmpp:chat-markers:0"
NS_CARBONS = "urn:xmpp:carbons:2"
NS_FORWARD = "urn:xmpp:forward:0"
NS_HINTS = "urn:xmpp:hints"
NS_CSI = "urn:xmpp:csi:0"


# ------------------------------------------------------------------ helpers


def sm(local):
    return q(NS_SM, local)


def is_message(e):
    return e.tag == q(NS_CLIENT, "message")


def is_stanza(e):
    return e.tag in (q(NS_CLIENT, "message"), q(NS_CLIENT, "presence"), q(NS_CLIENT, "iq"))


def body(e):
    return e.findtext(q(NS_CLIENT, "body"))


def messages_after(c, start=0):
    return [e for e in c.received[start:] if is_message(e)]


def enable_sm(c, resume=False):
    """<enable/>; remembers where in c.received the server started counting."""
    c.send("<enable xmlns='%s'%s/>" % (NS_SM, " resume='true'" if resume else ""))
    answer = c.wait_for(lambda e: e.tag in (sm("enabled"), sm("failed")))
    assert answer.tag == sm("enabled"), to_string(answer)
    c.sm_mark = c.received.index(answer) + 1
    return answer


def sm_received(c, upto=None):
    """Stanzas received since the server started counting (XEP-0198 §4);
    with `upto` (an element of c.received), only those that came before it."""
    end = len(c.received)
    if upto is not None:
        end = next(i for i in range(len(c.received) - 1, -1, -1) if c.received[i] is upto)
    return sum(1 for e in c.received[c.sm_mark:end] if is_stanza(e))


def ask_ack(c):
    c.send("<r xmlns='%s'/>" % NS_SM)
    return int(c.wait_for(sm("a")).get("h"))


def authenticate(server, jid, pw):
    """A new connection up to SASL success, ready for <resume/> or bind."""
    c = server.raw()
    c.open_stream()
    c.starttls()
    assert c.auth_plain(jid.split("@")[0], pw).tag == q(NS_SASL, "success")
    return c


def resume(server, jid, pw, previd, h):
    c = authenticate(server, jid, pw)
    c.send("<resume xmlns='%s' previd='%s' h='%d'/>" % (NS_SM, previd, h))
    answer = c.wait_for(lambda e: e.tag in (sm("resumed"), sm("failed")))
    return c, answer


def wait_messages(c, count, timeout=10.0, start=0, answer_r=False):
    """Read until `count` messages arrived after c.received[start]. With
    answer_r the client answers the server's <r/> as XEP-0198 §4 says (the
    server hands a long offline backlog over a chunk per ack); tests that
    send their own h leave it off. The answer counts only what came before
    the <r/>, as a client handling stanzas in order would: stanzas already
    read from the socket behind it are not handled yet."""
    deadline = time.monotonic() + timeout
    while len(messages_after(c, start)) < count:
        elem = c.recv(max(0.0, deadline - time.monotonic()))
        if answer_r and elem is not None and elem.tag == sm("r"):
            c.send("<a xmlns='%s' h='%d'/>" % (NS_SM, sm_received(c, upto=elem)))
        if elem is None and time.monotonic() >= deadline:
            break
        if c.eof or c.stream_ended:
            break
    got = messages_after(c, start)
    assert len(got) >= count, "%s: %d of %d messages within %ss; last: %s" % (
        c.jid, len(got), count, timeout, [to_string(m)[:200] for m in got[-3:]])
    return got


def settle(clients, wait):
    """Give the server `wait` seconds, then read what each client has got."""
    time.sleep(wait)
    for c in clients:
        c.collect(0.05)


def errors_in(c):
    return [to_string(e) for e in c.received if e.get("type") == "error"]


def parse(xml):
    return ET.fromstring(xml.replace("<message ", "<message xmlns='jabber:client' ", 1))


def payload(m):
    """The children of a message as comparable tuples, without the XEP-0203
    delay a server adds on the offline path."""
    def sig(e):
        return (e.tag, tuple(sorted(e.attrib.items())), (e.text or "").strip(), tuple(sig(c) for c in e))
    return sorted(sig(c) for c in m if c.tag != q(NS_DELAY, "delay"))


def ctl_offline_count(server, jid):
    r = server.ctl("get_offline_count", jid.split("@")[0], "localhost")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return int(r.stdout.strip())


def wait_offline_count(server, jid, expected, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        n = ctl_offline_count(server, jid)
        if n == expected or time.monotonic() > deadline:
            return n
        time.sleep(0.1)


def logout(c):
    c.end_stream()
    c.read_until_closed(5)
    c.close()


def check_delay(m, not_before):
    delay = m.find(q(NS_DELAY, "delay"))
    assert delay is not None, "no XEP-0203 delay: %s" % to_string(m)
    assert delay.get("from") == "localhost", to_string(delay)
    stamp = datetime.strptime(delay.get("stamp")[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    assert not_before - timedelta(seconds=2) <= stamp <= datetime.now(timezone.utc) + timedelta(seconds=2), \
        delay.get("stamp")


# ------------------------------------------------------ 1. kill -9 durability


@pytest.mark.server_config({"modules": {"offline": {"max_messages": 1000}}})
def test_acknowledged_messages_survive_kill9(fresh_server):
    """Issue 5 promise 2: once <a h/> covers a message, kill -9 of the
    server does not lose it; after the restart the offline recipient gets
    all N exactly once and in order, and once its client acknowledged them
    (XEP-0198) the offline store is empty."""
    srv = fresh_server
    n = 200
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")
    sender = srv.raw_login(alice_jid, alice_pw, "burst")
    enable_sm(sender)
    sender.send("".join(
        "<message to='%s' id='k%03d' type='chat'><body>kill9 #%03d</body></message>" % (bob_jid, i, i)
        for i in range(n)))
    deadline = time.monotonic() + 30
    while True:
        h = ask_ack(sender)
        assert h <= n, "server acknowledged %d of %d stanzas" % (h, n)
        if h == n:
            break
        assert time.monotonic() < deadline, "only %d of %d acknowledged within 30 s" % (h, n)
        time.sleep(0.05)
    # no delay: straight from the last <a/> to SIGKILL
    srv.restart(kill=True)
    sender.close()
    assert not errors_in(sender), errors_in(sender)

    assert ctl_offline_count(srv, bob_jid) == n, "stored messages lost in the crash"
    with srv.raw_login(bob_jid, bob_pw, "phone") as bob:
        enable_sm(bob)
        bob.become_available()
        got = wait_messages(bob, n, timeout=20, answer_r=True)
        bob.collect(1.0)  # anything more would be a duplicate
        got = messages_after(bob)
        bodies = [body(m) for m in got]
        assert bodies == ["kill9 #%03d" % i for i in range(n)], (
            "%d messages, first differences: %s" % (len(bodies), [
                (i, b) for i, b in enumerate(bodies) if b != "kill9 #%03d" % i][:5]))
        assert all(m.get("from", "").startswith(alice_jid + "/") for m in got)
        # The last chunk is delivered but not yet acknowledged by the device:
        # it is still stored (earlier chunks were acked while reading).
        assert ctl_offline_count(srv, bob_jid) > 0, "removed before the client acknowledged them"
        bob.send("<a xmlns='%s' h='%d'/>" % (NS_SM, sm_received(bob)))
        assert wait_offline_count(srv, bob_jid, 0) == 0, "acknowledged messages still in the offline store"
        logout(bob)


def wait_acked(c, n, timeout):
    """Ask for acks until the server's h covers n stanzas; returns the seconds it took."""
    started = time.monotonic()
    while True:
        h = ask_ack(c)
        assert h <= n, "server acknowledged %d of %d stanzas" % (h, n)
        if h == n:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, "only %d of %d acknowledged within %ss" % (h, n, timeout)
        time.sleep(0.1)


@pytest.mark.server_config({"stream_management": {"ack_grace": 1}})
def test_acked_messages_to_a_sleeping_device_survive_kill9(fresh_server):
    """The promise for a recipient that is online but does not acknowledge
    (a phone asleep on a live connection): the sender's XEP-0198 ack waits
    until the device acks or a durable copy exists (stream_management.
    ack_grace), so after kill -9 the recipient still gets every message it
    had not acknowledged, once, in order, with its original delay stamp."""
    srv = fresh_server
    n = 20
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")
    phone = srv.raw_login(bob_jid, bob_pw, "phone")
    enable_sm(phone, resume=True)
    phone.become_available()
    sender = srv.raw_login(alice_jid, alice_pw, "desk")
    enable_sm(sender)
    sent_at = datetime.now(timezone.utc)
    sender.send("".join(
        "<message to='%s' id='s%02d' type='chat'><body>asleep #%02d</body></message>" % (bob_jid, i, i)
        for i in range(n)))
    wait_messages(phone, n)  # written to the phone, which never answers <r/>
    wait_acked(sender, n, timeout=15)
    assert ctl_offline_count(srv, bob_jid) == n, "no durable copies behind the sender's ack"
    srv.restart(kill=True)
    sender.close()
    phone.close()
    with srv.raw_login(bob_jid, bob_pw, "phone2") as bob:
        enable_sm(bob)
        bob.become_available()
        wait_messages(bob, n, timeout=20, answer_r=True)
        bob.collect(1.0)  # anything more would be a duplicate
        got = messages_after(bob)
        assert [body(m) for m in got] == ["asleep #%02d" % i for i in range(n)]
        for m in got:
            check_delay(m, sent_at)
        bob.send("<a xmlns='%s' h='%d'/>" % (NS_SM, sm_received(bob)))
        assert wait_offline_count(srv, bob_jid, 0) == 0
        logout(bob)


@pytest.mark.server_config({"stream_management": {"resume_timeout": 300, "ack_grace": 60}})
def test_acked_messages_to_a_hibernating_session_survive_kill9(fresh_server):
    """A phone lost its connection and its session waits to be resumed
    (XEP-0198 §5): messages for it are made durable at once (not after
    ack_grace, set long here), so the sender's ack means stored, and a
    crash during the wait loses none of them."""
    srv = fresh_server
    n = 10
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")
    phone = srv.raw_login(bob_jid, bob_pw, "phone")
    enable_sm(phone, resume=True)
    phone.become_available()
    phone.close()  # the connection drops; the session hibernates
    time.sleep(0.5)
    sender = srv.raw_login(alice_jid, alice_pw, "desk")
    enable_sm(sender)
    sender.send("".join(
        "<message to='%s' id='h%02d' type='chat'><body>while away #%02d</body></message>" % (bob_jid, i, i)
        for i in range(n)))
    wait_acked(sender, n, timeout=10)
    assert ctl_offline_count(srv, bob_jid) == n, "acked with nothing on disk"
    srv.restart(kill=True)
    sender.close()
    with srv.raw_login(bob_jid, bob_pw, "phone2") as bob:
        enable_sm(bob)
        bob.become_available()
        wait_messages(bob, n, timeout=20, answer_r=True)
        bob.collect(1.0)
        assert [body(m) for m in messages_after(bob)] == ["while away #%02d" % i for i in range(n)]
        logout(bob)


@pytest.mark.server_config({"stream_management": {"ack_grace": 1}})
def test_held_copies_are_deleted_when_the_device_acks_and_kept_when_it_never_does(fresh_server):
    """A late ack deletes the durable copies (nothing comes twice at the next
    login); a session that ends without acking turns them into ordinary
    offline messages, delivered once at the next login."""
    srv = fresh_server
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")
    sender = srv.raw_login(alice_jid, alice_pw, "desk")
    enable_sm(sender)

    def device_gets_three(resource):
        """bob's device `resource` receives three messages and does not ack them."""
        device = srv.raw_login(bob_jid, bob_pw, resource)
        enable_sm(device)
        device.become_available()
        sender.send("".join("<message to='%s' type='chat'><body>%s #%d</body></message>" % (bob_jid, resource, i)
                            for i in range(3)))
        wait_messages(device, 3)
        return device

    late = device_gets_three("late")
    wait_acked(sender, 3, timeout=10)
    assert wait_offline_count(srv, bob_jid, 3) == 3, "no durable copies of the unacknowledged messages"
    late.send("<a xmlns='%s' h='%d'/>" % (NS_SM, sm_received(late)))  # the device wakes up
    assert wait_offline_count(srv, bob_jid, 0) == 0, "copies kept after the device acknowledged"
    logout(late)

    mute = device_gets_three("mute")
    wait_acked(sender, 6, timeout=10)
    assert wait_offline_count(srv, bob_jid, 3) == 3
    mute.close()  # no resumption asked for: the session ends, unacknowledged
    time.sleep(1.0)
    assert ctl_offline_count(srv, bob_jid) == 3, "released copies must be stored exactly once"
    with srv.raw_login(bob_jid, bob_pw, "next") as bob:
        enable_sm(bob)
        bob.become_available()
        wait_messages(bob, 3, timeout=10, answer_r=True)
        bob.collect(1.0)
        assert [body(m) for m in messages_after(bob)] == ["mute #%d" % i for i in range(3)]
        logout(bob)
    sender.close()
    assert not errors_in(sender), errors_in(sender)


# --------------------------------------------------------- 2. resumption


def test_resume_mid_burst_resends_exactly_the_unacked(fresh_server):
    """XEP-0198 §5: the connection drops in the middle of a burst; after
    <resumed/> the server resends from the client's h on, in order: what
    the client had not confirmed comes again, nothing else does, nothing
    is lost, and what was sent meanwhile follows."""
    srv = fresh_server
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")
    peer = srv.raw_login(alice_jid, alice_pw, "desk")
    bob = srv.raw_login(bob_jid, bob_pw, "phone")
    try:
        bob.become_available()
        enabled = enable_sm(bob, resume=True)
        previd = enabled.get("id")
        full = bob.jid

        peer.send("".join("<message to='%s' id='b%02d' type='chat'><body>burst %02d</body></message>"
                          % (full, i, i) for i in range(60)))
        got = wait_messages(bob, 20, start=bob.sm_mark)
        bob.send("<a xmlns='%s' h='10'/>" % NS_SM)  # the first ten are confirmed
        # Read 20, tell the server on resume that 15 were handled.
        seen = [body(m) for m in got[:20]]
        assert seen == ["burst %02d" % i for i in range(20)], seen
        bob.close()  # drop mid-burst: more was on its way

        peer.send("".join("<message to='%s' id='c%02d' type='chat'><body>burst %02d</body></message>"
                          % (full, i, i) for i in range(60, 80)))
        bounced = [e for e in peer.collect(1.0) if is_message(e)]
        assert not bounced, "bounced while resumable: %s" % [to_string(b) for b in bounced]

        bob, answer = resume(srv, bob_jid, bob_pw, previd, 15)
        assert answer.tag == sm("resumed"), to_string(answer)
        assert answer.get("previd") == previd
        assert answer.get("h") == "0", "bob sent no stanzas; server says h=%s" % answer.get("h")
        mark = bob.received.index(answer) + 1
        again = wait_messages(bob, 65, start=mark)
        bob.collect(0.7)
        again = [body(m) for m in messages_after(bob, mark)]
        assert again == ["burst %02d" % i for i in range(15, 80)], again
        # and the resumed stream counts on from 15 + 65
        bob.sm_mark = mark
        bob.send("<a xmlns='%s' h='%d'/>" % (NS_SM, 15 + sm_received(bob)))
        assert bob.iq("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>").get("type") == "result"
        assert not [to_string(e) for e in bob.received if e.tag == q("http://etherx.jabber.org/streams",
                                                                         "error")]
    finally:
        bob.close()
        peer.close()


def test_not_resumed_in_time_goes_to_offline_storage(fresh_server):
    """XEP-0198 §5 with resume_timeout 2 s: the unacknowledged messages of
    a session that is not resumed go to offline storage (not bounced, not
    dropped) and reach the next login with a XEP-0203 delay; the old id
    no longer resumes."""
    srv = fresh_server
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")
    start = datetime.now(timezone.utc)
    peer = srv.raw_login(alice_jid, alice_pw, "desk")
    bob = srv.raw_login(bob_jid, bob_pw, "tablet")
    try:
        bob.become_available()
        previd = enable_sm(bob, resume=True).get("id")
        peer.send("".join("<message to='%s' id='t%02d' type='chat'><body>late %02d</body></message>"
                          % (bob_jid, i, i) for i in range(10)))
        wait_messages(bob, 4, start=bob.sm_mark)
        bob.send("<a xmlns='%s' h='2'/>" % NS_SM)
        time.sleep(0.2)
        bob.close()
        # while it hibernates, more arrive for it
        peer.send("".join("<message to='%s' id='t%02d' type='chat'><body>late %02d</body></message>"
                          % (bob_jid, i, i) for i in range(10, 13)))
        dropped = time.monotonic()
        stored = wait_offline_count(srv, bob_jid, 11, timeout=RESUME_TIMEOUT + 5)
        assert stored == 11, "%d of the 11 unacknowledged messages stored" % stored
        assert time.monotonic() - dropped >= RESUME_TIMEOUT - 0.5, "stored before resume_timeout"
        bounced = [to_string(e) for e in peer.collect(0.3) if is_message(e)]
        assert not bounced, "bounced instead of stored: %s" % bounced

        c, answer = resume(srv, bob_jid, bob_pw, previd, 2)
        assert answer.tag == sm("failed"), "resumed after resume_timeout: %s" % to_string(answer)
        assert answer.find(q(NS_STANZA_ERRORS, "item-not-found")) is not None, to_string(answer)
        c.bind("tablet")
        bob.close()
        bob = c
        bob.become_available()
        got = wait_messages(bob, 11)
        bob.collect(0.7)
        got = messages_after(bob)
        assert [body(m) for m in got] == ["late %02d" % i for i in range(2, 13)]
        assert [m.get("id") for m in got] == ["t%02d" % i for i in range(2, 13)]
        for m in got:
            assert m.get("from") == peer.jid, to_string(m)
            check_delay(m, start)
    finally:
        bob.close()
        peer.close()


def answer_acks(c, base, mark, count, start, timeout=20.0):
    """Read on a resumed stream until `count` messages arrived after
    c.received[start], answering <r/> with base + stanzas since `mark`."""
    deadline = time.monotonic() + timeout
    while len(messages_after(c, start)) < count and time.monotonic() < deadline:
        elem = c.recv(max(0.0, deadline - time.monotonic()))
        if elem is not None and elem.tag == sm("r"):
            since = sum(1 for e in c.received[mark:] if is_stanza(e))
            c.send("<a xmlns='%s' h='%d'/>" % (NS_SM, (base + since) % 2**32))
        if c.eof or c.stream_ended:
            break
    return messages_after(c, start)


def test_offline_backlog_continues_after_resumption(fresh_server):
    """A backlog over one delivery chunk (100): the connection drops while
    the second chunk is on its way and the session is resumed. The rest of
    the backlog follows on the resumed stream (the delivery chain follows
    the session, it does not stall until the next login), and a presence
    update on the resumed stream fetches nothing again: all 250 arrive
    exactly once and in order, then the offline store is empty."""
    srv = fresh_server
    n = 250
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")
    with srv.raw_login(alice_jid, alice_pw, "desk") as alice:
        alice.send("".join("<message to='%s' id='o%03d' type='chat'><body>backlog %03d</body></message>"
                           % (bob_jid, i, i) for i in range(n)))
        assert wait_offline_count(srv, bob_jid, n, timeout=20) == n
        assert not errors_in(alice), errors_in(alice)

    bob = srv.raw_login(bob_jid, bob_pw, "phone")
    try:
        previd = enable_sm(bob, resume=True).get("id")
        bob.become_available()
        # the first chunk is acked on the server's <r/>, the second is coming
        wait_messages(bob, 130, timeout=20, answer_r=True)
        h = sm_received(bob)
        before = [body(m) for m in messages_after(bob)]
        assert 130 <= len(before) < n, len(before)
        bob.close()  # TCP drop in the middle of the second chunk

        bob, answer = resume(srv, bob_jid, bob_pw, previd, h)
        assert answer.tag == sm("resumed"), to_string(answer)
        mark = bob.received.index(answer) + 1
        # An update of the resumed session's presence is not an initial one.
        bob.send("<presence><show>away</show></presence>")
        answer_acks(bob, h, mark, n - len(before), mark)
        bob.collect(1.5)  # anything more would be a duplicate
        after = [body(m) for m in messages_after(bob, mark)]
        got = before + after
        expected = ["backlog %03d" % i for i in range(n)]
        assert got == expected, "%d messages (%d before the drop), first differences: %s" % (
            len(got), len(before), [(i, b) for i, b in enumerate(got) if i >= n or b != expected[i]][:5])
        since = sum(1 for e in bob.received[mark:] if is_stanza(e))
        bob.send("<a xmlns='%s' h='%d'/>" % (NS_SM, h + since))
        assert wait_offline_count(srv, bob_jid, 0) == 0, "acknowledged messages still stored"
        logout(bob)
    finally:
        bob.close()


@pytest.mark.server_config({"modules": {"offline": {"max_messages": 1000, "batch_size": 1}}})
def test_message_committed_after_the_initial_fetch_is_delivered(fresh_server):
    """Group commit vs. initial presence: with one message per transaction
    the store is still being written when bob sends initial presence, so
    his fetch misses the later commits; each commit must reach his session
    anyway (not wait in the store for the next login). The interleaving is
    not forced, so this exercises the race most runs and asserts the
    outcome every run: every message once, nothing left stored."""
    srv = fresh_server
    n = 400
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")
    bob = srv.raw_login(bob_jid, bob_pw, "phone")
    with srv.raw_login(alice_jid, alice_pw, "desk") as alice:
        alice.send("".join("<message to='%s' id='g%03d' type='chat'><body>commit %03d</body></message>"
                           % (bob_jid, i, i) for i in range(n)))
        deadline = time.monotonic() + 10
        while ctl_offline_count(srv, bob_jid) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            bob.become_available()  # while later batches are still being committed
            got = wait_messages(bob, n, timeout=30)
            bob.collect(1.0)
            bodies = [body(m) for m in messages_after(bob)]
            dups = sorted(b for b in set(bodies) if bodies.count(b) > 1)
            assert not dups, "delivered twice: %s" % dups[:5]
            assert sorted(bodies) == ["commit %03d" % i for i in range(n)], len(got)
            assert wait_offline_count(srv, bob_jid, 0) == 0, "delivered messages still stored"
            assert not errors_in(alice), errors_in(alice)
        finally:
            bob.close()


def test_unacked_of_a_dead_session_go_to_the_other_resources(fresh_server):
    """A session dies (no resumption) with messages it never acknowledged:
    they go to the user's other available resource (RFC 6121 §8.5.3.2.1,
    §8.5.2.1.1), not to offline storage; one the other resource already
    had (to the bare JID at equal priority) is not sent a second time."""
    srv = fresh_server
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")
    with srv.raw_login(alice_jid, alice_pw, "desk") as alice, \
            srv.raw_login(bob_jid, bob_pw, "laptop") as laptop:
        laptop.become_available()
        phone = srv.raw_login(bob_jid, bob_pw, "phone")
        enable_sm(phone)
        phone.become_available()
        laptop.collect(0.3)
        start = len(laptop.received)
        alice.send("<message to='%s' id='full1' type='chat'><body>to the phone</body></message>" % phone.jid)
        alice.send("<message to='%s' id='bare1' type='chat'><body>to bob</body></message>" % bob_jid)
        got = wait_messages(phone, 2, start=phone.sm_mark)
        assert [m.get("id") for m in got] == ["full1", "bare1"]
        assert [m.get("id") for m in wait_messages(laptop, 1, start=start)] == ["bare1"]
        phone.close()  # never acknowledged either
        laptop.collect(1.5)
        got = messages_after(laptop, start)
        assert [m.get("id") for m in got] == ["bare1", "full1"], [to_string(m) for m in got]
        assert body(got[1]) == "to the phone" and got[1].get("from") == alice.jid
        assert got[1].find(q(NS_DELAY, "delay")) is not None, to_string(got[1])
        assert ctl_offline_count(srv, bob_jid) == 0, "stored although bob's laptop is online"
        assert not errors_in(alice), errors_in(alice)

        # phone above laptop: a bare-JID message went to the phone only, so
        # the laptop gets it when the phone dies without acknowledging it
        phone = srv.raw_login(bob_jid, bob_pw, "phone")
        enable_sm(phone)
        phone.become_available(priority=5)
        laptop.collect(0.3)
        start = len(laptop.received)
        alice.send("<message to='%s' id='bare2' type='chat'><body>to bob again</body></message>" % bob_jid)
        assert [m.get("id") for m in wait_messages(phone, 1, start=phone.sm_mark)] == ["bare2"]
        phone.close()
        got = wait_messages(laptop, 1, start=start, timeout=5)
        laptop.collect(0.5)
        assert [m.get("id") for m in messages_after(laptop, start)] == ["bare2"]
        assert ctl_offline_count(srv, bob_jid) == 0
        assert not errors_in(alice), errors_in(alice)


@pytest.mark.server_config({"stream_management": {"resume_timeout": 4}})
def test_unacked_to_offline_are_stamped_with_the_receive_time(fresh_server):
    """XEP-0203: a message that waited in a dead session's unacknowledged
    queue is stored with the time the server received it, not the time the
    session died (here 4 s later, after resume_timeout)."""
    srv = fresh_server
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")
    with srv.raw_login(alice_jid, alice_pw, "desk") as alice:
        bob = srv.raw_login(bob_jid, bob_pw, "phone")
        try:
            enable_sm(bob, resume=True)
            bob.become_available()
            sent_at = datetime.now(timezone.utc).replace(microsecond=0)
            alice.send("<message to='%s' id='st1' type='chat'><body>stamp me</body></message>" % bob_jid)
            wait_messages(bob, 1, start=bob.sm_mark)
        finally:
            bob.close()  # never acknowledged; hibernates for 4 s, then goes to offline storage
        assert wait_offline_count(srv, bob_jid, 1, timeout=10) == 1
    with srv.raw_login(bob_jid, bob_pw, "phone") as bob:
        bob.become_available()
        got = wait_messages(bob, 1)[0]
        assert got.get("id") == "st1"
        delay = got.find(q(NS_DELAY, "delay"))
        assert delay is not None, to_string(got)
        stamp = datetime.strptime(delay.get("stamp")[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
        assert sent_at - timedelta(seconds=1) <= stamp <= sent_at + timedelta(seconds=1), (
            "stamp %s, sent at %s" % (delay.get("stamp"), sent_at.isoformat()))


@pytest.mark.server_config({"stream_management": {"max_queue": 10}})
def test_never_acking_client_gets_policy_violation(fresh_server):
    """stream_management.max_queue: a client that never acknowledges is
    closed with <policy-violation/> once more than max_queue stanzas wait
    for its ack; what it never acknowledged goes to offline storage
    (delivery_failed), not to the floor and not back to the sender."""
    srv = fresh_server
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")
    with srv.raw_login(alice_jid, alice_pw, "desk") as alice:
        bob = srv.raw_login(bob_jid, bob_pw, "lazy")
        try:
            enable_sm(bob)
            alice.send("".join("<message to='%s' id='q%02d' type='chat'><body>%d</body></message>"
                               % (bob.jid, i, i) for i in range(12)))
            elements = bob.read_until_closed(timeout=10)
            assert_closed_with(bob, "policy-violation", elements)
            got = [m.get("id") for m in messages_after(bob)]
            assert 10 <= len(got) <= 12 and got == ["q%02d" % i for i in range(len(got))], got
        finally:
            bob.close()
        assert wait_offline_count(srv, bob_jid, 12) == 12, "unacknowledged messages not stored"
        assert not errors_in(alice), errors_in(alice)
    with srv.raw_login(bob_jid, bob_pw, "lazy") as bob:
        bob.become_available()
        wait_messages(bob, 12)
        bob.collect(0.5)
        assert [m.get("id") for m in messages_after(bob)] == ["q%02d" % i for i in range(12)]


# ------------------------------------------------ 3./4. receipts and markers


def test_receipts_pass_through_live_offline_and_resumed(fresh_server):
    """XEP-0184: the request reaches the recipient as sent, and the only
    <received/> the sender gets is the one the recipient's device sent, on
    the live, the offline and the resumed path."""
    srv = fresh_server
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")

    def request(to, msg_id, text):
        return ("<message to='%s' id='%s' type='chat'><body>%s</body>"
                "<request xmlns='%s'/><origin-id xmlns='urn:xmpp:sid:0' id='o-%s'/></message>"
                % (to, msg_id, text, NS_RECEIPTS, msg_id))

    def receipt(to, msg_id):
        return "<message to='%s' id='ack-%s'><received xmlns='%s' id='%s'/></message>" % (
            to, msg_id, NS_RECEIPTS, msg_id)

    def is_receipt(msg_id):
        return lambda e: is_message(e) and e.find(q(NS_RECEIPTS, "received")) is not None \
            and e.find(q(NS_RECEIPTS, "received")).get("id") == msg_id

    def check_request(got, sent_xml):
        assert got.find(q(NS_RECEIPTS, "request")) is not None, "request lost: %s" % to_string(got)
        assert payload(got) == payload(parse(sent_xml)), "changed on the way: %s" % to_string(got)

    alice = srv.raw_login(alice_jid, alice_pw, "desk")
    alice.become_available()
    try:
        # live
        with srv.raw_login(bob_jid, bob_pw, "phone") as bob:
            bob.become_available()
            sent = request(bob_jid, "r1", "live")
            alice.send(sent)
            got = bob.wait_for(is_message)
            check_request(got, sent)
            early = [to_string(e) for e in alice.collect(0.8) if is_message(e)]
            assert not early, "a receipt before the device sent one: %s" % early
            bob.send(receipt(alice.jid, "r1"))
            rcpt = alice.wait_for(is_receipt("r1"))
            assert rcpt.get("from") == bob.jid, "the receipt comes from the device: %s" % to_string(rcpt)
            assert payload(rcpt) == payload(parse(receipt(alice.jid, "r1")))
            logout(bob)

        # offline: the request waits with the message; nobody answers for bob
        sent = request(bob_jid, "r2", "offline")
        alice.send(sent)
        early = [to_string(e) for e in alice.collect(1.0) if is_message(e)]
        assert not early, "a receipt or error while bob is offline: %s" % early
        with srv.raw_login(bob_jid, bob_pw, "phone") as bob:
            bob.become_available()
            got = bob.wait_for(is_message)
            assert got.get("id") == "r2"
            check_request(got, sent)
            assert got.find(q(NS_DELAY, "delay")) is not None
            # the receipt itself takes the offline path too: alice is away
            logout(alice)
            bob.send(receipt(alice_jid, "r2"))
            time.sleep(0.5)
            assert not errors_in(bob), errors_in(bob)
            logout(bob)
        alice = srv.raw_login(alice_jid, alice_pw, "desk")
        alice.become_available()
        rcpt = alice.wait_for(is_message)
        assert is_receipt("r2")(rcpt), to_string(rcpt)
        assert rcpt.get("from") == bob_jid + "/phone"

        # resumed: the message was written to bob, the connection died
        # before bob confirmed it; after <resumed/> it comes again as sent
        bob = srv.raw_login(bob_jid, bob_pw, "phone")
        bob.become_available()
        previd = enable_sm(bob, resume=True).get("id")
        sent = request(bob.jid, "r3", "resumed")
        alice.send(sent)
        bob.wait_for(is_message)
        bob.close()
        time.sleep(0.3)
        bob, answer = resume(srv, bob_jid, bob_pw, previd, 0)
        try:
            assert answer.tag == sm("resumed"), to_string(answer)
            got = bob.wait_for(is_message)
            assert got.get("id") == "r3"
            check_request(got, sent)
            assert not [e for e in alice.collect(0.5) if is_message(e)], "receipt before the device's"
            bob.send(receipt(alice.jid, "r3"))
            rcpt = alice.wait_for(is_receipt("r3"))
            assert rcpt.get("from") == bob_jid + "/phone"
        finally:
            bob.close()
    finally:
        alice.close()


def test_chat_markers_pass_through_live_and_offline(fresh_server):
    """XEP-0333: <markable/> reaches the recipient, and the recipient's
    <displayed/> reaches the sender, live and through offline storage."""
    srv = fresh_server
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")

    def markable(to, msg_id):
        return ("<message to='%s' id='%s' type='chat'><body>see %s?</body><markable xmlns='%s'/></message>"
                % (to, msg_id, msg_id, NS_MARKERS))

    def displayed(to, msg_id):
        return "<message to='%s' id='d-%s' type='chat'><displayed xmlns='%s' id='%s'/></message>" % (
            to, msg_id, NS_MARKERS, msg_id)

    def check_displayed(got, msg_id, sender_full):
        marker = got.find(q(NS_MARKERS, "displayed"))
        assert marker is not None and marker.get("id") == msg_id, to_string(got)
        assert got.get("from") == sender_full, to_string(got)
        assert payload(got) == payload(parse(displayed("x", msg_id)))

    with srv.raw_login(alice_jid, alice_pw, "desk") as alice, \
            srv.raw_login(bob_jid, bob_pw, "phone") as bob:
        alice.become_available()
        bob.become_available()
        sent = markable(bob_jid, "m1")
        alice.send(sent)
        got = bob.wait_for(is_message)
        assert payload(got) == payload(parse(sent)), to_string(got)
        assert not [e for e in alice.collect(0.5) if is_message(e)]
        bob.send(displayed(alice.jid, "m1"))
        check_displayed(alice.wait_for(is_message), "m1", bob.jid)
        bob_full = bob.jid
        logout(bob)

        sent = markable(bob_jid, "m2")
        alice.send(sent)
        assert not [to_string(e) for e in alice.collect(0.8) if is_message(e)]
        logout(alice)

    with srv.raw_login(bob_jid, bob_pw, "phone") as bob:
        bob.become_available()
        got = bob.wait_for(is_message)
        assert got.get("id") == "m2" and payload(got) == payload(parse(sent)), to_string(got)
        bob.send(displayed(alice_jid, "m2"))  # alice is offline: a marker without body is stored
        time.sleep(0.5)
        assert not errors_in(bob), errors_in(bob)
        logout(bob)
    with srv.raw_login(alice_jid, alice_pw, "desk") as alice:
        alice.become_available()
        got = alice.wait_for(is_message)
        check_displayed(got, "m2", bob_full)
        assert got.find(q(NS_DELAY, "delay")) is not None


# ---------------------------------------------------------------- 5. carbons


def enable_carbons(c):
    answer = c.iq("set", None, "<enable xmlns='%s'/>" % NS_CARBONS)
    assert answer.get("type") == "result", to_string(answer)


def carbon(e, direction):
    """(wrapper, forwarded message) when e is a carbon of `direction`."""
    if not is_message(e):
        return None
    wrap = e.find(q(NS_CARBONS, direction))
    if wrap is None:
        return None
    inner = wrap.find("%s/%s" % (q(NS_FORWARD, "forwarded"), q(NS_CLIENT, "message")))
    assert inner is not None, "carbon without a forwarded message: %s" % to_string(e)
    return inner


def test_carbons_sent_and_received_and_hints(fresh_server):
    """XEP-0280: a copy of what one resource sends and receives goes to
    the user's other carbons-enabled resources, from the bare JID, wrapped
    in <sent/>/<received/><forwarded/>; <private/> and <no-copy/> suppress
    the copies; a resource that did not enable carbons gets none."""
    srv = fresh_server
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")
    laptop = srv.raw_login(alice_jid, alice_pw, "laptop")
    phone = srv.raw_login(alice_jid, alice_pw, "phone")
    desk = srv.raw_login(alice_jid, alice_pw, "desk")
    bob = srv.raw_login(bob_jid, bob_pw, "pc")
    clients = (laptop, phone, desk, bob)
    try:
        for c in clients:
            c.become_available()
        enable_carbons(laptop)
        enable_carbons(phone)
        settle(clients, 0.3)
        marks = {id(c): len(c.received) for c in clients}

        def new(c):
            got = messages_after(c, marks[id(c)])
            marks[id(c)] = len(c.received)
            return got

        # sent by laptop
        laptop.send("<message to='%s' id='s1' type='chat'><body>from the laptop</body></message>" % bob_jid)
        assert body(bob.wait_for(is_message)) == "from the laptop"
        copy = phone.wait_for(lambda e: carbon(e, "sent") is not None)
        assert copy.get("from") == alice_jid, "a carbon comes from the bare JID: %s" % to_string(copy)
        assert copy.get("to") == phone.jid
        inner = carbon(copy, "sent")
        assert (inner.get("from"), inner.get("to"), inner.get("id"), body(inner)) == (
            laptop.jid, bob_jid, "s1", "from the laptop"), to_string(copy)
        settle(clients, 0.4)
        assert not new(desk), "desk did not enable carbons"
        assert not new(laptop), "the sender gets no copy of its own message"
        new(phone)
        new(bob)

        # received by laptop (sent to its full JID)
        bob.send("<message to='%s' id='r1' type='chat'><body>to the laptop</body></message>" % laptop.jid)
        assert body(laptop.wait_for(is_message)) == "to the laptop"
        copy = phone.wait_for(lambda e: carbon(e, "received") is not None)
        assert copy.get("from") == alice_jid
        inner = carbon(copy, "received")
        assert (inner.get("from"), inner.get("to"), inner.get("id"), body(inner)) == (
            bob.jid, laptop.jid, "r1", "to the laptop"), to_string(copy)
        settle(clients, 0.4)
        assert not new(desk), "desk did not enable carbons"
        new(phone)
        new(laptop)

        # to the bare JID: every resource gets the message itself, nobody a copy on top
        bob.send("<message to='%s' id='r2' type='chat'><body>to all of alice</body></message>" % alice_jid)
        settle(clients, 0.6)
        for c in (laptop, phone, desk):
            got = new(c)
            assert [(m.get("id"), carbon(m, "received") is None) for m in got] == [("r2", True)], \
                [to_string(m) for m in got]

        # the hints: no copies at all
        laptop.send("<message to='%s' id='p1' type='chat'><body>private</body><private xmlns='%s'/>"
                    "</message>" % (bob_jid, NS_CARBONS))
        laptop.send("<message to='%s' id='p2' type='chat'><body>no-copy</body><no-copy xmlns='%s'/>"
                    "</message>" % (bob_jid, NS_HINTS))
        bob.send("<message to='%s' id='p3' type='chat'><body>private in</body><private xmlns='%s'/>"
                 "</message>" % (laptop.jid, NS_CARBONS))
        bob.send("<message to='%s' id='p4' type='chat'><body>no-copy in</body><no-copy xmlns='%s'/>"
                 "</message>" % (laptop.jid, NS_HINTS))
        settle(clients, 0.8)
        assert [m.get("id") for m in new(bob)] == ["p1", "p2"]
        assert [m.get("id") for m in new(laptop)] == ["p3", "p4"]
        leaked = [to_string(m) for m in new(phone)]
        assert not leaked, "copies despite <private/> or <no-copy/>: %s" % leaked
        assert not new(desk)

        # disabling stops the copies
        answer = phone.iq("set", None, "<disable xmlns='%s'/>" % NS_CARBONS)
        assert answer.get("type") == "result", to_string(answer)
        laptop.send("<message to='%s' id='s2' type='chat'><body>after disable</body></message>" % bob_jid)
        bob.wait_for(is_message)
        phone.collect(0.6)
        assert not new(phone), "copies after <disable/>"
    finally:
        for c in clients:
            c.close()


def test_carbons_with_slixmpp(fresh_server):
    """slixmpp's XEP-0280 plugin on the receiving side of the copies."""
    srv = fresh_server
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")

    async def scenario():
        phone = slix_client(alice_jid + "/phone", alice_pw, srv)
        phone.register_plugin("xep_0280")
        sent, received = asyncio.Queue(), asyncio.Queue()
        phone.add_event_handler("carbon_sent", sent.put_nowait)
        phone.add_event_handler("carbon_received", received.put_nowait)
        await phone.login(srv.c2s_port)
        await phone["xep_0280"].enable()
        laptop = await slix_client(alice_jid + "/laptop", alice_pw, srv).login(srv.c2s_port)
        bob = await slix_client(bob_jid + "/pc", bob_pw, srv).login(srv.c2s_port)

        laptop.send_message(mto=bob_jid, mbody="hi from the laptop", mtype="chat")
        assert (await bob.next_message())["body"] == "hi from the laptop"
        copy = await asyncio.wait_for(sent.get(), 5)
        assert copy["carbon_sent"]["body"] == "hi from the laptop"
        assert copy["carbon_sent"]["from"].full == laptop.boundjid.full

        bob.send_message(mto=laptop.boundjid.full, mbody="hi laptop", mtype="chat")
        assert (await laptop.next_message())["body"] == "hi laptop"
        copy = await asyncio.wait_for(received.get(), 5)
        assert copy["carbon_received"]["body"] == "hi laptop"
        assert copy["carbon_received"]["from"].full == bob.boundjid.full
        await asyncio.gather(phone.logout(), laptop.logout(), bob.logout())

    run(scenario())


# -------------------------------------------------------------------- 6. CSI


def csi_pair(srv):
    """alice and bob subscribed both ways; bob logged in, available, inactive."""
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")
    r = srv.ctl("add_rosteritem", alice_jid.split("@")[0], "localhost", bob_jid.split("@")[0],
                "localhost", "bob", "", "both")
    assert r.returncode == 0, r.stdout + r.stderr
    bob = srv.raw_login(bob_jid, bob_pw, "phone")
    assert bob.features.find(q(NS_CSI, "csi")) is not None, "CSI not advertised: %s" % to_string(bob.features)
    bob.become_available()
    bob.send("<inactive xmlns='%s'/>" % NS_CSI)
    time.sleep(0.2)
    alice = srv.raw_login(alice_jid, alice_pw, "desk")
    bob.mark = len(bob.received)
    return alice, bob, bob_jid


def stanzas_from(c, full):
    """(kind, status) of what came from `full` since c.mark."""
    return [(e.tag.split("}")[1], e.findtext(q(NS_CLIENT, "status")))
            for e in c.received[c.mark:] if e.get("from") == full and is_stanza(e)]


def test_csi_holds_and_folds_presence_until_active(fresh_server):
    """XEP-0352: while bob is inactive alice's presence updates are held and
    folded to the latest one, which <active/> delivers; once active,
    presence flows at once again."""
    alice, bob, bob_jid = csi_pair(fresh_server)
    with alice, bob:
        alice.become_available()
        for status in ("s1", "s2", "s3"):
            alice.send("<presence><show>away</show><status>%s</status></presence>" % status)
            time.sleep(0.2)  # one at a time: test_roster's ordering test covers bursts
        bob.collect(1.0)
        held = stanzas_from(bob, alice.jid)
        assert not held, "presence reached an inactive client: %s" % held
        bob.send("<active xmlns='%s'/>" % NS_CSI)
        bob.collect(0.8)
        assert stanzas_from(bob, alice.jid) == [("presence", "s3")], "expected only the latest"

        bob.mark = len(bob.received)
        alice.send("<presence><status>s4</status></presence>")
        bob.wait_for(lambda e: e.get("from") == alice.jid and e.findtext(q(NS_CLIENT, "status")) == "s4",
                     timeout=2)


def test_csi_message_goes_out_at_once_after_the_held_presence(fresh_server):
    alice, bob, bob_jid = csi_pair(fresh_server)
    with alice, bob:
        alice.become_available()
        for status in ("s1", "s2"):
            alice.send("<presence><show>away</show><status>%s</status></presence>" % status)
            time.sleep(0.2)
        bob.collect(0.8)
        assert not stanzas_from(bob, alice.jid), "presence reached an inactive client"
        alice.send("<message to='%s' id='wake' type='chat'><body>urgent</body></message>" % bob_jid)
        bob.wait_for(is_message, timeout=1.0)  # not held
        bob.collect(0.3)
        assert stanzas_from(bob, alice.jid) == [("presence", "s2"), ("message", None)], (
            "expected the latest presence, then the message")


# ---------------------------------------------------------- 7. offline quota


@pytest.mark.server_config({"modules": {"offline": {"max_messages": 3}}})
def test_offline_quota(fresh_server):
    """Issue 5 quotas: past modules.offline.max_messages the sender gets
    <service-unavailable/> with a text; the stored ones are all delivered."""
    srv = fresh_server
    alice_jid, alice_pw = srv.new_user("alice")
    bob_jid, bob_pw = srv.new_user("bob")
    with srv.raw_login(alice_jid, alice_pw) as alice:
        for i in range(3):
            alice.send("<message to='%s' id='q%d' type='chat'><body>q %d</body></message>" % (bob_jid, i, i))
        assert not [to_string(e) for e in alice.collect(0.8) if is_message(e)]
        alice.send("<message to='%s' id='q3' type='chat'><body>q 3</body></message>" % bob_jid)
        bounce = alice.wait_for(is_message, timeout=5)
        assert bounce.get("type") == "error" and bounce.get("id") == "q3", to_string(bounce)
        assert stanza_error(bounce) == ("cancel", "service-unavailable"), to_string(bounce)
        text = bounce.find("%s/%s" % (q(NS_CLIENT, "error"), q(NS_STANZA_ERRORS, "text")))
        assert text is not None and text.text, "no text saying why: %s" % to_string(bounce)
        assert bounce.get("from") == bob_jid, to_string(bounce)
    assert ctl_offline_count(srv, bob_jid) == 3
    with srv.raw_login(bob_jid, bob_pw) as bob:
        bob.become_available()
        got = wait_messages(bob, 3)
        bob.collect(0.5)
        assert [m.get("id") for m in messages_after(bob)] == ["q0", "q1", "q2"]
    assert wait_offline_count(srv, bob_jid, 0) == 0
