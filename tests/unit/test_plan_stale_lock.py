"""`vcomp plan` refuses a stale lock with its own exit code (4), naming the profile and the fix, and writes
no plan (issue 15, Deliver 5): a plan of it would show what no build can make, and `apply` would refuse it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.errors import EXIT_STALE_LOCK
from composer.profile.load import load_profile
from composer.solve.lock import lock_path, read_lock
from composer.solve.lockmodel import lock_bytes
from tests.conftest import REPO

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]


def commit(cwd: Path, message: str) -> None:
    subprocess.run([*GIT, "add", "-A"], cwd=cwd, check=True)
    subprocess.run([*GIT, "commit", "-qm", message], cwd=cwd, check=True)


def relocked(profile: Path) -> None:
    """What `vcomp lock` writes after a change that moves no package: the lock of the new profile digest."""
    lock = read_lock(lock_path(profile))
    assert lock is not None
    lock_path(profile).write_bytes(lock_bytes(replace(lock, inputs=load_profile(profile).digest)))


@pytest.fixture()
def workspace(tmp_path: Path) -> Iterator[Path]:
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    shutil.copytree(REPO / "keys" / "sample", tmp_path / "keys" / "sample")  # verified.yaml signs with these
    subprocess.run([*GIT, "init", "-q"], cwd=tmp_path, check=True)
    commit(tmp_path, "base")
    old = Path.cwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)


def test_a_profile_changed_without_relocking_is_refused(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = workspace / "profiles" / "minimal.yaml"
    profile.write_text(profile.read_text().replace("hostname: minimal", "hostname: box", 1))
    capsys.readouterr()
    assert main(["plan", "--out", "plan.json"]) == EXIT_STALE_LOCK == 4
    err = capsys.readouterr().err
    assert "no plan: the lock of profiles/minimal.yaml is stale" in err
    assert "profiles/minimal.yaml: the profile changed since the lock was written" in err
    assert "server.yaml" not in err  # only the stale one is named
    assert "hint: run: vcomp lock profiles/minimal.yaml" in err
    assert not (workspace / "plan.json").exists()
    relocked(profile)
    assert main(["plan", "--out", "plan.json"]) == 2
    assert "hostname: minimal -> box" in capsys.readouterr().out
    assert (workspace / "plan.json").is_file()


def test_every_stale_or_missing_lock_is_named_at_once(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("minimal", "server"):
        p = workspace / "profiles" / f"{name}.yaml"
        p.write_text(p.read_text() + "# edited\n")
    (workspace / "profiles" / "server.lock").unlink()
    assert main(["plan", "--format", "json"]) == 4
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "profiles/server.yaml: there is no lock (server.lock does not exist)" in captured.err
    assert "hint: run: vcomp lock profiles/minimal.yaml profiles/server.yaml" in captured.err


def test_a_deleted_profile_is_planned_not_refused(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workspace / "profiles" / "server.yaml").unlink()
    (workspace / "profiles" / "server.lock").unlink()
    assert main(["plan", "profiles/server.yaml"]) == 2
    assert "server" in capsys.readouterr().out
