"""Binary deltas between consecutive versions of a package (zstd with the old ``.vpk`` as a raw prefix
dictionary: what ``zstd --patch-from=OLD`` does, through the ``zstandard`` library, so the device needs no CLI).

    targets/deltas/<new sha256>/<old sha256>.zst-patch      new = patch applied to old (not TUF targets)

A delta is never trusted: the client applies it to a package it already holds, verified, and keeps the result
only when its length and sha256 are the ones the signed TUF metadata gives the new package; anything else (no
delta, a server error, a corrupt or hostile delta, a mismatch) falls back to the full download. The repository
keeps a delta only when it is smaller than ``MAX_RATIO`` of the full package (else the client would not gain).

The pure part is :func:`make_delta`/:func:`apply_delta` (bytes in, bytes out) and :func:`pairs` (which versions
to pair); :func:`write_deltas` is the repository edge.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import zstandard

from composer import limits
from composer.errors import VerificationError
from composer.repo.index import IndexEntry
from composer.repo.publish import stored_target
from composer.repo.store import RepoStore

LEVEL = 19
MAX_RATIO = 0.9              # keep a delta only when it is below 90 % of the full package
MAX_PACKAGE = 1 << 30        # deltas are made for packages up to 1 GiB (the window must hold old + new)
SUFFIX = ".zst-patch"


def delta_name(old_sha256: str, new_sha256: str) -> str:
    return f"deltas/{new_sha256}/{old_sha256}{SUFFIX}"


def _window_log(old: int, new: int) -> int:
    return max(10, min(31, math.ceil(math.log2(old + new + 1))))


def make_delta(old: bytes, new: bytes) -> bytes:
    """``new`` compressed with ``old`` as its prefix (long-distance matching, window over both)."""
    params = zstandard.ZstdCompressionParameters.from_level(
        LEVEL, window_log=_window_log(len(old), len(new)), enable_ldm=True, write_content_size=True,
        write_checksum=False)
    raw = zstandard.ZstdCompressionDict(old, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return zstandard.ZstdCompressor(dict_data=raw, compression_params=params).compress(new)


def apply_delta(old: bytes, delta: bytes, size: int, *, origin: str) -> bytes:
    """The new package's bytes (at most ``size``): the caller checks them against the signed hash."""
    raw = zstandard.ZstdCompressionDict(old, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    try:
        out = limits.unzstd(delta, size, zstandard.ZstdDecompressor(
            dict_data=raw, max_window_size=1 << _window_log(len(old), size)))
    except zstandard.ZstdError as exc:
        raise VerificationError(f"{origin}: not a zstd delta of a {size}-byte package ({exc})",
                                hint="the delta is corrupt or hostile; the full package is downloaded instead") \
            from None
    if len(out) != size:
        raise VerificationError(f"{origin}: the delta gives {len(out)} bytes, the package has {size}",
                                hint="the delta is corrupt or hostile; the full package is downloaded instead")
    return out


def pairs(entries: Iterable[IndexEntry]) -> list[tuple[IndexEntry, IndexEntry]]:
    """(older, newer) for each two consecutive versions of one package name and architecture (pure)."""
    by_key: dict[tuple[str, str], list[IndexEntry]] = {}
    for e in entries:
        by_key.setdefault((e.name, e.arch), []).append(e)
    out = []
    for key in sorted(by_key):
        versions = sorted(by_key[key], key=lambda e: e.order_key())
        out += [(a, b) for a, b in itertools.pairwise(versions)
                if b.size <= MAX_PACKAGE and a.sha256 != b.sha256]
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Delta:
    old: IndexEntry
    new: IndexEntry
    size: int             # 0: not kept (not smaller than MAX_RATIO of the package)
    made: bool            # False: it was there already


def write_deltas(store: RepoStore, entries: Sequence[IndexEntry] | None = None) -> list[Delta]:
    """Make the missing deltas between consecutive versions of the repository's packages (idempotent)."""
    if entries is None:
        entries = [IndexEntry.from_dict(e) for e in store.read_state()["packages"].values()]
    out = []
    for old, new in pairs(entries):
        name = delta_name(old.sha256, new.sha256)
        path = store.targets_dir / name
        skipped = store.targets_dir / f"{name}.none"        # a delta too large to keep: remembered, not redone
        if path.is_file() or skipped.is_file():
            out.append(Delta(old=old, new=new, size=path.stat().st_size if path.is_file() else 0, made=False))
            continue
        old_bytes = (store.targets_dir / stored_target(old.path, old.sha256)).read_bytes()
        new_bytes = (store.targets_dir / stored_target(new.path, new.sha256)).read_bytes()
        delta = make_delta(old_bytes, new_bytes)
        keep = len(delta) < MAX_RATIO * len(new_bytes)
        store.publisher.put_target(name if keep else f"{name}.none", delta if keep else b"")
        out.append(Delta(old=old, new=new, size=len(delta) if keep else 0, made=True))
    return out

