"""The HTTP listener: GET /v1/health over HTTPS (the server's certificate)
and plain HTTP (tls: false), 404 and 405 in JSON, the http: limits (413,
431, request timeout, idle keep-alive timeout, max_connections),
keep-alive, pipelining and Expect: 100-continue. The clients are Python's
http.client and ssl, raw sockets where a client would not misbehave, and
curl."""

import http.client
import json
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from harness import HOST, XmppdServer

MAX_BODY = 1024
REQUEST_TIMEOUT = 2
IDLE_TIMEOUT = 3

SERVER_CONFIG = {
    "loglevel": "debug",
    "http": {
        "max_body_bytes": MAX_BODY,
        "request_timeout": REQUEST_TIMEOUT,
        "idle_timeout": IDLE_TIMEOUT,
    },
}


class LocalHTTPS(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 (where the test listener is), checking the
    certificate for `localhost`."""

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=HOST)


def tls_context(server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=server.cafile)


def https(server, timeout: float = 10.0) -> LocalHTTPS:
    return LocalHTTPS(HOST, server.http_port, timeout=timeout, context=tls_context(server))


def plain(server, timeout: float = 10.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.http_plain_port, timeout=timeout)


def call(conn, method: str, path: str, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    return response, data


def json_of(response, data) -> dict:
    assert response.getheader("Content-Type") == "application/json"
    return json.loads(data)


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends until it closes the connection (or timeout)."""
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


def wait_for_log(server, text: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log_text():
        assert time.monotonic() < deadline, "%r not in the server log" % text
        time.sleep(0.05)


# ------------------------------------------------------------------ routes


def test_health_over_https_with_the_servers_certificate(server):
    conn = https(server)
    response, data = call(conn, "GET", "/v1/health")
    assert response.status == 200
    body = json_of(response, data)
    assert body["status"] == "ok"
    assert body["version"]
    assert response.getheader("Cache-Control") == "no-store"
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    conn.close()


def test_health_over_plain_http_on_a_tls_false_listener(server):
    conn = plain(server)
    response, data = call(conn, "GET", "/v1/health")
    assert response.status == 200
    assert json_of(response, data)["status"] == "ok"
    conn.close()


def test_plain_http_to_the_https_listener_gets_no_answer(server):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"HTTP/1.1" not in read_until_closed(sock, REQUEST_TIMEOUT + 5)


def test_curl_gets_health(server):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    r = subprocess.run(
        ["curl", "-sS", "--cacert", server.cafile,
         "--resolve", "%s:%d:127.0.0.1" % (HOST, server.http_port),
         "-w", "\n%{http_code}", "https://%s:%d/v1/health" % (HOST, server.http_port)],
        capture_output=True, text=True, timeout=30,
    )
    assert r.returncode == 0, r.stderr
    body, code = r.stdout.rsplit("\n", 1)
    assert code == "200"
    assert json.loads(body)["status"] == "ok"


def test_unknown_path_is_404_not_found(server):
    conn = https(server)
    response, data = call(conn, "GET", "/v1/nothing-here?x=1")
    assert response.status == 404
    assert json_of(response, data)["error"] == "not-found"
    # An error answer keeps the connection.
    response, data = call(conn, "GET", "/v1/health")
    assert response.status == 200
    conn.close()


def test_known_path_with_another_method_is_405_with_allow(server):
    conn = https(server)
    response, data = call(conn, "POST", "/v1/health", body=b"{}",
                          headers={"Content-Type": "application/json"})
    assert response.status == 405
    assert response.getheader("Allow") == "GET"
    assert json_of(response, data)["error"] == "method-not-allowed"
    conn.close()


def test_requests_are_logged_with_connection_peer_method_path_and_status(server):
    conn = plain(server)
    call(conn, "GET", "/v1/logged-path")
    conn.close()
    wait_for_log(server, "127.0.0.1 GET /v1/logged-path -> 404")


# ------------------------------------------------------------------ limits


def test_a_body_over_max_body_bytes_is_413(server):
    conn = https(server)
    response, data = call(conn, "POST", "/v1/health", body=b"x" * (MAX_BODY + 1))
    assert response.status == 413
    assert json_of(response, data)["error"] == "payload-too-large"
    assert response.getheader("Connection") == "close"
    conn.close()
    wait_for_log(server, "POST /v1/health -> 413")


def test_a_chunked_body_over_max_body_bytes_is_413(server):
    conn = plain(server)

    def chunks():
        for _ in range(8):
            yield b"y" * 512

    conn.request("POST", "/v1/health", body=chunks(), encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"] == "payload-too-large"
    conn.close()


def test_a_body_within_max_body_bytes_is_read(server):
    conn = plain(server)
    response, data = call(conn, "POST", "/v1/health", body=b"x" * MAX_BODY)
    assert response.status == 405  # read to its end, then routed
    conn.close()


def test_a_header_over_max_header_bytes_is_431(server):
    conn = https(server)
    response, data = call(conn, "GET", "/v1/health", headers={"X-Big": "b" * 9000})
    assert response.status == 431
    assert json_of(response, data)["error"] == "request-header-fields-too-large"
    conn.close()


def test_a_malformed_request_is_400(server):
    with socket.create_connection(("127.0.0.1", server.http_plain_port), timeout=10) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nNo colon here\r\n\r\n")
        answer = read_until_closed(sock, 10)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b'"error":"bad-request"' in answer


def test_expect_100_continue_gets_continue_then_the_answer(server):
    with socket.create_connection(("127.0.0.1", server.http_plain_port), timeout=10) as sock:
        sock.sendall(b"POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(b"body")
        assert sock.recv(4096).startswith(b"HTTP/1.1 405 ")


def test_expect_100_continue_with_a_body_over_the_limit_is_413_at_once(server):
    with socket.create_connection(("127.0.0.1", server.http_plain_port), timeout=10) as sock:
        sock.sendall(b"POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                     b"Expect: 100-continue\r\n\r\n" % (MAX_BODY * 100))
        assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")


def test_a_silent_connection_is_closed_after_request_timeout(server):
    for port in (server.http_port, server.http_plain_port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            start = time.monotonic()
            assert read_until_closed(sock, REQUEST_TIMEOUT + 5) == b""
            elapsed = time.monotonic() - start
            assert REQUEST_TIMEOUT - 0.5 <= elapsed <= REQUEST_TIMEOUT + 2


def test_a_slow_request_is_closed_after_request_timeout(server):
    with socket.create_connection(("127.0.0.1", server.http_plain_port), timeout=10) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /v1/health HTTP/1.1\r\n")
        for header in (b"Host: x\r\n", b"X-A: 1\r\n", b"X-B: 2\r\n", b"X-C: 3\r\n"):
            time.sleep(REQUEST_TIMEOUT / 3)
            try:
                sock.sendall(header)
            except OSError:
                break  # already closed
        assert read_until_closed(sock, REQUEST_TIMEOUT + 5) == b""
        assert time.monotonic() - start <= REQUEST_TIMEOUT + 2
    wait_for_log(server, "request not complete within request_timeout")


# ------------------------------------------------------------------ connections


def test_keep_alive_two_requests_on_one_connection(server):
    conn = https(server)
    response, data = call(conn, "GET", "/v1/health")
    assert response.status == 200
    assert response.getheader("Connection") != "close"
    first = conn.sock
    assert first is not None
    response, data = call(conn, "GET", "/v1/unknown")
    assert response.status == 404
    assert conn.sock is first, "the client had to reconnect"
    conn.close()


def test_pipelined_requests_are_answered_in_order(server):
    with socket.create_connection(("127.0.0.1", server.http_plain_port), timeout=10) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = read_until_closed(sock, 10)
    first = answer.find(b"HTTP/1.1 200 ")
    second = answer.find(b"HTTP/1.1 404 ")
    assert first == 0 and second > first, answer


def test_an_idle_keep_alive_connection_is_closed_after_idle_timeout(server):
    with socket.create_connection(("127.0.0.1", server.http_plain_port), timeout=10) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.monotonic()
        answer = read_until_closed(sock, IDLE_TIMEOUT + 5)
        elapsed = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert IDLE_TIMEOUT - 0.5 <= elapsed <= IDLE_TIMEOUT + 2


def test_http_1_0_without_keep_alive_is_closed_after_the_answer(server):
    with socket.create_connection(("127.0.0.1", server.http_plain_port), timeout=10) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.0\r\n\r\n")
        answer = read_until_closed(sock, 5)
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_connections_over_max_connections_are_closed_at_accept():
    srv = XmppdServer(config={"http": {"max_connections": 2, "request_timeout": 30}})
    srv.start()
    try:
        # Two connections served and kept open (a retry while the harness's
        # start-up probes are still being closed by the server).
        held = []
        deadline = time.monotonic() + 5
        while len(held) < 2:
            conn = plain(srv)
            try:
                response, _ = call(conn, "GET", "/v1/health")
                assert response.status == 200
                held.append(conn)
            except (http.client.RemoteDisconnected, ConnectionResetError):
                conn.close()
                assert time.monotonic() < deadline, "two connections were never served"
                time.sleep(0.1)
        with socket.create_connection(("127.0.0.1", srv.http_plain_port), timeout=10) as extra:
            extra.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_until_closed(extra, 5) == b"", "a third connection was served"
        wait_for_log(srv, "http.max_connections")
        # Once one closes, a new one is served.
        held.pop().close()
        deadline = time.monotonic() + 5
        while True:
            conn = plain(srv)
            try:
                response, _ = call(conn, "GET", "/v1/health")
                break
            except (http.client.RemoteDisconnected, ConnectionResetError):
                assert time.monotonic() < deadline, "no connection served after one closed"
                time.sleep(0.1)
            finally:
                conn.close()
        assert response.status == 200
        # held[0] is still open: the shutdown closes it, cleanly.
    finally:
        srv.stop()
