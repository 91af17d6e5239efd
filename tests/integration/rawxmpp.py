"""A deliberately small XMPP client on top of socket + ssl, for exact
protocol checks that a real client library would hide from us (stream
errors, SASL failures, what exactly comes before the connection closes).

Incoming XML is parsed with xml.etree's XMLPullParser fed incrementally.
The stream header is the parser's root element; every direct child of the
root (depth 1) is a top-level element (features, stanza, stream error...)
and is handed out whole, in order. `</stream:stream>` from the server ends
the root and sets `stream_ended`; the TCP connection closing sets `eof`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from typing import Callable, List, Optional, Union
from xml.sax.saxutils import escape, quoteattr

NS_STREAM = "http://etherx.jabber.org/streams"
NS_CLIENT = "jabber:client"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"
NS_STANZA_ERRORS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def q(ns: str, local: str) -> str:
    """Clark notation, as ElementTree spells qualified names."""
    return "{%s}%s" % (ns, local)


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def to_string(elem: ET.Element) -> str:
    return ET.tostring(elem, encoding="unicode")


class XmppProtocolError(AssertionError):
    """The server said something other than what the protocol step expects."""


class StreamClosed(XmppProtocolError):
    """The stream or the connection ended while we waited for something."""


Matcher = Union[str, Callable[[ET.Element], bool]]

_ids = itertools.count(1)


def next_id(prefix: str = "raw") -> str:
    return "%s%d" % (prefix, next(_ids))


class PyOpenSslSocket:
    """The few socket methods RawXmpp uses, over a pyOpenSSL connection."""

    def __init__(self, conn, sock: socket.socket) -> None:
        self.conn = conn
        self.raw = sock
        self.timeout: Optional[float] = None

    def settimeout(self, t: Optional[float]) -> None:
        # The socket stays blocking for OpenSSL; recv() waits with select.
        self.timeout = t

    def recv(self, n: int) -> bytes:
        import select

        from OpenSSL import SSL

        if self.conn.pending() == 0:
            ready, _, _ = select.select([self.raw], [], [], self.timeout)
            if not ready:
                raise socket.timeout()
        try:
            return self.conn.recv(n)
        except SSL.ZeroReturnError:
            return b""
        except SSL.WantReadError:
            raise socket.timeout()  # a record not complete yet; the caller reads again
        except SSL.SysCallError as e:
            if e.args and e.args[0] == -1:  # EOF without close_notify
                return b""
            raise ConnectionResetError(str(e))
        except SSL.Error as e:
            raise ssl.SSLError(str(e))

    def sendall(self, data: bytes) -> None:
        from OpenSSL import SSL

        try:
            self.conn.sendall(data)
        except SSL.Error as e:
            raise BrokenPipeError(str(e))

    def close(self) -> None:
        try:
            self.conn.shutdown()
        except Exception:
            pass
        self.raw.close()


class RawXmpp:
    def __init__(
        self,
        port: int,
        *,
        address: str = "127.0.0.1",
        domain: str = "localhost",
        cafile: Optional[str] = None,
        direct_tls: bool = False,
        timeout: float = 10.0,
        rcvbuf: Optional[int] = None,
    ) -> None:
        self.port = port
        self.address = address
        self.domain = domain
        self.cafile = cafile
        self.direct_tls = direct_tls
        self.timeout = timeout
        self.rcvbuf = rcvbuf  # a small one makes a slow reader
        self.sock: Optional[socket.socket] = None
        self.tls = False
        self.jid: Optional[str] = None
        self.stream_attrs: dict = {}
        self.features: Optional[ET.Element] = None
        self.stream_ended = False  # server sent </stream:stream>
        self.eof = False  # TCP connection closed (FIN or RST)
        self.received: List[ET.Element] = []  # every top-level element, in order
        self._pending: List[ET.Element] = []
        self._parser: Optional[ET.XMLPullParser] = None
        self._depth = 0
        self._root: Optional[ET.Element] = None

    # ------------------------------------------------------------------ wire

    def _tls_context(self) -> ssl.SSLContext:
        if self.cafile:
            ctx = ssl.create_default_context(cafile=self.cafile)
        else:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def connect(self) -> "RawXmpp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.settimeout(self.timeout)
        sock.connect((self.address, self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.direct_tls:
            ctx = self._tls_context()
            ctx.set_alpn_protocols(["xmpp-client"])
            sock = ctx.wrap_socket(sock, server_hostname=self.domain)
            self.tls = True
        self.sock = sock
        return self

    def connect_pyopenssl(self, alpn: Optional[bytes] = b"xmpp-client") -> "RawXmpp":
        """Direct TLS (XEP-0368) through pyOpenSSL instead of Python's ssl
        module: it can export keying material (tls-exporter) and report the
        ALPN protocol the server selected."""
        from OpenSSL import SSL

        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        if self.cafile:
            ctx.load_verify_locations(self.cafile)
            ctx.set_verify(SSL.VERIFY_PEER, lambda *args: args[-1] == 1)
        if alpn:
            ctx.set_alpn_protos([alpn])
        sock = socket.create_connection((self.address, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = SSL.Connection(ctx, sock)
        conn.set_tlsext_host_name(self.domain.encode())
        conn.set_connect_state()
        sock.setblocking(True)
        conn.do_handshake()
        self.sock = PyOpenSslSocket(conn, sock)
        self.tls = True
        self.direct_tls = True
        return self

    def send(self, data: Union[str, bytes]) -> None:
        """Send bytes as they are. Errors from a peer that already closed
        are swallowed: what the server said before closing is still readable."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        assert self.sock is not None, "not connected"
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def end_stream(self) -> None:
        """Send our </stream:stream> (if the socket is still usable)."""
        if self.sock is not None and not self.eof:
            self.send("</stream:stream>")

    def __enter__(self) -> "RawXmpp":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------- parse

    def _reset_parser(self) -> None:
        self._parser = ET.XMLPullParser(events=("start", "end"))
        self._depth = 0
        self._root = None
        self.stream_attrs = {}
        self._pending = []

    def _feed(self, data: bytes) -> None:
        assert self._parser is not None
        try:
            self._parser.feed(data)
            events = list(self._parser.read_events())
        except ET.ParseError as e:
            raise XmppProtocolError("server sent malformed XML (%s): %r" % (e, data[:500])) from e
        for event, elem in events:
            if event == "start":
                if self._depth == 0:
                    if elem.tag != q(NS_STREAM, "stream"):
                        raise XmppProtocolError("expected a stream header, got %s" % elem.tag)
                    self._root = elem
                    self.stream_attrs = dict(elem.attrib)
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 0:
                    self.stream_ended = True
                elif self._depth == 1:
                    self._pending.append(elem)
                    self.received.append(elem)
                    if self._root is not None:
                        self._root.remove(elem)

    def _fill(self, deadline: float) -> bool:
        """Read once from the socket. False when nothing more can come."""
        if self.eof or self.sock is None:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            self.eof = True
            return False
        except ssl.SSLError as e:
            # An abrupt close in the middle of TLS shows up like this.
            self.eof = True
            self.tls_error = e
            return False
        if not data:
            self.eof = True
            return False
        self._feed(data)
        return True

    def recv(self, timeout: Optional[float] = None) -> Optional[ET.Element]:
        """Next top-level element, or None on timeout / end of stream / EOF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self._pending:
            if self.stream_ended:
                return None
            if not self._fill(deadline):
                if self._pending:
                    break
                return None
        return self._pending.pop(0)

    def collect(self, duration: float) -> List[ET.Element]:
        """Everything that arrives within `duration` seconds."""
        deadline = time.monotonic() + duration
        out = []
        while True:
            elem = self.recv(max(0.0, deadline - time.monotonic()))
            if elem is None:
                return out
            out.append(elem)

    def wait_for(self, match: Matcher, timeout: Optional[float] = None) -> ET.Element:
        """Skip elements until one matches (a Clark tag or a predicate).
        Raises StreamClosed if the stream ends first, XmppProtocolError on timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        pred = (lambda e: e.tag == match) if isinstance(match, str) else match
        skipped = []
        while True:
            elem = self.recv(max(0.0, deadline - time.monotonic()))
            if elem is None:
                what = "stream ended" if (self.stream_ended or self.eof) else "timed out"
                raise (StreamClosed if what == "stream ended" else XmppProtocolError)(
                    "%s while waiting for %s; skipped: %s"
                    % (what, match, [to_string(e)[:300] for e in skipped])
                )
            if pred(elem):
                return elem
            skipped.append(elem)

    def read_until_closed(self, timeout: Optional[float] = None) -> List[ET.Element]:
        """Collect top-level elements until the server ends the stream and
        closes the connection (or the timeout passes). Answers the server's
        </stream:stream> with ours, as RFC 6120 §4.4 asks."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        out: List[ET.Element] = []
        answered = False
        while True:
            out.extend(self._pending)
            self._pending = []
            if self.stream_ended and not answered:
                answered = True
                self.end_stream()
            if self.eof or self.sock is None:
                break
            if not self._fill(deadline) and not self.eof:
                if time.monotonic() >= deadline:
                    break
        out.extend(self._pending)
        self._pending = []
        return out

    # -------------------------------------------------------------- protocol

    def open_stream(self, to: Optional[str] = None) -> ET.Element:
        """Send our stream header and return the server's <stream:features/>."""
        self._reset_parser()
        self.send(
            "<?xml version='1.0'?><stream:stream to=%s version='1.0' xml:lang='en' "
            "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
            % quoteattr(self.domain if to is None else to)
        )
        self.features = self.wait_for(q(NS_STREAM, "features"))
        return self.features

    def feature(self, ns: str, local: str) -> Optional[ET.Element]:
        assert self.features is not None
        return self.features.find(q(ns, local))

    def mechanisms(self) -> List[str]:
        mechs = self.feature(NS_SASL, "mechanisms")
        if mechs is None:
            return []
        return [m.text or "" for m in mechs.findall(q(NS_SASL, "mechanism"))]

    def starttls(self) -> None:
        if self.feature(NS_TLS, "starttls") is None:
            raise XmppProtocolError("server does not offer STARTTLS: %s" % to_string(self.features))
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        answer = self.wait_for(lambda e: namespace(e.tag) == NS_TLS)
        if answer.tag != q(NS_TLS, "proceed"):
            raise XmppProtocolError("STARTTLS refused: %s" % to_string(answer))
        assert self.sock is not None
        self.sock.settimeout(self.timeout)
        self.sock = self._tls_context().wrap_socket(self.sock, server_hostname=self.domain)
        self.tls = True
        self.open_stream()

    def auth_plain(self, user: str, password: str) -> ET.Element:
        """SASL PLAIN. Returns the <success/> or <failure/> element; after a
        success the stream is restarted and the new features are read."""
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        self.send(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" % token
        )
        answer = self.wait_for(
            lambda e: e.tag in (q(NS_SASL, "success"), q(NS_SASL, "failure"))
        )
        if answer.tag == q(NS_SASL, "success"):
            self.open_stream()
        return answer

    def tls_exporter(self) -> bytes:
        """RFC 9266 channel binding: 32 bytes exported under the label
        EXPORTER-Channel-Binding with no context. Python's ssl module cannot
        export keying material, so this needs a connection made with
        connect_pyopenssl()."""
        assert isinstance(self.sock, PyOpenSslSocket), "tls-exporter needs connect_pyopenssl()"
        return self.sock.conn.export_keying_material(b"EXPORTER-Channel-Binding", 32, None)

    def tls_server_end_point(self) -> bytes:
        """RFC 5929 channel binding: the hash of the server's certificate
        (SHA-256 unless the certificate's signature uses something stronger)."""
        assert self.tls and isinstance(self.sock, ssl.SSLSocket), "not on TLS"
        der = self.sock.getpeercert(binary_form=True)
        algo = "sha256"
        try:  # the signature hash, when the cryptography package is around
            from cryptography import x509
            h = x509.load_der_x509_certificate(der).signature_hash_algorithm
            if h is not None and h.name in ("sha384", "sha512"):
                algo = h.name
        except ImportError:
            pass
        return hashlib.new(algo, der).digest()

    def auth_scram(self, user: str, password: str, hash_name: str = "sha256", *,
                   plus: bool = False, cb_data: Optional[bytes] = None,
                   gs2_flag: Optional[str] = None) -> ET.Element:
        """SASL SCRAM (RFC 5802 / 7677), optionally -PLUS with
        tls-server-end-point. `cb_data` replaces the real channel-binding
        data and `gs2_flag` the GS2 flag, to test that the server refuses
        them. Returns <success/> (server signature verified, stream
        restarted) or <failure/>."""
        mech = "SCRAM-SHA-%s%s" % ({"sha1": "1", "sha256": "256"}[hash_name], "-PLUS" if plus else "")
        if gs2_flag is None:
            gs2_flag = "p=tls-server-end-point" if plus else "n"
        gs2_header = (gs2_flag + ",,").encode()
        if gs2_flag.startswith("p=tls-exporter"):
            cb = self.tls_exporter() if cb_data is None else cb_data
        elif gs2_flag.startswith("p="):
            cb = self.tls_server_end_point() if cb_data is None else cb_data
        else:
            cb = b""
        cnonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), cnonce)
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>%s</auth>"
                  % (mech, base64.b64encode(gs2_header + first_bare.encode()).decode()))
        sasl_answer = lambda e: namespace(e.tag) == NS_SASL and local_name(e.tag) in (
            "challenge", "success", "failure")
        self.scram_server_first: Optional[str] = None
        answer = self.wait_for(sasl_answer)
        if answer.tag != q(NS_SASL, "challenge"):
            return answer
        server_first = base64.b64decode(answer.text or "").decode()
        self.scram_server_first = server_first
        attrs = dict(item.split("=", 1) for item in server_first.split(","))
        if not attrs["r"].startswith(cnonce):
            raise XmppProtocolError("server nonce does not extend ours: %s" % server_first)
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        final_bare = "c=%s,r=%s" % (base64.b64encode(gs2_header + cb).decode(), attrs["r"])
        salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hash_name).digest()
        stored_key = hashlib.new(hash_name, client_key).digest()
        auth_message = ("%s,%s,%s" % (first_bare, server_first, final_bare)).encode()
        signature = hmac.new(stored_key, auth_message, hash_name).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hash_name).digest()
        expected_v = base64.b64encode(hmac.new(server_key, auth_message, hash_name).digest()).decode()
        final = "%s,p=%s" % (final_bare, base64.b64encode(proof).decode())
        self.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>"
                  % base64.b64encode(final.encode()).decode())
        answer = self.wait_for(sasl_answer)
        server_final = base64.b64decode(answer.text or "").decode()
        if answer.tag == q(NS_SASL, "challenge"):
            # RFC 6120 §6.4.6 allows the server-final message as a challenge.
            self.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
            answer = self.wait_for(sasl_answer)
        if answer.tag == q(NS_SASL, "success"):
            server_final = server_final or base64.b64decode(answer.text or "").decode()
            if server_final != "v=" + expected_v:
                raise XmppProtocolError("bad server signature: %r" % server_final)
            self.open_stream()
        return answer

    def bind(self, resource: Optional[str] = None) -> str:
        if self.feature(NS_BIND, "bind") is None:
            raise XmppProtocolError("server does not offer bind: %s" % to_string(self.features))
        iq_id = next_id("bind")
        res = "<resource>%s</resource>" % escape(resource) if resource else ""
        self.send(
            "<iq type='set' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>%s</bind></iq>"
            % (iq_id, res)
        )
        answer = self.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == iq_id)
        if answer.get("type") != "result":
            raise XmppProtocolError("bind failed: %s" % to_string(answer))
        jid = answer.findtext("%s/%s" % (q(NS_BIND, "bind"), q(NS_BIND, "jid")))
        if not jid:
            raise XmppProtocolError("bind result without a jid: %s" % to_string(answer))
        self.jid = jid
        return jid

    def login(self, user: str, password: str, resource: Optional[str] = None) -> str:
        """connect + stream + STARTTLS (unless direct TLS) + PLAIN + bind."""
        if self.sock is None:
            self.connect()
        self.open_stream()
        if not self.tls:
            self.starttls()
        answer = self.auth_plain(user, password)
        if answer.tag != q(NS_SASL, "success"):
            raise XmppProtocolError("authentication failed: %s" % to_string(answer))
        return self.bind(resource)

    def iq(self, type_: str, to: Optional[str], payload: str, timeout: Optional[float] = None) -> ET.Element:
        """Send an iq and wait for the response with the same id."""
        iq_id = next_id("iq")
        to_attr = " to=%s" % quoteattr(to) if to else ""
        self.send("<iq type='%s' id='%s'%s>%s</iq>" % (type_, iq_id, to_attr, payload))
        return self.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == iq_id, timeout)

    def send_presence(self, priority: Optional[int] = None) -> None:
        prio = "<priority>%d</priority>" % priority if priority is not None else ""
        self.send("<presence>%s</presence>" % prio)

    def become_available(self, priority: Optional[int] = None) -> ET.Element:
        """Initial presence, then wait until the server reflects it back to us
        (RFC 6121 §4.2.2): from then on bare-JID messages are routed here."""
        self.send_presence(priority)
        return self.wait_for(
            lambda e: e.tag == q(NS_CLIENT, "presence") and e.get("from") == self.jid)


def stanza_error(elem: ET.Element) -> tuple:
    """(type, condition) of a stanza's <error/> child, or (None, None)."""
    err = elem.find(q(NS_CLIENT, "error"))
    if err is None:
        return (None, None)
    cond = None
    for child in err:
        if namespace(child.tag) == NS_STANZA_ERRORS and local_name(child.tag) != "text":
            cond = local_name(child.tag)
            break
    return (err.get("type"), cond)


def stream_error_condition(elems: List[ET.Element]) -> Optional[str]:
    """The condition of the first <stream:error/> among elems, if any."""
    for e in elems:
        if e.tag == q(NS_STREAM, "error"):
            for child in e:
                if namespace(child.tag) == NS_STREAM_ERRORS and local_name(child.tag) != "text":
                    return local_name(child.tag)
            return "(no condition)"
    return None


def assert_closed_with(client: RawXmpp, condition: str, elements: List[ET.Element]) -> None:
    """The stream ended with this stream error, then </stream:stream>, then a close."""
    got = stream_error_condition(elements)
    assert got == condition, "expected <%s/> stream error, got %r; received: %s" % (
        condition, got, [to_string(e)[:300] for e in elements])
    assert client.stream_ended, "no </stream:stream> after the stream error"
    assert client.eof, "the server did not close the TCP connection"
    # The stream error is the last thing on the stream.
    assert elements[-1].tag == q(NS_STREAM, "error"), [to_string(e)[:200] for e in elements]
