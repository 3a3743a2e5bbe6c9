"""The library behind the thin CLI returns data and prints nothing (docs/architecture/cli.md).

``solve/relock.py`` (lock, lock --check, the checked inputs of build/apply/reconcile), ``pkgmgr/setuid.py``
(the allow-setuid gate's probe) and ``notices.py`` (the one gateway for library notices), against the real
signed repository of ``tests/repo_fixtures.py``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from composer import notices
from composer.errors import UserError
from composer.pkgmgr.setuid import SetuidProbe
from composer.solve.lock import lock_path
from composer.solve.relock import check, load_locked, relock
from tests.repo_fixtures import Repo
from tests.unit.test_lock_checked import write_profile


def test_check_and_relock_return_what_they_found(repo: Repo, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    p = write_profile(tmp_path, repo)
    missing = check(p, cache)
    assert not missing.exists and not missing.up_to_date and missing.target == lock_path(p)
    first = relock(p, cache=cache)
    assert first.target == lock_path(p) and not first.was_locked and first.changes
    assert {r.name for r in first.doc.packages("x86_64")} == {"hello", "libfoo"}
    assert check(p, cache).up_to_date
    again = relock(p, cache=cache)
    assert again.was_locked and again.changes == () and again.doc == first.doc
    write_profile(tmp_path, repo, packages="[hello]")  # the profile changed since the lock was written
    stale = check(p, cache)
    assert stale.exists and stale.problems and not stale.up_to_date
    assert capsys.readouterr() == ("", "")  # data, not lines: the CLI says them


def test_load_locked_gives_the_checked_inputs(repo: Repo, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    p = write_profile(tmp_path, repo)
    with pytest.raises(UserError, match="has no lock"):
        load_locked(p, cache)
    relock(p, cache=cache)
    profile, lock, digest, sources = load_locked(p, cache)
    assert profile.name == "checked" and digest == hashlib.sha256(lock_path(p).read_bytes()).hexdigest()
    assert lock == relock(p, cache=cache).doc and sources.fingerprints


def test_the_setuid_probe_reads_the_locked_package(repo: Repo, tmp_path: Path) -> None:
    class Change:
        arch = "x86_64"

        def __init__(self, name: str) -> None:
            self.name = name

    cache = tmp_path / "cache"
    p = write_profile(tmp_path, repo)
    relock(p, cache=cache)
    probe = SetuidProbe(cache=cache)
    assert probe(p, Change("hello")) == []        # fetched, verified, read: no setuid file
    assert probe(p, Change("not-locked")) == []   # not in the lock: nothing to ask


def test_notices_go_to_the_installed_writer(capsys: pytest.CaptureFixture[str]) -> None:
    said: list[str] = []
    notices.use(said.append)
    try:
        notices.notice("waiting for the lock on x held by PID 1")
    finally:
        notices.use(None)
    assert said == ["waiting for the lock on x held by PID 1"] and capsys.readouterr().err == ""
    notices.notice("without a writer: stderr")
    assert capsys.readouterr().err == "without a writer: stderr\n"


def test_a_build_warning_goes_to_the_callback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from composer.compose.build import carry_outputs
    previous, staging = tmp_path / "prev", tmp_path / "new"
    previous.mkdir()
    staging.mkdir()
    (previous / "manifest.json").write_text("{not json")
    warned: list[str] = []
    assert carry_outputs(previous, staging, ["rootfs"], warn=warned.append) == {}
    assert len(warned) == 1 and warned[0].startswith("warning: ") and "unreadable" in warned[0]
    assert capsys.readouterr().err == ""
