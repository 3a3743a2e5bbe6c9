"""Two commands at once on one root: the root's lock serialises transactions (the second waits, then plans on
the new state; with --no-wait it fails at once), and read-only commands never wait for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.reliability.killsweep import REPO, kills_wanted
from tests.reliability.scenarios_pkg import env_for, observe_root, pkg, prepared, run_ok

HOLD = ("import sys, time\n"
        "from pathlib import Path\n"
        "from composer.pkgmgr.transaction import locked\n"
        "with locked(Path(sys.argv[1])):\n"
        "    print('held', flush=True)\n"
        "    deadline = time.monotonic() + 300\n"
        "    while not Path(sys.argv[2]).exists() and time.monotonic() < deadline:\n"
        "        time.sleep(0.05)\n")


def _start(argv: list[str], work: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **env_for(work)}
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _holder(root: Path, work: Path, release: Path) -> subprocess.Popen[str]:
    """A process holding the root's lock until ``release`` exists."""
    proc = _start([sys.executable, "-c", HOLD, str(root), str(release)], work)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _versions(root: Path) -> dict[str, str]:
    doc = json.loads((root / "var/lib/vpk/db.json").read_text())
    return {n: r["version"] for n, r in doc["packages"].items()}


def test_two_transactions_at_once_both_succeed_in_order(tmp_path: Path) -> None:
    for n in range(kills_wanted(2)):
        work = tmp_path / f"round-{n}"
        root = prepared(work, ["install", "alpha==1.0.0"])
        first, second = _start(pkg(root, "upgrade", "alpha"), work), _start(pkg(root, "install", "beta"), work)
        outs = [p.communicate(timeout=300) for p in (first, second)]
        assert [first.returncode, second.returncode] == [0, 0], outs
        assert not any("internal error" in err or "Traceback" in err for _, err in outs), outs
        assert _versions(root) == {"alpha": "1.1.0", "beta": "1.0.0"}
        history = json.loads((root / "var/lib/vpk/history.json").read_text())
        assert [h["id"] for h in history] == [1, 2, 3, 4]
        verify = run_ok(pkg(root, "verify"), work)
        assert verify.returncode == 0 and "verify: clean" in verify.stdout, verify.stdout


def test_the_second_writer_waits_with_a_message_or_fails_at_once_with_no_wait(tmp_path: Path) -> None:
    root = prepared(tmp_path, ["install", "alpha==1.0.0"])
    before = observe_root(root)
    release = tmp_path / "release"
    holder = _holder(root, tmp_path, release)
    install = pkg(root, "install", "beta")
    try:
        busy = run_ok([*install[:3], "--no-wait", *install[3:]], tmp_path)
        assert holder.poll() is None, "the holder let go: the test proves nothing"
        assert busy.returncode == 1 and "internal error" not in busy.stderr
        assert f"root {root} is locked by PID {holder.pid}" in busy.stderr.splitlines()[0], busy.stderr
        assert observe_root(root) == before
        listing = run_ok(pkg(root, "list"), tmp_path)  # a reader never waits for the lock
        assert listing.returncode == 0 and "alpha" in listing.stdout and holder.poll() is None
        waiter = _start(install, tmp_path)  # waits for the holder, then runs on the new state
        assert waiter.stderr is not None
        line = waiter.stderr.readline()
        assert f"waiting for the lock on root {root} held by PID {holder.pid}" in line, line
        assert observe_root(root) == before
        release.touch()
        _, err = waiter.communicate(timeout=300)
        assert waiter.returncode == 0, err
        assert _versions(root) == {"alpha": "1.0.0", "beta": "1.0.0"}
    finally:
        release.touch()
        holder.wait(timeout=60)


def test_a_dead_holder_does_not_block_the_root(tmp_path: Path) -> None:
    root = prepared(tmp_path, ["install", "alpha==1.0.0"])
    holder = _holder(root, tmp_path, tmp_path / "never")
    holder.kill()
    holder.wait()
    proc = run_ok([*pkg(root, "install", "beta")[:3], "--no-wait", *pkg(root, "install", "beta")[3:]], tmp_path)
    assert proc.returncode == 0, proc.stderr
