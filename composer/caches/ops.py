"""`vcomp cache` over the registry of kinds: verify, gc and the automatic size cap (I/O at this edge)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from composer import settings
from composer.cachekinds import CacheKind, Entry
from composer.caches import policy

MAX_ENV = settings.CACHE_MAX.name


@runtime_checkable
class Sweepable(Protocol):
    """A kind that can also remove what killed writers left behind (temporary entries, trash)."""

    def sweep(self, cache_root: Path) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Collected:
    removed: tuple[Entry, ...]
    kept: tuple[Entry, ...]
    leftovers: int                # temporary and trash directories of killed processes


def all_entries(kinds: Sequence[CacheKind], root: Path) -> list[tuple[CacheKind, Entry]]:
    return [(k, e) for k in kinds for e in k.entries(root)]


def verify(kinds: Sequence[CacheKind], root: Path) -> tuple[int, list[str]]:
    """(entries checked, one line per problem naming the kind, entry and file)."""
    pairs = all_entries(kinds, root)
    bad = [f"{e.kind} {e.key}: {line}" for k, e in pairs for line in k.verify(root, e)]
    return len(pairs), bad


def cap_from_env() -> int:
    return policy.parse_size(settings.CACHE_MAX.get(), where=MAX_ENV)


def collect(kinds: Sequence[CacheKind], root: Path, *, keep_last: int | None = None,
            max_size: int | None = None) -> Collected:
    """Least-recently-used eviction (each entry removed under its lock), then the leftovers of killed
    writers."""
    pairs = all_entries(kinds, root)
    owner = {(e.kind, e.key): k for k, e in pairs}
    removed = policy.evictions([e for _k, e in pairs], keep_last=keep_last, max_size=max_size)
    for e in removed:
        owner[(e.kind, e.key)].remove(root, e)
    gone = {(e.kind, e.key) for e in removed}
    kept = tuple(e for _k, e in pairs if (e.kind, e.key) not in gone)
    leftovers = sum(k.sweep(root) for k in kinds if isinstance(k, Sweepable))
    return Collected(removed=tuple(removed), kept=kept, leftovers=leftovers)
