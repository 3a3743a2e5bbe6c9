"""Unified kernel images from the real systemd EFI stubs of the sample packages.

The headers are read back here with their own small struct reads (not through composer.image.formats.pe), the
checksum is compared with a plain word-by-word implementation and with the one binutils wrote into the
x86_64 stub, and objdump must list the new sections. Booting a UKI is an integration matter (QEMU).
"""

from __future__ import annotations

import hashlib
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import InvalidPackage, UserError
from composer.image.formats.pe import InvalidPE, Section, make_uki, pe_checksum, pe_sections
from composer.package.extract import extract_package
from composer.run import run

pytestmark = pytest.mark.integration

STUBS = {"x86_64": "linuxx64.efi.stub", "aarch64": "linuxaa64.efi.stub"}
MACHINES = {"x86_64": 0x8664, "aarch64": 0xAA64}
UKI_SECTIONS = [".osrel", ".cmdline", ".linux", ".initrd"]
OSREL = 'NAME="Veridian"\nID=veridian\nVERSION_ID=0.1\n'


def noise(label: str, size: int) -> bytes:
    """Deterministic, incompressible test bytes."""
    blocks = (hashlib.sha256(f"{label}:{i}".encode()).digest() for i in range(size // 32 + 1))
    return b"".join(blocks)[:size]


@dataclass(frozen=True, slots=True, kw_only=True)
class Payloads:
    linux: bytes
    initrd: bytes
    cmdline: str
    osrel: str

    def build(self, stub: bytes) -> bytes:
        return make_uki(stub, linux=self.linux, initrd=self.initrd, cmdline=self.cmdline, osrel=self.osrel)

    def by_section(self) -> dict[str, bytes]:
        return {".osrel": self.osrel.encode(), ".cmdline": self.cmdline.encode(), ".linux": self.linux,
                ".initrd": self.initrd}


PAYLOADS = Payloads(linux=noise("linux", 1_234_567), initrd=noise("initrd", 345_679),
                    cmdline="console=ttyS0 panic=-1 vcomp.poweroff=1", osrel=OSREL)


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """The header fields the tests check, read independently of the module under test."""

    pe: int
    machine: int
    sections: int
    timestamp: int
    magic: int
    section_alignment: int
    file_alignment: int
    size_of_image: int
    size_of_headers: int
    checksum: int
    security: tuple[int, int]

    @property
    def checksum_offset(self) -> int:
        return self.pe + 24 + 64

    @classmethod
    def read(cls, image: bytes) -> Header:
        (pe,) = struct.unpack_from("<I", image, 0x3C)
        machine, sections, timestamp = struct.unpack_from("<HHI", image, pe + 4)
        opt = pe + 24
        (magic,) = struct.unpack_from("<H", image, opt)
        salign, falign = struct.unpack_from("<II", image, opt + 32)
        size_of_image, size_of_headers, checksum = struct.unpack_from("<III", image, opt + 56)
        security = struct.unpack_from("<II", image, opt + 112 + 4 * 8)
        return cls(pe=pe, machine=machine, sections=sections, timestamp=timestamp, magic=magic,
                   section_alignment=salign, file_alignment=falign, size_of_image=size_of_image,
                   size_of_headers=size_of_headers, checksum=checksum, security=security)


def reference_checksum(image: bytes, field: int) -> int:
    """The PE checksum word by word, as the PE format documents it."""
    data = bytearray(image)
    data[field:field + 4] = bytes(4)
    if len(data) % 2:
        data.append(0)
    total = 0
    for (word,) in struct.iter_unpack("<H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return total + len(image)


def align(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def new_sections(uki: bytes, stub: bytes) -> list[Section]:
    return pe_sections(uki)[len(pe_sections(stub)):]


# ---- the real stubs -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def stubs(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """arch -> the EFI stub from the sample uki-stub package (the session's sample set)."""
    found: dict[str, bytes] = {}
    for arch, name in STUBS.items():
        packages = sorted((sample_repo_base / "images" / "packages" / arch).glob("uki-stub-*.vpk"))
        if packages:
            root = tmp_path_factory.mktemp(f"stub-{arch}")
            extract_package(packages[-1], root)
            found[arch] = (root / "usr" / "lib" / "systemd" / "boot" / "efi" / name).read_bytes()
    return found


@pytest.fixture(scope="session", params=sorted(STUBS))
def arch(request: pytest.FixtureRequest, stubs: dict[str, bytes]) -> str:
    name: str = request.param
    if name not in stubs:
        pytest.skip(f"no sample uki-stub package in images/packages/{name}/ (the integration suite builds them)")
    return name


@pytest.fixture(scope="session")
def stub(arch: str, stubs: dict[str, bytes]) -> bytes:
    return stubs[arch]


@pytest.fixture(scope="session")
def uki(stub: bytes) -> bytes:
    return PAYLOADS.build(stub)


@pytest.fixture(scope="session")
def x86_stub(stubs: dict[str, bytes]) -> bytes:
    if "x86_64" not in stubs:
        pytest.skip("no sample uki-stub package in images/packages/x86_64/ (the integration suite builds them)")
    return stubs["x86_64"]


def test_the_stub_is_what_the_tests_expect(arch: str, stub: bytes) -> None:
    header = Header.read(stub)
    assert (header.magic, header.machine) == (0x20B, MACHINES[arch])
    assert header.security == (0, 0)


# ---- layout ------------------------------------------------------------------------------------------------


def test_sections_hold_the_exact_payloads(stub: bytes, uki: bytes) -> None:
    added = new_sections(uki, stub)
    assert [s.name for s in added] == UKI_SECTIONS
    for section in added:
        data = PAYLOADS.by_section()[section.name]
        assert section.virtual_size == len(data)
        assert uki[section.raw_offset:section.raw_offset + section.virtual_size] == data
        assert uki[section.raw_offset + section.virtual_size:section.raw_offset + section.raw_size].count(0) == \
            section.raw_size - section.virtual_size


def test_the_stub_is_kept(stub: bytes, uki: bytes) -> None:
    assert pe_sections(uki)[:len(pe_sections(stub))] == pe_sections(stub)
    first = min(s.raw_offset for s in pe_sections(stub))
    assert uki[first:len(stub)] == stub[first:]


def test_alignment_rules_hold(stub: bytes, uki: bytes) -> None:
    header = Header.read(uki)
    end = max(max(s.virtual_end for s in pe_sections(stub)), Header.read(stub).size_of_image)
    raw_end = len(stub)
    for section in new_sections(uki, stub):
        assert section.virtual_address % header.section_alignment == 0
        assert section.raw_offset % header.file_alignment == 0
        assert section.raw_size % header.file_alignment == 0
        assert section.raw_size >= section.virtual_size
        assert section.virtual_address >= end
        assert section.raw_offset >= raw_end
        end, raw_end = section.virtual_end, section.raw_offset + section.raw_size
    assert len(uki) == raw_end


def test_header_fields_are_updated(stub: bytes, uki: bytes) -> None:
    header = Header.read(uki)
    last = pe_sections(uki)[-1]
    assert header.sections == len(pe_sections(stub)) + 4
    assert header.size_of_image == align(last.virtual_end, header.section_alignment)
    assert header.size_of_image % header.section_alignment == 0
    assert header.timestamp == 0
    assert header.security == (0, 0)
    assert header.checksum == pe_checksum(uki) == reference_checksum(uki, header.checksum_offset)


def test_building_twice_gives_the_same_bytes(stub: bytes, uki: bytes) -> None:
    assert PAYLOADS.build(stub) == uki
    other = Payloads(linux=PAYLOADS.linux, initrd=PAYLOADS.initrd, cmdline="console=ttyAMA0", osrel=OSREL)
    assert other.build(stub) != uki


def test_empty_payloads_get_no_section(stub: bytes) -> None:
    uki = make_uki(stub, linux=b"kernel", initrd=b"", cmdline="", osrel=OSREL)
    assert [s.name for s in new_sections(uki, stub)] == [".osrel", ".linux"]
    assert Header.read(uki).checksum == pe_checksum(uki)


def test_a_uki_without_a_kernel_is_refused(stub: bytes) -> None:
    with pytest.raises(UserError, match="kernel image is empty"):
        make_uki(stub, linux=b"", initrd=b"x", cmdline="", osrel=OSREL)


@settings(max_examples=25, deadline=None)
@given(linux=st.binary(min_size=1, max_size=5000), initrd=st.binary(max_size=5000),
       cmdline=st.text(max_size=200), osrel=st.text(max_size=200))
def test_any_payloads_are_laid_out_and_read_back(stub: bytes, linux: bytes, initrd: bytes, cmdline: str,
                                                 osrel: str) -> None:
    payloads = Payloads(linux=linux, initrd=initrd, cmdline=cmdline, osrel=osrel)
    uki = payloads.build(stub)
    header = Header.read(uki)
    expected = {name: data for name, data in payloads.by_section().items() if data}
    added = new_sections(uki, stub)
    assert [s.name for s in added] == list(expected)
    for section in added:
        assert uki[section.raw_offset:section.raw_offset + section.virtual_size] == expected[section.name]
        assert section.virtual_address % header.section_alignment == 0
        assert section.raw_offset % header.file_alignment == 0
    assert header.size_of_image >= added[-1].virtual_end
    assert header.checksum == pe_checksum(uki)


# ---- checksum ----------------------------------------------------------------------------------------------


def test_checksum_matches_the_one_binutils_wrote(x86_stub: bytes) -> None:
    # systemd 252's stub (Debian 12) carries the checksum binutils wrote; 257's (Debian 13) leaves the field 0
    written = Header.read(x86_stub).checksum
    assert written in (0, pe_checksum(x86_stub))
    uki = PAYLOADS.build(x86_stub)
    assert Header.read(uki).checksum == pe_checksum(uki) != 0   # ours always writes one


@settings(max_examples=50, deadline=None)
@given(tail=st.binary(max_size=3000))
def test_checksum_matches_the_word_by_word_definition(stub: bytes, tail: bytes) -> None:
    image = stub + tail
    assert pe_checksum(image) == reference_checksum(image, Header.read(image).checksum_offset)


def test_checksum_of_a_sum_that_folds_to_0xffff(stub: bytes) -> None:
    # a tail that makes the word sum a non-zero multiple of 0xffff: the fold gives 0xffff, never 0
    even = stub + bytes(len(stub) % 2)
    header = Header.read(even)
    rest = reference_checksum(even, header.checksum_offset) - len(even)
    filler = (0xFFFF - rest) % 0xFFFF or 0xFFFF
    image = even + struct.pack("<HH", filler, 0)
    assert pe_checksum(image) == reference_checksum(image, header.checksum_offset) == 0xFFFF + len(image)


# ---- host tools ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) is not installed")
def test_objdump_lists_the_new_sections(x86_stub: bytes, tmp_path: Path) -> None:
    uki = PAYLOADS.build(x86_stub)
    path = tmp_path / "uki.efi"
    path.write_bytes(uki)
    listing = run(["objdump", "-h", path]).stdout.decode()
    assert "file format pei-x86-64" in listing
    rows = {f[1]: f for f in (line.split() for line in listing.splitlines()) if len(f) == 7 and f[0].isdigit()}
    # objdump's VMA is ImageBase + RVA (systemd 257's stub has a non-zero ImageBase; PE32+ optional header + 24)
    (pe_offset,) = struct.unpack_from("<I", uki, 0x3C)
    (image_base,) = struct.unpack_from("<Q", uki, pe_offset + 24 + 24)
    for section in new_sections(uki, x86_stub):
        _, _, size, vma, _, offset, _ = rows[section.name]
        assert (int(size, 16), int(vma, 16), int(offset, 16)) == \
            (section.virtual_size, image_base + section.virtual_address, section.raw_offset)


# ---- refused stubs ----------------------------------------------------------------------------------------


def patched(image: bytes, offset: int, fmt: str, *values: int) -> bytes:
    out = bytearray(image)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def opt(stub: bytes) -> int:
    return Header.read(stub).pe + 24


BAD_STUBS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "empty": (lambda s: b"", "no 'MZ' DOS header"),
    "ELF": (lambda s: b"\x7fELF" + s[4:], "no 'MZ' DOS header"),
    "truncated DOS header": (lambda s: s[:0x30], "truncated: the DOS header"),
    "truncated PE header": (lambda s: s[:Header.read(s).pe + 10], "truncated: the PE header"),
    "truncated section table": (lambda s: s[:opt(s) + 120], "truncated"),
    "truncated section data": (lambda s: s[:len(s) // 2], "truncated: section"),
    "no PE signature": (lambda s: patched(s, Header.read(s).pe, "<I", 0x00004C45), "no 'PE' signature"),
    "PE32": (lambda s: patched(s, opt(s), "<H", 0x10B), "PE32 \\(32-bit\\), expected PE32\\+"),
    "unknown magic": (lambda s: patched(s, opt(s), "<H", 0x107), "unknown \\(0x107\\)"),
    "i386 machine": (lambda s: patched(s, Header.read(s).pe + 4, "<H", 0x14C), "machine 0x014c is not one of"),
    "zero FileAlignment": (lambda s: patched(s, opt(s) + 36, "<I", 0), "FileAlignment 0x0 is not a power of two"),
}


@pytest.mark.parametrize("case", sorted(BAD_STUBS))
def test_a_malformed_stub_is_a_clear_error(stub: bytes, case: str) -> None:
    corrupt, message = BAD_STUBS[case]
    with pytest.raises(InvalidPE, match=f"^UKI stub: .*{message}") as info:
        PAYLOADS.build(corrupt(stub))
    assert isinstance(info.value, InvalidPackage)
    assert "linuxx64.efi.stub" in info.value.hint


def test_a_stub_without_header_room_is_refused(stub: bytes) -> None:
    header = Header.read(stub)
    table_end = header.pe + 24 + struct.unpack_from("<H", stub, header.pe + 20)[0] + 40 * header.sections
    cramped = patched(stub, opt(stub) + 60, "<I", table_end + 40)
    with pytest.raises(InvalidPE, match="no room for 4 more section headers") as info:
        PAYLOADS.build(cramped)
    assert "SizeOfHeaders" in info.value.hint


def test_a_signed_stub_gives_the_same_unsigned_uki(stub: bytes, uki: bytes) -> None:
    certificate = struct.pack("<IHH", 16, 0x200, 2) + bytes(8)
    padded = stub + bytes(-len(stub) % 8)
    signed = patched(padded, opt(stub) + 112 + 4 * 8, "<II", len(padded), len(certificate)) + certificate
    assert Header.read(signed).security == (len(padded), len(certificate))
    assert PAYLOADS.build(signed) == PAYLOADS.build(padded)


def test_a_certificate_table_inside_the_sections_is_refused(stub: bytes) -> None:
    inside = pe_sections(stub)[0].raw_offset
    bad = patched(stub, opt(stub) + 112 + 4 * 8, "<II", inside, 16)
    with pytest.raises(InvalidPE, match="certificate table .* is not the file's tail"):
        PAYLOADS.build(bad)


def test_a_data_directory_where_the_new_headers_go_is_refused(stub: bytes) -> None:
    header = Header.read(stub)
    table_end = header.pe + 24 + struct.unpack_from("<H", stub, header.pe + 20)[0] + 40 * header.sections
    bad = patched(stub, opt(stub) + 112 + 1 * 8, "<II", table_end + 8, 16)
    with pytest.raises(InvalidPE, match="data directory 1 .* lies where the new section headers go"):
        PAYLOADS.build(bad)
