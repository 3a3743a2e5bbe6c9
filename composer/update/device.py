"""``vpk update`` and ``vpk status`` on an A/B device: the I/O edge of :mod:`composer.update.slots`
(docs/updates/ab-slots.md).

What the device knows, all recorded at build: ``/etc/veridian/update.json`` (profile, arch, channel, repository,
URL, interval), the repository's pinned root (``/var/lib/vpk/repositories.json``), its kernel command line
(``vcomp.slot=``, ``vcomp.esp=``, ``vcomp.root=``, ``vcomp.verity=``) and the ESP init mounted at ``/run/efi``.

An update: the channel document, a TUF target verified through the pinned root; the plan (pure); the inactive
slot's old entry deleted first (nothing boots the slot while it is written); root (and verity) assembled into
its partitions seeded from the running slot (every chunk verified, the written partition read back and its
sha256 checked); the new UKI written to the ESP as a temporary file and renamed to
``vcomp-<gen>-<slot>+3-0.efi``: that rename is the commit point. Then (``--reboot``) a reboot: systemd-boot tries
the new entry, init runs the health checks and commits it or falls back.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.errors import ComposerError, FetchError, UserError, VerificationError
from composer.fsutil import atomic_write
from composer.oserrors import fault
from composer.pkgmgr import db
from composer.repo.client import RepositoryClient
from composer.update import slots
from composer.update.assemble import Report, Seed, assemble, assemble_into
from composer.update.channel import Channel, channel_target_path
from composer.update.remote import chunk_fetcher, fetch_index
from composer.update.seeds import read_seed_index, seed_index_name

CONFIG = "etc/veridian/update.json"
ESP_MOUNT = Path("/run/efi")
CACHE = Path("/run/vcomp-update")      # tmpfs: metadata and chunk indexes of this boot (the root may be read-only)
MAX_CONFIG = 16 * 1024
_DEVICE = re.compile(r"^(/[A-Za-z0-9/_.-]*?[A-Za-z_.-])(p?)([0-9]+)$")   # /dev/vda1, /dev/nvme0n1p1
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """update.json and the repository it names, checked."""

    profile: str
    arch: str
    channel: str
    repository: str
    url: str
    root: bytes            # the pinned TUF root of the repository
    interval: int

    def to_dict(self) -> dict[str, object]:
        return {"profile": self.profile, "arch": self.arch, "channel": self.channel, "repository": self.repository,
                "url": self.url, "interval": self.interval}


@dataclass(frozen=True, slots=True, kw_only=True)
class Boot:
    """What the kernel command line says of this boot (pure parse of /proc/cmdline)."""

    slot: str
    esp: str
    disk: str              # the partition device prefix: /dev/vda, /dev/nvme0n1p
    verity: bool

    def partition(self, number: int) -> Path:
        return Path(f"{self.disk}{number}")

    def root(self, slot: str) -> Path:
        return self.partition(_layout(self.verity)[slot][0])

    def hashes(self, slot: str) -> Path:
        return self.partition(_layout(self.verity)[slot][1])


def _layout(verity: bool) -> dict[str, tuple[int, int]]:
    """slot -> (root, verity) partition numbers of composer.image.types.abdisk's layout."""
    return {"a": (2, 3), "b": (4, 5)} if verity else {"a": (2, 0), "b": (3, 0)}


def parse_cmdline(text: str) -> Boot:
    words = dict(w.split("=", 1) for w in text.split() if w.startswith("vcomp.") and "=" in w)
    slot, esp = words.get("vcomp.slot", ""), words.get("vcomp.esp", "")
    if slot not in slots.SLOTS or not esp:
        raise UserError("this system was not booted from an A/B slot (no vcomp.slot= and vcomp.esp= on the kernel "
                        "command line)", hint="vpk update updates images built with disk option slots: ab")
    m = _DEVICE.match(esp)
    if m is None or m.group(3) != "1":
        raise UserError(f"vcomp.esp={esp} is not partition 1 of a disk", hint="the UKI's command line is damaged")
    return Boot(slot=slot, esp=esp, disk=m.group(1) + m.group(2), verity="vcomp.verity" in words)


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    """Where the device's state is: its root, ESP mount, /proc/cmdline, /sys/class/block (tests pass a fake tree)."""

    root: Path = Path("/")
    esp: Path = ESP_MOUNT
    cmdline: Path = Path("/proc/cmdline")
    sysfs: Path = Path("/sys/class/block")
    cache: Path = CACHE
    say: Callable[[str], None] = print
    client: Callable[[Config, Path], RepositoryClient] | None = None   # tests: another client
    config: Config | None = None    # tests: instead of the root's update.json and repositories.json

    @property
    def entries_dir(self) -> Path:
        return self.esp / slots.ENTRY_DIR

    def boot(self) -> Boot:
        return parse_cmdline(_read(self.cmdline, 64 * 1024))

    def entries(self) -> list[slots.Entry]:
        try:
            names = os.listdir(self.entries_dir)
        except OSError as exc:
            raise UserError(f"{self.entries_dir}: cannot list the boot entries ({exc.strerror})",
                            hint="init mounts the ESP at /run/efi on an A/B boot: is the vfat driver in the "
                                 "profile?") from None
        return slots.parse_entries(sorted(names))

    def partition_name(self, device: Path) -> str | None:
        """The GPT name of a partition (``PARTNAME`` in sysfs), None when sysfs does not say."""
        try:
            text = _read(self.sysfs / device.name / "uevent", 64 * 1024)
        except UserError:
            return None
        return next((line.split("=", 1)[1] for line in text.splitlines() if line.startswith("PARTNAME=")), None)


def _read(path: Path, limit: int) -> str:
    try:
        with path.open("rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror})") from None


def load_config(device: Device) -> Config:
    if device.config is not None:
        return device.config
    origin = str(device.root / CONFIG)
    hint = "the image was built without updates: in its profile (updates: {channel, repository})"
    try:
        doc: Any = json.loads(_read(device.root / CONFIG, MAX_CONFIG + 1))
    except json.JSONDecodeError as exc:
        raise UserError(f"{origin}: not JSON ({exc})", hint=hint) from None
    except UserError as exc:
        raise UserError(exc.message, hint=hint) from None
    if not isinstance(doc, dict) or doc.get("format") != "vcomp-update-config" or doc.get("version") != 1:
        raise UserError(f"{origin}: not a vcomp-update-config version 1 document", hint=hint)
    names = {}
    for key in ("profile", "arch", "channel", "repository"):
        value = doc.get(key)
        if not isinstance(value, str) or not _NAME.match(value):
            raise UserError(f"{origin}: $.{key}: {value!r} is not a name", hint=hint)
        names[key] = value
    interval = doc.get("interval", 0)
    if type(interval) is not int or not 0 <= interval <= 604800:
        raise UserError(f"{origin}: $.interval: {interval!r} is not 0-604800 seconds", hint=hint)
    repos = [r for r in db.load(device.root).repositories if r.get("name") == names["repository"]]
    if not repos:
        raise UserError(f"{origin}: $.repository: the root records no repository '{names['repository']}'",
                        hint=f"see {device.root / db.DB_REL}/repositories.json")
    url = doc.get("url") or repos[0]["url"]
    if not isinstance(url, str) or "://" not in url:
        raise UserError(f"{origin}: the repository '{names['repository']}' has no URL the device can reach ({url!r})",
                        hint="set updates.url in the profile (e.g. https://updates.example.com/repo)")
    root = json.dumps(repos[0]["root"], sort_keys=True).encode()
    return Config(profile=names["profile"], arch=names["arch"], channel=names["channel"],
                  repository=names["repository"], url=url, root=root, interval=interval)


def _client(config: Config, cache: Path) -> RepositoryClient:
    return RepositoryClient(config.url, config.root, cache, fallback=False)


def fetch_channel(device: Device, config: Config) -> tuple[RepositoryClient, Channel]:
    client = (device.client or _client)(config, device.cache)
    path = channel_target_path(config.profile, config.arch, config.channel)
    origin = f"{config.url}: {path}"
    try:
        data = client.download(path).read_bytes()
    except FetchError as exc:
        raise FetchError(f"{origin}: {exc.message}",
                         hint=f"has generation 1 been released? vcomp release {config.profile} --channel "
                              f"{config.channel}") from None
    channel = Channel.from_bytes(data, origin)
    if (channel.profile, channel.arch, channel.channel) != (config.profile, config.arch, config.channel):
        raise VerificationError(f"{origin}: the document is for {channel.profile}/{channel.arch}/{channel.channel}",
                                hint="the repository is misconfigured or hostile: nothing was written")
    return client, channel


# ---------------------------------------------------------------- status


@dataclass(frozen=True, slots=True, kw_only=True)
class SlotStatus:
    slot: str
    partition: str
    entry: slots.Entry | None

    def to_dict(self) -> dict[str, object]:
        e = self.entry
        return {"slot": self.slot, "partition": self.partition, "state": e.state if e else "empty",
                "generation": e.generation if e else None, "entry": e.name if e else None,
                "tries-left": e.tries_left if e else None, "tries-done": e.tries_done if e else None}


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    booted: str
    slots: tuple[SlotStatus, ...]
    config: Config
    channel_generation: int | None
    channel_error: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"booted": self.booted, "slots": [s.to_dict() for s in self.slots],
                "channel": self.config.channel, "repository": self.config.repository, "url": self.config.url,
                "profile": self.config.profile, "arch": self.config.arch,
                "channel-generation": self.channel_generation,
                **({"channel-error": self.channel_error} if self.channel_error else {})}

    def lines(self) -> list[str]:
        out = [f"booted slot {self.booted}; channel {self.config.channel} of {self.config.url} "
               f"({self.config.profile}, {self.config.arch})"]
        for s in self.slots:
            e = s.entry
            state = "empty" if e is None else f"generation {e.generation}, {e.state}"
            tries = f" (tries left {e.tries_left}, done {e.tries_done})" if e and e.tries_left is not None else ""
            out.append(f"slot {s.slot} {s.partition}: {state}{tries}{'  <- booted' if s.slot == self.booted else ''}")
        newest = (f"generation {self.channel_generation}" if self.channel_generation is not None
                  else f"unreachable ({self.channel_error})")
        out.append(f"channel {self.config.channel}: {newest}")
        return out


def status(device: Device, *, online: bool = True) -> Status:
    config = load_config(device)
    boot = device.boot()
    entries = device.entries()
    rows = tuple(SlotStatus(slot=s, partition=str(boot.root(s)),
                            entry=next(iter(slots.boot_order(slots.slot_entries(entries, s))), None))
                 for s in slots.SLOTS)
    generation, error = None, ""
    if online:
        try:
            generation = fetch_channel(device, config)[1].generation
        except ComposerError as exc:
            error = exc.message
    return Status(booted=boot.slot, slots=rows, config=config, channel_generation=generation, channel_error=error)


# ---------------------------------------------------------------- update


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    plan: slots.Plan
    generation: int                       # the channel's
    reports: Mapping[str, Report] = field(default_factory=dict)

    @property
    def transferred(self) -> int:
        return sum(r.transferred_bytes for r in self.reports.values())

    @property
    def size(self) -> int:
        return sum(r.size for r in self.reports.values())

    def to_dict(self) -> dict[str, object]:
        p = self.plan
        return {"action": p.action, "reason": p.reason, "slot": p.slot or None, "channel-generation": self.generation,
                "entry": p.entry.name if p.entry else None, "transferred-bytes": self.transferred,
                "image-bytes": self.size, "images": {k: r.to_dict() for k, r in sorted(self.reports.items())}}


def update(device: Device) -> Outcome:
    config = load_config(device)
    boot = device.boot()
    client, channel = fetch_channel(device, config)
    plan = slots.plan_update(device.entries(), boot.slot, channel.generation)
    if plan.action != "update":
        return Outcome(plan=plan, generation=channel.generation)
    assert plan.entry is not None
    _check_fits(device, boot, channel, plan.slot)
    device.say(f"VCOMP-UPDATE: {plan.reason}")
    for old in plan.remove:            # first: while the slot is written, no entry boots it
        _unlink(device.entries_dir / old.name)
    for role in ("root", "verity", "uki"):
        _unlink(device.esp / seed_index_name(plan.slot, role))
    _sync_dir(device.entries_dir)
    fetch = chunk_fetcher(client.urls[0])
    reports: dict[str, Report] = {}
    targets = {"root": boot.root(plan.slot), **({"verity": boot.hashes(plan.slot)} if channel.roothash else {})}
    running = {"root": boot.root(boot.slot), "verity": boot.hashes(boot.slot)}
    kept = {}
    for role, dest in targets.items():
        image = channel.image(role)
        assert image is not None       # the channel's roles were checked when it was parsed
        index = fetch_index(client, image.image)
        _check_index(index.sha256, index.size, image.sha256, image.size, image.image)
        seed = Seed(path=running[role], index=read_seed_index(device.esp / seed_index_name(boot.slot, role)))
        reports[role] = assemble_into(index, [seed], fetch, dest, origin=f"{client.urls[0]}: {image.image}")
        kept[role] = index
    uki = channel.image(f"uki-{plan.slot}")
    assert uki is not None
    index = fetch_index(client, uki.image)
    _check_index(index.sha256, index.size, uki.sha256, uki.size, uki.image)
    current = slots.running(device.entries(), boot.slot)
    temp = device.entries_dir / f".{plan.entry.name}.tmp"
    seed = Seed(path=device.entries_dir / current.name,
                index=read_seed_index(device.esp / seed_index_name(boot.slot, "uki")))
    reports["uki"] = assemble(index, [seed], fetch, temp, origin=f"{client.urls[0]}: {uki.image}")
    kept["uki"] = index
    for role, idx in kept.items():     # the next update seeds from this slot through them
        atomic_write(device.esp / seed_index_name(plan.slot, role), idx.to_bytes())
    try:
        os.replace(temp, device.entries_dir / plan.entry.name)     # the commit point
    except OSError as exc:
        raise fault(exc, f"renaming {temp}") from None
    _sync_dir(device.entries_dir)
    return Outcome(plan=plan, generation=channel.generation, reports=reports)


def _check_fits(device: Device, boot: Boot, channel: Channel, slot: str) -> None:
    if bool(channel.roothash) != boot.verity:
        raise UserError(f"channel {channel.channel} generation {channel.generation} "
                        f"{'has' if channel.roothash else 'has no'} dm-verity root, this disk "
                        f"{'has' if boot.verity else 'has no'} verity partitions",
                        hint="release a generation built with the same disk options (verity) as the device's")
    wanted = {boot.root(slot): f"root-{slot}", **({boot.hashes(slot): f"root-{slot}-verity"} if boot.verity else {})}
    for dev, name in wanted.items():
        found = device.partition_name(dev)
        if found is not None and found != name:
            raise UserError(f"{dev} is the partition '{found}', not '{name}'",
                            hint="the disk is not the A/B layout this UKI was built for; nothing was written")
    image = channel.image("root")
    assert image is not None
    size = _device_size(boot.root(slot))
    if size is not None and image.size > size:
        raise UserError(f"generation {channel.generation}'s root is {image.size} bytes; slot {slot} "
                        f"({boot.root(slot)}) holds {size}", hint="rebuild with the device's slot-size")


def _device_size(path: Path) -> int | None:
    try:
        with path.open("rb") as f:
            return f.seek(0, os.SEEK_END)
    except OSError:
        return None


def _check_index(sha256: str, size: int, want_sha: str, want_size: int, name: str) -> None:
    if (sha256, size) != (want_sha, want_size):
        raise VerificationError(f"image {name}: its chunk index is for {size} bytes with sha256 {sha256[:16]}; the "
                                f"channel says {want_size} bytes with {want_sha[:16]}",
                                hint="the repository is inconsistent or hostile: nothing was booted from it")


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise fault(exc, f"removing {path}") from None


def _sync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def reboot(run_reboot: Callable[[Sequence[str]], object]) -> None:
    """Ask init to reboot (busybox reboot signals PID 1, which stops the services first)."""
    run_reboot(["reboot"])
