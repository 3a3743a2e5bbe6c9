"""The snapshot role as plain JSON, for ``repo publish``.

At a million packages the snapshot lists 20,480 roles (every hash bin: TUF's snapshot names every targets
role, and python-tuf has no TAP 16). Read and written through python-tuf's objects it cost a publish
about 0.1 s (a ``MetaFile`` made, copied and serialised per entry); as the JSON it is, a dict per entry,
reading and writing it costs what the JSON parser and encoder do. The bytes are the ones python-tuf would
write for the same content (sorted compact JSON, the canonical JSON of ``signed`` signed by each key), and
tests/unit/test_snapshotdoc.py checks them against python-tuf: parsed, re-serialised and verified.

The previous snapshot is the repository's own file, but it is still checked before use: its shape when
read, each entry where it is used (a version that is not a positive integer is "not listed"; a length and
sha256 are carried only when well formed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuf.api.metadata import Snapshot

from composer.errors import VerificationError
from composer.repo import snapbins
from composer.trust import canonical
from composer.trust.keys import SigningKey

if TYPE_CHECKING:
    from composer.repo.store import RepoStore

MAX_SNAPSHOT_BYTES = 256 << 20   # a publish never reads a larger snapshot (a million packages: 0.8 MB)
Entry = dict[str, Any]           # {"version": N} or with "length" and "hashes": {"sha256": ...}


@dataclass(frozen=True)
class SnapshotDoc:
    """A snapshot's ``signed`` part: its version and ``meta`` (``ROLE.json`` -> entry), checked."""
    signed: Mapping[str, Any]

    @property
    def version(self) -> int:
        return int(self.signed["version"])

    @property
    def meta(self) -> Mapping[str, Entry]:
        meta: Mapping[str, Entry] = self.signed["meta"]
        return meta

    def buckets(self) -> snapbins.Table | None:
        """The hash bins' buckets this snapshot names (None: it lists every bin itself; checked by :func:`parse`)."""
        return snapbins.table(self.signed)

    def listed_version(self, role: str) -> int | None:
        """The version listed for ``role`` (None: not listed, or not as a positive integer)."""
        entry = self.meta.get(f"{role}.json")
        version = entry.get("version") if isinstance(entry, dict) else None
        return version if type(version) is int and version > 0 else None

    def listed_versions(self) -> dict[str, int]:
        """``ROLE.json`` -> version of every well-formed entry (one pass, for checking thousands of bins)."""
        return {name: v for name, entry in self.meta.items()
                if isinstance(entry, dict) and type(v := entry.get("version")) is int and v > 0}

    def hashed(self, role: str) -> Entry | None:
        """``role``'s entry when it carries a well-formed length and sha256 (an entry that can be carried)."""
        entry = self.meta.get(f"{role}.json")
        if not isinstance(entry, dict):
            return None
        length, hashes = entry.get("length"), entry.get("hashes")
        sha = hashes.get("sha256") if isinstance(hashes, dict) else None
        if type(length) is not int or length < 0 or not snapbins.is_sha256(sha):
            return None
        version = self.listed_version(role)
        return None if version is None else {"version": version, "length": length, "hashes": {"sha256": sha}}


def file_entry(version: int, data: bytes) -> Entry:
    """A role's entry with the length and sha256 of its file's ``data``."""
    return {"version": version, "length": len(data), "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}


def _expiry(value: dt.datetime) -> str:
    """As python-tuf writes ``expires``: UTC (a naive time is taken as UTC), to the second."""
    value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(data: bytes, where: str) -> SnapshotDoc:
    """The snapshot in ``data`` (a file's bytes), or one VerificationError naming ``where`` and the fault."""
    def bad(what: str) -> VerificationError:
        return VerificationError(f"{where}: unreadable metadata ({what})",
                                 hint="restore the file from a backup or a mirror of the repository")
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise bad(f"larger than {MAX_SNAPSHOT_BYTES} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise bad(f"not JSON: {exc}") from None
    signed = doc.get("signed") if isinstance(doc, dict) else None
    if not isinstance(signed, dict) or signed.get("_type") != "snapshot":
        raise bad("not snapshot metadata")
    version, meta = signed.get("version"), signed.get("meta")
    if type(version) is not int or version < 1:
        raise bad("signed.version is not a positive integer")
    if not isinstance(meta, dict):
        raise bad("signed.meta is not an object")
    try:   # the other fields are carried into the next snapshot: what python-tuf (every client) accepts
        Snapshot.from_dict({**signed, "meta": {}})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise bad(f"not valid snapshot metadata: {exc!r}") from None
    try:
        snapbins.table(signed)
    except ValueError as exc:
        raise bad(str(exc)) from None
    # (entries are checked where they are used: a malformed one is "not listed", which makes the next
    # publish a full one, and its length and hash are never carried; publish writes every entry anew)
    return SnapshotDoc(signed)


def read(store: RepoStore) -> SnapshotDoc:
    """The repository's current snapshot."""
    path = store.metadata_dir / f"{store.current_version('snapshot')}.snapshot.json"
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SNAPSHOT_BYTES + 1)
    except FileNotFoundError:
        raise VerificationError(f"{path} is missing", hint="the repository is incomplete") from None
    return parse(data, str(path))


def meta(store: RepoStore, roles: Iterable[str], previous: SnapshotDoc, *,
         bins: Iterable[str] = ()) -> dict[str, Entry]:
    """``ROLE.json`` -> entry of each of ``roles`` the store holds: the hash ``bins`` by version only (PEP 458:
    a snapshot of thousands of bins stays a third of the size; a bin's signature and version still bind it,
    and a client caps its download at its targets metadata limit); the others with their length and sha256,
    carried from ``previous`` when it lists the same version (a version's file never changes: consistent
    snapshots), else read and hashed."""
    bare = set(bins)
    versions = store.latest_versions()
    out: dict[str, Entry] = {}
    for role in roles:
        version = versions.get(role)
        if version is None:
            continue
        if role in bare:
            out[f"{role}.json"] = {"version": version}
            continue
        known = previous.hashed(role)
        if known is not None and known["version"] == version:
            out[f"{role}.json"] = known
            continue
        out[f"{role}.json"] = file_entry(version, (store.metadata_dir / f"{version}.{role}.json").read_bytes())
    return out


def sign(store: RepoStore, previous: SnapshotDoc, entries: Mapping[str, Entry], *, expires: dt.datetime,
         keys: Sequence[SigningKey], buckets: snapbins.Table | None = None) -> tuple[int, bytes]:
    """Sign and publish the next snapshot (``previous``'s version + 1, its other fields kept) listing
    ``entries`` and naming the hash bins' ``buckets`` (their table, composer/repo/snapbins.py; None: none,
    every role is in ``entries``); return its version and bytes."""
    version = previous.version + 1
    signed = {**previous.signed, "version": version, "meta": dict(entries),
              "expires": _expiry(expires)}
    signed.pop(snapbins.FIELD, None)
    if buckets is not None:
        signed[snapbins.FIELD] = snapbins.field(buckets)
    text = canonical.encode_canonical(signed)
    assert text is not None
    payload = text.encode("utf-8")
    signatures = {}
    for key in keys:   # (as Metadata.sign with append: one signature per keyid, the last kept)
        signature = key.tuf_signer().sign(payload)
        signatures[signature.keyid] = signature.to_dict()
    data = json.dumps({"signatures": list(signatures.values()), "signed": signed}, separators=(",", ":"),
                      sort_keys=True).encode("utf-8")
    store.publisher.put_metadata(f"{version}.snapshot.json", data)
    return version, data


def bucket_table(store: RepoStore, previous: SnapshotDoc, now: Callable[[], Mapping[str, int]],
                 changed: Mapping[str, int | None] | None) -> snapbins.Table:
    """The bucket table of the next snapshot (composer/repo/snapbins.py), whose bucketed bins are what ``now()``
    gives (``ROLE.json`` -> version), writing the buckets it names that the store lacks.

    With ``changed`` (the entries that changed since ``previous``: a version, or None for a bin gone) only their
    buckets are read from ``previous``'s, updated and written, and the others carried; without it, or when
    ``previous`` names no buckets or one is missing or damaged, every bucket is built from ``now``."""
    old = previous.buckets()
    if changed is not None and old is not None:
        try:
            return _carried(store, old, changed)
        except (OSError, ValueError):
            pass   # a bucket of the previous snapshot is missing or damaged: build them all again
    return {bucket: _put_bucket(store, bucket, versions)
            for bucket, versions in sorted(snapbins.group(now()).items())}


def _carried(store: RepoStore, old: snapbins.Table, changed: Mapping[str, int | None]) -> snapbins.Table:
    out = dict(old)
    touched: dict[str, list[tuple[str, int | None]]] = {}
    for name, version in changed.items():
        touched.setdefault(snapbins.bucket_of(name), []).append((name, version))
    for bucket, changes in sorted(touched.items()):
        previous: dict[str, int] = {}
        if bucket in old:
            path = store.metadata_dir / snapbins.file_name(old[bucket]["hashes"]["sha256"])
            with path.open("rb") as f:
                previous = snapbins.parse(f.read(snapbins.MAX_BUCKET_BYTES + 1), bucket, old[bucket])
        versions = snapbins.updated(previous, changes)
        if versions:
            out[bucket] = _put_bucket(store, bucket, versions)
        else:
            out.pop(bucket, None)
    return out


def _put_bucket(store: RepoStore, bucket: str, versions: Mapping[str, int]) -> dict[str, Any]:
    """Write bucket ``bucket`` listing ``versions`` unless the store holds it (its name is its hash); its entry."""
    data = snapbins.encode(bucket, versions)
    named = snapbins.entry(data)
    name = snapbins.file_name(named["hashes"]["sha256"])
    try:
        with (store.metadata_dir / name).open("rb") as f:
            held = f.read(len(data) + 1) == data   # (a damaged copy is written again)
    except OSError:
        held = False
    if not held:
        store.publisher.put_metadata(name, data)
    return named
