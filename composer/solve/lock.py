"""Locks: the exact answer to a profile, per architecture, committed beside it (PROFILE.lock).

A lock is deterministic JSON (sorted keys, fixed indentation): format version, the digest of the
profile that produced it, the fingerprints of the pinned trust roots, the digest of every verified
index it was resolved against, and per architecture every package with name, version, arch, sha256,
size, repository, signer key id and reason. Builds use the lock; they never re-resolve.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from composer.errors import UserError
from composer.fsutil import atomic_write
from composer.limits import load_json
from composer.package.linkcheck import link_info_of, missing_needed
from composer.profile.model import Profile
from composer.repo.client import RepositoryClient, load_trusted_root
from composer.repo.index import IndexEntry
from composer.solve.lockmodel import LOCK_FORMAT, Lock, LockedPackage, Reason, lock_bytes
from composer.solve.policy import RepoPolicy
from composer.solve.pool import IndexData, SolvIndex
from composer.solve.resolve import Request, Resolver, WeakDeps, base_requests, check_capabilities
from composer.version import FullVersion, PrecedenceKey, Version, VersionError, semver_projection


def lock_path(profile: Path) -> Path:
    return profile.with_suffix(".lock")


def read_lock(path: Path) -> Lock | None:
    try:
        doc = load_json(path.read_bytes(), str(path))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise UserError(f"{path}: not a lock file ({exc})", hint="delete it and run: vcomp lock PROFILE") from None
    return Lock.from_dict(doc, str(path))


def weak_deps(profile: Profile) -> WeakDeps:
    w = profile.weak_dependencies
    return WeakDeps(recommends=w.recommends, suggests=w.suggests, packages=dict(w.packages))


def requests_for(profile: Profile, arch: str, index: SolvIndex | None = None) -> list[Request]:
    """What a profile asks for on ``arch``: its packages, kernel, init, drivers, boot loaders, then (given the
    index) the base set of ``profile.base`` for the names not already asked for (a request outranks it)."""
    reqs = [Request(name=p.name, requirement=p.requirement, features=p.features) for p in profile.packages_for(arch)]
    for role, name in (("kernel", profile.kernel.package), ("init", profile.init)):
        if name and name not in {r.name for r in reqs}:
            reqs.append(Request(name=name, reason=Reason(kind=role)))
    reqs += [Request(name=f"driver:{d}", reason=Reason.driver_for(d)) for d in profile.drivers]
    from composer.image.outputs import BOOTLOADERS, OUTPUT_TYPES  # here: vpk on a device never builds images
    needed: dict[str, list[str]] = {}  # boot binaries come from the lock, never from the host
    for out in profile.outputs:
        if arch in out.architectures:
            kind = OUTPUT_TYPES[out.type]
            for provide in [*(BOOTLOADERS[fw] for fw in kind.firmware_for(arch, out.options)),
                            *kind.bootloaders_for(out.options)]:
                needed.setdefault(provide, []).append(out.name)
    reqs += [Request(name=p, reason=Reason.bootloader_for(outs)) for p, outs in sorted(needed.items())]
    if index is not None:
        asked = {r.name for r in reqs}
        reqs += [r for r in base_requests(index, profile.base) if r.name not in asked]
    return reqs


def request_roots(profile: Profile, arch: str) -> set[str]:
    """The names a resolution of ``profile`` starts from (the base set's come from the repositories)."""
    return {r.name for r in requests_for(profile, arch)} | set(profile.weak_dependencies.packages)


@dataclass(frozen=True, slots=True, kw_only=True)
class RepositorySources:
    """A profile's repositories (implements :class:`composer.solve.sources.Sources`)."""

    clients: Mapping[str, RepositoryClient]
    fingerprints: Mapping[str, str]
    pools: Path | None = None  # where libsolv pools are cached, keyed by the verified index digests

    def index(self, arch: str) -> SolvIndex:
        """The pool of every repository's verified index of ``arch``, from the cache when it has it."""
        def loader(client: RepositoryClient) -> Callable[[], IndexData]:
            return lambda: IndexData(*client.index_documents(arch))

        return SolvIndex.cached(self.pools, arch, [(name, client.index_digest(arch), loader(client))
                                                   for name, client in self.clients.items()])

    def uses_sparse(self, arch: str) -> bool:
        """Resolve ``arch`` from the sparse index (see composer/solve/sparsepool.py and VCOMP_INDEX)?"""
        from composer.solve.sparsepool import sparse_wanted
        return sparse_wanted(self.clients, arch)

    def sparse_index(self, arch: str, roots: Iterable[str]) -> SolvIndex:
        """The pool of only the names reachable from ``roots`` (fetched name by name, cached by hash)."""
        from composer.solve.sparsepool import sparse_index
        return sparse_index(self.clients, arch, roots)

    def lookup(self, arch: str, names: Iterable[str]) -> SolvIndex:
        """A pool holding at least every entry called one of ``names``: from the sparse files when a repository
        prefers them (its whole index is behind or large), else the whole indexes' pool."""
        from composer.solve.sparsepool import named_index, prefers_sparse
        return named_index(self.clients, arch, names) if prefers_sparse(self.clients, arch) else self.index(arch)

    def digests(self, arch: str) -> dict[str, str]:
        """repository -> what its served state of ``arch`` is: the whole index's sha256, or, while the whole
        index is behind the sparse files, the sha256 of that digest and its backlog (which grows with every
        publish that changes anything until the whole index is rebuilt): a lock's ``indexes`` then still move
        exactly when the repository does."""
        return {name: served_digest(client.index_digest(arch), client.whole_behind(arch))
                for name, client in self.clients.items()}


def served_digest(whole: str, behind: int) -> str:
    return hashlib.sha256(f"{whole}+behind:{behind}".encode()).hexdigest() if whole and behind else whole


def open_sources(profile: Profile, cache: Path) -> RepositorySources:
    clients, fps = {}, {}
    for repo in profile.repositories:
        root = load_trusted_root(repo.root)
        clients[repo.name] = RepositoryClient(repo.url, root, cache, mirrors=repo.mirrors)
        fps[repo.name] = hashlib.sha256(root).hexdigest()
    return RepositorySources(clients=clients, fingerprints=fps, pools=cache / "pools")


Kept = Mapping[str, Mapping[str, str]]  # arch -> package name -> version


def resolve_profile(profile: Profile, sources: RepositorySources, keep: Kept | None = None) -> Lock:
    """Resolve every architecture; return the lock (nothing is written here).

    ``keep`` (arch -> name -> version, from the previous lock) are versions to stay at when the
    repositories now offer newer ones, as Cargo keeps a lock. A package kept below what a fresh
    resolution picks is marked ``"held": true`` in the lock, and the lock is the resolution that
    holds exactly those: so :func:`composer.solve.lockcheck.check_lock` can recompute it from the
    profile, the indexes and the held rows alone (a hand-edited version without the mark is refused).
    """
    fresh = _resolve(profile, sources, {})
    if not keep:
        return fresh
    kept = _resolve(profile, sources, keep)
    held = held_versions(fresh, kept)
    if not any(held.values()):
        return fresh
    return mark_held(_resolve(profile, sources, held), fresh)


def held_versions(fresh: Lock, lock: Lock) -> dict[str, dict[str, str]]:
    """arch -> name -> version of the rows of ``lock`` whose version differs from the fresh resolution."""
    out: dict[str, dict[str, str]] = {}
    for arch, rows in lock.architectures.items():
        now = {p.name: p.version for p in fresh.packages(arch)}
        out[arch] = {p.name: p.version for p in rows if p.name in now and now[p.name] != p.version}
    return out


def mark_held(lock: Lock, fresh: Lock) -> Lock:
    held = held_versions(fresh, lock)
    return replace(lock, architectures={
        arch: tuple(replace(p, held=True) if p.name in held.get(arch, {}) else p for p in rows)
        for arch, rows in lock.architectures.items()})


def _resolve(profile: Profile, sources: RepositorySources, keep: Kept) -> Lock:
    arches: dict[str, tuple[LockedPackage, ...]] = {}
    indexes: dict[str, dict[str, str]] = {}
    policy = RepoPolicy.of(profile.repositories)
    for arch in profile.architectures:
        for name, digest in sources.digests(arch).items():
            indexes.setdefault(name, {})[arch] = digest
        index = (sources.sparse_index(arch, request_roots(profile, arch)) if sources.uses_sparse(arch)
                 else sources.index(arch))
        chosen = Resolver(index, policy).solve(requests_for(profile, arch, index), keep=keep.get(arch, {}),
                                               weak=weak_deps(profile))
        check_capabilities(chosen, profile.capabilities, arch)
        check_links([c.entry for c in chosen], arch, profile.name)
        granted = set(profile.capabilities)
        arches[arch] = tuple(LockedPackage(
            name=c.entry.name, version=c.entry.version_text, version_scheme=c.entry.version_scheme,
            arch=c.entry.arch, sha256=c.entry.sha256,
            size=c.entry.size, repository=c.origin, signer=c.entry.signer, reason=c.reason,
            license=c.entry.license,
            capabilities=tuple(sorted({*c.entry.capabilities.get("required", []),
                                       *(x for x in c.optional_capabilities if x in granted)}))) for c in chosen)
    return Lock(format=LOCK_FORMAT, profile=profile.name, inputs=profile.digest,
                trust_roots=dict(sorted(sources.fingerprints.items())), indexes=indexes, architectures=arches)


def check_links(entries: Sequence[IndexEntry], arch: str, profile: str) -> None:
    """Every NEEDED soname of the image's ELF files is provided by a package of the lock (the packages'
    ``elf`` tables; a package without one, built before issue 19, makes the check undecidable: skipped)."""
    links = {e.name: link_info_of(e.elf) for e in entries}
    if any(li is None for li in links.values()):
        return
    known = {n: li for n, li in links.items() if li is not None}
    missing = missing_needed(known, known.values())
    if missing:
        shown = "; ".join(m.message(f"the {arch} image") for m in missing[:10])
        more = f" (and {len(missing) - 10} more)" if len(missing) > 10 else ""
        raise UserError(f"profile '{profile}' ({arch}): {len(missing)} NEEDED libraries are missing from the image: "
                        f"{shown}{more}",
                        hint="add the package that ships the library to the profile, or declare it as a dependency "
                             "of the package that needs it")


def staleness(profile: Profile, lock: Lock, fingerprints: Mapping[str, str]) -> list[str]:
    """Why a lock no longer matches its profile (empty when it does)."""
    why = []
    if lock.outdated_format:
        return [lock.outdated_format]  # every other comparison would read versions without revisions
    if lock.inputs != profile.digest:
        why.append("the profile changed since the lock was written (its digest differs)")
    old_roots = dict(lock.trust_roots)
    changed = sorted(n for n in old_roots.keys() | fingerprints.keys() if old_roots.get(n) != fingerprints.get(n))
    if changed:
        why.append(f"the pinned trust root changed for: {', '.join(changed)}")
    missing = set(profile.architectures) - set(lock.architectures)
    if missing:
        why.append(f"architectures not locked: {', '.join(sorted(missing))}")
    return why


def version_change(old: str, new: str, scheme: str = "semver", old_scheme: str | None = None) -> str:
    """upgrade, downgrade or rebuild (equal in order: the same version, or only SemVer build metadata differs),
    by the full order of the scheme (epoch, upstream, revision: ``6.1.192-2 -> 6.1.192-3`` is an upgrade).

    ``old_scheme`` (default ``scheme``) is the old row's: across schemes (a format-1 row, a package that
    changed scheme) the two SemVer projections are compared, the only order the schemes share."""
    was = scheme if old_scheme is None else old_scheme
    if was == scheme:
        try:
            ko, kn = FullVersion.parse(old, was).order_key(), FullVersion.parse(new, scheme).order_key()
        except VersionError:
            pass
        else:
            return "upgrade" if kn > ko else "downgrade" if kn < ko else "rebuild"
    po, pn = _projection(old, was), _projection(new, scheme)
    return "upgrade" if pn > po else "downgrade" if pn < po else "rebuild"


def _projection(text: str, scheme: str) -> PrecedenceKey:
    """The SemVer precedence of a version text (a deb version's projection; a text no scheme parses: lowest)."""
    try:
        v = FullVersion.parse(text, scheme)
    except VersionError:
        return Version.parse("0.0.0-0").precedence_key()
    upstream = v.upstream if isinstance(v.upstream, Version) else semver_projection(v.upstream)
    return upstream.precedence_key()


RowKey = tuple[str, str, str]  # (version text, sha256, version scheme) of one row


def row_moves(before: Mapping[str, RowKey], after: Mapping[str, RowKey]) -> list[tuple[str, str]]:
    """(name, action) of every name whose (version, sha256) differs between two sets of rows (the one place
    that compares): add, remove, upgrade, downgrade or rebuild."""
    out = []
    for name in sorted(before.keys() | after.keys()):
        a, b = before.get(name), after.get(name)
        if a is None or b is None or a[:2] != b[:2]:
            out.append((name, "add" if a is None else "remove" if b is None else
                        version_change(a[0], b[0], b[2], a[2])))
    return out


def row_key(p: LockedPackage) -> RowKey:
    return (p.version, p.sha256, p.version_scheme)


@dataclass(frozen=True, slots=True, kw_only=True)
class LockChange:
    """One package row that differs between two locks (by version or sha256), or is only in one of them."""

    arch: str
    name: str
    action: str   # add | remove | upgrade | downgrade | rebuild
    old: LockedPackage | None
    new: LockedPackage | None


def lock_moves(old: Lock | None, new: Lock | None) -> list[LockChange]:
    """Every package that differs between two locks, by architecture and name."""
    old_arches = old.architectures if old else {}
    new_arches = new.architectures if new else {}
    out = []
    for arch in sorted(set(old_arches) | set(new_arches)):
        before = {p.name: p for p in old_arches.get(arch, ())}
        after = {p.name: p for p in new_arches.get(arch, ())}
        for name, action in row_moves({n: row_key(p) for n, p in before.items()},
                                      {n: row_key(p) for n, p in after.items()}):
            out.append(LockChange(arch=arch, name=name, action=action, old=before.get(name), new=after.get(name)))
    return out


def diff_locks(old: Lock | None, new: Lock) -> list[str]:
    """What moved between two locks, one line per change, with why where the locks say it."""
    lines = []
    if old is not None and old.format != new.format:
        lines.append(f"lock format {old.format} -> {new.format}" + (
            ": versions are now written in full (epoch, revision; Debian packages as Debian writes them)"
            if old.format == 1 else ""))
    before_idx, after_idx = (old.indexes if old else {}), new.indexes
    for repo in sorted(after_idx):
        for arch in sorted(after_idx[repo]):
            a, b = before_idx.get(repo, {}).get(arch), after_idx[repo][arch]
            if old is not None and a != b:
                lines.append(f"{arch}: repository '{repo}' published a new index "
                             f"({(a or 'none')[:12]} -> {b[:12]})")
    words = {"upgrade": "upgraded", "downgrade": "downgraded", "rebuild": "same precedence, new build"}
    for m in lock_moves(old, new):
        x, y = m.old, m.new
        if m.arch not in new.architectures:
            continue
        if x is None and y is not None:
            lines.append(f"{m.arch}: + {m.name} {y.version} ({y.reason})")
        elif y is None and x is not None:
            lines.append(f"{m.arch}: - {m.name} {x.version} (was: {x.reason})")
        elif x is not None and y is not None and x.version != y.version:
            word = words[m.action]
            if m.action == "rebuild" and x.version_scheme != y.version_scheme:
                word = f"the same {y.version_scheme} version, written in full"  # a format-1 row's successor
            lines.append(f"{m.arch}: ~ {m.name} {x.version} -> {y.version} ({word}; {y.reason})")
        elif x is not None and y is not None:
            lines.append(f"{m.arch}: ~ {m.name} {y.version} rebuilt in the repository "
                         f"(sha256 {x.sha256[:12]} -> {y.sha256[:12]})")
    return lines


def missing_packages(lock: Lock, sources: RepositorySources) -> list[str]:
    """Locked packages the repositories no longer serve with the locked digest (the repository moved)."""
    out = []
    for arch, pkgs in sorted(lock.architectures.items()):
        index = sources.lookup(arch, [p.name for p in pkgs])
        for p in pkgs:
            served = {(e.version_text, e.sha256) for e in (index.entry(s.id) for s in index.named(p.name))
                      if e.name == p.name}
            if (p.version, p.sha256) not in served:
                now = ", ".join(sorted(v for v, _ in served)) or "not at all"
                out.append(f"{arch}: {p.name} {p.version} (sha256 {p.sha256[:12]}) is no longer in the "
                           f"repositories (they serve: {now})")
    return out


def kept_versions(lock: Lock | None, moving: Iterable[str] = ()) -> dict[str, dict[str, str]]:
    """arch -> name -> locked version to keep (all but ``moving``); none from a format-1 lock, whose versions
    are SemVer projections, not text forms a repository serves."""
    if lock is not None and lock.outdated_format:
        return {}
    move = set(moving)
    return {arch: {p.name: p.version for p in pkgs if p.name not in move}
            for arch, pkgs in (lock.architectures if lock else {}).items()}


def write_lock(path: Path, lock: Lock) -> None:
    atomic_write(path, lock_bytes(lock))


def why(lock: Lock, name: str, arch: str) -> list[str]:
    """The chain of reasons that pulls ``name`` into the lock for ``arch``, one line per link (pure)."""
    return [f"{p.name} {p.version}: {p.reason}" for p in why_chain(lock, name, arch)]


def why_chain(lock: Lock, name: str, arch: str) -> list[LockedPackage]:
    """The locked rows from ``name`` up to what was requested, following each row's reason (pure)."""
    pkgs = {p.name: p for p in lock.packages(arch)}
    if name not in pkgs:
        raise UserError(f"'{name}' is not in the lock for {arch}",
                        hint=f"locked packages: {', '.join(sorted(pkgs)) or 'none'}")
    chain: list[LockedPackage] = []
    seen: set[str] = set()
    parent: str | None = name
    while parent is not None and parent in pkgs and parent not in seen:
        seen.add(parent)
        chain.append(pkgs[parent])
        parent = pkgs[parent].reason.parent
    return chain
