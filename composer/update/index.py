"""The chunk index of one image (pure): which chunks, in which order, make it; canonical JSON, bounded.

    {"format": "vcomp-chunk-index", "version": 1, "chunking": {"min": .., "avg": .., "max": ..},
     "size": N, "sha256": "<whole image>", "chunks": [["<sha256>", size], ...]}

Canonical (sorted keys, no spaces): the same image and parameters give the same bytes, so the index's own
sha256 (the one its signed TUF target records) identifies the image. A parsed index is checked once, here:
hex digests, sizes within the chunking bounds (the last chunk may be shorter), sizes summing to ``size``,
at most ``MAX_CHUNKS`` chunks and ``MAX_INDEX_BYTES`` of JSON; every error names the place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from composer.errors import UserError, VerificationError
from composer.fsutil import canonical_json
from composer.limits import current as current_limits
from composer.limits import load_json
from composer.update.chunking import ChunkParams

FORMAT = "vcomp-chunk-index"
VERSION = 1
MAX_CHUNKS = 1 << 20                   # 64 GiB at the average size; 256 GiB at most
MAX_INDEX_BYTES = 96 << 20             # about 80 bytes of JSON per chunk
_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    sha256: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkIndex:
    params: ChunkParams
    size: int
    sha256: str
    chunks: tuple[Chunk, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "chunking": self.params.to_dict(), "size": self.size,
                "sha256": self.sha256, "chunks": [[c.sha256, c.size] for c in self.chunks]}

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes, origin: str) -> ChunkIndex:
        if len(data) > MAX_INDEX_BYTES:
            raise _bad(origin, f"{len(data)} bytes, over the limit of {MAX_INDEX_BYTES}")
        try:
            doc = load_json(data, origin, current_limits())
        except ValueError as exc:
            raise _bad(origin, f"not JSON ({exc})") from None
        return cls.from_dict(doc, origin)

    @classmethod
    def from_dict(cls, doc: Any, origin: str) -> ChunkIndex:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise _bad(origin, f"not a chunk index ($.format is not '{FORMAT}')")
        if doc.get("version") != VERSION:
            raise _bad(origin, f"$.version: {doc.get('version')!r}, this vcomp reads version {VERSION}",
                       hint="upgrade vcomp, or rebuild the store with this one (vcomp image chunk)")
        params = _params(doc.get("chunking"), origin)
        size, digest, listed = doc.get("size"), doc.get("sha256"), doc.get("chunks")
        if type(size) is not int or size < 0:
            raise _bad(origin, "$.size: not a size")
        if not isinstance(digest, str) or not _HEX.match(digest):
            raise _bad(origin, "$.sha256: not a sha256 hex digest")
        if not isinstance(listed, list) or len(listed) > MAX_CHUNKS:
            raise _bad(origin, f"$.chunks: not a list of at most {MAX_CHUNKS} chunks")
        chunks = []
        total = 0
        for i, item in enumerate(listed):
            last = i == len(listed) - 1
            if (not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str)
                    or not _HEX.match(item[0]) or type(item[1]) is not int
                    or not (0 < item[1] <= params.max_size) or (item[1] < params.min_size and not last)):
                raise _bad(origin, f"$.chunks[{i}]: not [sha256, size] with {params.min_size} <= size <= "
                                   f"{params.max_size}")
            chunks.append(Chunk(sha256=item[0], size=item[1]))
            total += item[1]
        if total != size:
            raise _bad(origin, f"$.chunks: the sizes add up to {total}, $.size says {size}")
        return cls(params=params, size=size, sha256=digest, chunks=tuple(chunks))

    def unique(self) -> dict[str, int]:
        """sha256 -> size of every distinct chunk, in first-use order."""
        return {c.sha256: c.size for c in self.chunks}


def _params(chunking: Any, origin: str) -> ChunkParams:
    raw = [chunking.get(k) for k in ("min", "avg", "max")] if isinstance(chunking, dict) else []
    sizes = [v for v in raw if type(v) is int]
    if len(sizes) != 3:
        raise _bad(origin, "$.chunking: not {min, avg, max} sizes")
    try:
        return ChunkParams(min_size=sizes[0], avg_size=sizes[1], max_size=sizes[2])
    except UserError as exc:      # the data is at fault here, not the user
        raise _bad(origin, f"$.chunking: {exc.message}") from None


def _bad(origin: str, what: str, *, hint: str = "") -> VerificationError:
    return VerificationError(f"{origin}: {what}",
                             hint=hint or "the index is corrupt or hostile: fetch it again from a trusted "
                                          "repository (its hash is in the signed TUF targets)")

