"""`vcomp bump`: the newest allowed versions committed on a new branch, the plan (with the advisories the bump
fixes) as the message; the checkout is left as it was. A real repository (tests/repo_fixtures.py) and real git."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest

from composer.advisory.osv import Advisory
from composer.cli.main import main
from composer.repo.advisories import add_advisories, delegate_advisories
from tests.repo_fixtures import Repo
from tests.unit.test_outdated import held_lock


def advisory() -> Advisory:
    return Advisory.from_dict({"id": "VER-2026-0042", "modified": "2026-12-01T00:00:00Z", "summary": "hello hole",
                               "affected": [{"package": {"ecosystem": "Veridian", "name": "hello"}, "ranges": [
                                   {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.0"}]}]}],
                               "database_specific": {"severity": "high"}}, "test")


@pytest.fixture()
def checkout(repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, git.Repo]:
    for var, value in (("GIT_AUTHOR_NAME", "T"), ("GIT_AUTHOR_EMAIL", "t@example.org"),
                       ("GIT_COMMITTER_NAME", "T"), ("GIT_COMMITTER_EMAIL", "t@example.org")):
        monkeypatch.setenv(var, value)
    keys = repo.keys.by_name
    delegate_advisories(repo.store, [keys["alice"].public], targets_keys=[keys["targets"]])
    add_advisories(repo.store, [advisory()], [keys["alice"]])
    profile = held_lock(tmp_path, repo)
    g = git.Repo.init(profile.parent, initial_branch="main")
    g.index.add([str(p) for p in sorted(profile.parent.iterdir()) if p.is_file()])
    g.index.commit("profile and lock")
    return profile, g


def test_bump_commits_the_relock_on_a_new_branch_with_the_plan(checkout: tuple[Path, git.Repo],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    profile, g = checkout
    before = profile.with_suffix(".lock").read_bytes()
    assert main(["bump", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "committed on branch 'vcomp/bump-p'" in out
    assert g.active_branch.name == "main" and profile.with_suffix(".lock").read_bytes() == before
    commit = g.heads["vcomp/bump-p"].commit
    assert commit.parents[0] == g.heads["main"].commit
    assert [d.a_path for d in commit.diff(commit.parents[0])] == ["p.lock"]
    message = str(commit.message)
    assert message.startswith("p.yaml: bump 2 packages (vcomp bump)")
    assert "hello" in message and "1.0.0" in message and "1.1.0" in message
    assert "- fixes x86_64: hello 1.0.0: VER-2026-0042 (high)" in message
    locked = json.loads(g.git.show("vcomp/bump-p:p.lock"))
    assert {r["name"]: r["version"] for r in locked["architectures"]["x86_64"]}["hello"] == "1.1.0"


def test_bump_refuses_a_dirty_tree_and_an_existing_branch(checkout: tuple[Path, git.Repo],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    profile, g = checkout
    profile.write_text(profile.read_text() + "\n")
    assert main(["bump", str(profile)]) == 1
    assert "the working tree has changes (p.yaml)" in capsys.readouterr().err
    g.git.checkout("--", "p.yaml")
    g.create_head("mine")
    assert main(["bump", str(profile), "--branch", "mine"]) == 1
    assert "branch 'mine' already exists" in capsys.readouterr().err
    assert main(["bump", str(profile), "--branch", "up"]) == 0
    g.git.checkout("up")
    assert main(["bump", str(profile), "--branch", "again"]) == 0
    assert "nothing to bump" in capsys.readouterr().out and "again" not in g.heads
