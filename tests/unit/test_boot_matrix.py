"""The boot matrix (composer.boot.matrix): the cells of a build's outputs, their names in JSON and JUnit, the
--cell globs, and how a cell boots (the hybrid ISO attached as a disk)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from composer.boot.machine import Watch, command
from composer.boot.matrix import Cell, cells_of, media_of, precheck, select
from composer.boot.session import Case, boot_spec, boots_of, junit, log_name
from composer.errors import UserError


def output(name: str, type_: str, firmware: list[str], **boot: str) -> dict[str, Any]:
    return {"name": name, "type": type_, "firmware": firmware, "boot": boot,
            "files": [{"path": f"{name}.img", "sha256": "0" * 64, "size": 1}]}


# What profiles/minimal.yaml builds (manifest.json's outputs, trimmed): the matrix of issue 16.
MINIMAL: dict[str, list[dict[str, Any]]] = {
    "x86_64": [output("iso", "iso", ["bios", "uefi"], media="cdrom", **{"alt-media": "disk"}),
               output("disk", "disk", ["bios", "uefi"], media="disk", format="qcow2")],
    "aarch64": [output("iso", "iso", ["uefi"], media="cdrom"),
                output("disk", "disk", ["uefi"], media="disk", format="qcow2")],
    "riscv64": [output("disk", "disk", ["uefi"], media="disk", format="qcow2"),
                output("initramfs", "initramfs", [], media="kernel", cmdline="quiet")],
}
MATRIX = ["x86_64/iso/cdrom/bios", "x86_64/iso/cdrom/uefi", "x86_64/iso/disk/bios", "x86_64/iso/disk/uefi",
          "x86_64/disk/disk/bios", "x86_64/disk/disk/uefi", "aarch64/iso/cdrom/uefi", "aarch64/disk/disk/uefi",
          "riscv64/disk/disk/uefi", "riscv64/initramfs/kernel/none"]


def manifest(arch: str) -> dict[str, Any]:
    return {"profile": "minimal", "arch": arch, "outputs": MINIMAL[arch]}


def every_cell() -> list[Cell]:
    return [c for arch in MINIMAL for c in cells_of(manifest(arch))]


def test_the_minimal_profile_has_every_cell_of_the_issue() -> None:
    assert [c.id for c in every_cell()] == MATRIX
    # boots_of (gitops' sweep) stays the outputs' own medium
    assert boots_of(manifest("x86_64")) == [("iso", "bios"), ("iso", "uefi"), ("disk", "bios"), ("disk", "uefi")]


def test_media_come_from_the_manifest_and_unknown_ones_are_dropped() -> None:
    assert media_of(output("x", "iso", [], media="cdrom", **{"alt-media": "disk disk floppy"})) == ("cdrom", "disk")
    assert media_of(output("x", "rootfs", [])) == ()
    parts = {"profile": "p", "arch": "x86_64", "outputs": [output("u", "uki", ["uefi"], media="uki"),
                                                           output("e", "esp", ["uefi"], media="disk")]}
    assert cells_of(parts) == [], "a UKI and an ESP are parts of an image, not booted on their own"


@pytest.mark.parametrize(("patterns", "expected"), [
    ((), MATRIX),
    (("x86_64/*/disk/*",), ["x86_64/iso/disk/bios", "x86_64/iso/disk/uefi", "x86_64/disk/disk/bios",
                            "x86_64/disk/disk/uefi"]),
    (("*/bios", "riscv64/initramfs/*"), ["x86_64/iso/cdrom/bios", "x86_64/iso/disk/bios", "x86_64/disk/disk/bios",
                                        "riscv64/initramfs/kernel/none"]),
])
def test_cell_globs_pick_cells_in_matrix_order(patterns: tuple[str, ...], expected: list[str]) -> None:
    assert [c.id for c in select(every_cell(), patterns)] == expected


def test_a_glob_that_matches_nothing_names_the_cells() -> None:
    with pytest.raises(UserError, match=r"--cell 'aarch64/\*/\*/bios' matches no boot cell") as info:
        select(every_cell(), ["x86_64/*", "aarch64/*/*/bios"])
    assert "aarch64/iso/cdrom/uefi" in (info.value.hint or "")
    with pytest.raises(UserError, match="at most 64"):
        select(every_cell(), ["*"] * 65)


def test_the_hybrid_iso_boots_as_a_raw_virtio_disk(tmp_path: Path) -> None:
    m = manifest("x86_64")
    spec = boot_spec(m, tmp_path, "iso", "bios", tmp_path, "disk")
    assert (spec.media, spec.format) == ("disk", "raw")
    assert f"if=virtio,format=raw,file={tmp_path / 'iso.img'}" in command(spec)
    assert boot_spec(m, tmp_path, "iso", "bios", tmp_path).media == "cdrom", "its own medium by default"
    with pytest.raises(UserError, match="output 'iso' .* for aarch64 does not boot as a disk"):
        boot_spec(manifest("aarch64"), tmp_path, "iso", "uefi", tmp_path, "disk")
    assert log_name("x86_64", "iso", "cdrom", "bios", "cdrom") == "x86_64-iso-bios.log"
    assert log_name("x86_64", "iso", "disk", "bios", "cdrom") == "x86_64-iso-disk-bios.log"


def test_cases_name_their_cell_in_json_and_junit() -> None:
    w = Watch(log="VCOMP-BOOT: ready\n", returncode=0, timed_out=False, seconds=3.0, missing=())
    case = Case(arch="x86_64", output="iso", medium="disk", firmware="uefi", test="boots",
                expect=("VCOMP-BOOT: ready",), watch=w, missing=())
    doc = case.to_dict()
    assert (doc["cell"], doc["id"], doc["medium"]) == ("x86_64/iso/disk/uefi", "x86_64/iso/disk/uefi/boots", "disk")
    tc = ET.fromstring(junit([case], "vcomp.test.minimal")).find("testcase")
    assert tc is not None and (tc.get("classname"), tc.get("name")) == ("vcomp.test.minimal.x86_64.iso.disk.uefi",
                                                                        "boots")


def test_a_cell_glob_no_cell_of_the_profile_can_match_fails_before_the_build() -> None:
    pairs = [("x86_64", "iso"), ("x86_64", "disk"), ("riscv64", "initramfs")]
    for ok in ("*/bios", "x86_64/*/disk/*", "riscv64/initramfs/*", "*"):
        precheck(pairs, ["bios", "uefi"], [ok])
    with pytest.raises(UserError, match=r"--cell 'x86_64/isoo/\*' matches no cell this profile can have") as info:
        precheck(pairs, ["bios", "uefi"], ["x86_64/isoo/*"])
    assert "riscv64/initramfs/*" in (info.value.hint or "")
    with pytest.raises(UserError, match="matches no cell"):
        precheck(pairs, ["bios", "uefi"], ["aarch64/*"])
