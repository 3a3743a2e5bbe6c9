"""`vcomp plan` compares typed states: both sides are validated profiles and read locks; a side that is not
(an invalid profile or lock at the base commit) is an error naming the file at that commit."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.gitops.gitstate import state_of
from composer.profile.model import Profile
from composer.solve.lockmodel import Lock
from tests.conftest import REPO
from tests.unit.test_plan_stale_lock import relocked

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]


def commit(cwd: Path, message: str) -> str:
    subprocess.run([*GIT, "add", "-A"], cwd=cwd, check=True)
    subprocess.run([*GIT, "commit", "-qm", message], cwd=cwd, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture()
def workspace(tmp_path: Path) -> Iterator[Path]:
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    subprocess.run([*GIT, "init", "-q"], cwd=tmp_path, check=True)
    old = Path.cwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)


def test_both_sides_are_typed(workspace: Path) -> None:
    path = workspace / "profiles" / "minimal.yaml"
    state = state_of(path.read_bytes(), path.with_suffix(".lock").read_bytes(), str(path), path)
    assert isinstance(state.profile, Profile) and isinstance(state.lock, Lock)
    assert state.profile.name == "minimal" and state.lock.profile == "minimal"


def test_a_setting_changed_since_a_valid_base(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commit(workspace, "base")
    profile = workspace / "profiles" / "minimal.yaml"
    profile.write_text(profile.read_text().replace("hostname: minimal", "hostname: box", 1))
    relocked(profile)  # a lock of the changed profile (a stale lock is refused: tests/unit/test_plan_stale_lock.py)
    assert main(["plan", "profiles/minimal.yaml"]) == 2
    assert "hostname: minimal -> box" in capsys.readouterr().out


def test_an_invalid_profile_at_the_base_names_the_commit(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = workspace / "profiles" / "minimal.yaml"
    good = profile.read_text()
    profile.write_text(good.replace("hostname:", "hostname: [1, 2]\nx-hostname:", 1))
    sha = commit(workspace, "a broken profile")
    profile.write_text(good)
    assert main(["plan", "profiles/minimal.yaml"]) == 1
    err = capsys.readouterr().err
    assert f"profiles/minimal.yaml@{sha[:12]}:" in err and "$.hostname: [1, 2] is not of type 'string'" in err, err


def test_a_malformed_lock_at_the_base_names_the_commit(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = workspace / "profiles" / "minimal.lock"
    good = lock.read_text()
    lock.write_text(good.replace('"size": ', '"size": -', 1))
    sha = commit(workspace, "a broken lock")
    lock.write_text(good)
    assert main(["plan", "profiles/minimal.yaml"]) == 1
    err = capsys.readouterr().err
    assert f"profiles/minimal.lock@{sha[:12]}: $.architectures." in err and "is not a size in bytes" in err, err


def test_the_default_base_is_the_last_commit(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Clean tree: the plan shows what HEAD did to the profiles; after a commit of other files (the repository,
    the docs), nothing: an older profile change is never shown again (issue 15)."""
    commit(workspace, "base")
    profile = workspace / "profiles" / "minimal.yaml"
    profile.write_text(profile.read_text().replace("hostname: minimal", "hostname: box", 1))
    relocked(profile)
    commit(workspace, "minimal: hostname box")
    assert main(["plan", "profiles/minimal.yaml", "--format", "markdown"]) == 2
    out = capsys.readouterr().out
    assert "hostname: minimal -> box" in out and "HEAD^ (the last commit)" in out, out
    (workspace / "NOTES.md").write_text("a commit that does not touch the profiles\n")
    commit(workspace, "notes")
    assert main(["plan", "profiles/minimal.yaml", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "hostname" not in out and "does not change the profiles" in out, out
