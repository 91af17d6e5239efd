"""Many sessions at once: 200 concurrent slixmpp logins over STARTTLS with
SCRAM, server-generated resources, then a message round through all of them."""

import asyncio
import time

from harness import run, slix_client

USERS = 50
SESSIONS_PER_USER = 4


def test_200_concurrent_logins(server):
    users = server.new_users(USERS, "load")

    async def scenario():
        clients = [
            slix_client(jid, pw, server, presence=False)
            for jid, pw in users
            for _ in range(SESSIONS_PER_USER)
        ]
        started = time.monotonic()
        results = await asyncio.gather(
            *(c.login(server.c2s_port, timeout=90) for c in clients), return_exceptions=True)
        elapsed = time.monotonic() - started
        failures = [(str(c.requested_jid), repr(r)) for c, r in zip(clients, results)
                    if isinstance(r, BaseException)]
        assert not failures, "%d of %d logins failed (%.1fs), first: %s" % (
            len(failures), len(clients), elapsed, failures[:5])

        fulls = [c.boundjid.full for c in clients]
        assert all(c.boundjid.resource for c in clients), "a session without a resource"
        assert len(set(fulls)) == len(clients), "resources are not distinct: %d unique of %d" % (
            len(set(fulls)), len(clients))
        for c, (jid, _) in zip(clients, [u for u in users for _ in range(SESSIONS_PER_USER)]):
            assert c.boundjid.bare == jid

        # Each session sends one message to the next one's full JID.
        for i, c in enumerate(clients):
            target = clients[(i + 1) % len(clients)]
            c.send_message(mto=target.boundjid.full, mbody="ring %d" % i, mtype="chat")
        got = await asyncio.gather(*(c.next_message(timeout=30) for c in clients))
        for i, msg in enumerate(got):
            sender = (i - 1) % len(clients)
            assert msg["body"] == "ring %d" % sender
            assert msg["from"].full == fulls[sender]

        await asyncio.gather(*(c.logout() for c in clients))

    run(scenario(), timeout=150)
