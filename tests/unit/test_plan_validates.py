"""`vcomp plan` works on validated profiles: a wrong-typed profile is the validation error, not a plan."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from composer.cli.main import main
from tests.conftest import REPO


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=tmp_path, check=True)
    old = Path.cwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)


def test_a_wrong_typed_profile_is_refused_with_its_place(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = workspace / "profiles" / "minimal.yaml"
    profile.write_text(profile.read_text().replace("hostname:", "hostname: [1, 2]\nx-hostname:", 1))
    assert main(["plan", "profiles/minimal.yaml"]) == 1
    err = capsys.readouterr().err
    assert "minimal.yaml:" in err and "$.hostname: [1, 2] is not of type 'string'" in err

