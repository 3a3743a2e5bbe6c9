"""Atomic transactions on a root: stage inside it, journal, rename into place, commit the database last.

1. under the root's lock (``var/lib/vpk/lock``), any interrupted transaction is recovered first;
2. every new package is verified and extracted into the staging tree inside the root
   (``var/lib/vpk/staging/new/PKG/``: the same file system, so every move is a ``rename(2)``, even when the
   root is a mount point), file conflicts are checked against the final set of packages, and every
   target path is probed in the root without following a symlink (a symlinked component refuses the
   transaction before anything changed);
3. the database the transaction will commit is staged too, the staging tree is made durable, and the
   journal (``var/lib/vpk/journal.json``) lists every operation (mkdir, place, delete, save, rmdir)
   before the first one runs (see ``composer.pkgmgr.journal`` for the protocol and the recovery,
   ``composer.pkgmgr.steps`` for the idempotent do/undo of each operation);
4. the operations run, the root is made durable, ``history.json`` then ``db.json`` are replaced (the
   commit point), then the journal is removed and the staging tree after it.

Directories are reference-counted through the database: every package whose manifest lists a directory
owns it; it is made once however many packages of a transaction bring it (and parents a manifest only
implies are made too and recorded as the package's), and removed only when its last owner goes and it
is empty. A failure while the operations run (ENOSPC, EROFS...) rolls back at once.

Config files follow dpkg's rules without prompting: on upgrade an unmodified file is replaced, a
modified file whose package version did not change is kept, and when both changed the admin's is kept
and the new one written as ``PATH.vpk-new``; on removal a modified file is kept as ``PATH.vpk-save``
(``purge`` removes it).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.errors import UserError
from composer.package.archive import read_header
from composer.package.extract import extract_package
from composer.pkgmgr import db
from composer.pkgmgr.actions import changed_actions
from composer.pkgmgr.install import Fetched, package_record
from composer.pkgmgr.journal import (
    JOURNAL,
    JOURNAL_REL,
    STAGING_REL,
    check_journal,
    finish,
    locked,
    recover,
    resolve,
    stage_of,
    sync_root,
    write_journal,
)
from composer.pkgmgr.steps import CRASH_ENV, KINDS, OPS, Crash, do
from composer.repo.index import IndexEntry
from composer.rootfs import Root, UnsafePath
from composer.solve.lockmodel import LockedPackage

__all__ = [
    "CRASH_ENV",
    "JOURNAL",
    "JOURNAL_REL",
    "KINDS",
    "OPS",
    "Outcome",
    "RootChange",
    "TransactionError",
    "apply",
    "check_journal",
    "locked",
    "plan_operations",
    "recover",
    "stage_dir",
]


class TransactionError(UserError):
    """The transaction cannot be applied (conflicts, broken dependencies); the root is unchanged."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Pending:
    """A package libsolv chose, to be fetched and verified before the transaction."""

    entry: IndexEntry
    origin: str
    reason: str
    granted: tuple[str, ...]

    @property
    def version(self) -> str:
        return self.entry.version_text


@dataclass(frozen=True, slots=True, kw_only=True)
class RootChange:
    name: str
    action: str                           # install | remove | upgrade | downgrade | reinstall
    old: Mapping[str, Any] | None = None  # the installed record
    new: Fetched | None = None
    manual: bool = False
    pending: Pending | LockedPackage | None = None  # what to fetch for ``new``, before it is fetched

    @property
    def line(self) -> str:
        sym = {"install": "+", "remove": "-"}.get(self.action, "~")
        old = self.old["version"] if self.old else ""
        new = self.new.locked.version if self.new else self.pending.version if self.pending else ""
        arrow = f"{old} -> {new}" if old and new else (new or old)
        reason = str(self.new.locked.reason if self.new else self.pending.reason if self.pending else "")
        return f"{sym} {self.name} {arrow} ({self.action}{', ' + reason if reason else ''})"

    def to_dict(self) -> dict[str, Any]:
        """The change as ``vcomp pkg --root DIR install|remove|... --json`` reports it (pure)."""
        new = self.new.locked.version if self.new else self.pending.version if self.pending else None
        reason = str(self.new.locked.reason if self.new else self.pending.reason if self.pending else "")
        return {"name": self.name, "action": self.action, "old": self.old["version"] if self.old else None,
                "new": new, "reason": reason or None}


@dataclass(kw_only=True)
class Outcome:
    transaction: int
    changes: tuple[RootChange, ...]
    notes: list[str] = field(default_factory=list)


def stage_dir(root: Path) -> Path:
    """Where the staging tree of ``root`` lives (inside it)."""
    return root / STAGING_REL


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


def plan_operations(root: Root, changes: Sequence[RootChange], before: Mapping[str, Mapping[str, Any]],
                    after: Mapping[str, Mapping[str, Any]], *, purge: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """The journal's operations and the notes for the user (kept or new config files)."""
    notes: list[str] = []
    owners_after = _owners(after)
    mkdirs: dict[str, dict[str, Any]] = {}  # one mkdir per directory, however many packages bring it
    rmdirs: dict[str, dict[str, Any]] = {}
    places, deletes = [], []
    for ch in changes:
        old = _entries(ch.old) if ch.old else {}
        new = _entries(after[ch.name]) if ch.new else {}
        old_config = dict(ch.old["config"]) if ch.old else {}
        for path, e in sorted(new.items()):
            st = _probe(root, path, ch.name, e["type"])
            if e["type"] == "dir":
                if st is not None and not stat.S_ISDIR(st.st_mode):
                    raise TransactionError(f"{ch.name}: {root.where(path)} is a {_kind(st)} in the root where the "
                                           "package has a directory; vcomp does not replace it",
                                           hint="move it away (it is not a package's) and run the command again")
                if st is None:
                    mkdirs.setdefault(path, {"op": "mkdir", "path": path, "mode": e["mode"]})
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
                rmdirs.setdefault(path, {"op": "rmdir", "path": path, "mode": e["mode"]})
            elif e.get("role") == "config" and not purge and root.sha256(path) not in (None, old_config.get(path)):
                deletes.append({"op": "save", "path": path})
                notes.append(f"kept /{path} as /{path}.vpk-save (changed by the admin; --purge removes it)")
            elif st is not None:
                deletes.append({"op": "delete", "path": path})
        if purge and ch.action == "remove":
            for path in sorted(old_config):
                if _probe(root, root.check(f"{path}.vpk-save"), ch.name, "") is not None:
                    deletes.append({"op": "delete", "path": f"{path}.vpk-save"})
    ops = [*(mkdirs[p] for p in sorted(mkdirs)), *deletes, *places,
           *(rmdirs[p] for p in sorted(rmdirs, reverse=True) if p not in mkdirs)]
    return ops, notes


def _kind(st: object) -> str:
    mode = getattr(st, "st_mode", 0)
    return "symlink" if stat.S_ISLNK(mode) else "file" if stat.S_ISREG(mode) else "special file"


def add_implied_dirs(root: Root, record: dict[str, Any], final: Mapping[str, Mapping[str, Any]]) -> None:
    """Parents a manifest only implies (no ``dir`` entry, missing in the root, owned by no package of the
    final set): recorded as the package's own directories (0755), so they are made and later removed."""
    listed = {e["path"] for r in final.values() for e in r["files"]}
    implied: set[str] = set()
    for e in record["files"]:
        parts = e["path"].split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            parent = "/".join(parts[:depth])
            if parent not in listed and parent not in implied and root.lstat(parent) is None:
                implied.add(parent)
    record["files"] = [*record["files"],
                       *({"path": p, "type": "dir", "mode": "0755"} for p in sorted(implied))]




# ---------------------------------------------------------------- applying


def _stage_packages(root: Root, stage: Root, changes: Sequence[RootChange],
                    before: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Extract every new package into the staging tree; the final set of records."""
    after = {k: dict(v) for k, v in before.items()}
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
    for ch in changes:
        if ch.new is not None:
            add_implied_dirs(root, after[ch.name], after)
    return after


def _refuse_actions(changes: Sequence[RootChange], before: Mapping[str, Mapping[str, Any]],
                    after: Mapping[str, Mapping[str, Any]]) -> None:
    """Packages with ``[actions]`` (users, tmpfiles, alternatives...) are applied by an image build only, for now."""
    names = changed_actions([(ch.name, before.get(ch.name), after.get(ch.name)) for ch in changes])
    if names:
        raise TransactionError(f"{', '.join(names)}: declares [actions] (users, tmpfiles, alternatives, services...) "
                               "that this transaction would add, change or remove; the package manager on a root "
                               "does not apply actions yet", hint="build a new image with the package (vcomp build "
                               "PROFILE); the root is unchanged")


def _history_entry(txid: int, changes: Sequence[RootChange], *, operation: str, cause: str, command: str,
                   epoch: int) -> dict[str, Any]:
    """One ``history.json`` entry (read back by ``composer.pkgmgr.history``): ``command`` and ``cause`` only
    when given, so an entry without them stays byte-identical to the ones written before they existed."""
    return {"id": txid, "time": epoch, "operation": operation,
            **({"cause": cause} if cause else {}), **({"command": command} if command else {}),
            "packages": [{"name": ch.name, "action": ch.action, "old": ch.old["version"] if ch.old else None,
                          "new": ch.new.locked.version if ch.new else None} for ch in changes]}


def apply(root: Path, changes: Sequence[RootChange], *, operation: str, epoch: int, cause: str = "",
          command: str = "", purge: bool = False) -> Outcome:
    """Apply ``changes`` as one transaction (taking the root's lock unless this process holds it).

    ``epoch`` is the time its history entry records, passed in by the caller: the wall clock for the package
    manager on a root (read by the CLI), SOURCE_DATE_EPOCH for a reproducible reconcile; ``command`` is the
    command line as typed (shell-quoted), ``cause`` why it ran when no one typed it (``lock DIGEST``)."""
    with locked(root):
        note = recover(root)
        with Root.open(root) as r:
            return _apply(r, root, changes, operation=operation, cause=cause, command=command, epoch=epoch,
                          purge=purge, notes=[note] if note else [])


def _apply(r: Root, root: Path, changes: Sequence[RootChange], *, operation: str, cause: str, command: str,
           epoch: int, purge: bool, notes: list[str]) -> Outcome:
    current = db.load(r)
    before = {k: dict(v) for k, v in current.packages.items()}
    txid = current.transaction + 1
    crash = Crash()
    r.rmtree(STAGING_REL)
    try:
        with stage_of(r, create=True) as stage:
            after = _stage_packages(r, stage, changes, before)
            _refuse_actions(changes, before, after)
            problems = _conflicts(after)
            if problems:
                raise TransactionError("file conflicts:\n    " + "\n    ".join(problems),
                                       hint="the root is unchanged; remove one of the packages first")
            ops, more = plan_operations(r, changes, before, after, purge=purge)
            history = [*current.history, _history_entry(txid, changes, operation=operation, cause=cause,
                                                        command=command, epoch=epoch)]
            staged = db.serialise(after, history, txid)
            stage.write_bytes("history.json", staged.history, durable=False)
            stage.write_bytes("db.json", staged.database, durable=False)
        sync_root(r)  # the staged files and the database to commit are durable before the journal names them
        write_journal(r, txid, ops)  # durable (fsync of the file and of its directory) before the first operation
    except BaseException:
        if r.exists(JOURNAL_REL):  # written, then a failure (its directory's fsync): nothing ran; the journal
            r.unlink(JOURNAL_REL)  # goes first, the staging tree it names after it
        r.rmtree(STAGING_REL)
        raise
    crash.point()
    try:
        with stage_of(r, create=False) as stage:
            for i, o in enumerate(ops):
                do(r, stage, i, o, crash)
        sync_root(r)  # every rename durable before the commit point
        db.save(r, after, history, txid, between=crash.point)
    except Exception:
        if db.load(r).transaction < txid:  # not committed: roll back now (a kill here leaves it to recovery)
            with contextlib.suppress(Exception):  # cannot roll back either: the journal stays for recovery
                resolve(r, root, txid, ops, forward=False)
        raise
    crash.point()
    finish(r)
    return Outcome(transaction=txid, changes=tuple(changes), notes=[*notes, *more])
