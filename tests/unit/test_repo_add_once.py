"""`repo add` reads an upload once, verifies that copy and stores exactly those bytes (issue 13).

A named pipe can be read only once: an upload path that is read twice (verify, then hash, then copy)
would hang or store nothing; reading it once proves that the stored bytes are the verified bytes.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from composer.errors import InvalidPackage
from composer.repo import edit
from tests.repo_fixtures import ARCH, Pristine, Repo, build_pristine


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    return build_pristine(tmp_path_factory.mktemp("pristine"))


@pytest.fixture()
def repo(pristine: Pristine, tmp_path: Path) -> Repo:
    return pristine.copy(tmp_path)


def _pipe(tmp_path: Path, data: bytes) -> Path:
    fifo = tmp_path / "upload.vpk"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as f:
            f.write(data)
    threading.Thread(target=feed, daemon=True).start()
    return fifo


def test_an_upload_is_read_once_and_the_verified_bytes_are_stored(repo: Repo, tmp_path: Path) -> None:
    data = repo.package("hello", "1.2.0", ARCH).read_bytes()
    added = edit.add(repo.store, [_pipe(tmp_path, data)], [repo.keys.alice])
    assert [a.entry.nva for a in added] == [f"hello-1.2.0-{ARCH}"]
    stored = repo.dir / "targets" / added[0].entry.path.rsplit("/", 1)[0]
    digest = hashlib.sha256(data).hexdigest()
    assert added[0].entry.sha256 == digest
    assert [p.read_bytes() for p in stored.glob(f"{digest}.*")] == [data]
    assert not list(repo.dir.glob(".upload-*"))     # the private copies are gone


def test_a_refused_upload_names_the_users_file_and_leaves_nothing(repo: Repo, tmp_path: Path) -> None:
    bad = tmp_path / "bad.vpk"
    bad.write_bytes(repo.package("hello", "1.2.0", ARCH).read_bytes()[:-100])
    with pytest.raises(InvalidPackage) as info:
        edit.add(repo.store, [bad], [repo.keys.alice])
    assert str(bad) in info.value.message and ".upload-" not in info.value.message
    assert not list(repo.dir.glob(".upload-*"))


def test_a_killed_uploads_copies_are_removed_by_the_next_writer(repo: Repo) -> None:
    left = repo.dir / ".upload-killed"
    left.mkdir()
    (left / "0.vpk").write_bytes(b"half")
    repo.publish()
    assert not left.exists()
