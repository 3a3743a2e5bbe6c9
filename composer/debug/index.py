"""Build the build-id index of a repository (the I/O edge of :mod:`composer.debug.protocol`).

Every package of the chosen architectures is fetched and verified as any client does (pinned root, TUF
metadata, the developer's delegated key: :class:`composer.repo.client.RepositoryClient`), then its payload is
scanned: detached debug files in the GNU build-id layout (``usr/lib/debug/.build-id/xx/yyyy.debug``, a ``-dbg``
package's), other ELF files by the build-id of their note (executables and libraries), and sources under
``usr/src/debug/``. The files are kept in a content-addressed store (``objects/SHA256``) and each package's
rows in ``packages/SHA256.json``, so a second run reads only the packages that are new.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from composer.arch import ARCHES
from composer.debug.buildid import DEBUG_DIR, ELF_MAGIC, id_of_debug_path, read_build_id
from composer.debug.protocol import SOURCE_DIR, BuildIdIndex, Located, merge
from composer.errors import UserError
from composer.fsutil import atomic_write, ensure_dir
from composer.package.archive import open_package
from composer.package.manifest import Entry
from composer.repo.client import RepositoryClient
from composer.repo.index import IndexEntry

Row = tuple[str, str, str, Located]   # kind, key, package, file (see protocol.merge)
CHUNK = 1 << 20
ROWS_FORMAT = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Store:
    """The server's cache: ``objects/SHA256`` (file contents) and ``packages/SHA256.json`` (rows)."""

    dir: Path

    def object(self, sha256: str) -> Path:
        return self.dir / "objects" / sha256

    def rows_file(self, package_sha256: str) -> Path:
        return self.dir / "packages" / f"{package_sha256}.json"


def architectures(client: RepositoryClient, wanted: Sequence[str]) -> list[str]:
    """The architectures to index: ``wanted``, or every one the repository has an index for."""
    if wanted:
        unknown = [a for a in wanted if a not in ARCHES]
        if unknown:
            raise UserError(f"unknown architecture {', '.join(unknown)}", hint=f"one of: {', '.join(ARCHES)}")
        return list(wanted)
    return [a for a in ARCHES if client.index_digest(a)]


def build_index(client: RepositoryClient, store: Store, arches: Sequence[str],
                say: Callable[[str], None] = lambda _m: None) -> BuildIdIndex:
    """The build-id index of every package of ``arches`` (all versions; rows of packages whose name ends in
    ``-dbg`` first, then by name and version, so a choice between equal build-ids is stable)."""
    entries = sorted({e.path: e for a in arches for e in client.index(a)}.values(),
                     key=lambda e: (not e.name.endswith("-dbg"), e.name, e.order_key(), e.arch))
    rows: list[Row] = []
    for n, entry in enumerate(entries, 1):
        cached = _cached_rows(store, entry)
        if cached is None:
            say(f"[{n}/{len(entries)}] indexing {entry.name} {entry.version_text} ({entry.arch})")
            cached = scan_package(client.fetch(entry), _label(entry), store)
            atomic_write(store.rows_file(entry.sha256), _rows_json(cached), durable=False)
        rows += cached
    return merge(rows)


def _label(entry: IndexEntry) -> str:
    return f"{entry.name}={entry.version_text}/{entry.arch}"


def _rows_json(rows: Sequence[Row]) -> bytes:
    doc = {"format": ROWS_FORMAT, "rows": [[k, key, p, f.to_dict()] for k, key, p, f in rows]}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _cached_rows(store: Store, entry: IndexEntry) -> list[Row] | None:
    """The rows of a package indexed before (None when not, or when a cached file or object is damaged)."""
    try:
        doc = json.loads(store.rows_file(entry.sha256).read_bytes())
        if doc.get("format") != ROWS_FORMAT:
            return None
        rows = [(str(k), str(key), str(p), Located.from_dict(f)) for k, key, p, f in doc["rows"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if any(not _intact(store.object(f.sha256), f.size) for *_x, f in rows):
        return None
    return rows


def _intact(path: Path, size: int) -> bool:
    """A stored object is there with its size (a damaged cache is re-read from the package)."""
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def scan_package(path: Path, label: str, store: Store) -> list[Row]:
    """The rows of one (verified) package; its ELF files and sources are copied into the store."""
    rows: list[Row] = []
    with open_package(path) as reader, reader.payload() as stream, _pending(store) as keep:
        for entry, fobj in stream.members():
            if fobj is None or entry.type != "file":
                continue
            kind = _kind_of(entry)
            head = fobj.read(len(ELF_MAGIC)) if kind is not None else b""
            if kind is None or (kind != "source" and head != ELF_MAGIC):
                continue
            located = Located(package=label, path=entry.path, sha256=entry.sha256, size=entry.size)
            target = keep(entry.sha256, head, fobj)
            if kind == "source":
                rows.append(("source", entry.path.removeprefix(SOURCE_DIR), label, located))
                continue
            found = id_of_debug_path(entry.path) if kind == "debuginfo" else None
            with target.open("rb") as f:
                build_id = read_build_id(f)
            if kind == "debuginfo" and found and build_id in (found, None):
                rows.append(("debuginfo", found, label, located))
            elif kind == "executable" and build_id:
                rows.append(("executable", build_id, label, located))
    return rows


def _kind_of(entry: Entry) -> str | None:
    """What a payload file may be to the server: debuginfo, executable (any ELF with a build-id: the caller
    checks its first bytes), source, or None (not kept)."""
    if entry.path.startswith(SOURCE_DIR):
        return "source"
    if entry.path.startswith(DEBUG_DIR):
        return "debuginfo" if id_of_debug_path(entry.path) else None
    return "executable" if entry.size > len(ELF_MAGIC) else None


@contextlib.contextmanager
def _pending(store: Store) -> Iterator[Callable[[str, bytes, IO[bytes]], Path]]:
    """Copy members into temporary files of the store; rename them into ``objects/`` once the whole payload
    was read and verified (a member's hash is checked after it was read), remove them on any error."""
    objects = store.dir / "objects"
    ensure_dir(objects)
    done: list[tuple[Path, Path]] = []

    def keep(sha256: str, head: bytes, fobj: IO[bytes]) -> Path:
        fd, tmp = tempfile.mkstemp(prefix=f".{sha256[:16]}.", suffix=".tmp", dir=objects)
        with os.fdopen(fd, "wb") as out:
            out.write(head)
            while chunk := fobj.read(CHUNK):
                out.write(chunk)
        done.append((Path(tmp), objects / sha256))
        return Path(tmp)

    try:
        yield keep
    except BaseException:
        for tmp, _final in done:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, final in done:
        os.replace(tmp, final)
