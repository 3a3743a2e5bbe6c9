"""Pure cache policy: sizes as people write them, and which entries least-recently-used eviction drops."""

from __future__ import annotations

import re
from collections.abc import Sequence

from composer.cachekinds import Entry
from composer.errors import UserError

UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_size(text: str, *, where: str = "size") -> int:
    """``2G``, ``500M``, ``1.5GiB``, ``4096`` -> bytes (binary units)."""
    m = _SIZE.match(text)
    if not m:
        raise UserError(f"{where}: '{text}' is not a size", hint="write a number with an optional unit: 500M, 2G, 1T")
    return int(float(m.group(1)) * UNITS[m.group(2).upper()])


def human(n: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if n >= UNITS[unit]:
            return f"{n / UNITS[unit]:.1f} {unit}iB"
    return f"{n} B"


def evictions(entries: Sequence[Entry], *, keep_last: int | None = None, max_size: int | None = None) -> list[Entry]:
    """The entries to remove, least recently used first.

    ``keep_last``: keep only the N most recently used entries of each kind. ``max_size``: then drop the
    least recently used entries (of all kinds) until the rest fits. Ties break on kind and key, so the
    choice is deterministic."""
    ordered = sorted(entries, key=lambda e: (-e.last_used, e.kind, e.key))  # most recent first
    drop: list[Entry] = []
    kept: list[Entry] = []
    seen: dict[str, int] = {}
    for e in ordered:
        seen[e.kind] = seen.get(e.kind, 0) + 1
        (drop if keep_last is not None and seen[e.kind] > keep_last else kept).append(e)
    if max_size is not None:
        total = sum(e.size for e in kept)
        for e in reversed(kept):  # the oldest first, until the rest fits
            if total <= max_size:
                break
            drop.append(e)
            total -= e.size
    return sorted(drop, key=lambda e: (e.last_used, e.kind, e.key))
