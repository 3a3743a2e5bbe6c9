"""The repository state in SQLite (composer/repo/statedb.py): queries, one-transaction writes, the import of a
legacy state.json, damaged files as one line, and the repair's fast path (no role read when none changed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from composer.cli.main import main
from composer.errors import UserError
from composer.repo import edit, guard, statedb
from composer.repo.store import RepoStore
from tests.repo_fixtures import ARCH, Repo


def entry(name: str, version: str, arch: str = "x86_64") -> dict[str, Any]:
    path = f"packages/{name}/{name}-{version}-{arch}.vpk"
    return {"path": path, "name": name, "version": version, "arch": arch, "sha256": f"{version}".ljust(64, "0")}


def test_put_get_and_bounded_queries(tmp_path: Path) -> None:
    assert statedb.open_state(tmp_path, write=False) is None          # a reader of a repository without one
    db = statedb.open_state(tmp_path, write=True)
    assert db is not None and db.count() == 0
    db.put([entry("hello", "1.0"), entry("hello", "1.1"), entry("hello", "1.0", "aarch64"), entry("libfoo", "2")],
           meta={"images": {"index/x.caidx.json": {"length": 3, "sha256": "ab"}}})
    assert db.get("packages/hello/hello-1.1-x86_64.vpk") == entry("hello", "1.1")
    assert db.get("packages/nope/nope-1-x86_64.vpk") is None
    assert [e["version"] for e in db.versions("hello", "x86_64")] == ["1.0", "1.1"]
    assert sorted(db.packages(["aarch64"])) == ["packages/hello/hello-1.0-aarch64.vpk"]
    assert db.count() == 4 and db.meta("images") == {"index/x.caidx.json": {"length": 3, "sha256": "ab"}}
    db.replace({e["path"]: e for e in (entry("hello", "1.1"), entry("zed", "1"))}, {}, drop_meta=["images"])
    assert sorted(db.digests()) == ["packages/hello/hello-1.1-x86_64.vpk", "packages/zed/zed-1-x86_64.vpk"]
    assert db.meta("images") is None
    db.close()
    reader = statedb.open_state(tmp_path, write=False)
    assert reader is not None and reader.count() == 2


def scanned(db: statedb.StateDB) -> int:
    return int(db.conn.execute("SELECT count(*) FROM packages").fetchone()[0])


def test_the_kept_count_follows_every_insert_replace_and_delete(tmp_path: Path) -> None:
    db = statedb.open_state(tmp_path, write=True)
    assert db is not None
    db.put([entry("a", "1"), entry("a", "2"), entry("b", "1")])
    db.put([entry("a", "2"), entry("b", "1")])                     # INSERT OR REPLACE of rows already there
    assert db.count() == scanned(db) == 3
    db.replace({e["path"]: e for e in (entry("a", "2"), entry("c", "1"), entry("d", "1"))}, {}, drop_meta=[])
    assert db.count() == scanned(db) == 3
    db.replace({}, {}, drop_meta=[])
    assert db.count() == scanned(db) == 0
    db.close()


def test_a_schema_2_database_gains_the_count(tmp_path: Path) -> None:
    db = statedb.open_state(tmp_path, write=True)
    assert db is not None
    db.put([entry("a", "1"), entry("b", "1")])
    with db.conn:   # back to schema 2: no counts table, no triggers
        for name in ("packages_counted", "packages_uncounted"):
            db.conn.execute(f"DROP TRIGGER {name}")
        db.conn.execute("DROP TABLE counts")
        db.conn.execute("PRAGMA user_version = 2")
    db.close()
    reader = statedb.open_state(tmp_path, write=False)
    assert reader is not None and reader.count() == 2   # (read-only: scanned)
    reader.close()
    db = statedb.open_state(tmp_path, write=True)
    assert db is not None and db.count() == 2
    db.put([entry("c", "1")])
    assert db.count() == scanned(db) == 3
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == statedb.SCHEMA_VERSION


def test_a_legacy_state_json_is_imported_once_and_removed(tmp_path: Path) -> None:
    legacy = {"packages": {e["path"]: e for e in (entry("hello", "1.0"), entry("libfoo", "2"))},
              "images": {"index/c.channel.json": {"length": 1, "sha256": "cd"}}}
    (tmp_path / "state.json").write_text(json.dumps(legacy))
    db = statedb.open_state(tmp_path, write=True)
    assert db is not None and not (tmp_path / "state.json").exists()
    assert {**db.metas(), "packages": db.packages()} == legacy


@pytest.mark.parametrize("content", [b"[1, 2]", b"{\"packages\": 3}", b"\xff not json", b""])
def test_a_damaged_legacy_state_imports_nothing(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "state.json").write_bytes(content)
    db = statedb.open_state(tmp_path, write=True)
    assert db is not None and db.count() == 0 and not (tmp_path / "state.json").exists()


@pytest.mark.parametrize("write", [True, False])
def test_a_damaged_database_is_one_line_with_the_rebuild_command(tmp_path: Path, write: bool) -> None:
    (tmp_path / "state.db").write_bytes(b"this is not an SQLite database, just bytes\n" * 200)
    with pytest.raises(UserError, match=r"state.db: the repository state database is unreadable") as info:
        statedb.open_state(tmp_path, write=write)
    assert f"vcomp repo migrate {tmp_path} --rebuild" in (info.value.hint or "")


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = statedb.open_state(tmp_path, write=True)
    assert db is not None
    db.conn.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(UserError, match="state schema 99 is newer"):
        statedb.open_state(tmp_path, write=True)


def to_legacy(repo: Repo) -> dict[str, Any]:
    """Turn the repository back into the pre-SQLite layout (state.json); return its state."""
    state = RepoStore(repo.dir).read_state()
    statedb.remove_state(repo.dir)
    (repo.dir / "state.json").write_text(json.dumps(state, sort_keys=True))
    return state


def test_repo_migrate_moves_state_json_into_the_database(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    state = to_legacy(repo)
    assert RepoStore(repo.dir).read_state() == state             # a reader still reads the unmigrated file
    assert main(["repo", "migrate", str(repo.dir)]) == 0
    assert f"state in state.db ({len(state['packages'])} packages)" in capsys.readouterr().out
    assert not (repo.dir / "state.json").exists() and RepoStore(repo.dir).read_state() == state


def test_the_first_writer_migrates_an_unmigrated_repository(repo: Repo) -> None:
    state = to_legacy(repo)
    edit.add(repo.store, [repo.package("hello", "1.2.0")], [repo.keys.alice])
    after = RepoStore(repo.dir).read_state()
    assert not (repo.dir / "state.json").exists()
    assert set(after["packages"]) == {*state["packages"], f"packages/hello/hello-1.2.0-{ARCH}.vpk"}


def test_add_queries_the_state_and_the_repair_reads_no_role_when_none_changed(
        repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    guard.migrate_state(repo.dir)   # reconciled once: the state records the role versions
    def whole(*_: object) -> Any:
        raise AssertionError("the whole state or every role was read")
    monkeypatch.setattr(RepoStore, "read_state", whole)
    monkeypatch.setattr(guard, "reconcile_state", whole)
    [added] = edit.add(repo.store, [repo.package("hello", "1.2.0")], [repo.keys.alice])
    assert added.new
    monkeypatch.undo()
    store = RepoStore(repo.dir)
    assert store.writable_state().meta(guard.ROLES_KEY) == guard.role_versions(store)
    assert set(store.read_state()["packages"]) == set(guard.listed_targets(store))
    assert edit.publish(store)["packages"] == len(guard.listed_targets(store))


def test_a_role_changed_behind_the_state_is_reconciled(repo: Repo) -> None:
    guard.migrate_state(repo.dir)
    store = RepoStore(repo.dir)
    db = store.writable_state()
    gone = f"packages/hello/hello-1.1.0-{ARCH}.vpk"
    db.replace({p: e for p, e in db.packages().items() if p != gone}, {})
    db.put((), meta={guard.ROLES_KEY: {"alice": 1}})      # as if a role was signed after the state was written
    store.close_state()
    edit.publish(RepoStore(repo.dir))
    assert gone in RepoStore(repo.dir).read_state()["packages"]
