"""Reaching a guest from the host, without QEMU: ``--forward`` parsing and the QEMU rule, the host checks'
verdicts, an HTTP check against a real HTTP server on 127.0.0.1, a check of a closed port that fails within
its timeout, the ssh client's command line, and the watch holding a passing boot until the checks are done
(a real process standing in for QEMU's console)."""

from __future__ import annotations

import http.server
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.arch import get_arch
from composer.boot import reach
from composer.boot.forward import Forward, allocate, free_port, netdev, parse_forward, parse_forwards
from composer.boot.machine import Boot, command, watch
from composer.boot.session import Case
from composer.errors import UserError
from composer.hostchecks import HttpCheck, SshCheck, host_check

# ---------------------------------------------------------------- --forward


@pytest.mark.parametrize(("text", "host", "guest"), [
    ("2222:22", 2222, 22), ("0:80", 0, 80), ("127.0.0.1:8080:80", 8080, 80), ("localhost:0:22", 0, 22)])
def test_a_forward_is_host_colon_guest_on_the_loopback(text: str, host: int, guest: int) -> None:
    assert parse_forward(text) == Forward(host=host, guest=guest)


@pytest.mark.parametrize(("text", "says"), [
    ("0.0.0.0:8080:80", "bound to 127.0.0.1 only, not '0.0.0.0'"),
    ("192.168.1.5:22:22", "bound to 127.0.0.1 only"),
    ("[::]:22:22", "not HOST:GUEST"),
    ("::22:22", "not HOST:GUEST"),
    (":22:22", "bound to 127.0.0.1 only, not ''"),
    ("22", "not HOST:GUEST"),
    ("a:b", "not HOST:GUEST"),
    ("70000:22", "host port 70000 is outside 0-65535"),
    ("2222:0", "guest port 0 is outside 1-65535"),
    ("udp:53:53", "bound to 127.0.0.1 only"),
])
def test_other_addresses_and_bad_ports_are_refused_with_the_fix(text: str, says: str) -> None:
    with pytest.raises(UserError, match="--forward") as info:
        parse_forward(text)
    assert says in info.value.message and info.value.hint


def test_a_host_port_forwarded_twice_and_too_many_forwards_are_refused() -> None:
    with pytest.raises(UserError, match="host port 2222 is forwarded twice"):
        parse_forwards(["2222:22", "2222:80"])
    with pytest.raises(UserError, match="at most 32"):
        parse_forwards([f"0:{p}" for p in range(1, 40)])


def test_port_zero_gets_a_free_port_and_the_rules_bind_the_loopback_only(tmp_path: Path) -> None:
    forwards = allocate([Forward(host=0, guest=22), Forward(host=0, guest=80), Forward(host=free_port(), guest=443)])
    hosts = [f.host for f in forwards]
    assert all(hosts) and len(set(hosts)) == 3 and [f.guest for f in forwards] == [22, 80, 443]
    assert netdev(forwards) == ("user,id=net0," + ",".join(f"hostfwd=tcp:127.0.0.1:{h}-:{g}"
                                                         for h, g in zip(hosts, (22, 80, 443), strict=True)))
    kernel = Boot(arch=get_arch("x86_64"), files=(tmp_path / "i", tmp_path / "k"), media="kernel", firmware="none",
                  work=tmp_path)
    cmd = command(kernel, forwards=forwards)
    assert cmd[cmd.index("-netdev") + 1] == netdev(forwards)
    assert command(kernel)[command(kernel).index("-netdev") + 1] == "user,id=net0"
    with pytest.raises(UserError, match="without network"):
        command(kernel, network=False, forwards=forwards)


# ---------------------------------------------------------------- the checks as data


def test_host_checks_read_with_their_defaults_and_write_back() -> None:
    h = host_check({"http": {"port": 80}})
    assert h == HttpCheck(port=80) and h.to_dict() == {"http": {"port": 80}}   # as written
    assert HttpCheck(port=80).to_dict() == {"http": {"port": 80, "path": "/", "status": 200, "timeout": 60}}
    s = host_check({"ssh": {"user": "admin", "command": "id -un", "output": "admin"}})
    assert s == SshCheck(user="admin", command="id -un", output="admin") and s.port == 22 and s.key is None
    assert host_check(s.to_dict()) == s
    assert s.label() == "ssh admin@:22 'id -un'" and h.label() == "http :80/"


def test_http_verdicts() -> None:
    check = HttpCheck(port=80, contains="hello")
    assert reach.http_verdict(check, 200, b"<p>hello</p>") == ""
    assert reach.http_verdict(check, 404, b"hello") == "status 404, expected 200"
    assert reach.http_verdict(check, 200, b"bye").startswith("the body does not contain 'hello' (it starts 'bye')")


def test_ssh_verdicts_tell_a_refused_key_from_no_server_yet_and_from_a_wrong_output() -> None:
    check = SshCheck(user="admin", command="id -un", output="admin")
    assert reach.ssh_verdict(check, 0, b"admin\n", b"") == reach.Answer(final=True)
    refused = reach.ssh_verdict(check, 255, b"", b"admin@127.0.0.1: Permission denied (publickey).\r\n")
    assert refused.final and refused.reason.startswith("the guest refused the key for admin: ")
    early = reach.ssh_verdict(check, 255, b"", b"kex_exchange_identification: read: Connection reset by peer\n")
    assert not early.final and early.reason.startswith("no ssh session: kex_exchange_identification")
    assert reach.ssh_verdict(check, 0, b"root\n", b"").reason == "'id -un' printed 'root', expected 'admin'"
    assert reach.ssh_verdict(check, 1, b"", b"id: boom\n").reason == "'id -un' exited 1: id: boom"
    contains = SshCheck(user="a", command="uname -a", contains="Linux")
    assert reach.ssh_verdict(contains, 0, b"Linux box 6.12\n", b"").reason == ""
    assert "does not contain 'Linux'" in reach.ssh_verdict(contains, 0, b"BSD\n", b"").reason


def test_the_ssh_client_uses_nothing_of_the_users_and_this_boots_known_hosts(tmp_path: Path) -> None:
    ctx = reach.Context(ports={22: 40022}, known_hosts=tmp_path / "kh", keys={None: tmp_path / "key"})
    cmd = reach.ssh_command(SshCheck(user="admin", command="id -un"), ctx, 10)
    assert cmd[:3] == ["ssh", "-F", "/dev/null"] and cmd[-4:] == ["-l", "admin", "127.0.0.1", "id -un"]
    for option in ("BatchMode=yes", "IdentitiesOnly=yes", "IdentityAgent=none", "StrictHostKeyChecking=accept-new",
                   f"UserKnownHostsFile={tmp_path / 'kh'}", "GlobalKnownHostsFile=/dev/null"):
        assert option in cmd
    assert cmd[cmd.index("-i") + 1] == str(tmp_path / "key") and cmd[cmd.index("-p") + 1] == "40022"


def test_keys_are_copied_0600_and_a_missing_key_is_one_clear_error(tmp_path: Path) -> None:
    tests = [[SshCheck(user="a", command="true")], [SshCheck(user="a", command="true", key="k/id")]]
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "id").write_text("PRIVATE\n")
    (tmp_path / "k" / "id").chmod(0o644)
    copies = reach.key_copies(tests, tmp_path, tmp_path / "work")
    assert set(copies) == {None, "k/id"} and copies["k/id"].read_text() == "PRIVATE\n"
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in copies.values())
    assert copies[None].read_bytes() == reach.sample_key().read_bytes()
    with pytest.raises(UserError, match=r"ssh check key .*/nope/id: No such file") as info:
        reach.key_copies([[SshCheck(user="a", command="true", key="nope/id")]], tmp_path, tmp_path / "work")
    assert "relative to the profile" in info.value.hint
    assert reach.key_copies([[HttpCheck(port=80)]], tmp_path, tmp_path / "work") == {}
    override = reach.key_copies(tests, tmp_path, tmp_path / "work", override=tmp_path / "k" / "id")
    assert {k: p.read_text() for k, p in override.items()} == {None: "PRIVATE\n", "k/id": "PRIVATE\n"}  # --ssh-key
    (tmp_path / "big").write_bytes(b"x" * (reach.MAX_KEY + 1))
    with pytest.raises(UserError, match="larger than 65536 bytes, not a private key"):
        reach.key_copies([[SshCheck(user="a", command="true", key="big")]], tmp_path, tmp_path / "work")


# ---------------------------------------------------------------- checks against real sockets


@pytest.fixture
def server() -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"hello from the test server" if self.path == "/" else b"no"
            self.send_response(200 if self.path == "/" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_an_http_check_against_a_real_server(server: int, tmp_path: Path) -> None:
    ctx = reach.Context(ports={80: server}, known_hosts=tmp_path / "kh")
    stop = threading.Event()
    ok = reach.run_check(HttpCheck(port=80, contains="hello"), ctx, stop)
    assert ok.passed and ok.attempts == 1 and ok.reason == ""
    missing = reach.run_check(HttpCheck(port=80, path="/missing"), ctx, stop)
    assert not missing.passed and missing.attempts == 1 and missing.reason == "status 404, expected 200"


def test_a_check_of_a_port_nothing_listens_on_fails_within_its_timeout(tmp_path: Path) -> None:
    ctx = reach.Context(ports={80: free_port()}, known_hosts=tmp_path / "kh")
    started = time.monotonic()
    out = reach.run_check(HttpCheck(port=80, timeout=3), ctx, threading.Event())
    assert time.monotonic() - started < 5
    assert not out.passed and out.attempts >= 2 and out.reason.startswith("no answer within 3 s (")
    assert "Connection refused" in out.reason


def test_a_stopped_boot_ends_a_check_that_is_still_trying(tmp_path: Path) -> None:
    ctx = reach.Context(ports={80: free_port()}, known_hosts=tmp_path / "kh")
    stop = threading.Event()
    stop.set()
    out = reach.run_check(HttpCheck(port=80, timeout=60), ctx, stop)
    assert not out.passed and out.attempts == 1 and out.reason.startswith("the boot ended before an answer")


# ---------------------------------------------------------------- the watch waits for the checks

CONSOLE = ("import time\nprint('VCOMP-BOOT: init started', flush=True)\nprint('up web', flush=True)\n"
           "print('VCOMP-BOOT: ready', flush=True)\ntime.sleep(60)\n")


def test_a_passing_boot_runs_until_its_host_checks_are_done(server: int, tmp_path: Path) -> None:
    checks = [[HttpCheck(port=80, contains="hello"), HttpCheck(port=80, path="/x", status=404)], []]
    probes = reach.Probes(tests=checks, ctx=reach.Context(ports={80: server}, known_hosts=tmp_path / "kh"))
    w = watch([sys.executable, "-c", CONSOLE], [("up web",), ("VCOMP-BOOT: ready",)], timeout=30,
              log_path=tmp_path / "log", probe=probes)
    assert w.passed and w.seconds < 20
    assert [o.passed for o in probes.results(0)] == [True, True] and probes.results(1) == ()
    case = Case(arch="x86_64", output="o", firmware="none", test="web", expect=("up web",), watch=w, missing=(),
                checks=probes.results(0))
    assert case.passed and [c["check"] for c in case.to_dict()["checks"]] == ["http :80/", "http :80/x"]


def test_checks_of_a_test_whose_lines_never_came_fail_as_not_run(tmp_path: Path) -> None:
    probes = reach.Probes(tests=[[HttpCheck(port=80)]], ctx=reach.Context(ports={80: 1}, known_hosts=tmp_path / "kh"))
    w = watch([sys.executable, "-c", CONSOLE], [("never printed",)], timeout=30, log_path=tmp_path / "log",
              probe=probes, grace=0.5)
    [out] = probes.results(0)
    assert not w.passed and not out.passed and out.reason.startswith("not run: ")
    case = Case(arch="x86_64", output="o", firmware="none", test="t", expect=("never printed",), watch=w,
                missing=("never printed",), checks=(out,))
    assert case.reason() == "init was ready without: 'never printed'"
    failed = Case(arch="x86_64", output="o", firmware="none", test="t", expect=(), watch=w, missing=(),
                  checks=(reach.Outcome(check="http :80/", passed=False, reason="status 500, expected 200"),))
    assert failed.reason() == "host check failed: http :80/: status 500, expected 200"


def test_junit_names_the_failed_host_check(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    from composer.boot.machine import Watch
    from composer.boot.session import junit
    w = Watch(log="VCOMP-BOOT: ready", returncode=0, timed_out=False, seconds=3.0, missing=())
    case = Case(arch="x86_64", output="o", firmware="none", test="web", expect=("x",), watch=w, missing=(),
                checks=(reach.Outcome(check="http :80/", passed=True),
                        reach.Outcome(check="ssh a@:22 'true'", passed=False, reason="the guest refused the key")))
    root = ET.fromstring(junit([case], "suite"))
    failure = root.find("testcase/failure")
    assert failure is not None and failure.get("message") == "host check failed: ssh a@:22 'true': the guest " \
        "refused the key"
    out = root.find("testcase/system-out")
    assert out is not None and (out.text or "").startswith(
        "host check http :80/: PASS\nhost check ssh a@:22 'true': FAIL: the guest refused the key\nVCOMP-BOOT")


def test_a_boots_setup_forwards_each_guest_port_once_after_the_users_and_cleans_its_keys(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "b.known_hosts").write_text("[127.0.0.1]:1 ssh-ed25519 AAAA old guest\n")
    tests = [[HttpCheck(port=8080), SshCheck(user="a", command="true")], [HttpCheck(port=8080, path="/x")], []]
    ready = reach.setup(tests, forwards=(Forward(host=free_port(), guest=80),), keys=tmp_path, ssh_key=None,
                        work=tmp_path / "work", name="b")
    assert [f.guest for f in ready.forwards] == [80, 22, 8080] and all(f.host for f in ready.forwards)
    assert ready.probes is not None and ready.probes.ctx.ports == {f.guest: f.host for f in ready.forwards[1:]}
    assert not (tmp_path / "work" / "b.known_hosts").exists(), "a new guest, a new known_hosts"
    [key] = ready.keys
    assert key.stat().st_mode & 0o777 == 0o600
    ready.cleanup()
    assert not key.exists()
    bare = reach.setup([[], []], forwards=(Forward(host=0, guest=22),), keys=tmp_path, ssh_key=None,
                       work=tmp_path / "work", name="c")
    assert bare.probes is None and bare.keys == () and bare.forwards[0].host > 0
