"""The write-ahead journal of a root and the recovery of an interrupted transaction.

Files, all inside the root (so every rename stays on one file system, even when the root is a mount point):

- ``var/lib/vpk/lock``: the root's lock (``flock``); every transaction and every recovery holds it;
- ``var/lib/vpk/staging/``: ``new/PKG/...`` (extracted packages), ``backup/N`` (what operation N replaced),
  ``db.json`` and ``history.json`` (the database the transaction commits, for ``recover --retry``);
- ``var/lib/vpk/journal.json``: ``{"transaction": N, "ops": [...]}``, written (fsync, rename, fsync of the
  directory) after the staging tree is durable and before the first operation.

Recovery (the lock held) decides by the commit point, ``db.json``'s ``transaction``:

- the journal's transaction is committed: finish (redo every operation; each is idempotent);
- it is not: roll back (undo every operation in reverse, drop history entries past the commit).

Only then is the evidence removed: the journal first, then the staging tree (a staging tree without a
journal is garbage and is swept by the next lock holder). A kill at any moment of a recovery leaves
the journal in place, and the next recovery runs the same idempotent steps again.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from composer import lockfile, oserrors
from composer.errors import UserError
from composer.pkgmgr import db, dbcheck
from composer.pkgmgr.steps import KINDS, OPS, Crash, do, undo
from composer.rootfs import Root, show
from composer.rootfs.root import TMP_PREFIX

JOURNAL = "journal.json"
JOURNAL_REL = f"{db.DB_REL}/{JOURNAL}"
STAGING = "staging"
STAGING_REL = f"{db.DB_REL}/{STAGING}"
LOCK = "lock"
MODES = ("auto", "abort", "retry")


class JournalError(UserError):
    """The journal cannot be read or used: nothing was done; ``recover --abort|--retry`` resolves it."""


def repair_hint(root: Path | str) -> str:
    return (f"vcomp pkg --root {root} recover --abort drops it and keeps the committed database (then run "
            f"verify); an unreadable journal cannot be finished with recover --retry: restore the file to do that")


# ---------------------------------------------------------------- the lock


_held: set[tuple[int, int]] = set()


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """The exclusive lock of the root (``var/lib/vpk/lock``); a no-op when this process already holds it."""
    with Root.open(root) as r:
        st = os.fstat(r.fd)
        key = (st.st_dev, st.st_ino)
        if key in _held:
            yield
            return
        if not r.is_file(f"{db.DB_REL}/db.json"):
            db.load(r)  # not a root managed by vcomp: that error, and no lock file left in the directory
        shown = str(root / db.DB_REL / LOCK)   # (no '//' for the root /: vpk on a device)
        with contextlib.ExitStack() as stack:
            try:
                d = stack.enter_context(r.subdir(db.DB_REL))
                stack.enter_context(lockfile.exclusive_at(d.fd, LOCK, f"root {root}", shown=shown))
            except OSError as exc:  # a read-only root, a full one...: one line naming the lock file
                exc.filename = shown
                raise oserrors.fault(exc, "taking the root's lock") from None
            _held.add(key)
            try:
                yield
            finally:
                _held.discard(key)


# ---------------------------------------------------------------- durability


def sync_root(root: Root) -> None:
    """Make every change of the file system holding ``root`` durable (``syncfs(2)``, else ``sync(2)``)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(root.fd) == 0:
            return
    except (OSError, AttributeError):
        pass
    os.sync()


# ---------------------------------------------------------------- the journal document


def _mode(value: Any, origin: str, where: str) -> str:
    mode = str(dbcheck.want(value, str, origin, where))
    if not dbcheck.MODE.fullmatch(mode):
        raise dbcheck.fail(origin, where, f"{show(mode)} is not an octal mode")
    return mode


FIELDS: Mapping[str, Callable[[Any, str, str], str]] = {
    "mode": _mode, "package": dbcheck.name, "source": dbcheck.rel_path}


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


def write_journal(root: Root, txid: int, ops: list[dict[str, Any]]) -> None:
    root.write_bytes(JOURNAL_REL, json.dumps({"transaction": txid, "ops": ops}, sort_keys=True).encode())


def read_journal(root: Root, shown: Path | str) -> tuple[int, list[dict[str, Any]]] | None:
    """The pending journal (None: none); a journal that is not valid is one JournalError with the repair."""
    if not root.exists(JOURNAL_REL):
        return None
    try:
        doc, origin = db.read_document(root, JOURNAL)
        return check_journal(doc, origin)
    except dbcheck.DatabaseError as exc:
        raise JournalError(f"{exc.message}; the interrupted transaction cannot be resolved automatically",
                           hint=repair_hint(shown)) from None


def pending(root: Path) -> str | None:
    """For read-only commands (no lock): a line saying a transaction is pending, or None."""
    with Root.open(root) as r:
        if not r.exists(JOURNAL_REL):
            return None
        try:
            found = read_journal(r, root)
        except JournalError as exc:
            return exc.message
        txid = found[0] if found else "?"
        return (f"{root}/{JOURNAL_REL}: transaction {txid} is pending (interrupted, or running now); "
                f"run: vcomp pkg --root {root} recover")


# ---------------------------------------------------------------- recovery


def stage_of(root: Root, *, create: bool) -> Root:
    if create and not root.is_dir(STAGING_REL):
        root.makedirs(db.DB_REL)
        root.mkdir(STAGING_REL, 0o700)
    return root.subdir(STAGING_REL)


def finish(root: Root) -> None:
    """Drop the evidence of a resolved transaction: the journal (durably), then the staging tree."""
    if root.exists(JOURNAL_REL):
        root.unlink(JOURNAL_REL)
        with root.subdir(db.DB_REL) as d:
            os.fsync(d.fd)
    root.rmtree(STAGING_REL)


def _trim_history(root: Root, committed: int) -> None:
    doc, origin = db.read_document(root, "history.json", [])
    history = dbcheck.history(doc, origin)
    kept = [h for h in history if int(h["id"]) <= committed]
    if len(kept) != len(history):
        root.write_bytes(f"{db.DB_REL}/history.json", json.dumps(kept, indent=1, sort_keys=True).encode() + b"\n")


def _commit_staged(root: Root, stage: Root, shown: Path | str, txid: int) -> None:
    """``recover --retry`` of a transaction that had not committed: install the database it staged."""
    if not (stage.is_file("db.json") and stage.is_file("history.json")):
        raise JournalError(f"{shown}/{STAGING_REL}: the database of transaction {txid} was not staged; "
                           "it cannot be finished", hint=f"vcomp pkg --root {shown} recover --abort")
    raw = {n: stage.read_bytes(n, 1 << 30) for n in ("history.json", "db.json")}
    origin = f"{shown}/{STAGING_REL}/db.json"
    try:
        doc = json.loads(raw["db.json"])
        dbcheck.history(json.loads(raw["history.json"]), f"{shown}/{STAGING_REL}/history.json")
    except ValueError as exc:
        raise JournalError(f"{origin}: corrupt ({exc})", hint=f"vcomp pkg --root {shown} recover --abort") from None
    if dbcheck.database(doc, origin)[1] != txid:
        raise JournalError(f"{origin}: is not transaction {txid}", hint=f"vcomp pkg --root {shown} recover --abort")
    root.write_bytes(f"{db.DB_REL}/history.json", raw["history.json"])
    root.write_bytes(f"{db.DB_REL}/db.json", raw["db.json"])


def resolve(root: Root, shown: Path | str, txid: int, ops: list[dict[str, Any]], *, forward: bool,
            crash: Crash | None = None) -> None:
    """Finish (``forward``) or roll back the journal's transaction, then drop the evidence."""
    committed = db.load(root).transaction >= txid
    with stage_of(root, create=True) as stage:
        if forward:
            for i, o in enumerate(ops):
                do(root, stage, i, o, crash)
            sync_root(root)
            if not committed:
                _commit_staged(root, stage, shown, txid)
        else:
            for i in reversed(range(len(ops))):
                undo(root, stage, i, ops[i], crash)
            _trim_history(root, db.load(root).transaction)
            sync_root(root)
    finish(root)


# where vcomp replaces files atomically outside a transaction: the database, and the profile's settings
# (``composer.pkgmgr.configure.configure``, run by ``reconcile --root`` after its commit)
TEMPORARY_DIRS = (db.DB_REL, "etc", "etc/veridian", "etc/veridian/checks.d")
_TEMPORARY = re.compile(re.escape(TMP_PREFIX) + "[0-9a-f]{16}")


def _sweep_temporary(root: Root) -> None:
    """Temporary files of an atomic replace killed before its rename (``.vpk-tmp-`` + 16 hex): never data."""
    for directory in TEMPORARY_DIRS:
        if root.is_dir(directory):
            for name in root.listdir(directory):
                if _TEMPORARY.fullmatch(name) and root.is_file(f"{directory}/{name}"):
                    root.unlink(f"{directory}/{name}")


def recover(root: Path, mode: str = "auto") -> str | None:
    """Finish or roll back an interrupted transaction (the caller holds the lock); what was done, or None.

    ``auto`` decides by the commit point; ``abort`` rolls back (a committed transaction is only finished: its
    files are all in place); ``retry`` finishes it. A journal that cannot be read is a JournalError, except
    for ``abort``, which drops it and leaves the committed database (run verify afterwards)."""
    with Root.open(root) as r:
        _sweep_temporary(r)
        if not r.exists(JOURNAL_REL):
            if r.lstat(STAGING_REL) is not None:
                r.rmtree(STAGING_REL)  # left by a kill before the journal was written: nothing was changed
            return None
        try:
            found = read_journal(r, root)
        except JournalError:
            if mode != "abort":
                raise
            finish(r)
            return (f"dropped the unreadable journal; the database stays at transaction {db.load(r).transaction}: "
                    f"check the files with vcomp pkg --root {root} verify")
        assert found is not None
        txid, ops = found
        committed = db.load(r).transaction >= txid
        forward = committed or mode == "retry"
        resolve(r, root, txid, ops, forward=forward, crash=Crash())
    done = "finished" if forward else "rolled back"
    return f"transaction {txid} was interrupted: {done}" + (" (it had committed)" if committed else "")
