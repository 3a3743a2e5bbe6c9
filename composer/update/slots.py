"""A/B slots and their boot entries (pure): the names systemd-boot counts trial boots in, their order, what an
update does (docs/updates/ab-slots.md).

Each slot's UKI is one Type #2 entry on the ESP, ``EFI/Linux/vcomp-<generation>-<slot>[+<left>[-<done>]].efi``:

- no counter: **good** (blessed: it passed its health checks, or it is the image's first generation);
- ``+LEFT-DONE`` with LEFT > 0: **trial** (systemd-boot decrements LEFT and increments DONE each time it boots it);
- ``+0-DONE``: **bad** (its trial failed, or it ran out of tries): systemd-boot sorts it after every other entry.

systemd-boot sorts the rest by name, newest version first (strverscmp: the higher generation first), and boots
the first: a new generation is tried before the one that wrote it, and a bad one falls back to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from composer.errors import UserError

SLOTS = ("a", "b")
ENTRY_DIR = "EFI/Linux"
TRIES = 3                      # a new entry's tries: booted at most 3 times before it counts as bad
MAX_GENERATION = 999_999_999
_ENTRY = re.compile(r"^vcomp-([1-9][0-9]{0,8})-([ab])(?:\+([0-9]{1,3})(?:-([0-9]{1,3}))?)?\.efi$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One slot's boot entry, as its file name says."""

    generation: int
    slot: str
    tries_left: int | None = None   # None: no counter (good)
    tries_done: int = 0

    @property
    def state(self) -> str:
        if self.tries_left is None:
            return "good"
        return "bad" if self.tries_left == 0 else "trial"

    @property
    def name(self) -> str:
        counter = "" if self.tries_left is None else f"+{self.tries_left}-{self.tries_done}"
        return f"vcomp-{self.generation}-{self.slot}{counter}.efi"

    def blessed(self) -> Entry:
        """The entry after a successful trial: no counter."""
        return replace(self, tries_left=None, tries_done=0)

    def failed(self) -> Entry:
        """The entry after a failed trial: no tries left (systemd-boot sorts it last)."""
        return replace(self, tries_left=0)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "generation": self.generation, "slot": self.slot, "state": self.state,
                "tries-left": self.tries_left, "tries-done": self.tries_done}


def new_entry(generation: int, slot: str, tries: int = TRIES) -> Entry:
    check_slot(slot)
    if not 1 <= generation <= MAX_GENERATION:
        raise UserError(f"generation {generation} is not between 1 and {MAX_GENERATION}")
    return Entry(generation=generation, slot=slot, tries_left=tries, tries_done=0)


def check_slot(slot: str) -> str:
    if slot not in SLOTS:
        raise UserError(f"slot '{slot}' is not one of {', '.join(SLOTS)}")
    return slot


def parse_entry(name: str) -> Entry | None:
    """The entry a file name of EFI/Linux/ stands for; None for any other file."""
    m = _ENTRY.match(name)
    if m is None:
        return None
    left = None if m.group(3) is None else int(m.group(3))
    return Entry(generation=int(m.group(1)), slot=m.group(2), tries_left=left,
                 tries_done=int(m.group(4) or 0) if left is not None else 0)


def parse_entries(names: Iterable[str]) -> list[Entry]:
    return [e for e in (parse_entry(n) for n in names) if e is not None]


def boot_order(entries: Iterable[Entry]) -> list[Entry]:
    """The entries in the order systemd-boot lists them: bad ones last, then the newest generation first (its
    strverscmp of the names, descending), more tries left first, fewer tries done first."""
    return sorted(entries, key=lambda e: (e.state == "bad", -e.generation, e.slot != "b",
                                          -(e.tries_left if e.tries_left is not None else 1 << 30), e.tries_done))


def other(slot: str) -> str:
    return SLOTS[1 - SLOTS.index(check_slot(slot))]


def slot_entries(entries: Iterable[Entry], slot: str) -> list[Entry]:
    return [e for e in entries if e.slot == slot]


def running(entries: Sequence[Entry], booted: str) -> Entry:
    """The entry of the booted slot (the newest if several: systemd-boot boots that one)."""
    mine = boot_order(slot_entries(entries, booted))
    if not mine:
        raise UserError(f"the booted slot {booted} has no boot entry in {ENTRY_DIR}",
                        hint="the ESP was changed by hand; reinstall the image")
    return mine[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What ``vpk update`` does, decided from the entries and the channel (pure)."""

    action: str                     # "update" | "pending" | "current" | "refused"
    reason: str
    slot: str = ""                  # the slot to write (the inactive one)
    remove: tuple[Entry, ...] = ()  # its old entries, deleted before its partition is written
    entry: Entry | None = None      # the new trial entry, written last (the commit point)


def plan_update(entries: Sequence[Entry], booted: str, channel_generation: int) -> Plan:
    """Update to ``channel_generation`` when it is newer than the running one and has not failed here before."""
    current = running(entries, booted)
    target = other(booted)
    if current.state == "trial":
        return Plan(action="refused", reason=f"generation {current.generation} (slot {booted}) is still on trial; "
                                             "it must pass its health checks first")
    if channel_generation <= current.generation:
        return Plan(action="current", reason=f"generation {current.generation} is the newest (the channel has "
                                             f"{channel_generation})")
    waiting = [e for e in slot_entries(entries, target) if e.generation == channel_generation and e.state == "trial"]
    if waiting:
        return Plan(action="pending", reason=f"generation {channel_generation} is in slot {target} "
                                             f"({waiting[0].name}) and waits for its trial boot", slot=target,
                    entry=waiting[0])
    failed = [e for e in entries if e.generation == channel_generation and e.state == "bad"]
    if failed:
        return Plan(action="refused", reason=f"generation {channel_generation} failed its trial boot on this "
                                             f"device ({failed[0].name}); waiting for a newer one")
    return Plan(action="update", reason=f"generation {current.generation} -> {channel_generation} into slot "
                                        f"{target}", slot=target, remove=tuple(slot_entries(entries, target)),
                entry=new_entry(channel_generation, target))
