"""RFC 6120 stream rules checked on the wire with the raw client: the
stream header, stream errors for bad headers and restricted XML, stanzas
before authentication, resource conflicts, whitespace."""

import pytest

from rawxmpp import (NS_BIND, NS_CLIENT, NS_SASL, NS_STREAM, assert_closed_with, q,
                     stream_error_condition, to_string)

STREAM_OPEN = ("<?xml version='1.0'?><stream:stream to='%s' version='1.0' xml:lang='en' "
               "xmlns='%s' xmlns:stream='%s'>")


def test_stream_header(server):
    with server.raw() as c:
        c.open_stream()
        attrs = c.stream_attrs
        assert attrs.get("from") == "localhost", attrs
        assert attrs.get("version") == "1.0", attrs
        assert attrs.get("id"), "no stream id: %s" % attrs
    # a fresh stream id for every stream (RFC 6120 §4.7.3)
    with server.raw() as c2:
        c2.open_stream()
        assert c2.stream_attrs.get("id") != attrs.get("id")


def test_unknown_host_is_host_unknown(server):
    with server.raw() as c:
        c._reset_parser()
        c.send(STREAM_OPEN % ("not-served.example", "jabber:client", NS_STREAM))
        elements = c.read_until_closed(timeout=10)
        assert_closed_with(c, "host-unknown", elements)


def test_wrong_content_namespace_is_invalid_namespace(server):
    with server.raw() as c:
        c._reset_parser()
        c.send(STREAM_OPEN % ("localhost", "jabber:server:nonsense", NS_STREAM))
        elements = c.read_until_closed(timeout=10)
        assert_closed_with(c, "invalid-namespace", elements)


def test_wrong_stream_namespace_is_invalid_namespace(server):
    with server.raw() as c:
        c._reset_parser()
        c.send(STREAM_OPEN % ("localhost", "jabber:client", "urn:example:not-streams"))
        elements = c.read_until_closed(timeout=10)
        # The server's own header is in the right namespace even so.
        assert_closed_with(c, "invalid-namespace", elements)


@pytest.mark.parametrize("restricted", [
    "<!-- a comment -->",
    "<?some-pi data?>",
    "<message to='localhost'><body>&custom;</body></message>",
])
def test_restricted_xml(server, restricted):
    """RFC 6120 §11.1: comments, processing instructions and entity
    references other than the predefined ones end the stream."""
    jid, pw = server.new_user("restrict")
    with server.raw_login(jid, pw) as c:
        c.send(restricted)
        elements = c.read_until_closed(timeout=10)
        cond = stream_error_condition(elements)
        expected = ("restricted-xml",) if "&custom;" not in restricted else (
            "restricted-xml", "not-well-formed")  # an undefined entity is also not well-formed
        assert cond in expected, "got %r: %s" % (cond, [to_string(e) for e in elements])
        assert c.stream_ended and c.eof


def test_doctype_before_stream_is_restricted(server):
    with server.raw() as c:
        c._reset_parser()
        c.send("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>]>"
               + STREAM_OPEN.split("?>", 1)[1] % ("localhost", "jabber:client", NS_STREAM))
        elements = c.read_until_closed(timeout=10)
        cond = stream_error_condition(elements)
        assert cond in ("restricted-xml", "not-well-formed"), [to_string(e) for e in elements]
        assert c.eof


def test_invalid_utf8_ends_the_stream(server):
    """RFC 6120 §11.6 / §4.9.3.22: improperly encoded UTF-8."""
    jid, pw = server.new_user("utf")
    with server.raw_login(jid, pw) as c:
        c.send(b"<message to='localhost'><body>\xff\xfe\xc3</body></message>")
        elements = c.read_until_closed(timeout=10)
        cond = stream_error_condition(elements)
        assert cond in ("unsupported-encoding", "not-well-formed"), [to_string(e) for e in elements]
        assert c.stream_ended and c.eof


def test_stanza_before_authentication_is_not_authorized(server):
    """RFC 6120 §4.9.3.12."""
    with server.raw() as c:
        c.open_stream()
        c.starttls()
        c.send("<message to='someone@localhost'><body>let me in</body></message>")
        elements = c.read_until_closed(timeout=10)
        assert_closed_with(c, "not-authorized", elements)


def test_stanza_before_starttls_when_required(server):
    """starttls_required: nothing but STARTTLS before TLS; the RFC leaves the
    condition to the server (policy-violation or not-authorized are usual)."""
    with server.raw() as c:
        c.open_stream()
        c.send("<iq type='get' id='x'><ping xmlns='urn:xmpp:ping'/></iq>")
        elements = c.read_until_closed(timeout=10)
        cond = stream_error_condition(elements)
        assert cond in ("policy-violation", "not-authorized"), [to_string(e) for e in elements]
        assert not [e for e in elements if e.tag == q(NS_CLIENT, "iq")], "answered before TLS"
        assert c.eof


def test_whitespace_between_stanzas_is_fine(server):
    jid, pw = server.new_user("ws")
    with server.raw_login(jid, pw) as c:
        c.send(" \n\t \n")
        c.send("<iq type='get' id='ws1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>   \n")
        answer = c.wait_for(lambda e: e.get("id") == "ws1")
        assert answer.get("type") == "result", to_string(answer)


def test_stanza_split_across_many_writes(server):
    jid, pw = server.new_user("split")
    with server.raw_login(jid, pw) as c:
        stanza = "<iq type='get' id='split1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
        for ch in stanza:
            c.send(ch)
        answer = c.wait_for(lambda e: e.get("id") == "split1")
        assert answer.get("type") == "result", to_string(answer)


def test_too_deep_nesting_ends_the_stream(server):
    jid, pw = server.new_user("deep")
    with server.raw_login(jid, pw) as c:
        c.send("<message to='%s'><body/>%s" % (jid, "<x xmlns='urn:example:deep'>" * 100))
        elements = c.read_until_closed(timeout=10)
        cond = stream_error_condition(elements)
        assert cond in ("policy-violation", "restricted-xml"), [to_string(e) for e in elements]
        assert c.eof


def test_resource_conflict(server):
    """RFC 6120 §7.7.2.2: binding a resource that is in use either ends the
    old session with <conflict/>, refuses the new bind with <conflict/>, or
    gives the new session another resource."""
    jid, pw = server.new_user("conflict")
    old = server.raw_login(jid, pw, "same")
    new = server.raw()
    try:
        new.open_stream()
        new.starttls()
        assert new.auth_plain(jid.split("@")[0], pw).tag == q(NS_SASL, "success")
        new.send("<iq type='set' id='b2'><bind xmlns='%s'><resource>same</resource></bind></iq>"
                 % NS_BIND)
        answer = new.wait_for(lambda e: e.get("id") == "b2")
        if answer.get("type") == "error":
            assert answer.find("%s/{urn:ietf:params:xml:ns:xmpp-stanzas}conflict"
                               % q(NS_CLIENT, "error")) is not None, to_string(answer)
            ping = old.iq("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
            assert ping.get("type") == "result"
            return
        bound = answer.findtext("%s/%s" % (q(NS_BIND, "bind"), q(NS_BIND, "jid")))
        if bound != jid + "/same":
            assert bound and bound.startswith(jid + "/"), to_string(answer)
            ping = old.iq("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
            assert ping.get("type") == "result"
            return
        # The new session took the resource over: the old one is told why.
        elements = old.read_until_closed(timeout=10)
        assert stream_error_condition(elements) == "conflict", [to_string(e) for e in elements]
        assert old.eof
        ping = new.iq("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
        assert ping.get("type") == "result"
    finally:
        old.close()
        new.close()


def test_legacy_session_iq_is_optional_and_answered(server):
    """RFC 3921 §3 session establishment, kept for old clients: advertised as
    <optional/> (draft-cridland-xmpp-session-01 §2.1) and answered with a result."""
    jid, pw = server.new_user("legacy")
    c = server.raw()
    try:
        c.open_stream()
        c.starttls()
        assert c.auth_plain(jid.split("@")[0], pw).tag == q(NS_SASL, "success")
        session = c.feature("urn:ietf:params:xml:ns:xmpp-session", "session")
        assert session is not None, to_string(c.features)
        assert session.find(q("urn:ietf:params:xml:ns:xmpp-session", "optional")) is not None, to_string(session)
        c.bind("old")
        answer = c.iq("set", None, "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>")
        assert answer.get("type") == "result", to_string(answer)
    finally:
        c.close()
