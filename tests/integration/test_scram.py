"""SCRAM on the wire (RFC 5802, RFC 7677) with our own client: mutual
authentication, channel binding (tls-server-end-point, RFC 5929) and the
downgrade protection of the GS2 flag."""

import pytest

from rawxmpp import NS_SASL, q, to_string

NS_SASL_CB = "urn:xmpp:sasl-cb:0"


def failure_condition(answer):
    assert answer.tag == q(NS_SASL, "failure"), to_string(answer)
    conds = [c.tag.split("}")[1] for c in answer if c.tag.split("}")[1] != "text"]
    return conds[0] if conds else None


@pytest.fixture(params=["starttls", "direct-tls"])
def stream(server, request):
    c = server.raw(direct_tls=request.param == "direct-tls")
    c.open_stream()
    if request.param == "starttls":
        c.starttls()
    yield c
    c.close()


@pytest.fixture
def account(server):
    jid, pw = server.new_user("scram")
    return jid.split("@")[0], pw


def test_channel_binding_types_advertised(stream):
    """XEP-0440: which channel-binding types the server can do."""
    cb = stream.feature(NS_SASL_CB, "sasl-channel-binding")
    assert cb is not None, to_string(stream.features)
    types = {c.get("type") for c in cb}
    assert "tls-server-end-point" in types, types
    assert {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"} <= set(stream.mechanisms())


@pytest.mark.parametrize("hash_name", ["sha1", "sha256"])
def test_scram_mutual_auth(stream, account, hash_name):
    answer = stream.auth_scram(*account, hash_name)  # checks the server signature
    assert answer.tag == q(NS_SASL, "success"), to_string(answer)
    assert stream.bind().startswith(account[0] + "@localhost/")


@pytest.mark.parametrize("hash_name", ["sha1", "sha256"])
def test_scram_plus_tls_server_end_point(stream, account, hash_name):
    answer = stream.auth_scram(*account, hash_name, plus=True)
    assert answer.tag == q(NS_SASL, "success"), to_string(answer)
    assert stream.bind()


def test_scram_plus_wrong_binding_data_fails(stream, account):
    """What a man in the middle with another certificate would send."""
    answer = stream.auth_scram(*account, "sha256", plus=True, cb_data=b"\0" * 32)
    assert failure_condition(answer) == "not-authorized"


def test_scram_plus_unsupported_binding_type_fails(stream, account):
    answer = stream.auth_scram(*account, "sha256", plus=True, gs2_flag="p=tls-unique", cb_data=b"x" * 12)
    assert failure_condition(answer) in ("not-authorized", "malformed-request",
                                         "invalid-mechanism", "encryption-required")


def test_gs2_y_flag_is_a_downgrade(stream, account):
    """RFC 5802 §6: 'y' says "I could bind, but I think you cannot". The
    server offers -PLUS, so someone stripped it: authentication MUST fail."""
    answer = stream.auth_scram(*account, "sha256", gs2_flag="y")
    assert failure_condition(answer) == "not-authorized"


def test_plus_mechanism_without_binding_fails(stream, account):
    """A -PLUS mechanism with GS2 flag 'n' is inconsistent (RFC 5802 §6)."""
    answer = stream.auth_scram(*account, "sha256", plus=True, gs2_flag="n")
    assert answer.tag == q(NS_SASL, "failure"), to_string(answer)


def test_scram_wrong_password(stream, account):
    answer = stream.auth_scram(account[0], "wrong " + account[1], "sha256")
    assert failure_condition(answer) == "not-authorized"


def test_scram_unknown_user_looks_like_wrong_password(stream):
    """The server must not reveal which accounts exist: an unknown user
    gets a challenge like anybody else and fails only at the proof."""
    answer = stream.auth_scram("nobody-here", "whatever", "sha256")
    assert stream.scram_server_first, "no server-first message for an unknown user"
    assert failure_condition(answer) == "not-authorized"


def pyopenssl_stream(server):
    from rawxmpp import RawXmpp

    c = RawXmpp(server.tls_port, cafile=server.cafile).connect_pyopenssl()
    c.open_stream()
    return c


def test_direct_tls_selects_alpn_xmpp_client(server):
    """XEP-0368 §3: the server answers ALPN 'xmpp-client' on direct TLS."""
    c = pyopenssl_stream(server)
    try:
        assert c.sock.conn.get_alpn_proto_negotiated() == b"xmpp-client"
        assert c.sock.conn.get_protocol_version_name() == "TLSv1.3"
    finally:
        c.close()


def test_scram_plus_with_tls_exporter(server, account):
    """RFC 9266 tls-exporter binding on TLS 1.3, advertised per XEP-0440;
    the server checks it: the right data succeeds, other data fails."""
    user, pw = account
    c = pyopenssl_stream(server)
    try:
        cb = c.feature(NS_SASL_CB, "sasl-channel-binding")
        assert cb is not None and "tls-exporter" in {t.get("type") for t in cb}, to_string(c.features)
        answer = c.auth_scram(user, pw, "sha256", plus=True, gs2_flag="p=tls-exporter", cb_data=b"\0" * 32)
        assert failure_condition(answer) == "not-authorized"
    finally:
        c.close()
    c = pyopenssl_stream(server)
    try:
        answer = c.auth_scram(user, pw, "sha256", plus=True, gs2_flag="p=tls-exporter")
        assert answer.tag == q(NS_SASL, "success"), to_string(answer)
        assert c.bind("exporter").endswith("/exporter")
    finally:
        c.close()
