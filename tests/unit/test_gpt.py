"""The GPT writer: layout, write-reopen-check, sfdisk's reading, damage detection, determinism."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import UserError
from composer.image.formats import gpt
from composer.run import run

MIB = 1 << 20
DISK = uuid.UUID("6f1c1b7e-4d0a-5b8e-9a51-3d2c0e7f8a90")
ESP_GUID = uuid.UUID("0b5e2a4c-1f3d-5e6a-8b7c-9d0e1f2a3b4c")
ROOT_GUID = uuid.UUID("1c6f3b5d-2a4e-5f7b-9c8d-0e1f2a3b4c5d")
# sha256 of the head and tail of the table in test_encoding_is_pinned: a change here changes every disk image
GOLDEN_HEAD = "2af76c3cfafce2540e513699007c16071de056f2eb2787c1a60479248bab04dd"
GOLDEN_TAIL = "9520445738f15f908439a39c29157f9f66831d3746d49ba6aa24724403fc66b8"


def _image(path: Path, size: int, seed: int) -> Path:
    """A file of ``size`` bytes: a pattern, with a whole MiB of zeros in the middle when it is large enough."""
    data = bytearray(hashlib.shake_256(seed.to_bytes(4, "big")).digest(size))
    if size > 3 * MIB:
        data[MIB:2 * MIB] = bytes(MIB)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def parts(tmp_path: Path) -> list[gpt.Partition]:
    return [gpt.Partition(name="ESP", type_guid=gpt.ESP_TYPE, guid=ESP_GUID,
                          image=_image(tmp_path / "esp.img", 1536 * 1024 + 7, 1)),
            gpt.Partition(name="veridian-root ünï", type_guid=gpt.ROOT_TYPES["x86_64"], guid=ROOT_GUID,
                          image=_image(tmp_path / "root.img", 3 * MIB + 4096, 2))]


def test_layout_aligns_every_partition_and_the_disk(parts: list[gpt.Partition]) -> None:
    empty = gpt.Partition(name="empty", type_guid=gpt.ESP_TYPE, guid=uuid.UUID(int=7), image=Path("unused"))
    table = gpt.plan_table([(parts[0], 1536 * 1024 + 7), (parts[1], 3 * MIB + 4096), (empty, 0)],
                           disk_guid=DISK, align_mib=2)
    starts = [(e.first_lba, e.last_lba) for e in table.entries]
    assert starts == [(4096, 8191), (8192, 16383), (16384, 20479)]  # 2 MiB units, an empty image gets one
    assert table.sectors == 24576 and table.last_usable == 24576 - 34  # the backup fits in the last unit
    assert table.first_usable == 34


def test_write_reopen_check(tmp_path: Path, parts: list[gpt.Partition]) -> None:
    disk = tmp_path / "disk.raw"
    gpt.write_gpt(disk, parts, disk_guid=DISK)
    table = gpt.read_table(disk)
    assert table.disk_guid == DISK and disk.stat().st_size == table.sectors * 512
    assert disk.stat().st_size % MIB == 0
    assert [(e.name, e.type_guid, e.guid) for e in gpt.read_gpt(disk)] == [(p.name, p.type_guid, p.guid)
                                                                           for p in parts]
    data = disk.read_bytes()
    for part, entry in zip(parts, table.entries, strict=True):
        image = part.image.read_bytes()
        assert entry.offset % MIB == 0 and entry.size >= len(image) and entry.size % MIB == 0
        assert data[entry.offset:entry.offset + len(image)] == image
        assert data[entry.offset + len(image):entry.offset + entry.size] == bytes(entry.size - len(image))
    mbr = data[:512]
    assert mbr[510:] == b"\x55\xaa" and mbr[446 + 4] == 0xEE
    assert int.from_bytes(mbr[446 + 12:446 + 16], "little") == table.sectors - 1


def test_sfdisk_reads_the_same_table(tmp_path: Path, parts: list[gpt.Partition]) -> None:
    if shutil.which("sfdisk") is None:
        pytest.skip("sfdisk is not installed (apt-get install fdisk)")
    disk = tmp_path / "disk.raw"
    gpt.write_gpt(disk, parts, disk_guid=DISK)
    table = json.loads(run(["sfdisk", "--json", disk]).stdout)["partitiontable"]
    assert table["label"] == "gpt" and uuid.UUID(table["id"]) == DISK and table["sectorsize"] == 512
    assert (table["firstlba"], table["lastlba"]) == (34, gpt.read_table(disk).last_usable)
    got = [(p["start"], p["size"], uuid.UUID(p["type"]), uuid.UUID(p["uuid"]), p["name"]) for p in table["partitions"]]
    assert got == [(e.first_lba, e.last_lba - e.first_lba + 1, e.type_guid, e.guid, e.name)
                   for e in gpt.read_gpt(disk)]
    verify = run(["sfdisk", "--verify", disk], check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.parametrize(("offset", "message"), [
    (512 + 60, "primary header (LBA 1): header CRC32"),  # a byte of the disk GUID
    (512 + 0, "no GPT signature"),
    (1024 + 56 + 2, "primary entries: entry array CRC32"),  # a character of the first name
    (-512 + 60, "backup header"),
    (-512 - 16384 + 128 + 40, "backup entries: entry array CRC32"),
])
def test_damage_is_detected(tmp_path: Path, parts: list[gpt.Partition], offset: int, message: str) -> None:
    disk = tmp_path / "disk.raw"
    gpt.write_gpt(disk, parts, disk_guid=DISK)
    data = bytearray(disk.read_bytes())
    data[offset] ^= 0x01
    disk.write_bytes(bytes(data))
    with pytest.raises(gpt.InvalidDiskImage, match=message.replace("(", r"\(").replace(")", r"\)")):
        gpt.read_gpt(disk)


def test_a_grown_disk_is_detected(tmp_path: Path, parts: list[gpt.Partition]) -> None:
    disk = tmp_path / "disk.raw"
    gpt.write_gpt(disk, parts, disk_guid=DISK)
    with disk.open("ab") as f:
        f.write(bytes(MIB))
    with pytest.raises(gpt.InvalidDiskImage, match="no GPT signature|disagree"):
        gpt.read_gpt(disk)


def test_deterministic_in_any_directory(tmp_path: Path, parts: list[gpt.Partition]) -> None:
    disks = []
    for sub in ("a", "b/c"):
        (tmp_path / sub).mkdir(parents=True)
        copies = [gpt.Partition(name=p.name, type_guid=p.type_guid, guid=p.guid,
                                image=Path(shutil.copy(p.image, tmp_path / sub))) for p in parts]
        gpt.write_gpt(tmp_path / sub / "disk.raw", copies, disk_guid=DISK)
        disks.append((tmp_path / sub / "disk.raw").read_bytes())
    assert disks[0] == disks[1]


def test_encoding_is_pinned() -> None:
    table = gpt.Table(disk_guid=DISK, sectors=8192, entries=(
        gpt.Entry(name="ESP", type_guid=gpt.ESP_TYPE, guid=ESP_GUID, first_lba=2048, last_lba=4095),
        gpt.Entry(name="root", type_guid=gpt.ROOT_TYPES["aarch64"], guid=ROOT_GUID, first_lba=4096, last_lba=8158)))
    head, tail = gpt.encode_head(table), gpt.encode_tail(table)
    assert len(head) == 34 * 512 and len(tail) == 33 * 512
    assert hashlib.sha256(head).hexdigest() == GOLDEN_HEAD
    assert hashlib.sha256(tail).hexdigest() == GOLDEN_TAIL


def test_all_errors_reported_at_once(tmp_path: Path) -> None:
    img = _image(tmp_path / "p.img", 10, 3)
    bad = [gpt.Partition(name="x" * 37, type_guid=gpt.ESP_TYPE, guid=ESP_GUID, image=img),
           gpt.Partition(name="root", type_guid=gpt.ROOT_TYPES["riscv64"], guid=ESP_GUID, image=img),
           gpt.Partition(name="nul\0", type_guid=uuid.UUID(int=0), guid=DISK, image=img)]
    with pytest.raises(UserError) as exc:
        gpt.write_gpt(tmp_path / "disk.raw", bad, disk_guid=DISK)
    text = str(exc.value)
    for fact in ("longer than 36", "already used by partition 1", "NUL", "all zeros", "already used by the disk"):
        assert fact in text
    assert not (tmp_path / "disk.raw").exists()


def test_missing_image_leaves_no_output(tmp_path: Path, parts: list[gpt.Partition]) -> None:
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"previous")
    gone = gpt.Partition(name="gone", type_guid=gpt.ESP_TYPE, guid=uuid.UUID(int=9), image=tmp_path / "nope")
    with pytest.raises(UserError, match="nope is not a file"):
        gpt.write_gpt(disk, [*parts, gone], disk_guid=DISK)
    assert disk.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == [
        "disk.raw", "esp.img", "root.img"]


names = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=18)


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.tuples(names, st.integers(0, 5 * MIB)), max_size=6), align=st.integers(1, 4))
def test_encode_decode_round_trip(sizes: list[tuple[str, int]], align: int) -> None:
    sized = [(gpt.Partition(name=n, type_guid=gpt.ESP_TYPE, guid=uuid.UUID(int=i + 1), image=Path("unused")), s)
             for i, (n, s) in enumerate(sizes) if len(n.encode("utf-16-le")) <= 72]
    table = gpt.plan_table(sized, disk_guid=DISK, align_mib=align)
    head, tail = gpt.encode_head(table), gpt.encode_tail(table)
    primary = gpt.decode_header(head[512:1024], where="primary")
    backup = gpt.decode_header(tail[-512:], where="backup")
    gpt.check_pair(primary, backup, sectors=table.sectors)
    assert gpt.decode_entries(head[1024:], primary, where="primary") == table.entries
    assert gpt.decode_entries(tail[:-512], backup, where="backup") == table.entries
    assert table.sectors % (align * 2048) == 0 and all(e.first_lba % (align * 2048) == 0 for e in table.entries)


def test_bios_boot_code_and_the_legacy_bootable_attribute_write_reopen_check(
        tmp_path: Path, parts: list[gpt.Partition]) -> None:
    """BIOS boot of a GPT disk (syslinux's gptmbr.bin): the code in the MBR's first 440 bytes, the partition
    table and signature untouched, the ESP's entry carrying attribute bit 2; sfdisk reads it as LegacyBIOSBootable."""
    code = bytes(range(256)) + bytes(range(184))  # 440 bytes
    esp = gpt.Partition(name="ESP", type_guid=gpt.ESP_TYPE, guid=ESP_GUID, image=parts[0].image,
                        attributes=gpt.LEGACY_BIOS_BOOTABLE)
    disk = tmp_path / "disk.raw"
    gpt.write_gpt(disk, [esp, parts[1]], disk_guid=DISK, boot_code=code)
    table = gpt.read_table(disk)
    assert table.boot_code == code and [e.attributes for e in table.entries] == [gpt.LEGACY_BIOS_BOOTABLE, 0]
    mbr = disk.read_bytes()[:512]
    assert mbr[:440] == code and mbr[440:446] == bytes(6) and mbr[446 + 4] == 0xEE and mbr[510:] == b"\x55\xaa"
    plain = tmp_path / "plain.raw"
    gpt.write_gpt(plain, parts, disk_guid=DISK)
    assert gpt.read_table(plain).boot_code == b"" and plain.read_bytes()[:446] == bytes(446)
    if shutil.which("sfdisk") is not None:
        found = json.loads(run(["sfdisk", "--json", disk]).stdout)["partitiontable"]["partitions"]
        assert "LegacyBIOSBootable" in found[0].get("attrs", "") and "attrs" not in found[1]


def test_boot_code_and_attributes_are_bounded(tmp_path: Path, parts: list[gpt.Partition]) -> None:
    with pytest.raises(UserError, match="MBR boot code of 441 bytes: at most 440"):
        gpt.write_gpt(tmp_path / "d.raw", parts, disk_guid=DISK, boot_code=bytes(441))
    bad = gpt.Partition(name="ESP", type_guid=gpt.ESP_TYPE, guid=ESP_GUID, image=parts[0].image, attributes=1 << 64)
    with pytest.raises(UserError, match="attributes .* do not fit in 64 bits"):
        gpt.write_gpt(tmp_path / "d.raw", [bad], disk_guid=DISK)
    assert not (tmp_path / "d.raw").exists()
