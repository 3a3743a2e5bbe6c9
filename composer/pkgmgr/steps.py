"""The operations a transaction journal holds, each with an idempotent *do* (redo) and *undo*.

Every operation works on one root-relative path, through :class:`composer.rootfs.Root` (directory
descriptors, no symlink followed). Its staging locations are derived, never read from the journal: the
new file of a ``place`` waits in ``staging/new/PACKAGE/SOURCE``, what an operation replaces is moved
to ``staging/backup/INDEX``. Both directions look at the state they find and do only what is left,
so recovery may run any of them any number of times (a kill during recovery recovers again):

====== ==================================================== ==============================================
op     do (redo)                                            undo
====== ==================================================== ==============================================
mkdir  make the directory when it is missing                remove it when it exists and is empty
rmdir  remove the directory when it exists and is empty     make it again when it is missing
delete move the file to its backup (unless already there)   move the backup back
save   keep an older ``.vpk-save`` in the backup, rename    rename ``.vpk-save`` back, restore the older one
       the file to ``PATH.vpk-save``
place  back up what is there, move the staged file in       move the placed file back to staging, restore
       (only while the staged file is still waiting)        the backup
====== ==================================================== ==============================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from composer import settings
from composer.rootfs import Root, move

CRASH_ENV = settings.TEST_CRASH_AT.name  # test hook: os._exit at the Nth crash point (a kill -9 stand-in)


class Crash:
    """The in-process crash hook: ``os._exit(137)`` at the Nth :meth:`point` when the variable is set."""

    def __init__(self) -> None:
        self.at = settings.TEST_CRASH_AT.get()
        self.count = 0

    def point(self) -> None:
        self.count += 1
        if self.count == self.at:
            os._exit(137)


def backup(index: int) -> str:
    return f"backup/{index}"


def source(o: Mapping[str, Any]) -> str:
    """Where a ``place`` operation's new file waits in the staging tree: derived, never read from the journal."""
    return f"new/{o['package']}/{o['source']}"


@dataclass(frozen=True, slots=True, kw_only=True)
class At:
    """One journal operation in context: the root, the staging tree, the op's index (its backup) and fields."""

    root: Root
    stage: Root
    index: int
    op: Mapping[str, Any]
    crash: Crash | None = None

    @property
    def path(self) -> str:
        return str(self.op["path"])

    @property
    def backup(self) -> str:
        return backup(self.index)

    @property
    def mode(self) -> int:
        return int(self.op["mode"], 8)

    def point(self) -> None:
        if self.crash is not None:
            self.crash.point()


def _empty_dir(root: Root, path: str) -> bool:
    return root.is_dir(path) and not root.listdir(path)


def _do_mkdir(at: At) -> None:
    if not at.root.is_dir(at.path):
        at.root.mkdir(at.path, at.mode)


def _undo_mkdir(at: At) -> None:
    if _empty_dir(at.root, at.path):
        at.root.rmdir(at.path)


def _do_rmdir(at: At) -> None:
    if _empty_dir(at.root, at.path):  # not empty: something no package owns lives there; keep it
        at.root.rmdir(at.path)


def _undo_rmdir(at: At) -> None:
    if not at.root.exists(at.path):
        at.root.mkdir(at.path, at.mode)


def _saved(at: At) -> str:
    return f"{at.path}.vpk-save"


def _do_save(at: At) -> None:
    if not at.root.exists(at.path):
        return  # done (or the admin removed it: nothing to keep)
    if at.root.exists(_saved(at)) and not at.stage.exists(at.backup):
        move(at.root, _saved(at), at.stage, at.backup)  # an older saved copy: kept for an undo
        at.point()
    at.root.rename(at.path, _saved(at))


def _undo_save(at: At) -> None:
    if at.root.exists(_saved(at)) and not at.root.exists(at.path):
        at.root.rename(_saved(at), at.path)
        at.point()
    if at.stage.exists(at.backup) and not at.root.exists(_saved(at)):
        move(at.stage, at.backup, at.root, _saved(at))


def _do_delete(at: At) -> None:
    if at.root.lstat(at.path) is not None and not at.stage.exists(at.backup):
        move(at.root, at.path, at.stage, at.backup)


def _undo_delete(at: At) -> None:
    if at.stage.exists(at.backup):
        move(at.stage, at.backup, at.root, at.path)


def _do_place(at: At) -> None:
    if not at.stage.exists(source(at.op)):
        return  # placed already
    if at.root.lstat(at.path) is not None and not at.stage.exists(at.backup):
        move(at.root, at.path, at.stage, at.backup)
        at.point()
    move(at.stage, source(at.op), at.root, at.path)


def _undo_place(at: At) -> None:
    # the staged file gone (while its package's staging directory is there) is the evidence it was placed
    there = at.root.lstat(at.path) is not None  # first: a path through a planted symlink is refused here
    if there and at.stage.is_dir(f"new/{at.op['package']}") and not at.stage.exists(source(at.op)):
        at.stage.makedirs(source(at.op).rpartition("/")[0], 0o700)
        move(at.root, at.path, at.stage, source(at.op))  # it was placed: back to where it waited
        at.point()
    _undo_delete(at)


@dataclass(frozen=True, slots=True, kw_only=True)
class Kind:
    do: Callable[[At], None]      # idempotent: roll-forward recovery may run it again
    undo: Callable[[At], None]    # idempotent: roll-back recovery may run it twice
    fields: tuple[str, ...] = ()  # what a journal entry of this kind carries besides op and path


KINDS: Mapping[str, Kind] = {
    "mkdir": Kind(do=_do_mkdir, undo=_undo_mkdir, fields=("mode",)),
    "rmdir": Kind(do=_do_rmdir, undo=_undo_rmdir, fields=("mode",)),
    "save": Kind(do=_do_save, undo=_undo_save),
    "delete": Kind(do=_do_delete, undo=_undo_delete),
    "place": Kind(do=_do_place, undo=_undo_place, fields=("package", "source")),
}
OPS = tuple(KINDS)  # the operation kinds a journal may hold


def do(root: Root, stage: Root, i: int, o: Mapping[str, Any], crash: Crash | None = None) -> None:
    at = At(root=root, stage=stage, index=i, op=o, crash=crash)
    KINDS[o["op"]].do(at)
    at.point()


def undo(root: Root, stage: Root, i: int, o: Mapping[str, Any], crash: Crash | None = None) -> None:
    at = At(root=root, stage=stage, index=i, op=o, crash=crash)
    KINDS[o["op"]].undo(at)
    at.point()
