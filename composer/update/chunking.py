"""Content-defined chunking (pure): where to cut a byte stream so that an edit moves only the cuts near it.

A gear rolling hash (FastCDC's, without normalisation): ``h = (h << 1) + GEAR[byte]`` over 64 bits, so the
top bits depend on the last 64 bytes only. A cut is made after a byte where the top ``mask_bits`` bits of
``h`` are all zero, at least ``min_size`` bytes and at most ``max_size`` bytes after the previous cut. The
table is derived from a fixed seed (sha256 of a constant), so cuts are the same on every machine and every
run: identical content gives identical chunks (and identical chunk ids) in the running slot and the new image.

Hashing starts 64 bytes before ``min_size`` (the window), so the first ``min_size - 64`` bytes of every chunk
cost nothing. Pure Python: about 0.1 s per MB on the project's 2-core machine (bench/update.py measures it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from composer.errors import UserError

WINDOW = 64
_MASK64 = (1 << 64) - 1


def _gear_table() -> tuple[int, ...]:
    out = []
    for i in range(256):
        digest = hashlib.sha256(b"veridian-composer gear table v1\0" + bytes([i])).digest()
        out.append(int.from_bytes(digest[:8], "big"))
    return tuple(out)


GEAR = _gear_table()


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkParams:
    """Chunk sizes in bytes. ``avg_size`` must be a power of two (it sets the mask)."""

    min_size: int = 16 << 10
    avg_size: int = 64 << 10
    max_size: int = 256 << 10

    def __post_init__(self) -> None:
        if not (WINDOW <= self.min_size < self.avg_size < self.max_size <= 16 << 20) \
                or self.avg_size & (self.avg_size - 1):
            raise UserError(f"chunk sizes min={self.min_size} avg={self.avg_size} max={self.max_size} are invalid",
                            hint=f"use {WINDOW} <= min < avg < max <= 16 MiB, avg a power of two "
                                 "(default 16K/64K/256K)")

    @property
    def mask(self) -> int:
        """The top log2(avg) bits: past ``min_size``, a cut is expected every ``avg_size`` bytes."""
        bits = self.avg_size.bit_length() - 1
        return ((1 << bits) - 1) << (64 - bits)

    def to_dict(self) -> dict[str, int]:
        return {"min": self.min_size, "avg": self.avg_size, "max": self.max_size}


DEFAULT_PARAMS = ChunkParams()


def cut_point(data: bytes | memoryview, params: ChunkParams = DEFAULT_PARAMS) -> int:
    """The length of the first chunk of ``data`` (all of it when it is no longer than ``min_size``)."""
    n = len(data)
    if n <= params.min_size:
        return n
    end = min(n, params.max_size)
    mask, gear = params.mask, GEAR
    h = 0
    start = params.min_size - WINDOW
    for i, b in enumerate(data[start:end], start + 1):
        h = ((h << 1) + gear[b]) & _MASK64
        if i >= params.min_size and not h & mask:
            return i
    return end


def chunk_lengths(data: bytes | memoryview, params: ChunkParams = DEFAULT_PARAMS) -> Iterator[int]:
    """The lengths of the chunks of ``data``, in order (they sum to ``len(data)``)."""
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        n = cut_point(view[pos:], params)
        yield n
        pos += n
