"""Lock format 2 (issue 14, design14 section 1.4): versions in their text form, format 1 read and called stale,
and ``version_change`` by the full order (a revision 2 -> 3 is an upgrade)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from composer.errors import UserError
from composer.profile.load import load_profile
from composer.solve.lock import diff_locks, lock_moves, read_lock, staleness, version_change
from composer.solve.lockmodel import (
    FORMAT_1_STALE,
    LOCK_FORMAT,
    REQUESTED,
    Lock,
    LockedPackage,
    Reason,
    lock_bytes,
)
from tests.conftest import REPO


def _row(name: str, version: str, scheme: str = "semver", sha: str = "a", **kw: Any) -> LockedPackage:
    return LockedPackage(name=name, version=version, version_scheme=scheme, arch="x86_64", sha256=sha * 64,
                         size=1, repository="main", signer="k", reason=kw.pop("reason", REQUESTED), **kw)


def _lock(*rows: LockedPackage, fmt: int = LOCK_FORMAT) -> Lock:
    return Lock(format=fmt, profile="p", inputs="d", trust_roots={"main": "f"}, indexes={"main": {"x86_64": "i"}},
                architectures={"x86_64": rows})


FORMAT_2 = _lock(_row("libc6", "2.36-9+deb12u7", "deb"), _row("epoched", "1:2.36-9+deb12u7", "deb"),
                 _row("tilde", "1.0~rc1-1", "deb", reason=Reason.dependency_of("libc6")),
                 _row("tool", "1:1.2.3-r4"), _row("plain", "1.2.3+build.5", held=True))


def test_the_format_is_2() -> None:
    assert LOCK_FORMAT == 2 and FORMAT_2.to_dict()["format"] == 2


def test_format_2_round_trips_byte_for_byte() -> None:
    data = lock_bytes(FORMAT_2)
    again = Lock.from_dict(json.loads(data), "p.lock")
    assert again == FORMAT_2
    assert lock_bytes(again) == data
    rows = json.loads(data)["architectures"]["x86_64"]
    assert rows[1]["version"] == "1:2.36-9+deb12u7" and rows[1]["version-scheme"] == "deb"
    assert "version-scheme" not in rows[3] and rows[3]["version"] == "1:1.2.3-r4"  # semver: the default
    assert str(again.package("x86_64", "epoched").full_version) == "1:2.36-9+deb12u7"  # type: ignore[union-attr]
    assert again.package("x86_64", "tool").full_version.revision == "4"  # type: ignore[union-attr]


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda r: r.update({"version-scheme": "rpm"}), "[0].version-scheme: 'rpm' is not a version scheme"),
    (lambda r: r.update({"version-scheme": 2}), "[0].version-scheme: 2 is not a string"),
    (lambda r: r.update({"version": "2.36-9+deb12u7!"}), "[0].version: '2.36-9+deb12u7!' is not a deb version"),
    (lambda r: r.update({"version-scheme": "semver"}), "[0].version: '2.36-9+deb12u7' is not a semver version"),
], ids=["unknown scheme", "scheme not text", "bad deb version", "deb text read as semver"])
def test_a_bad_format_2_row_is_one_line_with_the_path(edit: Any, expected: str) -> None:
    doc: dict[str, Any] = json.loads(lock_bytes(FORMAT_2))
    edit(doc["architectures"]["x86_64"][0])
    with pytest.raises(UserError) as info:
        Lock.from_dict(doc, "p.lock")
    assert info.value.message.startswith("p.lock: $.architectures.x86_64") and expected in info.value.message
    assert "\n" not in info.value.message


def _format_1() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(lock_bytes(_lock(_row("linux", "6.1.192+deb.3"),
                                                      _row("nano", "7.2.0+deb.1.deb12u1"))))
    doc["format"] = 1
    return doc


def test_format_1_is_read_as_written_and_round_trips() -> None:
    doc = _format_1()
    lock = Lock.from_dict(doc, "p.lock")
    assert lock.format == 1 and lock.outdated_format == FORMAT_1_STALE
    assert lock.package("x86_64", "linux").version == "6.1.192+deb.3"  # type: ignore[union-attr]
    assert json.loads(lock_bytes(lock)) == doc  # why/diff/plan read it; nothing rewrites it but vcomp lock


def test_format_1_has_no_version_scheme_key() -> None:
    doc = _format_1()
    doc["architectures"]["x86_64"][0]["version-scheme"] = "deb"
    with pytest.raises(UserError, match=r"\[0\]\.version-scheme: is not a field of a locked package"):
        Lock.from_dict(doc, "p.lock")


def test_format_1_is_stale_with_one_line() -> None:
    profile = load_profile(REPO / "profiles" / "minimal.yaml")
    old = Lock.from_dict(_format_1(), "p.lock")
    assert staleness(profile, old, {}) == ["written by lock format 1: versions without revisions; run vcomp lock"]
    assert FORMAT_1_STALE not in staleness(profile, _lock(fmt=2), {})


def test_a_relock_from_format_1_says_so() -> None:
    old = Lock.from_dict(_format_1(), "p.lock")
    new = _lock(_row("linux", "6.1.192-3", "deb", sha="b"), _row("nano", "7.2-1+deb12u1", "deb", sha="c"))
    lines = diff_locks(old, new)
    assert lines[0].startswith("lock format 1 -> 2: versions are now written in full")
    assert "x86_64: ~ linux 6.1.192+deb.3 -> 6.1.192-3 (the same deb version, written in full; requested)" in lines


@pytest.mark.parametrize(("old", "new", "scheme", "action"), [
    ("6.1.192-2", "6.1.192-3", "deb", "upgrade"),                 # the sample kernel's revisions
    ("2.36-9+deb12u2", "2.36-9+deb12u5", "deb", "upgrade"),       # a security update
    ("2.36-9+deb12u7", "1:2.0-1", "deb", "upgrade"),              # the epoch first
    ("1:2.0-1", "2.36-9", "deb", "downgrade"),
    ("1.0~rc1-1", "1.0-1", "deb", "upgrade"),                     # ~ sorts first
    ("1.0-1", "1.0-0+b1", "deb", "downgrade"),
    ("1.0", "1.0-0", "deb", "rebuild"),                           # dpkg-equal texts
    ("1.2.3-r2", "1.2.3-r3", "semver", "upgrade"),                # native revisions
    ("1.2.3-r3", "1.2.3", "semver", "downgrade"),                 # no revision = 0
    ("1.2.3-r9", "1:1.0.0", "semver", "upgrade"),
    ("1.0.0+a", "1.0.0+b", "semver", "rebuild"),                  # build metadata still ties
    ("1.0.0-rc.1", "1.0.0", "semver", "upgrade"),
])
def test_version_change_uses_the_full_order(old: str, new: str, scheme: str, action: str) -> None:
    assert version_change(old, new, scheme) == action


def test_version_change_across_schemes_compares_the_projections() -> None:
    assert version_change("6.1.191+deb.9", "6.1.192-2", "deb", "semver") == "upgrade"
    assert version_change("6.1.192+deb.2", "6.1.192-3", "deb", "semver") == "rebuild"
    assert version_change("7.0.0", "6.1.192-3", "deb", "semver") == "downgrade"


def test_a_revision_move_reads_upgraded_in_the_diff() -> None:
    old = _lock(_row("linux", "6.1.192-2", "deb", reason=Reason(kind="kernel")))
    new = _lock(_row("linux", "6.1.192-3", "deb", sha="b", reason=Reason(kind="kernel")))
    assert [m.action for m in lock_moves(old, new)] == ["upgrade"]
    assert "x86_64: ~ linux 6.1.192-2 -> 6.1.192-3 (upgraded; kernel)" in diff_locks(old, new)


def test_the_sample_relock_from_format_1() -> None:
    """The committed minimal.lock as issue 13 left it (format 1) against the same bookworm set relocked in format 2
    (kept as test data: the live sample set moved to Debian 13)."""
    old = read_lock(REPO / "tests" / "data" / "locks" / "minimal-format1.lock")
    new = read_lock(REPO / "tests" / "data" / "locks" / "minimal-bookworm-format2.lock")
    assert old is not None and new is not None and (old.format, new.format) == (1, 2)
    profile = load_profile(REPO / "profiles" / "minimal.yaml")
    assert staleness(profile, old, {}) == [FORMAT_1_STALE]
    assert not new.outdated_format
    lines = diff_locks(old, new)
    assert lines[0].startswith("lock format 1 -> 2")
    for arch in ("x86_64", "aarch64"):
        assert f"{arch}: ~ linux 6.1.192+deb.3 -> 6.1.192-3 (the same deb version, written in full; kernel)" in lines
        assert new.package(arch, "linux").version_scheme == "deb"  # type: ignore[union-attr]
        assert new.package(arch, "busybox").version == "1:1.35.0-4+deb12u1+b1"  # type: ignore[union-attr]
    assert not any("downgraded" in line for line in lines)
    # every package moves (format 2 rewrote the version of each, init 0.2.0 is a new version)
    assert {m.name for m in lock_moves(old, new)} == {p.name for p in new.packages("x86_64")}
    assert "x86_64: ~ init 0.1.0 -> 0.2.0 (upgraded; requested)" in lines
