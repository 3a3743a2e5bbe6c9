"""Admin-grade history of a root (issue 15, deliver 7): wall-clock times for the package manager's transactions
(the build keeps SOURCE_DATE_EPOCH), the command as typed, one readable line per entry, ``--json`` valid against
schemas/history.schema.json, and a rollback that changes only its transaction's packages."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from composer.cli.main import main
from composer.pkgmgr import db, history, ops
from composer.pkgmgr.install import install
from composer.pkgmgr.transaction import RootChange, TransactionError, apply
from tests.conftest import REPO
from tests.hostile import directory, fetched, file, new_key

EPOCH = 1_700_000_000
SCHEMA = json.loads((REPO / "schemas" / "history.schema.json").read_text())
BUILD = {"id": 1, "time": EPOCH, "operation": "install", "cause": {"profile": "a" * 64, "lock": "b" * 64},
         "packages": [{"name": f"p{i}", "action": "install", "old": None, "new": "1.0.0"} for i in range(14)]}
LEGACY = {"id": 2, "time": EPOCH, "operation": "upgrade", "cause": "vcomp pkg --root /r upgrade motd",
          "packages": [{"name": "motd", "action": "upgrade", "old": "1.0.0", "new": "1.1.0"}]}
NEW = {"id": 3, "time": 1_796_400_000, "operation": "rollback of 2", "command": "vcomp pkg --root '/my root' rollback",
       "packages": [{"name": "motd", "action": "downgrade", "old": "1.1.0", "new": "1.0.0"}]}
RECONCILE = {"id": 4, "time": EPOCH, "operation": "reconcile", "cause": "lock " + "c" * 64,
             "packages": [{"name": "motd", "action": "remove", "old": "1.0.0", "new": None}]}


def validate(doc: Any) -> None:
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)


def test_every_entry_is_one_line_of_text_never_a_raw_dict() -> None:
    lines = history.lines([BUILD, LEGACY, NEW, RECONCILE])
    assert lines == [
        "   1  2023-11-14 22:13:20 UTC  install          p0 1.0.0, p1 1.0.0, p2 1.0.0, p3 1.0.0, p4 1.0.0, p5 1.0.0"
        " and 8 more  (build of profile aaaaaaaaaaaa, lock bbbbbbbbbbbb)",
        "   2  2023-11-14 22:13:20 UTC  upgrade          motd 1.0.0 -> 1.1.0  (vcomp pkg --root /r upgrade motd)",
        "   3  2026-12-04 16:00:00 UTC  rollback of 2    motd 1.1.0 -> 1.0.0  (vcomp pkg --root '/my root' rollback)",
        "   4  2023-11-14 22:13:20 UTC  reconcile        motd 1.0.0  (lock " + "c" * 64 + ")",
    ]
    assert not any("{" in line or "\n" in line for line in lines)


def test_a_legacy_entry_reads_its_command_from_the_cause() -> None:
    e = history.HistoryEntry.from_dict(LEGACY)
    assert (e.command, e.cause) == ("vcomp pkg --root /r upgrade motd", None)
    assert history.HistoryEntry.from_dict(BUILD).command is None


def test_the_json_document_validates_against_its_schema() -> None:
    doc = history.document([BUILD, LEGACY, NEW, RECONCILE])
    validate(doc)
    assert doc["format_version"] == history.FORMAT_VERSION
    assert [t["time_utc"] for t in doc["transactions"]][2] == "2026-12-04 16:00:00 UTC"
    validate(history.document([]))
    with pytest.raises(jsonschema.ValidationError):
        validate({"format_version": "1.0", "transactions": [{**doc["transactions"][0], "cause": {"lock": "x"}}]})


# ---------------------------------------------------------------- a real root, through the CLI


def make_root(tmp: Path) -> Path:
    """A root 'built' at SOURCE_DATE_EPOCH (transaction 1) holding base and app."""
    key = new_key()
    root = tmp / "my root"
    pkgs = [fetched(tmp / "pkgs", key, "base", "1.0.0", [directory("etc"), file("etc/base", b"base\n")]),
            fetched(tmp / "pkgs", key, "app", "1.0.0", [directory("etc"), file("etc/app", b"app\n")])]
    install(root, pkgs, profile_digest="p" * 64, lock_digest="l" * 64, epoch=EPOCH)
    return root


def test_a_root_transaction_records_the_wall_clock_and_the_command_as_typed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path)
    argv = ["pkg", "--root", str(root), "remove", "app"]
    before = int(time.time())
    assert main(argv) == 0
    after = int(time.time())
    build, removal = db.load(root).history
    assert build["time"] == EPOCH, "the build keeps SOURCE_DATE_EPOCH"
    assert before <= removal["time"] <= after, "the package manager records the wall clock"
    assert removal["command"] == shlex.join(["vcomp", *argv]) == f"vcomp pkg --root '{root}' remove app"
    assert "cause" not in removal
    capsys.readouterr()
    assert main(["pkg", "--root", str(root), "history"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("   1  2023-11-14 22:13:20 UTC  install ")
    assert lines[1].endswith(f"app 1.0.0  (vcomp pkg --root '{root}' remove app)")
    assert main(["pkg", "--root", str(root), "history", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    validate(doc)
    assert [t["command"] for t in doc["transactions"]] == [None, shlex.join(["vcomp", *argv])]


def test_a_reconcile_style_transaction_keeps_the_time_it_is_given(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    records = db.load(root).packages
    apply(root, [RootChange(name="app", action="remove", old=records["app"])], operation="reconcile",
          cause="lock " + "c" * 64, epoch=EPOCH)
    entry = db.load(root).history[-1]
    assert entry["time"] == EPOCH and entry["cause"] == "lock " + "c" * 64 and "command" not in entry


# ---------------------------------------------------------------- rollback: only what the transaction changed


def change(name: str, action: str) -> RootChange:
    return RootChange(name=name, action=action, old={"version": "1.0.0"})


def test_rolling_back_a_one_package_upgrade_changes_one_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """The solver, asked for the exact set, proposes 14 same-version reinstalls (rebuilt in the repositories)
    besides the downgrade: the rollback keeps only the downgrade."""
    proposed = [change("motd", "downgrade"), *(change(f"p{i}", "reinstall") for i in range(14))]
    monkeypatch.setattr(ops, "solve", lambda *_a, **_k: proposed)
    database = db.Database(packages={}, history=[BUILD, LEGACY], transaction=2,
                           repositories=[])
    txid, changes = ops.rollback_changes(None, database, None)  # type: ignore[arg-type]
    assert txid == 2
    assert [(c.name, c.action) for c in changes] == [("motd", "downgrade")]


def test_a_rollback_that_would_change_another_package_is_refused() -> None:
    with pytest.raises(TransactionError, match=r"rolling back transaction 2 would also change p3 \(upgrade\)"):
        ops.only_touched(2, [change("motd", "downgrade"), change("p3", "upgrade")], {"motd"})
