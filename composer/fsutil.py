"""Filesystem helpers: atomic writes, canonical JSON, streaming hashes, deterministic time.

The atomic-write family: every file vcomp writes appears whole under its name or not at all. Each goes
through a temporary beside the destination (``.NAME.*.tmp``, so a cleaner can recognise what a killed
writer left), is synced unless ``durable=False`` (caches, re-derivable and checked when read), made 0644
and renamed into place.

* :func:`atomic_output` -- a file object to write into (the others are built on it);
* :func:`atomic_write` -- bytes;
* :func:`atomic_copy` -- a copy of a file;
* :func:`atomic_path` -- a path for an external tool to create (mkfs, mtools, ...).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from composer import settings
from composer.errors import ToolError


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


CHUNK = 1 << 20
DEFAULT_EPOCH = 1700000000  # used when neither the recipe nor SOURCE_DATE_EPOCH gives one
# Errors only a write raises: a file object's write or fsync does not name its file, atomic_output names it.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def source_date_epoch(default: int = DEFAULT_EPOCH) -> int:
    value = settings.SOURCE_DATE_EPOCH.get()
    return default if value is None else value


def canonical_json(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def ensure_dir(path: Path) -> None:
    """``mkdir -p``, where a file standing in for a directory is ENOTDIR naming that file (``mkdir`` alone
    says EEXIST, "it already exists", which hides what is wrong)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        for part in reversed((path, *path.parents)):
            if part.exists() and not part.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(part)) from None
        raise


@contextlib.contextmanager
def atomic_output(path: Path, mode: str = "wb", *, durable: bool = True,
                  tmp_dir: Path | None = None) -> Iterator[IO[Any]]:
    """Write ``path`` through a temporary file beside it (or in ``tmp_dir``, on the same file system); rename
    only on success.

    ``durable=False`` skips the fsync: for caches that are re-derivable and checked when read."""
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=tmp_dir or path.parent)
    except OSError as exc:
        if exc.errno and exc.filename is not None and os.path.basename(os.fsdecode(exc.filename)).startswith(
                f".{path.name}."):  # the temporary's name: say which file it was for
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        raise
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and _ours(exc, tmp):  # name the file being written, not its temporary
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        raise


def _ours(exc: OSError, tmp: str) -> bool:
    if exc.filename is None:
        return exc.errno in WRITE_ERRNOS
    return bool(exc.errno) and os.fsdecode(exc.filename) == tmp and exc.filename2 is None


def atomic_write(path: Path, data: bytes, *, durable: bool = True, tmp_dir: Path | None = None) -> None:
    with atomic_output(path, durable=durable, tmp_dir=tmp_dir) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_path(path: Path, *, durable: bool = True) -> Iterator[Path]:
    """A path for a tool to create, in a private temporary directory beside ``path``; moved to ``path``
    (0644, synced) only if the block succeeds and the tool created the file."""
    ensure_dir(path.parent)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        tmp = tmpdir / path.name
        yield tmp
        if not tmp.is_file():
            raise ToolError(f"the tool did not create {path.name}", hint="see the command with --debug")
        os.chmod(tmp, 0o644)
        if durable:
            with tmp.open("rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


class HashingReader:
    """Wrap a binary stream; hash and count what is read through it."""

    def __init__(self, raw: Readable, limit: int | None = None) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.count = 0
        self.limit = limit

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        if self.limit is not None and self.count > self.limit:
            raise OSError(f"stream exceeds its declared size of {self.limit} bytes")
        self.hash.update(data)
        return data

    def readable(self) -> bool:
        return True

    def hexdigest(self) -> str:
        return self.hash.hexdigest()


def atomic_copy(src: Path, dest: Path, *, durable: bool = True, tmp_dir: Path | None = None) -> None:
    """Copy ``src`` to ``dest`` through a temporary beside it (or in ``tmp_dir``): on any failure (ENOSPC)
    nothing is left behind."""
    with src.open("rb") as f, atomic_output(dest, durable=durable, tmp_dir=tmp_dir) as out:
        shutil.copyfileobj(f, out, CHUNK)
