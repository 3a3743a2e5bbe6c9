"""Unified kernel images: systemd's EFI stub with the kernel, initrd, command line and os-release appended.

A pure PE32+ writer (bytes in, bytes out, no I/O) for x86_64, aarch64 and riscv64; objcopy knows no pei-aarch64.
It does what ``ukify`` does: each payload becomes a new section after the stub's last one, its virtual
address aligned to SectionAlignment and its raw data to FileAlignment; the headers are updated
(NumberOfSections, SizeOfImage, SizeOfInitializedData, TimeDateStamp 0, CheckSum) and an Authenticode
signature, if any, is dropped, since the result is no longer the signed file. systemd-stub (252 and later)
finds the sections by name, wherever they are.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from composer.arch import PE_MACHINES
from composer.errors import InvalidPackage, UserError

MACHINES: Mapping[int, str] = PE_MACHINES  # machine -> architecture (composer.arch)

_DOS_MAGIC = b"MZ"
_PE_SIGNATURE = b"PE\0\0"
_PE32_PLUS = 0x20B
_PE32 = 0x10B
_SECURITY = 4  # index of the certificate table in the data directories (a file offset, not an RVA)

_LFANEW = struct.Struct("<I")  # at 0x3c in the DOS header: the offset of the PE signature
# The PE signature and the COFF file header: Signature, Machine, NumberOfSections, TimeDateStamp,
# PointerToSymbolTable, NumberOfSymbols, SizeOfOptionalHeader, Characteristics.
_COFF = struct.Struct("<4sHHIIIHH")
_COFF_SECTIONS = 6  # field offsets from the signature
_COFF_TIMESTAMP = 8
_MAGIC = struct.Struct("<H")
# The PE32+ optional header up to the data directories: Magic, SizeOfInitializedData, SectionAlignment,
# FileAlignment, SizeOfImage, SizeOfHeaders, CheckSum, NumberOfRvaAndSizes (the padding is left as it is).
_OPTIONAL = struct.Struct("<H6xI20xII16xIII40xI")
_OPT_INITIALIZED = 8  # field offsets from the optional header
_OPT_SIZE_OF_IMAGE = 56
_OPT_CHECKSUM = 64
_DIRECTORY = struct.Struct("<II")
# Name, VirtualSize, VirtualAddress, SizeOfRawData, PointerToRawData, (relocations, line numbers), Characteristics.
_SECTION = struct.Struct("<8sIIII12xI")

_MEM_READ = 0x40000000
_CNT_CODE = 0x00000020
_CNT_INITIALIZED_DATA = 0x00000040
_U32 = 0xFFFFFFFF

STUB_HINT = ("use systemd's EFI stub for the architecture (linuxx64.efi.stub, linuxaa64.efi.stub or "
             "linuxriscv64.efi.stub from the uki-stub package, built from Debian's systemd-boot-efi)")


class InvalidPE(InvalidPackage):
    """A PE image (the UKI stub) that is malformed or cannot take the UKI sections."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    name: str
    virtual_address: int
    virtual_size: int
    raw_offset: int
    raw_size: int

    @property
    def virtual_end(self) -> int:
        """The first address after the section as loaded (a zero VirtualSize means the raw size)."""
        return self.virtual_address + (self.virtual_size or self.raw_size)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Headers:
    """What the writer needs from a PE32+ image, with the offsets of the fields it rewrites."""

    coff_offset: int
    optional_offset: int
    directories_offset: int
    table_offset: int
    section_alignment: int
    file_alignment: int
    size_of_image: int
    size_of_headers: int
    size_of_initialized_data: int
    directories: tuple[tuple[int, int], ...]  # (address, size) of each data directory
    sections: tuple[Section, ...]

    @property
    def certificates(self) -> tuple[int, int]:
        """(file offset, size) of the Authenticode certificate table; (0, 0) when the image is unsigned."""
        return self.directories[_SECURITY] if len(self.directories) > _SECURITY else (0, 0)


# ---- parsing ----------------------------------------------------------------------------------------------


def _fail(what: str, fact: str) -> InvalidPE:
    return InvalidPE(f"{what}: {fact}", hint=STUB_HINT)


def _unpack(fmt: struct.Struct, image: bytes, offset: int, what: str, part: str) -> tuple[Any, ...]:
    if offset + fmt.size > len(image):
        raise _fail(what, f"truncated: the {part} at offset {offset:#x} needs {fmt.size} bytes, "
                          f"the file has {len(image)}")
    return fmt.unpack_from(image, offset)


def _coff(image: bytes, what: str) -> tuple[int, int, int, int]:
    """(offset of the PE signature, machine, number of sections, size of the optional header)."""
    if image[:2] != _DOS_MAGIC:
        raise _fail(what, f"not a PE image: no 'MZ' DOS header (it starts with {image[:4]!r})")
    (lfanew,) = _unpack(_LFANEW, image, 0x3C, what, "DOS header")
    signature, machine, count, _, _, _, optional_size, _ = _unpack(_COFF, image, lfanew, what, "PE header")
    if signature != _PE_SIGNATURE:
        raise _fail(what, f"not a PE image: no 'PE' signature at offset {lfanew:#x} (found {signature!r})")
    if machine not in MACHINES:
        raise _fail(what, f"machine {machine:#06x} is not one of "
                          + ", ".join(f"{m:#06x} ({a})" for m, a in MACHINES.items()))
    return lfanew, machine, count, optional_size


def _check_alignment(what: str, name: str, value: int) -> None:
    if value <= 0 or value & (value - 1):
        raise _fail(what, f"{name} {value:#x} is not a power of two")


def _directories(image: bytes, offset: int, count: int, what: str) -> tuple[tuple[int, int], ...]:
    return tuple((address, size) for address, size in (
        _unpack(_DIRECTORY, image, offset + i * _DIRECTORY.size, what, f"data directory {i}") for i in range(count)))


def _section_table(image: bytes, offset: int, count: int, what: str) -> tuple[Section, ...]:
    sections = []
    for index in range(count):
        name, vsize, address, raw_size, raw_offset, _ = _unpack(
            _SECTION, image, offset + index * _SECTION.size, what, f"section header {index}")
        section = Section(name=name.rstrip(b"\0").decode("utf-8", "replace"), virtual_address=address,
                          virtual_size=vsize, raw_offset=raw_offset, raw_size=raw_size)
        if section.raw_size and section.raw_offset + section.raw_size > len(image):
            raise _fail(what, f"truncated: section {section.name!r} ends at offset "
                              f"{section.raw_offset + section.raw_size:#x}, the file has {len(image)} bytes")
        sections.append(section)
    return tuple(sections)


def _parse(image: bytes, what: str) -> _Headers:
    lfanew, _, count, optional_size = _coff(image, what)
    opt = lfanew + _COFF.size
    (magic,) = _unpack(_MAGIC, image, opt, what, "optional header")
    if magic != _PE32_PLUS:
        kind = "PE32 (32-bit)" if magic == _PE32 else f"unknown ({magic:#x})"
        raise _fail(what, f"the optional header is {kind}, expected PE32+ (magic 0x20b)")
    if optional_size < _OPTIONAL.size:
        raise _fail(what, f"the optional header is {optional_size} bytes, a PE32+ one has at least {_OPTIONAL.size}")
    _, initialized, section_alignment, file_alignment, size_of_image, size_of_headers, _, rva_count = _unpack(
        _OPTIONAL, image, opt, what, "optional header")
    _check_alignment(what, "SectionAlignment", section_alignment)
    _check_alignment(what, "FileAlignment", file_alignment)
    directories_offset, table = opt + _OPTIONAL.size, opt + optional_size
    directories = min(rva_count, (optional_size - _OPTIONAL.size) // _DIRECTORY.size)
    return _Headers(coff_offset=lfanew, optional_offset=opt, directories_offset=directories_offset,
                    table_offset=table, section_alignment=section_alignment, file_alignment=file_alignment,
                    size_of_image=size_of_image, size_of_headers=size_of_headers,
                    size_of_initialized_data=initialized,
                    directories=_directories(image, directories_offset, directories, what),
                    sections=_section_table(image, table, count, what))


def pe_sections(image: bytes) -> list[Section]:
    """The section table of a PE32+ image for an architecture of composer.arch.PE_MACHINES, in table order."""
    return list(_parse(image, "PE image").sections)


# ---- checksum ---------------------------------------------------------------------------------------------


def _ones_complement_sum(data: bytes) -> int:
    """The 16-bit end-around-carry sum of the little-endian words of ``data`` (an odd tail is zero-padded).

    As 2**16 == 1 (mod 0xffff), the number whose base-65536 digits are the words is congruent to their sum:
    one big-integer remainder replaces a Python loop over millions of words. Folding a non-zero sum never
    gives 0, hence the 0xffff case.
    """
    remainder = int.from_bytes(data, "little") % 0xFFFF
    return 0xFFFF if remainder == 0 and data.count(0) != len(data) else remainder


def pe_checksum(image: bytes) -> int:
    """The PE checksum (imagehlp's CheckSumMappedFile): the folded word sum with CheckSum as 0, plus the length."""
    offset = _coff(image, "PE image")[0] + _COFF.size + _OPT_CHECKSUM
    return (_ones_complement_sum(image[:offset] + bytes(4) + image[offset + 4:]) + len(image)) & _U32


# ---- writing ----------------------------------------------------------------------------------------------


def _align(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def _unsigned(headers: _Headers, image: bytes, what: str) -> bytes:
    """The stub without its certificate table (which must be the file's tail, after all section data)."""
    offset, size = headers.certificates
    if not size:
        return image
    raw_end = max((s.raw_offset + s.raw_size for s in headers.sections), default=headers.size_of_headers)
    if offset < raw_end or offset + size > len(image):
        raise _fail(what, f"the certificate table (at {offset:#x}, {size} bytes) is not the file's tail after "
                          f"the section data (which ends at {raw_end:#x})")
    return image[:offset]


def _check_room(headers: _Headers, count: int, what: str) -> None:
    """The new headers go after the section table, before SizeOfHeaders and the first section's data."""
    start = headers.table_offset + len(headers.sections) * _SECTION.size
    end = start + count * _SECTION.size
    limit = min([headers.size_of_headers, *(s.raw_offset for s in headers.sections if s.raw_size)])
    if end > limit:
        raise InvalidPE(f"{what}: no room for {count} more section headers ({end - start} bytes): the section "
                        f"table ends at {start:#x} and the headers at {limit:#x}",
                        hint="use a stub with more header space (a larger SizeOfHeaders), as systemd 252 and "
                             "later build them")
    for index, (address, size) in enumerate(headers.directories):
        if index != _SECURITY and size and address < end and address + size > start:
            raise _fail(what, f"data directory {index} (at {address:#x}, {size} bytes) lies where the new "
                              f"section headers go ({start:#x}-{end:#x})")


def _place(headers: _Headers, file_end: int, payloads: Mapping[str, bytes]) -> list[Section]:
    """Sections for ``payloads``: after the stub's image in memory and after ``file_end`` in the file."""
    address = _align(max([headers.size_of_image, *(s.virtual_end for s in headers.sections)]),
                     headers.section_alignment)
    offset = _align(file_end, headers.file_alignment)
    sections = []
    for name, data in payloads.items():
        raw_size = _align(len(data), headers.file_alignment)
        sections.append(Section(name=name, virtual_address=address, virtual_size=len(data), raw_offset=offset,
                                raw_size=raw_size))
        address = _align(address + len(data), headers.section_alignment)
        offset += raw_size
    return sections


def _characteristics(name: str) -> int:
    # As ukify: the kernel is marked code (kernels started through the EFI handover protocol run in place).
    return _MEM_READ | (_CNT_CODE if name == ".linux" else _CNT_INITIALIZED_DATA)


def _append(image: bytes, added: list[Section], payloads: Mapping[str, bytes]) -> bytearray:
    out = bytearray(image)
    for section, data in zip(added, payloads.values(), strict=True):
        out += bytes(section.raw_offset - len(out)) + data
    out += bytes(added[-1].raw_offset + added[-1].raw_size - len(out))
    return out


def _write_headers(out: bytearray, headers: _Headers, added: list[Section]) -> None:
    """Add the section headers and update the header fields; CheckSum is left 0."""
    for index, section in enumerate(added, start=len(headers.sections)):
        _SECTION.pack_into(out, headers.table_offset + index * _SECTION.size, section.name.encode(),
                           section.virtual_size, section.virtual_address, section.raw_size, section.raw_offset,
                           _characteristics(section.name))
    coff, opt = headers.coff_offset, headers.optional_offset
    struct.pack_into("<H", out, coff + _COFF_SECTIONS, len(headers.sections) + len(added))
    struct.pack_into("<I", out, coff + _COFF_TIMESTAMP, 0)
    initialized = headers.size_of_initialized_data + sum(s.raw_size for s in added)
    struct.pack_into("<I", out, opt + _OPT_INITIALIZED, initialized & _U32)
    struct.pack_into("<I", out, opt + _OPT_SIZE_OF_IMAGE, _align(added[-1].virtual_end, headers.section_alignment))
    struct.pack_into("<I", out, opt + _OPT_CHECKSUM, 0)
    if headers.certificates != (0, 0):
        _DIRECTORY.pack_into(out, headers.directories_offset + _SECURITY * _DIRECTORY.size, 0, 0)


def _check_size(added: list[Section], alignment: int) -> None:
    size = max(_align(added[-1].virtual_end, alignment), added[-1].raw_offset + added[-1].raw_size)
    if size > _U32:
        raise UserError(f"the UKI would be {size} bytes, more than the 4 GiB a PE32+ image can hold",
                        hint="make the initrd smaller (compress it, or move files to the root file system)")


def make_uki(stub: bytes, *, linux: bytes, initrd: bytes, cmdline: str, osrel: str) -> bytes:
    """A UKI: the systemd EFI stub with .osrel, .cmdline, .linux, .initrd sections appended.

    An empty payload gets no section (systemd-stub treats a missing section as an empty one). The result is
    unsigned, has TimeDateStamp 0 and a valid CheckSum, and depends only on the inputs.
    """
    what = "UKI stub"
    if not linux:
        raise UserError("cannot make a UKI: the kernel image is empty",
                        hint="check that the kernel package provides a non-empty boot/vmlinuz")
    headers = _parse(stub, what)
    payloads = {name: data for name, data in ((".osrel", osrel.encode()), (".cmdline", cmdline.encode()),
                                              (".linux", linux), (".initrd", initrd)) if data}
    _check_room(headers, len(payloads), what)
    base = _unsigned(headers, stub, what)
    added = _place(headers, len(base), payloads)
    _check_size(added, headers.section_alignment)
    out = _append(base, added, payloads)
    _write_headers(out, headers, added)
    struct.pack_into("<I", out, headers.optional_offset + _OPT_CHECKSUM, pe_checksum(bytes(out)))
    return bytes(out)
