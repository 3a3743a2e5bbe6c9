"""Filesystem helpers: atomic writes, canonical JSON, streaming hashes, deterministic time."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from composer.errors import UserError


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


CHUNK = 1 << 20
DEFAULT_EPOCH = 1700000000  # used when neither the recipe nor SOURCE_DATE_EPOCH gives one


def source_date_epoch(default: int = DEFAULT_EPOCH) -> int:
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"SOURCE_DATE_EPOCH='{raw}' is not an integer",
                        hint="set it to seconds since 1970, e.g. SOURCE_DATE_EPOCH=1700000000") from None
    if value < 0:
        raise UserError(f"SOURCE_DATE_EPOCH={value} is negative", hint="use a positive number of seconds")
    return value


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


@contextlib.contextmanager
def atomic_output(path: Path, mode: str = "wb", *, durable: bool = True) -> Iterator[IO[Any]]:
    """Write ``path`` through a temporary file beside it; rename only on success.

    ``durable=False`` skips the fsync: for caches that are re-derivable and checked when read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    with atomic_output(path, durable=durable) as f:
        f.write(data)


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
