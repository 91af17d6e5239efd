"""XEP-0198 stream management on the wire, and with slixmpp's plugin:
enable, acks in both directions, resumption after a dropped connection
with the unacknowledged and the meanwhile-sent stanzas, failed resumes."""

import asyncio

from harness import run, slix_client
from rawxmpp import NS_CLIENT, NS_SASL, q, to_string

NS_SM = "urn:xmpp:sm:3"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def sm(local):
    return q(NS_SM, local)


def is_message(e):
    return e.tag == q(NS_CLIENT, "message")


def enable(c, resume=True):
    assert c.feature(NS_SM, "sm") is not None, "no XEP-0198 in the features after SASL"
    c.send("<enable xmlns='%s'%s/>" % (NS_SM, " resume='true'" if resume else ""))
    answer = c.wait_for(lambda e: e.tag in (sm("enabled"), sm("failed")))
    assert answer.tag == sm("enabled"), to_string(answer)
    return answer


def test_enable_and_acks(server):
    jid, pw = server.new_user("smack")
    with server.raw_login(jid, pw) as c:
        enabled = enable(c, resume=False)
        assert enabled.get("resume") not in ("true", "1"), to_string(enabled)
        for i in range(3):
            c.iq("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
        c.send("<r xmlns='%s'/>" % NS_SM)
        ack = c.wait_for(sm("a"))
        assert ack.get("h") == "3", "server counted %s stanzas, we sent 3" % ack.get("h")


def test_server_requests_acks_for_what_it_sends(server):
    jid, pw = server.new_user("smreq")
    peer_jid, peer_pw = server.new_user("smpeer")
    with server.raw_login(jid, pw, "sm") as c, server.raw_login(peer_jid, peer_pw) as peer:
        enable(c)
        peer.send("<message to='%s' type='chat'><body>hello</body></message>" % c.jid)
        got = c.wait_for(is_message)
        assert got.findtext(q(NS_CLIENT, "body")) == "hello"
        # the server asks for an acknowledgement of what it sent
        c.wait_for(sm("r"), timeout=5)
        c.send("<a xmlns='%s' h='1'/>" % NS_SM)
        # and the stream is still fine
        assert c.iq("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>").get("type") == "result"


def authenticate(server, jid, pw):
    c = server.raw()
    c.open_stream()
    c.starttls()
    assert c.auth_plain(jid.split("@")[0], pw).tag == q(NS_SASL, "success")
    return c


def test_resume_after_dropped_connection(server):
    jid, pw = server.new_user("smres")
    peer_jid, peer_pw = server.new_user("smsender")
    peer = server.raw_login(peer_jid, peer_pw)
    c = server.raw_login(jid, pw, "phone")
    try:
        full = c.jid
        enabled = enable(c)
        assert enabled.get("resume") in ("true", "1"), to_string(enabled)
        smid = enabled.get("id")
        assert smid, to_string(enabled)

        peer.send("<message to='%s' id='m1' type='chat'><body>one</body></message>" % full)
        assert c.wait_for(is_message).get("id") == "m1"
        c.send("<a xmlns='%s' h='1'/>" % NS_SM)
        peer.send("<message to='%s' id='m2' type='chat'><body>two</body></message>" % full)
        assert c.wait_for(is_message).get("id") == "m2"
        # m2 is never acknowledged: the connection just dies.
        c.close()

        peer.send("<message to='%s' id='m3' type='chat'><body>three</body></message>" % full)
        bounced = [e for e in peer.collect(1.0) if is_message(e)]
        assert not bounced, "message to a resumable session bounced: %s" % [
            to_string(b) for b in bounced]

        c = authenticate(server, jid, pw)
        c.send("<resume xmlns='%s' previd='%s' h='1'/>" % (NS_SM, smid))
        answer = c.wait_for(lambda e: e.tag in (sm("resumed"), sm("failed")))
        assert answer.tag == sm("resumed"), to_string(answer)
        assert answer.get("previd") == smid
        assert answer.get("h") == "0", "we sent no stanzas, server says h=%s" % answer.get("h")
        again = [c.wait_for(is_message, timeout=5) for _ in range(2)]
        assert [m.get("id") for m in again] == ["m2", "m3"], [to_string(m) for m in again]

        # same full JID as before
        peer.send("<message to='%s' id='m4' type='chat'><body>four</body></message>" % full)
        m4 = c.wait_for(is_message, timeout=5)
        assert m4.get("id") == "m4"
        assert c.iq("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>").get("to") == full
    finally:
        c.close()
        peer.close()


def test_resume_unknown_id_fails_and_bind_still_works(server):
    jid, pw = server.new_user("smbad")
    with authenticate(server, jid, pw) as c:
        c.send("<resume xmlns='%s' previd='no-such-session' h='0'/>" % NS_SM)
        answer = c.wait_for(lambda e: e.tag in (sm("resumed"), sm("failed")))
        assert answer.tag == sm("failed"), to_string(answer)
        assert answer.find(q(NS_STANZAS, "item-not-found")) is not None, to_string(answer)
        assert c.bind("fresh").endswith("/fresh")


def test_slixmpp_stream_management(server):
    jid, pw = server.new_user("slixsm")
    peer_jid, peer_pw = server.new_user("slixpeer")

    async def scenario():
        c = slix_client(jid, pw, server)
        c.register_plugin("xep_0198")
        enabled = asyncio.get_running_loop().create_future()
        c.add_event_handler("sm_enabled", lambda _: enabled.done() or enabled.set_result(True))
        await c.login(server.c2s_port)
        await asyncio.wait_for(enabled, 5)
        peer = await slix_client(peer_jid, peer_pw, server).login(server.c2s_port)
        for i in range(5):
            peer.send_message(mto=c.boundjid.full, mbody="sm %d" % i, mtype="chat")
        got = [await c.next_message() for _ in range(5)]
        assert [m["body"] for m in got] == ["sm %d" % i for i in range(5)]
        for i in range(5):
            c.send_message(mto=peer.boundjid.full, mbody="back %d" % i, mtype="chat")
        back = [await peer.next_message() for _ in range(5)]
        assert [m["body"] for m in back] == ["back %d" % i for i in range(5)]
        # Every stanza slixmpp sent after <enable/> is acknowledged: its
        # initial presence went out before <enable/>, so that is 5.
        c["xep_0198"].request_ack()
        for _ in range(50):
            if c["xep_0198"].last_ack == 5:
                break
            await asyncio.sleep(0.1)
        assert c["xep_0198"].last_ack == 5, c["xep_0198"].last_ack
        assert not c["xep_0198"].unacked_queue, list(c["xep_0198"].unacked_queue)
        await asyncio.gather(c.logout(), peer.logout())

    run(scenario())
