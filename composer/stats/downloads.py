"""Hits to downloads: a request of a package target, answered 200, is one download of that package (pure).

A repository serves ``targets/packages/NAME/<sha256>.NAME-VERSION-ARCH.vpk`` (consistent snapshots) and mirrors or
other servers may drop the digest prefix or add a path prefix: a request maps to a package by its file name's
sha256 prefix, else by the package's file name (``NAME-VERSION-ARCH.vpk``), both taken from the index.
"""

from __future__ import annotations

import re
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from composer.repo.index import IndexEntry
from composer.stats.clf import Hit, Parsed

_DIGEST = re.compile(r"^([0-9a-f]{64})\.")
COUNTED = frozenset({"GET"})
OK = frozenset({200})


@dataclass(frozen=True, slots=True, kw_only=True)
class Download:
    name: str
    version: str
    arch: str
    day: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Targets:
    """The index's packages by sha256 and by file name (build with :func:`targets_of`)."""

    by_digest: Mapping[str, IndexEntry]
    by_file: Mapping[str, IndexEntry]

    def find(self, request_path: str) -> IndexEntry | None:
        path = request_path.split("?", 1)[0].split("#", 1)[0]
        base = urllib.parse.unquote(path.rsplit("/", 1)[-1])
        if not base.endswith(".vpk"):
            return None
        m = _DIGEST.match(base)
        if m and m.group(1) in self.by_digest:
            return self.by_digest[m.group(1)]
        return self.by_file.get(base) or self.by_file.get(urllib.parse.unquote(base))


def targets_of(entries: Iterable[IndexEntry]) -> Targets:
    chosen = sorted({e.sha256: e for e in entries}.values(), key=lambda e: (e.name, e.arch, e.path))
    return Targets(by_digest=MappingProxyType({e.sha256: e for e in chosen}),
                   by_file=MappingProxyType({e.path.rsplit("/", 1)[-1]: e for e in chosen}))


@dataclass(frozen=True, slots=True, kw_only=True)
class Stats:
    """Downloads of a set of logs, and what the logs held besides."""

    downloads: tuple[Download, ...]
    lines: int
    malformed: Mapping[str, int]
    other: int          # well-formed requests that are not a counted download (metadata, 404s, HEAD, unknown)

    def count(self, key: Callable[[Download], str]) -> list[tuple[str, int, int]]:
        """(key, downloads, bytes) per value of ``key``, most downloaded first, then by key."""
        n: Counter[str] = Counter()
        size: Counter[str] = Counter()
        for d in self.downloads:
            n[key(d)] += 1
            size[key(d)] += d.size
        return sorted(((k, n[k], size[k]) for k in n), key=lambda row: (-row[1], row[0]))

    def of(self, name: str) -> Stats:
        """Only the downloads of package ``name``."""
        return Stats(downloads=tuple(d for d in self.downloads if d.name == name), lines=self.lines,
                     malformed=self.malformed, other=self.other)


BY: Mapping[str, Callable[[Download], str]] = MappingProxyType({
    "package": lambda d: d.name,
    "version": lambda d: f"{d.name} {d.version}",
    "arch": lambda d: d.arch,
    "day": lambda d: d.day,
})
"""How ``vcomp repo stats --by`` groups downloads."""


def downloads(parsed: Sequence[Parsed], targets: Targets) -> Stats:
    found: list[Download] = []
    other = 0
    for p in parsed:
        for hit in p.hits:
            entry = _counted(hit, targets)
            if entry is None:
                other += 1
                continue
            found.append(Download(name=entry.name, version=entry.version_text, arch=entry.arch, day=hit.day,
                                  size=hit.size))
    malformed: Counter[str] = Counter()
    for p in parsed:
        malformed.update(p.malformed)
    found.sort(key=lambda d: (d.day, d.name, d.version, d.arch))
    return Stats(downloads=tuple(found), lines=sum(p.lines for p in parsed),
                 malformed=MappingProxyType(dict(sorted(malformed.items()))), other=other)


def _counted(hit: Hit, targets: Targets) -> IndexEntry | None:
    if hit.method not in COUNTED or hit.status not in OK:
        return None
    return targets.find(hit.path)


def empty() -> Stats:
    return Stats(downloads=(), lines=0, malformed=MappingProxyType({}), other=0)
