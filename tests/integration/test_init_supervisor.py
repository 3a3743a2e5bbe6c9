"""Init's service supervisor for real, on the host: the "services" block of recipes/init/files/sbin/init is run
by busybox sh with init's small helpers, against real processes (start as uid:gid, readiness by port and
file, console prefix and log file, restarts with back-off and a limit, TERM at stop). As root only (changing
ids needs it) and with busybox's start-stop-daemon; the QEMU boot test covers PID 1 itself."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_init_script import INIT, in_order

BUSYBOX = shutil.which("busybox")
pytestmark = pytest.mark.skipif(BUSYBOX is None or os.geteuid() != 0 or not os.access("/usr/bin/python3", os.X_OK),
                                reason="needs busybox (start-stop-daemon applet), root (services change ids) and "
                                "/usr/bin/python3 (a listener)")

START = "# ------------------------------------------------------------------ services (supervisor)\n"
END = "# ------------------------------------------------------------------ 1. file systems"
HELPERS = r"""
set -f
DRYRUN=0
R=
say() { printf '%s\n' "$*"; }
detail() { [ -n "$1" ] || return 0; printf '%s\n' "$1" | tail -n 10 | sed 's/^/    /'; }
have() { command -v "$1" >/dev/null 2>&1; }
is_number() { case $1 in '' | *[!0-9]*) return 1 ;; esac; return 0; }
run() { "$@"; }
trace() { :; }
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service(d: Path, name: str, *words: str, ready: str = "none", restart: str = "on-failure",
            uid: int = 65534) -> None:
    lines = [f"name {name}", f"uid {uid}", f"gid {uid}", f"dir {d}", f"restart {restart}", f"ready {ready}",
             "env GREETING=hello", *(f"arg {w}" for w in words)]
    (d / "services.d").mkdir(exist_ok=True)
    (d / "services.d" / f"{len(list((d / 'services.d').iterdir())) + 1:03d}-{name}").write_text(
        "\n".join(lines) + "\n")


def supervise(d: Path, then: str = "sleep 1") -> list[str]:
    text = INIT.read_text()
    block = text[text.index(START):text.index(END)]
    bindir = d / "bin"
    bindir.mkdir()
    for applet in ("start-stop-daemon", "mkfifo", "sleep"):
        (bindir / applet).symlink_to(str(BUSYBOX))
    script = (HELPERS + f"CONF={d}\n" + block
              + f"SERVICE_RUN={d}/run\nSERVICE_LOGS={d}/log\nSERVICE_WAIT=10\nSERVICE_STOP=2\nSERVICE_RESTARTS=2\n"
              + f"start_services\n{then}\nstop_services\n")
    (d / "harness.sh").write_text(script)
    os.chmod(d, 0o755)
    proc = subprocess.run([str(BUSYBOX), "sh", str(d / "harness.sh")], capture_output=True, text=True, timeout=90,
                          env={"PATH": f"{bindir}:/usr/sbin:/usr/bin:/sbin:/bin"}, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == "", proc.stderr
    return proc.stdout.splitlines()


def test_services_start_as_their_user_log_get_ready_and_stop(tmp_path: Path) -> None:
    port = free_port()
    py = "/usr/bin/python3"   # a path the unprivileged user can run (not a pyenv shim below /root)
    listen = (f"import socket,time,os; s=socket.socket(); s.bind(('127.0.0.1',{port})); s.listen(); "
              "print('listening as', os.getuid(), os.environ['GREETING'], flush=True); time.sleep(60)")
    service(tmp_path, "sleeper", "/bin/sh", "-c", "echo hello from $(id -u); exec sleep 60")
    service(tmp_path, "web", py, "-c", listen, ready=f"tcp:{port}")
    service(tmp_path, "flagged", "/bin/sh", "-c", f"sleep 1; : >{tmp_path}/run/flag; exec sleep 60",
            ready=f"file:{tmp_path}/run/flag", uid=0)
    out = supervise(tmp_path)
    assert in_order(out, ["VCOMP-SERVICE: up sleeper", "VCOMP-SERVICE: up web", "VCOMP-SERVICE: up flagged",
                          "VCOMP-SERVICE: stopped flagged", "VCOMP-SERVICE: stopped web",
                          "VCOMP-SERVICE: stopped sleeper"]), out
    assert "[sleeper] hello from 65534" in out and "[web] listening as 65534 hello" in out
    assert (tmp_path / "log" / "sleeper.log").read_text() == "hello from 65534\n"
    assert (tmp_path / "run" / "web.state").read_text() == "stopped\n"


def test_a_failing_service_is_restarted_with_back_off_then_given_up(tmp_path: Path) -> None:
    service(tmp_path, "flaky", "/bin/sh", "-c", "echo boom; exit 3")
    service(tmp_path, "once", "/bin/sh", "-c", "exit 0", restart="on-failure")
    out = supervise(tmp_path, then=":")
    assert in_order(out, ["VCOMP-SERVICE: restarting flaky (exit 3, restart 1 of 2 in 1 s)",
                          "VCOMP-SERVICE: restarting flaky (exit 3, restart 2 of 2 in 2 s)",
                          "VCOMP-SERVICE: failed flaky", "VCOMP-SERVICE: exited once (exit 0)"]), out
    assert out.count("[flaky] boom") == 3
    assert (tmp_path / "run" / "flaky.state").read_text() == "failed\n"
