"""Faults on the root side are one clear line, exit 1, the old state intact; the package manager works offline
for everything that needs no package; a root that is a mount point (tmpfs) works, and a full or read-only one
fails cleanly."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from composer.cli.main import main
from tests.reliability.scenarios_pkg import EPOCH, env_for, observe_root, prepared, world

JOURNAL = "var/lib/vpk/journal.json"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k, v in env_for(tmp_path).items():
        monkeypatch.setenv(k, v)
    return prepared(tmp_path, ["install", "alpha==1.0.0", "beta"])


def vcomp(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "internal error" not in err and "Traceback" not in err, err
    return code, out, err


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


# ---------------------------------------------------------------- journal


@pytest.mark.parametrize("text", ['{"transaction": 3, "ops": [{"op": "pla', "", "[]", '{"transaction": "x"}'],
                         ids=["truncated", "empty", "not-an-object", "bad-transaction"])
def test_a_corrupt_journal_is_one_error_with_the_repair_and_never_blocks_readers(
        root: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    (root / JOURNAL).write_text(text)
    before = observe_root(root)
    code, out, err = vcomp(capsys, "pkg", "--root", str(root), "list")
    assert code == 0 and "alpha" in out and "journal.json" in err
    code, out, err = vcomp(capsys, "pkg", "--root", str(root), "verify")
    assert code == 2 and "verify: clean" not in out and "pending" in out
    for args in (["recover"], ["remove", "beta"], ["install", "beta"]):
        code, out, err = vcomp(capsys, "pkg", "--root", str(root), *args)
        assert code == 1 and f"{root}/{JOURNAL}" in one_error(err), err
        assert f"vcomp pkg --root {root} recover --abort" in err and "--retry" in err
    assert observe_root(root) == before
    code, out, err = vcomp(capsys, "pkg", "--root", str(root), "recover", "--abort")
    assert code == 0 and "dropped the unreadable journal" in out
    assert not (root / JOURNAL).exists()
    assert vcomp(capsys, "pkg", "--root", str(root), "verify")[0] == 0
    assert vcomp(capsys, "pkg", "--root", str(root), "remove", "beta")[0] == 0


def test_a_pending_journal_makes_verify_say_so(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / JOURNAL).write_text(json.dumps({"transaction": 3, "ops": []}))
    code, out, _ = vcomp(capsys, "pkg", "--root", str(root), "verify")
    assert code == 2 and "transaction 3 is pending" in out and "verify: clean" not in out
    code, out, _ = vcomp(capsys, "pkg", "--root", str(root), "recover")
    assert code == 0 and "transaction 3 was interrupted: rolled back" in out
    assert vcomp(capsys, "pkg", "--root", str(root), "verify")[0] == 0


def test_verify_says_clean_only_when_nothing_differs(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "etc/alpha.conf").write_text("mine\n")
    code, out, _ = vcomp(capsys, "pkg", "--root", str(root), "verify")
    assert code == 0 and "alpha: config changed /etc/alpha.conf" in out and "clean" not in out
    assert "verify: no damage; 1 config file(s) changed by the admin" in out


def test_verify_never_calls_a_root_with_a_missing_config_file_clean(root: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (root / "etc/alpha.conf").unlink()
    code, out, _ = vcomp(capsys, "pkg", "--root", str(root), "verify")
    assert code == 2 and "alpha: missing /etc/alpha.conf" in out and "verify: clean" not in out


# ---------------------------------------------------------------- database


def _edit_db(root: Path, change: Callable[[dict[str, object]], None], name: str = "db.json") -> None:
    path = root / "var/lib/vpk" / name
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(("name", "change", "where"), [
    ("db.json", lambda d: d.pop("packages"), "packages is NoneType"),
    ("db.json", lambda d: d.update(packages=[]), "packages is list"),
    ("db.json", lambda d: d["packages"]["alpha"].update(files="x"), "packages.alpha.files is str"),
    ("db.json", lambda d: d.update(transaction="2"), "transaction is str"),
    ("history.json", lambda d: d[0].update(id="one"), "[0].id is str"),
], ids=["no-packages", "packages-list", "files-str", "transaction-str", "history-id"])
def test_a_damaged_database_is_one_line_for_every_command(root: Path, capsys: pytest.CaptureFixture[str],
                                                          name: str, change: Callable[[object], None],
                                                          where: str) -> None:
    _edit_db(root, change, name)  # type: ignore[arg-type]
    before = observe_root(root)
    for args in (["list"], ["verify"], ["history"], ["remove", "beta"], ["install", "beta"], ["rollback"],
                 ["recover"]):
        code, _, err = vcomp(capsys, "pkg", "--root", str(root), *args)
        if args == ["recover"] and code == 0:
            continue  # nothing to recover: the database is not read
        assert code == 1, (args, err)
        assert f"{root}/var/lib/vpk/{name}" in one_error(err) and where in one_error(err), (args, err)
    assert observe_root(root) == before


def test_a_history_id_that_is_not_a_number_on_the_command_line(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["pkg", "--root", str(root), "rollback", "two"])
    assert info.value.code == 1 and "invalid int value: 'two'" in capsys.readouterr().err   # usage errors exit 1


# ---------------------------------------------------------------- offline


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/repo"


def test_commands_that_need_no_package_never_touch_the_network(root: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = root / "var/lib/vpk/repositories.json"
    repos = json.loads(path.read_text())
    path.write_text(json.dumps([{**r, "url": _dead_url()} for r in repos]))
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)  # nothing cached either
    for args in (["list"], ["info", "alpha"], ["files", "alpha"], ["owns", "/etc/alpha.conf"], ["verify"],
                 ["history"], ["orphans"], ["depends", "alpha"], ["remove", "beta"], ["autoremove"]):
        code, _out, err = vcomp(capsys, "pkg", "--root", str(root), *args)
        assert code == 0, (args, err)
    assert not (root / "opt/beta").exists()
    code, _, err = vcomp(capsys, "pkg", "--root", str(root), "install", "beta")
    assert code == 1 and "127.0.0.1" in one_error(err)


def test_a_relative_repository_url_is_refused_naming_the_file(root: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = root / "var/lib/vpk/repositories.json"
    path.write_text(json.dumps([{**r, "url": "../repo"} for r in json.loads(path.read_text())]))
    code, _, err = vcomp(capsys, "pkg", "--root", str(root), "install", "beta")
    assert code == 1 and f"{path}: [0].url '../repo' is a relative path" in one_error(err)
    assert f"vcomp pkg --root {root} repo-url test URL-OR-DIRECTORY" in err
    assert vcomp(capsys, "pkg", "--root", str(root), "remove", "beta")[0] == 0  # needs no repository
    monkeypatch.chdir(world().repo.parent)
    code, out, _ = vcomp(capsys, "pkg", "--root", str(root), "repo-url", "test", "repo")
    assert code == 0 and world().repo.as_uri() in out
    assert json.loads(path.read_text())[0]["url"] == world().repo.as_uri()
    assert vcomp(capsys, "pkg", "--root", str(root), "install", "beta")[0] == 0


# ---------------------------------------------------------------- a root that is a mount point


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                          check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(root: Path, leave: int) -> None:
    st = os.statvfs(root)
    free = st.f_bavail * st.f_frsize
    with open(root / "filler", "wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * max(0, free - leave))


def test_a_root_on_its_own_file_system_full_or_read_only(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in env_for(tmp_path).items():
        monkeypatch.setenv(k, v)
    source = prepared(tmp_path / "src", ["install", "alpha==1.0.0"])
    with tmpfs(tmp_path / "mnt", "4m") as root:
        shutil.copytree(source, root, symlinks=True, dirs_exist_ok=True)
        # a mount point: staging inside the root keeps every rename on one file system (no EXDEV)
        assert vcomp(capsys, "pkg", "--root", str(root), "upgrade", "alpha")[0] == 0
        assert vcomp(capsys, "pkg", "--root", str(root), "rollback")[0] == 0
        # full: the transaction fails with one line, the root stays as it was
        _fill(root, 8 * 1024)
        before = observe_root(root)
        code, _, err = vcomp(capsys, "pkg", "--root", str(root), "install", "beta")
        assert code == 1 and "[ENOSPC]" in one_error(err), err
        print(one_error(err))
        assert observe_root(root) == before and not (root / JOURNAL).exists()
        (root / "filler").unlink()
        assert not (root / "var/lib/vpk/staging").exists() and not (root / "opt").exists()
        assert vcomp(capsys, "pkg", "--root", str(root), "verify")[0] == 0
        # read-only: one line, nothing changed
        before = observe_root(root)
        subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
        try:
            code, _, err = vcomp(capsys, "pkg", "--root", str(root), "install", "beta")
            assert code == 1 and f"{root}/var/lib/vpk/lock" in one_error(err) and "read-only" in one_error(err), err
            assert vcomp(capsys, "pkg", "--root", str(root), "list")[0] == 0
            assert vcomp(capsys, "pkg", "--root", str(root), "verify")[0] == 0
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(root)], check=True)
        assert observe_root(root) == before
    assert EPOCH


def test_a_directory_that_is_not_a_root_is_left_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "plain").mkdir()
    for args in (["remove", "x"], ["recover"], ["list"]):
        code, _, err = vcomp(capsys, "pkg", "--root", str(tmp_path / "plain"), *args)
        assert code == 1 and "is not a root managed by vcomp" in one_error(err)
    assert list((tmp_path / "plain").iterdir()) == []


def test_recovery_sweeps_temporary_files_of_a_killed_atomic_write(root: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    before = observe_root(root)
    (root / "var/lib/vpk/.vpk-tmp-0123456789abcdef").write_text('{"half": ')
    assert vcomp(capsys, "pkg", "--root", str(root), "recover")[0] == 0
    assert observe_root(root) == before


def test_a_fault_at_the_commit_rolls_back_at_once(root: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC while the database is written (after every file was placed): rolled back in the same process."""
    import errno

    from composer.pkgmgr import db

    def full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(root / "var/lib/vpk/db.json"))

    before = observe_root(root)
    monkeypatch.setattr(db, "save", full)
    code, _, err = vcomp(capsys, "pkg", "--root", str(root), "upgrade", "alpha")
    assert code == 1 and "db.json" in one_error(err) and "ENOSPC" in one_error(err), err
    assert observe_root(root) == before
    assert not (root / JOURNAL).exists() and not (root / "var/lib/vpk/staging").exists()
