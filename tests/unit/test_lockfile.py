"""composer.lockfile between real processes: a second writer waits and names the holder, --no-wait fails at
once, a SIGKILLed holder's lock is taken over, VCOMP_LOCK_TIMEOUT bounds the wait, a symlink is refused."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer import lockfile
from composer.errors import LockBusy, SystemFault, UserError
from tests.conftest import REPO

# A holder in its own process: takes the lock, says so, and keeps it until killed or until RELEASE appears.
HOLDER = """
import sys, time
from pathlib import Path
from composer import lockfile
lock, release = Path(sys.argv[1]), Path(sys.argv[2])
sys.argv = ["vcomp", "pkg", "install", "nano"]
with lockfile.exclusive(lock, "root 'r'"):
    print("held", flush=True)
    while not release.exists():
        time.sleep(0.02)
"""

# A second writer: waits (or not) and reports what happened on stdout.
WAITER = """
import sys, time
from pathlib import Path
from composer import lockfile
from composer.errors import ComposerError
lock = Path(sys.argv[1])
start = time.monotonic()
try:
    with lockfile.exclusive(lock, "root 'r'"):
        print(f"acquired after {time.monotonic() - start:.2f}", flush=True)
except ComposerError as exc:
    print(f"refused after {time.monotonic() - start:.2f}: {exc.message} | {exc.hint}", flush=True)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (lockfile.NO_WAIT_ENV, lockfile.TIMEOUT_ENV)}
    return {**env, "PYTHONPATH": str(REPO), **extra}


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, Path]]:
    lock, release = tmp_path / "r.lock", tmp_path / "release"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(release)], stdout=subprocess.PIPE,
                            text=True, env=_env())
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc, lock, release
    finally:
        proc.kill()
        proc.wait()


def _waiter(lock: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WAITER, str(lock)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(**env))


def _wait_for_line(proc: subprocess.Popen[str], timeout: float = 20) -> str:
    """The first stderr line of ``proc`` (it blocks; the waiter prints it before it sleeps)."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    line = proc.stderr.readline()
    assert time.monotonic() < deadline
    return line.strip()


def test_the_lock_file_names_its_holder(holder: tuple[subprocess.Popen[str], Path, Path]) -> None:
    proc, lock, _ = holder
    assert lock.read_text() == f"{proc.pid} vcomp pkg install nano\n"


def test_a_second_writer_waits_naming_the_holder_then_proceeds(
        holder: tuple[subprocess.Popen[str], Path, Path]) -> None:
    proc, lock, release = holder
    waiter = _waiter(lock)
    line = _wait_for_line(waiter)
    assert line == f"waiting for the lock on root 'r' held by PID {proc.pid} (vcomp pkg install nano)"
    time.sleep(0.3)
    assert waiter.poll() is None  # still waiting while the holder holds
    release.touch()
    out, _ = waiter.communicate(timeout=20)
    assert out.startswith("acquired after ") and float(out.split()[-1]) >= 0.3
    assert proc.wait(timeout=20) == 0
    assert lock.read_text() == ""  # released: the holder note is cleared


@pytest.mark.parametrize("how", ["env", "flag"])
def test_no_wait_fails_at_once_naming_the_holder(holder: tuple[subprocess.Popen[str], Path, Path], how: str) -> None:
    proc, lock, _ = holder
    if how == "env":
        out, err = _waiter(lock, VCOMP_NO_WAIT="1").communicate(timeout=20)
        assert err == ""
        assert out.startswith("refused after 0.0")
        assert f"root 'r' is locked by PID {proc.pid} (vcomp pkg install nano)" in out
        return
    lockfile.configure(wait=False)
    try:
        with pytest.raises(LockBusy, match=f"root 'r' is locked by PID {proc.pid} "), \
                lockfile.exclusive(lock, "root 'r'"):
            pass
    finally:
        lockfile.configure(wait=True)
    assert proc.poll() is None


def test_the_lock_of_a_killed_holder_is_taken_over(holder: tuple[subprocess.Popen[str], Path, Path]) -> None:
    proc, lock, _ = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert lock.read_text().startswith(f"{proc.pid} ")  # the dead holder's note is still there
    out, err = _waiter(lock, VCOMP_NO_WAIT="1").communicate(timeout=20)
    assert out.startswith("acquired after 0.0") and err == ""


def test_a_waiting_writer_takes_over_when_the_holder_is_killed(
        holder: tuple[subprocess.Popen[str], Path, Path]) -> None:
    proc, lock, _ = holder
    waiter = _waiter(lock)
    assert _wait_for_line(waiter).startswith("waiting for the lock on root 'r'")
    proc.send_signal(signal.SIGKILL)
    out, _ = waiter.communicate(timeout=20)
    assert out.startswith("acquired after ")


def test_the_timeout_bounds_the_wait(holder: tuple[subprocess.Popen[str], Path, Path]) -> None:
    proc, lock, _ = holder
    out, err = _waiter(lock, VCOMP_LOCK_TIMEOUT="0.5").communicate(timeout=20)
    assert err.startswith("waiting for the lock on root 'r'")
    assert out.startswith("refused after ")
    waited = float(out.split()[2].rstrip(":"))
    assert 0.5 <= waited < 5
    assert f"still locked by PID {proc.pid} (vcomp pkg install nano) after 0.5 s" in out
    assert "VCOMP_LOCK_TIMEOUT" in out


@pytest.mark.parametrize("raw", ["soon", "-1", "nan", "inf"])
def test_a_bad_timeout_is_one_clear_error(holder: tuple[subprocess.Popen[str], Path, Path], raw: str) -> None:
    _, lock, _ = holder
    out, _ = _waiter(lock, VCOMP_LOCK_TIMEOUT=raw).communicate(timeout=20)
    assert out.startswith("refused after 0.0") and f"VCOMP_LOCK_TIMEOUT='{raw}' is not a number of seconds" in out


def test_a_symlinked_lock_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    lock = tmp_path / "r.lock"
    lock.symlink_to(target)
    with pytest.raises(UserError, match="r.lock: the lock file of root 'r' is a symbolic link") as caught, \
            lockfile.exclusive(lock, "root 'r'"):
        pass
    assert "remove the symlink" in caught.value.hint
    assert target.read_text() == "precious\n"
    with pytest.raises(UserError, match="symbolic link"), lockfile.exclusive_at(
            os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY), "r.lock", "root 'r'"):
        pass


def test_garbage_in_a_lock_file_is_only_a_stale_note(tmp_path: Path) -> None:
    lock = tmp_path / "r.lock"
    lock.write_bytes(b"\xff\x00garbage\n" * 1000)
    with lockfile.exclusive(lock, "root 'r'"):
        assert lock.read_text() == f"{os.getpid()} {lockfile.command_line()}\n"
    assert lockfile._holder(os.open(tmp_path / "none", os.O_RDWR | os.O_CREAT)) == "another process"


def test_a_lock_in_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemFault) as caught, lockfile.exclusive(tmp_path / "file" / "r.lock", "root 'r'"):
        pass
    line = caught.value.message
    assert "\n" not in line and f"{tmp_path / 'file'}" in line and "[ENOTDIR]" in line
    assert "creating the directory of the lock file of root 'r'" in line


def test_locks_are_per_file(tmp_path: Path) -> None:
    lockfile.configure(wait=False)
    try:
        with lockfile.exclusive(tmp_path / "a.lock", "a"), lockfile.exclusive(tmp_path / "b.lock", "b"):
            pass
    finally:
        lockfile.configure(wait=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")
def test_a_lock_on_a_read_only_file_system_is_one_line(tmp_path: Path) -> None:
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(mnt)], capture_output=True,
                      check=False).returncode != 0:
        pytest.skip("needs mounts (root with CAP_SYS_ADMIN)")
    try:
        with pytest.raises(SystemFault) as caught, lockfile.exclusive(mnt / "r.lock", "root 'r'"):
            pass
        assert caught.value.message == f"{mnt / 'r.lock'}: opening the lock file of root 'r': " \
                                       "the file system is read-only [EROFS]"
        assert "remount" in caught.value.hint
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")
def test_a_lock_on_a_full_file_system_still_locks(tmp_path: Path) -> None:
    """The holder note is informative: a full disk does not stop the lock (the operation fails where it writes)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True,
                      check=False).returncode != 0:
        pytest.skip("needs mounts (root with CAP_SYS_ADMIN)")
    try:
        with (mnt / "filler").open("wb", buffering=0) as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)
        with lockfile.exclusive(mnt / "r.lock", "root 'r'"):
            assert (mnt / "r.lock").exists()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_hostile_holder_note_is_shown_escaped(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "r.lock", os.O_RDWR | os.O_CREAT)
    try:
        os.write(fd, b"42 vcomp \x1b[2J\x07 evil\n")
        assert lockfile._holder(fd) == "PID 42 (vcomp \\x1b[2J\\x07 evil)"
    finally:
        os.close(fd)
