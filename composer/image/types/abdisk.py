"""The A/B layout of the ``disk`` output (``options.slots: ab``; docs/updates/ab-slots.md).

    1 ESP            systemd-boot as EFI/BOOT/BOOT*.EFI, loader/loader.conf, EFI/Linux/vcomp-<gen>-a.efi
    2 root-a         generation ``options.generation`` (default 1): the root image, padded to slot-size
    3 root-a-verity  (verity: true) its dm-verity hash tree, sized for any root of slot-size
    4 root-b         empty: the first update writes it
    5 root-b-verity  (verity: true)

One UKI per slot: its command line names the slot (``vcomp.slot=``), its root partition, its verity hash
partition and the root hash, and the ESP (``vcomp.esp=``). Slot a's UKI is on the ESP, blessed (no boot counter);
both are in the update bundle written beside the disk (``NAME.bundle/``, :mod:`composer.update.bundle`), which
``vcomp release`` publishes. systemd-boot and both UKIs are signed with the profile's secure-boot key when it
names one. UEFI only: BIOS cannot run systemd-boot.
"""

from __future__ import annotations

import hashlib
import math
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from composer.errors import UserError
from composer.fsutil import atomic_write
from composer.image.formats import fat, fs, gpt, verity
from composer.image.secureboot import sign
from composer.image.workshop import BuiltOutput, OutputJob, Workshop
from composer.update.bundle import write_bundle
from composer.update.seeds import index_of, seed_index_name
from composer.update.slots import ENTRY_DIR, SLOTS, Entry

MIB = 1 << 20
SLOT_SIZE = re.compile(r"^([1-9][0-9]{0,5})([MG])$")
MIN_SLOT = 16 * MIB
LOADER_CONF = "timeout 0\neditor no\nauto-entries no\nauto-firmware no\nconsole-mode keep\n"
ESP_UKIS = 3       # the ESP holds the running UKI, the new one and room for one more (rename, a larger kernel)
ESP_MIN_MIB = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """Partition numbers of an A/B disk (pure)."""

    verity: bool

    def root(self, slot: str) -> int:
        return {"a": 2, "b": 4 if self.verity else 3}[slot]

    def hashes(self, slot: str) -> int:
        return self.root(slot) + 1


def parse_slot_size(text: object, where: str) -> int:
    m = SLOT_SIZE.match(str(text))
    if m is None:
        raise UserError(f"{where}: slot-size {text!r} is not a size like 512M or 2G")
    return int(m.group(1)) * (MIB if m.group(2) == "M" else 1 << 30)


def default_slot_size(root_size: int) -> int:
    """Twice the first root, whole MiB, at least 16 MiB: room for later generations to grow."""
    return max(MIN_SLOT, math.ceil(2 * root_size / MIB) * MIB)


def verity_size(slot_size: int) -> int:
    """Bytes of the hash tree of ``slot_size`` bytes of data (4 KiB blocks, sha256: 128 hashes a block, one
    superblock), whole MiB: every root that fits the slot has a tree that fits this."""
    blocks, total = -(-slot_size // verity.BLOCK), 1
    while blocks > 1:
        blocks = -(-blocks // (verity.BLOCK // 32))
        total += blocks
    return math.ceil(total * verity.BLOCK / MIB) * MIB


def build(w: Workshop, t: OutputJob, out: Path, *, filesystem: str, fmt: str, device: str) -> BuiltOutput:
    where = f"output '{t.name}'"
    if "bios" in t.firmware:
        raise UserError(f"{where}: slots: ab boots through systemd-boot, which is UEFI only",
                        hint="drop bios from options.firmware (or drop slots: ab)")
    generation = int(t.options.get("generation", 1))
    layout = Layout(verity=bool(t.options.get("verity", False)))
    # ids that stay the same from one generation to the next (not the build's seed): the root's UUID seeds ext4's
    # metadata checksums and the verity salt every hash, so a new generation shares the chunks of what did not change
    lineage = f"ab:{w.profile}:{w.arch.name}:{t.name}"
    root = w.root_image(filesystem, fs_uuid=uuid.uuid5(uuid.NAMESPACE_URL, f"vcomp:{lineage}:root-fs"))
    tree: verity.VerityTree | None = None
    hashes: Path | None = None
    if layout.verity:
        data, hashes = w.work / f"{t.name}-verity-data.img", w.work / f"{t.name}-verity-hash.img"
        shutil.copyfile(root, data)
        tree = verity.format_tree(data, hashes, seed=lineage)
        root = data
    size = root.stat().st_size
    slot_size = (parse_slot_size(t.options["slot-size"], where) if "slot-size" in t.options
                 else default_slot_size(size))
    if size > slot_size:
        raise UserError(f"{where}: the root file system is {size} bytes, larger than slot-size {slot_size}",
                        hint=f"set options.slot-size to at least {math.ceil(size / MIB)}M")
    ukis = {s: w.uki(_cmdline(w, s, layout, device, filesystem, tree), t.name) for s in SLOTS}
    seeds = {"root": root, "uki": ukis["a"], **({"verity": hashes} if hashes else {})}
    esp = _esp(w, t.name, ukis["a"], generation, seeds)
    parts = [gpt.Partition(name="ESP", type_guid=gpt.ESP_TYPE, guid=w.uuid("esp-part"), image=esp)]
    for s in SLOTS:
        parts.append(gpt.Partition(name=f"root-{s}", type_guid=w.arch.gpt_root_type, guid=w.uuid(f"root-{s}-part"),
                                   image=root if s == "a" else None, size=slot_size))
        if layout.verity:
            parts.append(gpt.Partition(name=f"root-{s}-verity", type_guid=w.arch.gpt_root_verity_type,
                                       guid=w.uuid(f"root-{s}-verity-part"), image=hashes if s == "a" else None,
                                       size=verity_size(slot_size)))
    raw = w.work / f"{t.name}.raw"
    gpt.write_gpt(raw, parts, disk_guid=w.uuid("disk"))
    path = out / f"{t.name}.{fmt}"
    if fmt == "qcow2":
        fs.to_qcow2(raw, path)
    else:
        shutil.copyfile(raw, path)
    sources = {"root": root, "uki-a": ukis["a"], "uki-b": ukis["b"], **({"verity": hashes} if hashes else {})}
    write_bundle(out / f"{t.name}.bundle", profile=w.profile, arch=w.arch.name, output=t.name, slot_size=slot_size,
                 roothash=tree.root_hash if tree else None, sources=sources)
    return BuiltOutput(name=t.name, type=t.type, files=(path,), firmware=t.firmware,
                       boot={"media": "disk", "format": fmt, "slots": "ab"})


def _cmdline(w: Workshop, slot: str, layout: Layout, device: str, filesystem: str,
             tree: verity.VerityTree | None) -> str:
    root = f"{device}{layout.root(slot)}"
    line = f"{w.cmdline} vcomp.root={root} vcomp.rootfstype={filesystem} vcomp.slot={slot} vcomp.esp={device}1"
    if tree is not None:
        line += " " + tree.cmdline_word(root, f"{device}{layout.hashes(slot)}")
    return line


def _esp(w: Workshop, output: str, uki_a: Path, generation: int, seeds: dict[str, Path]) -> Path:
    """The ESP: systemd-boot (signed with the profile's key when it has one), loader.conf, slot a's entry and
    the chunk indexes of slot a's images (an update seeds from them: composer.update.seeds)."""
    boot = w.boot_file("systemd-boot", output)
    if w.secure_boot is not None:
        signed = w.work / "systemd-boot-signed.efi"
        atomic_write(signed, sign(boot.read_bytes(), w.secure_boot, epoch=w.epoch, work=w.work), durable=False)
        boot = signed
    conf = w.work / "loader.conf"
    atomic_write(conf, LOADER_CONF.encode(), durable=False)
    entry = Entry(generation=generation, slot="a")
    files = {f"EFI/BOOT/{w.arch.efi_boot_name}": boot, "loader/loader.conf": conf,
             f"{ENTRY_DIR}/{entry.name}": uki_a}
    for role, image in sorted(seeds.items()):
        kept = w.work / f"seed-a-{role}.caidx.json"
        atomic_write(kept, index_of(image).to_bytes(), durable=False)
        files[seed_index_name("a", role)] = kept
    size_mib = max(ESP_MIN_MIB, math.ceil((ESP_UKIS * uki_a.stat().st_size + boot.stat().st_size) / MIB) + 8
                   + math.ceil(4 * sum(f.stat().st_size for f in files.values() if f.suffix == ".json") / MIB))
    key = hashlib.sha256(f"{w.seed}:ab-esp:{uki_a.name}:{generation}".encode()).digest()
    vol = int.from_bytes(key[:4], "big")

    def make(path: Path) -> None:
        fat.make_fat(path, files, epoch=w.epoch, label="ESP", volume_id=vol, size_mib=size_mib)
    return w.once(f"ab-esp-{uki_a.name}-{generation}", make, f"ab-esp-{generation}.fat")
