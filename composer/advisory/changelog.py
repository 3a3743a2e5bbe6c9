"""Advisories derived from Debian changelogs (pure): the CVEs each Debian revision fixed.

A package's ``usr/share/doc/NAME/changelog.Debian.gz`` lists, newest first, every upload of its source package
with the text of its changes; an upload whose text names ``CVE-YYYY-NNNN`` fixed it (Debian's security team and
maintainers write them so). Every version older than the first upload naming a CVE is therefore affected:
one OSV advisory per CVE, id ``DEBIAN-CVE-YYYY-NNNN`` (the ids Debian's own OSV feed uses) with the CVE as its
alias, one ``affected`` entry per binary package of the source, ecosystem ``Debian:13``, range
``introduced 0, fixed REVISION``. Severity stays ``unknown``: the upload's ``urgency=`` is kept in
``database_specific.urgency`` as a hint only (it says how fast the upload should migrate, not how severe the
flaw is).

Hostile input is bounded: the compressed file, the decompressed text (a longer changelog is cut; the newest
entries come first, so the cut loses only the oldest history), the line length and the counts of entries and
CVEs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from composer.advisory.osv import Advisory
from composer.debversion import dpkg_compare
from composer.errors import InvalidPackage

MAX_COMPRESSED = 16 << 20
MAX_TEXT = 8 << 20          # decompressed bytes read; the rest is not read
MAX_LINE = 4096             # longer lines are skipped
MAX_ENTRIES = 20_000
MAX_CVES = 20_000           # per changelog
ECOSYSTEM = "Debian:13"
ID_PREFIX = "DEBIAN-"

_HEADER = re.compile(r"^([a-z0-9][a-z0-9+.-]*) \(([^()\s]{1,200})\) ([^;]{0,200});(.*)$")
_TRAILER = re.compile(r"^ -- (.{0,400}?)  (.{0,100})$")
_URGENCY = re.compile(r"urgency=([A-Za-z]+)")
_CVE = re.compile(r"\bCVE-(\d{4})-(\d{4,7})\b")


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One upload: its source, version, urgency, date (RFC 3339, empty if unreadable) and the CVEs it names,
    each with the first line naming it."""

    source: str
    version: str
    urgency: str
    date: str
    cves: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Changelog:
    entries: tuple[Entry, ...]
    truncated: bool


def gunzip(data: bytes, origin: str, limit: int = MAX_TEXT) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of a gzip stream, and whether there was more (never more is inflated)."""
    if len(data) > MAX_COMPRESSED:
        raise InvalidPackage(f"{origin}: {len(data)} bytes compressed, more than a changelog may have "
                             f"({MAX_COMPRESSED})", hint="the package is hostile or corrupt")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(data, limit)
    except zlib.error as exc:
        raise InvalidPackage(f"{origin}: not a gzip file ({exc})", hint="the package is corrupt") from None
    return text, bool(inflater.unconsumed_tail)


def parse(text: bytes, *, truncated: bool = False) -> Changelog:
    """The entries of a Debian changelog (dpkg-parsechangelog's format), newest first; lines that fit no
    part of the format are body text."""
    entries: list[Entry] = []
    current: dict[str, str] | None = None
    cves: dict[str, str] = {}
    total = 0

    def close(date: str) -> None:
        nonlocal current, cves
        if current is not None and len(entries) < MAX_ENTRIES:
            entries.append(Entry(source=current["source"], version=current["version"], urgency=current["urgency"],
                                 date=date, cves=tuple(cves.items())))
        current, cves = None, {}

    for raw in text.decode("utf-8", errors="replace").splitlines():
        if len(raw) > MAX_LINE:
            continue
        head = _HEADER.match(raw)
        if head:
            close("")
            urgency = _URGENCY.search(head[4])
            current = {"source": head[1], "version": head[2], "urgency": urgency[1].lower() if urgency else ""}
            continue
        if current is None:
            continue
        trailer = _TRAILER.match(raw)
        if trailer:
            close(_date(trailer[2]))
            continue
        for m in _CVE.finditer(raw):
            if total >= MAX_CVES:
                break
            cve = f"CVE-{m[1]}-{m[2]}"
            if cve not in cves:
                cves[cve] = " ".join(raw.split()).lstrip("*- ")[:200]
                total += 1
    close("")
    return Changelog(entries=tuple(entries), truncated=truncated)


def _date(text: str) -> str:
    try:
        when = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return ""
    if when.tzinfo is None:
        return ""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """A Debian source package in an import: its changelog and its binary packages (name, version)."""

    name: str
    changelog: Changelog
    binaries: tuple[tuple[str, str], ...]


def first_fixes(changelog: Changelog) -> dict[str, tuple[Entry, str]]:
    """CVE -> the upload that fixed it and the line naming it, the upload's version being the **lowest version
    that contains the fix**: every upload above an entry in the changelog contains that entry, so the fix is
    the dpkg-lowest version among the oldest entry naming the CVE and every newer one. (A stable backport
    ``2.9.0-1~deb13u1`` sorts below the unstable ``2.9.0-1`` whose entry names the CVE, and has the fix.)"""
    fixes: dict[str, tuple[Entry, str]] = {}
    floor = ""
    for entry in changelog.entries:                      # newest first: the last one naming a CVE is the oldest
        if not floor or older(entry.version, floor):
            floor = entry.version
        for cve, line in entry.cves:
            fixes[cve] = (dataclasses.replace(entry, version=floor), line)
    return fixes


def older(a: str, b: str) -> bool:
    """a < b in dpkg's order (False when either does not parse)."""
    try:
        return dpkg_compare(a, b) < 0
    except ValueError:
        return False


def derive(sources: Iterable[Source], ecosystem: str = ECOSYSTEM) -> list[Advisory]:
    """One advisory per CVE across ``sources``, sorted by id. A binary whose version orders below its source's
    newest changelog entry is versioned apart from its source (``cpp`` of gcc-defaults): it gets no affected
    entry, as a range in the source's versions would say nothing true about it."""
    by_cve: dict[str, list[tuple[str, str, Entry, str]]] = {}
    for source in sources:
        if not source.changelog.entries:
            continue
        newest = source.changelog.entries[0].version
        binaries = [(name, version) for name, version in source.binaries if not older(version, newest)]
        for cve, (entry, line) in first_fixes(source.changelog).items():
            for name, _version in binaries:
                by_cve.setdefault(cve, []).append((source.name, name, entry, line))
    return [_advisory(cve, fixes, ecosystem) for cve, fixes in sorted(by_cve.items())]


def _advisory(cve: str, fixes: Sequence[tuple[str, str, Entry, str]], ecosystem: str) -> Advisory:
    dates = sorted(e.date for _, _, e, _ in fixes if e.date) or ["1970-01-01T00:00:00Z"]
    source, _, entry, line = min(fixes, key=lambda f: (f[2].date or "9", f[0], f[1]))
    affected = [{"package": {"ecosystem": ecosystem, "name": name},
                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": e.version}]}],
                 "database_specific": {"source": src, "urgency": e.urgency}}
                for src, name, e, _ in sorted(fixes, key=lambda f: (f[1], f[0]))]
    sources = sorted({f[0] for f in fixes})
    doc = {"schema_version": "1.6.0", "id": ID_PREFIX + cve, "aliases": [cve], "modified": dates[-1],
           "published": dates[0], "summary": f"{cve}, fixed in {', '.join(sources)}",
           "details": f"{source} {entry.version} (changelog.Debian): {line}",
           "affected": affected,
           "references": [{"type": "ADVISORY", "url": f"https://security-tracker.debian.org/tracker/{cve}"}],
           "database_specific": {"severity": "unknown", "derived-from": "changelog.Debian"}}
    return Advisory.from_dict(doc, f"{source} changelog.Debian: {cve}")
