"""Directory entries of a cache: files plus a record of each file's size and sha256.

Writers take the entry's lock (``.locks/KEY.lock``), write every file into a temporary directory
(``.tmp-KEY-*``), fsync the files, the record and the directory, and rename it into place, so a
reader sees a whole entry or none. Readers take no lock: they copy each file while hashing it and
compare with the record, so a damaged or vanished entry is a miss (said once, removed), never a
wrong output. Removal renames the entry away (``.trash-*``) before deleting it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from composer import lockfile
from composer.cachekinds import Entry

RECORD = "product.json"         # the record's name (kept from the first image-cache format)
FORMAT = 2
TEMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
LOCKS = ".locks"
STALE_TEMP_SECONDS = 3600       # a temporary entry this old belongs to a killed writer
CHUNK = 1 << 20
_KEY = re.compile(r"^[0-9a-f]{16,128}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

Say = Callable[[str], None]


@contextlib.contextmanager
def entry_lock(kind_dir: Path, key: str) -> Iterator[None]:
    with lockfile.exclusive(kind_dir / LOCKS / f"{key}.lock", f"cache entry {kind_dir.name}/{key[:16]}"):
        yield


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _row_ok(row: Any) -> bool:
    return (isinstance(row, dict) and isinstance(row.get("path"), str) and "/" not in row["path"]
            and row["path"] not in ("", ".", "..", RECORD) and isinstance(row.get("size"), int)
            and isinstance(row.get("sha256"), str) and bool(_HEX64.match(row["sha256"])))


def load_record(entry: Path) -> dict[str, Any] | None:
    """The entry's record, or None when it is missing or malformed."""
    try:
        doc = json.loads((entry / RECORD).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list) or not all(map(_row_ok, doc["files"])):
        return None
    return doc


def _hash_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def problems(entry: Path) -> list[str]:
    """Every way ``entry`` differs from its record (one line each, naming the file); empty when intact."""
    record = load_record(entry)
    if record is None:
        return [f"{entry / RECORD}: missing or not a valid record"]
    found = []
    for row in record["files"]:
        path = entry / row["path"]
        try:
            sha, size = _hash_file(path)
        except OSError as exc:
            found.append(f"{path}: unreadable ({exc.strerror or exc})")
            continue
        if size != row["size"]:
            found.append(f"{path}: {size} bytes, recorded {row['size']}")
        elif sha != row["sha256"]:
            found.append(f"{path}: sha256 {sha[:16]}..., recorded {row['sha256'][:16]}...")
    return found


def _copy_checked(src: Path, dst: Path, sha: str, size: int) -> bool:
    """Copy while hashing; False when the source is unreadable or differs from (sha, size). An error
    writing ``dst`` (disk full, read-only) is raised: it is not the cache's fault."""
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    h = hashlib.sha256()
    n = 0
    with os.fdopen(fd, "rb") as fi, dst.open("wb") as fo:
        while True:
            try:
                chunk = fi.read(CHUNK)
            except OSError:
                return False
            if not chunk:
                break
            n += len(chunk)
            if n > size:
                return False
            h.update(chunk)
            fo.write(chunk)
    return n == size and h.hexdigest() == sha


def touch(entry: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(entry)


def read(kind_dir: Path, key: str, dest: Path, *, say: Say) -> dict[str, Any] | None:
    """Copy the entry's files into ``dest`` (each checked while copied) and return its record; None on a
    miss. A damaged entry is said once on ``say``, removed, and is a miss."""
    entry = kind_dir / key
    try:
        ino = entry.stat().st_ino
    except OSError:
        return None
    record = load_record(entry)
    bad = "its record is missing or corrupt" if record is None else ""
    copied: list[Path] = []
    for row in (record or {}).get("files", []):
        target = dest / row["path"]
        copied.append(target)
        if not _copy_checked(entry / row["path"], target, row["sha256"], row["size"]):
            bad = f"{row['path']} does not match its recorded sha256 and size"
            break
    if bad:
        for path in copied:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        say(f"warning: cache entry {entry}: {bad}; removed, rebuilding")
        discard(kind_dir, key, ino)
        return None
    touch(entry)
    return record


def discard(kind_dir: Path, key: str, ino: int) -> None:
    """Remove the entry found damaged, unless a writer replaced it meanwhile (another inode)."""
    with contextlib.suppress(OSError), entry_lock(kind_dir, key):
        if (kind_dir / key).stat().st_ino == ino:
            retire(kind_dir / key)


def _copy_durable(src: Path, dst: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    n = 0
    with src.open("rb") as fi, dst.open("wb") as fo:
        while chunk := fi.read(CHUNK):
            h.update(chunk)
            fo.write(chunk)
            n += len(chunk)
        fo.flush()
        os.fsync(fo.fileno())
    return {"path": dst.name, "sha256": h.hexdigest(), "size": n}


def write(kind_dir: Path, key: str, files: Sequence[Path], meta: Mapping[str, Any]) -> None:
    """Store ``files`` (by their names) with ``meta`` as the entry ``key``; an intact entry is kept."""
    if not _KEY.match(key):
        raise ValueError(f"not a cache key: {key!r}")
    kind_dir.mkdir(parents=True, exist_ok=True)
    with entry_lock(kind_dir, key):
        entry = kind_dir / key
        if entry.is_dir() and not problems(entry):
            touch(entry)
            return
        tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{key}-", dir=kind_dir))
        try:
            rows = [_copy_durable(src, tmp / src.name) for src in files]
            doc = {"format": FORMAT, **meta, "files": rows}
            with (tmp / RECORD).open("wb") as f:
                f.write(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
                f.flush()
                os.fsync(f.fileno())
            tmp.chmod(0o755)
            fsync_dir(tmp)
            if entry.exists() or entry.is_symlink():
                retire(entry)
            tmp.rename(entry)
            fsync_dir(kind_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def retire(path: Path) -> None:
    """Rename away, then delete: nobody sees a half-deleted entry under its name."""
    trash = path.with_name(f"{TRASH_PREFIX}{path.name}-{os.getpid()}-{time.monotonic_ns()}")
    path.rename(trash)
    if trash.is_dir() and not trash.is_symlink():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        trash.unlink()


def remove(kind_dir: Path, key: str) -> None:
    with entry_lock(kind_dir, key):
        if (kind_dir / key).exists() or (kind_dir / key).is_symlink():
            retire(kind_dir / key)


def _size(entry: Path) -> int:
    total = 0
    with contextlib.suppress(OSError):
        for child in entry.iterdir():
            with contextlib.suppress(OSError):
                total += child.lstat().st_size
    return total


def entries(kind: str, kind_dir: Path) -> list[Entry]:
    """Every complete entry (a directory with a record name; temporary and trash ones are skipped)."""
    if not kind_dir.is_dir():
        return []
    found = []
    for path in sorted(kind_dir.iterdir()):
        if path.name.startswith(".") or path.is_symlink() or not path.is_dir():
            continue
        with contextlib.suppress(OSError):
            found.append(Entry(kind=kind, key=path.name, path=path, size=_size(path),
                               last_used=path.stat().st_mtime))
    return found


def sweep_leftovers(kind_dir: Path, *, now: float | None = None) -> int:
    """Remove what killed writers and removers left behind; returns how many."""
    if not kind_dir.is_dir():
        return 0
    now = time.time() if now is None else now
    count = 0
    for path in kind_dir.iterdir():
        with contextlib.suppress(OSError):
            old_temp = path.name.startswith(TEMP_PREFIX) and now - path.stat().st_mtime > STALE_TEMP_SECONDS
            if path.name.startswith(TRASH_PREFIX) or old_temp:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
                count += 1
    return count
