"""What each page of the site shows, computed from the repository's entries (pure; no I/O, no HTML)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from composer.graph import model as graphs
from composer.package.manifest import Manifest
from composer.repo.index import IndexEntry
from composer.site.data import Advisory, Metric, SiteData
from composer.stats.downloads import Stats

MAX_FILES = 400          # files listed on a package page (the rest counted)
MAX_TEXT = 2000          # characters of a description shown
_SAFE = re.compile(r"[^A-Za-z0-9._+-]")


def slug(name: str) -> str:
    """A file name for package ``name``: itself when it is plain, else a sanitised form with a digest (so two
    hostile names never share a page and no name escapes its directory)."""
    plain = _SAFE.sub("_", name)[:80]
    if plain == name and not name.startswith("."):
        return name
    return f"_{plain.lstrip('.')}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Relation:
    name: str
    kind: str          # depends | recommends
    page: bool         # the repository has a page for it


@dataclass(frozen=True, slots=True, kw_only=True)
class FileRow:
    path: str
    type: str
    mode: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageView:
    name: str
    slug: str
    newest: IndexEntry
    versions: tuple[IndexEntry, ...]          # newest first
    architectures: tuple[str, ...]
    depends: tuple[Relation, ...]
    rdepends: tuple[str, ...]
    files: tuple[FileRow, ...]
    files_total: int
    files_of: str                             # which build the files are of ("nano 8.4 x86_64")
    advisories: tuple[Advisory, ...]
    metrics: tuple[Metric, ...]
    downloads: tuple[tuple[str, int], ...]    # (version arch, downloads), most first
    downloads_total: int
    graph_arch: str

    @property
    def description(self) -> str:
        d = self.newest.description
        return d if len(d) <= MAX_TEXT else d[:MAX_TEXT] + "\u2026"


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteModel:
    title: str
    architectures: tuple[str, ...]
    packages: tuple[PackageView, ...]
    advisories: tuple[Advisory, ...]
    stats: Stats


def _newest(entries: Sequence[IndexEntry]) -> list[IndexEntry]:
    out = sorted(entries, key=lambda e: (e.arch, e.path))
    out.sort(key=lambda e: e.order_key(), reverse=True)
    return out


def graph_arch(entries: Sequence[IndexEntry], arches: Sequence[str]) -> str:
    """The architecture a package's graph is drawn for: the first of the repository's that has it."""
    have = {e.arch for e in entries}
    return next((a for a in arches if a in have), next(iter(arches), "noarch"))


def build_model(title: str, arches: Sequence[str], entries: Sequence[IndexEntry],
                manifests: Mapping[str, Manifest], stats: Stats, data: SiteData) -> SiteModel:
    """``manifests``: sha256 -> manifest of the builds whose files are listed (see :func:`listed_builds`)."""
    by_name: dict[str, list[IndexEntry]] = {}
    for e in entries:
        by_name.setdefault(e.name, []).append(e)
    universes = {a: graphs.universe(entries, a) for a in arches}
    into = {a: graphs.reverse_edges(u) for a, u in universes.items()}
    pages = []
    for name in sorted(by_name):
        versions = _newest(by_name[name])
        pages.append(_package(name, versions, arches, universes, into, manifests, stats, data, set(by_name)))
    advisories = tuple(sorted((a for p in pages for a in p.advisories), key=lambda a: (a.id, a.package)))
    return SiteModel(title=title, architectures=tuple(arches), packages=tuple(pages), advisories=advisories,
                     stats=stats)


def listed_builds(entries: Sequence[IndexEntry], arches: Sequence[str]) -> list[IndexEntry]:
    """The one build per name whose files a page lists: the newest version, on the first architecture."""
    by_name: dict[str, list[IndexEntry]] = {}
    for e in entries:
        by_name.setdefault(e.name, []).append(e)
    out = []
    for name in sorted(by_name):
        versions = _newest(by_name[name])
        newest = [e for e in versions if e.order_key() == versions[0].order_key()]
        arch = graph_arch(newest, arches)
        out.append(next((e for e in newest if e.arch == arch), newest[0]))
    return out


def _package(name: str, versions: list[IndexEntry], arches: Sequence[str],
             universes: Mapping[str, graphs.Universe], into: Mapping[str, Mapping[str, list[graphs.Edge]]],
             manifests: Mapping[str, Manifest], stats: Stats, data: SiteData, known: set[str]) -> PackageView:
    depends: dict[str, str] = {}
    rdepends: set[str] = set()
    for arch, u in universes.items():
        if name in u.packages:
            for edge in u.edges_of(name):
                if depends.get(edge.target) != "depends":
                    depends[edge.target] = edge.kind
            rdepends.update(e.source for e in into[arch].get(name, []))
    shown = next((e for e in listed_builds(versions, arches)), versions[0])
    manifest = manifests.get(shown.sha256)
    rows = [FileRow(path=f"/{f.path}", type=f.type, mode=f"{f.mode:04o}", size=f.size)
            for f in (manifest.entries if manifest else ())]
    mine = stats.of(name)
    by_build = mine.count(lambda d: f"{d.version} {d.arch}")
    return PackageView(
        name=name, slug=slug(name), newest=versions[0], versions=tuple(versions),
        architectures=tuple(sorted({e.arch for e in versions})),
        depends=tuple(Relation(name=n, kind=k, page=n in known) for n, k in sorted(depends.items())),
        rdepends=tuple(sorted(rdepends - {name})), files=tuple(rows[:MAX_FILES]), files_total=len(rows),
        files_of=f"{shown.name} {shown.version_text} {shown.arch}" if manifest else "",
        advisories=tuple(data.advisories(name)), metrics=tuple(data.metrics(versions[0])),
        downloads=tuple((k, n) for k, n, _ in by_build), downloads_total=len(mine.downloads),
        graph_arch=graph_arch(versions, arches))
