"""A bootable ISO 9660 image with pycdlib: rootless, and bit-for-bit reproducible.

The image has Rock Ridge 1.09 and Joliet names (the long names callers give, ``/boot/initrd.img``) over
ISO 9660 level 3 names (upper-case, unique per directory). Boot entries, all optional:

- BIOS: El Torito no-emulation entry for isolinux.bin (4 sectors, boot info table), with ldlinux.c32 and
  isolinux.cfg beside it in ``/isolinux``;
- UEFI: a second El Torito entry (platform 0xef) for a FAT image holding ``EFI/BOOT/BOOT*.EFI``;
- hybrid: the isohybrid MBR (and, with UEFI, an MBR/GPT entry for the FAT image), so the same file also boots
  when written to a disk. pycdlib's isohybrid chain-loads isolinux, so hybrid needs BIOS boot.

pycdlib takes every date from the wall clock in the local time zone and draws the hybrid MBR id and the GPT
GUIDs at random. Here the clock is pinned to ``epoch`` in UTC (:func:`pinned_clock`), and the MBR id and GUIDs
are derived from a digest of the inputs (:func:`content_digest`), so the same inputs give the same bytes.
With UEFI, the hybrid GPT is written again to correct two pycdlib defects (:func:`rewrite_hybrid_gpt`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import itertools
import math
import os
import re
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import struct_time
from types import ModuleType
from typing import IO, Any, BinaryIO, cast

import pycdlib
from pycdlib import isohybrid, pycdlibexception

from composer.errors import ComposerError, InternalError, UserError, combine
from composer.fsutil import atomic_output, canonical_json, sha256_file

ISOLINUX_DIR = "/isolinux"
EFI_IMAGE_PATH = "/EFI/efiboot.img"
BIOS_LOAD_SECTORS = 4            # isolinux.bin is loaded 4 x 512 bytes at a time; isohybrid requires 4
EFI_PLATFORM = 0xEF
MAX_SECTOR_COUNT = 0xFFFF        # the El Torito sector count is 16-bit, in 512-byte units
ISOHDPFX_SIZE = 432              # isohybrid MBR boot code: everything before the MBR id and partition table
VOLUME_ID = re.compile(r"[A-Z0-9_.-]{1,16}")   # Joliet stores it as UTF-16 in 32 bytes: 16 characters
MAX_EPOCH = 5869583999           # 2155-12-31 23:59:59 UTC: a directory record's year is 1900 + one byte
JOLIET_MAX = 64                  # UCS-2 characters per Joliet name
JOLIET_FORBIDDEN = frozenset('*/:;?\\')
FILE_MODE, EXEC_MODE, DIR_MODE = 0o100444, 0o100555, 0o040555
FILE_IDENT_MAX, DIR_IDENT_MAX, EXT_MAX = 30, 31, 8    # ISO 9660 level 2/3 identifier lengths
NOT_D_CHARS = re.compile(r"[^A-Z0-9_]")


@dataclass(frozen=True, slots=True, kw_only=True)
class BiosBoot:
    isolinux_bin: Path     # usr/lib/ISOLINUX/isolinux.bin from the isolinux package
    ldlinux_c32: Path      # usr/lib/syslinux/modules/bios/ldlinux.c32
    config: str            # isolinux.cfg text (the caller writes kernel/initrd/append lines)
    isohdpfx: Path | None = None  # usr/lib/ISOLINUX/isohdpfx.bin: the hybrid MBR code of the same syslinux;
    #                               without it pycdlib's built-in copy (from an older syslinux) is used


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One file on the image: its Rock Ridge/Joliet path and where its bytes come from."""
    path: str              # "/boot/vmlinuz"
    source: Path | bytes   # a host file, or the content itself


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """What goes on the image, validated: the files (sorted), the boot entries and the ISO 9660 names."""
    entries: tuple[Entry, ...]
    catalog: str | None                # the El Torito boot catalog's path, if the image boots at all
    bios: BiosBoot | None
    efi_sectors: int                   # the FAT image's size in 512-byte sectors (0: no UEFI entry)
    iso_names: Mapping[str, str]       # Rock Ridge path -> ISO 9660 path, for files and directories


def make_iso(out: Path, *, files: Mapping[str, Path], volume_id: str, epoch: int,
             bios: BiosBoot | None, efi_image: Path | None, hybrid: bool) -> None:
    """files: ISO path ("/boot/vmlinuz") -> host file. bios: El Torito BIOS entry via isolinux (x86_64).
    efi_image: a FAT image (an ESP holding EFI/BOOT/BOOT*.EFI) added as an El Torito EFI entry (platform 0xef).
    hybrid: also bootable when written to a disk (isohybrid MBR; with EFI a GPT/MBR entry for the ESP)."""
    problems = check_options(volume_id=volume_id, epoch=epoch, bios=bios, hybrid=hybrid)
    layout = plan_layout(files, bios, efi_image, problems=problems)
    digest = content_digest(layout, volume_id=volume_id, epoch=epoch, hybrid=hybrid)
    with pinned_clock(epoch), _pycdlib_errors(out), contextlib.ExitStack() as stack:
        iso = pycdlib.PyCdlib()
        iso.new(interchange_level=3, rock_ridge="1.09", joliet=3, vol_ident=volume_id, sys_ident="LINUX",
                app_ident_str="VERIDIAN COMPOSER")
        stack.callback(iso.close)
        add_tree(iso, layout, stack)
        add_boot_entries(iso, layout)
        if hybrid:
            add_hybrid(iso, layout, digest)
        write_image(iso, layout, out)


# -- validation and layout (pure but for reading file sizes) ------------------------------------------------------

def check_options(*, volume_id: str, epoch: int, bios: BiosBoot | None, hybrid: bool) -> list[ComposerError]:
    errors: list[ComposerError] = []
    if not VOLUME_ID.fullmatch(volume_id):
        errors.append(UserError(f"ISO volume id '{volume_id}' is not 1 to 16 characters of A-Z, 0-9, '_', '-', '.'",
                                hint="use an upper-case label such as VERIDIAN (Joliet keeps 16 characters)"))
    if not 0 <= epoch <= MAX_EPOCH:
        errors.append(UserError(f"ISO epoch {epoch} is outside 0..{MAX_EPOCH} (ISO 9660 dates end in 2155)",
                                hint="set SOURCE_DATE_EPOCH to seconds since 1970"))
    if hybrid and bios is None:
        errors.append(UserError("a hybrid ISO needs BIOS boot: pycdlib's isohybrid MBR chain-loads isolinux",
                                hint="pass bios=BiosBoot(...) (x86_64), or hybrid=False: an EFI-only image still "
                                     "boots as a CD under UEFI"))
    return errors


def plan_layout(files: Mapping[str, Path], bios: BiosBoot | None, efi_image: Path | None, *,
                problems: Sequence[ComposerError] = ()) -> Layout:
    """Validate the paths and host files and name everything in ISO 9660; raise every error (and ``problems``)
    at once."""
    entries = [Entry(path=p, source=s) for p, s in files.items()]
    catalog = None
    if bios is not None:
        catalog = f"{ISOLINUX_DIR}/boot.cat"
        entries += [Entry(path=f"{ISOLINUX_DIR}/isolinux.bin", source=bios.isolinux_bin),
                    Entry(path=f"{ISOLINUX_DIR}/ldlinux.c32", source=bios.ldlinux_c32),
                    Entry(path=f"{ISOLINUX_DIR}/isolinux.cfg", source=bios.config.encode())]
    if efi_image is not None:
        catalog = catalog or f"{Path(EFI_IMAGE_PATH).parent}/boot.cat"
        entries.append(Entry(path=EFI_IMAGE_PATH, source=efi_image))
    errors = [*problems, *check_entries(entries, catalog), *check_isohdpfx(bios)]
    if errors:
        raise combine(errors, summary="cannot build the ISO:")
    entries.sort(key=lambda e: e.path)
    paths = [e.path for e in entries] + ([catalog] if catalog else [])
    efi_sectors = math.ceil(efi_image.stat().st_size / 512) if efi_image is not None else 0
    return Layout(entries=tuple(entries), catalog=catalog, bios=bios, efi_sectors=efi_sectors,
                  iso_names=iso9660_names(paths))


def check_isohdpfx(bios: BiosBoot | None) -> list[ComposerError]:
    if bios is None or bios.isohdpfx is None:
        return []
    if not bios.isohdpfx.is_file():
        return check_host_files([("isohdpfx", bios.isohdpfx)])
    size = bios.isohdpfx.stat().st_size
    if size != ISOHDPFX_SIZE:
        return [UserError(f"isohdpfx {bios.isohdpfx} is {size} bytes, not {ISOHDPFX_SIZE}",
                          hint="pass usr/lib/ISOLINUX/isohdpfx.bin of the isolinux package")]
    return []


def check_entries(entries: Sequence[Entry], catalog: str | None) -> list[ComposerError]:
    errors: list[ComposerError] = []
    seen: set[str] = {catalog} if catalog else set()
    for e in entries:
        errors += check_path(e.path)
        if e.path in seen:
            errors.append(UserError(f"ISO path {e.path} is given twice (or is reserved for boot files)",
                                    hint=f"{ISOLINUX_DIR}/ and {EFI_IMAGE_PATH} are written by make_iso itself"))
        seen.add(e.path)
    dirs = {str(parent) for p in seen for parent in Path(p).parents}
    errors += [UserError(f"ISO path {p} is a file and also a directory of other files", hint="rename one of them")
               for p in sorted(seen & dirs)]
    return errors + check_host_files([(e.path, e.source) for e in entries if isinstance(e.source, Path)])


def check_path(path: str) -> list[ComposerError]:
    parts = path.split("/")
    if not path.startswith("/") or len(parts) < 2 or any(p in ("", ".", "..") for p in parts[1:]):
        return [UserError(f"ISO path '{path}' is not an absolute path of plain names",
                          hint="write it like /boot/vmlinuz")]
    bad = [p for p in parts[1:] if len(p) > JOLIET_MAX or JOLIET_FORBIDDEN & set(p) or
           any(ord(c) < 32 or ord(c) > 0xFFFF for c in p)]
    return [UserError(f"ISO path '{path}': the name '{p}' cannot be stored in Joliet",
                      hint=f"use at most {JOLIET_MAX} characters, none of * / : ; ? \\ or control characters")
            for p in bad]


def check_host_files(sources: Iterable[tuple[str, Path]]) -> list[ComposerError]:
    return [UserError(f"the file for {what} does not exist or is not a regular file: {host}",
                      hint="build or extract it first") for what, host in sources if not host.is_file()]


def iso9660_names(paths: Iterable[str]) -> dict[str, str]:
    """ISO 9660 names for files and every parent directory: d-characters, unique per directory, by sorted path."""
    files = set(paths)
    all_paths = files | {str(parent) for p in files for parent in Path(p).parents if str(parent) != "/"}
    names: dict[str, str] = {"": ""}
    taken: dict[str, set[str]] = {}
    for path in sorted(all_paths):
        parent, _, leaf = path.rpartition("/")
        siblings = taken.setdefault(parent, set())
        ident = file_ident(leaf, siblings) if path in files else dir_ident(leaf, siblings)
        names[path] = f"{names[parent]}/{ident}"
    del names[""]
    return names


def file_ident(name: str, taken: set[str]) -> str:
    stem, dot, ext = name.upper().rpartition(".")
    if not dot or not stem:        # "vmlinuz", ".hidden"
        stem, ext = name.upper(), ""
    ext = NOT_D_CHARS.sub("_", ext)[:EXT_MAX]
    key = claim(NOT_D_CHARS.sub("_", stem), FILE_IDENT_MAX - len(ext), taken, suffix=f".{ext}")
    return f"{key};1"


def dir_ident(name: str, taken: set[str]) -> str:
    return claim(NOT_D_CHARS.sub("_", name.upper()), DIR_IDENT_MAX, taken, suffix="")


def claim(stem: str, room: int, taken: set[str], *, suffix: str) -> str:
    """``stem`` cut to ``room`` characters plus ``suffix``, numbered (_1, _2...) until no sibling has it."""
    for n in itertools.count():
        mark = f"_{n}" if n else ""
        ident = f"{stem[:room - len(mark)] or '_'}{mark}{suffix}"
        key = ident.rstrip(".")    # a file "BOOT." and a directory "BOOT" would clash on some readers
        if key not in taken:
            taken.add(key)
            return ident
    raise InternalError("unreachable")


def content_digest(layout: Layout, *, volume_id: str, epoch: int, hybrid: bool) -> bytes:
    """sha256 of everything that decides the image's bytes: the seed of the MBR id and the GPT GUIDs."""
    def digest(source: Path | bytes) -> str:
        return sha256_file(source) if isinstance(source, Path) else hashlib.sha256(source).hexdigest()
    isohdpfx = layout.bios.isohdpfx if layout.bios is not None else None
    doc = {"volume_id": volume_id, "epoch": epoch, "hybrid": hybrid, "bios": layout.bios is not None,
           "efi_sectors": layout.efi_sectors, "files": [[e.path, digest(e.source)] for e in layout.entries],
           "isohdpfx": digest(isohdpfx) if isohdpfx is not None else None}
    return hashlib.sha256(canonical_json(doc)).digest()


def derived_uuid(digest: bytes, label: str) -> uuid.UUID:
    return uuid.UUID(bytes=hashlib.sha256(digest + label.encode()).digest()[:16], version=4)


def efi_load_size(sectors: int) -> int:
    """The El Torito sector count for the FAT image: exact when it fits in 16 bits, else 1.

    With a count under 2, UEFI firmware (edk2) takes the boot image to run to the end of the CD and reads the
    FAT's own size from its boot sector; pycdlib would crash packing a larger count."""
    return sectors if sectors <= MAX_SECTOR_COUNT else 1


# -- building with pycdlib ---------------------------------------------------------------------------------------

def add_tree(iso: pycdlib.PyCdlib, layout: Layout, stack: contextlib.ExitStack) -> None:
    """Add directories, then files, in sorted order; open host files now (pycdlib reads them when writing)."""
    files = {e.path for e in layout.entries}
    for path in sorted(set(layout.iso_names) - files - {layout.catalog}):
        iso.add_directory(layout.iso_names[path], rr_name=Path(path).name, joliet_path=path, file_mode=DIR_MODE)
    for e in layout.entries:
        fp, size, mode = open_source(e.source, stack)
        iso.add_fp(fp, size, layout.iso_names[e.path], rr_name=Path(e.path).name, joliet_path=e.path,
                   file_mode=mode)


def open_source(source: Path | bytes, stack: contextlib.ExitStack) -> tuple[BinaryIO, int, int]:
    """An open stream, its size and its Rock Ridge mode (executable if the host file is, never host owners)."""
    if isinstance(source, bytes):
        return io.BytesIO(source), len(source), FILE_MODE
    fp = stack.enter_context(source.open("rb"))
    st = os.fstat(fp.fileno())
    return fp, st.st_size, EXEC_MODE if st.st_mode & 0o111 else FILE_MODE


def add_boot_entries(iso: pycdlib.PyCdlib, layout: Layout) -> None:
    """The BIOS entry first (the initial entry, which isohybrid boots), then the UEFI one as a section."""
    if layout.catalog is None:
        return
    names, catalog = layout.iso_names, layout.catalog
    if layout.bios is not None:
        iso.add_eltorito(names[f"{ISOLINUX_DIR}/isolinux.bin"], bootcatfile=names[catalog], rr_bootcatname="boot.cat",
                         joliet_bootcatfile=catalog, boot_load_size=BIOS_LOAD_SECTORS, boot_info_table=True)
    if layout.efi_sectors:
        iso.add_eltorito(names[EFI_IMAGE_PATH], bootcatfile=names[catalog], rr_bootcatname="boot.cat",
                         joliet_bootcatfile=catalog, boot_load_size=efi_load_size(layout.efi_sectors), efi=True,
                         platform_id=EFI_PLATFORM)


def add_hybrid(iso: pycdlib.PyCdlib, layout: Layout, digest: bytes) -> None:
    """The isohybrid MBR (and with UEFI its GPT), with the MBR id and GUIDs derived from ``digest``."""
    efi = layout.efi_sectors > 0
    iso.add_isohybrid(mbr_id=int.from_bytes(digest[:4], "little"), efi=efi)
    hybrid = isohybrid_of(iso)
    if layout.bios is not None and layout.bios.isohdpfx is not None:
        code = layout.bios.isohdpfx.read_bytes()
        hybrid.header, hybrid.mbr = code[:32], code[32:ISOHDPFX_SIZE]
    if efi:
        # pycdlib draws uuid4()s, and different ones for the primary and the backup GPT; a GPT's backup must
        # repeat the primary, so both get the same derived GUIDs.
        for gpt in (hybrid.primary_gpt, hybrid.secondary_gpt):
            gpt.header.disk_guid = derived_uuid(digest, "gpt-disk")
            for i, part in enumerate(gpt.parts):
                part.part_guid = derived_uuid(digest, f"gpt-part-{i}")


def write_image(iso: pycdlib.PyCdlib, layout: Layout, out: Path) -> None:
    with atomic_output(out) as f:
        iso.write_fp(cast(BinaryIO, f))
        if iso.isohybrid_mbr is not None and iso.isohybrid_mbr.efi:
            rewrite_hybrid_gpt(iso, f, layout.efi_sectors)


def rewrite_hybrid_gpt(iso: pycdlib.PyCdlib, f: IO[bytes], sectors: int) -> None:
    """Write the system area (MBR, primary GPT) and the backup GPT again, correcting two pycdlib defects.

    - pycdlib sizes the ESP partition (MBR entry 2, GPT partition 2) by the El Torito sector count, which is 1 for
      a FAT image of 32 MiB or more (:func:`efi_load_size`): give it the image's real size;
    - its GPT headers hold the CRC32 of the used partition entries only, where the UEFI spec (and syslinux's
      isohybrid) take the whole entry array: a strict reader rejects both GPTs (:func:`seal_gpt`)."""
    hybrid = isohybrid_of(iso)
    hybrid.efi_count = sectors
    for gpt in (hybrid.primary_gpt, hybrid.secondary_gpt):
        gpt.parts[1].last_lba = gpt.parts[1].first_lba + sectors - 1
    system = bytearray(hybrid.record(iso.pvd.space_size * iso.logical_block_size))   # MBR, GPT header, entries
    seal_gpt(system, header_at=512, table_at=1024)
    backup = bytearray(hybrid.secondary_gpt.record())                                 # entries, GPT header
    seal_gpt(backup, header_at=len(backup) - 512, table_at=0)
    header = hybrid.secondary_gpt.header
    f.seek(0)
    f.write(system)
    f.seek(header.current_lba * 512 - header.num_parts * header.size_of_partition_entries)
    f.write(backup)
    f.seek(0, io.SEEK_END)


def seal_gpt(buf: bytearray, *, header_at: int, table_at: int) -> None:
    """Set the CRC32 of the partition entry array and then of the header, for the GPT header at ``header_at``."""
    count, size = struct.unpack_from("<II", buf, header_at + 80)
    struct.pack_into("<I", buf, header_at + 88, zlib.crc32(buf[table_at:table_at + count * size]))
    header_size = struct.unpack_from("<I", buf, header_at + 12)[0]
    struct.pack_into("<I", buf, header_at + 16, 0)
    struct.pack_into("<I", buf, header_at + 16, zlib.crc32(buf[header_at:header_at + header_size]))


def isohybrid_of(iso: pycdlib.PyCdlib) -> isohybrid.IsoHybrid:
    if iso.isohybrid_mbr is None:
        raise InternalError("pycdlib made no isohybrid MBR after add_isohybrid")
    return iso.isohybrid_mbr


@contextlib.contextmanager
def _pycdlib_errors(out: Path) -> Iterator[None]:
    try:
        yield
    except pycdlibexception.PyCdlibInvalidInput as exc:
        raise UserError(f"cannot build ISO {out}: {exc}", hint="check the files and names given to make_iso") \
            from exc
    except pycdlibexception.PyCdlibException as exc:
        raise InternalError(f"pycdlib failed building ISO {out}: {exc}",
                            hint="a bug in composer/image/formats/iso.py or pycdlib; rerun with --debug") from exc


# -- pinning pycdlib's clock ---------------------------------------------------------------------------------------

# The pycdlib modules that read the wall clock (time.time()) or the local time zone (time.localtime()): volume
# descriptor dates (also re-read in record()), directory record dates, Rock Ridge TF entries, UDF.
CLOCK_MODULES = ("pycdlib.dates", "pycdlib.headervd", "pycdlib.pycdlib", "pycdlib.udf", "pycdlib.inplaceeditor")
_clock_lock = threading.Lock()


class PinnedTime:
    """Stands in for the ``time`` module inside pycdlib: "now" is ``epoch`` and the local time zone is UTC."""

    __slots__ = ("epoch",)

    def __init__(self, epoch: int) -> None:
        self.epoch = float(epoch)

    def time(self) -> float:
        return self.epoch

    def localtime(self, secs: float | None = None) -> struct_time:
        return time.gmtime(self.epoch if secs is None else secs)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)   # strftime, strptime, gmtime, struct_time: pure functions of their input


@contextlib.contextmanager
def pinned_clock(epoch: int) -> Iterator[None]:
    """Within: pycdlib sees the time ``epoch`` in UTC. Its modules' ``time`` global is swapped and restored.

    pycdlib has no parameter for any of its dates, and volume descriptors read the clock again when written, so
    the whole build and write happen inside. A lock keeps two builds in threads from interleaving; other pycdlib
    use in the process meanwhile would also see the pinned clock (harmless: it only reads or builds images)."""
    modules = [importlib.import_module(name) for name in CLOCK_MODULES]
    with _clock_lock:
        unexpected = [m.__name__ for m in modules if getattr(m, "time", None) is not time]
        if unexpected:
            raise InternalError(f"pycdlib modules {unexpected} no longer hold the time module: the ISO clock "
                                f"cannot be pinned", hint="update CLOCK_MODULES for this pycdlib version")
        _swap_time(modules, PinnedTime(epoch))
        try:
            yield
        finally:
            _swap_time(modules, time)


def _swap_time(modules: Sequence[ModuleType], clock: object) -> None:
    for module in modules:
        setattr(module, "time", clock)  # noqa: B010 (a module global, named on purpose)
