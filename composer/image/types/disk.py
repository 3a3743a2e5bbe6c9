"""The ``disk`` output: a GPT disk (ESP + ext4/erofs/squashfs root), raw or qcow2.

UEFI boots the ESP's UKI; BIOS (x86_64) boots syslinux: gptmbr.bin in the protective MBR, the ESP marked
legacy-BIOS-bootable, ldlinux.sys installed on it (:mod:`composer.image.formats.syslinux`).

With ``options.verity: true`` a third partition holds the root's dm-verity hash tree and the command line (in the
UKI, signed when the profile names a secure-boot key) carries its root hash: init maps the root through dm-verity
before mounting it (:mod:`composer.image.formats.verity`, docs/verified-boot.md).

With ``options.slots: ab`` the disk has two root slots and boots systemd-boot (:mod:`composer.image.types.abdisk`,
docs/updates/ab-slots.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

from composer.image.formats import fs, gpt, syslinux, verity
from composer.image.types import abdisk
from composer.image.workshop import BuiltOutput, OutputJob, Workshop

EXTENSION = ".qcow2"  # with the default format
ROOT_PARTITION = 2  # the disk's root file system is the second GPT partition (vda2 on virtio)
VERITY_PARTITION = 3  # with options.verity: the root's hash tree
# options.root-device: the bus the guest finds the disk on -> the device name its partitions follow
ROOT_DEVICES = {"virtio": "/dev/vda", "nvme": "/dev/nvme0n1p"}


def build(w: Workshop, t: OutputJob, out: Path) -> BuiltOutput:
    filesystem = str(t.options.get("filesystem", "ext4"))
    fmt = str(t.options.get("format", "qcow2"))
    device = ROOT_DEVICES[str(t.options.get("root-device", "virtio"))]
    if t.options.get("slots", "none") == "ab":
        return abdisk.build(w, t, out, filesystem=filesystem, fmt=fmt, device=device)
    cmdline = f"{w.cmdline} vcomp.root={device}{ROOT_PARTITION} vcomp.rootfstype={filesystem}"
    root = w.root_image(filesystem)
    verity_parts: list[gpt.Partition] = []
    if t.options.get("verity", False):
        root, tree_image, tree = _verity(w, t.name, root)
        cmdline += " " + tree.cmdline_word(f"{device}{ROOT_PARTITION}", f"{device}{VERITY_PARTITION}")
        verity_parts = [gpt.Partition(name="root-verity", type_guid=w.arch.gpt_root_verity_type,
                                      guid=w.uuid("root-verity-part"), image=tree_image)]
    bios = "bios" in t.firmware
    esp = w.esp(cmdline, t.name, uefi="uefi" in t.firmware, bios=bios)
    parts = [gpt.Partition(name="ESP", type_guid=gpt.ESP_TYPE, guid=w.uuid("esp-part"), image=esp,
                           attributes=gpt.LEGACY_BIOS_BOOTABLE if bios else 0),
             gpt.Partition(name="root", type_guid=w.arch.gpt_root_type, guid=w.uuid("root-part"), image=root),
             *verity_parts]
    raw = w.work / f"{t.name}.raw"
    mbr = w.boot_file("gptmbr", t.name) if bios else None
    code = syslinux.check_gptmbr(mbr.read_bytes(), where=f"output '{t.name}': gptmbr") if mbr else b""
    gpt.write_gpt(raw, parts, disk_guid=w.uuid("disk"), boot_code=code)
    path = out / f"{t.name}.{fmt}"
    if fmt == "qcow2":
        fs.to_qcow2(raw, path)
    else:
        shutil.copyfile(raw, path)
    return BuiltOutput(name=t.name, type=t.type, files=(path,), firmware=t.firmware,
                       boot={"media": "disk", "format": fmt})


def _verity(w: Workshop, output: str, root: Path) -> tuple[Path, Path, verity.VerityTree]:
    """A copy of the root image padded to whole blocks, its hash tree, and what the command line says of it."""
    data, hashes = w.work / f"{output}-verity-data.img", w.work / f"{output}-verity-hash.img"
    shutil.copyfile(root, data)
    return data, hashes, verity.format_tree(data, hashes, seed=w.seed)
