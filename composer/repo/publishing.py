"""``vcomp repo publish`` and ``repo refresh``: the indexes (whole and sparse, in hash bins) signed by the online
index role, then the snapshot and the timestamp (timestamp last). Incremental after a change
(composer/repo/incremental.py): only what the change touched is rebuilt."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from tuf.api.metadata import MetaFile, Snapshot, TargetFile, Targets, Timestamp

from composer.errors import UserError
from composer.repo import incremental
from composer.repo.devbins import snapshot_roles
from composer.repo.guard import locked
from composer.repo.hashbins import assign, bin_bits, sign_bin, succinct_delegations
from composer.repo.incremental_marks import marked_behind
from composer.repo.index import IndexEntry, build_index, index_target_path
from composer.repo.publish import stored_target
from composer.repo.sparse import SPARSE_BIN_PREFIX, base_target_path, build_sparse, sparse_target_path
from composer.repo.store import CONFIG, INDEX_ROLE, MIGRATE_HINT, RepoStore, expires
from composer.trust.keys import SigningKey

# ----------------------------------------------------------------- publish / refresh

@locked
def publish(store: RepoStore, *, full: bool = False) -> dict[str, int]:
    """Publish under the repository's lock (see :func:`publish_unlocked`)."""
    return publish_unlocked(store, full=full)


def publish_unlocked(store: RepoStore, *, full: bool = False) -> dict[str, int]:
    """Write the indexes (signed by the online index role), then snapshot and timestamp (timestamp last).

    Incremental when the state recorded the last publish and what changed since (composer/repo/incremental.py):
    only the sparse files of the changed names, their bins, and the whole indexes that are small or due are
    rebuilt; ``full`` (or no record, new architectures, a new bin count, the renewal date) rebuilds everything.
    The top-level targets metadata is offline: publish only lists its current version in the snapshot.
    """
    db = store.writable_state()
    images: dict[str, Any] = db.meta("images") or {}
    targets = store.load("targets", Targets)
    index_keys = _index_signers(store, targets.signed)
    days = store.config.expiry_days
    arches = store.config.architectures
    index = store.load(INDEX_ROLE, Targets)
    sparse = publishes_sparse(targets.signed, arches)
    succinct = index.signed.delegations.succinct_roles if index.signed.delegations else None
    record = incremental.Record.from_value(db.meta(incremental.RECORD_KEY))
    whole_paths = {a: index_target_path(a) for a in arches}
    threshold = _index_threshold(targets.signed)
    # new index keys (vcomp repo rotate --role index): every bin is signed again by them, and none by the old
    rekey = succinct is not None and (sorted(succinct.keyids) != sorted(k.keyid for k in index_keys)
                                      or succinct.threshold != threshold)
    plan = incremental.plan(db, record, arches=arches, bits=succinct.bit_length if succinct else None,
                            whole_bytes={a: index.signed.targets[p].length for a, p in whole_paths.items()
                                         if p in index.signed.targets}, full=full or not sparse or rekey)
    bins: list[str] | None = None
    files, done_incrementally = 0, False
    if plan.changes is not None and plan.record is not None:
        changed = incremental.changed_files(db, plan.changes, arches)
        found = incremental.update_bins(store, index.signed, changed, plan.record, index_keys, days=days["index"])
        if found is not None and succinct is not None:
            bins, files, done_incrementally = list(succinct.get_roles()), found, True
    kept = {p: i for p, i in index.signed.targets.items() if p in whole_paths.values()} if bins is not None else {}
    rebuilt = [a for a in arches if bins is None or a in plan.whole or whole_paths[a] not in kept]
    entries = [IndexEntry.from_dict(e) for e in db.packages().values()] if bins is None else []
    index.signed.targets = {}
    for arch in arches:
        path = whole_paths[arch]
        if arch not in rebuilt:   # a large whole index not yet due: kept as it was, marked behind
            index.signed.targets[path] = marked_behind(kept[path])
            continue
        chosen = entries if bins is None else [IndexEntry.from_dict(e) for e in db.packages([arch, "noarch"]).values()]
        data = build_index(arch, chosen)
        info = TargetFile.from_data(path, data, ["sha256"])
        store.publisher.put_target(stored_target(path, info.hashes["sha256"]), data)
        index.signed.targets[path] = info
    if bins is None:   # a full publish: every sparse file and bin
        previous = listed_bins(store, index.signed)
        sparse_files: dict[str, TargetFile] = {}
        for arch in arches if sparse else ():
            sparse_files.update(_put_sparse(store, build_sparse(arch, entries), previous))
        bins = sign_bins(store, index.signed, sparse_files, index_keys, threshold=threshold, force=rekey)
        files = len(sparse_files)
    for path, listed in sorted(images.items()):   # chunk indexes (composer/update/publish.py)
        index.signed.targets[path] = TargetFile(length=listed["length"], hashes={"sha256": listed["sha256"]},
                                                path=path)
    index.signed.version += 1
    index.signed.expires = expires(days["index"])
    store.sign_and_write(index, INDEX_ROLE, index_keys)

    # versions with lengths and hashes: clients download exactly these bytes (no size cap to hit,
    # and a stale cached copy is rejected by hash without being parsed)
    snapshot = store.load("snapshot", Snapshot)
    delegations = targets.signed.delegations
    top = sorted(delegations.roles or {}) if delegations else []
    roles = [*snapshot_roles(store, top), *bins] if delegations else bins
    snapshot.signed.meta = incremental.snapshot_meta(store, ["targets", *roles], snapshot.signed.meta,
                                                     bins=[r for r in roles if r not in top])
    snapshot.signed.version += 1
    snapshot.signed.expires = expires(days["snapshot"])
    snap_bytes = store.sign_and_write(snapshot, "snapshot", store.online_keys("snapshot"))
    _timestamp(store, snapshot.signed.version, snap_bytes)
    succinct = index.signed.delegations.succinct_roles if index.signed.delegations else None
    pending = plan.record.whole_pending + len(plan.changes) if done_incrementally and plan.record and plan.changes \
        is not None else 0
    done = incremental.Record(bits=succinct.bit_length if succinct else 0, files=files, arches=tuple(arches),
                              whole_pending=0 if set(rebuilt) == set(arches) else pending,
                              renew_by=plan.record.renew_by if done_incrementally and plan.record
                              else incremental.renew_date(days["index"]))
    if done_incrementally and plan.changes is not None:
        db.clear_changes(plan.changes, meta={incremental.RECORD_KEY: done.to_dict()})
    else:
        db.clear_all_changes(meta={incremental.RECORD_KEY: done.to_dict()})
    return {"targets": targets.signed.version, "index": index.signed.version, "snapshot": snapshot.signed.version,
            "packages": db.count(), "incremental": int(done_incrementally)}


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


def _role_bytes(store: RepoStore, role: str, version: int) -> bytes:
    return (store.metadata_dir / f"{version}.{role}.json").read_bytes()


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


def _metafile(version: int, data: bytes) -> MetaFile:
    return MetaFile(version=version, length=len(data), hashes={"sha256": hashlib.sha256(data).hexdigest()})


def _timestamp(store: RepoStore, snapshot_version: int, snapshot_bytes: bytes) -> None:
    ts = store.load("timestamp", Timestamp)
    ts.signed.snapshot_meta = _metafile(snapshot_version, snapshot_bytes)
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

