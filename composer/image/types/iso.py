"""The ``iso`` output: a bootable ISO 9660 (BIOS via isolinux, hybrid; UEFI via an El Torito ESP)."""

from __future__ import annotations

from pathlib import Path

from composer.image.formats import iso, syslinux
from composer.image.workshop import BuiltOutput, OutputJob, Workshop

EXTENSION = ".iso"
ISOLINUX_CFG = syslinux.BOOT_CONFIG  # isolinux.cfg: the same text as a BIOS disk's syslinux.cfg


def build(w: Workshop, t: OutputJob, out: Path) -> BuiltOutput:
    path = out / f"{t.name}{EXTENSION}"
    bios = None
    if "bios" in t.firmware:
        bios = iso.BiosBoot(isolinux_bin=w.boot_file("isolinux", t.name), ldlinux_c32=w.boot_file("ldlinux", t.name),
                            config=syslinux.boot_config(w.cmdline),
                            isohdpfx=w.boot_file("isohdpfx", t.name) if "isohdpfx" in w.boot_files else None)
    efi = w.esp(w.cmdline, t.name) if "uefi" in t.firmware else None
    files = {"/boot/vmlinuz": w.kernel, "/boot/initrd.img": w.initramfs()} if bios else {}
    hybrid = bool(t.options.get("hybrid", bios is not None)) and bios is not None
    iso.make_iso(path, files=files, volume_id="VERIDIAN", epoch=w.epoch, bios=bios, efi_image=efi, hybrid=hybrid)
    # hybrid: the same file boots written to a disk (BIOS: the isohybrid MBR; UEFI: its GPT's ESP entry)
    boot = {"media": "cdrom", **({"alt-media": "disk"} if hybrid else {})}
    return BuiltOutput(name=t.name, type=t.type, files=(path,), firmware=t.firmware, boot=boot)
