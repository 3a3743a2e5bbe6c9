"""The client's package cache: content-addressed, written under a per-entry lock, verified on every read."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from composer.errors import VerificationError
from composer.repo.pkgcache import PACKAGES, ObjectStore, objects_dir
from tests.reliability.killsweep import REPO as SOURCE

DATA = random.Random(1).randbytes(3 << 20)   # fixed: xdist workers must collect the same ids
DIGEST = hashlib.sha256(DATA).hexdigest()


def store_at(cache_root: Path) -> ObjectStore:
    return ObjectStore(objects_dir(cache_root / "repos"))


def write_data(tmp: Path) -> None:
    tmp.write_bytes(DATA)


def test_put_then_get_and_the_kind_lists_it(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    path = store.put(DIGEST, len(DATA), write_data)
    assert path == store.path(DIGEST) and path.read_bytes() == DATA
    assert store.get(DIGEST, len(DATA)) == path
    (entry,) = PACKAGES.entries(tmp_path)          # the .lock beside it is not an entry
    assert entry.key == DIGEST and entry.size == len(DATA) and entry.kind == "packages"
    assert PACKAGES.verify(tmp_path, entry) == []
    PACKAGES.remove(tmp_path, entry)
    assert PACKAGES.entries(tmp_path) == [] and store.get(DIGEST) is None


def test_a_damaged_entry_is_a_miss_and_is_removed(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    path = store.put(DIGEST, len(DATA), write_data)
    path.write_bytes(DATA[:-1] + bytes([DATA[-1] ^ 1]))
    (entry,) = PACKAGES.entries(tmp_path)
    assert "not its name" in PACKAGES.verify(tmp_path, entry)[0]
    assert store.get(DIGEST, len(DATA)) is None
    assert not path.exists()
    assert store.put(DIGEST, len(DATA), write_data).read_bytes() == DATA   # fetched again


def test_a_truncated_entry_is_a_miss(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    path = store.put(DIGEST, len(DATA), write_data)
    os.truncate(path, 1000)
    assert store.get(DIGEST, len(DATA)) is None and not path.exists()


def test_bytes_that_do_not_match_are_never_stored(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    with pytest.raises(VerificationError, match="not what the verified metadata says"):
        store.put(DIGEST, len(DATA), lambda tmp: tmp.write_bytes(b"something else"))
    assert store.get(DIGEST) is None
    assert [p.name for p in store.path(DIGEST).parent.iterdir()] == [f"{DIGEST}.lock"]   # no temporary left


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, DIGEST[:-1]])
def test_a_digest_from_a_hostile_lock_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(VerificationError, match="is not a sha256 digest"):
        store_at(tmp_path).get(bad)


_WRITER = """
import os, sys, time, hashlib
from pathlib import Path
from composer.repo.pkgcache import ObjectStore
store, marker = ObjectStore(Path(sys.argv[1])), Path(sys.argv[2])
data = Path(sys.argv[3]).read_bytes()
def slow(tmp):
    with marker.open("a") as m:
        m.write("w")
    with tmp.open("wb") as f:
        for i in range(0, len(data), 1 << 18):
            f.write(data[i:i + (1 << 18)]); f.flush(); time.sleep(0.02)
p = store.put(hashlib.sha256(data).hexdigest(), len(data), slow)
assert p.read_bytes() == data
"""


def test_concurrent_writers_write_once_and_readers_never_see_a_partial_entry(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(DATA)
    store, marker = store_at(tmp_path), tmp_path / "writes"
    env = {**os.environ, "PYTHONPATH": str(SOURCE)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(store.dir), str(marker), str(src)], env=env)
             for _ in range(4)]
    seen = 0
    while any(p.poll() is None for p in procs):
        got = store.get(DIGEST, len(DATA)) if store.path(DIGEST).exists() else None
        if got is not None:
            assert got.read_bytes() == DATA
            seen += 1
        time.sleep(0.005)
    assert all(p.returncode == 0 for p in procs)
    assert marker.read_text() == "w"          # one writer downloaded; the others found it done
    assert store.get(DIGEST, len(DATA)) is not None
    assert not list(store.path(DIGEST).parent.glob(".*.tmp"))


_HOLD = """
import sys, time
from pathlib import Path
from composer.package import debian
with debian._locked(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(30)
"""


def test_the_debian_cache_lock_names_its_holder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from composer.errors import LockBusy
    from composer.package import debian
    lock = tmp_path / "debian" / ".lock-amd64"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(lock)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(SOURCE)})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("VCOMP_NO_WAIT", "1")
        with pytest.raises(LockBusy, match=rf"the Debian package cache .* is locked by PID {holder.pid}"), \
                debian._locked(lock):
            pass
    finally:
        holder.kill()
        holder.wait()
    with debian._locked(lock):   # a dead holder's lock is free
        pass


def test_a_killed_writers_temporary_is_removed_by_the_next_writer(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    store.path(DIGEST).parent.mkdir(parents=True)
    stale = store.path(DIGEST).with_name(f".{DIGEST}.99999.tmp")
    stale.write_bytes(DATA[:1000])
    assert PACKAGES.entries(tmp_path) == []            # a temporary is never an entry
    store.put(DIGEST, len(DATA), write_data)
    assert not stale.exists() and store.get(DIGEST, len(DATA)) is not None
