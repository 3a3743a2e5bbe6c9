"""Snapshot patches at the edges: the publisher writes them, a client's fetcher uses them (format and checks:
composer/repo/snapdiff.py).

    metadata/snapshot-patches/N.json   the patch from ``N-1.snapshot.json`` to ``N.snapshot.json``
    metadata/snapshot-patches/N.zst    ``N.snapshot.json`` compressed (zstd), for a client with no snapshot

The last :data:`KEEP` of each are kept. They are served but never signed: a client that holds snapshot ``v`` and is
sent to ``N.snapshot.json`` (``0 < N - v <= KEEP``) fetches patches ``v+1 .. N``, applies them, and hands the
result to python-tuf's ngclient as the download of ``N.snapshot.json``; ngclient verifies it exactly as a
downloaded file (the timestamp's length and sha256, the signatures, the version). A client with no snapshot
(or whose patches failed) fetches ``N.zst`` instead: the snapshot lists every hash bin by name and version,
so it compresses about 50 times (812 kB -> 16 kB at a million packages, zstd level 3 in 1.3 ms), and the
decompressed bytes are checked the same way. Any problem (a missing file, a hostile one, a result the
timestamp does not name) and the fetcher downloads the full snapshot.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zstandard
from tuf.api import exceptions as tuf_exc
from tuf.ngclient import FetcherInterface

from composer.errors import VerificationError
from composer.fsutil import atomic_write
from composer.limits import unzstd
from composer.repo.snapdiff import MAX_PATCH_BYTES, MAX_RESULT_BYTES, FileId, apply_patch, make_patch

if TYPE_CHECKING:
    from composer.repo.store import RepoStore

log = logging.getLogger(__name__)

PATCH_DIR = "snapshot-patches"   # under metadata/: never a role file (N.ROLE.json), never listed as one
KEEP = 64                        # patches kept; a client further behind downloads the full snapshot
SNAPSHOT_NAME = re.compile(r"([1-9][0-9]{0,18})\.snapshot\.json")
PATCH_NAME = re.compile(r"([1-9][0-9]{0,18})\.json")
COMPRESSED_NAME = re.compile(r"([1-9][0-9]{0,18})\.zst")
ZSTD_LEVEL = 3   # (level 19 saves a further 30% of 16 kB and takes 0.25 s a publish at a million packages)


def patch_name(version: int) -> str:
    """The name under metadata/ of the patch that gives snapshot ``version``."""
    return f"{PATCH_DIR}/{version}.json"


def compressed_name(version: int) -> str:
    """The name under metadata/ of snapshot ``version`` compressed."""
    return f"{PATCH_DIR}/{version}.zst"


def compress(data: bytes) -> bytes:
    """A snapshot's bytes compressed (deterministic: the same bytes for the same snapshot)."""
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True).compress(data)


# ----------------------------------------------------------------- publishing

def write_patch(store: RepoStore, version: int, data: bytes) -> None:
    """Publish snapshot ``version`` (``data``) compressed, and the patch from the previous snapshot (read back
    from the store's metadata/) to it; no patch when the previous one is not there or the patch would be no
    smaller than the snapshot. Files older than the last :data:`KEEP` versions are removed from the working
    directory (a remote copy prunes them with the push log: composer/repo/push.py)."""
    packed = compress(data)
    if len(packed) < len(data):
        store.publisher.put_metadata(compressed_name(version), packed)
    try:
        old = (store.metadata_dir / f"{version - 1}.snapshot.json").read_bytes()
    except FileNotFoundError:
        old = None
    if old is not None:
        patch = make_patch(old, data)
        if len(patch) < len(data) and len(patch) <= MAX_PATCH_BYTES:
            store.publisher.put_metadata(patch_name(version), patch)
    _prune(store.metadata_dir, version)


def _prune(metadata_dir: Path, newest: int) -> None:
    """Remove the patches and compressed snapshots of versions older than the last :data:`KEEP`."""
    for name in (patch_name, compressed_name):
        for old_version in patch_versions(metadata_dir, compressed=name is compressed_name):
            if old_version <= newest - KEEP:
                (metadata_dir / name(old_version)).unlink(missing_ok=True)


def derive_patches(metadata_dir: Path) -> list[int]:
    """Write the patches missing in ``metadata_dir`` (a mirror's: composer/repo/mirror.py) between the snapshots
    it holds, for the last :data:`KEEP` versions up to its newest snapshot, and remove older ones; the
    versions written. A mirror that copies every version serves every patch; one that skipped versions serves
    those it can make (its clients download the others in full)."""
    with os.scandir(metadata_dir) as found:
        held = {int(m[1]) for e in found if (m := SNAPSHOT_NAME.fullmatch(e.name))}
    newest = max(held, default=0)
    have = set(patch_versions(metadata_dir))
    made = []
    for v in range(max(2, newest - KEEP + 1), newest + 1):
        if v not in have and v in held and v - 1 in held:
            old, new = (metadata_dir / f"{n}.snapshot.json" for n in (v - 1, v))
            patch = make_patch(old.read_bytes(), new.read_bytes())
            if len(patch) <= MAX_PATCH_BYTES:
                atomic_write(metadata_dir / patch_name(v), patch, tmp_dir=metadata_dir)
                made.append(v)
    packed = metadata_dir / compressed_name(newest)
    if newest and not packed.is_file():
        data = compress((metadata_dir / f"{newest}.snapshot.json").read_bytes())
        atomic_write(packed, data, tmp_dir=metadata_dir)
    _prune(metadata_dir, newest)
    return made


def patch_versions(metadata_dir: Path, *, compressed: bool = False) -> list[int]:
    """The snapshot versions whose patch (``compressed``: compressed snapshot) is under ``metadata_dir``
    (temporary files skipped)."""
    pattern = COMPRESSED_NAME if compressed else PATCH_NAME
    try:
        with os.scandir(metadata_dir / PATCH_DIR) as found:
            return sorted(int(m[1]) for e in found if (m := pattern.fullmatch(e.name)))
    except (FileNotFoundError, NotADirectoryError):
        return []


def served_patches(metadata_dir: Path, snapshot_version: int) -> list[str]:
    """The names under metadata/ of the patches a client of snapshot ``snapshot_version`` may ask for, and of
    that snapshot compressed."""
    packed = [compressed_name(snapshot_version)] if snapshot_version in patch_versions(metadata_dir,
                                                                                         compressed=True) else []
    return [*(patch_name(v) for v in patch_versions(metadata_dir) if snapshot_version - KEEP < v <= snapshot_version),
            *packed]


# ----------------------------------------------------------------- fetching

class PatchingFetcher(FetcherInterface):
    """A client's fetcher (``inner``) that answers ``METADATA_URL/N.snapshot.json`` from patches when the
    client's cache (``cache``: ngclient's metadata directory, nothing else is read) holds an older snapshot.

    The patched bytes must have the length and sha256 the cache's timestamp gives snapshot N (ngclient
    stores the new timestamp, verified, before it asks for the snapshot); otherwise, or on any other
    problem, the compressed snapshot, and failing that the full snapshot, is downloaded. ``note(kind, n)``
    counts: ``snapshot-patched`` (snapshots made from patches), ``snapshot-patch-bytes`` (patch bytes
    downloaded, whatever came of them), ``snapshot-patch-fallbacks`` (patches tried and given up), and the
    same three ``snapshot-compressed...`` for the compressed snapshot."""

    def __init__(self, inner: FetcherInterface, *, metadata_url: str, cache: Path,
                 note: Callable[[str, int], None] = lambda kind, n: None) -> None:
        self.inner = inner
        self.metadata_url = metadata_url if metadata_url.endswith("/") else metadata_url + "/"
        self.cache = cache
        self.note = note

    def _fetch(self, url: str) -> Iterator[bytes]:
        m = SNAPSHOT_NAME.fullmatch(url.removeprefix(self.metadata_url)) if url.startswith(self.metadata_url) \
            else None
        data = self._derived(int(m[1]), url) if m else None
        return iter((data,)) if data is not None else self.inner.fetch(url)

    def _derived(self, version: int, url: str) -> bytes | None:
        """Snapshot ``version`` from patches of the cached one, else from its compressed copy, or None (then it
        is downloaded). Nothing is tried when the cached timestamp gives no length and sha256 to check."""
        wanted = _listed_snapshot(_read(self.cache / "timestamp.json"), version)
        if wanted is None:
            return None
        base = _read(self.cache / "snapshot.json")
        held = _version(base)
        if base is not None and held is not None and 0 < version - held <= KEEP:
            data = self._verified(url, wanted, "snapshot-patch", "snapshot patches",
                                  lambda: self._patch(base, held, version, wanted.length))
            if data is not None:
                return data
        return self._verified(url, wanted, "snapshot-compressed", "the compressed snapshot",
                              lambda: self._unpack(version, wanted.length))

    def _verified(self, url: str, wanted: FileId, kind: str, what: str, make: Callable[[], bytes]) -> bytes | None:
        """``make()``'s snapshot when it is the one the timestamp names (``wanted``), else None; counted as
        ``kind``-patched/-compressed or ``kind``-fallbacks (a 404 falls back without a log line)."""
        try:
            data = make()
            if FileId.of(data) != wanted:
                raise VerificationError(f"{url}: {what} did not give the snapshot the timestamp names")
        except (tuf_exc.DownloadError, VerificationError) as exc:
            if not (isinstance(exc, tuf_exc.DownloadHTTPError) and exc.status_code == 404):
                log.info("%s: %s not used (%s); downloading the full snapshot", url, what, exc)
            self.note(f"{kind}-fallbacks", 1)
            return None
        self.note("snapshot-patched" if kind == "snapshot-patch" else kind, 1)
        return data

    def _patch(self, base: bytes, held: int, version: int, length: int) -> bytes:
        """Snapshot ``version`` from the cached snapshot ``held`` (``base``) and patches ``held+1 .. version``."""
        data, budget = base, len(base)   # more patch than a whole snapshot is no gain
        for v in range(held + 1, version + 1):
            patch_url = f"{self.metadata_url}{patch_name(v)}"
            patch = self.inner.download_bytes(patch_url, min(MAX_PATCH_BYTES, budget))
            budget -= len(patch)
            self.note("snapshot-patch-bytes", len(patch))
            data = apply_patch(data, patch, origin=patch_url, max_length=length)
        return data

    def _unpack(self, version: int, length: int) -> bytes:
        """Snapshot ``version`` from its compressed copy (at most ``length`` bytes, compressed or not)."""
        packed_url = f"{self.metadata_url}{compressed_name(version)}"
        packed = self.inner.download_bytes(packed_url, min(length, MAX_RESULT_BYTES))
        self.note("snapshot-compressed-bytes", len(packed))
        try:
            return unzstd(packed, length)
        except zstandard.ZstdError as exc:
            raise VerificationError(f"{packed_url}: not a compressed snapshot ({exc})") from None


def _read(path: Path) -> bytes | None:
    """A cache file's bytes (at most MAX_RESULT_BYTES), None when it is not there or larger."""
    with contextlib.suppress(OSError), path.open("rb") as f:
        data = f.read(MAX_RESULT_BYTES + 1)
        return data if len(data) <= MAX_RESULT_BYTES else None
    return None


def _signed(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    signed = doc.get("signed") if isinstance(doc, dict) else None
    return signed if isinstance(signed, dict) else None


def _version(snapshot: bytes | None) -> int | None:
    """The version a cached snapshot file says it is (not trusted: the patches' hashes bind the bytes)."""
    signed = _signed(snapshot)
    version = signed.get("version") if signed is not None else None
    return version if type(version) is int and version > 0 else None


def _listed_snapshot(timestamp: bytes | None, version: int) -> FileId | None:
    """The length and sha256 the cached timestamp gives snapshot ``version`` (None: another version, or a
    timestamp that lists no length and hash: then there is nothing to check a patched file against)."""
    signed = _signed(timestamp)
    meta = signed.get("meta") if signed is not None else None
    entry = meta.get("snapshot.json") if isinstance(meta, dict) else None
    if not isinstance(entry, dict) or entry.get("version") != version:
        return None
    hashes = entry.get("hashes")
    try:
        return FileId.from_dict({"length": entry.get("length"),
                                 "sha256": hashes.get("sha256") if isinstance(hashes, dict) else None}, "snapshot")
    except ValueError:
        return None
