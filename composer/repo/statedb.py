"""A repository's state in SQLite: the index entries of its stored packages, keyed by target path.

    REPO/state.db    (+ state.db-wal, state.db-shm while open): never served

One table of packages (``path`` primary key; indexes on ``(name, arch)`` and ``arch``) holding each entry's
canonical JSON, and a small ``meta`` table of other JSON values (``images``: the published chunk indexes
and channel documents of composer/update/; ``roles``: the developer role versions the packages table was
last reconciled with, see composer/repo/guard.py; ``published``: what the last publish left, see
composer/repo/incremental.py). Two derived tables make the per-change work of ``repo add`` and
``repo publish`` independent of the repository's size:

* ``links (kind, name, path)``: the names each entry provides (``provides``), depends on (``requires``) and
  whether it is in the base set (``essential``/``required``, its own name): "who provides NAME", "who
  depends on NAME" and the base set are indexed lookups, not a scan of every entry;
* ``changes (name, arch)``: the names (own and provided; ``""`` for the base set) whose sparse index files
  a change of the packages table touched since the last publish, written in the same transaction as the
  change, so ``repo publish`` rebuilds those files only.

Adding a package is one indexed insert in one transaction (O(log n)); nothing rewrites the whole state.
Writers hold the repository lock (one writer); WAL lets readers (``repo publish`` on another checkout,
reports) read while a writer writes, and a kill during a transaction leaves the previous state (SQLite's journal).

The older layout kept all of it in ``state.json``, rewritten on every change. :func:`open_state` imports
it on the first write under the lock (in one transaction) and removes it; readers of an unmigrated
repository read the JSON file. ``vcomp repo migrate DIR`` does the same on demand; ``--rebuild`` drops a
damaged database and rebuilds it from the signed roles and the stored targets.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from composer.errors import ComposerError, UserError
from composer.oserrors import fault
from composer.repo.index import dependency_names

STATE_DB = "state.db"
LEGACY_STATE = "state.json"
SCHEMA_VERSION = 4      # 2: the links and changes tables (filled from the packages on the upgrade); 3: counts;
                        # 4: role_versions (the listing of metadata/ kept by the writers: composer/repo/listing.py)
LISTING_KEY = "metadata_listing"   # meta: {"clean": bool, "mtime_ns": N}: whether role_versions is metadata/'s
INTERNAL_META = ("roles", "published", "listed_bins", LISTING_KEY)   # meta keys of the state itself, not of
                                                                     # the read_state() document
BASE_NAME = ""          # changes: the base set's file (no package is called "")
MAX_LEGACY_BYTES = 1 << 30   # a state.json larger than this is not read (65,000 packages took 50 MB)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS packages (path TEXT PRIMARY KEY, name TEXT NOT NULL, arch TEXT NOT NULL, "
    "sha256 TEXT NOT NULL, entry TEXT NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS packages_name_arch ON packages (name, arch)",
    "CREATE INDEX IF NOT EXISTS packages_arch ON packages (arch)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS links (kind TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, "
    "PRIMARY KEY (kind, name, path)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS links_path ON links (path)",
    "CREATE TABLE IF NOT EXISTS changes (name TEXT NOT NULL, arch TEXT NOT NULL, PRIMARY KEY (name, arch)) "
    "WITHOUT ROWID",
    # the number of packages, kept by SQLite itself on every insert and delete (count(*) reads an index of
    # every row: 30 ms at a million packages, on every publish); an INSERT OR REPLACE's implicit delete fires
    # the delete trigger only with recursive_triggers, which every writer's connection turns on (_connect)
    "CREATE TABLE IF NOT EXISTS counts (what TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
    # role -> newest version N of N.ROLE.json in metadata/, as the writers left it (composer/repo/listing.py)
    "CREATE TABLE IF NOT EXISTS role_versions (role TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TRIGGER IF NOT EXISTS packages_counted AFTER INSERT ON packages "
    "BEGIN UPDATE counts SET n = n + 1 WHERE what = 'packages'; END",
    "CREATE TRIGGER IF NOT EXISTS packages_uncounted AFTER DELETE ON packages "
    "BEGIN UPDATE counts SET n = n - 1 WHERE what = 'packages'; END",
)
_INSERT = "INSERT OR REPLACE INTO packages (path, name, arch, sha256, entry) VALUES (?, ?, ?, ?, ?)"


def entry_links(entry: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every link of an entry dict (see the module docstring)."""
    name = str(entry.get("name", ""))
    out = {("provides", str(p).partition("=")[0].strip()) for p in entry.get("provides", ()) or ()}
    deps = entry.get("dependencies", {}) or {}
    relations = entry.get("relations", {}) or {}
    if isinstance(deps, Mapping) and isinstance(relations, Mapping):
        out |= {("requires", n) for n in dependency_names(deps, relations)}
    if entry.get("essential"):
        out.add(("essential", name))
    if entry.get("priority") == "required":
        out.add(("required", name))
    return {(k, n) for k, n in out if n}


def touched_names(entry: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(name, arch) of the sparse files a change of ``entry`` touches: its own name's, its provided names'
    (their ``providers``), and the base set's when it is in it."""
    arch = str(entry.get("arch", ""))
    links = entry_links(entry)
    out = {(str(entry.get("name", "")), arch)} | {(n, arch) for k, n in links if k == "provides"}
    if any(k in ("essential", "required") for k, _ in links):
        out.add((BASE_NAME, arch))
    return out


def rebuild_hint(directory: Path) -> str:
    return (f"rebuild it from the signed roles and stored targets: vcomp repo migrate {directory} --rebuild "
            "(nothing is lost: the state is derived)")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class StateDB:
    """The open state database of one repository (``write``: under the repository lock)."""

    def __init__(self, directory: Path, conn: sqlite3.Connection) -> None:
        self.dir = directory
        self.path = directory / STATE_DB
        self.conn = conn

    # ---- errors: one line naming the file and the fix
    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise database_error(self.dir, exc) from None

    def close(self) -> None:
        self.conn.close()

    # ---- reads (bounded: one row or one name-arch, except the explicit whole-state views)
    def get(self, path: str) -> dict[str, Any] | None:
        with self._guard():
            row = self.conn.execute("SELECT entry FROM packages WHERE path = ?", (path,)).fetchone()
        return None if row is None else self._entry(row[0])

    def versions(self, name: str, arch: str) -> list[dict[str, Any]]:
        """Every entry of ``name`` for ``arch`` (the versions a new upload must order against)."""
        with self._guard():
            rows = self.conn.execute("SELECT entry FROM packages WHERE name = ? AND arch = ? ORDER BY path",
                                     (name, arch)).fetchall()
        return [self._entry(r[0]) for r in rows]

    def count(self) -> int:
        """The number of packages (the kept count; a reader of a database older than the count scans)."""
        with self._guard():
            try:
                row = self.conn.execute("SELECT n FROM counts WHERE what = 'packages'").fetchone()
            except sqlite3.OperationalError:   # no counts table (schema 2, opened read-only)
                row = None
            if row is None:
                row = self.conn.execute("SELECT count(*) FROM packages").fetchone()
            return int(row[0])

    def digests(self) -> dict[str, str]:
        """path -> sha256 of every entry (what the repair compares with the roles; no entry is parsed)."""
        with self._guard():
            return dict(self.conn.execute("SELECT path, sha256 FROM packages"))

    def packages(self, arches: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """path -> entry, of every package or of ``arches`` only, in path order."""
        with self._guard():
            if arches is None:
                rows = self.conn.execute("SELECT path, entry FROM packages ORDER BY path")
            else:
                wanted = sorted(set(arches))
                marks = ",".join("?" * len(wanted))
                rows = self.conn.execute(f"SELECT path, entry FROM packages WHERE arch IN ({marks}) ORDER BY path",
                                         wanted)
            return {p: self._entry(e) for p, e in rows}

    def named(self, name: str, arches: Iterable[str]) -> list[dict[str, Any]]:
        """Every entry called ``name`` of ``arches``."""
        wanted = sorted(set(arches))
        with self._guard():
            rows = self.conn.execute(f"SELECT entry FROM packages WHERE name = ? AND arch IN ({_marks(wanted)}) "
                                     "ORDER BY path", (name, *wanted)).fetchall()
        return [self._entry(r[0]) for r in rows]

    def linked(self, kind: str, name: str, arches: Iterable[str]) -> list[str]:
        """The names of the entries of ``arches`` with the link (kind, name): ``linked("provides", N, ...)``
        are N's providers, ``linked("requires", N, ...)`` the packages depending on N."""
        wanted = sorted(set(arches))
        with self._guard():
            rows = self.conn.execute(
                "SELECT DISTINCT p.name FROM links l JOIN packages p ON p.path = l.path "
                f"WHERE l.kind = ? AND l.name = ? AND p.arch IN ({_marks(wanted)}) ORDER BY p.name",
                (kind, name, *wanted)).fetchall()
        return [str(r[0]) for r in rows]

    def base_names(self, kind: str, arches: Iterable[str]) -> list[str]:
        """The names of the ``essential`` or ``required`` entries of ``arches``, sorted."""
        wanted = sorted(set(arches))
        with self._guard():
            rows = self.conn.execute(
                "SELECT DISTINCT l.name FROM links l JOIN packages p ON p.path = l.path "
                f"WHERE l.kind = ? AND p.arch IN ({_marks(wanted)}) ORDER BY l.name", (kind, *wanted)).fetchall()
        return [str(r[0]) for r in rows]

    def changes(self, limit: int) -> list[tuple[str, str]] | None:
        """The (name, arch) changed since the last :meth:`clear_changes`, or None when more than ``limit``."""
        with self._guard():
            rows = self.conn.execute("SELECT name, arch FROM changes ORDER BY name, arch LIMIT ?",
                                     (limit + 1,)).fetchall()
        return None if len(rows) > limit else [(str(n), str(a)) for n, a in rows]

    def clear_changes(self, done: Iterable[tuple[str, str]], *, meta: Mapping[str, Any]) -> None:
        """Forget the changes ``done`` (published) and set ``meta``, in one transaction."""
        with self._guard(), self.conn:
            self.conn.executemany("DELETE FROM changes WHERE name = ? AND arch = ?", list(done))
            self._set_meta(meta)

    def clear_all_changes(self, *, meta: Mapping[str, Any]) -> None:
        with self._guard(), self.conn:
            self.conn.execute("DELETE FROM changes")
            self._set_meta(meta)

    def meta(self, key: str) -> Any:
        with self._guard():
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def metas(self) -> dict[str, Any]:
        with self._guard():
            return {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM meta ORDER BY key")}

    def _entry(self, text: str) -> dict[str, Any]:
        value = json.loads(text)
        if not isinstance(value, dict):
            raise UserError(f"{self.path}: a package entry is not an object", hint=rebuild_hint(self.dir))
        return value

    # ---- writes: each call is one transaction
    def put(self, entries: Iterable[Mapping[str, Any]], *, meta: Mapping[str, Any] | None = None) -> None:
        """Insert or replace ``entries`` (index entry dicts) and set ``meta`` keys, in one transaction."""
        entries = list(entries)
        with self._guard(), self.conn:
            old = [self.get(str(e["path"])) for e in entries]
            self._write_rows(entries, [o for o in old if o is not None])
            self._set_meta(meta or {})

    def _write_rows(self, new: Iterable[Mapping[str, Any]], old: Iterable[Mapping[str, Any]],
                    gone: Iterable[str] = ()) -> None:
        """Inside a transaction: insert or replace the ``new`` entries (replacing the ``old`` ones at their
        paths), delete the paths ``gone``, keep ``links`` in step and record the ``changes``."""
        new, gone = list(new), list(gone)
        touched: set[tuple[str, str]] = set()
        for e in [*new, *old]:
            touched |= touched_names(e)
        stale = [(str(e["path"]),) for e in new] + [(p,) for p in gone]
        self.conn.executemany("DELETE FROM links WHERE path = ?", stale)
        self.conn.executemany("DELETE FROM packages WHERE path = ?", [(p,) for p in gone])
        self.conn.executemany(_INSERT, [(str(e["path"]), str(e["name"]), str(e["arch"]), str(e["sha256"]),
                                         _dumps(dict(e))) for e in new])
        self.conn.executemany("INSERT OR IGNORE INTO links (kind, name, path) VALUES (?, ?, ?)",
                              [(k, n, str(e["path"])) for e in new for k, n in sorted(entry_links(e))])
        self.conn.executemany("INSERT OR IGNORE INTO changes (name, arch) VALUES (?, ?)", sorted(touched))

    def replace(self, packages: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Any],
                drop_meta: Iterable[str] = ()) -> None:
        """Make the packages table exactly ``packages`` (changing only the rows that differ) and set ``meta``."""
        with self._guard():
            current = dict(self.conn.execute("SELECT path, entry FROM packages"))
        fresh = {p: _dumps(dict(e)) for p, e in packages.items()}
        gone = [p for p in current if p not in fresh]
        changed = [p for p, text in fresh.items() if current.get(p) != text]
        old = [self._entry(current[p]) for p in [*gone, *changed] if p in current]
        with self._guard(), self.conn:
            self._write_rows([packages[p] for p in changed], old, gone)
            self.conn.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in drop_meta])
            self._set_meta(meta)

    # ---- the listing of metadata/ (composer/repo/listing.py)
    def role_version(self, role: str) -> int | None:
        with self._guard():
            row = self.conn.execute("SELECT version FROM role_versions WHERE role = ?", (role,)).fetchone()
        return None if row is None else int(row[0])

    def role_versions_except(self, prefix: str) -> dict[str, int]:
        """role -> version of every role whose name does not start with ``prefix`` (one range scan)."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        with self._guard():
            rows = self.conn.execute("SELECT role, version FROM role_versions WHERE role < ? OR role >= ?",
                                     (prefix, end)).fetchall()
        return {str(r): int(v) for r, v in rows}

    def all_role_versions(self) -> dict[str, int]:
        with self._guard():
            return {str(r): int(v) for r, v in self.conn.execute("SELECT role, version FROM role_versions")}

    def set_listing(self, value: Mapping[str, Any]) -> None:
        """Set the listing's mark alone (one transaction): ``{"clean": False}`` before a writer's first write."""
        with self._guard(), self.conn:
            self._set_meta({LISTING_KEY: value})

    def record_listing(self, versions: Mapping[str, int], *, whole: bool, mark: Mapping[str, Any]) -> None:
        """Record role versions (``whole``: they are the whole listing, replacing the table; else the newest of
        each is kept) and the listing's ``mark``, in one transaction."""
        with self._guard(), self.conn:
            if whole:
                self.conn.execute("DELETE FROM role_versions")
                self.conn.executemany("INSERT INTO role_versions (role, version) VALUES (?, ?)",
                                      sorted(versions.items()))
            else:
                self.conn.executemany("INSERT INTO role_versions (role, version) VALUES (?, ?) ON CONFLICT(role) "
                                      "DO UPDATE SET version = max(version, excluded.version)",
                                      sorted(versions.items()))
            self._set_meta({LISTING_KEY: mark})

    def _set_meta(self, meta: Mapping[str, Any]) -> None:
        self.conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                              [(k, _dumps(v)) for k, v in sorted(meta.items())])


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _nearly_full(directory: Path, floor: int = 1 << 20) -> bool:
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < floor


def _connect(path: Path, *, write: bool) -> sqlite3.Connection:
    uri = f"{path.resolve().as_uri()}?mode={'rwc' if write else 'ro'}"
    conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None if not write else "DEFERRED")
    if write:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")   # a committed add survives a power cut, as the signed role does
        conn.execute("PRAGMA recursive_triggers=ON")   # INSERT OR REPLACE's delete keeps the count (_SCHEMA)
    return conn


def open_state(directory: Path, *, write: bool) -> StateDB | None:
    """The repository's state database; None for a reader of a repository that has none yet.

    A writer (under the lock) creates it, importing a legacy ``state.json`` in the same transaction and
    then removing the JSON file (a kill before the removal leaves both; the next writer sees the database
    and just removes the file)."""
    path, legacy = directory / STATE_DB, directory / LEGACY_STATE
    if not write and not path.is_file():
        return None
    if write and _nearly_full(directory):
        # SQLite creates state.db-wal and -shm on opening and cannot fold them back on a full disk: refuse
        # before touching anything, so the repository stays exactly as it was
        raise fault(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)), "writing the repository state")
    try:
        conn = _connect(path, write=write)
        db = StateDB(directory, conn)
        with db._guard():
            if write:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if version > SCHEMA_VERSION:
                    raise UserError(f"{path}: state schema {version} is newer than this vcomp's "
                                    f"({SCHEMA_VERSION})", hint="upgrade vcomp")
                if version < SCHEMA_VERSION:
                    with conn:
                        for statement in _SCHEMA:
                            conn.execute(statement)
                        if legacy.is_file():
                            _import_legacy(db, legacy)
                        elif version == 1:
                            _fill_links(db)
                        conn.execute("INSERT OR REPLACE INTO counts (what, n) "
                                     "VALUES ('packages', (SELECT count(*) FROM packages))")
                        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                legacy.unlink(missing_ok=True)
            else:
                conn.execute("SELECT 1 FROM packages LIMIT 1").fetchall()
    except OSError as exc:
        raise UserError(f"{path}: cannot open the repository state ({exc.strerror or exc})",
                        hint="check the repository directory's permissions and free space") from None
    except sqlite3.DatabaseError as exc:   # open or schema failures not raised inside _guard
        raise database_error(directory, exc) from None
    return db


# SQLite's primary result codes that are the file system's fault, not the database's (sqlite.org/rescode.html)
SQLITE_ERRNO: dict[int, int] = {13: errno.ENOSPC, 8: errno.EROFS, 3: errno.EACCES, 23: errno.EACCES,
                                14: errno.EACCES, 10: errno.EIO}


def database_error(directory: Path, exc: sqlite3.DatabaseError) -> ComposerError:
    """One line for a failed database operation: a full or read-only disk as the OS fault it is; anything
    else (a damaged file, not a database) with the rebuild command."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    path = directory / STATE_DB
    if code in SQLITE_ERRNO:
        number = SQLITE_ERRNO[code]
        if number == errno.EIO and _nearly_full(directory):   # SQLite reports a short write as an I/O error
            number = errno.ENOSPC
        return fault(OSError(number, os.strerror(number), str(path)), "writing the repository state")
    return UserError(f"{path}: the repository state database is unreadable ({exc})", hint=rebuild_hint(directory))


def _import_legacy(db: StateDB, legacy: Path) -> None:
    """state.json's entries and other keys into the open transaction (a damaged file imports nothing: the
    repair under the lock rebuilds the entries from the roles)."""
    state = read_legacy(legacy)
    packages = state.pop("packages", {})
    rows = [e for e in packages.values() if isinstance(e, dict) and {"path", "name", "arch", "sha256"} <= e.keys()]
    db._write_rows(rows, [])
    db._set_meta(state)


def _fill_links(db: StateDB) -> None:
    """Schema 1 -> 2, inside the open transaction: the links of every stored entry (once; O(n)). The next
    publish is a full one (no ``published`` record of what it left)."""
    for (text,) in db.conn.execute("SELECT entry FROM packages"):   # (row by row: a million entries)
        e = db._entry(text)
        db.conn.executemany("INSERT OR IGNORE INTO links (kind, name, path) VALUES (?, ?, ?)",
                            [(k, n, str(e["path"])) for k, n in sorted(entry_links(e))])


def read_legacy(legacy: Path) -> dict[str, Any]:
    """The old state.json, or an empty state if it is missing, too large or not the expected shape."""
    try:
        if legacy.stat().st_size > MAX_LEGACY_BYTES:
            return {"packages": {}}
        state = json.loads(legacy.read_bytes())
    except (OSError, ValueError):
        return {"packages": {}}
    if not isinstance(state, dict) or not isinstance(state.get("packages"), dict):
        return {"packages": {}}
    return state


def remove_state(directory: Path) -> list[Path]:
    """Delete the state database and its WAL files (for ``repo migrate --rebuild``); return what was removed."""
    gone = []
    for name in (STATE_DB, f"{STATE_DB}-wal", f"{STATE_DB}-shm"):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
            gone.append(directory / name)
    return gone
