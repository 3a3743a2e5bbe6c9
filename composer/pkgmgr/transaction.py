"""Atomic transactions on a root: stage beside it, journal, rename into place, commit the database last.

1. every new package is verified and extracted into a staging directory beside the root
   (``.NAME.vpk-tx/new/PKG/``), file conflicts are checked against the final set of packages, and every
   target path is probed in the root without following a symlink (a symlinked component refuses the
   transaction before anything changed);
2. the journal (``var/lib/vpk/journal.json``) lists every operation (mkdir, place, delete, keep-config,
   rmdir) before the first one runs. It holds root-relative paths only: the staging locations (the new
   file ``new/PKG/SOURCE``, the backup ``backup/INDEX``) are derived by vcomp, never read from it, and
   every field is validated before recovery uses it (:func:`check_journal`);
3. each operation moves what it replaces into ``.NAME.vpk-tx/backup/`` and renames the new file in;
   every operation goes through :class:`composer.rootfs.Root` (directory descriptors, no symlink followed);
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

import contextlib
import json
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.errors import UserError
from composer.image.install import Fetched, package_record
from composer.package.archive import read_header
from composer.package.extract import extract_package
from composer.pkgmgr import db, dbcheck
from composer.rootfs import Root, UnsafePath, move, show

JOURNAL = "journal.json"
JOURNAL_REL = f"{db.DB_REL}/{JOURNAL}"
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


def _backup(index: int) -> str:
    return f"backup/{index}"


def _source(o: Mapping[str, Any]) -> str:
    """Where a ``place`` operation's new file waits in the staging tree: derived, never read from the journal."""
    return f"new/{o['package']}/{o['source']}"


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


def _probe(root: Root, path: str, package: str, kind: str) -> os.stat_result | None:
    """``path`` in the root, reached without following a symlink; a symlink where the package puts a directory,
    or above anything it puts, refuses the transaction."""
    try:
        st = root.lstat(path)
    except UnsafePath as exc:
        raise TransactionError(f"{package}: {exc.message}", hint=exc.hint) from None
    if kind == "dir" and st is not None and stat.S_ISLNK(st.st_mode):
        raise TransactionError(f"{package}: {root.where(path)} is a symlink where the package has a directory; "
                               "vcomp never follows a symlink inside a root",
                               hint="replace the symlink by a real directory (or remove it) and run the command again")
    return st


def plan_operations(root: Root, changes: Sequence[Change], before: Mapping[str, Mapping[str, Any]],
                    after: Mapping[str, Mapping[str, Any]], *, purge: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """The journal's operations and the notes for the user (kept or new config files)."""
    notes: list[str] = []
    owners_after = _owners(after)
    mkdirs, places, deletes, rmdirs = [], [], [], []
    for ch in changes:
        old = _entries(ch.old) if ch.old else {}
        new = _entries(after[ch.name]) if ch.new else {}
        old_config = dict(ch.old["config"]) if ch.old else {}
        for path, e in sorted(new.items()):
            st = _probe(root, path, ch.name, e["type"])
            if e["type"] == "dir":
                if st is None or not root.is_dir(path):
                    mkdirs.append({"op": "mkdir", "path": path, "mode": e["mode"]})
                continue
            if st is not None and stat.S_ISDIR(st.st_mode):
                raise TransactionError(f"{ch.name}: {root.where(path)} is a directory in the root where the package "
                                       f"has a {e['type']}; vcomp does not replace a directory by a file",
                                       hint="move the directory away (it is not a package's) and run the command again")
            place = {"op": "place", "path": path, "package": ch.name, "source": path}
            if e.get("role") == "config" and path in old_config:
                current = root.sha256(path)
                if current == old_config[path]:
                    places.append(place)
                elif e.get("sha256") == old_config[path]:
                    notes.append(f"kept /{path} (changed by the admin, unchanged in {ch.name})")
                elif current is None and st is None:
                    notes.append(f"/{path} stays deleted (removed by the admin)")
                else:
                    places.append({**place, "path": root.check(f"{path}.vpk-new")})
                    notes.append(f"kept /{path} (changed by the admin); the new version is /{path}.vpk-new")
                continue
            places.append(place)
        for path, e in sorted(old.items(), reverse=True):
            if path in new or owners_after.get(path, set()) - {ch.name}:
                continue
            st = _probe(root, path, ch.name, "")
            if e["type"] == "dir":
                rmdirs.append({"op": "rmdir", "path": path, "mode": e["mode"]})
            elif e.get("role") == "config" and not purge and root.sha256(path) not in (None, old_config.get(path)):
                deletes.append({"op": "save", "path": path})
                notes.append(f"kept /{path} as /{path}.vpk-save (changed by the admin; --purge removes it)")
            elif st is not None:
                deletes.append({"op": "delete", "path": path})
        if purge and ch.action == "remove":
            for path in sorted(old_config):
                if _probe(root, root.check(f"{path}.vpk-save"), ch.name, "") is not None:
                    deletes.append({"op": "delete", "path": f"{path}.vpk-save"})
    ops = [*sorted(mkdirs, key=lambda o: o["path"]), *deletes, *places,
           *sorted(rmdirs, key=lambda o: o["path"], reverse=True)]
    return ops, notes


# ---------------------------------------------------------------- the journal


def check_journal(doc: Any, origin: str) -> tuple[int, list[dict[str, Any]]]:
    """(transaction, operations) of a journal, every field validated; DatabaseError naming the entry otherwise."""
    dbcheck.want(doc, dict, origin, "the document")
    txid = dbcheck.natural(doc.get("transaction"), origin, "transaction")
    ops: list[dict[str, Any]] = []
    for i, o in enumerate(dbcheck.want(doc.get("ops"), list, origin, "ops")):
        where = f"ops[{i}]"
        dbcheck.want(o, dict, origin, where)
        kind = dbcheck.want(o.get("op"), str, origin, f"{where}.op")
        if kind not in OPS:
            raise dbcheck.fail(origin, f"{where}.op", f"{show(kind)} is not one of {', '.join(OPS)}")
        op: dict[str, Any] = {"op": kind, "path": dbcheck.rel_path(o.get("path"), origin, f"{where}.path")}
        for name in KINDS[kind].fields:
            op[name] = FIELDS[name](o.get(name), origin, f"{where}.{name}")
        ops.append(op)
    return txid, ops


def _mode(value: Any, origin: str, where: str) -> str:
    mode = str(dbcheck.want(value, str, origin, where))
    if not dbcheck.MODE.fullmatch(mode):
        raise dbcheck.fail(origin, where, f"{show(mode)} is not an octal mode")
    return mode


FIELDS: Mapping[str, Callable[[Any, str, str], str]] = {
    "mode": _mode, "package": dbcheck.name, "source": dbcheck.rel_path}


# ---------------------------------------------------------------- doing and undoing


@dataclass(frozen=True, slots=True, kw_only=True)
class _At:
    """One journal operation in context: the root, the staging tree, the op's index (its backup) and fields."""

    root: Root
    stage: Root
    index: int
    op: Mapping[str, Any]
    crash: _Crash | None = None

    @property
    def path(self) -> str:
        return str(self.op["path"])

    @property
    def backup(self) -> str:
        return _backup(self.index)

    @property
    def mode(self) -> int:
        return int(self.op["mode"], 8)

    def point(self) -> None:
        if self.crash is not None:
            self.crash.point()


def _do_mkdir(at: _At) -> None:
    at.root.mkdir(at.path, at.mode)


def _undo_mkdir(at: _At) -> None:
    if at.root.is_dir(at.path) and not at.root.listdir(at.path):
        at.root.rmdir(at.path)


def _do_rmdir(at: _At) -> None:
    with contextlib.suppress(OSError):  # not empty: something not owned by a package lives there; keep it
        at.root.rmdir(at.path)


def _undo_rmdir(at: _At) -> None:
    if not at.root.exists(at.path):
        at.root.mkdir(at.path, at.mode)


def _do_save(at: _At) -> None:
    at.root.rename(at.path, f"{at.path}.vpk-save")


def _undo_save(at: _At) -> None:
    if at.root.exists(f"{at.path}.vpk-save") and not at.root.exists(at.path):
        at.root.rename(f"{at.path}.vpk-save", at.path)


def _do_delete(at: _At) -> None:
    move(at.root, at.path, at.stage, at.backup)


def _undo_delete(at: _At) -> None:
    if at.stage.exists(at.backup):
        move(at.stage, at.backup, at.root, at.path)


def _do_place(at: _At) -> None:
    if at.root.exists(at.path):
        move(at.root, at.path, at.stage, at.backup)
        at.point()
    move(at.stage, _source(at.op), at.root, at.path)


def _undo_place(at: _At) -> None:
    if not at.stage.exists(_source(at.op)) and at.root.exists(at.path):  # it was placed: take it out again
        at.root.rmtree(at.path)
    _undo_delete(at)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Kind:
    do: Callable[[_At], None]
    undo: Callable[[_At], None]   # idempotent: recovery may run it twice
    fields: tuple[str, ...] = ()  # what a journal entry of this kind carries besides op and path


KINDS: Mapping[str, _Kind] = {
    "mkdir": _Kind(do=_do_mkdir, undo=_undo_mkdir, fields=("mode",)),
    "rmdir": _Kind(do=_do_rmdir, undo=_undo_rmdir, fields=("mode",)),
    "save": _Kind(do=_do_save, undo=_undo_save),
    "delete": _Kind(do=_do_delete, undo=_undo_delete),
    "place": _Kind(do=_do_place, undo=_undo_place, fields=("package", "source")),
}
OPS = tuple(KINDS)  # the operation kinds a journal may hold


def _do(root: Root, stage: Root, i: int, o: Mapping[str, Any], crash: _Crash) -> None:
    at = _At(root=root, stage=stage, index=i, op=o, crash=crash)
    KINDS[o["op"]].do(at)
    at.point()


def _undo(root: Root, stage: Root, i: int, o: Mapping[str, Any]) -> None:
    KINDS[o["op"]].undo(_At(root=root, stage=stage, index=i, op=o))


def _open_stage(parent: Root, name: str, *, fresh: bool) -> Root:
    if fresh:
        parent.rmtree(name)
    if not parent.exists(name):
        parent.mkdir(name, 0o700)
    return parent.subdir(name)


def recover(root: Path) -> str | None:
    """Finish or roll back an interrupted transaction; returns what was done (None: nothing to do)."""
    stage_path = stage_dir(root)
    with Root.open(root) as r:
        if not r.exists(JOURNAL_REL):
            return None
        doc, origin = db.read_document(r, JOURNAL)
        txid, ops = check_journal(doc, origin)  # a journal failing validation: one error, nothing done
        committed = db.load(r).transaction >= txid
        with Root.open(stage_path.parent) as parent:
            if not committed:
                with _open_stage(parent, stage_path.name, fresh=False) as stage:
                    for i in reversed(range(len(ops))):
                        _undo(r, stage, i, ops[i])
            parent.rmtree(stage_path.name)
        r.unlink(JOURNAL_REL)
    return f"transaction {txid} was interrupted: " + ("finished (it had committed)" if committed else "rolled back")


def apply(root: Path, changes: Sequence[Change], *, operation: str, cause: str, epoch: int,
          purge: bool = False) -> Outcome:
    recover(root)
    stage_path = stage_dir(root)
    with Root.open(root) as r, Root.open(stage_path.parent) as parent:
        current = db.load(r)
        before = {k: dict(v) for k, v in current.packages.items()}
        after = dict(before)
        txid = current.transaction + 1
        crash = _Crash()
        with _open_stage(parent, stage_path.name, fresh=True) as stage:
            try:
                stage.mkdir("backup", 0o700)
                stage.mkdir("new", 0o700)
                for ch in changes:
                    if ch.action == "remove":
                        after.pop(ch.name, None)
                        continue
                    assert ch.new is not None
                    stage.mkdir(f"new/{ch.name}", 0o700)
                    with stage.subdir(f"new/{ch.name}") as dest:
                        result = extract_package(ch.new.path, dest, trusted=ch.new.key)
                    record = package_record(ch.new, read_header(ch.new.path), signer=result.signer.keyid)
                    record["manual"] = ch.manual
                    after[ch.name] = record
                problems = _conflicts(after)
                if problems:
                    raise TransactionError("file conflicts:\n    " + "\n    ".join(problems),
                                           hint="the root is unchanged; remove one of the packages first")
                ops, notes = plan_operations(r, changes, before, after, purge=purge)
            except BaseException:
                parent.rmtree(stage_path.name)
                raise
            r.makedirs(db.DB_REL)
            r.write_bytes(JOURNAL_REL, json.dumps({"transaction": txid, "ops": ops}, sort_keys=True).encode())
            crash.point()
            for i, o in enumerate(ops):
                _do(r, stage, i, o, crash)
        entry = {"id": txid, "time": epoch, "operation": operation, "cause": cause,
                 "packages": [{"name": ch.name, "action": ch.action, "old": ch.old["version"] if ch.old else None,
                               "new": ch.new.locked.version if ch.new else None} for ch in changes]}
        db.save(r, after, [*current.history, entry], txid, between=crash.point)
        crash.point()
        parent.rmtree(stage_path.name)
        r.unlink(JOURNAL_REL)
    return Outcome(transaction=txid, changes=tuple(changes), notes=notes)

