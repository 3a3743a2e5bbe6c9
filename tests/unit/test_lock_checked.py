"""Locks are checked, not trusted: a hand-edited lock is refused at the build boundary with what differs.

A real repository (``tests/repo_fixtures.py``) serves hello 1.0.0/1.1.0 and libfoo 1.0.0/1.1.0; the
lock is written by the real resolver and edited the way an attacker with write access to it would.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from composer.cli.main import main
from composer.errors import UserError
from composer.profile.load import load_profile
from composer.solve.lock import kept_versions, lock_path, open_sources, read_lock, resolve_profile
from composer.solve.lockcheck import LockMismatch, check_lock, differences
from composer.solve.lockmodel import Lock, lock_bytes
from composer.solve.relock import load_locked as _load
from tests.repo_fixtures import Repo


def write_profile(tmp_path: Path, repo: Repo, packages: str = "[hello, libfoo]") -> Path:
    d = tmp_path / "profile"
    d.mkdir(parents=True, exist_ok=True)
    (d / "root.json").write_bytes(repo.root_bytes)
    p = d / "p.yaml"
    p.write_text(f"name: checked\narchitectures: [x86_64]\nrepositories:\n"
                 f"  - {{name: main, url: '{repo.url}', root: root.json}}\n"
                 f"packages: {packages}\noutputs:\n  - type: rootfs\n")
    return p


def locked(tmp_path: Path, repo: Repo, packages: str = "[hello, libfoo]",
           keep: dict[str, dict[str, str]] | None = None) -> tuple[Path, dict[str, Any]]:
    p = write_profile(tmp_path, repo, packages)
    prof = load_profile(p)
    lock = resolve_profile(prof, open_sources(prof, tmp_path / "cache"), keep)
    lock_path(p).write_bytes(lock_bytes(lock))
    return p, lock.to_dict()


def dump(doc: dict[str, Any]) -> bytes:
    """A lock document's bytes, however it was edited (as a hand edit leaves the file)."""
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def typed(doc: dict[str, Any]) -> Lock:
    return Lock.from_dict(doc, "p.lock")


def refused(p: Path, tmp_path: Path, doc: dict[str, Any]) -> str:
    lock_path(p).write_bytes(dump(doc))
    prof = load_profile(p)
    lock = read_lock(lock_path(p))
    assert lock is not None
    with pytest.raises(LockMismatch) as info:
        check_lock(prof, lock, open_sources(prof, tmp_path / "cache"), lock_path(p))
    assert "nothing was built" in info.value.hint
    return info.value.message


def row(doc: dict[str, Any], name: str) -> tuple[int, dict[str, Any]]:
    rows = doc["architectures"]["x86_64"]
    i = next(i for i, r in enumerate(rows) if r["name"] == name)
    return i, rows[i]


def test_an_honest_lock_passes(repo: Repo, tmp_path: Path) -> None:
    p, doc = locked(tmp_path, repo)
    prof = load_profile(p)
    check_lock(prof, typed(doc), open_sources(prof, tmp_path / "cache"), lock_path(p))
    assert {r["name"]: r["version"] for r in doc["architectures"]["x86_64"]} == {"hello": "1.1.0", "libfoo": "1.1.0"}


def test_an_extra_package_nobody_asked_for_is_refused(repo: Repo, tmp_path: Path) -> None:
    p, doc = locked(tmp_path, repo)
    _, evil = locked(tmp_path / "other", repo, "[evil-tool]")
    bad = copy.deepcopy(doc)
    bad["architectures"]["x86_64"].append(evil["architectures"]["x86_64"][0])
    msg = refused(p, tmp_path, bad)
    assert "$.architectures.x86_64[2]: package 'evil-tool' 1.0.0 is not part of the profile's resolution" in msg
    assert str(lock_path(p)) in msg and "1 difference" in msg


def test_a_downgrade_is_refused_with_the_version_it_should_be(repo: Repo, tmp_path: Path) -> None:
    p, doc = locked(tmp_path, repo)
    _, old = locked(tmp_path / "old", repo, "[{name: hello, version: '=1.0.0'}]")
    bad = copy.deepcopy(doc)
    i, _ = row(bad, "hello")
    bad["architectures"]["x86_64"][i] = {**row(old, "hello")[1], "reason": "requested"}
    msg = refused(p, tmp_path, bad)
    assert f"$.architectures.x86_64[{i}].version: 'hello' has '1.0.0', resolving the profile gives '1.1.0'" in msg
    assert f"$.architectures.x86_64[{i}].sha256" in msg


@pytest.mark.parametrize(("field", "value"), [("sha256", "0" * 64), ("reason", "dependency of libfoo"),
                                              ("arch", "noarch"), ("repository", "elsewhere"), ("signer", "f" * 64),
                                              ("held", True)])
def test_a_changed_field_is_refused_naming_its_json_path(repo: Repo, tmp_path: Path, field: str, value: Any) -> None:
    p, doc = locked(tmp_path, repo)
    bad = copy.deepcopy(doc)
    i, r = row(bad, "hello")
    r[field] = value
    msg = refused(p, tmp_path, bad)
    assert f"$.architectures.x86_64[{i}].{field}: 'hello' has {value!r}" in msg, msg


def test_a_missing_package_and_a_bad_shape_are_refused(repo: Repo, tmp_path: Path) -> None:
    p, doc = locked(tmp_path, repo)
    bad = copy.deepcopy(doc)
    bad["architectures"]["x86_64"] = [r for r in bad["architectures"]["x86_64"] if r["name"] != "libfoo"]
    assert "$.architectures.x86_64: package 'libfoo' 1.1.0 (requested) is missing" in refused(p, tmp_path, bad)
    # a malformed lock is refused when it is read, with the same words and its JSON path
    with pytest.raises(UserError, match=r"^p.lock: \$.architectures.x86_64: missing or not a list of packages$"):
        typed({**doc, "architectures": {"x86_64": "nope"}})
    with pytest.raises(UserError, match=r"^p.lock: \$.architectures.x86_64\[0\]: not a package entry$"):
        typed({**doc, "architectures": {"x86_64": [7, *doc["architectures"]["x86_64"]]}})
    assert differences(typed(doc), typed({**doc, "profile": "other"})) == [
        "$.profile: is 'other', resolving the profile gives 'checked'"]


def test_kept_versions_are_held_rows_and_a_moved_index_is_checked_against_what_is_served(repo: Repo,
                                                                                         tmp_path: Path) -> None:
    repo.serve(repo.old())
    p, first = locked(tmp_path, repo)
    _, tool = locked(tmp_path / "tool", repo, "[evil-tool]")
    assert row(first, "hello")[1]["version"] == "1.0.0"
    repo.serve(repo.dir)  # the repository publishes hello 1.1.0 and libfoo 1.1.0
    prof = load_profile(p)
    sources = open_sources(prof, tmp_path / "cache")
    with pytest.raises(LockMismatch) as info:
        check_lock(prof, typed(first), sources, lock_path(p))
    msg = info.value.message
    assert "the repositories moved since it was written: $.indexes.main.x86_64" in msg, msg
    assert "'hello' has '1.0.0', resolving the profile gives '1.1.0'" in msg and "vcomp lock" in info.value.hint
    relocked = resolve_profile(prof, sources, kept_versions(typed(first)))  # what `vcomp lock` writes: kept
    assert {(r.name, r.version, r.held) for r in relocked.packages("x86_64")} == {
        ("hello", "1.0.0", True), ("libfoo", "1.0.0", True)}
    check_lock(prof, relocked, sources, lock_path(p))
    unmarked = relocked.to_dict()
    del row(unmarked, "hello")[1]["held"]  # a downgrade dressed as an ordinary row
    assert "'hello' has '1.0.0', resolving the profile gives '1.1.0'" in refused(p, tmp_path, unmarked)
    # the index moved but what this profile resolves to did not: the lock still checks out
    tool_profile = tmp_path / "tool" / "profile" / "p.yaml"
    tp = load_profile(tool_profile)
    check_lock(tp, typed(tool), open_sources(tp, tmp_path / "tool-cache"), lock_path(tool_profile))
    tool["architectures"]["x86_64"][0]["sha256"] = "1" * 64
    with pytest.raises(LockMismatch, match="sha256: 'evil-tool' has '1111"):
        check_lock(tp, typed(tool), open_sources(tp, tmp_path / "tool-cache"), lock_path(tool_profile))


def test_lock_check_reports_a_hand_edited_lock_with_exit_2(repo: Repo, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "vcache"))
    p, doc = locked(tmp_path, repo)
    assert main(["lock", "--check", str(p)]) == 0
    row(doc, "hello")[1]["reason"] = "dependency of libfoo"
    lock_path(p).write_bytes(dump(doc))
    capsys.readouterr()
    assert main(["lock", "--check", str(p)]) == 2
    assert "'hello' has 'dependency of libfoo'" in capsys.readouterr().err


def test_build_refuses_a_hand_edited_lock_before_any_work(repo: Repo, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "vcache"))
    p, doc = locked(tmp_path, repo)
    assert _load(p)[1].to_dict() == doc
    bad = copy.deepcopy(doc)
    row(bad, "libfoo")[1]["version"] = "1.0.0"
    lock_path(p).write_bytes(dump(bad))
    images = tmp_path / "images"
    capsys.readouterr()
    assert main(["build", str(p), "--images", str(images)]) != 0
    err = capsys.readouterr().err
    assert "is not what resolving" in err and "'libfoo' has '1.0.0'" in err, err
    assert not images.exists()


def test_changing_an_overlay_file_makes_the_lock_stale(repo: Repo, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "vcache"))
    p = write_profile(tmp_path, repo)
    (p.parent / "overlay" / "etc").mkdir(parents=True)
    (p.parent / "overlay" / "etc" / "motd").write_text("welcome\n")
    p.write_text(p.read_text() + "files: overlay\n")
    assert main(["lock", str(p)]) == 0
    assert main(["lock", "--check", str(p)]) == 0
    (p.parent / "overlay" / "etc" / "motd").write_text("welcome, mallory\n")
    capsys.readouterr()
    assert main(["lock", "--check", str(p)]) == 2
    assert "the profile changed since the lock was written" in capsys.readouterr().err
    assert main(["build", str(p), "--images", str(tmp_path / "images")]) == 1
    assert "is stale" in capsys.readouterr().err and not (tmp_path / "images").exists()
