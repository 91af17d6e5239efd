"""A database outage (RFC 6120 §6.5.11): logins fail with
<temporary-auth-failure/>, and work again when the database returns, without
restarting xmppd. PostgreSQL only: the outage is made real by refusing every
connection to the test database and cutting the server's existing ones."""
import subprocess
import time

import pytest

from harness import pg_conninfo
from rawxmpp import NS_SASL, q, to_string


def admin_sql(sql: str) -> None:
    # Connect to the maintenance database: the test database is the one we take away.
    conninfo = pg_conninfo().replace("dbname=xmppd_test", "dbname=postgres")
    r = subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", conninfo, "-c", sql],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def take_database_away() -> None:
    admin_sql("ALTER DATABASE xmppd_test ALLOW_CONNECTIONS false")
    admin_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
              "WHERE datname = 'xmppd_test' AND pid <> pg_backend_pid()")


def give_database_back() -> None:
    admin_sql("ALTER DATABASE xmppd_test ALLOW_CONNECTIONS true")


def plain_attempt(srv, user: str, password: str):
    c = srv.raw()
    try:
        c.open_stream()
        c.starttls()
        return c.auth_plain(user, password)
    finally:
        c.close()


def scram_attempt(srv, user: str, password: str):
    c = srv.raw()
    try:
        c.open_stream()
        c.starttls()
        return c.auth_scram(user, password, "sha256")
    finally:
        c.close()


@pytest.mark.parametrize("fresh_server", ["postgres"], indirect=True)
def test_outage_gives_temporary_auth_failure_and_recovers(fresh_server):
    if not pg_conninfo():
        pytest.skip("XMPPD_TEST_PG is not set (scripts/test sets it)")
    srv = fresh_server
    jid, password = srv.new_user("outage")
    user = jid.split("@")[0]
    assert plain_attempt(srv, user, password).tag == q(NS_SASL, "success")

    take_database_away()
    try:
        for attempt in (plain_attempt, scram_attempt):
            answer = attempt(srv, user, password)
            assert answer.tag == q(NS_SASL, "failure"), to_string(answer)
            assert answer.find(q(NS_SASL, "temporary-auth-failure")) is not None, to_string(answer)
        # The server itself is still up and serving.
        assert srv.ctl("status").returncode == 0
    finally:
        give_database_back()

    # Recovery without a restart: the pool reconnects on a later job.
    deadline = time.time() + 15
    while True:
        answer = plain_attempt(srv, user, password)
        if answer.tag == q(NS_SASL, "success"):
            break
        assert time.time() < deadline, "login still failing after the database returned: " + to_string(answer)
        time.sleep(0.5)
    assert srv.alive()
