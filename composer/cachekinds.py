"""The caches vcomp keeps, as one interface so `vcomp cache verify|gc` treats them alike.

A cache lives under ``default_cache()`` (``$VCOMP_CACHE`` or ``$XDG_CACHE_HOME/vcomp``). Each kind
(image outputs, downloaded packages, ...) implements :class:`CacheKind`: it lists its entries with
their size and when they were last used, verifies one entry against the digests recorded when it
was written, and removes one entry under that entry's lock. Entries are written to a temporary
name, fsynced and renamed into place, so a reader never sees a partial entry; a reader that
finds an entry failing verification treats it as a miss (and removes it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    kind: str          # "images", "packages", ...
    key: str           # the entry's content-derived id inside its kind
    path: Path         # where it lives (file or directory)
    size: int          # bytes on disk
    last_used: float   # seconds since the epoch of the last read or write (for least-recently-used eviction)


class CacheKind(Protocol):
    name: str

    def entries(self, cache_root: Path) -> list[Entry]:
        """Every complete entry of this kind (temporary/partial ones are not entries)."""
        ...

    def verify(self, cache_root: Path, entry: Entry) -> list[str]:
        """What is wrong with ``entry`` (one line each, naming the file); empty when it is intact."""
        ...

    def remove(self, cache_root: Path, entry: Entry) -> None:
        """Remove ``entry`` atomically (rename away, then delete) under its lock."""
        ...
