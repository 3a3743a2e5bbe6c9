"""Output builders (a registry by output type) over one installed and configured root.

A :class:`Workshop` makes each intermediate product once per build (the initramfs, a UKI for a
command line, an ESP, a root file system image) in its work directory; the builders combine them.
Boot binaries come from the installed packages' ``[boot]`` tables (``uki-stub``, ``isolinux``,
``ldlinux``), the kernel from the kernel package: never from the host. Every id (file system
UUIDs, partition GUIDs, volume ids) is derived from the build's seed, itself a digest of the inputs.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

from composer.arch import Arch
from composer.errors import UserError
from composer.fsutil import atomic_output, atomic_write
from composer.image.formats import fat, fs, gpt, iso, pe
from composer.image.formats.cpio import entries_from_tree, write_cpio
from composer.image.initramfs import DEVICES
from composer.rootfs import Root, UnsafePath

ROOT_PARTITION = 2  # the disk's root file system is the second GPT partition (vda2 on virtio)
COMPRESSORS: Mapping[str, tuple[str, Callable[[bytes, int], bytes]]] = {
    "zstd": (".cpio.zst", lambda data, _e: zstandard.ZstdCompressor(level=10).compress(data)),
    "gzip": (".cpio.gz", lambda data, e: gzip.compress(data, compresslevel=6, mtime=e)),
    "none": (".cpio", lambda data, _e: data),
}
EXTENSIONS: Mapping[str, str] = {"rootfs": ".tar", "uki": ".efi", "esp": ".fat", "iso": ".iso"}


class MissingBootFile(UserError):
    """An output needs a boot binary that no installed package provides."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One output of the profile for this architecture."""

    name: str
    type: str
    options: Mapping[str, Any]
    firmware: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Product:
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
        key = hashlib.sha256(cmdline.encode()).hexdigest()[:12]

        def make(path: Path) -> None:
            data = pe.make_uki(stub.read_bytes(), linux=self.kernel.read_bytes(),
                               initrd=self.initramfs().read_bytes(), cmdline=cmdline, osrel=osrel)
            with atomic_output(path) as f:
                f.write(data)
        return self.once(f"uki-{key}", make, f"uki-{key}.efi")

    def esp(self, cmdline: str, output: str) -> Path:
        uki = self.uki(cmdline, output)
        key = hashlib.sha256(cmdline.encode()).hexdigest()[:12]
        vol = int.from_bytes(hashlib.sha256(f"{self.seed}:esp:{key}".encode()).digest()[:4], "big")
        return self.once(f"esp-{key}", lambda p: fat.make_fat(
            p, {f"EFI/BOOT/{self.arch.efi_boot_name}": uki}, epoch=self.epoch, label="ESP", volume_id=vol),
            f"esp-{key}.fat")

    def root_image(self, filesystem: str) -> Path:
        makers: Mapping[str, Callable[[Path], None]] = {
            "ext4": lambda p: fs.make_ext4(self.root, p, epoch=self.epoch, label="veridian-root",
                                           fs_uuid=self.uuid("root-fs")),
            "erofs": lambda p: fs.make_erofs(self.root, p, epoch=self.epoch, fs_uuid=self.uuid("root-fs")),
            "squashfs": lambda p: fs.make_squashfs(self.root, p, epoch=self.epoch),
        }
        return self.once(f"root-{filesystem}", makers[filesystem], f"root.{filesystem}")


# ---------------------------------------------------------------- builders


def build_rootfs(w: Workshop, t: Target, out: Path) -> Product:
    path = out / f"{t.name}.tar"
    fs.make_tar(w.root, path, epoch=w.epoch)
    return Product(name=t.name, type=t.type, files=(path,), firmware=())


def build_initramfs(w: Workshop, t: Target, out: Path) -> Product:
    compression = str(t.options.get("compression", "zstd"))
    path = out / f"{t.name}{COMPRESSORS[compression][0]}"
    shutil.copyfile(w.initramfs(compression), path)
    kernel = out / f"{t.name}.vmlinuz"  # beside it, so it boots directly (-kernel -initrd)
    shutil.copyfile(w.kernel, kernel)
    return Product(name=t.name, type=t.type, files=(path, kernel), firmware=(),
                   boot={"media": "kernel", "cmdline": w.cmdline})


def build_uki(w: Workshop, t: Target, out: Path) -> Product:
    path = out / f"{t.name}.efi"
    shutil.copyfile(w.uki(w.cmdline, t.name), path)
    return Product(name=t.name, type=t.type, files=(path,), firmware=("uefi",), boot={"media": "uki"})


def build_esp(w: Workshop, t: Target, out: Path) -> Product:
    path = out / f"{t.name}.fat"
    shutil.copyfile(w.esp(w.cmdline, t.name), path)
    return Product(name=t.name, type=t.type, files=(path,), firmware=("uefi",), boot={"media": "disk", "format": "raw"})


ISOLINUX_CFG = """SERIAL 0 115200
DEFAULT veridian
PROMPT 0
TIMEOUT 0
LABEL veridian
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND {cmdline}
"""


def build_iso(w: Workshop, t: Target, out: Path) -> Product:
    path = out / f"{t.name}.iso"
    bios = None
    if "bios" in t.firmware:
        bios = iso.BiosBoot(isolinux_bin=w.boot_file("isolinux", t.name), ldlinux_c32=w.boot_file("ldlinux", t.name),
                            config=ISOLINUX_CFG.format(cmdline=w.cmdline),
                            isohdpfx=w.boot_file("isohdpfx", t.name) if "isohdpfx" in w.boot_files else None)
    efi = w.esp(w.cmdline, t.name) if "uefi" in t.firmware else None
    files = {"/boot/vmlinuz": w.kernel, "/boot/initrd.img": w.initramfs()} if bios else {}
    hybrid = bool(t.options.get("hybrid", bios is not None)) and bios is not None
    iso.make_iso(path, files=files, volume_id="VERIDIAN", epoch=w.epoch, bios=bios, efi_image=efi, hybrid=hybrid)
    return Product(name=t.name, type=t.type, files=(path,), firmware=t.firmware, boot={"media": "cdrom"})


def build_disk(w: Workshop, t: Target, out: Path) -> Product:
    filesystem = str(t.options.get("filesystem", "ext4"))
    fmt = str(t.options.get("format", "qcow2"))
    cmdline = f"{w.cmdline} vcomp.root=/dev/vda{ROOT_PARTITION} vcomp.rootfstype={filesystem}"
    parts = [gpt.Partition(name="ESP", type_guid=gpt.ESP_TYPE, guid=w.uuid("esp-part"), image=w.esp(cmdline, t.name)),
             gpt.Partition(name="root", type_guid=gpt.ROOT_TYPES[w.arch.name], guid=w.uuid("root-part"),
                           image=w.root_image(filesystem))]
    raw = w.work / f"{t.name}.raw"
    gpt.write_gpt(raw, parts, disk_guid=w.uuid("disk"))
    path = out / f"{t.name}.{fmt}"
    if fmt == "qcow2":
        fs.to_qcow2(raw, path)
    else:
        shutil.copyfile(raw, path)
    return Product(name=t.name, type=t.type, files=(path,), firmware=t.firmware, boot={"media": "disk", "format": fmt})


BUILDERS: Mapping[str, Callable[[Workshop, Target, Path], Product]] = {
    "rootfs": build_rootfs, "initramfs": build_initramfs, "uki": build_uki, "esp": build_esp,
    "iso": build_iso, "disk": build_disk,
}


def build_products(w: Workshop, targets: Sequence[Target], out: Path) -> list[Product]:
    return [BUILDERS[t.type](w, t, out) for t in targets]
