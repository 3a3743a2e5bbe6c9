"""QEMU command lines from the registries: media, firmware and the gdb stub, per architecture."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.arch import get_arch
from composer.boot.machine import Boot, command, match_in_order
from composer.errors import UserError


def test_cdrom_disk_and_kernel_media_per_architecture(tmp_path: Path) -> None:
    iso = Boot(arch=get_arch("x86_64"), files=(tmp_path / "a.iso",), media="cdrom", firmware="bios", work=tmp_path)
    cmd = command(iso)
    assert cmd[0] == "qemu-system-x86_64" and ["-cdrom", str(tmp_path / "a.iso")] == cmd[-2:]
    assert not any("pflash" in c for c in cmd)
    arm = Boot(arch=get_arch("aarch64"), files=(tmp_path / "a.iso",), media="cdrom", firmware="uefi", work=tmp_path)
    cmd = command(arm, gdb=True)
    assert "scsi-cd,drive=cd0,bus=scsi0.0" in cmd and cmd[-2:] == ["-s", "-S"]
    assert any("AAVMF_CODE.fd" in c and "readonly=on" in c for c in cmd)
    assert (tmp_path / "aarch64-vars.fd").is_file(), "the UEFI variables are a per-boot copy"
    disk = Boot(arch=get_arch("x86_64"), files=(tmp_path / "d.qcow2",), media="disk", firmware="uefi",
                work=tmp_path, format="qcow2")
    assert f"if=virtio,format=qcow2,file={tmp_path / 'd.qcow2'}" in command(disk)
    kernel = Boot(arch=get_arch("x86_64"), files=(tmp_path / "i.cpio", tmp_path / "k"), media="kernel",
                  firmware="none", work=tmp_path, cmdline="console=ttyS0")
    assert command(kernel)[-6:] == ["-kernel", str(tmp_path / "k"), "-initrd", str(tmp_path / "i.cpio"),
                                    "-append", "console=ttyS0"]


def test_unknown_media_and_firmware_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot boot media 'floppy'"):
        command(Boot(arch=get_arch("x86_64"), files=(tmp_path,), media="floppy", firmware="bios", work=tmp_path))
    with pytest.raises(UserError, match="riscv64 cannot boot with uefi firmware"):
        command(Boot(arch=get_arch("riscv64"), files=(tmp_path,), media="disk", firmware="uefi", work=tmp_path))


def test_expected_lines_match_in_order_only() -> None:
    log = ["a", "VCOMP-BOOT: init started", "x", "VCOMP-BOOT: ready"]
    assert match_in_order(log, ["init started", "ready"]) == ()
    assert match_in_order(log, ["ready", "init started"]) == ("init started",)


def test_junit_is_well_formed_even_with_control_characters_on_the_console() -> None:
    import xml.etree.ElementTree as ET

    from composer.boot.machine import Watch
    from composer.boot.session import Case, junit
    w = Watch(log="BdsDxe: \x1b[2J\x1b[01;01H loading\x00\nVCOMP-CHECK: FAIL x", returncode=0, timed_out=False,
              seconds=1.0, missing=(), failures=("VCOMP-CHECK: FAIL x\x07",))
    case = Case(arch="x86_64", output="iso", firmware="uefi", test="boots", expect=("a",), watch=w, missing=())
    root = ET.fromstring(junit([case], "suite"))
    assert root.get("failures") == "1" and "FAIL x" in (root.find("testcase/failure").get("message") or "")  # type: ignore[union-attr]
