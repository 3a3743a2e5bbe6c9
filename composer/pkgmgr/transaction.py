"""Atomic transactions on a root: stage beside it, journal, rename into place, commit the database last.

1. every new package is verified and extracted into a staging directory beside the root
   (``.NAME.vpk-tx/new/PKG/``), file conflicts are checked against the final set of packages;
2. the journal (``var/lib/vpk/journal.json``) lists every operation (mkdir, place, delete, keep-config,
   rmdir) before the first one runs;
3. each operation moves what it replaces into ``.NAME.vpk-tx/backup/`` and renames the new file in;
4. ``db.json`` is replaced (the commit point), then the staging directory and the journal are removed.

A crash at any point leaves either the old state or the new one once :func:`recover` ran (every
command runs it first): when ``db.json`` already carries the transaction it only cleans up, else it
undoes the operations in reverse (each undo step is idempotent) and the old database stays.

Config files follow dpkg's rules without prompting: on upgrade an unmodified file is replaced, a
modified file whose package version did not change is kept, and when both changed the admin's is kept
and the new one written as ``PATH.vpk-new``; on removal a modified file is kept as ``PATH.vpk-save``
(``purge`` removes it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.errors import UserError
from composer.fsutil import atomic_write
from composer.image.install import Fetched, package_record
from composer.package.archive import read_header
from composer.package.extract import extract_package
from composer.pkgmgr import db

JOURNAL = "journal.json"
CRASH_ENV = "VCOMP_TEST_CRASH_AT"  # test hook: os._exit at the Nth crash point (a kill -9 stand-in)


class TransactionError(UserError):
    """The transaction cannot be applied (conflicts, broken dependencies); the root is unchanged."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    name: str
    action: str                           # install | remove | upgrade | downgrade | reinstall
    old: Mapping[str, Any] | None = None  # the installed record
    new: Fetched | None = None
    manual: bool = False
    pending: Any = None                   # what to fetch for ``new`` (has .version, .reason), before it is fetched

    @property
    def line(self) -> str:
        sym = {"install": "+", "remove": "-"}.get(self.action, "~")
        old = self.old["version"] if self.old else ""
        new = self.new.locked.version if self.new else self.pending.version if self.pending else ""
        arrow = f"{old} -> {new}" if old and new else (new or old)
        reason = self.new.locked.reason if self.new else self.pending.reason if self.pending else ""
        return f"{sym} {self.name} {arrow} ({self.action}{', ' + reason if reason else ''})"


@dataclass(kw_only=True)
class Outcome:
    transaction: int
    changes: tuple[Change, ...]
    notes: list[str] = field(default_factory=list)


class _Crash:
    def __init__(self) -> None:
        at = os.environ.get(CRASH_ENV, "")
        self.at = int(at) if at.isdigit() else 0
        self.count = 0

    def point(self) -> None:
        self.count += 1
        if self.count == self.at:
            os._exit(137)


def stage_dir(root: Path) -> Path:
    root = root.resolve()
    return root.parent / f".{root.name}.vpk-tx"


def _sha256(path: Path) -> str | None:
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
    except FileNotFoundError:
        return None
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _entries(record: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {e["path"]: e for e in record["files"]}


# ---------------------------------------------------------------- planning the file operations


def _owners(packages: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    owners: dict[str, set[str]] = {}
    for name, r in packages.items():
        for e in r["files"]:
            owners.setdefault(e["path"], set()).add(name)
    return owners


def _conflicts(final: Mapping[str, Mapping[str, Any]]) -> list[str]:
    kinds: dict[str, tuple[str, str]] = {}
    out = []
    for name in sorted(final):
        for e in final[name]["files"]:
            seen = kinds.get(e["path"])
            if seen and not (seen[1] == "dir" and e["type"] == "dir"):
                out.append(f"/{e['path']}: shipped by both '{seen[0]}' and '{name}'")
            kinds.setdefault(e["path"], (name, e["type"]))
    return out


def plan_operations(root: Path, stage: Path, changes: Sequence[Change], before: Mapping[str, Mapping[str, Any]],
                    after: Mapping[str, Mapping[str, Any]], *, purge: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """The journal's operations and the notes for the user (kept or new config files)."""
    ops: list[dict[str, Any]] = []
    notes: list[str] = []
    owners_after = _owners(after)
    mkdirs, places, deletes, rmdirs = [], [], [], []
    for ch in changes:
        old = _entries(ch.old) if ch.old else {}
        new = _entries(after[ch.name]) if ch.new else {}
        old_config = dict(ch.old["config"]) if ch.old else {}
        for path, e in sorted(new.items()):
            if e["type"] == "dir":
                if not (root / path).is_dir():
                    mkdirs.append({"op": "mkdir", "path": path, "mode": e["mode"]})
                continue
            src = str(stage / "new" / ch.name / path)
            if e.get("role") == "config" and path in old_config:
                current = _sha256(root / path)
                if current == old_config[path]:
                    places.append({"op": "place", "path": path, "src": src})
                elif e.get("sha256") == old_config[path]:
                    notes.append(f"kept /{path} (changed by the admin, unchanged in {ch.name})")
                elif current is None and not os.path.lexists(root / path):
                    notes.append(f"/{path} stays deleted (removed by the admin)")
                else:
                    places.append({"op": "place", "path": f"{path}.vpk-new", "src": src})
                    notes.append(f"kept /{path} (changed by the admin); the new version is /{path}.vpk-new")
                continue
            places.append({"op": "place", "path": path, "src": src})
        for path, e in sorted(old.items(), reverse=True):
            if path in new or owners_after.get(path, set()) - {ch.name}:
                continue
            if e["type"] == "dir":
                rmdirs.append({"op": "rmdir", "path": path, "mode": e["mode"]})
            elif e.get("role") == "config" and not purge and _sha256(root / path) not in (None, old_config.get(path)):
                deletes.append({"op": "save", "path": path})
                notes.append(f"kept /{path} as /{path}.vpk-save (changed by the admin; --purge removes it)")
            elif os.path.lexists(root / path):
                deletes.append({"op": "delete", "path": path})
        if purge and ch.action == "remove":
            for path in sorted(old_config):
                if os.path.lexists(root / f"{path}.vpk-save"):
                    deletes.append({"op": "delete", "path": f"{path}.vpk-save"})
    ops = [*sorted(mkdirs, key=lambda o: o["path"]), *deletes, *places,
           *sorted(rmdirs, key=lambda o: o["path"], reverse=True)]
    for i, o in enumerate(ops):
        o["backup"] = str(stage / "backup" / str(i))
    return ops, notes


# ---------------------------------------------------------------- doing and undoing


def _do(root: Path, o: Mapping[str, Any], crash: _Crash) -> None:
    path, backup = root / o["path"], Path(o["backup"])
    kind = o["op"]
    if kind == "mkdir":
        path.mkdir()
        path.chmod(int(o["mode"], 8))
    elif kind == "rmdir":
        try:
            path.rmdir()
        except OSError:
            return  # not empty: something not owned by a package lives there; keep it
    elif kind == "save":
        os.rename(path, f"{path}.vpk-save")
    elif kind == "delete":
        os.rename(path, backup)
    elif kind == "place":
        if os.path.lexists(path):
            os.rename(path, backup)
            crash.point()
        os.rename(o["src"], path)
    crash.point()


def _undo(root: Path, o: Mapping[str, Any]) -> None:
    path, backup = root / o["path"], Path(o["backup"])
    kind = o["op"]
    if kind == "mkdir":
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    elif kind == "rmdir":
        if not path.exists():
            path.mkdir()
            path.chmod(int(o["mode"], 8))
    elif kind == "save":
        if os.path.lexists(f"{path}.vpk-save") and not os.path.lexists(path):
            os.rename(f"{path}.vpk-save", path)
    elif kind == "delete":
        if os.path.lexists(backup):
            os.rename(backup, path)
    elif kind == "place":
        if not os.path.lexists(o["src"]) and os.path.lexists(path):  # it was placed: take it out again
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        if os.path.lexists(backup):
            os.rename(backup, path)


def recover(root: Path) -> str | None:
    """Finish or roll back an interrupted transaction; returns what was done (None: nothing to do)."""
    journal = db.db_dir(root) / JOURNAL
    if not journal.is_file():
        return None
    try:
        j = json.loads(journal.read_bytes())
    except ValueError:
        j = None
    committed = j is not None and db.load(root).transaction >= int(j["transaction"])
    if j is not None and not committed:
        for o in reversed(j["ops"]):
            _undo(root, o)
    shutil.rmtree(stage_dir(root), ignore_errors=True)
    journal.unlink()
    tx = j["transaction"] if j else "?"
    return f"transaction {tx} was interrupted: " + ("finished (it had committed)" if committed else "rolled back")


def apply(root: Path, changes: Sequence[Change], *, operation: str, cause: str, epoch: int,
          purge: bool = False) -> Outcome:
    recover(root)
    current = db.load(root)
    before = {k: dict(v) for k, v in current.packages.items()}
    after = dict(before)
    txid = current.transaction + 1
    stage = stage_dir(root)
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "backup").mkdir(parents=True)
    crash = _Crash()
    try:
        for ch in changes:
            if ch.action == "remove":
                after.pop(ch.name, None)
                continue
            assert ch.new is not None
            (stage / "new" / ch.name).mkdir(parents=True)
            extract_package(ch.new.path, stage / "new" / ch.name, trusted=ch.new.key)
            record = package_record(ch.new, read_header(ch.new.path))
            record["manual"] = ch.manual
            after[ch.name] = record
        problems = _conflicts(after)
        if problems:
            raise TransactionError("file conflicts:\n    " + "\n    ".join(problems),
                                   hint="the root is unchanged; remove one of the packages first")
        ops, notes = plan_operations(root, stage, changes, before, after, purge=purge)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    journal = db.db_dir(root) / JOURNAL
    atomic_write(journal, json.dumps({"transaction": txid, "ops": ops}).encode())
    crash.point()
    for o in ops:
        _do(root, o, crash)
    entry = {"id": txid, "time": epoch, "operation": operation, "cause": cause,
             "packages": [{"name": ch.name, "action": ch.action, "old": ch.old["version"] if ch.old else None,
                           "new": ch.new.locked.version if ch.new else None} for ch in changes]}
    db.save(root, after, [*current.history, entry], txid, between=crash.point)
    crash.point()
    shutil.rmtree(stage, ignore_errors=True)
    journal.unlink()
    return Outcome(transaction=txid, changes=tuple(changes), notes=notes)
