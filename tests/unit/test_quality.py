"""Quality metrics and rebuild checks on the real repository of tests/repo_fixtures.py: ``vcomp pkg rebuild-check``
rebuilds a published package from its recipe (identical), a tampered recipe reports the differing file, the result
is recorded in the repository directory and ``vcomp pkg info NAME --repo`` shows it with the other metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.package.archive import Header, read_header
from composer.package.lint import Finding
from composer.package.rebuild import STORE, RebuildResult
from composer.repo.index import IndexEntry
from composer.report import quality
from tests.repo_fixtures import Pristine, Repo
from tests.unit.test_json_output import check


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str], code: int) -> dict[str, object]:
    assert main(argv) == code
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    return doc


def test_rebuild_identical_then_tampered(repo: Repo, pristine: Pristine, capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    recipe = pristine.dir.parent / "recipes" / "alice" / "hello-1.1.0-x86_64"   # what hello 1.1.0 was built from
    doc = check(run_json(["pkg", "rebuild-check", str(recipe), "--repo", str(repo.dir), "--json"], capsys, 0),
                "rebuild-check")
    assert (doc["name"], doc["version"], doc["result"], doc["files"]) == ("hello", "1.1.0", "identical", [])
    info = check(run_json(["pkg", "info", "hello", "--repo", str(repo.dir), "--json"], capsys, 0), "pkg-info")
    q = info["quality"]
    assert isinstance(q, dict) and q["reproducible"] == "identical" and q["version"] == "1.1.0"
    assert q["lint"]["errors"] == 0 and q["dependencies"] == 0
    assert q["hardening"] is None and q["advisories"] == []   # no ELF file to score; the feed was read: none

    tampered = shutil.copytree(recipe, tmp_path / "tampered")
    (tampered / "files/usr/lib/hello/VERSION").write_text("hello 1.1.0, with a backdoor\n")
    doc = check(run_json(["pkg", "rebuild-check", str(tampered), "--repo", str(repo.dir), "--json"], capsys, 1),
                "rebuild-check")
    assert doc["result"] == "differs" and doc["files"] == ["changed usr/lib/hello/VERSION"]
    assert doc["metadata"] == ["security.manifest"]   # the manifest digest follows the file
    stored = json.loads((repo.dir / STORE).read_text())["rebuilds"]
    assert [r["result"] for r in stored.values()] == ["differs"]    # the last check of that package file
    assert main(["pkg", "info", "hello", "--repo", str(repo.dir)]) == 0
    out = capsys.readouterr().out
    assert "reproducible  differs: security.manifest; changed usr/lib/hello/VERSION" in out


def test_unknown_names_say_so(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pkg", "info", "helo", "--repo", str(repo.dir)]) != 0
    assert "no package 'helo' for x86_64" in capsys.readouterr().err
    assert main(["pkg", "rebuild-check", "nothing-here", "--repo", str(repo.dir)]) != 0
    assert "neither a recipe directory nor a recipe in recipes/" in capsys.readouterr().err


def test_metrics_are_pure_and_take_the_other_parts_values(repo: Repo) -> None:
    path = next(p for spec, p in repo.packages.items() if spec[:2] == ("hello", "1.0.0"))
    header = read_header(path)
    findings = [Finding(level="warning", code="missing-authors", message="x"),
                Finding(level="error", code="invalid-license", message="y")]
    rebuilt = RebuildResult(name="hello", version="1.0.0", arch="x86_64", published_sha256="0" * 64,
                            rebuilt_payload_sha256="1" * 64, identical=False, files=("changed usr/bin/x",))
    q = quality.metrics(header, size=123, findings=findings, rebuild=rebuilt, hardening=87,
                        advisories=["DSA-2", "CVE-2024-1"])
    assert q.to_dict() == {
        "name": "hello", "version": "1.0.0", "arch": "x86_64", "size": 123,
        "installed_size": header.manifest.installed_size, "files": len(header.manifest.entries), "dependencies": 0,
        "lint": {"errors": 1, "warnings": 1, "codes": ["invalid-license", "missing-authors"]}, "hardening": 87,
        "reproducible": "differs", "rebuild_differences": ["changed usr/bin/x"],
        "advisories": ["CVE-2024-1", "DSA-2"]}
    check({"format_version": "1.0", "entry": _entry(header), "quality": q.to_dict()}, "pkg-info")


def _entry(header: Header) -> dict[str, object]:
    return IndexEntry.from_header(header, size=1, sha256="0" * 64).to_dict()
