"""Package operations on a root: install, remove, upgrade, rollback, autoremove, reconcile to a lock.

Resolution uses libsolv with the root's packages as the installed repository and the verified indexes
of the repositories recorded in the root (``var/lib/vpk/repositories.json``, written by ``vcomp
build``: names, absolute URLs, pinned trust roots; a relative URL is refused, never resolved against
the caller's directory). The repositories are opened only when an operation needs packages: ``remove``
and ``autoremove`` resolve against the installed packages alone and never touch the network. Every
operation is one transaction (``composer.pkgmgr.transaction``), run under the root's lock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import solv

from composer.arch import DEFAULT_ARCHES
from composer.errors import UserError
from composer.pkgmgr import db
from composer.pkgmgr.install import fetch_locked
from composer.pkgmgr.query import orphans
from composer.pkgmgr.transaction import Outcome, Pending, RootChange, TransactionError, apply
from composer.repo.client import RepositoryClient
from composer.repo.index import IndexEntry
from composer.rootfs import Root
from composer.solve.explain import explain
from composer.solve.lock import RowKey, row_key, row_moves, version_change
from composer.solve.lockmodel import LockedPackage, Reason
from composer.solve.policy import RepoPolicy
from composer.solve.pool import IndexData, SolvIndex
from composer.solve.relations import split_provide
from composer.solve.resolve import Request, ResolveError, Resolver, required_names
from composer.solve.sparsepool import named_index, prefers_sparse, sparse_index

GRANTED = "etc/veridian/capabilities"  # the profile's granted capabilities, one per line
ACTIONS = {"add": "install", "rebuild": "reinstall", "upgrade": "upgrade", "downgrade": "downgrade"}


@dataclass(frozen=True, slots=True, kw_only=True)
class RootSources:
    """The root's repositories, shaped like ``composer.solve.lock.Sources`` for the install engine.

    The repository clients are made on first use only (an operation that needs no package, such as
    ``remove``, never touches the network); ``offline`` resolves against the installed packages alone."""

    repositories: Sequence[Mapping[str, Any]]
    cache: Path
    arch: str
    installed: Sequence[Mapping[str, Any]]
    granted: tuple[str, ...]
    _pool: list[SolvIndex]
    policy: RepoPolicy = field(default_factory=RepoPolicy)  # pins and priorities, as the root records them
    offline: bool = False
    _clients: dict[str, RepositoryClient] = field(default_factory=dict)

    @property
    def clients(self) -> Mapping[str, RepositoryClient]:
        if not self._clients and not self.offline:
            for r in self.repositories:
                self._clients[r["name"]] = RepositoryClient(r["url"], json.dumps(r["root"]).encode(), self.cache,
                                                            mirrors=list(r.get("mirrors", [])))
        return self._clients

    def index(self, arch: str, roots: Iterable[str] = ()) -> SolvIndex:
        """The pool of the installed packages and the repositories' entries: the whole indexes, or, when a
        repository prefers its sparse files (its whole index is behind or large), the closure of the installed
        names and ``roots`` (the names an operation asks for)."""
        if not self._pool:
            installed = [installed_doc(r) for r in self.installed]
            if prefers_sparse(self.clients, arch):
                self._pool.append(sparse_index(self.clients, arch, {*(str(r["name"]) for r in self.installed),
                                                                     *roots}, installed=installed))
            else:
                self._pool.append(SolvIndex.build(
                    [(name, IndexData(*c.index_documents(arch))) for name, c in self.clients.items()], arch,
                    installed=installed))
        return self._pool[0]

    def lookup(self, arch: str, names: Iterable[str]) -> SolvIndex:
        """A pool with every entry called one of ``names`` (see ``RepositorySources.lookup``)."""
        return named_index(self.clients, arch, names) if prefers_sparse(self.clients, arch) else self.index(arch)


def installed_doc(r: Mapping[str, Any]) -> dict[str, Any]:
    """The index entry (as a dict) of an installed record: its version fields come from the package's
    metadata (the record's ``version`` is the text form, the pool's ``version`` is the SemVer)."""
    m = r["metadata"]
    p = m.get("package", {})
    return {"name": r["name"], "version": p.get("version", r["version"]), "arch": r["arch"],
            "type": p.get("type", ""), "description": p.get("description", ""), "license": p.get("license", ""),
            "dependencies": m.get("dependencies", {}), "provides": p.get("provides", []),
            "conflicts": p.get("conflicts", []), "features": m.get("features", {}),
            "capabilities": m.get("capabilities", {}), "driver": m.get("driver", {}), "size": r["size"],
            "installed_size": 0, "sha256": r["sha256"], "path": "", "signer": r["signer"],
            "epoch": p.get("epoch", 0), "revision": p.get("revision", ""),
            "upstream_version": p.get("upstream-version", ""), "version_scheme": p.get("version-scheme", "semver"),
            "essential": p.get("essential", False), "priority": p.get("priority", ""),
            "multi_arch": p.get("multi-arch", ""), "relations": m.get("relations", {})}


def record_key(r: Mapping[str, Any]) -> RowKey:
    """(version text, sha256, scheme) of an installed record, read from its metadata (a root written before
    lock format 2 recorded the SemVer projection as its ``version``: this is the text form either way)."""
    entry = IndexEntry.from_dict(installed_doc(r))
    return (entry.version_text, str(r["sha256"]), entry.version_scheme)


def open_root(root: Path, cache: Path, *, offline: bool = False) -> tuple[db.Database, RootSources]:
    """The database and the repositories of a root (the caller holds its lock and recovered it)."""
    database = db.load(root)
    origin = str(root / db.DB_REL / "repositories.json")
    if not database.repositories and not offline:
        raise UserError(f"{root} records no repositories ({db.DB_DIR}/repositories.json)",
                        hint="it was not built by vcomp build; install needs the repositories it came from")
    for i, r in enumerate(() if offline else database.repositories):
        for where, url in [("url", r["url"]), *((f"mirrors[{j}]", m) for j, m in enumerate(r.get("mirrors", [])))]:
            if "://" not in url:
                raise UserError(f"{origin}: [{i}].{where} {url!r} is a relative path; vcomp never resolves it "
                                "against the current directory",
                                hint=f"record the repository's absolute location once: vcomp pkg --root {root} "
                                     f"repo-url {r['name']} URL-OR-DIRECTORY")
    arches = {p["arch"] for p in database.packages.values()} - {"noarch"}
    arch = next(iter(sorted(arches)), DEFAULT_ARCHES[0])
    with Root.open(root) as tree:
        text = tree.read_bytes(GRANTED, 1 << 20).decode("utf-8", "replace") if tree.is_file(GRANTED) else ""
    caps = tuple(line.strip() for line in text.splitlines() if line.strip())
    return database, RootSources(repositories=database.repositories, cache=cache, arch=arch,
                                 installed=list(database.packages.values()), granted=caps, _pool=[],
                                 policy=RepoPolicy.of_records(database.repositories), offline=offline)


def _locked(entry: IndexEntry, origin: str, reason: str, granted: Sequence[str]) -> LockedPackage:
    caps = sorted({*entry.capabilities.get("required", []),
                   *(c for c in entry.capabilities.get("optional", []) if c in granted)})
    return LockedPackage(name=entry.name, version=entry.version_text, version_scheme=entry.version_scheme,
                         arch=entry.arch, sha256=entry.sha256,
                         size=entry.size, repository=origin, signer=entry.signer, reason=Reason.parse(reason),
                         license=entry.license, capabilities=tuple(caps))


def solve(sources: RootSources, database: db.Database, *, install: Sequence[tuple[str, str]] = (),
          remove: Sequence[str] = (), upgrade: Sequence[str] | None = None, allow_downgrade: bool = False,
          target: Mapping[str, str] | None = None) -> list[RootChange]:
    """The changes libsolv decides for the jobs (``target``: name -> version, the exact set wanted)."""
    index = sources.index(sources.arch, roots=[*(n for n, _ in install), *(upgrade or ()), *(target or {})])
    pool = index.pool
    installed = index.installed
    for name in remove:
        if name not in database.packages:
            raise UserError(f"'{name}' is not installed in this root", hint="see: vcomp pkg --root DIR list")
    jobs = []
    requests = [Request(name=n, requirement=r) for n, r in install]
    resolver = Resolver(index, sources.policy)
    for r in requests:
        if not resolver.candidates(r.name, r.requirement):
            raise ResolveError(resolver._unknown(r), hint="check the package name and version")
        jobs.append(index.request_job(r.name, r.requirement))
    for name in remove:
        jobs.append(pool.Job(solv.Job.SOLVER_ERASE | solv.Job.SOLVER_SOLVABLE_NAME, pool.str2id(name)))
    if upgrade is not None:
        for name in upgrade or ():
            jobs.append(pool.Job(solv.Job.SOLVER_UPDATE | solv.Job.SOLVER_SOLVABLE_NAME, pool.str2id(name)))
        if not upgrade:
            jobs.append(pool.Job(solv.Job.SOLVER_UPDATE | solv.Job.SOLVER_SOLVABLE_ALL, 0))
    for name, version in sorted((target or {}).items()):
        # the installed package when it already has the version (no needless reinstall), else the repositories'
        ids = [s.id for s in index.named(name) if s.repo == installed and index.entry(s.id).version_text == version]
        ids = ids or [s.id for s in index.named(name)
                      if index.entry(s.id).version_text == version and s.repo != installed]
        if not ids:
            raise UserError(f"{name} {version} is in neither the repositories nor the root",
                            hint="the lock is stale: relock it")
        jobs.append(pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE_ONE_OF, pool.towhatprovides(ids)))
    if target is not None:
        for name in sorted(set(database.packages) - set(target)):
            jobs.append(pool.Job(solv.Job.SOLVER_ERASE | solv.Job.SOLVER_SOLVABLE_NAME, pool.str2id(name)))
    while True:  # again when a repository priority excluded a provider the answer took
        solver = pool.Solver()
        if allow_downgrade or target is not None:
            solver.set_flag(solv.Solver.SOLVER_FLAG_ALLOW_DOWNGRADE, 1)
        problems = solver.solve(jobs)
        if problems:
            raise ResolveError(explain(resolver.index, problems, [(r.name, r.requirement) for r in requests]),
                               hint="the root is unchanged")
        trans = solver.transaction()
        if not resolver.check_origins([s.id for s in trans.newsolvables()], requests):
            break
    new = {s.name: s for s in trans.newsolvables()}
    gone = {s.name for s in trans.steps() if s.repo == installed}
    changes = []
    asked = {n for n, _ in install}
    for name in sorted(gone | set(new)):
        old = database.packages.get(name)
        if name not in new:
            assert old is not None
            changes.append(RootChange(name=name, action="remove", old=old))
            continue
        s = new[name]
        entry = index.entry(s.id)
        was = record_key(old) if old is not None else None
        action = "install" if was is None else \
            ACTIONS[version_change(was[0], entry.version_text, entry.version_scheme, was[2])]
        if action == "downgrade" and not (allow_downgrade or target is not None):
            raise TransactionError(f"{name} would be downgraded {was[0] if was else ''} -> {entry.version_text}",
                                   hint="pass --allow-downgrade to allow it")
        reason = "requested" if name in asked else str((old or {}).get("reason") or _why(name, new, index))
        changes.append(RootChange(name=name, action=action, old=old,
                              manual=name in asked or bool(old and old.get("manual")),
                              pending=Pending(entry=entry, origin=index.origin(s.id), reason=reason,
                                              granted=sources.granted)))
    broken = sorted(c.name for c in changes if c.action == "remove" and c.name not in remove and target is None)
    if broken:
        raise TransactionError(f"removing {', '.join(remove)} would also remove {', '.join(broken)}, which "
                               "depend on it", hint="remove those too (name them), or keep the package")
    return changes


def _why(name: str, new: Mapping[str, Any], index: SolvIndex) -> str:
    """'dependency of X' for a package pulled in by another package of the transaction."""
    names = _provides(index, name)
    for other, s in sorted(new.items()):
        if other != name and names & set(required_names(index.entry(s.id))):
            return Reason.dependency_of(other).text
    return "dependency"


def _provides(index: SolvIndex, name: str) -> set[str]:
    return {name, *(split_provide(p)[0] for s in index.named(name) for p in index.entry(s.id).provides)}


def fetch_changes(sources: RootSources, changes: Sequence[RootChange]) -> list[RootChange]:
    """Download and verify the packages of the changes (through TUF; hash and signature)."""
    out = []
    for ch in changes:
        if isinstance(ch.pending, Pending):
            p = ch.pending
            (fetched,) = fetch_locked(sources, [_locked(p.entry, p.origin, p.reason, p.granted)], sources.arch)
            ch = RootChange(name=ch.name, action=ch.action, old=ch.old, new=fetched, manual=ch.manual)
        out.append(ch)
    return out


def run(root: Path, sources: RootSources, changes: Sequence[RootChange], *, operation: str, epoch: int,
        cause: str = "", command: str = "", purge: bool = False) -> Outcome:
    return apply(root, fetch_changes(sources, changes), operation=operation, cause=cause, command=command,
                 epoch=epoch, purge=purge)


def autoremove_changes(database: db.Database) -> list[RootChange]:
    return [RootChange(name=row.name, action="remove", old=database.packages[row.name])
            for row in orphans(database.packages)]


def rollback_changes(sources: RootSources, database: db.Database, txid: int | None) -> tuple[int, list[RootChange]]:
    """Changes that undo transaction ``txid`` (default: the last): its packages back to their old versions."""
    undoable = [h for h in database.history if h["id"] > 1]  # transaction 1 built the root
    chosen = next((h for h in reversed(undoable) if txid is None or h["id"] == txid), None)
    if chosen is None:
        raise UserError(f"no transaction {'' if txid is None else txid} to roll back".replace("  ", " "),
                        hint="see: vcomp pkg --root DIR history (the build itself cannot be rolled back)")
    target = {n: record_key(r)[0] for n, r in database.packages.items()}
    for p in chosen["packages"]:
        if p.get("old") is None:
            target.pop(p["name"], None)
        else:
            target[p["name"]] = p["old"]
    touched = {str(p["name"]) for p in chosen["packages"]}
    return chosen["id"], only_touched(int(chosen["id"]), solve(sources, database, target=target), touched)


def only_touched(txid: int, changes: Sequence[RootChange], touched: set[str]) -> list[RootChange]:
    """A rollback changes only the packages its transaction changed. The solver, asked for the exact set of
    packages, may propose to reinstall others at the version installed (the repositories hold a rebuild with
    another digest): those are dropped. Any other change outside the transaction is refused, not done."""
    outside = sorted(f"{c.name} ({c.action})" for c in changes if c.name not in touched and c.action != "reinstall")
    if outside:
        raise TransactionError(f"rolling back transaction {txid} would also change {', '.join(outside)}",
                               hint="the root is unchanged; roll back the later transactions first "
                                    "(see: vcomp pkg --root DIR history)")
    return [c for c in changes if c.name in touched]


def reconcile_changes(database: db.Database, rows: Sequence[LockedPackage]) -> list[RootChange]:
    """The difference between a root's packages and a lock's rows (the lock is already the resolution)."""
    changes = []
    have = {n: record_key(r) for n, r in database.packages.items()}
    want = {p.name: p for p in rows}
    for name, action in row_moves(have, {n: row_key(p) for n, p in want.items()}):
        old = database.packages.get(name)
        if action == "remove":
            changes.append(RootChange(name=name, action="remove", old=old))
            continue
        locked = want[name]
        changes.append(RootChange(name=name, action=ACTIONS[action], old=old, pending=locked,
                              manual=not locked.reason.is_dependency))
    return changes


def fetch_locked_changes(sources: Any, changes: Sequence[RootChange], arch: str) -> list[RootChange]:
    out = []
    for ch in changes:
        if isinstance(ch.pending, LockedPackage):
            (fetched,) = fetch_locked(sources, [ch.pending], arch)
            ch = RootChange(name=ch.name, action=ch.action, old=ch.old, new=fetched, manual=ch.manual)
        out.append(ch)
    return out


def set_repository_url(root: Path, name: str, location: str, *, cwd: Path) -> str:
    """Record ``location`` as the URL of the root's repository ``name`` (the caller holds the lock); a directory
    is recorded as an absolute ``file://`` URL, resolved here, once; mirrors given as relative paths likewise."""
    database = db.load(root)
    if name not in {r["name"] for r in database.repositories}:
        known = ", ".join(sorted(r["name"] for r in database.repositories)) or "none"
        raise UserError(f"{root} records no repository '{name}' (it records: {known})",
                        hint=f"see {root / db.DB_REL / 'repositories.json'}")
    url = _absolute(location, cwd)
    records = [{**r, "url": url, "mirrors": [_absolute(m, cwd) for m in r.get("mirrors", [])]}
               if r["name"] == name else dict(r) for r in database.repositories]
    db.save_repositories(root, records)
    return url


def _absolute(location: str, cwd: Path) -> str:
    return location if "://" in location else (cwd / location).resolve().as_uri()
