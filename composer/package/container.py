"""The outer ``.vpk`` container: a canonical ustar archive of four members, in this order.

    vpk-format        b"vpk 1\\n"
    metadata.toml     signed metadata (TOML)
    manifest.json     canonical JSON manifest (its sha256 is in the signed metadata)
    payload.tar.zst   the files (pax tar, zstd; its sha256 is in the manifest)

Every header must be exactly the one this module writes for that name and size, padding must be
zero and the trailer exact, so no byte of a package goes unchecked. Plain ``tar`` can list it.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from composer.errors import InvalidPackage
from composer.fsutil import CHUNK, HashingReader

MAGIC = b"vpk 1\n"
MEMBERS = ("vpk-format", "metadata.toml", "manifest.json", "payload.tar.zst")
LIMITS = {"vpk-format": 64, "metadata.toml": 1 << 20, "manifest.json": 64 << 20, "payload.tar.zst": 1 << 40}
BLOCK = 512


def header(name: str, size: int, mtime: int) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode, ti.uid, ti.gid = size, mtime, 0o644, 0, 0
    ti.uname = ti.gname = ""
    ti.type = tarfile.REGTYPE
    return ti.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")


def padding(size: int) -> int:
    return -size % BLOCK


TRAILER = b"\0" * (2 * BLOCK)


def write_member(out: IO[bytes], name: str, src: IO[bytes] | bytes, size: int, mtime: int) -> None:
    out.write(header(name, size, mtime))
    if isinstance(src, bytes):
        out.write(src)
    else:
        remaining = size
        while remaining:
            chunk = src.read(min(CHUNK, remaining))
            if not chunk:
                raise OSError("payload shrank while writing the package")
            out.write(chunk)
            remaining -= len(chunk)
    out.write(b"\0" * padding(size))


@dataclass(slots=True)
class ContainerReader:
    """Sequential, streaming reader that checks every byte of the container."""

    f: IO[bytes]
    origin: str
    mtime: int | None = None
    index: int = 0

    def _read_exact(self, n: int, what: str) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise InvalidPackage(f"{self.origin}: truncated in {what}",
                                 hint="the file is incomplete; download or build it again")
        return data

    def next_member(self) -> tuple[str, int]:
        if self.index >= len(MEMBERS):
            raise InvalidPackage(f"{self.origin}: too many members")
        expected = MEMBERS[self.index]
        buf = self._read_exact(BLOCK, f"the header of '{expected}'")
        try:
            ti = tarfile.TarInfo.frombuf(buf, "utf-8", "strict")
        except tarfile.HeaderError as exc:
            raise InvalidPackage(f"{self.origin}: not a vpk package (header of member {self.index + 1}: {exc})",
                                 hint="is this a .vpk file?") from None
        if ti.name != expected:
            raise InvalidPackage(f"{self.origin}: member {self.index + 1} is '{ti.name}', expected '{expected}'",
                                 hint="a .vpk holds vpk-format, metadata.toml, manifest.json, payload.tar.zst")
        if self.mtime is None:
            self.mtime = int(ti.mtime)
        if ti.size > LIMITS[expected]:
            raise InvalidPackage(f"{self.origin}: '{expected}' is {ti.size} bytes, over the limit of "
                                 f"{LIMITS[expected]}")
        if buf != header(expected, ti.size, int(self.mtime)):
            raise InvalidPackage(f"{self.origin}: the header of '{expected}' is not canonical (modified)")
        self.index += 1
        return expected, ti.size

    def read_member(self, name: str, size: int) -> bytes:
        data = self._read_exact(size, f"'{name}'")
        self.end_member(name, size)
        return data

    def end_member(self, name: str, size: int) -> None:
        pad = self._read_exact(padding(size), f"the padding after '{name}'")
        if pad.strip(b"\0"):
            raise InvalidPackage(f"{self.origin}: non-zero padding after '{name}' (modified)")

    def stream(self, name: str, size: int) -> HashingReader:
        return HashingReader(_Bounded(self.f, size), limit=size)

    def finish(self) -> None:
        tail = self.f.read(len(TRAILER) + 1)
        if tail != TRAILER:
            raise InvalidPackage(f"{self.origin}: the end of the archive is not canonical "
                                 "(trailing data or modified trailer)")


class _Bounded:
    """A view of the next ``size`` bytes of a stream."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data


def drain(stream: HashingReader) -> Iterator[int]:
    while chunk := stream.read(CHUNK):
        yield len(chunk)
