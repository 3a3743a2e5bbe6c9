"""The setuid and setgid files a locked package brings, read from the package itself (fetched and verified
through TUF): what the ``allow-setuid`` policy gate of ``vcomp plan`` asks about a changed package."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from composer.package.archive import read_header
from composer.pkgmgr.install import fetch_locked
from composer.profile.load import load_profile
from composer.solve.lock import RepositorySources, open_sources, read_lock
from composer.solve.relock import repos_cache


class Named(Protocol):
    """A package of one architecture (``composer.gitops.plan.PackageChange`` is one)."""

    @property
    def arch(self) -> str: ...

    @property
    def name(self) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SetuidProbe:
    """``probe(profile_path, package)``: the setuid/setgid paths of the package locked for the profile; each
    profile's repositories opened once."""

    cache: Path = field(default_factory=repos_cache)
    _sources: dict[Path, RepositorySources] = field(default_factory=dict)

    def __call__(self, path: Path, change: Named) -> list[str]:
        if path not in self._sources:
            self._sources[path] = open_sources(load_profile(path), self.cache)
        lock = read_lock(path.with_suffix(".lock"))
        row = lock.package(change.arch, change.name) if lock else None
        if row is None:
            return []
        (fetched,) = fetch_locked(self._sources[path], [row], change.arch)
        entries = read_header(fetched.path).manifest.entries
        return [e.path for e in entries if e.type == "file" and e.mode & 0o6000]
