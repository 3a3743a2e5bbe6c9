"""The image-output cache (``default_cache()/images``): one entry per output key, holding the output's
files and the ``contents.json`` of the root they were built from, each checked when read."""

from __future__ import annotations

from pathlib import Path

from composer.cachekinds import Entry
from composer.caches import store

KIND = "images"


def kind_dir(cache_root: Path) -> Path:
    return cache_root / KIND


class ImageOutputs:
    """:class:`composer.cachekinds.CacheKind` for built image outputs."""

    name = KIND

    def entries(self, cache_root: Path) -> list[Entry]:
        return store.entries(KIND, kind_dir(cache_root))

    def verify(self, cache_root: Path, entry: Entry) -> list[str]:
        return store.problems(entry.path)

    def remove(self, cache_root: Path, entry: Entry) -> None:
        store.remove(kind_dir(cache_root), entry.key)

    def sweep(self, cache_root: Path) -> int:
        """Temporary entries of killed writers, trash, and the contents-SEED.json files of format 1."""
        d = kind_dir(cache_root)
        legacy = 0
        if d.is_dir():
            for path in d.glob("contents-*.json"):
                path.unlink(missing_ok=True)
                legacy += 1
        return legacy + store.sweep_leftovers(d)
