"""The workshop the output builders share: one installed and configured root, its intermediate products.

A :class:`Workshop` makes each intermediate product once per build (the initramfs, a UKI for a
command line, an ESP, a root file system image) in its work directory; the builders (one module per
output type in :mod:`composer.image.types`, registered in :mod:`composer.image.outputs`) combine them.
Boot binaries come from the installed packages' ``[boot]`` tables (``uki-stub``, ``isolinux``,
``ldlinux``), the kernel from the kernel package: never from the host. Every id (file system
UUIDs, partition GUIDs, volume ids) is derived from the build's seed, itself a digest of the inputs.
"""

from __future__ import annotations

import gzip
import hashlib
import stat
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import zstandard

from composer.arch import Arch
from composer.errors import UserError
from composer.fsutil import atomic_output, atomic_write
from composer.image.formats import fat, fs, pe, syslinux
from composer.image.formats.cpio import CpioEntry, entries_from_tree, write_cpio
from composer.image.secureboot import SecureBootKey, sign
from composer.rootfs import Root, UnsafePath

COMPRESSORS: Mapping[str, tuple[str, Callable[[bytes, int], bytes]]] = {
    "zstd": (".cpio.zst", lambda data, _e: zstandard.ZstdCompressor(level=10).compress(data)),
    "gzip": (".cpio.gz", lambda data, e: gzip.compress(data, compresslevel=6, mtime=e)),
    "none": (".cpio", lambda data, _e: data),
}
# The device nodes an initramfs carries (the kernel opens the console before init runs).
DEVICES = (CpioEntry(path="dev/console", mode=stat.S_IFCHR | 0o600, rdev=(5, 1)),
           CpioEntry(path="dev/null", mode=stat.S_IFCHR | 0o666, rdev=(1, 3)))


class MissingBootFile(UserError):
    """An output needs a boot binary that no installed package provides."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputJob:
    """One output of the profile for this architecture."""

    name: str
    type: str
    options: Mapping[str, Any]
    firmware: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltOutput:
    """A built output: its files (the first is the bootable one) and how it boots."""

    name: str
    type: str
    files: tuple[Path, ...]
    firmware: tuple[str, ...]
    boot: Mapping[str, str] = field(default_factory=dict)  # media (cdrom, disk, kernel), format, ...


@dataclass(kw_only=True)
class Workshop:
    root: Path
    arch: Arch
    work: Path
    epoch: int
    seed: str
    cmdline: str
    boot_files: Mapping[str, str]  # role -> root-relative path, from the packages' [boot] tables
    kernel: Path
    secure_boot: SecureBootKey | None = None   # the profile's db key: every UKI is signed with it
    profile: str = ""                          # the profile's name (an A/B disk's update bundle records it)
    _made: dict[str, Path] = field(default_factory=dict)

    def uuid(self, label: str) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"vcomp:{self.seed}:{label}")

    def boot_file(self, role: str, output: str) -> Path:
        """A copy, in the work directory, of the root's file for ``role``: read through the confined layer with
        its symlinks resolved inside the root, so a package's boot table or symlink never reads a host file."""
        rel = self.boot_files.get(role)
        data = None
        if isinstance(rel, str):
            with Root.open(self.root) as tree:
                try:
                    data = tree.read_in_root(rel.lstrip("/"))
                except (UnsafePath, OSError):
                    data = None
        if data is None:
            raise MissingBootFile(f"output '{output}' for {self.arch.name} needs the boot file '{role}', which no "
                                  "package in the lock provides",
                                  hint="relock (vcomp lock PROFILE): the lock then includes the bootloader packages")
        path = self.work / "boot-files" / role
        atomic_write(path, data, durable=False)
        return path

    def os_release(self) -> str:
        with Root.open(self.root) as tree:
            try:
                return tree.read_in_root("etc/os-release", 1 << 20).decode("utf-8", "replace")
            except (UnsafePath, OSError):
                return ""

    def once(self, key: str, make: Callable[[Path], None], filename: str) -> Path:
        if key not in self._made:
            path = self.work / filename
            make(path)
            self._made[key] = path
        return self._made[key]

    # ---- intermediate products
    def initramfs(self, compression: str = "zstd") -> Path:
        suffix, compress = COMPRESSORS[compression]

        def make(path: Path) -> None:
            import io
            buf = io.BytesIO()
            write_cpio(entries_from_tree(self.root, devices=DEVICES, exclude=("boot",)), buf, self.epoch)
            with atomic_output(path) as f:
                f.write(compress(buf.getvalue(), self.epoch))
        return self.once(f"initramfs-{compression}", make, f"initramfs{suffix}")

    def uki(self, cmdline: str, output: str) -> Path:
        stub = self.boot_file("uki-stub", output)
        osrel = self.os_release()
        key = _digest(cmdline)

        def make(path: Path) -> None:
            data = pe.make_uki(stub.read_bytes(), linux=self.kernel.read_bytes(),
                               initrd=self.initramfs().read_bytes(), cmdline=cmdline, osrel=osrel)
            if self.secure_boot is not None:
                data = sign(data, self.secure_boot, epoch=self.epoch, work=self.work)
            with atomic_output(path) as f:
                f.write(data)
        return self.once(f"uki-{key}", make, f"uki-{key}.efi")

    def esp(self, cmdline: str, output: str, *, uefi: bool = True, bios: bool = False) -> Path:
        """The EFI system partition booting ``cmdline``: with ``uefi`` the UKI as EFI/BOOT/BOOT*.EFI; with
        ``bios`` also syslinux (ldlinux.sys installed, ldlinux.c32, syslinux.cfg) and the kernel and initramfs
        it loads (:mod:`composer.image.formats.syslinux`)."""
        files = {f"EFI/BOOT/{self.arch.efi_boot_name}": self.uki(cmdline, output)} if uefi else {}
        if bios:
            config = self.work / f"syslinux-{_digest(cmdline)}.cfg"
            atomic_write(config, syslinux.boot_config(cmdline).encode(), durable=False)
            files |= {"boot/vmlinuz": self.kernel, "boot/initrd.img": self.initramfs(),
                      "ldlinux.c32": self.boot_file("ldlinux", output), syslinux.CONFIG: config}
        key = _digest(cmdline) + ("" if uefi else "-no-uefi") + ("-bios" if bios else "")  # UEFI only: as before
        vol = int.from_bytes(hashlib.sha256(f"{self.seed}:esp:{key}".encode()).digest()[:4], "big")

        def make(path: Path) -> None:
            fat.make_fat(path, files, epoch=self.epoch, label="ESP", volume_id=vol,
                         reserve=syslinux.LDLINUX_SYS_RESERVE if bios else 0)
            if bios:
                syslinux.install(path, epoch=self.epoch)
        return self.once(f"esp-{key}", make, f"esp-{key}.fat")

    def root_image(self, filesystem: str, fs_uuid: UUID | None = None) -> Path:
        """The root file system image; its UUID derived from the build's seed, or ``fs_uuid`` (an A/B slot's,
        the same in every generation: ext4's metadata checksums are seeded with it)."""
        fsid = fs_uuid or self.uuid("root-fs")
        makers: Mapping[str, Callable[[Path], None]] = {
            "ext4": lambda p: fs.make_ext4(self.root, p, epoch=self.epoch, label="veridian-root", fs_uuid=fsid),
            "erofs": lambda p: fs.make_erofs(self.root, p, epoch=self.epoch, fs_uuid=fsid),
            "squashfs": lambda p: fs.make_squashfs(self.root, p, epoch=self.epoch),
        }
        key = "" if fs_uuid is None else f"-{fs_uuid}"
        return self.once(f"root-{filesystem}{key}", makers[filesystem], f"root{key}.{filesystem}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


Builder = Callable[[Workshop, OutputJob, Path], BuiltOutput]
"""How an output type is made: from the workshop, one target, into the output directory."""
