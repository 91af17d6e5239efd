"""What the phone-number registration tests share: a `command` SMS gateway
that is a shell script writing to files the test reads, an HTTPS client
for /v1/register/* that can pick its source address, and checks of device
keys over XMPP.

The gateway script is run by the server as `SCRIPT PHONE TEXT`. It
appends PHONE to `attempts` on every run and then, in its directory:
- `fail-PHONE` exists: exits 1 (every attempt fails);
- `flaky-PHONE` exists: removes it and exits 1 (the next attempt works);
- otherwise appends "PHONE TEXT" to `outbox` and exits 0.
"""

from __future__ import annotations

import atexit
import http.client
import itertools
import json
import os
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Tuple

from harness import HOST, pg_conninfo
from rawxmpp import NS_STREAM, NS_STREAM_ERRORS, assert_closed_with, local_name, q

GATEWAY_SCRIPT = """#!/bin/sh
dir=$(dirname "$0")
printf '%s\\n' "$1" >> "$dir/attempts"
if [ -e "$dir/fail-$1" ]; then exit 1; fi
if [ -e "$dir/flaky-$1" ]; then rm -f "$dir/flaky-$1"; exit 1; fi
printf '%s %s\\n' "$1" "$2" >> "$dir/outbox"
"""


class Gateway:
    """The script and its files, in a directory of its own (removed at exit
    unless XMPPD_TEST_KEEP is set)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="xmppd-sms-gateway-"))
        self.command = self.dir / "send-sms"
        self.command.write_text(GATEWAY_SCRIPT)
        self.command.chmod(0o755)
        if not os.environ.get("XMPPD_TEST_KEEP"):
            atexit.register(shutil.rmtree, self.dir, True)

    def _lines(self, name: str) -> List[str]:
        try:
            return (self.dir / name).read_text().splitlines()
        except FileNotFoundError:
            return []

    def texts(self, phone: str) -> List[str]:
        """The texts sent to `phone`, oldest first (both backends' servers
        share the gateway: a test reads the last one after its 202)."""
        prefix = phone + " "
        return [line[len(prefix):] for line in self._lines("outbox") if line.startswith(prefix)]

    def last_pin(self, phone: str) -> str:
        texts = self.texts(phone)
        assert texts, "no text was sent to %s" % phone
        found = re.search(r"\b(\d{4,10})\b", texts[-1])
        assert found, "no PIN in the text %r" % texts[-1]
        return found.group(1)

    def attempts(self, phone: str) -> int:
        return self._lines("attempts").count(phone)

    def fail(self, phone: str, on: bool = True) -> None:
        marker = self.dir / ("fail-" + phone)
        if on:
            marker.touch()
        else:
            marker.unlink(missing_ok=True)

    def flaky(self, phone: str) -> None:
        (self.dir / ("flaky-" + phone)).touch()


# ------------------------------------------------------------------ numbers

_numbers = itertools.count(1)


def new_number(prefix: str = "+4915112") -> str:
    """A number libphonenumber takes as valid that no other test uses (DE
    mobile by default: +49 151 12 followed by six digits)."""
    return "%s%06d" % (prefix, 100000 + next(_numbers))


# ------------------------------------------------------------------ HTTP

# Every Api gets a source address of its own on the loopback network
# (127.0.0.2, 127.0.0.3, ...): the per-address PIN limit of one test does
# not reach the others.
_sources = itertools.count(2)


def new_source_address() -> str:
    n = next(_sources)
    return "127.0.%d.%d" % (n // 250, n % 250 + 2)


class _HTTPS(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 from a chosen loopback address, checking the
    server's certificate for `localhost`."""

    def __init__(self, port: int, source: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(HOST, port, timeout=timeout, context=context)
        self.source = source

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout,
                                        source_address=(self.source, 0))
        self.sock = self._context.wrap_socket(sock, server_hostname=HOST)


class Reply:
    def __init__(self, status: int, headers: dict, body: dict) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return "<%d %s %s>" % (self.status, self.headers.get("retry-after", ""), self.body)

    @property
    def retry_after(self) -> Optional[int]:
        value = self.headers.get("retry-after")
        return int(value) if value is not None else None


class Api:
    def __init__(self, server, source: Optional[str] = None, timeout: float = 30.0) -> None:
        self.server = server
        self.source = source or new_source_address()
        self.context = ssl.create_default_context(cafile=server.cafile)
        self.timeout = timeout

    def connection(self) -> _HTTPS:
        return _HTTPS(self.server.http_port, self.source, self.context, self.timeout)

    @staticmethod
    def _post_on(conn: _HTTPS, path: str, body) -> Reply:
        try:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            raw = response.read()
            assert response.getheader("Content-Type") == "application/json", response.getheaders()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                         json.loads(raw))
        finally:
            conn.close()

    def post(self, path: str, body) -> Reply:
        return self._post_on(self.connection(), path, body)

    def post_at_once(self, path: str, bodies: list) -> List[Reply]:
        return at_once([(self, path, body) for body in bodies])

    def request_pin(self, phone: str) -> Reply:
        return self.post("/v1/register/pin", {"phone": phone})

    def verify(self, phone: str, pin: str, key: str, name: str = "") -> Reply:
        return self.post("/v1/register/verify",
                         {"phone": phone, "pin": pin, "device_key": key, "device_name": name})

    def register(self, gateway: Gateway, phone: str, key: str, name: str = "",
                 expect: int = 201) -> dict:
        """PIN, then verify: the verify answer's body."""
        sent = self.request_pin(phone)
        assert sent.status == 202, sent
        assert sent.body == {"status": "sent", "phone": phone}, sent
        done = self.verify(phone, gateway.last_pin(phone), key, name)
        assert done.status == expect, done
        return done.body


def at_once(requests: List[Tuple[Api, str, object]]) -> List[Reply]:
    """Each (api, path, body) on a connection of its own: all connected (TLS
    included) first, then the requests sent together from as many threads."""
    conns = [api.connection() for api, _, _ in requests]
    for conn in conns:
        conn.connect()
    start = threading.Barrier(len(requests))

    def one(conn, request):
        start.wait(10)
        return Api._post_on(conn, request[1], request[2])

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(one, conns, requests))


def statuses(replies: List[Reply]) -> dict:
    """{(status, error): how many} of some replies."""
    out: dict = {}
    for r in replies:
        key = (r.status, r.body.get("error"))
        out[key] = out.get(key, 0) + 1
    return out


def wrong_pin(pin: str) -> str:
    return "".join(str((int(d) + 1) % 10) for d in pin)


def device_key(label: str) -> str:
    """A client-made device key (the account's password for that device)."""
    return "key-%s-%s" % (label, os.urandom(12).hex())


def jid_of(phone: str) -> str:
    return "%s@%s" % (phone.lstrip("+"), HOST)


# ------------------------------------------------------------------ storage


def expire_pin(server, phone: str) -> None:
    """Moves the outstanding PIN of `phone` into the past in the server's
    database (a PIN lives at least 30 s; no test waits that long)."""
    past = int(time.time()) - 1
    if server.backend == "sqlite":
        db = sqlite3.connect(str(server.data_dir / "xmppd.sqlite"), timeout=10)
        try:
            with db:
                changed = db.execute(
                    "UPDATE sms_pins SET created_at = ?, expires_at = ? WHERE host = ? AND phone = ?",
                    (past - 60, past, HOST, phone)).rowcount
        finally:
            db.close()
        assert changed == 1, "no PIN outstanding for %s" % phone
    else:
        r = subprocess.run(
            ["psql", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", pg_conninfo(), "-c",
             "UPDATE sms_pins SET created_at = %d, expires_at = %d WHERE host = '%s' AND phone = '%s' "
             "RETURNING phone" % (past - 60, past, HOST, phone)],
            capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == phone, "no PIN outstanding for %s: %r" % (phone, r.stdout)


# ------------------------------------------------------------------ XMPP


def plain_auth(server, user: str, secret: str) -> str:
    """'success' or 'failure' of a SASL PLAIN login with this secret."""
    with server.raw() as c:
        c.open_stream()
        c.starttls()
        answer = c.auth_plain(user, secret)
        c.end_stream()
        return local_name(answer.tag)


def scram_auth(server, user: str, secret: str) -> str:
    """'success' or 'failure' of a SCRAM-SHA-256 login with this secret."""
    with server.raw() as c:
        c.open_stream()
        c.starttls()
        answer = c.auth_scram(user, secret, "sha256")
        c.end_stream()
        return local_name(answer.tag)


def stream_error_text(elements) -> Optional[str]:
    for e in elements:
        if e.tag == q(NS_STREAM, "error"):
            return e.findtext(q(NS_STREAM_ERRORS, "text"))
    return None


def assert_ended_not_authorized(client, text: str, timeout: float = 10.0) -> None:
    """The session ends with <not-authorized/> and this text."""
    elements = client.read_until_closed(timeout)
    assert_closed_with(client, "not-authorized", elements)
    assert stream_error_text(elements) == text, elements


def ctl_ok(server, *args) -> str:
    r = server.ctl(*args)
    assert r.returncode == 0, "xmppctl %s -> %d\nstdout: %s\nstderr: %s" % (
        " ".join(args), r.returncode, r.stdout, r.stderr)
    return r.stdout


def pending_pins(server) -> List[str]:
    return [line for line in ctl_ok(server, "pending_pins").splitlines() if line.strip()]


def devices(server, jid: str) -> List[Tuple[str, str, str, str]]:
    """list_devices as (id, name, created, last_login)."""
    out = []
    for line in ctl_ok(server, "list_devices", jid).splitlines():
        if not line.strip():
            continue
        m = re.fullmatch(r'(\S+) name="(.*)" created=(\S+) last_login=(\S+)', line.strip())
        assert m, "unexpected list_devices line: %r" % line
        out.append(m.groups())
    return out
