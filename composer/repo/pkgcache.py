"""The client's package cache: downloaded targets (packages and indexes), content-addressed by sha256.

    CACHE/repos/objects/<aa>/<sha256>        one verified target (a .vpk, or an index .json.zst)
    CACHE/repos/objects/<aa>/<sha256>.lock   the entry's lock (flock), taken by writers and removers

``CACHE`` is ``default_cache()`` (``$VCOMP_CACHE`` or ``$XDG_CACHE_HOME/vcomp``); the directory is
owner-only, like the TUF metadata beside it. Shared by every repository and every process of the user:
the key is the digest, so the same bytes are stored once and whoever asks for them names the digest
they expect (from verified TUF metadata, or from a lock).

* A writer takes the entry's lock, looks again (another process may have just written it), writes a
  temporary file in the same directory, checks its length and digest, fsyncs it and renames it into
  place: a reader never sees a partial entry, two cold builds never download into the same file.
* Every read is verified: :meth:`ObjectStore.get` hashes the entry against the digest the caller
  expects; a damaged entry is a miss, removed under its lock, and fetched again.
* A hit updates the entry's mtime, which is its last use (for least-recently-used eviction by
  ``vcomp cache gc``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from composer import lockfile
from composer.cachekinds import CacheKind, Entry
from composer.errors import VerificationError
from composer.fsutil import CHUNK
from composer.oserrors import fault

OBJECTS = "objects"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def objects_dir(repos_cache: Path) -> Path:
    """Where the objects of a client whose cache is ``repos_cache`` (``default_cache()/repos``) live."""
    return repos_cache / OBJECTS


def digest_of(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


class ObjectStore:
    """Content-addressed, verified, lock-per-entry storage of downloaded targets."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def path(self, digest: str) -> Path:
        if not _DIGEST.match(digest):
            raise VerificationError(f"{digest[:80]!r} is not a sha256 digest",
                                    hint="the lock or index that gave it is damaged: run vcomp lock PROFILE")
        return self.dir / digest[:2] / digest

    @contextlib.contextmanager
    def locked(self, digest: str) -> Iterator[Path]:
        path = self.path(digest)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise fault(exc, "creating the package cache") from None
        with lockfile.exclusive(path.with_name(f"{digest}.lock"), f"package cache entry {digest[:16]}"):
            yield path

    def get(self, digest: str, length: int | None = None) -> Path | None:
        """The entry, if it is there and its bytes have ``digest`` (and ``length``); a bad one is removed."""
        path = self.path(digest)
        try:
            size, actual = digest_of(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise fault(exc, "reading the package cache") from None
        if actual == digest and (length is None or size == length):
            with contextlib.suppress(OSError):
                os.utime(path)   # last use, for LRU eviction
            return path
        self.discard(digest)
        return None

    def discard(self, digest: str) -> None:
        """Remove a damaged entry under its lock (if it is still damaged once the lock is held)."""
        with self.locked(digest) as path:
            try:
                _, actual = digest_of(path)
            except FileNotFoundError:
                return
            if actual != digest:
                path.unlink(missing_ok=True)

    def put(self, digest: str, length: int | None, write: Callable[[Path], None]) -> Path:
        """The entry for ``digest``; if missing, ``write(tmp)`` produces it (verified before it is renamed
        into place). Concurrent writers of one entry: one writes, the others find it done."""
        with self.locked(digest) as path:
            hit = self.get(digest, length) if path.exists() else None
            if hit is not None:
                return hit
            for stale in path.parent.glob(f".{digest}.*.tmp"):   # a killed writer's (writers hold this lock)
                stale.unlink(missing_ok=True)
            tmp = path.with_name(f".{digest}.{os.getpid()}.tmp")
            try:
                write(tmp)
                size, actual = digest_of(tmp)
                if actual != digest or (length is not None and size != length):
                    raise VerificationError(f"download of {digest[:16]}: got sha256 {actual[:16]} ({size} bytes), "
                                            f"not what the verified metadata says", hint="run again; if it "
                                            "persists the repository or a mirror serves altered files")
                with tmp.open("rb") as f:
                    os.fsync(f.fileno())
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            except OSError as exc:
                raise fault(exc, "writing the package cache") from None
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            return path

    def put_file(self, digest: str, length: int | None, source: BinaryIO) -> Path:
        def write(tmp: Path) -> None:
            with tmp.open("wb") as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
        return self.put(digest, length, write)


# ----------------------------------------------------------------- the cache kind (vcomp cache verify|gc)

class PackagesKind:
    """:class:`composer.cachekinds.CacheKind` for the package cache (``CACHE/repos/objects``)."""

    name = "packages"

    def _dir(self, cache_root: Path) -> Path:
        return objects_dir(cache_root / "repos")

    def entries(self, cache_root: Path) -> list[Entry]:
        top = self._dir(cache_root)
        out = []
        for sub in sorted(top.iterdir()) if top.is_dir() else []:
            if not (len(sub.name) == 2 and sub.is_dir()):
                continue
            for f in sorted(sub.iterdir()):
                if not _DIGEST.match(f.name):
                    continue   # locks and temporaries are not entries
                with contextlib.suppress(FileNotFoundError):
                    st = f.stat()
                    out.append(Entry(kind=self.name, key=f.name, path=f, size=st.st_size,
                                     last_used=max(st.st_mtime, st.st_atime)))
        return out

    def verify(self, cache_root: Path, entry: Entry) -> list[str]:
        try:
            _, actual = digest_of(entry.path)
        except FileNotFoundError:
            return [f"{entry.path}: missing"]
        except OSError as exc:
            return [f"{entry.path}: unreadable ({exc.strerror})"]
        return [] if actual == entry.key else [f"{entry.path}: content has sha256 {actual}, not its name"]

    def remove(self, cache_root: Path, entry: Entry) -> None:
        store = ObjectStore(self._dir(cache_root))
        with store.locked(entry.key) as path:
            gone = path.with_name(f".{entry.key}.{os.getpid()}.{time.monotonic_ns()}.tmp")
            with contextlib.suppress(FileNotFoundError):
                os.rename(path, gone)
                gone.unlink()
            # the lock file stays: unlinking it would let a waiter and a newcomer hold two different locks


PACKAGES: CacheKind = PackagesKind()
