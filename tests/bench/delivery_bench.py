#!/usr/bin/env python3
"""Delivery benchmark (issue 5), not a test: prints figures, asserts nothing
about speed. For each storage backend (SQLite; PostgreSQL when XMPPD_TEST_PG
is set) it measures against a real xmppd:

  offline stores/s     a sender with XEP-0198 pipelines N messages to an
                       offline user; time until the server's <a h='N'/>,
                       i.e. until every message is committed (durable-before-ack)
  same, durable_ack off  the ack no longer waits for the commit (the rule's cost)
  offline deliveries/s the recipient logs in with XEP-0198 and sends presence;
                       time until all N stored messages have arrived
  resume latency       a resumable session loses its TCP connection; a new
                       connection authenticates, then <resume/> → <resumed/>

Usage: XMPPD_BUILD_DIR=build /usr/bin/python3 tests/bench/delivery_bench.py [N]
"""
import os
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from harness import XmppdServer, backends  # noqa: E402
from rawxmpp import local_name  # noqa: E402

SM = "urn:xmpp:sm:3"


def sm_login(srv, user, password, resume=False):
    c = srv.raw(timeout=60)
    c.login(user.split("@")[0], password, "bench")
    c.send("<enable xmlns='%s'%s/>" % (SM, " resume='true'" if resume else ""))
    enabled = c.wait_for(lambda e: local_name(e.tag) in ("enabled", "failed"))
    assert local_name(enabled.tag) == "enabled", "stream management refused"
    return c, enabled.get("id")


def store_rate(srv, n):
    sender, sender_pw = srv.new_user("sender")
    rcpt, _ = srv.new_user("rcpt")
    c, _ = sm_login(srv, sender, sender_pw)
    body = "x" * 64
    batch = "".join("<message to='%s' type='chat' id='m%d'><body>%s %d</body></message>" % (rcpt, i, body, i)
                    for i in range(n))
    start = time.monotonic()
    c.send(batch)
    while True:
        c.send("<r xmlns='%s'/>" % SM)
        a = c.wait_for(lambda e: local_name(e.tag) == "a", timeout=120)
        if int(a.get("h")) >= n:
            break
        time.sleep(0.005)
    elapsed = time.monotonic() - start
    c.close()
    return n / elapsed, rcpt


def delivery_rate(srv, rcpt, n):
    password = "pw-%s-secret" % rcpt.split("@")[0]
    c, _ = sm_login(srv, rcpt, password)
    start = time.monotonic()
    c.send("<presence/>")
    got = 0
    handled = 0  # XEP-0198 h counts every stanza, not only the messages
    while got < n:
        e = c.recv(timeout=60)
        assert e is not None, "delivery stalled after %d of %d" % (got, n)
        tag = local_name(e.tag)
        if tag in ("message", "presence", "iq"):
            handled += 1
            got += tag == "message"
        elif tag == "r":
            c.send("<a xmlns='%s' h='%d'/>" % (SM, handled))
    elapsed = time.monotonic() - start
    c.send("<a xmlns='%s' h='%d'/>" % (SM, handled))
    c.close()
    return n / elapsed


def resume_latency(srv, rounds=20):
    user, pw = srv.new_user("resumer")
    c, smid = sm_login(srv, user, pw, resume=True)
    samples = []
    for _ in range(rounds):
        c.sock.shutdown(socket.SHUT_RDWR)  # abrupt: no </stream:stream>
        c.sock.close()
        time.sleep(0.05)
        n = srv.raw(timeout=30)
        n.open_stream()
        n.starttls()
        assert local_name(n.auth_plain(user.split("@")[0], pw).tag) == "success"
        start = time.monotonic()
        n.send("<resume xmlns='%s' previd='%s' h='0'/>" % (SM, smid))
        r = n.wait_for(lambda e: local_name(e.tag) in ("resumed", "failed"))
        samples.append((time.monotonic() - start) * 1000)
        assert local_name(r.tag) == "resumed", "resumption failed"
        c = n
    c.close()
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def run(backend, n, durable):
    cfg = {"loglevel": "warn", "stream_management": {"resume_timeout": 60},
           "modules": {"offline": {"max_messages": max(1000, n), "durable_ack": durable},
                       "disco": {}, "ping": {}, "version": {"show_os": False}}}
    srv = XmppdServer(backend=backend, config=cfg)
    srv.start()
    try:
        stores, rcpt = store_rate(srv, n)
        deliveries = delivery_rate(srv, rcpt, n) if durable else None
        resume = resume_latency(srv) if durable else None
    finally:
        srv.stop()
    return stores, deliveries, resume


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rows = []
    for backend in backends():
        stores, deliveries, (p50, p95) = run(backend, n, True)
        fast, _, _ = run(backend, n, False)
        rows.append((backend, stores, fast, deliveries, p50, p95))
    print("\n| backend | offline stores/s (durable ack) | stores/s (durable_ack off) | durable cost "
          "| offline deliveries/s | resume p50 ms | resume p95 ms |")
    print("|---|---|---|---|---|---|---|")
    for backend, stores, fast, deliveries, p50, p95 in rows:
        print("| %s | %.0f | %.0f | %.0f%% | %.0f | %.2f | %.2f |"
              % (backend, stores, fast, 100.0 * (1 - stores / fast), deliveries, p50, p95))
    print("\nN=%d messages of ~70 bytes, one sender, one recipient; %s" % (n, os.uname().nodename))


if __name__ == "__main__":
    main()
