"""Output types and where they are available (a registry; the image stage adds the builders)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from composer.arch import ARCHES, DEFAULT_ARCHES


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputType:
    name: str
    arches: frozenset[str]
    firmware: Mapping[str, frozenset[str]]   # arch -> firmware kinds it can boot with
    description: str

    def firmware_for(self, arch: str, options: Mapping[str, object]) -> tuple[str, ...]:
        """The firmware kinds an output of this type boots with on ``arch`` (options may narrow them)."""
        wanted = options.get("firmware")
        kinds = self.firmware.get(arch, frozenset())
        return tuple(sorted(kinds & set(wanted) if isinstance(wanted, list) else kinds))


# What each firmware needs from the lock (a provide the resolver selects a package for).
BOOTLOADERS: Mapping[str, str] = {"uefi": "bootloader:uefi-uki", "bios": "bootloader:bios-iso"}


_BOTH = frozenset(DEFAULT_ARCHES)
_ALL = frozenset(ARCHES)

OUTPUT_TYPES: Mapping[str, OutputType] = {t.name: t for t in (
    OutputType(name="rootfs", arches=_ALL, firmware={}, description="the root filesystem as a tar"),
    OutputType(name="initramfs", arches=_ALL, firmware={}, description="newc cpio (gzip/zstd)"),
    OutputType(name="uki", arches=_BOTH, firmware={"x86_64": frozenset({"uefi"}), "aarch64": frozenset({"uefi"})},
               description="Unified Kernel Image on the systemd EFI stub"),
    OutputType(name="esp", arches=_BOTH, firmware={"x86_64": frozenset({"uefi"}), "aarch64": frozenset({"uefi"})},
               description="an EFI system partition image (FAT)"),
    OutputType(name="iso", arches=_BOTH,
               firmware={"x86_64": frozenset({"bios", "uefi"}), "aarch64": frozenset({"uefi"})},
               description="bootable ISO 9660 (x86_64: BIOS via isolinux and UEFI, hybrid; aarch64: UEFI)"),
    OutputType(name="disk", arches=_BOTH, firmware={"x86_64": frozenset({"uefi"}), "aarch64": frozenset({"uefi"})},
               description="GPT disk (ESP + ext4/erofs/squashfs root), raw or qcow2"),
)}
