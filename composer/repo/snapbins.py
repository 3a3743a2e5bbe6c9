"""Snapshot buckets: the hash bins' versions out of the signed snapshot, into content-addressed files.

TUF's snapshot lists every targets role by version. At a million packages that is 20,480 hash bins (16,384 of
the sparse index, 4,096 of a large developer): 0.8 MB that every publish encodes and signs and every client
parses after every change, the O(bins) part of both. From ``BUCKETS_FROM`` bins, publish lists the bins
instead in at most 256 **bucket** files, ``metadata/snapshot-bins/<sha256>.json``; the snapshot names each
bucket by length and sha256 in its signed field ``x-vcomp-bins``, and lists the other roles (targets, the
index role, the developer roles) as before. A bin's bucket is the first byte of the sha256 of its
``ROLE.json`` name.

That is TAP 16's idea (snapshot Merkle trees) as a two-level hash tree of files, the way apt's signed Release
file names its Packages files by hash: the snapshot key still signs, transitively, every bin's version. A
client reads the bucket of a bin it walks into (composer/repo/bucketed.py: its length capped by the snapshot,
its hash checked, each entry checked to belong there), so after one change it downloads the snapshot (or its
patch), one or two buckets of ~2.5 kB and the changed bins; one publish rewrites the buckets of the bins it
changed, not a list of every bin. A bucket never changes (its name is its hash), so a mirror or a CDN caches
it forever and a reader of an older snapshot still finds the buckets that snapshot names.

Pure: the bucket of a role, a bucket's bytes, the snapshot's field, and the checks of both as read
(hostile input: sizes, types, hashes; every fault a ``ValueError`` naming it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

FIELD = "x-vcomp-bins"          # the snapshot's signed field naming the buckets
FORMAT = 1
DIR = "snapshot-bins"           # under metadata/
BUCKETS_FROM = 1_024            # bins from which publish lists them in buckets (a smaller snapshot stays plain TUF)
MAX_BUCKET_BYTES = 4 << 20      # a client never reads a larger bucket (a million packages: ~2.5 kB)
_HEX = frozenset("0123456789abcdef")

Table = dict[str, dict[str, Any]]   # bucket -> {"length": N, "hashes": {"sha256": H}}


def is_sha256(value: object) -> bool:
    """Whether ``value`` is a sha256 as TUF writes it: 64 lower-case hex digits."""
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def bucket_of(name: str) -> str:
    """The bucket of role file ``name`` (``ROLE.json``): two hex digits."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:2]


def file_name(sha256: str) -> str:
    """A bucket's name under metadata/."""
    return f"{DIR}/{sha256}.json"


def encode(bucket: str, versions: Mapping[str, int]) -> bytes:
    """Bucket ``bucket``'s bytes listing ``versions`` (``ROLE.json`` -> version): deterministic JSON, entries
    shaped as the snapshot's (``{"version": N}``)."""
    meta = {name: {"version": versions[name]} for name in sorted(versions)}
    return json.dumps({"bucket": bucket, "meta": meta}, sort_keys=True, separators=(",", ":")).encode("utf-8")


def group(versions: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """bucket -> the entries of ``versions`` in it."""
    out: dict[str, dict[str, int]] = {}
    for name, version in versions.items():
        out.setdefault(bucket_of(name), {})[name] = version
    return out


def entry(data: bytes) -> dict[str, Any]:
    """The snapshot's entry for a bucket's bytes."""
    return {"length": len(data), "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}


def field(table: Table) -> dict[str, Any]:
    """The snapshot's ``x-vcomp-bins`` value naming the buckets of ``table`` (an empty bucket is left out)."""
    return {"format": FORMAT, "buckets": {b: table[b] for b in sorted(table)}}


def table(signed: Mapping[str, Any]) -> Table | None:
    """The buckets a snapshot's ``signed`` part names (None: it lists every bin itself). Raises ValueError for
    a malformed field (the snapshot is then unusable: it is signed, so its publisher made it so)."""
    value = signed.get(FIELD)
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("format") != FORMAT or not isinstance(value.get("buckets"), dict):
        raise ValueError(f"{FIELD}: not a format-{FORMAT} bucket table")
    out: Table = {}
    for bucket, item in value["buckets"].items():
        where = f"{FIELD}.buckets.{bucket}"
        if not isinstance(bucket, str) or len(bucket) != 2 or not set(bucket) <= _HEX:
            raise ValueError(f"{where}: not a bucket name (two lower-case hex digits)")
        length = item.get("length") if isinstance(item, dict) else None
        hashes = item.get("hashes") if isinstance(item, dict) else None
        sha = hashes.get("sha256") if isinstance(hashes, dict) else None
        if type(length) is not int or not 0 < length <= MAX_BUCKET_BYTES:
            raise ValueError(f"{where}.length: not a length from 1 to {MAX_BUCKET_BYTES}")
        if not is_sha256(sha):
            raise ValueError(f"{where}.hashes.sha256: not a lower-case sha256")
        out[bucket] = {"length": length, "hashes": {"sha256": sha}}
    return out


def parse(data: bytes, bucket: str, named: Mapping[str, Any]) -> dict[str, int]:
    """The entries (``ROLE.json`` -> version) of bucket ``bucket``'s ``data``, checked against its snapshot
    entry ``named``: the length and sha256, then the shape, and that every entry belongs in this bucket.
    Raises ValueError naming the fault."""
    if len(data) != named["length"]:
        raise ValueError(f"bucket {bucket}: {len(data)} bytes, the snapshot says {named['length']}")
    if hashlib.sha256(data).hexdigest() != named["hashes"]["sha256"]:
        raise ValueError(f"bucket {bucket}: its sha256 is not the one the snapshot names")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"bucket {bucket}: not JSON ({exc})") from None
    meta = doc.get("meta") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("bucket") != bucket or not isinstance(meta, dict):
        raise ValueError(f"bucket {bucket}: not bucket {bucket} of a snapshot")
    out: dict[str, int] = {}
    for name, item in meta.items():
        version = item.get("version") if isinstance(item, dict) else None
        if type(version) is not int or version < 1:
            raise ValueError(f"bucket {bucket}: meta.{name}.version is not a positive integer")
        if not name.endswith(".json") or bucket_of(name) != bucket:
            raise ValueError(f"bucket {bucket}: meta.{name} does not belong in this bucket")
        out[name] = version
    return out


def updated(previous: Mapping[str, int], changes: Iterable[tuple[str, int | None]]) -> dict[str, int]:
    """``previous`` (one bucket's entries) with ``changes`` applied (a version, or None: the role is gone)."""
    out = dict(previous)
    for name, version in changes:
        if version is None:
            out.pop(name, None)
        else:
            out[name] = version
    return out
