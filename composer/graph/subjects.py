"""What ``vcomp graph`` and ``vcomp size`` draw, read from disk and repositories (the I/O edge of composer.graph):
a profile's lock (its rows matched by sha256 to the verified indexes of the profile's repositories) or a package
of a repository."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from composer.errors import UserError
from composer.graph import model
from composer.graph.sizes import Breakdown, breakdown
from composer.package.manifest import Manifest
from composer.repo.client import RepositoryClient
from composer.repo.index import IndexEntry, close_names

PROFILE_SUFFIXES = (".yaml", ".yml", ".lock")


def is_profile(subject: str) -> bool:
    return subject.endswith(PROFILE_SUFFIXES) or "/" in subject


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedSet:
    """A lock's packages of one architecture with their index entries and the client that serves each."""

    title: str
    arch: str
    entries: tuple[IndexEntry, ...]
    requested: tuple[str, ...]
    clients: dict[str, RepositoryClient]    # sha256 -> its repository's client

    def universe(self) -> model.Universe:
        return model.universe(self.entries, self.arch)


def locked_set(subject: str, arch: str) -> LockedSet:
    from composer.profile.load import load_profile
    from composer.solve.lock import lock_path, open_sources, read_lock
    from composer.solve.relock import repos_cache
    path = Path(subject)
    profile_path = path.with_suffix(".yaml") if path.suffix == ".lock" else path
    profile = load_profile(profile_path)
    lock = read_lock(lock_path(profile_path))
    if lock is None:
        raise UserError(f"{profile_path} has no lock ({lock_path(profile_path)})",
                        hint=f"run: vcomp lock {profile_path}")
    rows = lock.packages(arch)
    if not rows:
        raise UserError(f"{lock_path(profile_path)} has no packages for {arch}",
                        hint=f"pick one of its architectures with --arch: {', '.join(sorted(lock.architectures))}")
    sources = open_sources(profile, repos_cache())
    by_sha: dict[str, tuple[IndexEntry, RepositoryClient]] = {}
    for row in rows:
        if row.repository not in sources.clients:
            raise UserError(f"{lock_path(profile_path)}: {row.name} comes from repository '{row.repository}', "
                            "which the profile no longer lists", hint=f"run: vcomp lock {profile_path}")
    index = sources.lookup(arch, [r.name for r in rows])   # (the sparse files when a whole index is behind)
    wanted = {(r.sha256, r.repository) for r in rows}
    for sid in (s.id for r in rows for s in index.named(r.name)):
        entry, origin = index.entry(sid), index.origin(sid)
        if (entry.sha256, origin) in wanted:
            by_sha.setdefault(entry.sha256, (entry, sources.clients[origin]))
    missing = [r.name for r in rows if r.sha256 not in by_sha]
    if missing:
        raise UserError(f"{lock_path(profile_path)}: {', '.join(missing[:5])} no longer served by the repositories",
                        hint=f"run: vcomp lock {profile_path}")
    requested = tuple(sorted(r.name for r in rows if r.reason.kind == "requested"))
    return LockedSet(title=profile.name, arch=arch, entries=tuple(e for e, _ in by_sha.values()),
                     requested=requested or tuple(sorted(r.name for r in rows)),
                     clients={sha: c for sha, (_, c) in by_sha.items()})


def package_universe(client: RepositoryClient, name: str, arch: str) -> model.Universe:
    u = model.universe(client.index(arch), arch)
    if name not in u.packages:
        close = close_names(name, u.packages)
        raise UserError(f"no package '{name}' for {arch} in {client.urls[0]}",
                        hint=f"did you mean {', '.join(close)}?" if close else "see: vcomp search QUERY --repo R")
    return u


def size_breakdown(s: LockedSet) -> Breakdown:
    from composer.repo.catalog import manifest
    found: dict[tuple[str, str], Manifest] = {}
    for e in s.entries:
        found[(e.name, e.version_text)] = manifest(s.clients[e.sha256], e)
    return breakdown(s.title, s.arch, found)
