"""The lock as a type (composer/solve/lockmodel.py): committed locks round-trip byte for byte, a malformed lock
is one line naming the file and the JSON path, and the reason grammar is written and parsed in one place."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from composer.errors import UserError
from composer.solve.lock import read_lock, why
from composer.solve.lockmodel import REQUESTED, Lock, LockedPackage, Reason, lock_bytes, summary_lock
from tests.conftest import REPO

COMMITTED = sorted(REPO.glob("profiles/*.lock"))


def test_there_are_committed_locks() -> None:
    assert {p.name for p in COMMITTED} >= {"minimal.lock", "server.lock"}


@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_every_committed_lock_round_trips_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    lock = read_lock(path)
    assert lock is not None
    assert lock_bytes(lock) == data
    assert lock_bytes(Lock.from_dict(lock.to_dict(), str(path))) == data
    assert all(isinstance(p, LockedPackage) and isinstance(p.reason, Reason)
               for rows in lock.architectures.values() for p in rows)


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((REPO / "profiles/minimal.lock").read_bytes())
    return doc


def _set(path: list[str | int], value: Any) -> Callable[[dict[str, Any]], Any]:
    def edit(doc: dict[str, Any]) -> Any:
        at: Any = doc
        for key in path[:-1]:
            at = at[key]
        at[path[-1]] = value
        return doc
    return edit


def _delete(path: list[str | int]) -> Callable[[dict[str, Any]], Any]:
    def edit(doc: dict[str, Any]) -> Any:
        at: Any = doc
        for key in path[:-1]:
            at = at[key]
        del at[path[-1]]
        return doc
    return edit


def _twice(doc: dict[str, Any]) -> dict[str, Any]:
    rows = doc["architectures"]["x86_64"]
    rows.append(copy.deepcopy(rows[0]))
    return doc


ROW = ["architectures", "x86_64", 0]
HOSTILE: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("a list", lambda d: [d], "not a lock file (a JSON object is expected)"),
    ("format 3", _set(["format"], 3), "lock format 3 is not supported"),
    ("missing inputs", _delete(["inputs"]), "$.inputs: is missing"),
    ("an unknown key", _set(["x-evil"], 1), "$.x-evil: is not a field of a lock"),
    ("profile not text", _set(["profile"], 3), "$.profile: 3 is not a string"),
    ("trust roots a list", _set(["trust-roots"], []), "$.trust-roots: [] is not a mapping"),
    ("an index digest a number", _set(["indexes", "sample", "x86_64"], 5),
     "$.indexes.sample.x86_64: 5 is not a string"),
    ("architectures a list", _set(["architectures"], []),
     "$.architectures: is not a mapping of architecture -> packages"),
    ("packages a string", _set(["architectures", "x86_64"], "nope"),
     "$.architectures.x86_64: missing or not a list of packages"),
    ("a row a number", _set(ROW, 7), "$.architectures.x86_64[0]: not a package entry"),
    ("a row without name", _delete([*ROW, "name"]), "$.architectures.x86_64[0]: not a package entry"),
    ("a row twice", _twice, "is listed twice"),
    ("size a string", _set([*ROW, "size"], "1"), "$.architectures.x86_64[0].size: '1' is not a size in bytes"),
    ("size a boolean", _set([*ROW, "size"], True), "$.architectures.x86_64[0].size: True is not a size in bytes"),
    ("size negative", _set([*ROW, "size"], -1), "$.architectures.x86_64[0].size: -1 is not a size in bytes"),
    ("held false", _set([*ROW, "held"], False), "$.architectures.x86_64[0].held: False: only 'true' marks a held row"),
    ("capabilities text", _set([*ROW, "capabilities"], "net"),
     "$.architectures.x86_64[0].capabilities: 'net' is not a list"),
    ("a capability a number", _set([*ROW, "capabilities"], [1]),
     "$.architectures.x86_64[0].capabilities[0]: 1 is not a string"),
    ("an unknown row field", _set([*ROW, "evil"], "x"),
     "$.architectures.x86_64[0].evil: is not a field of a locked package"),
    ("no sha256", _delete([*ROW, "sha256"]), "$.architectures.x86_64[0].sha256: is missing"),
    ("reason not text", _set([*ROW, "reason"], ["requested"]),
     "$.architectures.x86_64[0].reason: ['requested'] is not a string"),
    ("a huge value", _set([*ROW, "version"], ["x" * 500]), "...'"),
]


@pytest.mark.parametrize(("edit", "expected"), [(e, x) for _, e, x in HOSTILE], ids=[n for n, _, _ in HOSTILE])
def test_a_malformed_lock_is_one_line_naming_the_file_and_the_json_path(
        tmp_path: Path, edit: Callable[[dict[str, Any]], Any], expected: str) -> None:
    path = tmp_path / "p.lock"
    path.write_text(json.dumps(edit(_doc())))
    with pytest.raises(UserError) as info:
        read_lock(path)
    message = info.value.message
    assert "\n" not in message and len(message) < 300, message
    assert message.startswith(f"{path}: ") and expected in message, message
    assert info.value.hint


def test_a_missing_lock_is_none_and_an_unparsable_one_an_error(tmp_path: Path) -> None:
    assert read_lock(tmp_path / "absent.lock") is None
    (tmp_path / "bad.lock").write_text("{")
    with pytest.raises(UserError, match="bad.lock: not a lock file"):
        read_lock(tmp_path / "bad.lock")


def test_a_held_row_is_written_only_when_held() -> None:
    lock = Lock.from_dict(_doc(), "minimal.lock")
    row = lock.packages("x86_64")[0]
    assert "held" not in row.to_dict() and not row.held
    held = Lock.from_dict(_set([*ROW, "held"], True)(_doc()), "minimal.lock")
    assert held.packages("x86_64")[0].held and held.packages("x86_64")[0].to_dict()["held"] is True
    assert json.loads(lock_bytes(held))["architectures"]["x86_64"][0]["held"] is True


@given(st.text(max_size=60))
def test_a_reason_round_trips_whatever_it_says(text: str) -> None:
    assert Reason.parse(text).text == text
    assert str(Reason.parse(text)) == text


@pytest.mark.parametrize("name", ["libfoo", "lib foo", "a:b", "x-1.0+git~2", "dependency of y", "émoji ☃", " "])
def test_made_reasons_parse_back(name: str) -> None:
    for made, kind in ((Reason.dependency_of(name), "dependency"), (Reason.driver_for(name), "driver"),
                       (Reason.bootloader_for([name, "disk"]), "bootloader")):
        again = Reason.parse(made.text)
        assert again == made and again.kind == kind
    assert Reason.dependency_of(name).parent == name
    assert Reason.dependency_of(name).text == f"dependency of {name}"
    assert Reason.bootloader_for(["iso", name]).text == f"bootloader for iso, {name}"


def test_what_a_reason_means() -> None:
    assert REQUESTED.text == "requested" and REQUESTED.explicit and not REQUESTED.is_dependency
    dep = Reason.parse("dependency of busybox")
    assert dep.parent == "busybox" and not dep.explicit and dep.is_dependency
    bare = Reason.parse("dependency")  # what the resolver says when no path was found
    assert bare.parent is None and bare.explicit and bare.is_dependency
    for text in ("kernel", "init", "driver for virtio-blk", "bootloader for iso, disk", ""):
        r = Reason.parse(text)
        assert r.parent is None and r.explicit and not r.is_dependency
    assert Reason.parse("dependency of ").parent is None   # no name: kept as written, not a chain


def test_why_follows_the_parsed_chain() -> None:
    lock = Lock.from_dict(_doc(), "minimal.lock")
    chain = why(lock, "driver-virtio", "x86_64")
    assert chain[0].startswith("driver-virtio ") and chain[0].endswith(": dependency of driver-virtio-blk")
    assert chain[-1].endswith(": driver for virtio-blk")


def test_a_summary_lock_is_what_diff_compares() -> None:
    lock = summary_lock({"x86_64": [{"name": "a", "version": "1.0.0", "size": 3}]})
    (row,) = lock.packages("x86_64")
    assert (row.name, row.version, row.size, row.sha256, row.reason.text) == ("a", "1.0.0", 3, "", "")


def test_no_consumer_indexes_a_lock_document() -> None:
    """Locks are read once (Lock.from_dict, the only reader of the document); nothing else in composer/ indexes
    a lock mapping by key any more (the code before the types had 10 such lines)."""
    import re
    pattern = re.compile(r"""\b(lock|old|new|doc|fresh|relocked)\w*(\.lock)?\[\s*["'](architectures|indexes|"""
                         r"""trust-roots|inputs|profile|format)["']""")
    found = [f"{p.relative_to(REPO)}:{i}" for p in sorted((REPO / "composer").rglob("*.py")) if p.name != "lockmodel.py"
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []
