"""A GUID partition table (UEFI 2.10 §5.3) writer and checker, in pure Python, with 512-byte sectors.

The pure core turns a :class:`Table` into the bytes of the disk's head (protective MBR, primary
header, entry array: LBA 0-33) and tail (backup entry array and header: the last 33 sectors), and
back. :func:`write_gpt` lays the partitions out (each starts on an ``align_mib`` boundary and is its
image rounded up to it; the disk ends on one too) and copies their images in chunks, skipping
all-zero chunks so sparse file system images stay sparse. Every id is the caller's: no clock, no
randomness, so the same images and GUIDs give the same disk bytes.
"""

from __future__ import annotations

import struct
import types
import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from composer.arch import ARCHES
from composer.errors import ComposerError, InvalidPackage, UserError, combine
from composer.fsutil import CHUNK, atomic_output

SECTOR = 512
ENTRY_COUNT = 128
ENTRY_SIZE = 128
ARRAY_SECTORS = ENTRY_COUNT * ENTRY_SIZE // SECTOR  # 32
HEAD_SECTORS = 2 + ARRAY_SECTORS  # MBR, header, entry array
TAIL_SECTORS = ARRAY_SECTORS + 1  # entry array, header
NAME_UNITS = 36  # UTF-16 code units in an entry's name

SIGNATURE = b"EFI PART"
REVISION = 0x00010000
HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")  # 92 bytes
ENTRY = struct.Struct("<16s16sQQQ72s")  # 128 bytes
MBR_PART = struct.Struct("<B3sB3sII")  # 16 bytes
ZERO_GUID = uuid.UUID(int=0)

ESP_TYPE = uuid.UUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
LEGACY_BIOS_BOOTABLE = 1 << 2  # entry attribute bit 2 (UEFI 2.10 §5.3.3): the partition a GPT-aware MBR boots
MBR_CODE_SIZE = 440  # boot code in LBA 0, before the disk signature and the partition table
# Discoverable Partitions Specification: the root file system type per architecture (composer.arch).
ROOT_TYPES: Mapping[str, uuid.UUID] = types.MappingProxyType({a.name: a.gpt_root_type for a in ARCHES.values()})


class InvalidDiskImage(InvalidPackage):
    """A disk image whose partition table is missing, damaged or inconsistent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Partition:
    """A partition to write: its content is the file ``image`` (None: all zeros), its size that of the image or
    ``size`` when larger (an A/B slot: room for a later, larger root), rounded up to the alignment."""

    name: str  # GPT partition name (UTF-16LE, <= 36 code units)
    type_guid: uuid.UUID
    guid: uuid.UUID
    image: Path | None
    attributes: int = 0  # e.g. LEGACY_BIOS_BOOTABLE
    size: int = 0        # the least size in bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """A partition as placed on the disk (LBAs inclusive, as GPT stores them)."""

    name: str
    type_guid: uuid.UUID
    guid: uuid.UUID
    first_lba: int
    last_lba: int
    attributes: int = 0

    @property
    def offset(self) -> int:
        return self.first_lba * SECTOR

    @property
    def size(self) -> int:
        return (self.last_lba - self.first_lba + 1) * SECTOR


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    """A whole partition table: the disk is ``sectors`` long, entries in slot order."""

    disk_guid: uuid.UUID
    sectors: int
    entries: tuple[Entry, ...]
    boot_code: bytes = b""  # the protective MBR's boot code (<= MBR_CODE_SIZE bytes; empty: none)

    @property
    def first_usable(self) -> int:
        return HEAD_SECTORS

    @property
    def last_usable(self) -> int:
        return self.sectors - TAIL_SECTORS - 1


# ---------------------------------------------------------------- layout (pure)


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def check_partitions(partitions: Sequence[Partition], *, disk_guid: uuid.UUID) -> None:
    """Raise one UserError listing every partition that cannot be written."""
    errors: list[ComposerError] = []
    seen: dict[uuid.UUID, str] = {disk_guid: "the disk"}
    for i, p in enumerate(partitions):
        where = f"partition {i + 1} ('{p.name}')"
        if len(p.name.encode("utf-16-le")) > NAME_UNITS * 2:
            errors.append(UserError(f"{where}: the name is longer than {NAME_UNITS} UTF-16 code units"))
        if "\0" in p.name:
            errors.append(UserError(f"{where}: the name contains a NUL character"))
        if p.type_guid == ZERO_GUID:
            errors.append(UserError(f"{where}: the type GUID is all zeros, which marks an unused entry"))
        if not 0 <= p.attributes < 1 << 64:
            errors.append(UserError(f"{where}: attributes {p.attributes} do not fit in 64 bits"))
        if p.guid in seen:
            errors.append(UserError(f"{where}: its GUID {p.guid} is already used by {seen[p.guid]}",
                                    hint="derive each partition's GUID from a different label"))
        seen[p.guid] = where
    if len(partitions) > ENTRY_COUNT:
        errors.append(UserError(f"{len(partitions)} partitions: a GPT holds at most {ENTRY_COUNT}"))
    if errors:
        raise combine(errors, summary="the partition table cannot be written:")


def plan_table(sized: Sequence[tuple[Partition, int]], *, disk_guid: uuid.UUID, align_mib: int = 1,
               boot_code: bytes = b"") -> Table:
    """Place partitions of the given byte sizes one after another, each on an ``align_mib`` boundary;
    ``boot_code`` goes at the start of the protective MBR (BIOS boot: syslinux's gptmbr.bin)."""
    if align_mib < 1:
        raise UserError(f"align_mib={align_mib}: the alignment must be at least 1 MiB")
    if len(boot_code) > MBR_CODE_SIZE:
        raise UserError(f"MBR boot code of {len(boot_code)} bytes: at most {MBR_CODE_SIZE} fit before the "
                        "partition table", hint="pass syslinux's gptmbr.bin (440 bytes)")
    align = align_mib * (1 << 20) // SECTOR
    check_partitions([p for p, _ in sized], disk_guid=disk_guid)
    entries: list[Entry] = []
    lba = _round_up(HEAD_SECTORS, align)
    for part, size in sized:
        sectors = max(_round_up(size, align * SECTOR) // SECTOR, align)
        entries.append(Entry(name=part.name, type_guid=part.type_guid, guid=part.guid,
                             first_lba=lba, last_lba=lba + sectors - 1, attributes=part.attributes))
        lba += sectors
    return Table(disk_guid=disk_guid, sectors=_round_up(lba + TAIL_SECTORS, align), entries=tuple(entries),
                 boot_code=boot_code)


# ---------------------------------------------------------------- encoding (pure)


def encode_entries(table: Table) -> bytes:
    """The 128-entry array (16 KiB), unused slots zero."""
    out = bytearray(ENTRY_COUNT * ENTRY_SIZE)
    for i, e in enumerate(table.entries):
        name = e.name.encode("utf-16-le")
        ENTRY.pack_into(out, i * ENTRY_SIZE, e.type_guid.bytes_le, e.guid.bytes_le, e.first_lba, e.last_lba,
                        e.attributes, name)
    return bytes(out)


def encode_header(table: Table, entries_crc: int, *, backup: bool) -> bytes:
    """One header sector; the backup swaps its own and the other header's LBA and points at its array."""
    last = table.sectors - 1
    my_lba, alternate, array_lba = (last, 1, table.last_usable + 1) if backup else (1, last, 2)

    def pack(crc: int) -> bytes:
        return HEADER.pack(SIGNATURE, REVISION, HEADER.size, crc, 0, my_lba, alternate, table.first_usable,
                           table.last_usable, table.disk_guid.bytes_le, array_lba, ENTRY_COUNT, ENTRY_SIZE,
                           entries_crc)

    header = pack(0)
    return pack(zlib.crc32(header)).ljust(SECTOR, b"\0")


def encode_mbr(table: Table) -> bytes:
    """The protective MBR: the table's boot code, then one partition of type 0xEE covering the disk (or the
    first 2 TiB of it). The disk signature stays zero and the entry inactive, as the UEFI specification says."""
    size = min(table.sectors - 1, 0xFFFFFFFF)
    part = MBR_PART.pack(0x00, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1, size)
    return table.boot_code.ljust(446, b"\0") + part + bytes(48) + b"\x55\xaa"


def encode_head(table: Table) -> bytes:
    """LBA 0 to 33: protective MBR, primary header, primary entry array."""
    entries = encode_entries(table)
    return encode_mbr(table) + encode_header(table, zlib.crc32(entries), backup=False) + entries


def encode_tail(table: Table) -> bytes:
    """The last 33 sectors: backup entry array, backup header."""
    entries = encode_entries(table)
    return entries + encode_header(table, zlib.crc32(entries), backup=True)


# ---------------------------------------------------------------- decoding (pure)


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    my_lba: int
    alternate_lba: int
    first_usable: int
    last_usable: int
    disk_guid: uuid.UUID
    array_lba: int
    entry_count: int
    entry_size: int
    entries_crc: int


def decode_header(sector: bytes, *, where: str) -> Header:
    """Parse and check one header sector (signature, revision, size, CRC)."""
    if len(sector) < HEADER.size:
        raise InvalidDiskImage(f"{where}: the disk is too short to hold a GPT header")
    (sig, rev, size, crc, _res, my_lba, alternate, first, last, guid, array_lba, count, entry_size,
     entries_crc) = HEADER.unpack_from(sector)
    if sig != SIGNATURE:
        raise InvalidDiskImage(f"{where}: no GPT signature (found {sig!r})", hint="is this a GPT disk image?")
    if rev != REVISION or size != HEADER.size:
        raise InvalidDiskImage(f"{where}: unsupported GPT revision {rev:#x} or header size {size}")
    expected = zlib.crc32(sector[:16] + b"\0\0\0\0" + sector[20:HEADER.size])
    if crc != expected:
        raise InvalidDiskImage(f"{where}: header CRC32 is {crc:#010x}, the header's bytes give {expected:#010x}",
                               hint="the header is damaged")
    if entry_size != ENTRY_SIZE or not 0 < count <= 4096:
        raise InvalidDiskImage(f"{where}: {count} entries of {entry_size} bytes: only {ENTRY_SIZE}-byte entries "
                               "are supported")
    return Header(my_lba=my_lba, alternate_lba=alternate, first_usable=first, last_usable=last,
                  disk_guid=uuid.UUID(bytes_le=guid), array_lba=array_lba, entry_count=count,
                  entry_size=entry_size, entries_crc=entries_crc)


def decode_entries(array: bytes, header: Header, *, where: str) -> tuple[Entry, ...]:
    """Check the array's CRC and return its used entries, in slot order."""
    data = array[:header.entry_count * ENTRY_SIZE]
    crc = zlib.crc32(data)
    if crc != header.entries_crc:
        raise InvalidDiskImage(f"{where}: entry array CRC32 is {crc:#010x}, the header says "
                               f"{header.entries_crc:#010x}", hint="the partition entries are damaged")
    entries: list[Entry] = []
    for i in range(header.entry_count):
        type_le, guid_le, first, last, attrs, name = ENTRY.unpack_from(data, i * ENTRY_SIZE)
        if type_le == bytes(16):
            continue
        if not header.first_usable <= first <= last <= header.last_usable:
            raise InvalidDiskImage(f"{where}: entry {i + 1} spans LBA {first}-{last}, outside the usable "
                                   f"{header.first_usable}-{header.last_usable}")
        if any(e.first_lba <= last and first <= e.last_lba for e in entries):
            raise InvalidDiskImage(f"{where}: entry {i + 1} (LBA {first}-{last}) overlaps another partition")
        entries.append(Entry(name=name.decode("utf-16-le").split("\0", 1)[0], type_guid=uuid.UUID(bytes_le=type_le),
                             guid=uuid.UUID(bytes_le=guid_le), first_lba=first, last_lba=last, attributes=attrs))
    return tuple(entries)


def check_mbr(sector: bytes) -> None:
    if len(sector) < SECTOR or sector[510:512] != b"\x55\xaa":
        raise InvalidDiskImage("LBA 0: no MBR boot signature 0x55AA", hint="is this a GPT disk image?")
    types_ = [sector[446 + 16 * i + 4] for i in range(4)]
    if 0xEE not in types_:
        raise InvalidDiskImage(f"LBA 0: no protective MBR partition (type 0xEE); types are {types_}")


def check_pair(primary: Header, backup: Header, *, sectors: int) -> None:
    """The backup header must mirror the primary one and sit in the disk's last sector."""
    last = sectors - 1
    problems = []
    if primary.my_lba != 1 or primary.alternate_lba != last:
        problems.append(f"the primary header says it is at LBA {primary.my_lba} with its backup at "
                        f"{primary.alternate_lba}; the disk's last LBA is {last}")
    if backup.my_lba != last or backup.alternate_lba != 1:
        problems.append(f"the backup header says it is at LBA {backup.my_lba} with the primary at "
                        f"{backup.alternate_lba}")
    for name in ("first_usable", "last_usable", "disk_guid", "entry_count", "entries_crc"):
        if getattr(primary, name) != getattr(backup, name):
            problems.append(f"{name} differs: primary {getattr(primary, name)}, backup {getattr(backup, name)}")
    array = -(-primary.entry_count * ENTRY_SIZE // SECTOR)
    if not (2 <= primary.array_lba <= primary.first_usable - array
            and primary.last_usable < backup.array_lba and backup.array_lba + array <= last):
        problems.append(f"the entry arrays at LBA {primary.array_lba} and {backup.array_lba} overlap the headers "
                        f"or the usable LBAs {primary.first_usable}-{primary.last_usable}")
    if problems:
        raise InvalidDiskImage("the primary and backup GPT headers disagree: " + "; ".join(problems),
                               hint="the disk was truncated, grown or damaged")


# ---------------------------------------------------------------- files


def _copy_image(src: Path, size: int, dst: IO[bytes]) -> None:
    """Copy exactly ``size`` bytes of ``src`` at ``dst``'s position; all-zero chunks become holes."""
    zero = bytes(CHUNK)
    left = size
    with src.open("rb") as f:
        while left:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                raise UserError(f"{src}: the image shrank while it was being copied into the disk")
            if chunk == zero[:len(chunk)]:
                dst.seek(len(chunk), 1)
            else:
                dst.write(chunk)
            left -= len(chunk)
        if f.read(1):
            raise UserError(f"{src}: the image grew while it was being copied into the disk")


def _image_sizes(partitions: Sequence[Partition]) -> list[tuple[Partition, int]]:
    errors: list[ComposerError] = []
    sized = []
    for p in partitions:
        if p.image is None:
            sized.append((p, p.size))
        elif not p.image.is_file():
            errors.append(UserError(f"partition '{p.name}': its image {p.image} is not a file"))
        elif p.image.stat().st_size > p.size > 0:
            errors.append(UserError(f"partition '{p.name}': its image {p.image} ({p.image.stat().st_size} bytes) is "
                                    f"larger than the partition's {p.size} bytes",
                                    hint="give the partition more room (disk option slot-size)"))
        else:
            sized.append((p, max(p.size, p.image.stat().st_size)))
    if errors:
        raise combine(errors, summary="the disk's partition images are missing:")
    return sized


def write_gpt(out: Path, partitions: Sequence[Partition], *, disk_guid: uuid.UUID, align_mib: int = 1,
              boot_code: bytes = b"") -> None:
    """Write a GPT disk image at ``out`` (atomically) holding ``partitions`` in order (and ``boot_code`` in
    the protective MBR)."""
    sized = _image_sizes(partitions)
    table = plan_table(sized, disk_guid=disk_guid, align_mib=align_mib, boot_code=boot_code)
    with atomic_output(out) as f:
        f.write(encode_head(table))
        for (part, _size), entry in zip(sized, table.entries, strict=True):
            if part.image is not None:
                f.seek(entry.offset)
                _copy_image(part.image, part.image.stat().st_size, f)
        f.seek((table.sectors - TAIL_SECTORS) * SECTOR)
        f.write(encode_tail(table))


def read_table(path: Path) -> Table:
    """Read and check a GPT disk: protective MBR, both headers, both arrays, all CRCs."""
    size = path.stat().st_size
    if size % SECTOR or size < (HEAD_SECTORS + TAIL_SECTORS) * SECTOR:
        raise InvalidDiskImage(f"{path}: {size} bytes is not a whole number of sectors large enough for a GPT")
    sectors = size // SECTOR
    with path.open("rb") as f:
        head = f.read(2 * SECTOR)
        check_mbr(head[:SECTOR])
        code = head[:MBR_CODE_SIZE]
        primary = decode_header(head[SECTOR:], where=f"{path}: primary header (LBA 1)")
        f.seek(primary.array_lba * SECTOR)
        entries = decode_entries(f.read(primary.entry_count * ENTRY_SIZE), primary,
                                 where=f"{path}: primary entries")
        f.seek((sectors - 1) * SECTOR)
        backup = decode_header(f.read(SECTOR), where=f"{path}: backup header (LBA {sectors - 1})")
        check_pair(primary, backup, sectors=sectors)
        f.seek(backup.array_lba * SECTOR)
        if decode_entries(f.read(backup.entry_count * ENTRY_SIZE), backup,
                          where=f"{path}: backup entries") != entries:
            raise InvalidDiskImage(f"{path}: the backup entry array differs from the primary one")
    return Table(disk_guid=primary.disk_guid, sectors=sectors, entries=entries,
                 boot_code=code if any(code) else b"")


def read_gpt(path: Path) -> list[Entry]:
    """The used partition entries of a checked GPT disk image, in slot order."""
    return list(read_table(path).entries)
