"""SIGTERM with clients connected: every stream is closed cleanly and the
server exits 0 (the fixture's teardown checks the exit code and the log)."""

import asyncio
import os
import signal
import socket
import time

import pytest

from harness import STOP_TIMEOUT, run, slix_client
from rawxmpp import stream_error_condition, to_string


def test_sigterm_with_clients_connected(fresh_server):
    srv = fresh_server
    users = [srv.new_user("sd") for _ in range(3)]

    async def scenario():
        slix = await slix_client(*users[0], srv).login(srv.c2s_port)
        raws = [srv.raw_login(*users[1], resource="r1"),
                srv.raw_login(*users[2], resource="r2"),
                srv.raw_login(*users[2], resource="direct", direct_tls=True)]
        # Someone who connected and said nothing yet, and someone mid-login.
        idle = socket.create_connection(("127.0.0.1", srv.c2s_port))
        half = srv.raw()
        half.open_stream()

        srv.begin_shutdown()

        for c in raws:
            elements = await asyncio.to_thread(c.read_until_closed, 10)
            cond = stream_error_condition(elements)
            assert cond in (None, "system-shutdown"), "unexpected stream error %r: %s" % (
                cond, [to_string(e) for e in elements])
            assert c.stream_ended, "%s: no </stream:stream> before the close" % c.jid
            assert c.eof, "%s: connection not closed" % c.jid
            c.close()

        for _ in range(100):
            if slix.disconnect_reasons:
                break
            await asyncio.sleep(0.1)
        assert slix.disconnect_reasons, "slixmpp saw no disconnect"
        assert slix.disconnect_reasons[-1] == "End of stream", slix.disconnect_reasons
        assert not [e for e in slix.stream_errors if e != "system-shutdown"], slix.stream_errors

        await asyncio.to_thread(half.read_until_closed, 10)
        assert half.eof, "a session still negotiating was not closed"
        half.close()

        def drain(sock):
            sock.settimeout(10)
            try:
                while sock.recv(4096):
                    pass
            except ConnectionResetError:
                pass
            return True
        assert await asyncio.to_thread(drain, idle)
        idle.close()

        return await asyncio.to_thread(srv.wait_exit, STOP_TIMEOUT)

    rc = run(scenario(), timeout=40)
    assert rc == 0, "xmppd exit code after SIGTERM: %r\n%s" % (rc, srv.log_tail())


def test_sigterm_idle_server_exits_and_ctl_notices(fresh_server):
    srv = fresh_server
    srv.begin_shutdown()
    rc = srv.wait_exit()
    assert rc == 0, "xmppd exit code after SIGTERM: %r\n%s" % (rc, srv.log_tail())
    r = srv.ctl("status")
    assert r.returncode != 0, "xmppctl status says ok with the server stopped: %s" % r.stdout
    assert r.stderr.strip(), "xmppctl status failed without a message"


def wait_until(cond, message, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


@pytest.mark.server_config({"log_file": "xmppd-file.log"})  # relative to the server's directory
def test_sighup_reopens_the_log_file(fresh_server):
    """logrotate moves the log and sends SIGHUP: the server writes on in a
    new file at the configured path, and keeps serving."""
    srv = fresh_server
    path = srv.dir / "xmppd-file.log"
    wait_until(lambda: path.exists() and "started" in path.read_text(errors="replace"),
               "the log file was never written")
    rotated = srv.dir / "xmppd-file.log.1"
    os.rename(path, rotated)
    srv.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: path.exists() and "SIGHUP: log reopened" in path.read_text(errors="replace"),
               "no new log file after SIGHUP")
    assert "SIGHUP" not in rotated.read_text(errors="replace")
    jid, pw = srv.new_user("afterhup")
    c = srv.raw_login(jid, pw, "r")
    c.close()
    assert srv.alive()
