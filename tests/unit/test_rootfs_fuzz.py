"""Property tests: a root's state files, whatever they hold, give a clear error or a valid database, never an
internal error; the one path check accepts exactly the paths that stay inside a root."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.errors import ComposerError
from composer.pkgmgr import db
from composer.pkgmgr.transaction import check_journal
from composer.rootfs import path_problem

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                  max_size=4), max_leaves=30)
PATHS = st.lists(st.sampled_from(["a", "b", "/", ".", "..", "\x00", "\\", "é"]), max_size=12).map("".join)
ENTRY = st.fixed_dictionaries({"path": PATHS | JSON, "type": st.sampled_from(["file", "dir", "symlink", "hardlink",
                                                                               "door"]) | JSON,
                               "mode": st.sampled_from(["0644", "0755", "99", ""]) | JSON,
                               "size": st.integers(-1, 10) | JSON, "sha256": st.just("0" * 64) | JSON,
                               "target": PATHS | JSON})
RECORD = st.fixed_dictionaries({"name": st.just("app") | JSON, "version": st.just("1.0.0") | JSON,
                                "files": st.lists(ENTRY, max_size=4) | JSON, "config": st.dictionaries(PATHS, JSON,
                                                                                                        max_size=2),
                                "metadata": st.just({}) | JSON})
DB = st.fixed_dictionaries({"format": st.just(1) | JSON, "transaction": st.integers(0, 3) | JSON,
                            "packages": st.dictionaries(st.just("app") | st.text(max_size=5), RECORD, max_size=2)
                            | JSON}) | JSON
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "var/lib/vpk").mkdir(parents=True, exist_ok=True)
    return root


def _load_is_clean(root: Path) -> None:
    try:
        database = db.load(root)
    except ComposerError as exc:
        assert exc.message and "\n" not in exc.message.strip()
        return
    for record in database.packages.values():
        for entry in record["files"]:
            assert path_problem(entry["path"]) is None


@SETTINGS
@given(doc=DB)
def test_any_database_document_is_valid_or_one_clear_error(tmp_path: Path, doc: Any) -> None:
    root = _root(tmp_path)
    (root / "var/lib/vpk/db.json").write_text(json.dumps(doc))
    _load_is_clean(root)


@SETTINGS
@given(data=st.binary(max_size=200))
def test_any_bytes_as_database_history_or_repositories_is_a_clear_error(tmp_path: Path, data: bytes) -> None:
    root = _root(tmp_path)
    for name in ("db.json", "history.json", "repositories.json"):
        (root / "var/lib/vpk" / name).write_bytes(data if name != "db.json" else b'{"packages": {}}')
    (root / "var/lib/vpk/db.json").write_bytes(data)
    _load_is_clean(root)


@SETTINGS
@given(doc=st.fixed_dictionaries({"transaction": st.integers(-2, 5) | JSON,
                                  "ops": st.lists(st.fixed_dictionaries({"op": st.sampled_from(
                                      ["mkdir", "rmdir", "save", "delete", "place", "exec"]) | JSON,
                                      "path": PATHS | JSON, "mode": st.just("0755") | JSON,
                                      "package": st.just("app") | JSON, "source": PATHS | JSON}), max_size=4)
                                  | JSON}) | JSON)
def test_any_journal_is_valid_or_one_clear_error(doc: Any) -> None:
    try:
        _, ops = check_journal(doc, "journal.json")
    except ComposerError as exc:
        assert exc.message.startswith("journal.json: ")
        return
    for op in ops:
        assert path_problem(op["path"]) is None


@given(path=PATHS)
def test_an_accepted_path_is_normalised_and_stays_inside(path: str) -> None:
    if path_problem(path) is None:
        assert posixpath.normpath(path) == path and not path.startswith(("/", "../")) and path != ".."
        assert posixpath.normpath(posixpath.join("/root", path)).startswith("/root/")


@pytest.mark.parametrize("path", ["a", "a/b", "é/b", ".hidden", "a..b", "...", "a/.b"])
def test_ordinary_paths_are_accepted(path: str) -> None:
    assert path_problem(path) is None
