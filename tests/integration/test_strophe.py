"""libstrophe (C) as alice, slixmpp (python) as bob: two independent client
implementations talking through the server."""

import asyncio
import os
import re
import shutil
import subprocess

import pytest

from harness import build_dir, run, slix_client


def strophe_client():
    for candidate in (build_dir() / "strophe_client",
                      build_dir() / "tests" / "integration" / "strophe_client"):
        if candidate.exists():
            return candidate
    has_lib = shutil.which("pkg-config") and subprocess.run(
        ["pkg-config", "--exists", "libstrophe"]).returncode == 0
    if has_lib:
        pytest.fail("libstrophe is installed but %s/strophe_client was not built "
                    "(ninja -C %s strophe_client)" % (build_dir(), build_dir()), pytrace=False)
    pytest.skip("libstrophe is not installed; strophe_client is not built")


@pytest.mark.parametrize("transport", ["starttls", "direct-tls"])
def test_strophe_alice_to_slixmpp_echo_bob(server, transport):
    binary = strophe_client()
    alice_jid, alice_pw = server.new_user("salice")
    bob_jid, bob_pw = server.new_user("sbob")

    async def scenario():
        bob = slix_client(bob_jid, bob_pw, server)

        def echo(msg):
            if msg["type"] in ("chat", "normal"):
                bob.send_message(mto=msg["from"], mbody="echo: " + msg["body"], mtype="chat")

        bob.add_event_handler("message", echo)
        await bob.login(server.c2s_port)

        args = [str(binary), alice_jid, alice_pw, "127.0.0.1",
                str(server.c2s_port if transport == "starttls" else server.tls_port),
                server.cafile, bob_jid, "hello from strophe", "10"]
        if transport == "direct-tls":
            args.append("direct-tls")
        # In a sanitizer build strophe_client is instrumented too, and
        # LeakSanitizer reports 64 bytes libstrophe itself never frees.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
        proc = await asyncio.create_subprocess_exec(
            *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 30)
        except asyncio.TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
        got = await bob.no_message(0.1)
        await bob.logout()
        return proc.returncode, out.decode(), err.decode(), got, bob.boundjid.full

    rc, out, err, got_by_bob, bob_full = run(scenario())
    report = "exit %s\nstdout:\n%s\nstderr:\n%s" % (rc, out, err)
    assert rc == 0, report

    connected = re.search(r"^CONNECTED (\S+)$", out, re.M)
    assert connected, report
    alice_full = connected.group(1)
    assert alice_full.startswith(alice_jid + "/"), report

    mech = re.search(r"^MECHANISM (\S+)$", out, re.M)
    assert mech, "could not see which SASL mechanism libstrophe used\n" + report
    assert mech.group(1).startswith("SCRAM-"), report

    assert got_by_bob is not None, "bob got nothing\n" + report
    assert got_by_bob["body"] == "hello from strophe"
    assert got_by_bob["id"] == "strophe-msg-1"
    assert got_by_bob["from"].full == alice_full

    assert "RECEIVED %s echo: hello from strophe" % bob_full in out, report
