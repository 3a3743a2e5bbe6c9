"""FAT images (EFI system partitions), rootless and bit-for-bit reproducible, with dosfstools and mtools.

``mkfs.fat --invariant --mbr=n -i VOLID`` makes the file system (``--invariant`` first: placed after
``-i`` it would replace the volume id with its own constant, 0x1234ABCD); ``mmd`` and ``mcopy`` fill it, directories
first, then files, each in sorted order, with ``SOURCE_DATE_EPOCH=epoch`` and ``TZ=UTC`` so every
directory entry is dated ``epoch`` (FAT stores local time at a 2-second resolution). The host files
are only read: mcopy without ``-m`` dates them from SOURCE_DATE_EPOCH, not from their mtimes.

Size (``size_mib=None``): the files, each rounded up to 4 KiB clusters, plus 4 KiB per directory,
plus 1 MiB for the boot sector, FATs and root directory, with 25 % headroom; whole MiB, at least
2 MiB. The FAT type follows the size: FAT12 below 16 MiB, FAT16 below 33 MiB, FAT32 from 33 MiB (the
type the UEFI specification names for system partitions, and the smallest size FAT32 allows with
512-byte sectors). OVMF, AAVMF, U-Boot and Linux read all three; give ``size_mib >= 33`` for
firmware that insists on FAT32.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from composer.errors import ComposerError, UserError, combine
from composer.fsutil import atomic_path
from composer.image.formats.fs import TOOL_ENV, check_epoch
from composer.run import run

MIB = 1 << 20
KIB = 1024
CLUSTER = 4096
HEADROOM = 1.25
MIN_MIB = 2
FAT_EPOCH_MIN = 315532800  # 1980-01-01 00:00 UTC, the first time FAT can store
FAT_EPOCH_MAX = 4354819199  # 2107-12-31 23:59:59 UTC, the last
# (first size in MiB, FAT bits), largest first
FAT_TYPES: tuple[tuple[int, int], ...] = ((33, 32), (16, 16), (1, 12))
LABEL = re.compile(r"[A-Z0-9 !#$%&'()\-@^_`{}~]{1,11}")
# mtools' name handling pinned (these are its defaults), whatever /etc/mtools.conf says; no ~/.mtoolsrc
MTOOLS_ENV: Mapping[str, str] = {"MTOOLS_SKIP_CHECK": "1", "MTOOLS_LOWER_CASE": "0", "MTOOLS_NO_VFAT": "0",
                                 "MTOOLS_NAME_NUMERIC_TAIL": "1", "MTOOLSRC": "/dev/null"}
NAME_FORBIDDEN = re.compile(r'[\x00-\x1f"*/:<>?\\|]')


def fat_bits(size_mib: int) -> int:
    return next(bits for first, bits in FAT_TYPES if size_mib >= first)


def check_files(files: Mapping[str, Path]) -> list[PurePosixPath]:
    """The FAT paths, checked and sorted; one UserError naming every bad path or missing file."""
    errors: list[ComposerError] = []
    seen: dict[str, str] = {}
    for name, src in sorted(files.items()):
        path = PurePosixPath(name)
        if path.is_absolute() or not path.parts or any(p in (".", "..") or p != p.rstrip(" .") or
                                                       NAME_FORBIDDEN.search(p) for p in path.parts):
            errors.append(UserError(f"FAT path '{name}' is not a relative path of valid FAT names",
                                    hint='write it like "EFI/BOOT/BOOTX64.EFI"'))
        elif str(path) != name:
            errors.append(UserError(f"FAT path '{name}' is not in normal form (it should read '{path}')"))
        elif (key := name.upper()) in seen:
            errors.append(UserError(f"FAT paths '{seen[key]}' and '{name}' differ only in case, which FAT ignores"))
        else:
            seen[key] = name
        if not src.is_file():
            errors.append(UserError(f"'{name}': its source {src} is not a file"))
    if errors:
        raise combine(errors, summary="the FAT image cannot be made:")
    paths = [PurePosixPath(n) for n in sorted(files)]
    for p in paths:
        if any(str(parent).upper() in seen for parent in p.parents if str(parent) != "."):
            raise UserError(f"FAT path '{p}' lies below a file of the same image")
    return paths


def directories(paths: list[PurePosixPath]) -> list[str]:
    """Every directory the files need, parents before children."""
    dirs = {str(parent) for p in paths for parent in p.parents if str(parent) != "."}
    return sorted(dirs, key=lambda d: (d.count("/"), d))


def fat_needs(sizes: list[int], n_dirs: int) -> int:
    """Bytes the files need: each rounded up to a 4 KiB cluster, a cluster per directory, 1 MiB of FAT metadata."""
    return sum(-(-s // CLUSTER) * CLUSTER for s in sizes) + n_dirs * CLUSTER + MIB


def fat_size_mib(needs: int) -> int:
    """The default size: the needs with 25 % headroom, whole MiB, at least MIN_MIB."""
    return max(MIN_MIB, math.ceil(needs * HEADROOM / MIB))


def check_label(label: str) -> None:
    if not LABEL.fullmatch(label):
        raise UserError(f"FAT label '{label}' is not 1-11 characters of A-Z, 0-9, space and !#$%&'()-@^_`{{}}~",
                        hint='use an upper-case label such as "ESP"')


def make_fat(out: Path, files: Mapping[str, Path], *, epoch: int, label: str = "ESP", volume_id: int,
             size_mib: int | None = None, reserve: int = 0) -> None:
    """A FAT image holding ``files`` (FAT path like "EFI/BOOT/BOOTX64.EFI" -> host file); directories made as needed.
    ``reserve``: bytes to leave free for a file written into the image later (syslinux's ldlinux.sys)."""
    check_epoch(epoch, low=FAT_EPOCH_MIN, high=FAT_EPOCH_MAX, what="FAT")
    check_label(label)
    if not 0 <= volume_id <= 0xFFFFFFFF:
        raise UserError(f"FAT volume id {volume_id} does not fit in 32 bits")
    paths = check_files(files)
    dirs = directories(paths)
    sizes = [files[str(p)].stat().st_size for p in paths]
    needs = fat_needs(sizes, len(dirs)) + -(-reserve // CLUSTER) * CLUSTER
    if size_mib is None:
        size_mib = fat_size_mib(needs)
    elif size_mib * MIB < needs:
        raise UserError(f"FAT size {size_mib} MiB cannot hold {sum(sizes)} bytes in {len(paths)} files",
                        hint=f"give at least {math.ceil(needs / MIB)} MiB, or no size to have it computed")
    env = {**TOOL_ENV, **MTOOLS_ENV, "SOURCE_DATE_EPOCH": str(epoch)}
    with tempfile.TemporaryDirectory(prefix="vcomp-fat-") as tmp, atomic_path(out) as img:
        env["HOME"] = tmp  # no ~/.mtoolsrc
        run(["mkfs.fat", "--invariant", "--mbr=n", "-i", f"{volume_id:08X}", "-F", str(fat_bits(size_mib)),
             "-n", label, "-C", img, str(size_mib * MIB // KIB)], env=env, clean_env=True)
        if dirs:
            run(["mmd", "-i", img, *(f"::/{d}" for d in dirs)], env=env, clean_env=True)
        for p in paths:
            run(["mcopy", "-i", img, files[str(p)].absolute(), f"::/{p}"], env=env, clean_env=True)
        run(["fsck.fat", "-n", img], env=env, clean_env=True)
