"""``vcomp repo publish`` and ``repo refresh``: the indexes (whole and sparse, in hash bins) signed by the online
index role, then the snapshot and the timestamp (timestamp last). Incremental after a change
(composer/repo/incremental.py): only what the change touched is rebuilt."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tuf.api.metadata import SuccinctRoles, TargetFile, Targets, Timestamp

from composer import gcpause
from composer.errors import UserError
from composer.repo import incremental, snapbins, snapshotdoc
from composer.repo.devbins import snapshot_roles
from composer.repo.guard import locked
from composer.repo.hashbins import assign, bin_bits, sign_bin, succinct_delegations
from composer.repo.index import IndexEntry, behind_custom, build_index, index_target_path
from composer.repo.publish import stored_target
from composer.repo.snappatches import write_patch
from composer.repo.sparse import SPARSE_BIN_PREFIX, base_target_path, build_sparse, sparse_target_path
from composer.repo.store import CONFIG, INDEX_ROLE, MIGRATE_HINT, RepoStore, expires
from composer.trust.keys import SigningKey

# ----------------------------------------------------------------- publish / refresh

@locked
def publish(store: RepoStore, *, full: bool = False) -> dict[str, int]:
    """Publish under the repository's lock (see :func:`publish_unlocked`)."""
    with gcpause.paused():   # (composer/gcpause.py: a full collection inside the snapshot's encoding was 80 ms)
        return publish_unlocked(store, full=full)


def publish_unlocked(store: RepoStore, *, full: bool = False) -> dict[str, int]:
    """Write the indexes (signed by the online index role), then snapshot and timestamp (timestamp last).

    Incremental when the state recorded the last publish and what changed since (composer/repo/incremental.py):
    the sparse files of the changed names and their bins are rebuilt, and the whole indexes (at scale, only
    once their backlog is past its budget); ``full`` (or no
    record, new architectures, a new bin count, new index keys, an unfinished publish, the renewal date)
    rebuilds every sparse file and bin. The top-level targets metadata is offline: publish only lists its
    current version in the snapshot.
    """
    db = store.writable_state()
    images: dict[str, Any] = db.meta("images") or {}
    targets = store.load("targets", Targets)
    index_keys = _index_signers(store, targets.signed)
    days = store.config.expiry_days
    arches = store.config.architectures
    index = store.load(INDEX_ROLE, Targets)
    snapshot = snapshotdoc.read(store)
    sparse = publishes_sparse(targets.signed, arches)
    succinct = index.signed.delegations.succinct_roles if index.signed.delegations else None
    threshold = _index_threshold(targets.signed)
    # new index keys (vcomp repo rotate --role index): every bin is signed again by them, and none by the old
    rekey = succinct is not None and (sorted(succinct.keyids) != sorted(k.keyid for k in index_keys)
                                      or succinct.threshold != threshold)
    count = db.count()   # (kept by the state's triggers: composer/repo/statedb.py)
    raw = db.meta(incremental.RECORD_KEY)
    plan = incremental.plan(db, incremental.Record.from_value(raw), arches=arches,
                            bits=succinct.bit_length if succinct else None, full=full or not sparse or rekey,
                            interrupted=incremental.started(raw) or _unfinished(
                                store, snapshot, succinct.get_roles() if succinct else ()),
                            packages=count)
    # from here until the final record a kill leaves the mark: the next publish is a full one
    db.put((), meta={incremental.RECORD_KEY: incremental.mark_started(raw)})
    sparse_bins: SparseBins | None = None
    signed_bins: list[str] = []
    files = 0
    if plan.changes is not None and plan.record is not None and succinct is not None:
        changed = incremental.changed_files(db, plan.changes, arches)
        found = incremental.update_bins(store, index.signed, changed, plan.record, index_keys, days=days["index"])
        if found is not None:
            (files, signed_bins), sparse_bins = found, SparseBins.of(succinct)
    done_incrementally = sparse_bins is not None
    current = dict(index.signed.targets)
    behind = incremental.whole_backlog(plan.record, plan.changes if done_incrementally else None, count,
                                       listed=all(index_target_path(a) in current for a in arches))
    entries = [IndexEntry.from_dict(e) for e in db.packages().values()] if behind is None else []
    index.signed.targets = _whole_indexes(store, arches, entries, current, behind.behind if behind else None)
    if sparse_bins is None:   # a full publish: every sparse file and bin
        previous = listed_bins(store, index.signed)
        sparse_files: dict[str, TargetFile] = {}
        for arch in arches if sparse else ():
            sparse_files.update(_put_sparse(store, build_sparse(arch, entries), previous))
        signed = sign_bins(store, index.signed, sparse_files, index_keys, threshold=threshold, force=rekey)
        sparse_bins = SparseBins(count=len(signed), names=lambda: signed)
        files = len(sparse_files)
    for path, listed in sorted(images.items()):   # chunk indexes (composer/update/publish.py)
        index.signed.targets[path] = TargetFile(length=listed["length"], hashes={"sha256": listed["sha256"]},
                                                path=path)
    index.signed.version += 1
    index.signed.expires = expires(days["index"])
    store.sign_and_write(index, INDEX_ROLE, index_keys)

    # versions with lengths and hashes: clients download exactly these bytes (no size cap to hit,
    # and a stale cached copy is rejected by hash without being parsed); hash bins by version only
    delegations = targets.signed.delegations
    top = sorted(delegations.roles or {}) if delegations else []
    delegated = snapshot_roles(store, top) if delegations else []   # each developer role and its bins
    developer_bins = [r for r in delegated if r not in set(top)]
    table: snapbins.Table | None = None
    bucket_versions: dict[str, int] | None = None
    if len(developer_bins) + sparse_bins.count >= snapbins.BUCKETS_FROM:   # in buckets (composer/repo/snapbins.py)
        listing = snapshotdoc.meta(store, ["targets", *top], snapshot)
        table, bucket_versions = _buckets(store, snapshot, developer_bins, sparse_bins, signed=signed_bins,
                                          previous=db.meta(LISTED_KEY) if done_incrementally else None)
    else:
        bins = sparse_bins.names()
        listing = snapshotdoc.meta(store, ["targets", *delegated, *bins], snapshot, bins=[*developer_bins, *bins])
    snap_version, snap_bytes = snapshotdoc.sign(store, snapshot, listing, expires=expires(days["snapshot"]),
                                                keys=store.online_keys("snapshot"), buckets=table)
    write_patch(store, snap_version, snap_bytes)   # untrusted, before the timestamp naming it
    _timestamp(store, snap_version, snap_bytes)
    now = index.signed.delegations.succinct_roles if index.signed.delegations else None
    done = incremental.Record(bits=now.bit_length if now else 0, files=files, arches=tuple(arches),
                              renew_by=plan.record.renew_by if done_incrementally and plan.record
                              else incremental.renew_date(days["index"]),
                              behind=behind.behind if behind else 0, behind_since=behind.since if behind else "")
    record = {incremental.RECORD_KEY: done.to_dict(), LISTED_KEY: bucket_versions}
    if done_incrementally and plan.changes is not None:
        db.clear_changes(plan.changes, meta=record)
    else:
        db.clear_all_changes(meta=record)
    return {"targets": targets.signed.version, "index": index.signed.version, "snapshot": snap_version,
            "packages": count, "incremental": int(done_incrementally)}


def _whole_indexes(store: RepoStore, arches: Sequence[str], entries: Sequence[IndexEntry],
                   listed: Mapping[str, TargetFile], behind: int | None) -> dict[str, TargetFile]:
    """The whole index targets of the index role: rebuilt from ``entries`` (``behind`` None), or the listed
    files kept and marked ``behind`` changes behind the sparse files (composer/repo/incremental.py)."""
    out: dict[str, TargetFile] = {}
    for arch in arches:
        path = index_target_path(arch)
        if behind is not None:
            old = listed[path]
            out[path] = TargetFile(length=old.length, hashes=dict(old.hashes), path=path,
                                   unrecognized_fields={"custom": behind_custom(behind)} if behind else {})
            continue
        data = build_index(arch, entries)
        info = TargetFile.from_data(path, data, ["sha256"])
        store.publisher.put_target(stored_target(path, info.hashes["sha256"]), data)
        out[path] = info
    return out


LISTED_KEY = "listed_bins"   # state.db meta: ROLE.json -> version of the developer bins the buckets list


@dataclass(frozen=True, slots=True)
class SparseBins:
    """The sparse index's hash bins: how many, and their names when needed (16,384 at a million packages:
    an incremental publish in buckets never lists them)."""

    count: int
    names: Callable[[], list[str]]

    @classmethod
    def of(cls, succinct: SuccinctRoles) -> SparseBins:
        return cls(count=2 ** succinct.bit_length, names=lambda: list(succinct.get_roles()))


def _buckets(store: RepoStore, snapshot: snapshotdoc.SnapshotDoc, developer_bins: Sequence[str],
             sparse_bins: SparseBins, *, signed: Sequence[str], previous: object,
             ) -> tuple[snapbins.Table, dict[str, int]]:
    """The next snapshot's bucket table for the hash bins (``developer_bins`` and ``sparse_bins``), and the
    developer bins it lists (kept in the state for the next publish). After an incremental publish the buckets
    rewritten are those of the sparse bins it ``signed`` and of the developer bins whose version differs from
    ``previous`` (what the last publish listed: only ``repo add`` and the other writers of developer roles sign
    them): O(changes) plus a comparison of the developer bins."""
    versions = store.latest_versions()
    outside = store.versions_except(f"{SPARSE_BIN_PREFIX}-")   # (one query: the repair asked it already)
    developer = {f"{r}.json": outside[r] for r in developer_bins if r in outside}

    def now() -> dict[str, int]:
        return {**{f"{r}.json": versions[r] for r in sparse_bins.names() if r in versions}, **developer}

    changed: dict[str, int | None] | None = None
    if isinstance(previous, dict):
        changed = {f"{r}.json": versions[r] for r in signed if r in versions}
        changed.update({name: v for name, v in developer.items() if previous.get(name) != v})
        changed.update({name: None for name in previous if name not in developer})
    return snapshotdoc.bucket_table(store, snapshot, now, changed), developer


def _unfinished(store: RepoStore, snapshot: snapshotdoc.SnapshotDoc, bins: Iterable[str]) -> bool:
    """Whether a publish stopped after signing a bin or the index role but before the snapshot that lists them
    (one listing of metadata/: versions only, no file read). A snapshot whose bins are in buckets lists only the
    index role itself (a kill after the start of a publish is then known by the state's mark:
    :func:`incremental.started`)."""
    versions, listed = store.latest_versions(), snapshot.listed_versions()
    checked = (INDEX_ROLE,) if snapshot.buckets() is not None else (INDEX_ROLE, *bins)
    return any((held := versions.get(role)) is not None and listed.get(f"{role}.json") != held
               for role in checked)


def publishes_sparse(targets: Targets, architectures: Sequence[str]) -> bool:
    """Whether the index role is delegated the sparse paths (repositories made before the sparse index are
    not: their top-level targets key re-delegates with ``vcomp repo rotate --role index``)."""
    role = (targets.delegations.roles or {}).get(INDEX_ROLE) if targets.delegations else None
    return role is not None and all(role.is_delegated_path(p) for a in architectures
                                    for p in (base_target_path(a), sparse_target_path(a, "x")))


def _put_sparse(store: RepoStore, files: Mapping[str, bytes], previous: Mapping[str, TargetFile],
                ) -> dict[str, TargetFile]:
    """Store the sparse files (an unchanged one is not written again: its content-addressed name is there)."""
    listed = {}
    for path, data in files.items():
        info = TargetFile.from_data(path, data, ["sha256"])
        old = previous.get(path)
        if old is None or old.hashes != info.hashes or old.length != info.length:
            store.publisher.put_target(stored_target(path, info.hashes["sha256"]), data)
        listed[path] = info
    return listed


def _index_threshold(targets: Targets) -> int:
    role = (targets.delegations.roles or {}).get(INDEX_ROLE) if targets.delegations else None
    return role.threshold if role is not None else 1


def listed_bins(store: RepoStore, index: Targets) -> dict[str, TargetFile]:
    """path -> target info of every sparse file the current hash bins of the index role list."""
    succinct = index.delegations.succinct_roles if index.delegations else None
    out: dict[str, TargetFile] = {}
    for name in succinct.get_roles() if succinct else ():
        if store.has_role(name):
            out.update(store.load(name, Targets).signed.targets)
    return out


def sign_bins(store: RepoStore, index: Targets, files: Mapping[str, TargetFile], keys: Sequence[SigningKey], *,
              threshold: int, force: bool = False) -> list[str]:
    """Delegate the sparse files from the index role to succinct hash bins (TAP 15) signed by the same online
    index keys, and sign the bins whose content changed (or that would expire within half their period; every
    bin with ``force``: new keys). Return every bin's name (all listed in the snapshot). No sparse files: no
    delegation."""
    if not files:
        index.delegations = None
        return []
    index.delegations = succinct_delegations({k.keyid: k.public.key for k in keys}, threshold,
                                             bin_bits(len(files)), SPARSE_BIN_PREFIX)
    assert index.delegations.succinct_roles is not None
    listed = assign(index.delegations.succinct_roles, files.items())
    for name, bin_targets in listed.items():
        sign_bin(store, name, bin_targets, keys, days=store.config.expiry_days["index"], force=force)
    return list(listed)


def _index_signers(store: RepoStore, targets: Targets) -> list[SigningKey]:
    """repo.toml's index keys, checked against the index delegation the offline targets role signed."""
    role = (targets.delegations.roles or {}).get(INDEX_ROLE) if targets.delegations else None
    if role is None:
        raise UserError(f"{store.dir}: the top-level targets metadata delegates no '{INDEX_ROLE}' role",
                        hint=MIGRATE_HINT)
    keys = [k for k in store.online_keys(INDEX_ROLE) if k.keyid in role.keyids]
    if len(keys) < role.threshold:
        raise UserError(f"{store.dir / CONFIG}: the index key(s) are not the {role.threshold} key(s) the targets "
                        f"metadata delegates index/* to ({', '.join(k[:16] for k in role.keyids)})",
                        hint=f"rotate the index key with the offline targets key: vcomp repo rotate {store.dir} "
                             "--role index --add-key NEW.key --remove-key OLD.pub --targets-key TARGETS.key")
    return keys


def _timestamp(store: RepoStore, snapshot_version: int, snapshot_bytes: bytes) -> None:
    ts = store.load("timestamp", Timestamp)
    ts.signed.snapshot_meta = incremental.metafile(snapshot_version, snapshot_bytes)
    ts.signed.version += 1
    ts.signed.expires = expires(store.config.expiry_days["timestamp"])
    store.sign_and_write(ts, "timestamp", store.online_keys("timestamp"))


@locked
def refresh(store: RepoStore) -> int:
    """Re-sign the timestamp only, with a new expiry (run it from a timer)."""
    ts = store.load("timestamp", Timestamp)
    ts.signed.version += 1
    ts.signed.expires = expires(store.config.expiry_days["timestamp"])
    store.sign_and_write(ts, "timestamp", store.online_keys("timestamp"))
    return int(ts.signed.version)

