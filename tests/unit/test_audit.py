"""`vcomp audit` of a profile, its lock and a built image directory, and `vcomp outdated`'s FIXES, against a real
repository whose signed feed says hello < 1.1.0 is affected (tests/unit/test_bump.py's checkout)."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest

from composer.cli.main import main
from tests.unit.test_bump import checkout  # noqa: F401 (the fixture)


def test_audit_a_profile_its_lock_and_an_image(checkout: tuple[Path, git.Repo], tmp_path: Path,  # noqa: F811
                                               capsys: pytest.CaptureFixture[str]) -> None:
    profile, _ = checkout
    assert main(["audit", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "hello" in out and "VER-2026-0042" in out and "1.1.0" in out
    assert "1 advisories affect 1 of 2 packages (1 advisories in the feeds)" in out
    assert main(["audit", str(profile.with_suffix(".lock")), "--severity", "high"]) == 3
    assert main(["audit", str(profile), "--severity", "critical"]) == 0
    capsys.readouterr()
    image = tmp_path / "images" / "checked" / "x86_64"
    image.mkdir(parents=True)
    (image / "manifest.json").write_text(json.dumps({"arch": "x86_64", "outputs": []}))
    (image / "contents.json").write_text(json.dumps({"hello": {"version": "1.0.0", "size": 1},
                                                     "libfoo": {"version": "1.0.0", "size": 1}}))
    assert main(["audit", str(image), "--profile", str(profile), "--json", "--severity", "medium"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert (doc["kind"], doc["packages"], [(f["name"], f["arch"]) for f in doc["findings"]]) == (
        "image", 2, [("hello", "x86_64")])
    assert main(["audit", str(image)]) == 1
    assert "cannot tell which profile built it" in capsys.readouterr().err


def test_audit_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(tmp_path / "nope.yaml")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["audit"]) == 1
    assert "nothing to audit" in capsys.readouterr().err
    assert main(["audit", str(tmp_path), "--severity", "urgent"]) == 1
    assert "unknown severity 'urgent'" in capsys.readouterr().err


def test_outdated_names_the_advisories_the_upgrade_fixes(checkout: tuple[Path, git.Repo],  # noqa: F811
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    profile, _ = checkout
    assert main(["outdated", str(profile)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["ARCH", "NAME", "LOCKED", "ALLOWED", "NEWEST", "FIXES"] in rows
    assert ["x86_64", "hello", "1.0.0", "1.1.0", "1.1.0", "VER-2026-0042"] in rows
    assert main(["outdated", str(profile), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {p["name"]: p["fixes"] for p in doc["profiles"][0]["packages"]} == {"hello": ["VER-2026-0042"],
                                                                                "libfoo": []}
