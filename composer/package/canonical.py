"""Canonical payload rules and payload limits, checked while a payload streams (docs/vpk-format.md).

- exactly one zstd frame, checksummed, and not one byte after it (:class:`FrameCheck` walks the
  compressed bytes' frame and block headers as they pass, without decompressing anything);
- a pax tar whose extended headers are pax ``x`` headers of at most ``max_pax_header_bytes``, checked
  from the raw 512-byte header *before* tarfile reads the header's data (:func:`tarinfo_class`), and
  that carry only ``path``, ``linkpath`` and ``size``;
- members owned by uid/gid 0 with empty owner names and mtime = the package's epoch
  (:func:`member_problem`);
- after the last member, the two-block end marker and zero padding to a 10240-byte record at most,
  nothing else (:func:`check_tar_end`).
"""

from __future__ import annotations

import tarfile
from typing import IO, Any

from composer.errors import VerificationError
from composer.fsutil import CHUNK
from composer.limits import Limits, PackageLimitExceeded, exceeded

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
EXTENDED_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                  tarfile.GNUTYPE_LONGLINK)
PAX_KEYS = frozenset({"path", "linkpath", "size"})
ZSTD_MAGIC = 0xFD2FB528


def tarinfo_class(limits: Limits, origin: str) -> type[tarfile.TarInfo]:
    """A TarInfo that refuses an oversized or non-canonical extended header before its data is read.

    ``tarfile`` parses a member's 512-byte header, then calls ``_proc_member``, which for a pax or GNU
    long-name header reads the whole announced size into memory in one go: the checks go in between.
    Sparse files (whose maps tarfile reads into lists as long as the data goes on) and an extended
    header after another (tarfile recurses once per header) are refused before tarfile starts on them.
    """
    nested = [0]

    def refuse(what: str) -> VerificationError:
        return VerificationError(f"{origin}: {what} (not canonical: only one per-member pax 'x' header, no "
                                 "sparse files)", hint="rebuild the package with 'vcomp pkg build'")

    class BoundedTarInfo(tarfile.TarInfo):
        def _proc_member(self, tarfile_: tarfile.TarFile) -> Any:
            if self.type == tarfile.GNUTYPE_SPARSE:
                raise refuse(f"'{self.name}' is a GNU sparse file")
            if self.type not in EXTENDED_TYPES:
                return super()._proc_member(tarfile_)  # type: ignore[misc]
            if self.size > limits.max_pax_header_bytes:
                raise exceeded(limits, "max_pax_header_bytes", origin,
                               f"an extended header announces {self.size} bytes (decompression bomb)",
                               PackageLimitExceeded)
            if self.type != tarfile.XHDTYPE:
                raise refuse(f"extended header of type '{self.type.decode('ascii', 'replace')}'")
            if nested[0]:
                raise refuse("an extended header follows another")
            nested[0] += 1
            try:
                return super()._proc_member(tarfile_)  # type: ignore[misc]
            finally:
                nested[0] -= 1

        def _proc_gnusparse_00(self, *args: Any) -> None:
            raise refuse("pax records of a GNU sparse file")

        _proc_gnusparse_01 = _proc_gnusparse_10 = _proc_gnusparse_00

    return BoundedTarInfo


def member_problem(ti: tarfile.TarInfo, epoch: int | None) -> str | None:
    """What makes a payload member non-canonical (owner, times, pax keys), or None."""
    if ti.uid != 0 or ti.gid != 0:
        return f"is owned by {ti.uid}:{ti.gid}, not 0:0"
    if ti.uname or ti.gname:
        return f"has owner names '{ti.uname}:{ti.gname}', not empty ones"
    if epoch is not None and ti.mtime != epoch:
        return f"has mtime {ti.mtime}, not the package's epoch {epoch}"
    extra = sorted(set(ti.pax_headers) - PAX_KEYS)
    if extra:
        return f"has pax records {', '.join(repr(k) for k in extra[:5])} (only path, linkpath and size)"
    return None


def check_tar_end(tar: tarfile.TarFile, origin: str) -> None:
    """After the last member: the end marker (two zero blocks), at most a record of zero padding, then EOF.

    ``tarfile`` stops at the first zero block; what follows is read here, through the same stream.
    """
    stream: Any = tar.fileobj
    if stream.tell() != tar.offset + BLOCK:
        raise VerificationError(f"{origin}: the tar has no end-of-archive marker (truncated)",
                                hint="the package was modified or truncated")
    zeros = BLOCK
    while chunk := stream.read(CHUNK):
        if chunk.count(0) != len(chunk):
            raise VerificationError(f"{origin}: data after the tar end marker (not canonical)",
                                    hint="the package is hostile or corrupt; rebuild it with 'vcomp pkg build'")
        zeros += len(chunk)
        if zeros > 2 * BLOCK + RECORD:
            raise VerificationError(f"{origin}: more than {2 * BLOCK + RECORD} zero bytes after the last member "
                                    "(not canonical)", hint="rebuild the package with 'vcomp pkg build'")
    if zeros < 2 * BLOCK:
        raise VerificationError(f"{origin}: the tar end marker is one zero block, not two (not canonical)",
                                hint="rebuild the package with 'vcomp pkg build'")


def frame_error(origin: str, problem: str) -> VerificationError:
    return VerificationError(f"{origin}: {problem} (not canonical: the payload is exactly one checksummed zstd "
                             "frame)", hint="the package is hostile or corrupt; rebuild it with 'vcomp pkg build'")


class FrameCheck:
    """A reader that walks zstd frame structure over the compressed bytes passing through it.

    It decodes only headers (frame header, 3-byte block headers, checksum), skipping block contents, and
    records the first problem: not a zstd frame, no checksum, a reserved block type, a second frame or
    any byte after the first frame, or the stream ending inside the frame.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.problem: str | None = None
        self.pending = b""      # bytes of a header not yet complete
        self.need = 5           # bytes the current header needs (magic + frame header descriptor)
        self.skip = 0           # bytes of block content still to pass over
        self.state = "magic"    # magic | header | block | checksum | done
        self.checksum = False

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if self.problem is None:
            self._feed(data)
        return data

    def finish(self) -> str | None:
        """The problem found, including a frame that ended early; None when the payload was one frame."""
        if self.problem is None and self.state != "done":
            self.problem = "the zstd frame is truncated"
        return self.problem

    def _feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self.problem is None:
            if self.state == "done":
                self.problem = "data after the zstd frame (a second frame or trailing bytes)"
                return
            if self.skip:
                step = min(self.skip, len(view))
                self.skip -= step
                view = view[step:]
                continue
            take = min(self.need - len(self.pending), len(view))
            self.pending += bytes(view[:take])
            view = view[take:]
            if len(self.pending) == self.need:
                header, self.pending = self.pending, b""
                self._header(header)

    def _header(self, header: bytes) -> None:
        if self.state == "magic":
            if int.from_bytes(header[:4], "little") != ZSTD_MAGIC:
                self.problem = "not a zstd frame (or a skippable frame)"
                return
            fhd = header[4]
            single = bool(fhd & 0x20)
            self.checksum = bool(fhd & 0x04)
            if not self.checksum:
                self.problem = "the zstd frame has no checksum"
                return
            fcs = {0: 1 if single else 0, 1: 2, 2: 4, 3: 8}[fhd >> 6]
            rest = (0 if single else 1) + (0, 1, 2, 4)[fhd & 0x03] + fcs
            self.state, self.need = ("header", rest) if rest else ("block", 3)
        elif self.state == "header":
            self.state, self.need = "block", 3
        elif self.state == "block":
            value = int.from_bytes(header, "little")
            last, kind, size = value & 1, (value >> 1) & 3, value >> 3
            if kind == 3:
                self.problem = "a zstd block of the reserved type"
                return
            self.skip = 1 if kind == 1 else size
            if last:
                self.state, self.need = "checksum", 4
        elif self.state == "checksum":
            self.state = "done"
