"""The ``disk`` output: a GPT disk (ESP + ext4/erofs/squashfs root), raw or qcow2.

UEFI boots the ESP's UKI; BIOS (x86_64) boots syslinux: gptmbr.bin in the protective MBR, the ESP marked
legacy-BIOS-bootable, ldlinux.sys installed on it (:mod:`composer.image.formats.syslinux`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from composer.image.formats import fs, gpt, syslinux
from composer.image.workshop import BuiltOutput, OutputJob, Workshop

EXTENSION = ".qcow2"  # with the default format
ROOT_PARTITION = 2  # the disk's root file system is the second GPT partition (vda2 on virtio)
# options.root-device: the bus the guest finds the disk on -> the device name its partitions follow
ROOT_DEVICES = {"virtio": "/dev/vda", "nvme": "/dev/nvme0n1p"}


def build(w: Workshop, t: OutputJob, out: Path) -> BuiltOutput:
    filesystem = str(t.options.get("filesystem", "ext4"))
    fmt = str(t.options.get("format", "qcow2"))
    device = ROOT_DEVICES[str(t.options.get("root-device", "virtio"))]
    cmdline = f"{w.cmdline} vcomp.root={device}{ROOT_PARTITION} vcomp.rootfstype={filesystem}"
    bios = "bios" in t.firmware
    esp = w.esp(cmdline, t.name, uefi="uefi" in t.firmware, bios=bios)
    parts = [gpt.Partition(name="ESP", type_guid=gpt.ESP_TYPE, guid=w.uuid("esp-part"), image=esp,
                           attributes=gpt.LEGACY_BIOS_BOOTABLE if bios else 0),
             gpt.Partition(name="root", type_guid=w.arch.gpt_root_type, guid=w.uuid("root-part"),
                           image=w.root_image(filesystem))]
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
