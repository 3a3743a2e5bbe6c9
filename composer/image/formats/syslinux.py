"""BIOS boot of a GPT disk with SYSLINUX, rootless and bit-for-bit reproducible (docs/boot-tests.md).

The chain: the BIOS runs the protective MBR's boot code, syslinux's ``gptmbr.bin`` (from the lock's
syslinux-common, placed by :func:`composer.image.formats.gpt.write_gpt`); it finds the partition whose GPT
entry carries the legacy-BIOS-bootable attribute (the ESP), loads that partition's boot sector and hands it
the GPT entry (``!GPT`` hand-over, so the FAT boot sector learns its own offset); the boot sector loads
``ldlinux.sys``, which loads ``ldlinux.c32`` (from the lock) and reads ``syslinux.cfg``: the kernel and
initramfs beside it on the ESP.

:func:`install` runs the host's mtools-based ``syslinux --install`` on the FAT image file itself, before the
image goes into the disk: it writes the FAT boot sector's code (keeping its BPB) and ``ldlinux.sys`` (whose
sector map it patches; the map is a function of the FAT layout, itself deterministic), with mtools dating the
file from ``SOURCE_DATE_EPOCH``. No loop device, no mount, no root. ``ldlinux.sys`` and the boot sector code
come from the host's ``syslinux`` package; they must be the build of the syslinux the lock's ``ldlinux.c32``
comes from (Debian 12 and 13 both ship 6.04~git20190206.bf6db5b4).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from composer.errors import UserError
from composer.image.formats.fat import MTOOLS_ENV
from composer.image.formats.fs import TOOL_ENV
from composer.image.formats.gpt import MBR_CODE_SIZE
from composer.run import run

LDLINUX_SYS_RESERVE = 128 * 1024  # ldlinux.sys (about 70 KiB in 6.04) and its ADV sectors, with room
GPTMBR_SIZE = MBR_CODE_SIZE       # usr/lib/syslinux/mbr/gptmbr.bin: code only, up to the disk signature
CONFIG = "syslinux.cfg"           # at the FAT root: the first place ldlinux looks when installed there
# The boot menu: no prompt, the serial console (COM1) at 115200, one entry. ISO and disk use the same text.
BOOT_CONFIG = """SERIAL 0 115200
DEFAULT veridian
PROMPT 0
TIMEOUT 0
LABEL veridian
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND {cmdline}
"""


def boot_config(cmdline: str) -> str:
    """The syslinux/isolinux configuration booting /boot/vmlinuz with /boot/initrd.img and ``cmdline``."""
    if "\n" in cmdline or "\r" in cmdline:
        raise UserError("the kernel command line holds a line break, which would end syslinux's APPEND line",
                        hint="write the profile's kernel.cmdline on one line")
    return BOOT_CONFIG.format(cmdline=cmdline)


def check_gptmbr(code: bytes, *, where: str) -> bytes:
    """``gptmbr.bin``'s bytes, checked: exactly the MBR's code area."""
    if len(code) != GPTMBR_SIZE:
        raise UserError(f"{where}: {len(code)} bytes, not the {GPTMBR_SIZE} of syslinux's gptmbr.bin",
                        hint="the [boot] gptmbr of the isolinux package must be usr/lib/syslinux/mbr/gptmbr.bin")
    return code


SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # where mtools lives


def install(image: Path, *, epoch: int) -> None:
    """Install syslinux's boot sector and ldlinux.sys into the FAT image file ``image`` (at the FAT root)."""
    # syslinux runs mcopy and mattrib through the shell: it needs a PATH (the system's, never the caller's)
    env = {**TOOL_ENV, **MTOOLS_ENV, "SOURCE_DATE_EPOCH": str(epoch), "PATH": SYSTEM_PATH}
    with tempfile.TemporaryDirectory(prefix="vcomp-syslinux-") as tmp:
        env["HOME"] = env["TMPDIR"] = tmp  # no ~/.mtoolsrc; syslinux writes its own mtools configuration here
        run(["syslinux", "--install", str(image.absolute())], env=env, clean_env=True)
