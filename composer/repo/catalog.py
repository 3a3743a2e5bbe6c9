"""A whole repository read for reports (``repo stats``, ``repo site``, ``graph``): every architecture's verified
index and, on demand, a package's manifest, through :class:`RepositoryClient` (the I/O edge of those reports).

A local repository directory is read pinned to its own ``metadata/root.json`` unless a root is given: whoever runs
the report holds the repository, so its newest root is what it trusts; any URL needs ``--root``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from composer.arch import ARCHES
from composer.errors import UserError
from composer.package.archive import read_header
from composer.package.manifest import Manifest
from composer.repo.client import RepositoryClient, load_trusted_root
from composer.repo.index import IndexEntry


@dataclass(frozen=True, slots=True, kw_only=True)
class Catalog:
    """Every entry of every architecture's index (noarch packages once), sorted."""

    location: str
    architectures: tuple[str, ...]
    entries: tuple[IndexEntry, ...]

    def names(self) -> list[str]:
        return sorted({e.name for e in self.entries})

    def versions(self, name: str) -> list[IndexEntry]:
        """The entries of ``name``, newest first, then by architecture."""
        found = [e for e in self.entries if e.name == name]
        found.sort(key=lambda e: e.arch)
        found.sort(key=lambda e: e.order_key(), reverse=True)
        return found


def open_client(repo: str, root: str | None, cache: Path) -> RepositoryClient:
    """A client of ``repo`` (a directory or URL) pinned to ``root`` (default: a directory's own root)."""
    if root is None:
        own = Path(repo) / "metadata" / "root.json"
        if "://" in repo or not own.is_file():
            raise UserError(f"{repo}: which trust root? (not a local repository directory with metadata/root.json)",
                            hint="pass the pinned root with --root ROOT.json")
        root = str(own)
    return RepositoryClient(repo, load_trusted_root(Path(root)), cache)


def load_catalog(client: RepositoryClient) -> Catalog:
    arches = tuple(a for a in ARCHES if client.index_digest(a))
    if not arches:
        raise UserError(f"{client.urls[0]}: the repository publishes no package index",
                        hint="publish it first: vcomp repo publish DIR")
    unique = {e.sha256: e for a in arches for e in client.index(a)}
    entries = sorted(unique.values(), key=lambda e: (e.name, e.arch, e.path))
    return Catalog(location=client.urls[0], architectures=arches, entries=tuple(entries))


def manifest(client: RepositoryClient, entry: IndexEntry) -> Manifest:
    """The verified package's manifest (the package is fetched into the cache once)."""
    return read_header(client.fetch(entry)).manifest


def manifests(client: RepositoryClient, entries: list[IndexEntry]) -> Iterator[tuple[IndexEntry, Manifest]]:
    for e in entries:
        yield e, manifest(client, e)
