"""The client side of snapshot buckets (composer/repo/snapbins.py): python-tuf's Updater, reading the version of a
hash bin the snapshot does not list from the bucket the snapshot names.

ngclient loads a delegated role only when the trusted snapshot lists it (``meta["ROLE.json"]``). When it walks
into a bin that a bucketed snapshot leaves out, :meth:`BucketedUpdater._load_targets` first reads the bin's
bucket and adds the entry it gives to the trusted snapshot's ``meta``, as if the snapshot had listed it; ngclient
then checks the bin exactly as for a listed one (its version, its signatures by the delegating role's keys, its
expiry). The bucket is trusted only through the snapshot: its download is capped at the length the snapshot
names, its sha256 must match, and every entry must belong in it. A bucket is kept in the cache under its hash
(``snapshot-bins/``) and read again only when the snapshot names another.

Rollback: ngclient refuses a snapshot that lists a role at a lower version than the previous trusted snapshot
did. For a bin listed in a bucket the same check is made against the cached copy of the bin (the newest one
this client verified): a bucket giving a lower version is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import MetaFile, Snapshot, Targets
from tuf.ngclient import Updater

from composer.fsutil import atomic_write
from composer.repo import snapbins

MAX_CACHED_ROLE_BYTES = 64 << 20   # a cached bin read for its version (its own limit applies when loaded)


class BucketedUpdater(Updater):
    """An ngclient Updater that also reads snapshots whose hash bins are listed in buckets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._buckets_read: dict[str, dict[str, int]] = {}   # sha256 -> entries read this session
        super().__init__(*args, **kwargs)

    def _load_snapshot(self) -> None:
        # ngclient refuses a new snapshot that leaves out a role the trusted one lists. The bins a plain snapshot
        # listed and a bucketed one leaves out are checked the same way, in the new snapshot's buckets, once it
        # verified (the one refresh when a repository's bins move into buckets: every bucket is read). Both checks
        # run inside update_snapshot: a refused snapshot is never persisted (ngclient persists after it returns)
        tset = self._trusted_set
        original = tset.update_snapshot

        def update(data: bytes, trusted: bool | None = False) -> Snapshot:
            if trusted:
                return original(data, trusted)
            try:
                old = tset.snapshot
            except KeyError:
                old = None
            had_buckets = old is not None and snapbins.FIELD in old.unrecognized_fields
            moved = _moved_into_buckets(tset, data)
            known = set(old.meta) if old is not None else set()
            new = original(data, trusted)
            if had_buckets:   # a bin the old snapshot listed in a bucket, the new one in meta: against the cache
                for name, info in new.meta.items():
                    cached = self._cached_version(name[:-len(".json")]) if name not in known else None
                    if cached is not None and cached > info.version:
                        raise tuf_exc.BadVersionNumberError(
                            f"the new snapshot lists {name} v{info.version}, older than the v{cached} this client "
                            "already trusted (a rollback)")
            for name, version in sorted(moved.items()):
                listed = self.listed_version(name[:-len(".json")])
                if listed is None or listed < version:
                    raise tuf_exc.BadVersionNumberError(
                        f"the new snapshot's buckets list {name} " + ("not at all" if listed is None
                                                                      else f"v{listed}")
                        + f", the trusted snapshot v{version} (a rollback)")
            return new

        tset.update_snapshot = update   # type: ignore[method-assign]  # (this instance, this call)
        try:
            super()._load_snapshot()
        finally:
            del tset.update_snapshot

    def _load_targets(self, role: str, parent_role: str) -> Targets:
        self.listed_version(role)
        return super()._load_targets(role, parent_role)

    def listed_version(self, role: str) -> int | None:
        """The version the trusted snapshot gives ``role`` (None: none), read from its bucket when the snapshot
        lists it there (and then added to the trusted snapshot's ``meta``). Raises RepositoryError for a bucket
        that does not verify or gives an older version than a cached copy of the role."""
        snapshot = self._trusted_set.snapshot
        name = f"{role}.json"
        listed = snapshot.meta.get(name)
        if listed is not None:
            return int(listed.version)
        table = self._table()
        bucket = snapbins.bucket_of(name)
        if table is None or bucket not in table:
            return None
        version = self._bucket(bucket, table[bucket]).get(name)
        if version is None:
            return None
        cached = self._cached_version(role)
        if cached is not None and cached > version:
            raise tuf_exc.BadVersionNumberError(
                f"snapshot bucket {bucket} lists {role} v{version}, older than the v{cached} this client already "
                "trusted (a rollback)")
        snapshot.meta[name] = MetaFile(version=version)
        return version

    def buckets(self) -> list[tuple[str, bytes]]:
        """Every bucket the trusted snapshot names, verified: (its name under metadata/, its bytes), for a
        mirror (which serves what a client may read)."""
        return [(snapbins.file_name(named["hashes"]["sha256"]), self._bucket_data(bucket, named)[0])
                for bucket, named in sorted((self._table() or {}).items())]

    def _table(self) -> snapbins.Table | None:
        """The buckets the trusted snapshot names (None: it lists every bin itself)."""
        try:
            return snapbins.table(self._trusted_set.snapshot.unrecognized_fields)
        except ValueError as exc:
            raise tuf_exc.RepositoryError(f"snapshot: {exc}") from None

    def _bucket(self, bucket: str, named: dict[str, Any]) -> dict[str, int]:
        """Bucket ``bucket``'s entries, read once a session (:meth:`_bucket_data`)."""
        sha = named["hashes"]["sha256"]
        if sha not in self._buckets_read:
            self._buckets_read[sha] = self._bucket_data(bucket, named)[1]
        return self._buckets_read[sha]

    def _bucket_data(self, bucket: str, named: dict[str, Any]) -> tuple[bytes, dict[str, int]]:
        """Bucket ``bucket``'s bytes and entries, from the cache or downloaded, verified against ``named``."""
        cache = Path(self._dir) / snapbins.DIR
        path = cache / f"{named['hashes']['sha256']}.json"
        with contextlib.suppress(OSError, ValueError), path.open("rb") as f:
            data = f.read(snapbins.MAX_BUCKET_BYTES + 1)
            return data, snapbins.parse(data, bucket, named)
        data = self._fetcher.download_bytes(f"{self._metadata_base_url}{snapbins.file_name(named['hashes']['sha256'])}",
                                            named["length"])
        try:
            entries = snapbins.parse(data, bucket, named)
        except ValueError as exc:
            raise tuf_exc.RepositoryError(f"snapshot {exc}") from None
        cache.mkdir(mode=0o700, exist_ok=True)
        atomic_write(path, data)
        self._prune(cache)
        return data, entries

    def _prune(self, cache: Path) -> None:
        """Drop the cached buckets the trusted snapshot no longer names."""
        keep = {f"{named['hashes']['sha256']}.json" for named in (self._table() or {}).values()}
        with contextlib.suppress(OSError), os.scandir(cache) as found:
            for entry in found:
                if entry.name not in keep:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

    def _cached_version(self, role: str) -> int | None:
        """The version of the cached copy of ``role`` (the newest this client verified), if any."""
        path = Path(self._dir) / f"{quote(role, '')}.json"
        try:
            with path.open("rb") as f:
                doc = json.loads(f.read(MAX_CACHED_ROLE_BYTES))
            version = cast(dict[str, Any], doc["signed"])["version"]
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return None
        return version if type(version) is int else None


def _moved_into_buckets(trusted: Any, data: bytes) -> dict[str, int]:
    """Before ngclient checks the new snapshot ``data`` against the trusted one: when the new one names buckets,
    the entries of the trusted snapshot it leaves out (bins moved into its buckets) are taken out of the trusted
    snapshot's ``meta`` and returned (``ROLE.json`` -> version), to be checked in the buckets once it verified."""
    try:
        old = trusted.snapshot
    except KeyError:
        return {}
    try:
        signed = json.loads(data)["signed"]
        meta = signed["meta"]
        if snapbins.FIELD not in signed or not isinstance(meta, dict):
            return {}
    except (ValueError, KeyError, TypeError, RecursionError):
        return {}   # (ngclient refuses it)
    moved = {name: int(info.version) for name, info in old.meta.items() if name not in meta}
    for name in moved:
        del old.meta[name]
    return moved
