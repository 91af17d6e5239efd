"""The load generator (tests/bench, `xmpp-load`) against xmppd: 1000 accounts,
250 pairs (500 sessions over STARTTLS and SCRAM-SHA-256) exchanging messages
for about ten seconds. Every message sent must arrive exactly once, at the
right session. A check that the benchmark harness and the routing are
correct together; it never asserts a speed."""

import subprocess

from harness import binary

USERS = 1000
PAIRS = 250
PREFIX = "lsmoke"


def parse_result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, "expected one RESULT line, got:\n%s" % stdout
    return dict(field.split("=", 1) for field in lines[0].split()[1:])


def test_pairs_deliver_every_message_exactly_once(server):
    users = server.new_users(USERS, PREFIX)
    numbers = [int(jid.split("@")[0][len(PREFIX):]) for jid, _ in users]
    first = numbers[0]
    assert numbers == list(range(first, first + USERS)), "xmpp-load needs consecutive user numbers"

    proc = subprocess.run(
        [
            str(binary("xmpp-load")), "pairs",
            "--label", "xmppd",
            "--port", str(server.c2s_port), "--tls", "starttls", "--domain", server.host,
            "--mechanism", "SCRAM-SHA-256",
            "--user-prefix", PREFIX, "--first-user", str(first), "--users", str(USERS),
            # harness.new_users gives user N the password pw-<user>-secret
            "--password", "pw-%u-secret",
            "--pairs", str(PAIRS), "--window", "2",
            "--warmup", "2", "--duration", "8", "--drain", "30",
            "--concurrency", "50", "--login-timeout", "60",
        ],
        capture_output=True, text=True, timeout=180,
    )
    result = parse_result(proc.stdout)
    context = "xmpp-load exit %d\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert result["sessions"] == str(2 * PAIRS), context
    assert result["login_failed"] == "0", context
    assert int(result["sent"]) > 0, context
    # Exactly once: nothing lost, nothing twice, nothing to the wrong session.
    assert result["received"] == result["sent"], context
    for key in ("lost", "duplicated", "misrouted", "bogus", "bounced", "foreign", "disconnects", "errors"):
        assert result[key] == "0", "%s=%s\n%s" % (key, result[key], context)
    assert result["correct"] == "1", context
    assert proc.returncode == 0, context
