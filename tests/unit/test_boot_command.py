"""QEMU command lines from the registries: media, firmware and the gdb stub, per architecture."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.arch import get_arch
from composer.boot.machine import Boot, GdbStub, command, match_in_order
from composer.errors import UserError


def test_cdrom_disk_and_kernel_media_per_architecture(tmp_path: Path) -> None:
    iso = Boot(arch=get_arch("x86_64"), files=(tmp_path / "a.iso",), media="cdrom", firmware="bios", work=tmp_path)
    cmd = command(iso)
    assert cmd[0] == "qemu-system-x86_64" and ["-cdrom", str(tmp_path / "a.iso")] == cmd[-2:]
    assert not any("pflash" in c for c in cmd)
    arm = Boot(arch=get_arch("aarch64"), files=(tmp_path / "a.iso",), media="cdrom", firmware="uefi", work=tmp_path)
    cmd = command(arm, gdb=GdbStub())
    assert "scsi-cd,drive=cd0,bus=scsi0.0" in cmd and cmd[-3:] == ["-gdb", "tcp:127.0.0.1:1234", "-S"]
    assert command(arm, gdb=GdbStub(port=4567, wait=False))[-2:] == ["-gdb", "tcp:127.0.0.1:4567"]
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
    with pytest.raises(UserError, match="aarch64 cannot boot with coreboot firmware"):
        command(Boot(arch=get_arch("aarch64"), files=(tmp_path,), media="disk", firmware="coreboot", work=tmp_path))


def test_riscv64_boots_opensbi_then_the_kernel_or_u_boot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """riscv64: QEMU's OpenSBI (-bios default) on every boot; a direct boot gives it the kernel, a disk boot
    gives it U-Boot (S-mode) as -kernel, the UEFI that starts the ESP's BOOTRISCV64.EFI."""
    rv = get_arch("riscv64")
    assert rv.pe_machine == 0x5064 and rv.uki_stub == "linuxriscv64.efi.stub" and rv.console == "ttyS0"
    kernel = Boot(arch=rv, files=(tmp_path / "i.cpio", tmp_path / "k"), media="kernel", firmware="none",
                  work=tmp_path, cmdline="console=ttyS0")
    cmd = command(kernel)
    assert cmd[:3] == ["qemu-system-riscv64", "-M", "virt"] and cmd[cmd.index("-bios") + 1] == "default"
    assert cmd[-6:-4] == ["-kernel", str(tmp_path / "k")]
    loader = rv.firmware["uefi"].loader
    assert loader.endswith("qemu-riscv64_smode/u-boot.bin")
    monkeypatch.setattr("composer.boot.machine.Path.is_file", lambda p: str(p) == loader or Path.exists(p))
    disk = Boot(arch=rv, files=(tmp_path / "d.raw",), media="disk", firmware="uefi", work=tmp_path)
    cmd = command(disk)
    assert cmd[cmd.index("-bios") + 1] == "default" and cmd[cmd.index("-kernel") + 1] == loader
    assert f"if=virtio,format=raw,file={tmp_path / 'd.raw'}" in cmd and not any("pflash" in c for c in cmd)
    # the NIC is a device of its own (riscv64's virt machine on QEMU 7.2 makes none from -nic)
    assert cmd[cmd.index("-netdev") + 1] == "user,id=net0" and "virtio-net-pci,netdev=net0" in cmd
    assert "-netdev" not in command(disk, network=False) and "none" in command(disk, network=False)


def test_a_missing_loader_names_its_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from composer.errors import ToolError
    monkeypatch.setattr("composer.boot.machine.Path.is_file", lambda p: False)
    with pytest.raises(ToolError, match="u-boot.bin is missing") as info:
        command(Boot(arch=get_arch("riscv64"), files=(tmp_path,), media="disk", firmware="uefi", work=tmp_path))
    assert "apt-get install u-boot-qemu" in (info.value.hint or "")


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
