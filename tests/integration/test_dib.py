"""profiles/dib.yaml end to end (marker ``dib``: make test-dib; about 2 minutes of DIB and TCG).

diskimage-builder (the ``dib`` extra) writes the qcow2 and the vmdk from the lock's root; `vcomp test` boots the
qcow2 to the profile's boot tests (JUnit); the vmdk boots too (QEMU reads vmdk); SBOM and provenance name both
files. A second build with an empty image cache measures how close DIB's disks come to bit-for-bit (docs/dib.md).
Skipped, with the reason, where the host cannot run DIB (no diskimage-builder, not root, no loop devices).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from composer.boot.machine import command, watch
from composer.boot.session import boot_spec
from composer.cli.main import main
from composer.compose.build import read_manifest
from composer.image.types.dib import host_facts, host_problem
from tests.integration.conftest import copy_profiles
from tests.integration.images_fixture import with_cache

pytestmark = [pytest.mark.dib, pytest.mark.integration]
BOOT_TIMEOUT = 240
EXPECT = ["VCOMP-BOOT: switching root to /dev/vda2 (ext4)", "VCOMP-CHECKS: done pass=4 fail=0",
          "VCOMP-BOOT: ready"]


@pytest.fixture(scope="module")
def dib_built(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    problem = host_problem(host_facts(), "dib")
    if problem is not None:
        pytest.skip(f"{problem.message} ({problem.hint})")
    base = tmp_path_factory.mktemp("dib")
    profiles = copy_profiles(sample_repo_base, base)
    with with_cache(base / "cache"):
        assert main(["lock", str(profiles / "dib.yaml")]) == 0
        assert main(["build", str(profiles / "dib.yaml"), "--images", str(base / "images")]) == 0
    return profiles / "dib.yaml", base / "images" / "dib" / "x86_64"


def test_the_dib_profile_builds_a_qcow2_and_a_vmdk_with_sbom_and_provenance(dib_built: tuple[Path, Path]) -> None:
    _, out = dib_built
    (o,) = read_manifest(out)["outputs"]
    assert (o["type"], [f["path"] for f in o["files"]], o["boot"]) == (
        "dib", ["dib.qcow2", "dib.vmdk"], {"media": "disk", "format": "qcow2"})
    for name, fmt in (("dib.qcow2", "qcow2"), ("dib.vmdk", "vmdk")):
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(out / name)],
                                         capture_output=True, check=True).stdout)
        assert info["format"] == fmt
    provenance = json.loads((out / "provenance.intoto.json").read_text())
    assert [s["name"] for s in provenance["subject"]] == ["dib.qcow2", "dib.vmdk"]
    assert (out / "sbom.spdx.json").is_file() and (out / "sbom.cdx.json").is_file()


def test_vcomp_test_boots_the_qcow2_to_the_profiles_boot_tests(dib_built: tuple[Path, Path], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    profile, out = dib_built
    junit = tmp_path / "junit.xml"
    capsys.readouterr()
    code = main(["test", str(profile), "--images", str(out.parent.parent), "--junit", str(junit)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "x86_64/dib/disk/uefi/boots: PASS" in text
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("1", "0")
    log = (out / "boot" / "x86_64-dib-uefi.log").read_text()
    for line in EXPECT:
        assert line in log, log[-3000:]


def test_the_vmdk_boots_too(dib_built: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = dib_built
    spec = boot_spec(read_manifest(out), out, "dib", "uefi", tmp_path)
    spec = dataclasses.replace(spec, files=(out / "dib.vmdk",), format="vmdk")
    seen = watch(command(spec), EXPECT, timeout=BOOT_TIMEOUT, log_path=tmp_path / "vmdk.log")
    assert seen.passed, seen.tail()


def test_a_second_build_differs_only_where_docs_dib_says(dib_built: tuple[Path, Path], tmp_path: Path) -> None:
    """Same lock, an empty image cache: the partition table and the ESP are the same bytes; the ext4 root is
    not: the kernel's block allocation, inode generations and journal differ while DIB copies the tree in
    (docs/dib.md); the times are set to the epoch after DIB unmounted it."""
    profile, out = dib_built
    with with_cache(tmp_path / "cache"):
        assert main(["build", str(profile), "--images", str(tmp_path / "images")]) == 0
    again = tmp_path / "images" / "dib" / "x86_64"
    raw = []
    for d in (out, again):
        target = tmp_path / f"{len(raw)}.raw"
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(d / "dib.qcow2"), str(target)], check=True)
        raw.append(target.read_bytes())
    assert len(raw[0]) == len(raw[1])
    table = subprocess.run(["sfdisk", "-J", str(tmp_path / "0.raw")], capture_output=True, check=True).stdout
    esp, root = json.loads(table)["partitiontable"]["partitions"]
    root_start = root["start"] * 512
    assert raw[0][:root_start] == raw[1][:root_start], "GPT and ESP differ"
    block = 4096
    blocks = [i for i in range(root_start, len(raw[0]), block) if raw[0][i:i + block] != raw[1][i:i + block]]
    differing = sum(a != b for i in blocks for a, b in zip(raw[0][i:i + block], raw[1][i:i + block], strict=True))
    assert differing < len(raw[0]) // 10   # measured: 18 kB to 4.4 MB of 200 MB (the kernel's block allocation)
    print(f"\nroot partition: {differing} bytes in {len(blocks)} blocks of 4 KiB differ of {len(raw[0]) - root_start} "
          f"bytes; ESP ({esp['size'] * 512} bytes) and GPT identical")
    shutil.rmtree(tmp_path / "images")
