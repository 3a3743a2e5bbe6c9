"""`vcomp outdated` and `vcomp lock --check` tell what the repositories serve newer than a lock (issue 15, 5).

The real repository of ``tests/repo_fixtures.py`` serves hello 1.0.0/1.1.0 and libfoo 1.0.0/1.1.0; locks are
written by the real resolver, holding old versions as ``vcomp lock`` keeps them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from composer.cli.lock import outdated_lines
from composer.cli.main import main
from composer.profile.load import load_profile
from composer.solve.lock import lock_path, open_sources, resolve_profile
from composer.solve.lockmodel import Lock, LockedPackage, Reason, lock_bytes
from composer.solve.outdated import OutdatedPackage, outdated_packages
from composer.solve.relock import Outdated
from tests.conftest import REPO
from tests.repo_fixtures import Repo
from tests.unit.test_lock_checked import write_profile

OLD = {"x86_64": {"hello": "1.0.0", "libfoo": "1.0.0"}}


def held_lock(tmp_path: Path, repo: Repo, packages: str = "[hello, libfoo]") -> Path:
    p = write_profile(tmp_path, repo, packages)
    prof = load_profile(p)
    lock_path(p).write_bytes(lock_bytes(resolve_profile(prof, open_sources(prof, tmp_path / "cache"), OLD)))
    return p


def row(name: str, version: str) -> LockedPackage:
    return LockedPackage(name=name, version=version, arch="x86_64", sha256="0" * 64, size=1, repository="main",
                         signer="k", reason=Reason(kind="requested"))


def lock_of(*rows: LockedPackage) -> Lock:
    return Lock(format=2, profile="p", inputs="", trust_roots={}, indexes={}, architectures={"x86_64": rows})


def test_allowed_and_newest_are_told_apart() -> None:
    locked = lock_of(row("a", "1.0.0"), row("b", "2.0.0"), row("c", "3.0.0"))
    fresh = lock_of(row("a", "1.2.0"), row("b", "2.0.0"), row("c", "3.0.0"))
    served = {"x86_64": {"a": [("1.0.0", "semver"), ("2.0.0", "semver"), ("1.2.0", "semver")],
                         "b": [("2.0.0", "semver"), ("2.1.0", "semver")], "c": [("3.0.0", "semver")]}}
    assert outdated_packages(locked, fresh, served) == [
        OutdatedPackage(arch="x86_64", name="a", locked="1.0.0", allowed="1.2.0", newest="2.0.0"),
        OutdatedPackage(arch="x86_64", name="b", locked="2.0.0", allowed="2.0.0", newest="2.1.0")]


def test_the_table_names_the_upgrade_command_and_what_needs_a_profile_change() -> None:
    found = Outdated(profile=Path("profiles/s.yaml"), target=Path("profiles/s.lock"), packages=(
        OutdatedPackage(arch="x86_64", name="a", locked="1.0.0", allowed="1.2.0", newest="2.0.0"),
        OutdatedPackage(arch="x86_64", name="b", locked="2.0.0", allowed="2.0.0", newest="2.1.0")))
    lines = outdated_lines(found)
    assert lines[1].split() == ["ARCH", "NAME", "LOCKED", "ALLOWED", "NEWEST"]
    assert lines[2].split() == ["x86_64", "a", "1.0.0", "1.2.0", "2.0.0"]
    assert lines[1].index("LOCKED") == lines[2].index("1.0.0")  # aligned
    assert "  upgrade: vcomp lock --update a profiles/s.yaml" in lines
    assert "newest not allowed by the profile's requirements: a, b" in lines[-1]


def test_outdated_lists_held_packages_and_lock_check_counts_them(repo: Repo, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    p = held_lock(tmp_path, repo)
    assert main(["lock", "--check", str(p)]) == 0
    assert f"up to date with {p}, 2 newer versions available (vcomp outdated {p})" in capsys.readouterr().out
    assert main(["outdated", "--json", str(p)]) == 0
    doc = json.loads(capsys.readouterr().out)
    schema = json.loads((REPO / "schemas" / "outdated.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema).validate(doc)
    [one] = doc["profiles"]
    assert [(x["name"], x["locked"], x["allowed"], x["newest"]) for x in one["packages"]] == \
        [("hello", "1.0.0", "1.1.0", "1.1.0"), ("libfoo", "1.0.0", "1.1.0", "1.1.0")]
    assert one["command"] == f"vcomp lock --update hello libfoo {p}"
    assert one["packages"][0]["command"] == f"vcomp lock --update hello {p}"
    # the command it gives does what it says, and then nothing is outdated
    assert main(one["command"].split()[1:]) == 0
    capsys.readouterr()
    assert main(["outdated", str(p)]) == 0
    assert "nothing outdated" in capsys.readouterr().out
    assert main(["lock", "--check", str(p)]) == 0
    assert capsys.readouterr().out.strip() == f"{lock_path(p)}: up to date with {p}"


def test_a_requirement_caps_allowed_not_newest(repo: Repo, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    p = held_lock(tmp_path, repo, '[{name: hello, version: "<1.1.0"}, libfoo]')
    assert main(["outdated", str(p)]) == 0
    text = capsys.readouterr().out
    assert ["x86_64", "hello", "1.0.0", "1.0.0", "1.1.0"] in [line.split() for line in text.splitlines()]
    assert f"upgrade: vcomp lock --update libfoo {p}" in text
    assert "newest not allowed by the profile's requirements: hello" in text


def test_no_profile_finds_the_locked_ones_or_says_how(repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["outdated"]) == 1
    assert "vcomp outdated PROFILE.yaml" in capsys.readouterr().err
    p = held_lock(tmp_path, repo)
    os.chdir(p.parent)
    assert main(["outdated"]) == 0
    assert "p.lock: 2 packages with newer versions" in capsys.readouterr().out


def test_the_table_shows_the_advisories_an_upgrade_fixes() -> None:
    from composer.advisory.match import upgrade_fixes
    from composer.advisory.osv import Advisory
    advisory = Advisory.from_dict({"id": "VER-2026-7", "modified": "2026-12-01T00:00:00Z", "affected": [
        {"package": {"ecosystem": "Veridian", "name": "a"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.0"}]}]}]}, "t")
    assert upgrade_fixes("a", "semver", "1.0.0", "1.2.0", [advisory]) == ("VER-2026-7",)
    assert upgrade_fixes("a", "semver", "1.1.0", "1.2.0", [advisory]) == ()
    found = Outdated(profile=Path("profiles/s.yaml"), target=Path("profiles/s.lock"), packages=(
        OutdatedPackage(arch="x86_64", name="a", locked="1.0.0", allowed="1.2.0", newest="2.0.0",
                        fixes=("VER-2026-7",)),))
    lines = outdated_lines(found)
    assert lines[1].split() == ["ARCH", "NAME", "LOCKED", "ALLOWED", "NEWEST", "FIXES"]
    assert lines[2].split() == ["x86_64", "a", "1.0.0", "1.2.0", "2.0.0", "VER-2026-7"]
    assert found.packages[0].to_dict("p.yaml")["fixes"] == ["VER-2026-7"]
