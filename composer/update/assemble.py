"""Rebuild an image from its chunk index: chunks the seeds (the running slot) already hold, the rest fetched.

The plan is pure (:func:`plan`: which chunk comes from where); :func:`assemble` is the edge: it reads the
seeds, calls ``fetch`` for the missing chunks, verifies every chunk's sha256 (seeded ones too: a seed may
have changed since it was cut) and the whole result's sha256 against the index, and writes the output
through a temporary file renamed into place only when everything matched, so a failure leaves nothing.
A chunk is fetched once even when the image uses it many times (later uses are read back from the output).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import zstandard

from composer import limits
from composer.errors import VerificationError
from composer.fsutil import atomic_output
from composer.oserrors import fault
from composer.update.index import ChunkIndex
from composer.update.store import iter_chunks, max_compressed

# fetch(sha256, max_bytes) -> the compressed chunk (raises FetchError; never more than max_bytes)
Fetch = Callable[[str, int], bytes]
READ_BACK = 8 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Seed:
    """A file to reuse chunks from; with its own chunk index (the running slot's, kept from its update), its
    chunks are located from the index instead of cutting the file again (each is still verified when read)."""

    path: Path
    index: ChunkIndex | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """Where one chunk is read from: a seed file and offset, an earlier place in the output, or fetched."""

    kind: str            # "seed" | "output" | "fetch"
    path: Path | None = None
    offset: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    size: int
    chunks: int
    reused_chunks: int
    reused_bytes: int
    fetched_chunks: int
    fetched_bytes: int          # uncompressed
    transferred_bytes: int      # compressed, as they came over the wire

    def to_dict(self) -> dict[str, int]:
        return {"size": self.size, "chunks": self.chunks, "reused-chunks": self.reused_chunks,
                "reused-bytes": self.reused_bytes, "fetched-chunks": self.fetched_chunks,
                "fetched-bytes": self.fetched_bytes, "transferred-bytes": self.transferred_bytes}


def seed_map(index: ChunkIndex, seeds: Sequence[Path | Seed]) -> dict[str, tuple[Path, int]]:
    """sha256 -> (seed, offset) of every chunk of ``index`` found in ``seeds`` (located through a seed's own
    index when it has one, else by cutting it with the index's sizes)."""
    wanted = index.unique()
    found: dict[str, tuple[Path, int]] = {}
    for given in seeds:
        seed = given if isinstance(given, Seed) else Seed(path=given)
        for offset, digest in _seed_chunks(seed, index):
            if digest in wanted and digest not in found:
                found[digest] = (seed.path, offset)
    return found


def _seed_chunks(seed: Seed, index: ChunkIndex) -> Iterator[tuple[int, str]]:
    if seed.index is not None:
        offset = 0
        for chunk in seed.index.chunks:
            yield offset, chunk.sha256
            offset += chunk.size
        return
    for offset, data in iter_chunks(seed.path, index.params):
        yield offset, hashlib.sha256(data).hexdigest()


def plan(index: ChunkIndex, seeded: Mapping[str, tuple[Path, int]]) -> list[Source]:
    """For each chunk of ``index`` in order, where its bytes come from (pure)."""
    out: list[Source] = []
    written: dict[str, int] = {}
    offset = 0
    for chunk in index.chunks:
        if chunk.sha256 in seeded:
            path, at = seeded[chunk.sha256]
            out.append(Source(kind="seed", path=path, offset=at))
        elif chunk.sha256 in written:
            out.append(Source(kind="output", offset=written[chunk.sha256]))
        else:
            out.append(Source(kind="fetch"))
            written[chunk.sha256] = offset
        offset += chunk.size
    return out


def assemble(index: ChunkIndex, seeds: Sequence[Path | Seed], fetch: Fetch, dest: Path, *, origin: str) -> Report:
    """Write the image ``index`` describes to ``dest`` (see the module docstring); ``origin`` names the store."""
    try:
        with atomic_output(dest) as out:
            return _write(index, seeds, fetch, out, dest, origin=origin)
    except OSError as exc:
        raise fault(exc, f"writing {dest}") from None


def assemble_into(index: ChunkIndex, seeds: Sequence[Path | Seed], fetch: Fetch, device: Path, *,
                  origin: str) -> Report:
    """Write the image into the existing file or block device ``device`` from its start, in place (an inactive
    A/B slot: no temporary file beside a partition), then read it back and check the whole image's sha256.
    A failure leaves the device partly written: the caller makes sure nothing boots from it until this returns."""
    try:
        with device.open("r+b") as out:
            out.seek(0, os.SEEK_END)
            if out.tell() < index.size:
                raise VerificationError(f"{device}: {out.tell()} bytes cannot hold the {index.size}-byte image "
                                        f"{origin}", hint="the slot is too small for this image; rebuild the disk "
                                                          "with a larger slot-size")
            out.seek(0)
            report = _write(index, seeds, fetch, out, device, origin=origin)
            out.flush()
            os.fsync(out.fileno())
        whole = hashlib.sha256()
        with device.open("rb") as back:
            left = index.size
            while left:
                block = back.read(min(READ_BACK, left))
                if not block:
                    break
                whole.update(block)
                left -= len(block)
        if left or whole.hexdigest() != index.sha256:
            raise _bad(str(device), "read back after writing, the image does not have the index's sha256")
    except OSError as exc:
        raise fault(exc, f"writing {device}") from None
    return report


def _write(index: ChunkIndex, seeds: Sequence[Path | Seed], fetch: Fetch, out: IO[bytes], dest: Path, *,
           origin: str) -> Report:
    sources = plan(index, seed_map(index, seeds))
    whole = hashlib.sha256()
    reused = reused_bytes = fetched = fetched_bytes = transferred = 0
    decompressor = zstandard.ZstdDecompressor()
    for n, (chunk, source) in enumerate(zip(index.chunks, sources, strict=True)):
        where = f"{origin}: chunk {n} ({chunk.sha256[:16]})"
        if source.kind == "fetch":
            packed = fetch(chunk.sha256, max_compressed(chunk.size))
            transferred += len(packed)
            try:
                data = limits.unzstd(packed, chunk.size, decompressor)
            except zstandard.ZstdError as exc:
                raise _bad(where, f"not a zstd chunk of {chunk.size} bytes ({exc})") from None
            fetched += 1
            fetched_bytes += chunk.size
        else:
            path = source.path if source.kind == "seed" else dest
            data = _read_at(out if source.kind == "output" else None, path, source.offset, chunk.size)
            reused += source.kind == "seed"
            reused_bytes += chunk.size if source.kind == "seed" else 0
        if len(data) != chunk.size or hashlib.sha256(data).hexdigest() != chunk.sha256:
            raise _bad(where, f"the bytes ({len(data)}) do not have the index's sha256 and size "
                              f"({chunk.size})")
        whole.update(data)
        out.write(data)
    if whole.hexdigest() != index.sha256:
        raise _bad(origin, "the assembled image does not have the index's sha256")
    return Report(size=index.size, chunks=len(index.chunks), reused_chunks=reused, reused_bytes=reused_bytes,
                  fetched_chunks=fetched, fetched_bytes=fetched_bytes, transferred_bytes=transferred)


def _read_at(out: object, path: Path | None, offset: int, size: int) -> bytes:
    if out is not None:                      # an earlier chunk of the output being written
        fd = out.fileno()  # type: ignore[attr-defined]
        out.flush()  # type: ignore[attr-defined]
        return os.pread(fd, size, offset)
    assert path is not None
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(size)


def _bad(where: str, what: str) -> VerificationError:
    return VerificationError(f"{where}: {what}",
                             hint="the chunk store or the seed is corrupt or hostile; nothing was written. "
                                  "Fetch again from a trusted mirror")
