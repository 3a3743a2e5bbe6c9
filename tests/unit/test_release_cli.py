"""`vcomp release`, `vcomp rollback-channel` and the channel column of `vcomp history` on a git repository of
profiles with recorded generations (their A/B bundles are small fake files) and the real signed test
repository; every --json document checked against its schema (closed: no field the schema does not list)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from composer.cli.main import main
from composer.gitops import generations
from composer.repo.store import RepoStore
from tests.repo_fixtures import Repo
from tests.unit.test_json_output import check, run
from tests.unit.test_update_release import make_bundle

REPO = Path(__file__).resolve().parents[2]
COMMITS = {1: "a" * 40, 2: "b" * 40}


def build_generation(tmp_path: Path, number: int) -> None:
    """What a reconcile of an A/B profile leaves: images/minimal/x86_64/disk.raw and disk.bundle/, recorded."""
    out = tmp_path / "images" / "minimal" / "x86_64"
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "disk.bundle", ignore_errors=True)
    make_bundle(out, number, profile="minimal", name="disk.bundle")
    disk = (out / "disk.bundle" / "root.img").read_bytes() + b"disk"
    (out / "disk.raw").write_bytes(disk)
    generations.record(tmp_path / "images", "minimal", {
        "profile": "profiles/minimal.yaml", "commit": COMMITS[number], "worktree": "clean", "time": 1700000000,
        "profile-digest": "b" * 64, "lock-digest": "c" * 64, "rebuilt": ["x86_64"], "architectures": {"x86_64": {
            "inputs": "d" * 64, "outputs": [{"name": "disk", "type": "disk", "files": [
                {"path": "disk.raw", "sha256": hashlib.sha256(disk).hexdigest(), "size": len(disk)}]}],
            "packages": [], "tests": []}}})


@pytest.fixture()
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def released(argv: list[str], capsys: pytest.CaptureFixture[str], schema: str = "release") -> Any:
    return check(run([*argv, "--json"], capsys), schema)


def test_release_history_and_rollback_channel(profiles: Path, repo: Repo, capsys: pytest.CaptureFixture[str]) \
        -> None:
    at = ["--repo", str(repo.dir)]
    build_generation(profiles, 1)
    doc = released(["release", "profiles/minimal.yaml", "--channel", "stable", *at], capsys)
    assert (doc["generation"], doc["commit"], doc["previous_generation"]) == (1, COMMITS[1], None)
    assert doc["target"] == "index/minimal.x86_64.stable.channel.json"
    assert doc["images"]["root"] == "minimal.x86_64.g1.root" and doc["new_bytes"] > 0
    build_generation(profiles, 2)
    assert main(["release", "profiles/minimal.yaml", "--channel", "stable", *at]) == 0
    text = capsys.readouterr().out
    assert "released minimal generation 2 (x86_64) to channel 'stable' (was generation 1)" in text
    assert "of new chunks" in text

    # generation 1's files are no longer the ones on disk: refused, naming the file
    assert main(["release", "profiles/minimal.yaml", "--channel", "beta", "--generation", "1", *at]) == 1
    err = capsys.readouterr().err
    assert "disk.raw is not the file generation 1 of minimal (x86_64) recorded" in err and "hint:" in err

    hist = check(run(["history", "profiles/minimal.yaml", *at, "--json"], capsys), "generations")
    assert [g["channels"] for g in hist["generations"]] == [[], ["stable"]]
    assert [c["generation"] for c in hist["channels"]] == [2]
    assert main(["history", "profiles/minimal.yaml", *at]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("channels -") and lines[1].endswith("channels stable")

    back = released(["rollback-channel", "profiles/minimal.yaml", "--channel", "stable", "--arch", "x86_64", *at],
                    capsys, "rollback-channel")
    assert (back["generation"], back["previous_generation"], back["history"][-1]["action"]) == (1, 2, "rollback")
    hist = check(run(["history", "profiles/minimal.yaml", *at, "--json"], capsys), "generations")
    assert [g["channels"] for g in hist["generations"]] == [["stable"], []]

    # refusals: one line and a hint each, exit 1
    for argv, message in (
            (["rollback-channel", "profiles/minimal.yaml", "--channel", "stable", *at], "which architecture"),
            (["release", "minimal", "--channel", "x", "--bundle", "nowhere", *at], "--bundle needs --generation"),
            (["release", "profiles/minimal.yaml", "--channel", "stable"], "no repository to release to")):
        assert main(argv) == 1
        got = capsys.readouterr().err
        assert message in got and "hint:" in got and "Traceback" not in got


def test_release_of_a_bundle_directory_without_git(tmp_path: Path, repo: Repo,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    bundle = make_bundle(tmp_path, 3, profile="device")
    argv = ["release", "device", "--channel", "beta", "--repo", str(repo.dir), "--bundle", str(bundle)]
    doc = released([*argv, "--generation", "3", "--commit", "c" * 40], capsys)
    assert (doc["generation"], doc["commit"], doc["republished"]) == (3, "c" * 40, False)
    assert [f["role"] for f in doc["files"]] == ["root", "verity", "uki-a", "uki-b"]
    assert main([*argv, "--generation", "2"]) == 1
    assert "generation 2 is not newer" in capsys.readouterr().err
    assert main(["release", "other", "--channel", "beta", "--repo", str(repo.dir), "--bundle", str(bundle),
                 "--generation", "4"]) == 1
    assert "a bundle of profile 'device', not 'other'" in capsys.readouterr().err
    served = RepoStore(repo.dir).read_state()["images"]
    assert "index/device.x86_64.beta.channel.json" in served


def test_reconcile_channel_releases_the_generation_just_recorded(profiles: Path, repo: Repo,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """What `vcomp reconcile --channel stable` does once a generation is recorded and its boot tests passed."""
    import argparse

    from composer.cli.gitops import _release_generation
    from composer.gitops.workspace import Workspace
    ws = Workspace.open(profiles, None)
    build_generation(profiles, 1)
    args = argparse.Namespace(channel="stable", repo=str(repo.dir))
    _release_generation(ws, profiles / "profiles" / "minimal.yaml", 1, args)
    assert "released generation 1 (x86_64) to channel 'stable'" in capsys.readouterr().out
    hist = check(run(["history", "profiles/minimal.yaml", "--repo", str(repo.dir), "--json"], capsys),
                 "generations")
    assert hist["generations"][0]["channels"] == ["stable"]
    shutil.rmtree(profiles / "images" / "minimal" / "x86_64" / "disk.bundle")
    build_generation(profiles, 2)
    shutil.rmtree(profiles / "images" / "minimal" / "x86_64" / "disk.bundle")
    _release_generation(ws, profiles / "profiles" / "minimal.yaml", 2, args)
    assert "generation 2 has no update bundle (no A/B disk output): not released" in capsys.readouterr().out


def test_the_repository_and_channel_come_from_the_profile(tmp_path: Path) -> None:
    """``updates.repository`` names one of the profile's repositories; a local one is where releases go."""
    from types import SimpleNamespace

    from composer.errors import UserError
    from composer.gitops.releases import default_channel, repository_dir
    local = SimpleNamespace(name="updates", url=(tmp_path / "r").as_uri())
    remote = SimpleNamespace(name="web", url="https://example.org/repo")
    profile = SimpleNamespace(updates=SimpleNamespace(repository="updates", channel="stable"),
                              repositories=(local, remote))
    assert repository_dir(None, profile, "p.yaml") == tmp_path / "r"
    assert repository_dir("given", profile, "p.yaml") == Path("given")
    assert default_channel(None, profile, "p.yaml") == "stable" and default_channel("beta", profile, "p") == "beta"
    web = SimpleNamespace(updates=SimpleNamespace(repository="web", channel="x"), repositories=(remote,))
    with pytest.raises(UserError, match="updates.repository 'web' is at https://example.org/repo, which this"):
        repository_dir(None, web, "p.yaml")
    with pytest.raises(UserError, match="no repository to release to"):
        repository_dir(None, SimpleNamespace(repositories=()), "p.yaml")
    with pytest.raises(UserError, match="which channel"):
        default_channel(None, SimpleNamespace(), "p.yaml")
