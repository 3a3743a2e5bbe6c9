"""The ISO builder: bit-for-bit reproducible (two directories, two time zones), reopened and checked with
pycdlib, and booted in QEMU (BIOS, as a CD and as a disk) from the sample x86_64 packages."""

from __future__ import annotations

import calendar
import contextlib
import importlib
import io
import os
import shutil
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pycdlib
import pytest

from composer.boot.machine import watch
from composer.errors import UserError
from composer.fsutil import atomic_output
from composer.image.formats import iso
from composer.image.formats.cpio import entries_from_tree, write_cpio
from composer.image.workshop import DEVICES
from composer.package.archive import read_header
from composer.package.extract import extract_package
from composer.rootfs import Root
from composer.run import run
from composer.trust.keys import load_public_key
from tests.conftest import REPO
from tests.integration.images_fixture import ISO_BOOT_TIMEOUT

pytestmark = pytest.mark.integration

SAMPLE_KEY = REPO / "keys" / "sample" / "INSECURE-SAMPLE-developer.pub"
EPOCH = 1700000000
CMDLINE = "console=ttyS0 quiet panic=-1 vcomp.poweroff=1"
ISOLINUX_CFG = f"""DEFAULT veridian
PROMPT 0
TIMEOUT 0
LABEL veridian
  KERNEL /boot/vmlinuz
  APPEND initrd=/boot/initrd.img {CMDLINE}
"""
QEMU = ["qemu-system-x86_64", "-m", "512M", "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot"]
SECTOR = 512


@dataclass(frozen=True, slots=True, kw_only=True)
class Inputs:
    files: dict[str, Path]     # ISO path -> host file
    bios: iso.BiosBoot
    esp: Path                  # a 2 MiB FAT image holding EFI/BOOT/BOOTX64.EFI
    big_esp: Path              # a 40 MiB one: over the 16-bit El Torito sector count


@pytest.fixture(scope="module")
def inputs(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    packages = sample_repo_base / "images" / "packages" / "x86_64"
    work = tmp_path_factory.mktemp("iso-inputs")
    key = load_public_key(SAMPLE_KEY)
    pkgs = {read_header(p).metadata.name: p for p in sorted(packages.glob("*.vpk"))}
    for name in ("isolinux", "linux"):
        (work / name).mkdir()
        extract_package(pkgs[name], work / name, trusted=key)
    with Root.open(work / "root", create=True) as tree:  # a bare root: the packages and init's empty lists
        for name in ("base-files", "busybox", "busybox-sysv", "init"):
            extract_package(pkgs[name], tree, trusted=key)
        tree.makedirs("etc/veridian/checks.d")
        tree.write_text("etc/veridian/modules.load", "")
        tree.write_text("etc/veridian/capabilities", "")
    with atomic_output(work / "initrd.img") as f:
        write_cpio(entries_from_tree(work / "root", devices=DEVICES), f, EPOCH)
    lib = work / "isolinux" / "usr" / "lib"
    bios = iso.BiosBoot(isolinux_bin=lib / "ISOLINUX" / "isolinux.bin",
                        ldlinux_c32=lib / "syslinux" / "modules" / "bios" / "ldlinux.c32",
                        config=ISOLINUX_CFG, isohdpfx=lib / "ISOLINUX" / "isohdpfx.bin")
    return Inputs(files={"/boot/vmlinuz": work / "linux" / "boot" / "vmlinuz", "/boot/initrd.img": work / "initrd.img"},
                  bios=bios, esp=make_esp(work / "esp.img", 2048), big_esp=make_esp(work / "big-esp.img", 40960))


def make_esp(path: Path, kib: int) -> Path:
    """A FAT image with EFI/BOOT/BOOTX64.EFI (a stand-in: this test does not boot UEFI)."""
    stub = path.with_suffix(".efi")
    stub.write_bytes(b"MZ not really an EFI application\n")
    env = {"MTOOLS_SKIP_CHECK": "1"}
    run(["mkfs.fat", "-C", path, str(kib)])
    run(["mmd", "-i", path, "::/EFI", "::/EFI/BOOT"], env=env)
    run(["mcopy", "-i", path, stub, "::/EFI/BOOT/BOOTX64.EFI"], env=env)
    return path


@contextlib.contextmanager
def time_zone(tz: str) -> Iterator[None]:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = tz
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


def copy_to(directory: Path, host: Path) -> Path:
    """``host`` copied into ``directory`` with another modification time."""
    directory.mkdir(parents=True, exist_ok=True)
    dest = directory / host.name
    shutil.copyfile(host, dest)
    os.utime(dest, (EPOCH + 12345, EPOCH + 12345))
    return dest


def build_twice(inputs: Inputs, tmp: Path, *, esp: Path | None = None, bios: bool = True,
                hybrid: bool = True) -> tuple[Path, Path]:
    """Build in two directories from two copies of the inputs, in two time zones (UTC+05:45 and UTC-10)."""
    outs = []
    for name, tz in (("a", "XYZ-5:45"), ("b", "HST10")):
        there = tmp / name / "in"
        b = inputs.bios
        bios_boot = replace(b, isolinux_bin=copy_to(there, b.isolinux_bin), ldlinux_c32=copy_to(there, b.ldlinux_c32),
                            isohdpfx=copy_to(there, b.isohdpfx) if b.isohdpfx else None)
        with time_zone(tz):
            iso.make_iso(tmp / name / "out.iso", files={k: copy_to(there, v) for k, v in inputs.files.items()},
                         volume_id="VERIDIAN", epoch=EPOCH, bios=bios_boot if bios else None,
                         efi_image=copy_to(there, esp) if esp else None, hybrid=hybrid)
        outs.append(tmp / name / "out.iso")
    return outs[0], outs[1]


@pytest.fixture(scope="module")
def bios_iso(inputs: Inputs, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_twice(inputs, tmp_path_factory.mktemp("bios-iso"))


@contextlib.contextmanager
def opened(path: Path) -> Iterator[Any]:
    image = pycdlib.PyCdlib()
    image.open(str(path))
    try:
        yield image
    finally:
        image.close()


def seconds(date: Any) -> int:
    """Seconds since 1970 of a pycdlib directory record date or volume descriptor date."""
    year = date.year if hasattr(date, "year") else 1900 + date.years_since_1900
    day = date.dayofmonth if hasattr(date, "dayofmonth") else date.day_of_month
    offset: int = date.gmtoffset * 900
    return calendar.timegm((year, date.month, day, date.hour, date.minute, date.second)) - offset


def all_dates(image: Any) -> set[int]:
    """Every date on the image: volume descriptors, directory records and Rock Ridge TF entries (both trees)."""
    vds = [image.pvd, image.joliet_vd]
    found = {seconds(getattr(vd, f)) for vd in vds for f in ("volume_creation_date", "volume_modification_date",
                                                               "volume_effective_date")}

    def walk(**where: str) -> None:
        key, path = next(iter(where.items()))
        for rec in image.list_children(**where):
            found.add(seconds(rec.date))
            tf = rec.rock_ridge.dr_entries.tf_record if rec.rock_ridge else None
            if tf is not None:
                found.update(seconds(t) for t in (tf.access_time, tf.modification_time, tf.attribute_change_time)
                             if t is not None)
            name = rec.file_identifier().decode("utf-16_be" if key == "joliet_path" else "ascii")
            if rec.is_dir() and name not in (".", ".."):
                walk(**{key: f"{path.rstrip('/')}/{name}"})
    walk(iso_path="/")
    walk(joliet_path="/")
    return found


def gpt(image: bytes, lba: int) -> tuple[int, int, bytes, list[tuple[int, int, bytes]]]:
    """(this LBA, backup LBA, disk GUID, [(first, last, GUID)]) of the GPT header at ``lba``, checking both CRCs."""
    header = image[lba * SECTOR:lba * SECTOR + 92]
    assert header[:8] == b"EFI PART"
    crc = struct.unpack_from("<I", header, 16)[0]
    assert zlib.crc32(header[:16] + bytes(4) + header[20:]) == crc, "GPT header CRC"
    current, backup = struct.unpack_from("<QQ", header, 24)
    table_lba, count, size, table_crc = struct.unpack_from("<QIII", header, 72)
    table = image[table_lba * SECTOR:table_lba * SECTOR + count * size]
    assert zlib.crc32(table) == table_crc, "GPT partition entry array CRC"
    parts = [(*struct.unpack_from("<QQ", table, i + 32), table[i + 16:i + 32])
             for i in range(0, len(table), size) if table[i:i + 16] != bytes(16)]
    return current, backup, header[56:72], parts


def mbr_partitions(image: bytes) -> list[tuple[int, int, int, int]]:
    """(boot flag, type, start, sectors) of the used MBR entries."""
    assert image[510:512] == b"\x55\xaa"
    entries = [struct.unpack_from("<B3xB3xII", image, 446 + 16 * i) for i in range(4)]
    return [e for e in entries if e[3]]


def test_bios_hybrid_iso_is_bit_for_bit_reproducible(bios_iso: tuple[Path, Path]) -> None:
    a, b = bios_iso
    assert a.read_bytes() == b.read_bytes()
    with opened(a) as image:
        assert all_dates(image) == {EPOCH}


def test_bios_iso_has_the_files_and_the_el_torito_entry(inputs: Inputs, bios_iso: tuple[Path, Path]) -> None:
    a, _ = bios_iso
    expected = {**{p: h.read_bytes() for p, h in inputs.files.items()},
                "/isolinux/isolinux.cfg": ISOLINUX_CFG.encode(),
                "/isolinux/ldlinux.c32": inputs.bios.ldlinux_c32.read_bytes()}
    with opened(a) as image:
        for path, data in expected.items():
            for where in ("rr_path", "joliet_path"):
                out = _read(image, **{where: path})
                assert out == data, f"{where} {path}"
        assert image.get_record(rr_path="/boot/vmlinuz").file_identifier() == b"VMLINUZ.;1"
        catalog = image.eltorito_boot_catalog
        assert catalog.validation_entry.platform_id == 0
        assert catalog.initial_entry.sector_count == 4 and catalog.sections == []
        assert catalog.initial_entry.inode == image.get_record(rr_path="/isolinux/isolinux.bin").inode
        assert image.get_record(rr_path="/isolinux/boot.cat") is not None
        assert image.isohybrid_mbr is not None and not image.isohybrid_mbr.efi
    raw = a.read_bytes()
    assert inputs.bios.isohdpfx is not None
    assert raw[:432] == inputs.bios.isohdpfx.read_bytes()
    assert mbr_partitions(raw) == [(0x80, 0x17, 0, len(raw) // SECTOR)]


def _read(image: Any, **where: str) -> bytes:
    buf = io.BytesIO()
    image.get_file_from_iso_fp(buf, **where)
    return buf.getvalue()


@pytest.mark.parametrize("medium", ["cdrom", "disk"])
def test_bios_iso_boots_in_qemu(medium: str, bios_iso: tuple[Path, Path], tmp_path: Path) -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("qemu-system-x86_64 is missing: run scripts/setup.sh")
    a, _ = bios_iso
    drive = ["-cdrom", str(a)] if medium == "cdrom" else ["-drive", f"file={a},format=raw,if=ide,snapshot=on"]
    result = watch([*QEMU, *drive], ["VCOMP-BOOT: init started", "VCOMP-BOOT: ready"], timeout=ISO_BOOT_TIMEOUT,
                   log_path=tmp_path / "console.log")  # the console watcher of `vcomp boot`
    assert result.passed and not result.timed_out, f"missing {result.missing}; console tail:\n{result.tail()}"


@pytest.mark.parametrize("esp", ["small", "big"])
def test_efi_entry_and_hybrid_partitions(esp: str, inputs: Inputs, tmp_path: Path) -> None:
    esp_path = inputs.esp if esp == "small" else inputs.big_esp
    a, b = build_twice(inputs, tmp_path, esp=esp_path)
    raw = a.read_bytes()
    assert raw == b.read_bytes()
    sectors = esp_path.stat().st_size // SECTOR
    with opened(a) as image:
        catalog = image.eltorito_boot_catalog
        assert catalog.validation_entry.platform_id == 0 and catalog.initial_entry.sector_count == 4
        [section] = catalog.sections
        [entry] = section.section_entries
        assert section.platform_id == 0xEF
        assert entry.sector_count == (sectors if sectors <= 0xFFFF else 1)
        assert entry.inode == image.get_record(rr_path=iso.EFI_IMAGE_PATH).inode
        assert _read(image, rr_path=iso.EFI_IMAGE_PATH) == esp_path.read_bytes()
        assert all_dates(image) == {EPOCH}
        start = entry.load_rba * 4
    # MBR: the whole image (type 0 with EFI, as isohybrid does), then the ESP; GPT: the same, valid, twice
    assert mbr_partitions(raw) == [(0x80, 0, 0, len(raw) // SECTOR), (0, 0xEF, start, sectors)]
    current, backup, disk, parts = gpt(raw, 1)
    assert (current, backup) == (1, len(raw) // SECTOR - 1)
    assert gpt(raw, backup) == (backup, 1, disk, parts)
    assert parts[1][:2] == (start, start + sectors - 1)
    assert run(["sfdisk", "--json", a]).returncode == 0


def test_an_efi_only_image_is_a_uefi_cd(inputs: Inputs, tmp_path: Path) -> None:
    """The aarch64 shape: no BIOS, not hybrid; the FAT image is the initial (and only) El Torito entry."""
    a, b = build_twice(inputs, tmp_path, esp=inputs.esp, bios=False, hybrid=False)
    raw = a.read_bytes()
    assert raw == b.read_bytes()
    assert raw[:32768] == bytes(32768)   # no MBR: the system area is empty
    with opened(a) as image:
        catalog = image.eltorito_boot_catalog
        assert catalog.validation_entry.platform_id == 0xEF and catalog.sections == []
        assert catalog.initial_entry.sector_count == inputs.esp.stat().st_size // SECTOR
        assert image.get_record(rr_path="/EFI/boot.cat") is not None
        assert _read(image, joliet_path="/boot/initrd.img") == inputs.files["/boot/initrd.img"].read_bytes()


def test_bad_options_and_files_are_all_reported_at_once(inputs: Inputs, tmp_path: Path) -> None:
    files = {"boot/vmlinuz": inputs.files["/boot/vmlinuz"], "/isolinux/isolinux.bin": inputs.esp,
             "/missing": tmp_path / "nope", "/a:b": inputs.esp, "/boot": inputs.esp, "/boot/x": inputs.esp}
    with pytest.raises(UserError) as exc:
        iso.make_iso(tmp_path / "x.iso", files=files, volume_id="veridian live", epoch=-1, bios=inputs.bios,
                     efi_image=None, hybrid=True)
    for fact in ("volume id 'veridian live'", "epoch -1", "'boot/vmlinuz' is not an absolute path",
                 "/isolinux/isolinux.bin is given twice", f"{tmp_path / 'nope'}",
                 "the name 'a:b' cannot be stored in Joliet", "/boot is a file and also a directory"):
        assert fact in exc.value.message
    with pytest.raises(UserError, match="hybrid ISO needs BIOS boot") as exc:
        iso.make_iso(tmp_path / "x.iso", files={}, volume_id="VERIDIAN", epoch=EPOCH, bios=None,
                     efi_image=inputs.esp, hybrid=True)
    assert "hybrid=False" in exc.value.hint
    assert list(tmp_path.iterdir()) == []


def test_iso9660_names_are_unique_d_characters() -> None:
    names = iso.iso9660_names(["/boot/vmlinuz", "/boot/initrd.img", "/a-b", "/a_b", "/A_B", "/x.tar.gz",
                               "/boot.", "/.hidden", "/efi/BOOT/bootx64.efi", "/" + "n" * 40 + ".longextension"])
    assert names == {
        "/A_B": "/A_B.;1", "/a-b": "/A_B_1.;1", "/a_b": "/A_B_2.;1", "/x.tar.gz": "/X_TAR.GZ;1",
        "/boot": "/BOOT", "/boot.": "/BOOT_1.;1", "/boot/initrd.img": "/BOOT/INITRD.IMG;1",
        "/boot/vmlinuz": "/BOOT/VMLINUZ.;1", "/.hidden": "/_HIDDEN.;1", "/efi": "/EFI", "/efi/BOOT": "/EFI/BOOT",
        "/efi/BOOT/bootx64.efi": "/EFI/BOOT/BOOTX64.EFI;1",
        "/" + "n" * 40 + ".longextension": "/" + "N" * 22 + ".LONGEXTE;1"}


def test_the_pinned_clock_is_restored() -> None:
    modules = [importlib.import_module(name) for name in iso.CLOCK_MODULES]
    with iso.pinned_clock(EPOCH):
        clocks = [getattr(m, "time") for m in modules]  # noqa: B009 (not exported)
        assert {c.time() for c in clocks} == {EPOCH}
        assert {c.localtime() for c in clocks} == {time.gmtime(EPOCH)}
    assert all(getattr(m, "time") is time for m in modules)  # noqa: B009
