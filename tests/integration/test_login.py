"""Logging in: STARTTLS and direct TLS, the SASL mechanisms, wrong passwords."""

import pytest

from harness import LoginFailed, run, slix_client
from rawxmpp import NS_SASL, NS_TLS, q, to_string


def test_slixmpp_starttls_scram_sha256(server):
    jid, password = server.new_user("scram")

    async def scenario():
        c = slix_client(jid, password, server, sasl_mech="SCRAM-SHA-256")
        await c.login(server.c2s_port)
        assert c.encrypted, "the session is not running over TLS"
        assert "starttls" in c.features, "slixmpp did not negotiate STARTTLS"
        assert c.mechanism == "SCRAM-SHA-256"
        offered = c.offered_mechanisms
        for mech in ("SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"):
            assert mech in offered, "%s not offered after TLS: %s" % (mech, sorted(offered))
        assert c.boundjid.bare == jid
        assert c.boundjid.resource, "no resource bound"
        reason = await c.logout()
        assert reason == "End of stream", (
            "the server did not answer our </stream:stream> with its own (got %r)" % reason)

    run(scenario())


@pytest.mark.parametrize("mech", ["SCRAM-SHA-1", "PLAIN"])
def test_slixmpp_other_mechanisms(server, mech):
    jid, password = server.new_user("mech")

    async def scenario():
        c = slix_client(jid, password, server, sasl_mech=mech)
        await c.login(server.c2s_port)
        assert c.encrypted
        assert c.mechanism == mech
        assert c.boundjid.bare == jid
        await c.logout()

    run(scenario())


def test_slixmpp_default_mechanism_choice(server):
    """slixmpp left to itself tries the strongest mechanism it knows first:
    SCRAM-*-PLUS bound to tls-unique, which TLS 1.3 does not define (RFC
    9266), so the server refuses it; slixmpp then retries other mechanisms
    on the same stream (RFC 6120 §6.4.5). Those carry the GS2 flag 'y',
    which a server offering -PLUS must refuse (RFC 5802 §6), so the login
    may end on PLAIN - but it must end in a session."""
    jid, password = server.new_user("default")

    async def scenario():
        c = slix_client(jid, password, server, sasl_mech=None)
        await c.login(server.c2s_port)
        assert c.encrypted
        assert c.mechanism in c.offered_mechanisms, c.mechanism
        await c.logout()

    run(scenario())


def test_slixmpp_direct_tls(server):
    """XEP-0368: TLS from the first byte on the direct-TLS port."""
    jid, password = server.new_user("direct")

    async def scenario():
        c = slix_client(jid, password, server, sasl_mech="SCRAM-SHA-256")
        await c.login(server.tls_port, direct_tls=True)
        assert c.encrypted
        assert "starttls" not in c.features, "STARTTLS negotiated inside direct TLS"
        assert c.mechanism == "SCRAM-SHA-256"
        assert c.boundjid.bare == jid and c.boundjid.resource
        reason = await c.logout()
        assert reason == "End of stream", reason

    run(scenario())


def test_raw_direct_tls_features_have_no_starttls(server):
    jid, password = server.new_user("rawdirect")
    with server.raw(direct_tls=True) as c:
        features = c.open_stream()
        assert c.feature(NS_TLS, "starttls") is None, to_string(features)
        assert "PLAIN" in c.mechanisms(), to_string(features)
        assert c.auth_plain(jid.split("@")[0], password).tag == q(NS_SASL, "success")
        assert c.bind("direct").endswith("/direct")


def test_raw_starttls_is_required_and_plain_hidden_before_tls(server):
    with server.raw() as c:
        features = c.open_stream()
        starttls = c.feature(NS_TLS, "starttls")
        assert starttls is not None, "no STARTTLS offered: %s" % to_string(features)
        assert starttls.find(q(NS_TLS, "required")) is not None, (
            "starttls_required is set but <required/> is missing: %s" % to_string(features))
        assert "PLAIN" not in c.mechanisms(), "PLAIN offered on a cleartext stream"
        c.starttls()
        assert c.feature(NS_TLS, "starttls") is None, "STARTTLS offered again after TLS"
        assert "PLAIN" in c.mechanisms()
        assert {"SCRAM-SHA-1", "SCRAM-SHA-256"} <= set(c.mechanisms()), c.mechanisms()


def test_slixmpp_wrong_password(server):
    jid, _ = server.new_user("victim")

    async def scenario():
        c = slix_client(jid, "not-the-password", server, sasl_mech="SCRAM-SHA-256")
        with pytest.raises(LoginFailed):
            await c.login(server.c2s_port)
        assert c.auth_failures == ["not-authorized"], c.auth_failures
        assert not c.authenticated
        c.kill()

    run(scenario())


@pytest.mark.parametrize("who", ["existing", "unknown"])
def test_raw_plain_wrong_password(server, who):
    if who == "existing":
        jid, _ = server.new_user("victim")
        user = jid.split("@")[0]
    else:
        user = "nosuchuser"
    with server.raw() as c:
        c.open_stream()
        c.starttls()
        answer = c.auth_plain(user, "wrong-password")
        assert answer.tag == q(NS_SASL, "failure"), to_string(answer)
        assert answer.find(q(NS_SASL, "not-authorized")) is not None, to_string(answer)
        # The stream stays usable: a retry with the right password would be
        # allowed (RFC 6120 §6.4.5); here we just close politely.
        c.end_stream()


def test_raw_retry_after_failure_succeeds(server):
    """RFC 6120 §6.4.5: the server SHOULD allow at least two attempts."""
    jid, password = server.new_user("retry")
    user = jid.split("@")[0]
    with server.raw() as c:
        c.open_stream()
        c.starttls()
        first = c.auth_plain(user, "wrong-password")
        assert first.tag == q(NS_SASL, "failure"), to_string(first)
        second = c.auth_plain(user, password)
        assert second.tag == q(NS_SASL, "success"), to_string(second)
        assert c.bind().startswith(jid + "/")
