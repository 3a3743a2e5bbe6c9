"""A deterministic newc (SVR4, no CRC) cpio writer, as the Linux kernel reads initramfs archives.

Pure Python, no root: device nodes are only header fields. Entries are written in the order given
(callers sort them); uid/gid 0, one fixed mtime, inode numbers counted from 1.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from composer.fsutil import CHUNK

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True, slots=True, kw_only=True)
class CpioEntry:
    path: str                 # relative, no leading "/"
    mode: int                 # full st_mode (type bits + permissions)
    source: Path | None = None  # file contents (regular files)
    target: str = ""          # symlink target
    rdev: tuple[int, int] = (0, 0)
    size: int = 0


def _header(name: str, ino: int, mode: int, nlink: int, mtime: int, size: int, rdev: tuple[int, int]) -> bytes:
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, nlink, mtime, size, 0, 0, rdev[0], rdev[1], len(encoded), 0)
    head = MAGIC + b"".join(b"%08X" % f for f in fields) + encoded
    return head + b"\0" * (-len(head) % 4)


def write_cpio(entries: Iterable[CpioEntry], out: IO[bytes], mtime: int) -> int:
    """Write ``entries`` then the trailer; return the number of bytes written."""
    written = 0
    for ino, e in enumerate(entries, start=1):
        if stat.S_ISLNK(e.mode):
            data = e.target.encode()
            size = len(data)
        elif stat.S_ISREG(e.mode):
            assert e.source is not None
            size = e.source.stat().st_size
        else:
            size = 0
        nlink = 2 if stat.S_ISDIR(e.mode) else 1
        head = _header(e.path, ino, e.mode, nlink, mtime, size, e.rdev)
        out.write(head)
        written += len(head)
        if stat.S_ISLNK(e.mode):
            out.write(data)
        elif stat.S_ISREG(e.mode) and e.source is not None:
            with os.fdopen(os.open(e.source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as f:
                while chunk := f.read(CHUNK):
                    out.write(chunk)
        written += size
        pad = -size % 4
        out.write(b"\0" * pad)
        written += pad
    trailer = _header(TRAILER, 0, 0, 1, 0, 0, (0, 0))
    out.write(trailer)
    written += len(trailer)
    return written


def entries_from_tree(root: Path, *, devices: Iterable[CpioEntry] = (),
                      exclude: Iterable[str] = ()) -> list[CpioEntry]:
    """Every file, directory and symlink under ``root`` (sorted), plus extra device entries; ``exclude``
    names top-level directories whose content is left out (the directory itself stays)."""
    out: list[CpioEntry] = []
    skip = {root / name for name in exclude}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) in skip:
            dirnames.clear()
            continue
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = Path(dirpath) / name
            st = full.lstat()
            rel = str(full.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out.append(CpioEntry(path=rel, mode=stat.S_IFLNK | 0o777, target=os.readlink(full)))
            elif stat.S_ISDIR(st.st_mode):
                out.append(CpioEntry(path=rel, mode=stat.S_IFDIR | stat.S_IMODE(st.st_mode)))
            elif stat.S_ISREG(st.st_mode):
                out.append(CpioEntry(path=rel, mode=stat.S_IFREG | stat.S_IMODE(st.st_mode), source=full))
    out.extend(devices)
    return sorted(out, key=lambda e: e.path)
