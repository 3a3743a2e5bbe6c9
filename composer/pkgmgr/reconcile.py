"""``vcomp reconcile --root DIR PROFILE``: a root made to match a profile's lock, as one transaction.

The difference between the root's database and the lock's rows of the root's architecture is fetched
(verified through TUF), applied as one transaction and the root configured again. Progress (a recovered
transaction, each change) goes to ``say``; the result is returned, never printed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from composer.errors import UserError
from composer.pkgmgr import db
from composer.pkgmgr.configure import configure
from composer.pkgmgr.ops import fetch_locked_changes, reconcile_changes
from composer.pkgmgr.transaction import apply, locked, recover
from composer.solve.relock import load_locked


@dataclass(frozen=True, slots=True, kw_only=True)
class RootReconciled:
    root: Path
    lock_name: str                  # PROFILE.lock (the file name)
    arch: str                       # the root's architecture
    changes: int                    # 0: the root already matched (configured again, nothing else done)
    transaction: int | None = None
    notes: tuple[str, ...] = ()


def reconcile_root(root: Path, profile_path: Path, *, epoch: int, say: Callable[[str], None]) -> RootReconciled:
    """Apply the difference between a root's packages and a profile's lock as one transaction, under the root's
    lock from reading its database to the commit."""
    with locked(root):
        return _reconcile_root(root, profile_path, epoch=epoch, say=say)


def _reconcile_root(root: Path, path: Path, *, epoch: int, say: Callable[[str], None]) -> RootReconciled:
    profile, lock, lock_digest, sources = load_locked(path)
    note = recover(root)
    if note:
        say(f"vcomp: {note}")
    database = db.load(root)
    arches = {p["arch"] for p in database.packages.values()} - {"noarch"}
    arch = next(iter(sorted(arches)), profile.architectures[0])
    if arch not in lock.architectures:
        raise UserError(f"the lock of {path} has no {arch} packages (the root's architecture)")
    lock_name = path.with_suffix(".lock").name
    changes = reconcile_changes(database, lock.architectures[arch])
    if not changes:  # configure again (idempotent): finishes a reconcile killed after its commit
        configure(root, profile, arch, {k: dict(v) for k, v in database.packages.items()})
        return RootReconciled(root=root, lock_name=lock_name, arch=arch, changes=0)
    for ch in changes:
        say(ch.line)
    outcome = apply(root, fetch_locked_changes(sources, changes, arch), operation="reconcile",
                    cause=f"lock {lock_digest}", epoch=epoch)
    configure(root, profile, arch, {k: dict(v) for k, v in db.load(root).packages.items()})
    return RootReconciled(root=root, lock_name=lock_name, arch=arch, changes=len(changes),
                          transaction=outcome.transaction, notes=tuple(outcome.notes))
