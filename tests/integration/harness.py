"""Start a real xmppd for the integration tests and give the tests what they
need to talk to it: ports, the CA file, xmppctl, users, slixmpp clients.

Environment:
  XMPPD_BUILD_DIR   where xmppd and xmppctl are (default: build)
  XMPPD_TEST_PG     libpq conninfo; when set, every server fixture also runs
                    on the postgres backend (the database is wiped per start)
  XMPPD_TEST_LOGLEVEL  the server's loglevel (default: info)
  XMPPD_TEST_KEEP   keep the temporary directories (config, log, data)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "localhost"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
)


def build_dir() -> Path:
    d = Path(os.environ.get("XMPPD_BUILD_DIR", "build"))
    if not d.is_absolute() and not (Path.cwd() / d).exists():
        d = REPO_ROOT / d
    return d.resolve()


def binary(name: str) -> Path:
    path = build_dir() / name
    if not path.exists():
        pytest.fail(
            "%s not found at %s: build the server first or set XMPPD_BUILD_DIR" % (name, path),
            pytrace=False,
        )
    return path


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_cert(directory: Path, name: str = HOST) -> tuple[Path, Path]:
    """Self-signed EC P-256 certificate for `name` (CN and subjectAltName)."""
    cert = directory / ("%s.pem" % name)
    key = directory / ("%s.key" % name)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2",
            "-subj", "/CN=%s" % name,
            "-addext", "subjectAltName=DNS:%s" % name,
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return cert, key


def to_yaml(value: Any, indent: int = 0) -> str:
    """Just enough YAML: mappings, lists, strings (JSON-quoted), numbers, bools."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = []
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append("%s%s:\n%s" % (pad, k, to_yaml(v, indent + 1)))
            else:
                lines.append("%s%s: %s" % (pad, k, to_yaml(v, indent + 1)))
        return "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return "[]"
        lines = []
        for item in value:
            body = to_yaml(item, indent + 1).lstrip()
            lines.append("%s- %s" % (pad, body))
        return "\n".join(lines)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value))


def deep_update(base: dict, extra: dict) -> dict:
    for k, v in extra.items():
        if v is None:  # None removes a key, e.g. a module: {"modules": {"ping": None}}
            base.pop(k, None)
        elif isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_update(base[k], v)
        else:
            base[k] = v
    return base


def pg_conninfo() -> Optional[str]:
    return os.environ.get("XMPPD_TEST_PG") or None


def backends() -> List[str]:
    return ["sqlite", "postgres"] if pg_conninfo() else ["sqlite"]


def wipe_postgres(conninfo: str) -> None:
    r = subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", conninfo, "-c",
         "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"],
        capture_output=True, text=True, timeout=30,
    )
    if r.returncode != 0:
        pytest.fail("could not wipe the postgres test database: %s" % r.stderr, pytrace=False)


class XmppdServer:
    """One xmppd process with its own directory, certificate, ports and config."""

    _serial = itertools.count(1)
    _postgres_running: Optional["XmppdServer"] = None

    def __init__(self, backend: str = "sqlite", config: Optional[dict] = None) -> None:
        self.backend = backend
        binary("xmppd")  # fail before making anything when it is missing
        self.n = next(self._serial)
        self.dir = Path(tempfile.mkdtemp(prefix="xmppd-it-"))
        self.data_dir = self.dir / "data"
        self.data_dir.mkdir()
        self.certfile, self.keyfile = make_cert(self.dir)
        self.cafile = str(self.certfile)  # self-signed: the cert is its own CA
        self.c2s_port = free_port()
        self.tls_port = free_port()
        while self.tls_port == self.c2s_port:
            self.tls_port = free_port()
        # XEP-0114 listener, added when the config declares `components`.
        self.component_port = free_port()
        while self.component_port in (self.c2s_port, self.tls_port):
            self.component_port = free_port()
        # HTTP listeners, added when the config has an `http` section: HTTPS
        # on http_port, plain HTTP (tls: false) on http_plain_port.
        self.http_port = free_port()
        while self.http_port in (self.c2s_port, self.tls_port, self.component_port):
            self.http_port = free_port()
        self.http_plain_port = free_port()
        while self.http_plain_port in (self.c2s_port, self.tls_port, self.component_port, self.http_port):
            self.http_plain_port = free_port()
        self.has_http = False
        self.host = HOST
        self.config_path = self.dir / "xmppd.yml"
        self.log_path = self.dir / "server.log"
        self.proc: Optional[subprocess.Popen] = None
        self._log_file = None
        self.stopped_by_test = False
        self._sigterm_sent = False
        self._users = itertools.count(1)
        self.config = self._config(config or {})
        self.config_path.write_text(to_yaml(self.config) + "\n")

    def _config(self, extra: dict) -> dict:
        cfg: Dict[str, Any] = {
            "hosts": [HOST],
            "loglevel": os.environ.get("XMPPD_TEST_LOGLEVEL", "info"),
            "data_dir": str(self.data_dir),
            "workers": 2,
            "tls": {"certfile": str(self.certfile), "keyfile": str(self.keyfile)},
            "storage": {
                "backend": self.backend,
                "sqlite": {"path": str(self.data_dir / "xmppd.sqlite")},
            },
            "listen": [
                {"port": self.c2s_port, "address": "127.0.0.1", "module": "c2s",
                 "starttls_required": True},
                {"port": self.tls_port, "address": "127.0.0.1", "module": "c2s",
                 "tls": True},
            ],
            "control": {"socket": str(self.data_dir / "xmppd.ctl")},
            # Only what the tests depend on; everything else keeps its default.
            "limits": {"max_stanza_bytes": 10000},
            "modules": {
                "disco": {},
                "ping": {},
                "version": {"show_os": False},
            },
        }
        if self.backend == "postgres":
            conninfo = pg_conninfo()
            if not conninfo:
                pytest.skip("XMPPD_TEST_PG is not set")
            cfg["storage"]["postgres"] = {"conninfo": conninfo, "pool_size": 4}
        if extra.get("components"):
            # The address is left to the default (loopback for components).
            cfg["listen"].append({"port": self.component_port, "module": "component"})
        if "http" in extra:
            self.has_http = True
            cfg["listen"].append({"port": self.http_port, "address": "127.0.0.1", "module": "http"})
            cfg["listen"].append({"port": self.http_plain_port, "address": "127.0.0.1", "module": "http",
                                  "tls": False})
        return deep_update(cfg, extra)

    # ------------------------------------------------------------- lifecycle

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def start(self, wipe: bool = True) -> "XmppdServer":
        """Start xmppd. `wipe=False` keeps the postgres database (a restart)."""
        xmppd = binary("xmppd")
        if self.backend == "postgres":
            if XmppdServer._postgres_running is not None:
                raise RuntimeError("two postgres-backed servers at once would share one database")
            if wipe:
                wipe_postgres(pg_conninfo())
            XmppdServer._postgres_running = self
        # Appended to, so that a restarted server's log follows the first one's.
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(xmppd), "-c", str(self.config_path)],
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        waiting = {self.c2s_port, self.tls_port}
        if self.has_http:
            waiting |= {self.http_port, self.http_plain_port}
        while waiting:
            if self.proc.poll() is not None:
                self._release()
                pytest.fail(
                    "xmppd exited with %s during start-up; log:\n%s"
                    % (self.proc.returncode, self.log_tail()),
                    pytrace=False,
                )
            for port in sorted(waiting):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    waiting.discard(port)
                except OSError:
                    pass
            if waiting and time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                self._release()
                pytest.fail(
                    "xmppd did not accept connections on %s within %ss; log:\n%s"
                    % (sorted(waiting), START_TIMEOUT, self.log_tail()),
                    pytrace=False,
                )
            if waiting:
                time.sleep(0.05)
        return self

    def _release(self) -> None:
        if XmppdServer._postgres_running is self:
            XmppdServer._postgres_running = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def begin_shutdown(self) -> None:
        """Send SIGTERM and return at once (for tests of the shutdown itself)."""
        assert self.proc is not None and self.proc.poll() is None, "xmppd is not running"
        self.stopped_by_test = True
        self._sigterm_sent = True
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> Optional[int]:
        """Wait for the exit after begin_shutdown(); kill -9 and None on timeout."""
        return self.terminate(timeout)

    def terminate(self, timeout: float = STOP_TIMEOUT) -> Optional[int]:
        """SIGTERM and wait. Returns the exit code, or None after a kill -9."""
        assert self.proc is not None
        if self.proc.poll() is None:
            if not self._sigterm_sent:
                self._sigterm_sent = True
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._release()
                return None
        self._release()
        return self.proc.returncode

    def kill9(self) -> None:
        """SIGKILL, like a crash or a power cut for the process: nothing is
        flushed, no stream is closed."""
        assert self.proc is not None and self.proc.poll() is None, "xmppd is not running"
        self.proc.kill()
        self.proc.wait()
        self._release()

    def restart(self, kill: bool = False) -> "XmppdServer":
        """Stop the server (SIGTERM, which must end in a clean exit; or
        SIGKILL with `kill=True`) and start a new process on the same config,
        ports and data (SQLite file or postgres database)."""
        if kill:
            self.kill9()
        else:
            self.terminate()
            problems = self.problems()
            if problems:
                pytest.fail("%s\nlog tail:\n%s" % ("\n".join(problems), self.log_tail()),
                            pytrace=False)
        with open(self.log_path, "ab") as log:
            log.write(b"\n---- restarted by the test (%s) ----\n" % (b"SIGKILL" if kill else b"SIGTERM"))
        self._sigterm_sent = False
        self.stopped_by_test = False
        return self.start(wipe=False)

    def problems(self) -> List[str]:
        """What is wrong with the server's exit and log, if anything."""
        out = []
        rc = self.proc.returncode if self.proc else None
        if rc is None:
            out.append("xmppd did not exit within %ss of SIGTERM (killed with SIGKILL)" % STOP_TIMEOUT)
        elif rc < 0:
            out.append("xmppd died from signal %s" % signal.Signals(-rc).name)
        elif rc != 0:
            out.append("xmppd exited with code %d after SIGTERM" % rc)
        log = self.log_text()
        for marker in SANITIZER_MARKERS:
            if marker in log:
                out.append("server log contains %r" % marker)
        return out

    def stop(self) -> None:
        """Teardown: SIGTERM, exit 0 within 10 s, no crash, clean log."""
        if self.proc is None:
            return
        died_early = self.proc.poll() is not None and not self.stopped_by_test
        self.terminate()
        problems = self.problems()
        if died_early:
            problems.insert(0, "xmppd was no longer running at teardown")
        keep = os.environ.get("XMPPD_TEST_KEEP") or problems
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        if problems:
            pytest.fail(
                "%s\n(files kept in %s)\nlog tail:\n%s"
                % ("\n".join(problems), self.dir, self.log_tail()),
                pytrace=False,
            )

    # --------------------------------------------------------------- xmppctl

    def ctl(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(binary("xmppctl")), "-c", str(self.config_path), *args],
            capture_output=True, text=True, timeout=timeout, cwd=self.dir,
        )

    def register(self, user: str, password: str, host: str = HOST) -> None:
        r = self.ctl("register", user, host, password)
        assert r.returncode == 0, "xmppctl register %s failed (%d): %s%s" % (
            user, r.returncode, r.stdout, r.stderr)

    def new_user(self, prefix: str = "user", password: Optional[str] = None) -> tuple[str, str]:
        """Register a fresh user; returns (bare JID, password)."""
        user = "%s%d" % (prefix, next(self._users))
        password = password or "pw-%s-secret" % user
        self.register(user, password)
        return "%s@%s" % (user, HOST), password

    def new_users(self, count: int, prefix: str = "user") -> List[tuple[str, str]]:
        """Register many users, a few xmppctl processes at a time."""
        pending = []
        out = []
        for _ in range(count):
            user = "%s%d" % (prefix, next(self._users))
            password = "pw-%s-secret" % user
            proc = subprocess.Popen(
                [str(binary("xmppctl")), "-c", str(self.config_path), "register", user, HOST, password],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.dir,
            )
            pending.append((user, password, proc))
            if len(pending) >= 8:
                out.extend(self._reap(pending))
                pending = []
        out.extend(self._reap(pending))
        return out

    @staticmethod
    def _reap(pending) -> List[tuple[str, str]]:
        out = []
        for user, password, proc in pending:
            output, _ = proc.communicate(timeout=30)
            assert proc.returncode == 0, "xmppctl register %s failed: %s" % (user, output)
            out.append(("%s@%s" % (user, HOST), password))
        return out

    # ----------------------------------------------------------- raw client

    def raw(self, direct_tls: bool = False, timeout: float = 10.0, **kw):
        from rawxmpp import RawXmpp

        port = self.tls_port if direct_tls else self.c2s_port
        return RawXmpp(port, cafile=self.cafile, direct_tls=direct_tls, timeout=timeout, **kw).connect()

    def raw_login(self, jid: str, password: str, resource: Optional[str] = None,
                  direct_tls: bool = False, timeout: float = 10.0, **kw):
        c = self.raw(direct_tls=direct_tls, timeout=timeout, **kw)
        c.login(jid.split("@")[0], password, resource)
        return c


# ------------------------------------------------------------------ fixtures


def _server_fixture(request, config: Optional[dict]):
    # A test may add keys with @pytest.mark.server_config({...}) (fresh_server only).
    marker = request.node.get_closest_marker("server_config") if request.scope == "function" else None
    if marker is not None:
        config = deep_update(json.loads(json.dumps(config or {})), marker.args[0])
    srv = XmppdServer(backend=request.param, config=config)
    srv.start()
    return srv


@pytest.fixture(scope="module", params=backends())
def server(request):
    """One server per test module (and backend). A module may set
    SERVER_CONFIG = {...} to override config keys."""
    srv = _server_fixture(request, getattr(request.module, "SERVER_CONFIG", None))
    yield srv
    srv.stop()


@pytest.fixture(params=backends())
def fresh_server(request):
    """A server of its own for one test (for tests that stop or disturb it).
    Do not mix with `server` in one module: two postgres servers would share
    the database."""
    srv = _server_fixture(request, getattr(request.module, "SERVER_CONFIG", None))
    yield srv
    srv.stop()


# ------------------------------------------------------------------ asyncio


def run(coro, timeout: float = 60.0):
    """Run a coroutine on a fresh event loop with an overall time limit."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


# ------------------------------------------------------------------ slixmpp


def slix_client(jid: str, password: str, srv: XmppdServer, **kw):
    """Create a SlixClient; must be called inside a running event loop."""
    return SlixClient(jid, password, srv.cafile, **kw)


try:
    import slixmpp
    from slixmpp import ClientXMPP
except ImportError:  # pragma: no cover - reported by the tests that need it
    slixmpp = None
    ClientXMPP = object


class LoginFailed(AssertionError):
    pass


class SlixClient(ClientXMPP):
    """A slixmpp client that records what it sees in queues and futures."""

    def __init__(self, jid: str, password: str, cafile: str, *,
                 sasl_mech: Optional[str] = "SCRAM-SHA-256",
                 presence: bool = True, priority: Optional[int] = None) -> None:
        if slixmpp is None:
            pytest.fail("slixmpp is not importable (apt-get install python3-slixmpp)", pytrace=False)
        super().__init__(jid, password, sasl_mech=sasl_mech)
        self.ca_certs = Path(cafile)
        # slixmpp resolves the host it is given; make that 127.0.0.1 only
        # (no IPv6 - the server listens on 127.0.0.1 -, no DNS server).
        self.use_ipv6 = False
        self.use_aiodns = False
        self.whitespace_keepalive = False
        self.auto_reconnect = False
        self.send_initial_presence = presence
        self.initial_priority = priority
        self.messages: asyncio.Queue = asyncio.Queue()
        self.presences: asyncio.Queue = asyncio.Queue()
        self.stream_errors: List[Any] = []
        self.auth_failures: List[str] = []
        self.disconnect_reasons: List[Any] = []
        self._ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self._available: asyncio.Future = asyncio.get_running_loop().create_future()
        self.add_event_handler("session_start", self._on_session_start)
        self.add_event_handler("failed_auth", self._on_failed_auth)
        self.add_event_handler("failed_all_auth", self._fail("no SASL mechanism left"))
        self.add_event_handler("no_auth", self._fail("no usable SASL mechanism offered"))
        self.add_event_handler("connection_failed", self._fail("connection failed"))
        self.add_event_handler("stream_error", self._on_stream_error)
        self.add_event_handler("disconnected", self._on_disconnected)
        self.add_event_handler("message", lambda m: self.messages.put_nowait(m))
        self.add_event_handler("presence", self._on_presence)
        # slixmpp 1.8.3 knows only the tls-unique channel binding, which
        # RFC 9266 retires for TLS 1.3 and the server does not offer. It then
        # sends the GS2 flag 'y' ("I could bind, the server can't"), which
        # RFC 5802 §6 obliges a server offering -PLUS to refuse as a
        # downgrade. A client following XEP-0440 sends 'n' when it shares no
        # binding type with the server: make slixmpp do that.
        mechanisms = self.plugin["feature_mechanisms"]
        default_credentials = mechanisms._default_credentials

        def credentials(required, optional):
            values = default_credentials(required, optional)
            if "channel_binding" in values:
                values["channel_binding"] = None
            return values

        mechanisms.sasl_callback = credentials
        # Unanswered iqs addressed to us would otherwise get slixmpp's
        # feature-not-implemented; that is fine for these tests.

    # events
    def _fail(self, what: str):
        def handler(event=None):
            if not self._ready.done():
                self._ready.set_exception(LoginFailed("%s: %s" % (what, event)))
        return handler

    def _on_failed_auth(self, stanza) -> None:
        self.auth_failures.append(stanza["condition"])

    def _on_stream_error(self, err) -> None:
        self.stream_errors.append(err["condition"])

    def _on_disconnected(self, reason) -> None:
        self.disconnect_reasons.append(reason)
        if not self._ready.done():
            self._ready.set_exception(LoginFailed(
                "disconnected before the session started (reason %r, auth failures %r, "
                "stream errors %r)" % (reason, self.auth_failures, self.stream_errors)))

    def _on_presence(self, p) -> None:
        if p["from"] == self.boundjid and not self._available.done():
            self._available.set_result(True)
        self.presences.put_nowait(p)

    def _on_session_start(self, _event) -> None:
        if self.send_initial_presence:
            if self.initial_priority is None:
                self.send_presence()
            else:
                self.send_presence(ppriority=self.initial_priority)
        if not self._ready.done():
            self._ready.set_result(True)

    # actions
    async def login(self, port: int, *, direct_tls: bool = False, timeout: float = 20.0) -> "SlixClient":
        # "localhost" is also the TLS server name the certificate is checked against.
        self.default_port = port
        self.connect((HOST, port), use_ssl=direct_tls)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except asyncio.TimeoutError:
            self.kill()
            raise LoginFailed("no session within %ss" % timeout) from None
        if self.send_initial_presence:
            # The server reflects initial presence to the sender's own resource
            # too (RFC 6121 §4.2.2); once it has, we are "available" and
            # bare-JID messages may be routed to us. Without this, a test's
            # first message could race our presence through the server.
            try:
                await asyncio.wait_for(asyncio.shield(self._available), timeout)
            except asyncio.TimeoutError:
                self.kill()
                raise LoginFailed("the server did not reflect our initial presence "
                                  "within %ss (RFC 6121 §4.2.2)" % timeout) from None
        return self

    def kill(self) -> None:
        """Drop the connection at once, whatever state slixmpp is in."""
        try:
            self.abort()
        except (AttributeError, OSError):
            pass  # already being torn down

    @property
    def mechanism(self) -> Optional[str]:
        mech = self["feature_mechanisms"].mech
        return mech.name if mech is not None else None

    @property
    def offered_mechanisms(self) -> set:
        return set(self["feature_mechanisms"].mech_list)

    @property
    def encrypted(self) -> bool:
        return isinstance(self.socket, (ssl.SSLObject, ssl.SSLSocket))

    async def logout(self, wait: float = 5.0) -> Any:
        """Close our stream; returns the disconnect reason ('End of stream'
        when the server answered with its own </stream:stream>)."""
        if self.transport is None:
            return self.disconnect_reasons[-1] if self.disconnect_reasons else None
        await self.disconnect(wait=wait)
        if self.transport is not None:
            await asyncio.sleep(0)
        return self.disconnect_reasons[-1] if self.disconnect_reasons else None

    async def next_message(self, timeout: float = 5.0):
        return await asyncio.wait_for(self.messages.get(), timeout)

    async def no_message(self, wait: float = 1.0) -> Optional[Any]:
        """None if nothing arrives within `wait` seconds, else the message."""
        try:
            return await asyncio.wait_for(self.messages.get(), wait)
        except asyncio.TimeoutError:
            return None

    async def next_presence(self, match=lambda p: True, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise asyncio.TimeoutError("no matching presence within %ss" % timeout)
            p = await asyncio.wait_for(self.presences.get(), remaining)
            if match(p):
                return p
