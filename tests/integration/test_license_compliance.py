"""Licence compliance and rebuild checks on the real sample set (docs/licences.md, docs/quality.md):

- the licence report of the built minimal image (its directory) and of the locked profile (its packages fetched
  from the sample repository) lists every package, grouped by licence;
- ``licenses: {texts: true}`` ships the Debian copyright file of each package made from a .deb that has none
  (a rootfs tar of x86_64: the texts are in it, the .deb's own bytes);
- ``vcomp pkg rebuild-check`` rebuilds the sample ``hello`` (C compiled by gcc) identical to the published one,
  and a tampered copy of its recipe reports the differing binary.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from composer.cli.main import main
from composer.package.archive import read_header
from composer.package.build import default_cache
from tests.conftest import REPO
from tests.integration.images_fixture import IMAGES, Built, with_cache
from tests.unit.test_json_output import check

pytestmark = pytest.mark.integration

TEXTS = ("busybox", "linux", "driver-virtio-blk")     # made from .debs, ship no copyright file of their own


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 0) -> Any:
    assert main(argv) == code
    return json.loads(capsys.readouterr().out)


@IMAGES
def test_licence_report_of_the_minimal_image_and_profile(minimal_built: Built,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    image = minimal_built.dir("x86_64")
    doc = check(run_json(["license-report", str(image), "--json"], capsys), "license-report")
    (report,) = doc["reports"]
    names = {p["name"] for p in report["packages"]}
    assert set(json.loads((image / "contents.json").read_text())) == names
    assert {"busybox", "linux", "init", "base-files"} <= names and report["invalid"] == []
    assert "linux" in report["groups"]["GPL-2.0-only"] and report["groups"]["Apache-2.0"] == ["init"]
    assert set(TEXTS) <= set(report["missing_texts"])                   # the texts are not shipped by default
    with_copyright = {p["name"] for p in report["packages"] if p["files"]}
    assert "isolinux" in with_copyright                                 # its recipe ships the copyright file
    with with_cache(minimal_built.base / "cache"):
        by_profile = check(run_json(["license-report", str(minimal_built.profiles / "minimal.yaml"), "--json",
                                     "--html", str(minimal_built.base / "licences.html")], capsys), "license-report")
    reports = by_profile["reports"]
    assert [r["arch"] for r in reports] == ["aarch64", "riscv64", "x86_64"]
    assert reports[2]["groups"] == report["groups"]
    assert "<table>" in (minimal_built.base / "licences.html").read_text()


def texts_profile(minimal: str) -> str:
    """minimal.yaml for x86_64 with only a rootfs tar and the licence texts on."""
    head, _, _ = minimal.partition("outputs:\n")
    arches = next(line for line in head.splitlines() if line.startswith("architectures: "))
    return head.replace(arches, "architectures: [x86_64]") + "outputs:\n  - type: rootfs\nlicenses:\n  texts: true\n"


@IMAGES
def test_licence_texts_are_shipped(minimal_built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Built with the session's Debian cache (the .debs the sample set was made from); the text is the .deb's own
    copyright file, byte for byte (pinned by the provenance's sha256: the same lock, the same bytes)."""
    prof = minimal_built.profiles / "minimal-texts.yaml"
    prof.write_text(texts_profile((minimal_built.profiles / "minimal.yaml").read_text()))
    assert main(["lock", str(prof)]) == 0
    assert main(["build", str(prof), "--images", str(tmp_path)]) == 0
    capsys.readouterr()
    out = tmp_path / "minimal" / "x86_64"
    with tarfile.open(out / "rootfs.tar") as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
        assert {f"usr/share/licenses/{n}/copyright" for n in TEXTS} <= set(members)
        shipped = tar.extractfile(members["usr/share/licenses/busybox/copyright"])
        assert shipped is not None
        text = shipped.read()
    packages = (minimal_built.base / "images" / "repo").resolve().parent / "packages" / "x86_64"
    header = read_header(next(packages.glob("busybox-[0-9]*-x86_64.vpk")))
    deb = next(s for s in header.metadata.provenance["sources"] if s["kind"] == "deb")
    original = default_cache() / "debian" / "unpacked" / deb["sha256"] / "usr/share/doc" / deb["name"] / "copyright"
    assert text == original.read_bytes()
    doc = run_json(["license-report", str(out), "--json"], capsys)
    (report,) = doc["reports"]
    assert not set(TEXTS) & set(report["missing_texts"]) and set(report["missing_texts"]) <= {"base-files", "init"}


def hello_repo(sample: Path, dest: Path) -> Path:
    """What rebuild-check reads of the sample repository (its configuration, index state and hello's files), copied:
    the check records its result in the directory, which the session's sample repository must not get."""
    for rel in ("repo.toml", "state.json", "state.db", "state.db-wal", "metadata/timestamp.json",
                "targets/packages/hello"):
        if not (sample / rel).exists() and rel.startswith("state."):
            continue   # the state is state.db (SQLite) once a writer migrated the repository, state.json before
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        if (sample / rel).is_dir():
            shutil.copytree(sample / rel, dest / rel)
        else:
            shutil.copy2(sample / rel, dest / rel)
    return dest


def test_rebuild_check_of_the_sample_hello(sample_repo_base: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    repo = hello_repo(sample_repo_base / "images" / "repo", tmp_path / "repo")
    doc = check(run_json(["pkg", "rebuild-check", str(REPO / "recipes" / "hello"), "--repo", str(repo), "--json"],
                         capsys), "rebuild-check")
    assert (doc["name"], doc["result"], doc["files"], doc["metadata"]) == ("hello", "identical", [], [])
    tampered = shutil.copytree(REPO / "recipes" / "hello", tmp_path / "hello")
    source = tampered / "src" / "hello.c"
    source.write_text(source.read_text().replace("hello from veridian", "hullo from veridian"))
    doc = run_json(["pkg", "rebuild-check", str(tampered), "--repo", str(repo), "--json"], capsys, 1)
    assert doc["result"] == "differs" and doc["files"] == ["changed usr/bin/hello"]
    info = run_json(["pkg", "info", "hello", "--repo", str(repo), "--json"], capsys)
    assert info["quality"]["reproducible"] == "differs"
    assert (repo / "rebuilds.json").is_file()
