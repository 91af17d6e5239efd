"""Routing between sessions (RFC 6121 §8): user to user, full vs bare JID,
several resources of one user, presence among one's own resources."""

import asyncio

from harness import run, slix_client


def test_message_alice_to_bob(server):
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")

    async def scenario():
        alice = await slix_client(alice_jid, alice_pw, server).login(server.c2s_port)
        bob = await slix_client(bob_jid, bob_pw, server).login(server.c2s_port)

        # to bob's bare JID
        msg = alice.make_message(mto=bob_jid, mbody="hello bob <&> \u00e9\u263a", mtype="chat")
        msg["id"] = "msg-bare-1"
        msg.send()
        got = await bob.next_message()
        assert got["body"] == "hello bob <&> \u00e9\u263a"
        assert got["id"] == "msg-bare-1"
        assert got["type"] == "chat"
        assert got["from"].full == alice.boundjid.full, (got["from"], alice.boundjid)
        assert got["to"].bare == bob_jid

        # to bob's full JID, the other way round too
        msg = bob.make_message(mto=alice.boundjid.full, mbody="hi alice", mtype="normal")
        msg["id"] = "msg-full-2"
        msg.send()
        got = await alice.next_message()
        assert got["body"] == "hi alice"
        assert got["id"] == "msg-full-2"
        assert got["from"].full == bob.boundjid.full
        assert got["to"].full == alice.boundjid.full

        await asyncio.gather(alice.logout(), bob.logout())

    run(scenario())


def test_message_to_unknown_resource_goes_to_bare_jid_or_errors(server):
    """RFC 6121 §8.5.3.2.1: a chat message to a full JID whose resource is not
    online is either handled as if sent to the bare JID or bounced with an
    error; silently losing it is not an option the RFC gives."""
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")

    async def scenario():
        alice = await slix_client(alice_jid, alice_pw, server).login(server.c2s_port)
        bob = await slix_client(bob_jid, bob_pw, server).login(server.c2s_port)
        errors = asyncio.Queue()
        alice.add_event_handler("message_error", errors.put_nowait)
        alice.send_message(mto=bob_jid + "/no-such-resource", mbody="to nowhere", mtype="chat")
        delivered = await bob.no_message(2.0)
        if delivered is None:
            err = await asyncio.wait_for(errors.get(), 2.0)
            assert err["error"]["condition"] in ("service-unavailable", "item-not-found",
                                                 "recipient-unavailable"), err
        else:
            assert delivered["body"] == "to nowhere"
        await asyncio.gather(alice.logout(), bob.logout())

    run(scenario())


def test_two_resources_of_one_user(server):
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")

    async def scenario():
        alice = await slix_client(alice_jid, alice_pw, server).login(server.c2s_port)
        bob1 = slix_client(bob_jid + "/phone", bob_pw, server, priority=0)
        await bob1.login(server.c2s_port)
        bob2 = slix_client(bob_jid + "/laptop", bob_pw, server, priority=0)
        await bob2.login(server.c2s_port)
        assert bob1.boundjid.full != bob2.boundjid.full
        assert bob1.boundjid.bare == bob2.boundjid.bare == bob_jid

        # bob2's initial presence is broadcast to bob's other available resource
        p = await bob1.next_presence(lambda p: p["from"].full == bob2.boundjid.full)
        assert p["type"] in ("available", ""), p

        # to a full JID: only that resource
        alice.send_message(mto=bob1.boundjid.full, mbody="just the phone", mtype="chat")
        got = await bob1.next_message()
        assert got["body"] == "just the phone"
        stray = await bob2.no_message(1.0)
        assert stray is None, "message to %s also reached %s: %s" % (
            bob1.boundjid, bob2.boundjid, stray)

        alice.send_message(mto=bob2.boundjid.full, mbody="just the laptop", mtype="chat")
        got = await bob2.next_message()
        assert got["body"] == "just the laptop"
        assert await bob1.no_message(1.0) is None

        # chat to the bare JID: both resources (equal non-negative priority)
        alice.send_message(mto=bob_jid, mbody="to both", mtype="chat")
        got1, got2 = await asyncio.gather(bob1.next_message(), bob2.next_message())
        assert got1["body"] == got2["body"] == "to both"
        assert got1["from"].full == got2["from"].full == alice.boundjid.full

        await asyncio.gather(alice.logout(), bob1.logout(), bob2.logout())

    run(scenario())


def test_negative_priority_resource_gets_no_bare_jid_chat(server):
    """RFC 6121 §8.5.2.1.1: a message to the bare JID is never delivered to a
    resource with negative priority."""
    alice_jid, alice_pw = server.new_user("alice")
    bob_jid, bob_pw = server.new_user("bob")

    async def scenario():
        alice = await slix_client(alice_jid, alice_pw, server).login(server.c2s_port)
        shy = await slix_client(bob_jid + "/shy", bob_pw, server, priority=-1).login(server.c2s_port)
        main = await slix_client(bob_jid + "/main", bob_pw, server, priority=5).login(server.c2s_port)
        await shy.next_presence(lambda p: p["from"].full == main.boundjid.full)
        alice.send_message(mto=bob_jid, mbody="for main only", mtype="chat")
        got = await main.next_message()
        assert got["body"] == "for main only"
        assert await shy.no_message(1.0) is None
        await asyncio.gather(alice.logout(), shy.logout(), main.logout())

    run(scenario())
