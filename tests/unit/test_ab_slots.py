"""A/B slots (docs/updates/ab-slots.md): entry names and their systemd-boot order, the update plan, the disk layout
arithmetic, the command line a slot's UKI carries, the bundle an A/B disk writes (read back by vcomp release's
reader), and ``vpk update``/``vpk status`` on a device whose partitions are files and whose ESP is a directory,
against the real signed test repository with generations released by vcomp release's API."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import cast

import pytest

from composer.errors import UserError, VerificationError
from composer.image.types import abdisk
from composer.image.types.abdisk import Layout, default_slot_size, parse_slot_size, verity_size
from composer.image.workshop import OutputJob, Workshop
from composer.update import device as ab
from composer.update import slots
from composer.update.bundle import write_bundle
from composer.update.release import read_bundle, release_bundle
from composer.update.seeds import index_of, read_seed_index, seed_index_name
from composer.update.slots import Entry, boot_order, parse_entry, plan_update
from tests.repo_fixtures import Repo

MIB = 1 << 20

# ---------------------------------------------------------------- entry names


@pytest.mark.parametrize(("name", "entry"), [
    ("vcomp-1-a.efi", Entry(generation=1, slot="a")),
    ("vcomp-2-b+3-0.efi", Entry(generation=2, slot="b", tries_left=3, tries_done=0)),
    ("vcomp-2-b+2-1.efi", Entry(generation=2, slot="b", tries_left=2, tries_done=1)),
    ("vcomp-12-a+0-3.efi", Entry(generation=12, slot="a", tries_left=0, tries_done=3)),
    ("vcomp-7-a+2.efi", Entry(generation=7, slot="a", tries_left=2, tries_done=0)),   # systemd: done omitted
])
def test_entry_names_parse(name: str, entry: Entry) -> None:
    assert parse_entry(name) == entry
    assert parse_entry(entry.name) == entry


@pytest.mark.parametrize("name", ["vcomp-0-a.efi", "vcomp-1-c.efi", "vcomp-1-a.EFI", "vcomp-1-a", "linux.efi",
                                  "vcomp--a.efi", "vcomp-1-a+x-1.efi", "vcomp-1-a+1-2-3.efi", ".vcomp-2-b+3-0.efi.tmp",
                                  "vcomp-1234567890-a.efi", "vcomp-1-a+1000-0.efi"])
def test_other_names_are_not_entries(name: str) -> None:
    assert parse_entry(name) is None


def test_states() -> None:
    assert [parse_entry(n).state for n in ("vcomp-1-a.efi", "vcomp-2-b+1-2.efi", "vcomp-2-b+0-3.efi")] == \
        ["good", "trial", "bad"]  # type: ignore[union-attr]
    trial = slots.new_entry(5, "b")
    assert trial.name == "vcomp-5-b+3-0.efi"
    assert trial.blessed().name == "vcomp-5-b.efi"
    assert parse_entry("vcomp-5-b+2-1.efi").failed().name == "vcomp-5-b+0-1.efi"  # type: ignore[union-attr]


def names(entries: list[Entry]) -> list[str]:
    return [e.name for e in entries]


def test_boot_order_is_systemd_boots() -> None:
    """Bad entries last; then the newest generation first (strverscmp of the names, descending: 10 after 9)."""
    got = boot_order(slots.parse_entries(["vcomp-1-a.efi", "vcomp-2-b+2-1.efi"]))
    assert names(got) == ["vcomp-2-b+2-1.efi", "vcomp-1-a.efi"]          # the new generation is tried
    got = boot_order(slots.parse_entries(["vcomp-3-a+0-1.efi", "vcomp-2-b.efi"]))
    assert names(got) == ["vcomp-2-b.efi", "vcomp-3-a+0-1.efi"]          # a failed trial falls back
    got = boot_order(slots.parse_entries(["vcomp-9-a.efi", "vcomp-10-b+3-0.efi"]))
    assert names(got) == ["vcomp-10-b+3-0.efi", "vcomp-9-a.efi"]


# ---------------------------------------------------------------- the plan


def entries(*names_: str) -> list[Entry]:
    return slots.parse_entries(names_)


def test_plan_updates_into_the_other_slot_removing_its_old_entry_first() -> None:
    plan = plan_update(entries("vcomp-2-b.efi", "vcomp-1-a.efi"), "b", 3)
    assert plan.action == "update" and plan.slot == "a"
    assert names(list(plan.remove)) == ["vcomp-1-a.efi"]
    assert plan.entry is not None and plan.entry.name == "vcomp-3-a+3-0.efi"
    first = plan_update(entries("vcomp-1-a.efi"), "a", 2)        # slot b empty: nothing to remove
    assert first.slot == "b" and first.remove == () and first.entry == slots.new_entry(2, "b")


def test_plan_is_current_when_the_channel_is_not_newer() -> None:
    assert plan_update(entries("vcomp-2-b.efi", "vcomp-1-a.efi"), "b", 2).action == "current"
    assert plan_update(entries("vcomp-2-b.efi"), "b", 1).action == "current"   # a channel moved back: no downgrade


def test_plan_refuses_a_generation_that_failed_here_and_an_uncommitted_trial() -> None:
    plan = plan_update(entries("vcomp-2-b.efi", "vcomp-3-a+0-1.efi"), "b", 3)
    assert plan.action == "refused" and "generation 3 failed its trial boot" in plan.reason
    assert plan_update(entries("vcomp-2-b.efi", "vcomp-3-a+0-1.efi"), "b", 4).action == "update"
    assert plan_update(entries("vcomp-2-b+2-1.efi", "vcomp-1-a.efi"), "b", 3).action == "refused"


def test_plan_without_an_entry_for_the_booted_slot_is_an_error() -> None:
    with pytest.raises(UserError, match="the booted slot a has no boot entry"):
        plan_update(entries("vcomp-2-b.efi"), "a", 3)


# ---------------------------------------------------------------- layout and command line


def test_layout_and_sizes() -> None:
    assert (Layout(verity=True).root("a"), Layout(verity=True).hashes("a"), Layout(verity=True).root("b")) == (2, 3, 4)
    assert (Layout(verity=False).root("a"), Layout(verity=False).root("b")) == (2, 3)
    assert parse_slot_size("512M", "x") == 512 * MIB and parse_slot_size("2G", "x") == 2 << 30
    with pytest.raises(UserError, match="slot-size '512' is not a size"):
        parse_slot_size("512", "output 'disk'")
    assert default_slot_size(10 * MIB + 1) == 21 * MIB and default_slot_size(1) == 16 * MIB
    # 256 MiB of 4 KiB blocks: 65536 hashes of 32 bytes = 512 blocks, + 4 + 1 + the superblock, in whole MiB
    assert verity_size(256 * MIB) == 3 * MIB
    assert verity_size(256 * MIB) >= (65536 * 32 + 6 * 4096)


def test_the_command_line_names_the_slot_its_partitions_and_the_esp() -> None:
    boot = ab.parse_cmdline("console=ttyS0 quiet vcomp.root=/dev/vda4 vcomp.rootfstype=ext4 vcomp.slot=b "
                            "vcomp.esp=/dev/vda1 vcomp.verity=/dev/vda4,/dev/vda5,100,ab,cd")
    assert (boot.slot, boot.verity, boot.root("a"), boot.hashes("b")) == ("b", True, Path("/dev/vda2"),
                                                                          Path("/dev/vda5"))
    nvme = ab.parse_cmdline("vcomp.slot=a vcomp.esp=/dev/nvme0n1p1")
    assert nvme.root("b") == Path("/dev/nvme0n1p3")
    with pytest.raises(UserError, match="not booted from an A/B slot"):
        ab.parse_cmdline("console=ttyS0 vcomp.root=/dev/vda2")
    with pytest.raises(UserError, match="is not partition 1"):
        ab.parse_cmdline("vcomp.slot=a vcomp.esp=/dev/vda2")


def test_bios_with_slots_is_refused_with_the_reason(tmp_path: Path) -> None:
    job = OutputJob(name="disk", type="disk", options={"slots": "ab"}, firmware=("bios", "uefi"))
    with pytest.raises(UserError, match="slots: ab boots through systemd-boot, which is UEFI only") as err:
        abdisk.build(cast(Workshop, None), job, tmp_path, filesystem="ext4", fmt="raw", device="/dev/vda")
    assert "drop bios" in err.value.hint


# ---------------------------------------------------------------- the bundle


def test_the_bundle_is_read_back_by_the_release_reader(tmp_path: Path) -> None:
    files = {"root": tmp_path / "r", "verity": tmp_path / "v", "uki-a": tmp_path / "a", "uki-b": tmp_path / "b"}
    for i, p in enumerate(files.values()):
        p.write_bytes(bytes([i]) * 5000)
    written = write_bundle(tmp_path / "disk.bundle", profile="device", arch="x86_64", output="disk",
                           slot_size=16 * MIB, roothash="ab" * 32, sources=files)
    assert read_bundle(tmp_path / "disk.bundle") == written
    assert sorted(p.name for p in (tmp_path / "disk.bundle").iterdir()) == \
        ["bundle.json", "root.img", "uki-a.efi", "uki-b.efi", "verity.img"]
    again = write_bundle(tmp_path / "again.bundle", profile="device", arch="x86_64", output="disk",
                         slot_size=16 * MIB, roothash="ab" * 32, sources=files)
    assert (tmp_path / "again.bundle/bundle.json").read_bytes() == (tmp_path / "disk.bundle/bundle.json").read_bytes()
    assert again == written


# ---------------------------------------------------------------- a device of files


class FakeDevice:
    """partitions as files (disk1 the ESP as a directory elsewhere), a kernel command line, a repository."""

    def __init__(self, tmp: Path, repo: Repo, slot_size: int) -> None:
        self.tmp = tmp
        self.esp = tmp / "esp"
        (self.esp / "EFI/Linux").mkdir(parents=True)
        for n in range(2, 6):
            (tmp / f"disk{n}").write_bytes(bytes(slot_size))
        self.repo = repo
        self.config = ab.Config(profile="device", arch="x86_64", channel="stable", repository="sample",
                                url=repo.url, root=repo.root_bytes, interval=60)
        self.lines: list[str] = []

    def boot(self, slot: str) -> ab.Device:
        cmdline = self.tmp / "cmdline"
        cmdline.write_text(f"vcomp.root={self.tmp}/disk{2 if slot == 'a' else 4} vcomp.slot={slot} "
                           f"vcomp.esp={self.tmp}/disk1 vcomp.verity=x,y,1,z,w\n")
        return ab.Device(root=self.tmp, esp=self.esp, cmdline=cmdline, sysfs=self.tmp / "sys", cache=self.tmp / "c",
                         say=self.lines.append, client=lambda _c, _p: self.repo.client(), config=self.config)

    def part(self, n: int, size: int) -> bytes:
        return (self.tmp / f"disk{n}").read_bytes()[:size]


def make_bundle(tmp: Path, generation: int) -> Path:
    """A small generation: the root differs between generations in a few bytes."""
    rnd = random.Random(7)
    root = bytearray(rnd.randbytes(768 << 10))
    root[200_000:200_016] = f"generation {generation:5d}".encode()
    files = {"root": bytes(root), "verity": hashlib.sha256(bytes(root)).digest() * 256,
             "uki-a": rnd.randbytes(128 << 10) + f"a{generation}".encode(),
             "uki-b": rnd.randbytes(128 << 10) + f"b{generation}".encode()}
    sources = {}
    for role, data in files.items():
        sources[role] = tmp / f"g{generation}-{role}"
        sources[role].write_bytes(data)
    out = tmp / f"g{generation}.bundle"
    write_bundle(out, profile="device", arch="x86_64", output="disk", slot_size=2 * MIB,
                 roothash=hashlib.sha256(files["verity"]).hexdigest(), sources=sources)
    return out


def install_generation_1(dev: FakeDevice, g1: Path) -> None:
    """What the disk build does: slot a holds generation 1, blessed, with its seed indexes on the ESP."""
    for n, name in ((2, "root.img"), (3, "verity.img")):
        with (dev.tmp / f"disk{n}").open("r+b") as f:
            f.write((g1 / name).read_bytes())
    (dev.esp / "EFI/Linux/vcomp-1-a.efi").write_bytes((g1 / "uki-a.efi").read_bytes())
    (dev.esp / "vcomp").mkdir()
    for role, name in (("root", "root.img"), ("verity", "verity.img"), ("uki", "uki-a.efi")):
        (dev.esp / seed_index_name("a", role)).write_bytes(index_of(g1 / name).to_bytes())


def test_update_writes_the_inactive_slot_and_the_trial_entry_last(repo: Repo, tmp_path: Path) -> None:
    dev = FakeDevice(tmp_path, repo, 2 * MIB)
    g1, g2, g3 = (make_bundle(tmp_path, n) for n in (1, 2, 3))
    install_generation_1(dev, g1)
    release_bundle(repo.store, g1, "stable", 1, None)
    assert ab.update(dev.boot("a")).plan.action == "current"

    release_bundle(repo.store, g2, "stable", 2, None)
    status = ab.status(dev.boot("a"))
    assert status.channel_generation == 2 and [s.to_dict()["state"] for s in status.slots] == ["good", "empty"]
    outcome = ab.update(dev.boot("a"))
    assert outcome.plan.action == "update" and outcome.plan.slot == "b"
    assert sorted(p.name for p in (dev.esp / "EFI/Linux").iterdir()) == ["vcomp-1-a.efi", "vcomp-2-b+3-0.efi"]
    assert dev.part(4, 768 << 10) == (g2 / "root.img").read_bytes()
    assert dev.part(5, 8192) == (g2 / "verity.img").read_bytes()
    assert (dev.esp / "EFI/Linux/vcomp-2-b+3-0.efi").read_bytes() == (g2 / "uki-b.efi").read_bytes()
    # seeded from slot a: only the chunks around the change and the UKI's came over the wire
    assert outcome.reports["root"].fetched_bytes < (768 << 10) / 2, outcome.reports["root"]
    assert read_seed_index(dev.esp / seed_index_name("b", "root")) is not None
    assert "VCOMP-UPDATE: generation 1 -> 2 into slot b" in dev.lines
    pending = ab.update(dev.boot("a")).plan           # written, not booted yet: nothing is fetched again
    assert pending.action == "pending" and "waits for its trial boot" in pending.reason
    assert ab.update(dev.boot("b")).plan.action == "refused"        # booted on trial: commit first

    # systemd-boot tried it (+2-1), init committed it (no counter); gen3 goes into slot a, replacing gen1
    (dev.esp / "EFI/Linux/vcomp-2-b+3-0.efi").rename(dev.esp / "EFI/Linux/vcomp-2-b.efi")
    release_bundle(repo.store, g3, "stable", 3, None)
    outcome = ab.update(dev.boot("b"))
    assert outcome.plan.slot == "a" and names(list(outcome.plan.remove)) == ["vcomp-1-a.efi"]
    assert sorted(p.name for p in (dev.esp / "EFI/Linux").iterdir()) == ["vcomp-2-b.efi", "vcomp-3-a+3-0.efi"]
    assert dev.part(2, 768 << 10) == (g3 / "root.img").read_bytes()
    # the trial failed: init marked it bad; the device does not try generation 3 again
    (dev.esp / "EFI/Linux/vcomp-3-a+3-0.efi").rename(dev.esp / "EFI/Linux/vcomp-3-a+0-1.efi")
    again = ab.update(dev.boot("b"))
    assert again.plan.action == "refused" and "failed its trial boot" in again.plan.reason
    rows = [s.to_dict() for s in ab.status(dev.boot("b"), online=False).slots]
    assert [(r["generation"], r["state"]) for r in rows] == [(3, "bad"), (2, "good")]


def test_a_channel_for_another_device_or_a_corrupt_chunk_writes_no_entry(repo: Repo, tmp_path: Path) -> None:
    dev = FakeDevice(tmp_path, repo, 2 * MIB)
    g1, g2 = make_bundle(tmp_path, 1), make_bundle(tmp_path, 2)
    install_generation_1(dev, g1)
    release_bundle(repo.store, g1, "stable", 1, None)
    release_bundle(repo.store, g2, "stable", 2, None)
    for chunk in (repo.dir / "targets" / "chunks").rglob("*.cacnk"):    # a hostile store: every chunk changed
        data = bytearray(chunk.read_bytes())
        data[-1] ^= 1
        chunk.write_bytes(bytes(data))
    with pytest.raises(VerificationError):
        ab.update(dev.boot("a"))
    assert sorted(p.name for p in (dev.esp / "EFI/Linux").iterdir()) == ["vcomp-1-a.efi"]   # nothing boots slot b
    other = ab.Config(profile="other", arch="x86_64", channel="stable", repository="sample", url=repo.url,
                      root=repo.root_bytes, interval=0)
    device = dev.boot("a")
    with pytest.raises(Exception, match="no target 'index/other.x86_64.stable.channel.json'"):
        ab.update(ab.Device(**{**{f: getattr(device, f) for f in device.__dataclass_fields__}, "config": other}))


def test_a_root_larger_than_the_slot_is_refused_before_anything_is_written(repo: Repo, tmp_path: Path) -> None:
    dev = FakeDevice(tmp_path, repo, 512 << 10)        # partitions smaller than the root
    g1, g2 = make_bundle(tmp_path, 1), make_bundle(tmp_path, 2)
    (dev.esp / "EFI/Linux/vcomp-1-a.efi").write_bytes((g1 / "uki-a.efi").read_bytes())
    release_bundle(repo.store, g2, "stable", 2, None)
    with pytest.raises(UserError, match="slot b .* holds 524288"):
        ab.update(dev.boot("a"))
    assert sorted(p.name for p in (dev.esp / "EFI/Linux").iterdir()) == ["vcomp-1-a.efi"]
