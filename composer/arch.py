"""Architecture registry: one row per supported target holding every per-architecture fact.

No module outside this one names an architecture: QEMU (emulator, its Debian package, machine, memory, how
a CD is attached), the firmware QEMU boots with (pflash files and their Debian packages), the PE machine of
EFI binaries, the GPT root partition type, the kernel image format and the cross compiler all live in the
row. A new architecture is a new row here (and its availability in ``composer/image/outputs.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from composer.errors import UserError


@dataclass(frozen=True, slots=True, kw_only=True)
class Firmware:
    """What QEMU boots with for one firmware kind: pflash code and variables files from a host package
    (the variables are copied per boot), or a ``loader`` QEMU starts as its kernel (riscv64: U-Boot in
    S-mode, which is the UEFI that boots the disk's ESP); ``builtin`` firmware (SeaBIOS for ``bios``) needs
    no file."""

    code: str = ""
    vars: str = ""
    loader: str = ""
    package: str = ""
    machine: tuple[str, ...] = ()   # QEMU's machine instead of the architecture's (x86_64 Secure Boot: q35 with SMM)
    extra: tuple[str, ...] = ()     # more QEMU arguments it needs (the secure pflash)

    @property
    def builtin(self) -> bool:
        return not self.code and not self.loader

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f for f in (self.code, self.vars, self.loader) if f)


BUILTIN = Firmware()


@dataclass(frozen=True, slots=True, kw_only=True)
class Arch:
    name: str            # our name (x86_64, aarch64, riscv64)
    deb: str             # Debian architecture
    triple: str          # GNU target triple for cross builds
    efi_boot_name: str   # EFI/BOOT/<name>
    uki_stub: str        # systemd-boot stub file name
    elf_machine: int     # ELF e_machine of its binaries
    pe_machine: int | None  # PE/COFF Machine of its EFI binaries (None: the PE writer does not support it)
    gpt_root_type: uuid.UUID  # Discoverable Partitions Specification: the root file system's partition type
    gpt_root_verity_type: uuid.UUID  # ... and the type of the partition holding the root's dm-verity hash tree
    kernel_format: str   # the kernel image format of its boot/vmlinuz (bzImage, Image; riscv64: Image, EFI stub)
    cross_gcc_package: str  # the Debian package of <triple>-gcc
    qemu: str            # QEMU system emulator
    qemu_package: str    # the Debian package of the emulator
    qemu_machine: tuple[str, ...]  # machine and CPU arguments (TCG-friendly)
    qemu_memory: str = "1G"
    qemu_cdrom: str = "virtio-scsi"  # how a CD is attached: ide (-cdrom) or virtio-scsi
    console: str         # serial console device as the kernel names it
    qemu_bios: str = ""  # QEMU's -bios for every boot ("" = none given; riscv64: "default", QEMU's OpenSBI)
    firmware: Mapping[str, Firmware] = field(default_factory=dict)  # kind (bios, uefi) -> how QEMU boots it
    # UEFI that enforces Secure Boot once keys are enrolled into a copy of ``vars`` (vcomp boot --secure-boot)
    secure_boot: Firmware | None = None

    @property
    def cross_gcc(self) -> str:
        return f"{self.triple}-gcc"


ARCHES: Mapping[str, Arch] = {
    a.name: a
    for a in (
        Arch(name="x86_64", deb="amd64", triple="x86_64-linux-gnu", efi_boot_name="BOOTX64.EFI",
             uki_stub="linuxx64.efi.stub", elf_machine=62, pe_machine=0x8664,
             gpt_root_type=uuid.UUID("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"),
             gpt_root_verity_type=uuid.UUID("2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5"), kernel_format="bzImage",
             cross_gcc_package="gcc-x86-64-linux-gnu",
             qemu="qemu-system-x86_64", qemu_package="qemu-system-x86", qemu_machine=("-M", "pc", "-cpu", "max"),
             qemu_cdrom="ide", console="ttyS0",
             firmware={"bios": BUILTIN,
                       "uefi": Firmware(code="/usr/share/OVMF/OVMF_CODE_4M.fd",
                                        vars="/usr/share/OVMF/OVMF_VARS_4M.fd", package="ovmf")},
             # the SMM build keeps the variables from the guest: it needs q35 with SMM and the secure pflash
             secure_boot=Firmware(code="/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
                                  vars="/usr/share/OVMF/OVMF_VARS_4M.fd", package="ovmf",
                                  machine=("-M", "q35,smm=on"),
                                  extra=("-global", "driver=cfi.pflash01,property=secure,value=on"))),
        Arch(name="aarch64", deb="arm64", triple="aarch64-linux-gnu", efi_boot_name="BOOTAA64.EFI",
             uki_stub="linuxaa64.efi.stub", elf_machine=183, pe_machine=0xAA64,
             gpt_root_type=uuid.UUID("B921B045-1DF0-41C3-AF44-4C6F280D3FAE"),
             gpt_root_verity_type=uuid.UUID("DF3300CE-D69F-4C92-978C-9BFB0F38D820"), kernel_format="Image",
             cross_gcc_package="gcc-aarch64-linux-gnu",
             qemu="qemu-system-aarch64", qemu_package="qemu-system-arm",
             qemu_machine=("-M", "virt", "-cpu", "cortex-a57"), console="ttyAMA0",
             firmware={"uefi": Firmware(code="/usr/share/AAVMF/AAVMF_CODE.fd", vars="/usr/share/AAVMF/AAVMF_VARS.fd",
                                        package="qemu-efi-aarch64")},
             # AAVMF_VARS.fd is unformatted (zeros) until a first boot: the .ms store is, its keys are replaced
             secure_boot=Firmware(code="/usr/share/AAVMF/AAVMF_CODE.fd", vars="/usr/share/AAVMF/AAVMF_VARS.ms.fd",
                                  package="qemu-efi-aarch64")),
        Arch(name="riscv64", deb="riscv64", triple="riscv64-linux-gnu", efi_boot_name="BOOTRISCV64.EFI",
             uki_stub="linuxriscv64.efi.stub", elf_machine=243, pe_machine=0x5064,
             gpt_root_type=uuid.UUID("72EC70A6-CF74-40E6-BD49-4BDA08E8F224"),
             gpt_root_verity_type=uuid.UUID("B6ED5582-440B-4209-B8DA-5FF7C419EA3D"), kernel_format="Image",
             cross_gcc_package="gcc-riscv64-linux-gnu",
             qemu="qemu-system-riscv64", qemu_package="qemu-system-misc", qemu_machine=("-M", "virt"),
             console="ttyS0",
             qemu_bios="default",  # OpenSBI (M-mode) from qemu-system-data, then the kernel or U-Boot in S-mode
             # EDK2 (qemu-efi-riscv64) is Debian 13 only and prints nothing under QEMU 7.2: U-Boot is the UEFI
             firmware={"uefi": Firmware(loader="/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin",
                                        package="u-boot-qemu")}),
    )
}

ELF_MACHINES: Mapping[int, str] = {a.elf_machine: a.name for a in ARCHES.values()} | {3: "i386", 40: "arm"}
PE_MACHINES: Mapping[int, str] = {a.pe_machine: a.name for a in ARCHES.values() if a.pe_machine is not None}
NOARCH = "noarch"
DEFAULT_ARCHES: tuple[str, ...] = ("x86_64", "aarch64")   # what a new repository serves, unless told

PACKAGE_ARCHES = (*ARCHES, NOARCH)

# The host tools each architecture brings (its emulator, its cross compiler) -> their Debian packages.
TOOL_PACKAGES: Mapping[str, str] = {
    **{a.qemu: a.qemu_package for a in ARCHES.values()},
    **{a.cross_gcc: a.cross_gcc_package for a in ARCHES.values()},
}


def get_arch(name: str) -> Arch:
    try:
        return ARCHES[name]
    except KeyError:
        raise UserError(f"unknown architecture '{name}'",
                        hint=f"use one of: {', '.join(ARCHES)}") from None
