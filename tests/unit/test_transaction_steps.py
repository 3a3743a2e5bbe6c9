"""Every journal operation's do (redo) and undo are idempotent, and undo after do gives back the state before,
however many times each runs and wherever a previous run stopped (the basis of crash-safe recovery)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from composer.pkgmgr.steps import do, undo
from composer.rootfs import Root


def state(top: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in sorted(top.rglob("*")):
        rel = p.relative_to(top).as_posix()
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()[:12] if p.is_file() else oct(p.stat().st_mode)
    return out


def world(tmp: Path) -> tuple[Path, Path]:
    root, stage = tmp / "root", tmp / "stage"
    (root / "usr/share/app").mkdir(parents=True)
    (root / "usr/share/app/old").write_text("old\n")
    (root / "etc").mkdir()
    (root / "etc/app.conf").write_text("admin's\n")
    (root / "etc/app.conf.vpk-save").write_text("older save\n")
    (root / "usr/share/gone").mkdir()
    (stage / "backup").mkdir(parents=True)
    (stage / "new/app/usr/share/app").mkdir(parents=True)
    (stage / "new/app/usr/share/app/old").write_text("new\n")
    (stage / "new/app/usr/share/app/fresh").write_text("fresh\n")
    return root, stage


OPS = {
    "mkdir": {"op": "mkdir", "path": "usr/share/app/sub", "mode": "0750"},
    "rmdir": {"op": "rmdir", "path": "usr/share/gone", "mode": "0755"},
    "delete": {"op": "delete", "path": "usr/share/app/old"},
    "save": {"op": "save", "path": "etc/app.conf"},
    "place-over": {"op": "place", "path": "usr/share/app/old", "package": "app", "source": "usr/share/app/old"},
    "place-new": {"op": "place", "path": "usr/share/app/fresh", "package": "app", "source": "usr/share/app/fresh"},
}


def run(tmp: Path, step: Callable[..., None], o: dict[str, Any], times: int) -> None:
    with Root.open(tmp / "root") as r, Root.open(tmp / "stage") as s:
        for _ in range(times):
            step(r, s, 0, o)


@pytest.mark.parametrize("name", sorted(OPS))
def test_do_and_undo_are_idempotent_and_undo_restores(tmp_path: Path, name: str) -> None:
    o = OPS[name]
    world(tmp_path)
    before = state(tmp_path)
    run(tmp_path, do, o, 1)
    done = state(tmp_path)
    assert done != before, "the operation did nothing: the test would prove nothing"
    run(tmp_path, do, o, 2)  # redo of a done step: nothing more
    assert state(tmp_path) == done
    run(tmp_path, undo, o, 1)
    assert state(tmp_path) == before
    run(tmp_path, undo, o, 2)  # undo of an undone step: nothing more
    assert state(tmp_path) == before
    run(tmp_path, do, o, 1)  # and it can be redone after an undo
    assert state(tmp_path) == done


def test_undo_of_a_step_that_never_ran_changes_nothing(tmp_path: Path) -> None:
    world(tmp_path)
    before = state(tmp_path)
    for o in OPS.values():
        if o["op"] != "rmdir":  # rmdir's undo makes a missing directory: it never ran, the directory is there
            run(tmp_path, undo, o, 1)
    assert state(tmp_path) == before


def test_a_save_keeps_the_older_saved_copy_for_the_undo(tmp_path: Path) -> None:
    root, stage = world(tmp_path)
    run(tmp_path, do, OPS["save"], 1)
    assert (root / "etc/app.conf.vpk-save").read_text() == "admin's\n" and not (root / "etc/app.conf").exists()
    assert (stage / "backup/0").read_text() == "older save\n"
    run(tmp_path, undo, OPS["save"], 1)
    assert (root / "etc/app.conf").read_text() == "admin's\n"
    assert (root / "etc/app.conf.vpk-save").read_text() == "older save\n"
    assert os.listdir(stage / "backup") == []
