"""Directories in transactions (issue 12, finding 3): several packages bringing a directory none of them owned
before, parents a manifest only implies, and removal only when the last owner goes and the directory is empty."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from composer.pkgmgr import db
from composer.pkgmgr.install import Fetched, install
from composer.pkgmgr.transaction import RootChange, TransactionError, apply, stage_dir
from composer.trust.keys import SigningKey
from tests.hostile import directory, fetched, file, new_key

EPOCH = 1_700_000_000


class World:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root = tmp / "root"
        self.key: SigningKey = new_key()
        install(self.root, [self.package("base", "1.0.0", [directory("etc"), file("etc/base", b"base\n")])],
                profile_digest="p", lock_digest="l", epoch=EPOCH)

    def package(self, name: str, version: str, members: list[Any]) -> Fetched:
        return fetched(self.tmp / "pkgs", self.key, name, version, members)

    def records(self) -> dict[str, Any]:
        return {k: dict(v) for k, v in db.load(self.root).packages.items()}

    def install(self, *fetched: Fetched) -> None:
        apply(self.root, [RootChange(name=f.locked.name, action="install", new=f, manual=True) for f in fetched],
              operation="install", cause="test", epoch=EPOCH)

    def remove(self, *names: str) -> None:
        records = self.records()
        apply(self.root, [RootChange(name=n, action="remove", old=records[n]) for n in names], operation="remove",
              cause="test", epoch=EPOCH)


def shared(name: str) -> list[Any]:
    return [directory("usr"), directory("usr/share"), directory("usr/share/common"),
            directory(f"usr/share/common/{name}"), file(f"usr/share/common/{name}/data", f"{name}\n".encode())]


def test_packages_sharing_new_directories_install_together_and_leave_in_any_order(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.install(w.package("a", "1.0.0", shared("a")), w.package("b", "1.0.0", shared("b")))
    assert (w.root / "usr/share/common/a/data").read_text() == "a\n"
    assert (w.root / "usr/share/common/b/data").read_text() == "b\n"
    w.remove("a")  # b still owns usr/share/common: it stays
    assert (w.root / "usr/share/common/b/data").is_file() and not (w.root / "usr/share/common/a").exists()
    w.install(w.package("a", "1.0.0", shared("a")))  # again, beside b: no FileExistsError
    w.remove("a", "b")
    assert not (w.root / "usr").exists(), "the last owners left: their empty directories go"
    assert not stage_dir(w.root).exists()


def test_a_directory_holding_something_no_package_owns_is_kept(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.install(w.package("a", "1.0.0", shared("a")))
    (w.root / "usr/share/common/mine").write_text("admin's\n")
    w.remove("a")
    assert (w.root / "usr/share/common/mine").read_text() == "admin's\n"
    assert not (w.root / "usr/share/common/a").exists()


def test_implied_parents_are_made_recorded_and_removed(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.install(w.package("tool", "1.0.0", [file("opt/tool/bin/run", b"#!/bin/sh\n"), file("opt/tool/README", b"r\n")]))
    assert (w.root / "opt/tool/bin/run").is_file()
    assert oct((w.root / "opt/tool/bin").stat().st_mode & 0o777) == "0o755"
    dirs = {e["path"] for e in w.records()["tool"]["files"] if e["type"] == "dir"}
    assert dirs == {"opt", "opt/tool", "opt/tool/bin"}
    w.remove("tool")
    assert not (w.root / "opt").exists()


def test_a_file_where_a_package_has_a_directory_is_refused_before_anything_changes(tmp_path: Path) -> None:
    w = World(tmp_path)
    (w.root / "usr").write_text("not a directory\n")
    before = w.records()
    with pytest.raises(TransactionError, match="'usr' is a file in the root where the package has a directory"):
        w.install(w.package("a", "1.0.0", shared("a")))
    assert w.records() == before and not stage_dir(w.root).exists()
    assert sorted(os.listdir(w.root / "var/lib/vpk")) == ["db.json", "history.json", "lock"]
