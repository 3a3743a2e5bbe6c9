"""Architecture registry: one row per supported target, no if/elif chains elsewhere."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from composer.errors import UserError


@dataclass(frozen=True, slots=True, kw_only=True)
class Arch:
    name: str            # our name (x86_64, aarch64, riscv64)
    deb: str             # Debian architecture
    triple: str          # GNU target triple for cross builds
    efi_boot_name: str   # EFI/BOOT/<name>
    uki_stub: str        # systemd-boot stub file name
    elf_machine: int     # ELF e_machine of its binaries
    qemu: str            # QEMU system emulator
    qemu_machine: tuple[str, ...]  # machine and CPU arguments (TCG-friendly)
    console: str         # serial console device as the kernel names it


ARCHES: Mapping[str, Arch] = {
    a.name: a
    for a in (
        Arch(name="x86_64", deb="amd64", triple="x86_64-linux-gnu", efi_boot_name="BOOTX64.EFI",
             uki_stub="linuxx64.efi.stub", elf_machine=62, qemu="qemu-system-x86_64",
             qemu_machine=("-M", "pc", "-cpu", "max"), console="ttyS0"),
        Arch(name="aarch64", deb="arm64", triple="aarch64-linux-gnu", efi_boot_name="BOOTAA64.EFI",
             uki_stub="linuxaa64.efi.stub", elf_machine=183, qemu="qemu-system-aarch64",
             qemu_machine=("-M", "virt", "-cpu", "cortex-a57"), console="ttyAMA0"),
        Arch(name="riscv64", deb="riscv64", triple="riscv64-linux-gnu", efi_boot_name="BOOTRISCV64.EFI",
             uki_stub="linuxriscv64.efi.stub", elf_machine=243, qemu="qemu-system-riscv64",
             qemu_machine=("-M", "virt"), console="ttyS0"),
    )
}

ELF_MACHINES: Mapping[int, str] = {a.elf_machine: a.name for a in ARCHES.values()} | {3: "i386", 40: "arm"}
NOARCH = "noarch"
DEFAULT_ARCHES: tuple[str, ...] = ("x86_64", "aarch64")   # what a new repository serves, unless told

PACKAGE_ARCHES = (*ARCHES, NOARCH)


def get_arch(name: str) -> Arch:
    try:
        return ARCHES[name]
    except KeyError:
        raise UserError(f"unknown architecture '{name}'",
                        hint=f"use one of: {', '.join(ARCHES)}") from None
