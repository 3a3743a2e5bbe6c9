"""A chunk store directory and the chunking of image files into it (the I/O edge of chunking/index).

    STORE/chunks/<aa>/<sha256>.cacnk     one chunk, zstd-compressed (level 10, no checksum: the name is the hash)

casync/desync's layout: a chunk's name is the sha256 of its uncompressed bytes, so one store serves every
image and every version of it, and a chunk already there is never written again. Compression is deterministic
(one level, one frame with the content size), so the same image gives the same store, byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

from composer.fsutil import atomic_write
from composer.oserrors import fault
from composer.update.chunking import DEFAULT_PARAMS, ChunkParams, cut_point
from composer.update.index import Chunk, ChunkIndex

LEVEL = 10
SUFFIX = ".cacnk"
READ_BLOCK = 8 << 20


def chunk_name(sha256: str) -> str:
    """``chunks/ab/abcd….cacnk``: where a chunk lives below a store (and below a repository's targets/)."""
    return f"chunks/{sha256[:2]}/{sha256}{SUFFIX}"


def max_compressed(size: int) -> int:
    """The most bytes a compressed chunk of ``size`` bytes may take (zstd's bound plus frame overhead)."""
    return size + (size >> 7) + 1024


def compress(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=LEVEL, write_checksum=False, write_content_size=True).compress(data)


def iter_chunks(path: Path, params: ChunkParams = DEFAULT_PARAMS) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of each chunk of the file at ``path``, reading it in blocks (memory: a block + max_size)."""
    offset = 0       # of buf[0] in the file
    buf = b""
    pos = 0          # the next chunk starts at buf[pos]
    try:
        with path.open("rb") as f:
            eof = False
            while True:
                if not eof and len(buf) - pos < params.max_size:
                    block = f.read(READ_BLOCK)
                    eof = not block
                    offset += pos
                    buf, pos = buf[pos:] + block, 0
                    continue
                if pos >= len(buf):
                    return
                n = cut_point(memoryview(buf)[pos:], params)
                yield offset + pos, buf[pos:pos + n]
                pos += n
    except OSError as exc:
        raise fault(exc, f"reading {path}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Stored:
    index: ChunkIndex
    written: int          # chunks new to the store
    written_bytes: int    # their compressed size


def chunk_image(image: Path, store: Path, params: ChunkParams = DEFAULT_PARAMS, *,
                put: Callable[[str, bytes], None] | None = None) -> Stored:
    """Cut ``image`` into chunks, add the missing ones to ``store``, return its index. ``put(name, data)``
    writes a new chunk (default: an atomic write below ``store``; a repository passes its publisher's)."""
    write = put or (lambda name, data: atomic_write(store / name, data, durable=False))
    whole = hashlib.sha256()
    chunks: list[Chunk] = []
    written = written_bytes = 0
    for _, data in iter_chunks(image, params):
        whole.update(data)
        digest = hashlib.sha256(data).hexdigest()
        chunks.append(Chunk(sha256=digest, size=len(data)))
        if not (store / chunk_name(digest)).exists():
            packed = compress(data)
            write(chunk_name(digest), packed)
            written += 1
            written_bytes += len(packed)
    index = ChunkIndex(params=params, size=sum(c.size for c in chunks), sha256=whole.hexdigest(),
                       chunks=tuple(chunks))
    return Stored(index=index, written=written, written_bytes=written_bytes)
