"""The scale simulation (issue 20): what one change costs in a repository of 10k, 100k (and 1M) packages.

    python bench/scale.py [--sizes 10000,100000] [--cache DIR] [--json FILE]

For each size N, a synthetic repository of N metadata-only packages (``bench/repo.py``'s synthetic metadata:
names, versions, dependencies, provides; no payload) built through the real path: every package written and
signed by ``write_package``, added with ``edit.add_many`` (verification, delegation checks, the developer
role signed), published with the sparse index (the bench's ``repo init`` delegates the index role the sparse paths),
then the lock set added (``lock_set``: 21 packages that lock together, the same in every repository). It is cached
under ``$VCOMP_CACHE/bench-scale/vFORMAT/N`` (or ``--cache``; FORMAT changes when what is cached changes: the
repositories of format 1 had no sparse index and are not reused) between runs; a run works on a copy (targets
and metadata hard-linked: they are immutable or replaced by rename; the state copied).

Measured on that copy, in one run, for every size:

* ``add 1``        ``repo add`` of one more package (lock, repair, checks, one state transaction, role signed)
* ``publish``      ``repo publish`` after it (incremental: the changed names' sparse files and bins,
                   index/snapshot/timestamp, and, below WHOLE_DEFER_FROM packages, the whole indexes;
                   composer/repo/incremental.py)
* ``whole rebuild`` rebuilding the whole indexes from the state (what a publish does every
                   ``whole_budget(n)`` changes at scale, and every publish below that), and ``whole per change``
                   that cost divided by the budget: the amortised share of one change
* ``publish full`` ``repo publish --full`` (every index file and bin)
* ``refresh``      a warm whole-index client's refresh + index after that change: seconds and bytes downloaded
* ``refresh sparse`` a warm sparse client's refresh after that change: the metadata (timestamp, snapshot, index
                   role, the changed hash bins) and the changed sparse files of the names it follows (the lock
                   profile's, and the uploaded package's own and provided names)
* ``cold``         a new client's refresh + index: seconds and bytes
* ``dev refetch``  the developer metadata (its role, its hash bins) a client that had installed a package before
                   the add downloads to install the added one: the whole role unbinned, one bin binned
* ``lock``         ``vcomp lock``'s resolution (``resolve_profile``) of a small profile (the lock set's 5
                   applications, x86_64) against the repository over file://, cold (empty client cache) and
                   warm (the same cache, nothing changed), with VCOMP_INDEX=whole and =sparse: seconds, bytes
* ``mirror``       ``vcomp repo mirror``'s verified copy of the whole repository to a new directory
* baselines, same run: one SQLite insert into a copy of the state (``add 1``'s floor for the state part),
  the old per-add cost (load the whole state and rewrite it as ``state.json``, what every add did before
  ``state.db``) and a raw copy (``shutil.copytree``) of metadata/ and targets/ (``mirror``'s floor).
* sizes: ``state.db``, the old ``state.json``, the developer role, the snapshot, the snapshot patch the sparse
  client's refresh downloaded instead of it (composer/repo/snappatches.py); counts: hash bins, packages
  stored, packages the lock chose.

It prints every figure per size, the growth factor per 10x of size, and the ratios against the baselines.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

# this checkout's composer, not whichever one the shared venv's editable install points at (it may be another
# worktree's: measuring that code is measuring another branch)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repo import ARCHES, CAPABILITIES, DEV_PATTERNS, DEV_ROLE, EPOCH, CountingClient, Fetch, synthetic_metadata
from tuf.api.metadata import Targets

from composer import settings
from composer.fsutil import atomic_write
from composer.limits import LimitExceeded
from composer.package.archive import read_header, write_package
from composer.package.metadata import Dependency, Metadata, Security
from composer.profile.load import load_profile
from composer.repo import edit, incremental, snapbins, snapshotdoc
from composer.repo.index import IndexEntry, build_index, package_target_path
from composer.repo.mirror import mirror
from composer.repo.snappatches import derive_patches
from composer.repo.sparse import provided_name
from composer.repo.store import RepoStore
from composer.solve.lock import RepositorySources, resolve_profile
from composer.trust.keys import generate, load_public_key, load_signing_key

KEYS = ("root", "targets", "index", "snapshot", "timestamp", "dev")
CHUNK = 2000
DONE = "complete"
BUILDING = "building"   # a build in progress (n and seed): a killed build resumes
LOCKSET = "lockset"   # marks the lock set added (add_lock_set)
LOCK_ARCH = "x86_64"
LOCK_LIBS, LOCK_APPS = 16, 5   # the lock set: libraries, and applications (the profile's packages)
REPO_NAME = "synthetic"        # the profile's name for the repository
INDEX_MODES = ("whole", "sparse")
FORMAT = 2
"""The cached repositories' layout: bump it when what build_repository makes changes (2: the index role is
delegated the sparse paths and the repository publishes the sparse index; 1 did not). Part of the cache path."""


@dataclass
class Figures:
    """One size's measurements (seconds, bytes)."""

    size: int
    seconds: dict[str, float] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)   # hash bins, packages a lock chose
    profile: list[str] = field(default_factory=list)       # the lock profile's package names
    notes: list[str] = field(default_factory=list)         # what could not be measured, and why


def default_cache() -> Path:
    return Path(os.environ.get("VCOMP_CACHE", Path.home() / ".cache" / "vcomp")) / "bench-scale"


# ---------------------------------------------------------------- the cached synthetic repository

def build_repository(cache: Path, n: int, seed: int, log: Callable[[str], None]) -> Path:
    """``cache/N``: keys/, repo/ (N packages, published) and extra.vpk (package N, not added); built once.

    Resumable: a build killed part way (a million packages take hours) goes on from where it stopped when run
    again with the same seed (``building`` records it): packages already written (``write_package`` writes
    atomically) are not written again, and packages the state already holds are not added again."""
    home = cache / f"v{FORMAT}" / str(n)
    if (home / DONE).is_file():
        return home
    marker = home / BUILDING
    resume = marker.is_file() and marker.read_text() == f"{n} {seed}\n"
    if not resume:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        marker.write_text(f"{n} {seed}\n")
        for name in KEYS:
            generate(name, home / "keys")
    keys = {name: home / "keys" / f"{name}.key" for name in KEYS}
    dev = load_signing_key(keys["dev"])
    rng = random.Random(seed)
    t0 = time.perf_counter()
    pkgs = home / "pkgs"
    # the metadata drawn in order from one generator (the same packages as a serial build), written and signed
    # by every core (write_package: schema check, compression, signature, fsync)
    metas = [synthetic_metadata(i, rng) for i in range(n + 1)]
    paths = [pkgs / f"{m.nva}.vpk" for m in metas[:n]] + [home / "extra.vpk"]
    todo = [i for i in range(n + 1) if not paths[i].is_file()]
    jobs = max(1, min(os.cpu_count() or 1, 8))
    _WRITER.update(metas=metas, paths=paths)   # inherited by the forked writers (Metadata does not pickle)
    with multiprocessing.get_context("fork").Pool(jobs, initializer=_writer_init, initargs=(keys["dev"],)) as pool:
        for done, _ in enumerate(pool.imap(_write_one, todo, chunksize=256), n + 1 - len(todo) + 1):
            if done % 10000 == 0:
                log(f"  {n}: wrote {done} packages ({time.perf_counter() - t0:.0f} s)")
    _WRITER.clear()
    wanted = [(package_target_path(m.name, m.version, m.arch), p) for m, p in zip(metas[:n], paths[:n], strict=True)]
    del metas   # (a million Metadata objects: gigabytes the add's forked workers need not share)
    log(f"  {n}: {n + 1} packages written and signed in {time.perf_counter() - t0:.1f} s ({jobs} processes, "
        f"{len(todo)} this run)")
    online = {role: [load_signing_key(keys[role])] for role in ("index", "snapshot", "timestamp")}
    offline = [load_signing_key(keys["targets"])]
    repo = home / "repo"
    if not (repo / "repo.toml").is_file():
        shutil.rmtree(repo, ignore_errors=True)
        edit.init(repo, root_keys=[load_signing_key(keys["root"])], root_threshold=1, targets_keys=offline,
                  online=online, online_paths={role: [str(keys[role])] for role in online}, architectures=ARCHES)
        edit.delegate(RepoStore(repo), DEV_ROLE, [load_public_key(keys["dev"].with_suffix(".pub"))],
                      list(DEV_PATTERNS), targets_keys=offline)
    store = RepoStore(repo)
    stored = set(store.writable_state().digests())
    store.close_state()
    pending = [p for target, p in wanted if target not in stored]
    t1 = time.perf_counter()
    edit.add_many(RepoStore(repo), pending, [dev], jobs=2, chunk=max(CHUNK, n // 10),
                  progress=lambda done, total: log(f"  {n}: added {done}/{total} ({time.perf_counter() - t1:.0f} s)")
                  if done % 20000 == 0 or done == total else None)
    edit.publish(RepoStore(repo), full=True)
    check_sparse(repo)
    log(f"  {n}: repository built (add {time.perf_counter() - t1:.1f} s, {len(pending)} this run)")
    shutil.rmtree(pkgs)
    (home / DONE).write_text(f"{n}\n")
    marker.unlink()
    return home


_WRITER: dict[str, Any] = {}


def _writer_init(dev_key: Path) -> None:
    _WRITER["key"] = load_signing_key(dev_key)


def _write_one(i: int) -> None:
    write_package(_WRITER["paths"][i], metadata=_WRITER["metas"][i], staged=[], key=_WRITER["key"], epoch=EPOCH)


def check_sparse(repo: Path) -> None:
    """Refuse a repository that does not publish the sparse index (its index role lacks the sparse paths)."""
    store = RepoStore(repo)
    if not edit.publishes_sparse(store.load("targets", Targets).signed, store.config.architectures):
        raise SystemExit(f"{repo}: the index role is not delegated the sparse paths (docs/repo-sparse.md, Trust)")


def working_copy(home: Path, dest: Path) -> Path:
    """The cached repository, as a copy a run may change: targets/ and metadata/ hard-linked (never
    rewritten in place), every top-level file (repo.toml, state.db, the lock) copied."""
    src = home / "repo"
    dest.mkdir(parents=True)
    for entry in src.iterdir():
        if entry.is_dir():
            shutil.copytree(entry, dest / entry.name, copy_function=os.link)
        else:
            shutil.copy2(entry, dest / entry.name)
    # repo.toml names its online keys relative to itself (../keys/...): point them at the cached keys
    (dest / "repo.toml").write_text((src / "repo.toml").read_text().replace('"../keys/', f'"{home / "keys"}/'))
    return dest


def tree_bytes(top: Path) -> int:
    return sum(p.stat().st_size for p in top.rglob("*") if p.is_file())


# ---------------------------------------------------------------- the lock set (what the lock profile asks for)

def lock_set() -> list[Metadata]:
    """LOCK_LIBS libraries and LOCK_APPS applications that lock together, the same in every repository.

    The synthetic packages cannot be locked: their requirements are drawn at random (``=1.0.3`` of a 2.x
    package, an aarch64-only dependency of an x86_64 one), so of the first 1,000 only ``pkg-00000`` resolves.
    The lock set is a small consistent distribution added to every repository: libraries depending on earlier
    ones (and on ``pkg-00000``), applications on 2-4 libraries; a lock of the applications reaches ~20 names
    whatever the repository's size, so the lock figures show what the repository around them costs."""
    rng = random.Random(LOCK_LIBS * 100 + LOCK_APPS)
    libs = [f"pkg-lockset-lib-{i:02d}" for i in range(LOCK_LIBS)]
    out = [lock_package(name, "library", ["pkg-00000", *rng.sample(libs[:i], min(i, 2))], rng)
           for i, name in enumerate(libs)]
    out += [lock_package(f"pkg-lockset-app-{i}", "application", rng.sample(libs, rng.randint(2, 4)), rng)
            for i in range(LOCK_APPS)]
    return out


def lock_package(name: str, typ: str, deps: Sequence[str], rng: random.Random) -> Metadata:
    return Metadata(
        name=name, version=f"1.{rng.randint(0, 9)}.0", description=f"lock set {typ} {name}", license="MIT",
        type=typ, arch="x86_64", authors=("Bench Maintainers <bench@example.org>",),
        homepage=f"https://example.org/{name}", provides=(f"{'cmd' if typ == 'application' else 'lib'}:{name}",),
        dependencies=tuple(Dependency(name=d, requirement="*" if d == "pkg-00000" else "^1") for d in sorted(deps)),
        capabilities_required=("filesystem",), security=Security(context="system_t"),
        provenance={"source-date-epoch": EPOCH})


def add_lock_set(home: Path, log: Callable[[str], None]) -> None:
    """Add and publish the lock set in the cached repository ``home`` (once: marked by ``home/lockset``)."""
    if (home / LOCKSET).is_file():
        return
    dev = load_signing_key(home / "keys" / "dev.key")
    with tempfile.TemporaryDirectory(prefix="lockset-", dir=home) as tmp:
        paths = []
        for meta in lock_set():
            path = Path(tmp) / f"{meta.nva}.vpk"
            write_package(path, metadata=meta, staged=[], key=dev, epoch=EPOCH)
            paths.append(path)
        edit.add(RepoStore(home / "repo"), paths, [dev])
    edit.publish(RepoStore(home / "repo"))
    (home / LOCKSET).write_text(f"{LOCK_LIBS} {LOCK_APPS}\n")
    log(f"  {home.name}: lock set added ({len(paths)} packages)")


def bring_up_to_date(home: Path, log: Callable[[str], None]) -> None:
    """The cached repository made by an older vcomp, moved to this one's state (its schema upgrade and a full
    publish, which records what it published; the compressed snapshot of its current snapshot): once,
    unmeasured, so that ``add 1`` and ``publish`` measure a change, not a migration."""
    store = RepoStore(home / "repo")
    # the compressed snapshot a new client fetches (composer/repo/snappatches.py; every publish writes it since)
    derive_patches(store.metadata_dir)
    try:
        if incremental.Record.from_value(store.writable_state().meta(incremental.RECORD_KEY)) is not None:
            snapshot = snapshotdoc.read(store)
            if snapshot.buckets() is not None or len(snapshot.meta) < snapbins.BUCKETS_FROM:
                return
            # bins past the bucket threshold listed in the snapshot (a vcomp before the buckets): one publish
            # moves them into buckets (composer/repo/snapbins.py), unmeasured, as a client's move with it
            t0 = time.perf_counter()
            edit.publish(RepoStore(home / "repo"))
            log(f"  {home.name}: bins moved into snapshot buckets in {time.perf_counter() - t0:.1f} s")
            return
    finally:
        store.close_state()
    t0 = time.perf_counter()
    edit.publish(RepoStore(home / "repo"), full=True)
    log(f"  {home.name}: brought to this vcomp's state (schema, full publish) in {time.perf_counter() - t0:.1f} s")


def lock_names() -> list[str]:
    return [f"pkg-lockset-app-{i}" for i in range(LOCK_APPS)]


# ---------------------------------------------------------------- the lock profile (cold and warm locks)

def private_dir(path: Path) -> Path:
    """A new cache directory a client accepts (owner-only, as ``vcomp`` makes its cache)."""
    path.mkdir(mode=0o700, parents=True)
    return path


def sources_of(client: CountingClient, root: bytes, cache: Path) -> RepositorySources:
    """What ``open_sources`` makes for a profile with one repository, with a client that counts its bytes."""
    return RepositorySources(clients={REPO_NAME: client}, fingerprints={REPO_NAME: hashlib.sha256(root).hexdigest()},
                             pools=cache / "pools")


def write_profile(dest: Path, url: str, root: bytes, names: Sequence[str]) -> Path:
    """A small profile: the repository over file:// (pinned root beside it), ``names``, every capability."""
    dest.mkdir(parents=True)
    (dest / "root.json").write_bytes(root)
    (dest / "scale.yaml").write_text(
        f"name: scale-lock\narchitectures: [{LOCK_ARCH}]\n"
        f"repositories:\n  - name: {REPO_NAME}\n    url: {url}\n    root: root.json\n"
        f"packages: [{', '.join(names)}]\ncapabilities: [{', '.join(CAPABILITIES)}]\n"
        "outputs: [{type: rootfs}]\n")
    return dest / "scale.yaml"


def lock_once(profile: Path, url: str, root: bytes, cache: Path, mode: str) -> tuple[float, list[Fetch], int]:
    """``vcomp lock``'s resolution (``resolve_profile``) of ``profile`` with VCOMP_INDEX=``mode`` and the client
    cache ``cache``: seconds, the fetches, the packages locked."""
    with settings.overriding(settings.INDEX, mode):
        t0 = time.perf_counter()
        loaded = load_profile(profile)
        client = CountingClient(url, root, cache)
        lock = resolve_profile(loaded, sources_of(client, root, cache))
        seconds = time.perf_counter() - t0
    return seconds, client.take(), len(lock.packages(LOCK_ARCH))


def watched_names(names: Sequence[str], extra: Path) -> list[str]:
    """What a sparse client follows: the profile's names and the names the next upload (``extra``) touches
    (its own and those it provides), so its refresh after that upload shows what one change costs."""
    meta = read_header(extra).metadata
    return sorted({*names, meta.name, *(provided_name(p) for p in meta.provides)})


def kinds(fetches: Sequence[Fetch]) -> str:
    """``3 metadata (1.2 kB), 2 sparse files (1.9 kB)``: what a fetch list was made of."""
    groups: dict[str, list[int]] = {}
    for f in fetches:
        kind = ("compressed snapshot" if f.url.endswith(".zst") else "snapshot patches") \
            if "/snapshot-patches/" in f.url else "snapshot buckets" if "/snapshot-bins/" in f.url \
            else "metadata" if f.url.startswith("metadata/") \
            else "sparse files" if "/sparse/" in f.url else "targets"
        groups.setdefault(kind, []).append(f.bytes)
    return ", ".join(f"{len(b)} {k} ({show(sum(b), 'B')})" for k, b in sorted(groups.items()))


# ---------------------------------------------------------------- one size

class Timed:
    """``timed(name, fn)``: run ``fn``, record its seconds under ``name`` in ``figures``, return its result."""

    def __init__(self, figures: Figures) -> None:
        self.figures = figures

    def __call__(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        self.figures.seconds[name] = time.perf_counter() - t0
        return out


def measure_baselines(figures: Figures, repo: Path, work: Path) -> None:
    """The state's sizes, one SQLite insert and the old whole-state rewrite (see the module docstring)."""
    timed = Timed(figures)
    figures.bytes["state.db"] = sum(p.stat().st_size for p in repo.glob("state.db*"))
    figures.bytes["dev role"] = latest_role(repo, DEV_ROLE).stat().st_size
    scratch = work / "insert.db"   # baseline: one row into a copy of the state, one transaction
    shutil.copy2(repo / "state.db", scratch)
    conn = sqlite3.connect(scratch)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    row = ("packages/zz/zz-1-x86_64.vpk", "zz", "x86_64", "0" * 64, json.dumps({"path": "x" * 400}))

    def insert() -> None:
        conn.execute("INSERT INTO packages VALUES (?, ?, ?, ?, ?)", row)
        conn.commit()
    timed("sqlite insert", insert)
    conn.close()

    def old_state_write() -> None:   # what every add cost before state.db: load and rewrite the whole state.json
        state = RepoStore(repo).read_state()
        atomic_write(work / "state.json", json.dumps(state, sort_keys=True, separators=(",", ":")).encode())
    timed("state.json rewrite", old_state_write)
    figures.bytes["state.json"] = (work / "state.json").stat().st_size


def latest_role(repo: Path, role: str) -> Path:
    return max((repo / "metadata").glob(f"*.{role}.json"), key=lambda p: int(p.name.split(".")[0]))


def measure_locks(figures: Figures, profile: Path, url: str, root: bytes, work: Path,
                  log: Callable[[str], None]) -> None:
    """Per index mode, a cold lock (empty client cache) and a warm one (the same cache, nothing changed)."""
    for mode in INDEX_MODES:
        cache = private_dir(work / f"lock-{mode}")
        for state in ("cold", "warm"):
            key = f"lock {state} {mode}"
            done = whole_or_none(figures, key, functools.partial(lock_once, profile, url, root, cache, mode), log)
            if done is None:
                continue
            seconds, fetches, locked = done
            figures.seconds[key], figures.bytes[key] = seconds, sum(f.bytes for f in fetches)
            figures.counts["locked packages"] = locked
            log(f"  {figures.size}: {key}: {locked} packages locked, {len(fetches)} files: {kinds(fetches)}")


T = TypeVar("T")


def whole_or_none(figures: Figures, key: str, fn: Callable[[], T], log: Callable[[str], None]) -> T | None:
    """``fn()``, or None when it reads a whole index past what a client reads (MAX_INDEX_BYTES decompressed: a
    million synthetic packages make ~740 MB of JSON per architecture; only the sparse index serves them)."""
    try:
        return fn()
    except LimitExceeded as exc:
        log(f"  {figures.size}: {key}: not measured: {exc.message}")
        figures.notes.append(f"{key}: {exc.message}")
        return None


def whole_refresh(client: CountingClient) -> list[Fetch]:
    """A whole-index client's refresh: the metadata, then the whole index of LOCK_ARCH (if it changed)."""
    client.refresh()
    client.index(LOCK_ARCH)
    return client.take()


def follow(client: CountingClient, names: Sequence[str]) -> list[Fetch]:
    """A sparse client's refresh: the metadata, then the sparse files of ``names`` (only changed ones fetched)."""
    client.refresh()
    client.sparse_entries(LOCK_ARCH, names)
    return client.take()


def measure(home: Path, work: Path, *, size: int, with_mirror: bool = True,
            log: Callable[[str], None] = print) -> Figures:
    repo = working_copy(home, work / "repo")
    # the copy's metadata/ is a new directory: one writer lists it and keeps the listing in the state
    # (composer/repo/listing.py), unmeasured, as the repository's own writers leave it between changes
    edit.refresh(RepoStore(repo))
    dev = load_signing_key(home / "keys" / "dev.key")
    root = (repo / "metadata" / "1.root.json").read_bytes()
    url = repo.resolve().as_uri()
    figures = Figures(size=size, counts={"packages": RepoStore(repo).writable_state().count()})
    timed = Timed(figures)

    client = CountingClient(url, root, work / "client")
    fetched = whole_or_none(figures, "cold", lambda: timed("cold", lambda: whole_refresh(client)), log)
    if fetched is not None:
        figures.bytes["cold"] = sum(f.bytes for f in fetched)
    client.fetch(client.metadata(lock_names()[0], LOCK_ARCH))   # a client that installed a package: it holds the
    client.take()                                               # developer metadata
    measure_baselines(figures, repo, work)

    figures.profile = lock_names()
    measure_locks(figures, write_profile(work / "profile", url, root, figures.profile), url, root, work, log)
    watched = watched_names(figures.profile, home / "extra.vpk")
    follow(CountingClient(url, root, private_dir(work / "sparse-client")), watched)

    timed("add 1", lambda: edit.add(RepoStore(repo), [home / "extra.vpk"], [dev]))
    published = timed("publish", lambda: edit.publish(RepoStore(repo)))
    figures.counts["incremental publish"] = int(published["incremental"])   # 1: only what changed was rebuilt
    store = RepoStore(repo)
    record = incremental.Record.from_value(store.writable_state().meta(incremental.RECORD_KEY))
    figures.counts["whole behind"] = record.behind if record is not None else -1
    rebuilt = timed("whole rebuild", lambda: whole_rebuild(store))
    budget = incremental.whole_budget(rebuilt)
    figures.seconds["whole per change"] = figures.seconds["whole rebuild"] / max(budget, 1)
    store.close_state()
    client = CountingClient(url, root, work / "client")
    fetched = whole_or_none(figures, "refresh", lambda: timed("refresh", lambda: whole_refresh(client)), log)
    if fetched is not None:
        figures.bytes["refresh"] = sum(f.bytes for f in fetched)
    client.take()
    # installing the new package: the developer metadata (role, bins) the client fetches again
    added = read_header(home / "extra.vpk").metadata
    client.fetch(client.metadata(added.name, "x86_64", added.version))
    figures.bytes["dev refetch"] = sum(f.bytes for f in client.take()
                                       if f.url.startswith("metadata/") and f".{DEV_ROLE}." in f.url)
    sparse = CountingClient(url, root, work / "sparse-client")
    fetched = timed("refresh sparse", lambda: follow(sparse, watched))
    figures.bytes["refresh sparse"] = sum(f.bytes for f in fetched)
    # the snapshot patch it downloaded instead of the snapshot (composer/repo/snappatches.py)
    figures.bytes["snapshot patch"] = sum(f.bytes for f in fetched
                                          if "/snapshot-patches/" in f.url and f.url.endswith(".json"))
    log(f"  {figures.size}: refresh sparse ({len(watched)} names followed): {kinds(fetched)}")
    figures.bytes["snapshot"] = latest_role(repo, "snapshot").stat().st_size
    figures.counts["bins"] = len({p.name.split(".")[1] for p in (repo / "metadata").glob("*.index-sparse-*.json")})
    timed("publish full", lambda: edit.publish(RepoStore(repo), full=True))   # every sparse file and bin

    if not with_mirror:
        return figures
    cold = CountingClient(url, root, work / "mirror-client")
    timed("mirror", lambda: mirror(cold, work / "mirror", list(ARCHES)))
    figures.bytes["mirror"] = tree_bytes(work / "mirror")
    timed("raw copy", lambda: [shutil.copytree(repo / d, work / "raw" / d) for d in ("metadata", "targets")])
    return figures


def whole_rebuild(store: RepoStore) -> int:
    """What rebuilding the whole indexes costs (every entry read from the state, every architecture's index
    built and compressed, as a publish that rebuilds them does; nothing written); return the package count."""
    db = store.writable_state()
    entries = [IndexEntry.from_dict(e) for e in db.packages().values()]
    for arch in store.config.architectures:
        build_index(arch, entries)
    return len(entries)


# ---------------------------------------------------------------- report

LOCKS = tuple((f"lock {state} {mode}", unit) for mode in INDEX_MODES for state in ("cold", "warm") for unit in "sB")
ROWS = (("add 1", "s"), ("publish", "s"), ("whole per change", "s"), ("whole rebuild", "s"), ("publish full", "s"),
        ("refresh", "s"),
        ("refresh", "B"), ("refresh sparse", "s"),
        ("refresh sparse", "B"), ("cold", "s"), ("cold", "B"), *LOCKS,
        ("mirror", "s"), ("mirror", "B"), ("sqlite insert", "s"), ("state.json rewrite", "s"), ("raw copy", "s"),
        ("state.db", "B"), ("state.json", "B"), ("dev role", "B"), ("dev refetch", "B"), ("snapshot", "B"),
        ("snapshot patch", "B"),
        ("bins", "n"), ("locked packages", "n"), ("incremental publish", "n"), ("whole behind", "n"))
UNITS = {"s": "time", "B": "bytes", "n": "count"}
RATIOS = (("add 1", "sqlite insert"), ("mirror", "raw copy"))


def value(f: Figures, name: str, unit: str) -> float:
    if unit == "s":
        return f.seconds.get(name, math.nan)
    return float((f.bytes if unit == "B" else f.counts).get(name, math.nan))


def show(v: float, unit: str) -> str:
    if v != v:
        return "-"
    if unit == "s":
        return f"{v * 1000:.1f} ms" if v < 1 else f"{v:.2f} s"
    if unit == "n":
        return f"{v:,.0f}"
    return f"{v / 1e6:.2f} MB" if v >= 1e6 else f"{v / 1e3:.1f} kB"


def report(all_figures: Sequence[Figures]) -> str:
    sizes = [f.size for f in all_figures]
    steps = list(itertools.pairwise(sizes))
    head = ["figure", *[f"{n:,}" for n in sizes], *[f"{a:,} -> {b:,}" for a, b in steps]]
    lines = [head]
    for name, unit in ROWS:
        vals = [value(f, name, unit) for f in all_figures]
        growth = [f"x{(b / a) ** (1 / math.log10(m / n)):.2f}/10x" if a and a == a and b == b and m > n else "-"
                  for (a, b), (n, m) in zip(itertools.pairwise(vals), steps, strict=True)]
        lines.append([f"{name} ({UNITS[unit]})", *[show(v, unit) for v in vals], *growth])
    for num, den in RATIOS:
        shares = [value(f, num, "s") / value(f, den, "s") for f in all_figures]
        lines.append([f"{num} / {den}", *[f"{r:.0f}x" if r == r else "-" for r in shares],
                      *["" for _ in sizes[1:]]])
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    table = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines)
    notes = [f"  {f.size:,}: {note}" for f in all_figures for note in f.notes]
    return table + ("\nnot measured:\n" + "\n".join(notes) if notes else "")


def run(sizes: Sequence[int], cache: Path, seed: int, log: Callable[[str], None] = print, *,
        mirror_max: int = 1_000_000) -> list[Figures]:
    out = []
    for n in sizes:
        t0 = time.perf_counter()
        home = build_repository(cache, n, seed, log)
        add_lock_set(home, log)
        bring_up_to_date(home, log)
        with tempfile.TemporaryDirectory(prefix="vcomp-scale-", dir=cache) as tmp:
            out.append(measure(home, Path(tmp), size=n, with_mirror=n <= mirror_max, log=log))
        log(f"  {n}: measured in {time.perf_counter() - t0:.1f} s")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated package counts (default 10000,100000)")
    ap.add_argument("--cache", type=Path, default=None, help="where the synthetic repositories are kept "
                                                              "(default $VCOMP_CACHE/bench-scale)")
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--json", type=Path, help="also write every figure as JSON")
    ap.add_argument("--mirror-max", type=int, default=1_000_000,
                    help="measure the full mirror only up to this size (it is the slowest figure)")
    opts = ap.parse_args(argv)
    sizes = sorted({int(s) for s in opts.sizes.split(",") if s.strip()})
    cache = opts.cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    figures = run(sizes, cache, opts.seed, mirror_max=opts.mirror_max)
    print(report(figures))
    if opts.json:
        opts.json.write_text(json.dumps([f.__dict__ for f in figures], indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
