"""Image outputs in the shared build cache (docs/farm.md, "Image builds"): what one machine built, every other
machine, CI job or farm worker takes instead of building it again.

The key is the output's image-cache key (composer/compose/seed.py ``output_key``: the build seed, which digests
the profile, the lock, the architecture, the epoch, the host tools' versions and vcomp's own code, and the
output's job), so an entry is only ever used for exactly the inputs it was built from. Beside the packages'
entries and blobs (composer/farm/cache.py)::

    images/<key>.json    {"signed": {"key": K, "record": {name, type, firmware, boot},
                          "files": [[path, sha256, size], ...]}, "keyid": ..., "signature": "ed25519:..."}
    blobs/<sha256>       each file (an ISO, a disk, a UKI, the root's contents.json), streamed, never in memory

An entry is used only when its signature verifies with the configured key and every file has the size and
sha256 the signed entry names (checked while it is downloaded, before it is moved into the build); anything
else is said once and the output is built. Configured by two settings (composer/settings.py):
``VCOMP_SHARED_CACHE`` (a directory, an http(s):// URL or s3://BUCKET/PREFIX) and ``VCOMP_SHARED_CACHE_KEY``
(a private key: sign what this machine builds and verify what it reads; a ``.pub``: read only).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer import settings
from composer.errors import ComposerError, UserError
from composer.farm.cache import Store, open_store
from composer.fsutil import canonical_json
from composer.trust.keys import PublicKey, SigningKey, load_key_spec, load_public_key

MAX_ENTRY = 256 * 1024
MAX_FILE = 64 * 1024 * 1024 * 1024    # an image output file (a disk image)
MAX_FILES = 64
HEX64 = re.compile(r"^[0-9a-f]{64}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,200}$")   # one path segment: no '/', no '..'
KEY = re.compile(r"^[0-9a-f]{16,128}$")
Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SharedImages:
    """The shared cache of image outputs: where, and the key that verifies (and, when private, signs)."""

    store: Store
    public: PublicKey
    signer: SigningKey | None   # None: read only


def from_settings() -> SharedImages | None:
    """The shared image cache the settings name, or None (no VCOMP_SHARED_CACHE)."""
    where = settings.SHARED_CACHE.get()
    if not where:
        return None
    spec = settings.SHARED_CACHE_KEY.get()
    if not spec:
        raise UserError(f"VCOMP_SHARED_CACHE={where} needs VCOMP_SHARED_CACHE_KEY (the key that signs and verifies "
                        "its entries)", hint="set VCOMP_SHARED_CACHE_KEY=KEYFILE (a .pub to only read)")
    if spec.endswith(".pub"):
        return SharedImages(store=open_store(where, read_only=True), public=load_public_key(Path(spec)), signer=None)
    signer = load_key_spec(spec)
    return SharedImages(store=open_store(where), public=signer.public, signer=signer)


def entry_path(key: str) -> str:
    return f"images/{key}.json"


# ------------------------------------------------------------------ entries (pure)

def make_entry(key: str, record: Mapping[str, Any], files: Sequence[tuple[str, str, int]], signer: SigningKey) -> bytes:
    signed = {"key": key, "record": dict(record), "files": [list(f) for f in files]}
    return canonical_json({"signed": signed, "keyid": signer.keyid, "signature": signer.sign(canonical_json(signed))})


def check_entry(data: bytes, key: str, public: PublicKey) -> tuple[dict[str, Any], list[tuple[str, str, int]], str]:
    """(record, files, "") of a verified entry, or ({}, [], why it is refused). Anyone who can write to the
    store may have written ``data``: nothing here may raise."""
    try:
        doc = json.loads(data)
        signed, signature = doc["signed"], doc["signature"]
        rows = signed["files"]
        if not isinstance(rows, list) or len(rows) > MAX_FILES or not all(
                isinstance(r, list) and len(r) == 3 and isinstance(r[0], str) and isinstance(r[1], str)
                and type(r[2]) is int for r in rows):
            return {}, [], "bad file list"
        record = dict(signed["record"])
        files = [(n, h, z) for n, h, z in rows]
        verified = isinstance(signature, str) and public.verify(signature, canonical_json(signed))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, UnicodeError):
        return {}, [], "not an image cache entry"
    if not verified:
        return {}, [], "unsigned or signed by another key"
    if signed.get("key") != key:
        return {}, [], "signed for other inputs"
    if not files or len({n for n, _h, _z in files}) != len(files) or not all(
            FILE_NAME.match(n) and HEX64.match(h) and 0 <= z <= MAX_FILE for n, h, z in files):
        return {}, [], "bad file list"
    return record, files, ""


# ------------------------------------------------------------------ fetch and push (I/O)

def fetch(shared: SharedImages, key: str, dest: Path, *, warn: Say,
          expect: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """Download the verified entry ``key`` into ``dest`` (its files, each checked before it is moved there) and
    return its record with ``files`` (path, sha256, size), or None: absent, or refused (said on ``warn``).
    ``expect``: record fields the entry must have (the output's name and type) before anything is downloaded."""
    if not KEY.match(key):
        return None
    try:
        data = shared.store.get(entry_path(key), MAX_ENTRY)
        if data is None:
            return None
        record, files, why = check_entry(data, key, shared.public)
        if not why and expect and any(record.get(k) != v for k, v in expect.items()):
            why = f"it is for another output than {', '.join(expect.values())}"
        if not why and not _record_ok(record):
            why = "its record is malformed"
        if why:
            warn(f"warning: shared cache entry {entry_path(key)}: {why}; building instead")
            return None
        with tempfile.TemporaryDirectory(prefix=".shared-", dir=dest) as tmp:
            for name, sha, size in files:
                part = Path(tmp) / name
                if not shared.store.get_file(f"blobs/{sha}", part, size):
                    warn(f"warning: shared cache entry {entry_path(key)}: {name} is missing or too long; "
                         "building instead")
                    return None
                if _digest(part) != sha:
                    warn(f"warning: shared cache entry {entry_path(key)}: {name} does not match its signed sha256; "
                         "building instead")
                    return None
            for name, _sha, _size in files:
                (Path(tmp) / name).replace(dest / name)
    except ComposerError as exc:   # an unreachable store is a warning: the output is built here
        warn(f"warning: {exc.message}; building instead")
        return None
    except OSError as exc:         # a store or local file system fault, the same
        warn(f"warning: shared cache entry {entry_path(key)}: {exc.strerror or exc}; building instead")
        return None
    return {**record, "files": [{"path": n, "sha256": h, "size": z} for n, h, z in files]}


def push(shared: SharedImages, key: str, record: Mapping[str, Any], paths: Sequence[Path], *, warn: Say) -> bool:
    """Store one built output (its files, blobs first, then the signed entry naming them); a store that cannot
    be written is a warning. False when nothing was pushed (read only, or the store failed)."""
    if shared.signer is None or not KEY.match(key):
        return False
    listed = []
    try:
        for path in paths:
            sha = _digest(path)
            shared.store.put_file(f"blobs/{sha}", path)
            listed.append((path.name, sha, path.stat().st_size))
        shared.store.put(entry_path(key), make_entry(key, record, listed, shared.signer))
    except (ComposerError, OSError) as exc:
        warn(f"warning: shared cache: {getattr(exc, 'message', exc)}; the output is not shared")
        return False
    return True


def _record_ok(record: Mapping[str, Any]) -> bool:
    """The record's fields have the types a build reads (name, type, firmware list, boot map of strings)."""
    firmware, boot = record.get("firmware"), record.get("boot")
    return (isinstance(record.get("name"), str) and isinstance(record.get("type"), str)
            and isinstance(firmware, list) and all(isinstance(f, str) for f in firmware)
            and isinstance(boot, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in boot.items()))


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
