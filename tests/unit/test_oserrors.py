"""composer.oserrors: every errno of the registry is one line with the path and a hint; real faults made by
the kernel (ENOSPC on a tiny tmpfs, EROFS on a read-only mount, EMFILE under a low RLIMIT_NOFILE, EXDEV
across two file systems) come out the same way."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer import oserrors
from composer.errors import SystemFault
from composer.fsutil import atomic_write
from tests.conftest import REPO, skip_unless_nobody_can_run_vcomp

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")


def _one_line(fault: SystemFault, path: str, code: str) -> None:
    assert "\n" not in fault.message, fault.message
    assert fault.message.startswith(f"{path}: "), fault.message
    assert fault.message.endswith(f"[{code}]"), fault.message
    assert fault.hint and "\n" not in fault.hint


@pytest.mark.parametrize("number", sorted(oserrors.ADVICE), ids=lambda n: errno.errorcode[n])
def test_every_registered_errno_is_one_line_with_the_path_and_a_hint(number: int) -> None:
    exc = OSError(number, os.strerror(number), "/srv/images/box")
    fault = oserrors.describe(exc)
    _one_line(fault, "/srv/images/box", errno.errorcode[number])
    assert oserrors.ADVICE[number].what in fault.message
    assert fault.hint == oserrors.ADVICE[number].hint
    doing = oserrors.fault(exc, "writing the image")
    assert doing.message == f"/srv/images/box: writing the image: {oserrors.ADVICE[number].what} " \
                            f"[{errno.errorcode[number]}]"


def test_the_registry_says_what_and_how_for_each_entry() -> None:
    for number, advice in oserrors.ADVICE.items():
        assert advice.what and advice.what[0].islower() and not advice.what.endswith("."), number
        assert advice.hint and advice.hint[0].islower(), number


def test_two_paths_an_unknown_errno_and_a_bare_message() -> None:
    two = oserrors.describe(OSError(errno.EXDEV, "Invalid cross-device link", "/a/x", None, "/b/x"))
    assert two.message == "/a/x -> /b/x: it is on another file system than its destination [EXDEV]"
    odd = oserrors.describe(OSError(errno.ECHRNG, "Channel number out of range", "/dev/x"))
    assert odd.message == "/dev/x: channel number out of range [ECHRNG]" and odd.hint
    bare = oserrors.describe(OSError("stream exceeds its declared size of 5 bytes"))
    assert bare.message == "stream exceeds its declared size of 5 bytes"


def test_enotdir_names_the_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("a file")
    exc = _caught(lambda: os.mkdir(tmp_path / "cache" / "repos" / "x"))
    assert exc.errno == errno.ENOTDIR and exc.filename == str(tmp_path / "cache" / "repos" / "x")
    assert oserrors.describe(exc).message.startswith(f"{tmp_path / 'cache'}: a component of the path is a file")


def test_a_fault_without_a_path_says_how_to_find_it() -> None:
    fault = oserrors.describe(OSError(errno.ENOSPC, "No space left on device"))
    assert fault.message == "no space left on the device [ENOSPC]"
    assert fault.hint.endswith("(the system did not say which file: rerun with --debug to see where)")


def test_a_hostile_path_stays_on_one_line() -> None:
    fault = oserrors.describe(OSError(errno.ENOSPC, "No space left on device", b"/tmp/a\xff\nb\x1b[31m"))
    assert "\n" not in fault.message and "\x1b" not in fault.message
    assert fault.message.startswith("/tmp/a\\xff\\nb\\x1b[31m: ")


# ----------------------------------------------------------------- real faults from the kernel

@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True,
                      check=False).returncode != 0:
        pytest.skip("needs mounts (root with CAP_SYS_ADMIN)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _caught(action: object) -> OSError:
    assert callable(action)
    try:
        action()
    except OSError as exc:
        return exc
    raise AssertionError("no OSError")


@needs_root
def test_a_real_enospc(tmpfs: Path) -> None:
    target = tmpfs / "images" / "disk.img"
    exc = _caught(lambda: atomic_write(target, b"\0" * (1 << 20)))
    fault = oserrors.describe(exc)
    assert exc.errno == errno.ENOSPC
    _one_line(fault, str(target), "ENOSPC")  # a write() names no file: atomic_output names it
    assert "no space left on the device" in fault.message
    assert [p.name for p in target.parent.iterdir()] == []  # the temporary file is gone, nothing half-written


@needs_root
def test_a_real_erofs(tmpfs: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    exc = _caught(lambda: atomic_write(tmpfs / "db.json", b"{}"))
    assert exc.errno == errno.EROFS
    fault = oserrors.describe(exc)
    _one_line(fault, str(tmpfs / "db.json"), "EROFS")  # the file, not its temporary
    assert "read-only" in fault.message and "remount" in fault.hint


@needs_root
def test_a_real_exdev(tmpfs: Path, tmp_path: Path) -> None:
    (tmp_path / "staged").write_text("x")
    exc = _caught(lambda: os.rename(tmp_path / "staged", tmpfs / "staged"))
    assert exc.errno == errno.EXDEV
    fault = oserrors.describe(exc)
    assert fault.message == f"{tmp_path / 'staged'} -> {tmpfs / 'staged'}: " \
                            "it is on another file system than its destination [EXDEV]"


def test_a_real_emfile(tmp_path: Path) -> None:
    """A child process with RLIMIT_NOFILE=32 opens files until the kernel refuses."""
    code = """
import errno, resource, sys
from pathlib import Path
from composer import oserrors
from tests.conftest import skip_unless_nobody_can_run_vcomp
resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))
held = []
try:
    for i in range(100):
        held.append(open(Path(sys.argv[1]) / f"f{i}", "w"))
except OSError as exc:
    f = oserrors.describe(exc)
    print(exc.errno == errno.EMFILE, len(held), f.message, "|", f.hint, sep="\\n")
"""
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    ok, opened, message, _, hint = r.stdout.splitlines()
    assert ok == "True" and 0 < int(opened) < 32
    assert message == f"{tmp_path}/f{opened}: too many open files in this process [EMFILE]"
    assert "ulimit -n" in hint


@pytest.mark.parametrize("below", ["entry", "deeper/entry"])
def test_a_file_where_a_directory_belongs_is_enotdir_naming_the_file(tmp_path: Path, below: str) -> None:
    """``mkdir -p`` says EEXIST ("it already exists") for a file in the way; atomic writes say ENOTDIR."""
    (tmp_path / "cache").write_text("a file where a directory belongs")
    exc = _caught(lambda: atomic_write(tmp_path / "cache" / below, b"x"))
    assert exc.errno == errno.ENOTDIR
    fault = oserrors.describe(exc)
    _one_line(fault, str(tmp_path / "cache"), "ENOTDIR")
    assert "move that file out of the way" in fault.hint


def test_a_real_eacces_as_nobody(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to nobody")
    skip_unless_nobody_can_run_vcomp()
    shared = Path(os.environ.get("TMPDIR", "/tmp")) / f"vcomp-eacces-{os.getpid()}"
    shared.mkdir(mode=0o755)
    try:
        code = "from composer.fsutil import atomic_write; from composer import oserrors; import sys\n" \
               "try:\n    atomic_write(__import__('pathlib').Path(sys.argv[1]) / 'db.json', b'{}')\n" \
               "except OSError as exc:\n    print(oserrors.describe(exc).message)"
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            sys.executable, "-c", code, str(shared)], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, check=True, cwd="/")
        assert r.stdout.strip() == f"{shared / 'db.json'}: permission denied [EACCES]", r.stderr
        assert list(shared.iterdir()) == []
    finally:
        shared.rmdir()
