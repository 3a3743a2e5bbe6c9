"""A profile's lock against the profile and its repositories: the check of ``vcomp lock --check``, the relock
of ``vcomp lock``, and the checked inputs every builder starts from (:func:`load_locked`).

Returns data and raises :class:`~composer.errors.UserError`; never prints (the CLI says what it found and
chooses the exit code).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from composer.advisory.match import upgrade_fixes
from composer.advisory.osv import Advisory
from composer.errors import UserError
from composer.package.build import default_cache
from composer.profile.load import load_profile
from composer.profile.model import Profile
from composer.repo.client import load_trusted_root
from composer.solve.lock import (
    RepositorySources,
    diff_locks,
    kept_versions,
    lock_path,
    missing_packages,
    open_sources,
    read_lock,
    resolve_profile,
    staleness,
    write_lock,
)
from composer.solve.lockcheck import check_lock, lock_problems
from composer.solve.lockmodel import Lock
from composer.solve.outdated import OutdatedPackage, Served, outdated_packages


def repos_cache() -> Path:
    """Where verified repository metadata is cached (under ``$VCOMP_CACHE``)."""
    return default_cache() / "repos"


@dataclass(frozen=True, slots=True, kw_only=True)
class LockStatus:
    """What ``vcomp lock --check`` found for one profile."""

    target: Path                   # PROFILE.lock
    exists: bool
    problems: tuple[str, ...] = ()  # why the lock no longer matches (empty: up to date)
    newer: int = 0                  # locked packages the repositories serve a newer version of (when up to date)

    @property
    def up_to_date(self) -> bool:
        return self.exists and not self.problems


@dataclass(frozen=True, slots=True, kw_only=True)
class Relocked:
    """What ``vcomp lock`` wrote for one profile."""

    target: Path
    doc: Lock                      # the lock written
    changes: tuple[str, ...]       # the lines of the difference with the previous lock
    was_locked: bool               # a previous lock existed


def check(profile_path: Path, cache: Path | None = None) -> LockStatus:
    """The staleness, the packages gone from the repositories, and what the build's check refuses (each
    checked only when the previous found nothing)."""
    profile = load_profile(profile_path)
    target = lock_path(profile_path)
    old = read_lock(target)
    sources = open_sources(profile, cache or repos_cache())
    if old is None:
        return LockStatus(target=target, exists=False)
    stale = staleness(profile, old, sources.fingerprints)
    stale += [] if stale else missing_packages(old, sources)
    stale += [] if stale else lock_problems(profile, old, sources)[1]  # what build's check refuses
    newer = 0 if stale else len(outdated_packages(old, resolve_profile(profile, sources),
                                                  served_versions(old, sources)))
    return LockStatus(target=target, exists=True, problems=tuple(stale), newer=newer)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outdated:
    """What ``vcomp outdated`` found for one profile."""

    profile: Path
    target: Path                            # PROFILE.lock
    packages: tuple[OutdatedPackage, ...]   # by architecture, then name
    stale: tuple[str, ...] = ()             # why the lock no longer matches its profile (empty: it does)


def served_versions(lock: Lock, sources: RepositorySources) -> Served:
    """arch -> name -> (version text, scheme) of every version the repositories serve of the locked names."""
    out: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for arch, rows in lock.architectures.items():
        index = sources.lookup(arch, [p.name for p in rows])
        for p in rows:
            entries = (index.entry(s.id) for s in index.named(p.name))
            out.setdefault(arch, {})[p.name] = [(e.version_text, e.version_scheme) for e in entries
                                                if e.name == p.name]
    return out


def outdated(profile_path: Path, cache: Path | None = None, *,
             probe: Callable[[Path], Sequence[Advisory]] = lambda _path: ()) -> Outdated:
    """The locked packages of a profile that the repositories serve newer versions of: the newest the profile
    allows (a fresh resolution, repository priorities and pins included) and the newest served at all, with the
    advisories an upgrade fixes among those ``probe`` reads for the profile (composer.advisory.audit.FeedProbe)."""
    profile, target, lock, sources = _opened(profile_path, cache)
    found = outdated_packages(lock, resolve_profile(profile, sources), served_versions(lock, sources))
    advisories = probe(profile_path) if found else ()
    schemes = {(arch, p.name): p.version_scheme for arch, rows in lock.architectures.items() for p in rows}
    found = [dataclasses.replace(p, fixes=upgrade_fixes(p.name, schemes[(p.arch, p.name)], p.locked, p.allowed,
                                                        advisories)) for p in found]
    return Outdated(profile=profile_path, target=target, packages=tuple(found),
                    stale=tuple(staleness(profile, lock, sources.fingerprints)))


def relock(profile_path: Path, *, upgrade: bool = False, update: Sequence[str] = (),
           cache: Path | None = None) -> Relocked:
    """Resolve the profile and write its lock: the previous versions kept, except ``update`` (or all with
    ``upgrade``)."""
    profile = load_profile(profile_path)
    target = lock_path(profile_path)
    old = read_lock(target)
    sources = open_sources(profile, cache or repos_cache())
    keep = {} if upgrade else kept_versions(old, update)
    doc = resolve_profile(profile, sources, keep)
    changes = diff_locks(old, doc)
    write_lock(target, doc)
    return Relocked(target=target, doc=doc, changes=tuple(changes), was_locked=bool(old))


def lock_staleness(profile_path: Path) -> list[str]:
    """Why a profile's lock no longer matches it, without the network (the profile's digest, the pinned trust
    roots, the architectures; a missing lock): what ``vcomp plan`` refuses before planning."""
    profile = load_profile(profile_path)
    lock = read_lock(lock_path(profile_path))
    if lock is None:
        return [f"there is no lock ({lock_path(profile_path).name} does not exist)"]
    fingerprints = {r.name: hashlib.sha256(load_trusted_root(r.root)).hexdigest() for r in profile.repositories}
    return staleness(profile, lock, fingerprints)


def _opened(profile_path: Path, cache: Path | None) -> tuple[Profile, Path, Lock, RepositorySources]:
    """The profile, its lock's path, the lock (refused when missing) and the repository sources."""
    profile = load_profile(profile_path)
    target = lock_path(profile_path)
    lock = read_lock(target)
    if lock is None:
        raise UserError(f"{profile_path} has no lock ({target})", hint=f"run: vcomp lock {profile_path}")
    return profile, target, lock, open_sources(profile, cache or repos_cache())


def load_locked(profile_path: Path, cache: Path | None = None) -> tuple[Profile, Lock, str, RepositorySources]:
    """Profile, its lock (refused when stale), the lock's digest and the repository sources."""
    profile, target, lock, sources = _opened(profile_path, cache)
    stale = staleness(profile, lock, sources.fingerprints)
    if stale:
        raise UserError(f"{target} is stale: {'; '.join(stale)}", hint=f"run: vcomp lock {profile_path}")
    check_lock(profile, lock, sources, target)  # checked, not trusted: exactly the profile's resolution
    return profile, lock, hashlib.sha256(target.read_bytes()).hexdigest(), sources
