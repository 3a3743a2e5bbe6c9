"""The Debian import's advisories (the edge): each imported package's changelog.Debian.gz read from its unpacked
``.deb`` (never through a symlink: a link to another package's documentation is that package's changelog),
grouped by Debian source package, turned into OSV advisories by :mod:`composer.advisory.changelog`."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from composer.advisory.changelog import MAX_COMPRESSED, Changelog, Source, derive, gunzip, older, parse
from composer.advisory.feed import Feed


@dataclass(frozen=True, slots=True, kw_only=True)
class Binary:
    """An imported binary package: its name, Debian version, source package and unpacked tree."""

    name: str
    version: str
    source: str
    tree: Path


def read_changelog(tree: Path, name: str) -> Changelog | None:
    """``usr/share/doc/NAME/changelog.Debian.gz`` of an unpacked package, when it is a regular file reached
    without a symlink, read with bounds (:func:`changelog.gunzip`)."""
    path = tree
    for part in ("usr", "share", "doc", name, "changelog.Debian.gz"):
        path = path / part
        try:
            st = path.lstat()
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            return None
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_COMPRESSED:
        return None
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_COMPRESSED + 1)
    text, truncated = gunzip(data, str(path))
    return parse(text, truncated=truncated)


def source_name(fields: Mapping[str, str], default: str) -> str:
    """A Packages stanza's ``Source: name (version)`` field's name (the package's own name when absent)."""
    value = fields.get("Source", "").split("(")[0].strip()
    return value or default


def sources(binaries: Iterable[Binary]) -> list[Source]:
    """The binaries grouped by source, each source with the newest changelog one of its binaries carries."""
    groups: dict[str, list[Binary]] = {}
    for b in binaries:
        groups.setdefault(b.source, []).append(b)
    out = []
    for name, members in sorted(groups.items()):
        logs = [log for b in sorted(members, key=lambda b: b.name) if (log := read_changelog(b.tree, b.name))]
        logs = [log for log in logs if log.entries]
        if not logs:
            continue
        newest = logs[0]
        for log in logs[1:]:
            if older(newest.entries[0].version, log.entries[0].version):
                newest = log
        pairs = tuple(sorted({(b.name, b.version) for b in members}))
        out.append(Source(name=name, changelog=newest, binaries=pairs))
    return out


def debian_feed(binaries: Iterable[Binary]) -> Feed:
    """The advisories of an import: one per CVE its packages' changelogs name."""
    return Feed(advisories=tuple(derive(sources(binaries))))
