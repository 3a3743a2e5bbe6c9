"""The whole indexes' backlog (composer/repo/incremental.py): at scale an incremental publish leaves the whole
per-architecture indexes as they are until ``max(WHOLE_MIN_BACKLOG, n / 64)`` changes accumulated, and says so
in the signed index role; every reader that needs the current state then reads the sparse files.

A real repository (tests/unit/test_repo_incremental.py's World: real keys, TUF metadata, signed packages) with
the scale thresholds lowered, read by real clients over file:// URLs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tuf.api.metadata import Targets

from composer import settings
from composer.pkgmgr.install import fetch_locked
from composer.pkgmgr.ops import RootSources
from composer.repo import incremental
from composer.repo.client import RepositoryClient
from composer.repo.index import index_target_path, whole_behind
from composer.repo.mirror import mirror
from composer.solve.lock import RepositorySources, missing_packages
from composer.solve.lockmodel import LOCK_FORMAT, REQUESTED, Lock, LockedPackage
from composer.solve.relock import served_versions
from composer.solve.sparsepool import sparse_wanted
from tests.unit.test_repo_incremental import World

ARCH = "x86_64"


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setattr(incremental, "WHOLE_DEFER_FROM", 0)
    monkeypatch.setattr(incremental, "WHOLE_MIN_BACKLOG", 4)
    w = World(tmp_path)
    w.add([w.package(f"pkg-{i:02d}", "1.0.0", provides=[f"cmd:pkg-{i:02d}"]) for i in range(10)])
    assert w.publish()["incremental"] == 0
    return w


def whole(world: World) -> tuple[str, int]:
    """sha256 and backlog of the whole x86_64 index the index role lists."""
    info = world.store().load("index", Targets).signed.targets[index_target_path(ARCH)]
    return info.hashes["sha256"], whole_behind(info.custom)


def client(world: World, cache: Path) -> RepositoryClient:
    c = RepositoryClient(world.dir.resolve().as_uri(), (world.dir / "metadata" / "1.root.json").read_bytes(), cache)
    c.refresh()
    return c


def locked(world: World, name: str, version: str) -> LockedPackage:
    entry = next(e for e in world.store().writable_state().packages().values()
                 if e["name"] == name and e["version"] == version)
    return LockedPackage(name=name, version=version, arch=entry["arch"], sha256=entry["sha256"], size=entry["size"],
                         repository="main", signer=entry["signer"], reason=REQUESTED)


def test_an_incremental_publish_at_scale_leaves_the_whole_index_behind_and_says_so(world: World) -> None:
    before, behind = whole(world)
    assert behind == 0
    world.add([world.package("pkg-03", "2.0.0", provides=["cmd:pkg-03"])])
    out = world.publish()
    assert out["incremental"] == 1
    after, behind = whole(world)
    assert after == before and behind == 2   # the name and its provide: two changed names
    record = incremental.Record.from_value(world.store().writable_state().meta(incremental.RECORD_KEY))
    assert record is not None and record.behind == 2


def test_readers_that_need_the_current_state_read_the_sparse_files(world: World, tmp_path: Path) -> None:
    new = world.package("pkg-03", "2.0.0", provides=["cmd:pkg-03"])
    world.add([new])
    world.publish()
    c = client(world, tmp_path / "c")
    assert c.whole_behind(ARCH) == 2
    assert "2.0.0" not in {e.version for e in c.index(ARCH) if e.name == "pkg-03"}   # the whole index lags
    with settings.overriding(settings.INDEX, "whole"):   # even so: lookups by name read the sparse files
        assert c.prefers_sparse(ARCH)
    assert c.metadata("pkg-03", ARCH).version == "2.0.0"
    assert sparse_wanted({"main": c}, ARCH)   # auto: a lock resolves from the sparse files
    sources = RepositorySources(clients={"main": c}, fingerprints={"main": ""})
    row = locked(world, "pkg-03", "2.0.0")
    fetched = fetch_locked(sources, [row], ARCH)   # vcomp build fetches what the lock holds
    assert fetched[0].path.read_bytes() == new.read_bytes()
    lock = Lock(format=LOCK_FORMAT, profile="p", inputs="", architectures={ARCH: (row,)})
    assert missing_packages(lock, sources) == []
    assert ("2.0.0", "semver") in served_versions(lock, sources)[ARCH]["pkg-03"]


def test_a_root_upgrade_resolves_from_the_sparse_files(world: World, tmp_path: Path) -> None:
    world.add([world.package("pkg-03", "2.0.0", provides=["cmd:pkg-03"])])
    world.publish()
    root = json.loads((world.dir / "metadata" / "1.root.json").read_bytes())
    sources = RootSources(repositories=[{"name": "main", "url": world.dir.resolve().as_uri(), "root": root}],
                          cache=tmp_path / "root-cache", arch=ARCH, installed=[], granted=(), _pool=[])
    index = sources.index(ARCH, roots=["pkg-03"])
    assert "2.0.0" in index.versions_of("pkg-03")
    assert "pkg-07" not in {index.entry(s.id).name for s in index.named("pkg-07")}   # only the closure is read


def test_the_backlog_past_its_budget_rebuilds_the_whole_indexes(world: World, tmp_path: Path) -> None:
    before, _ = whole(world)
    world.add([world.package("pkg-01", "2.0.0", provides=["cmd:pkg-01"])])
    world.publish()
    assert whole(world) == (before, 2)
    world.add([world.package("pkg-02", "2.0.0", provides=["cmd:pkg-02"])])
    world.publish()
    assert whole(world) == (before, 4)   # at the budget (WHOLE_MIN_BACKLOG = 4)
    world.add([world.package("pkg-04", "2.0.0", provides=["cmd:pkg-04"])])
    assert world.publish()["incremental"] == 1
    after, behind = whole(world)
    assert after != before and behind == 0
    c = client(world, tmp_path / "c")
    assert c.whole_behind(ARCH) == 0
    assert {e.version for e in c.index(ARCH) if e.name in ("pkg-01", "pkg-02", "pkg-04")} == {"1.0.0", "2.0.0"}


def test_a_full_publish_and_a_small_repository_keep_the_whole_indexes_current(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.add([world.package("pkg-05", "2.0.0", provides=["cmd:pkg-05"])])
    world.publish()
    assert whole(world)[1] == 2
    world.publish(full=True)
    assert whole(world)[1] == 0
    monkeypatch.setattr(incremental, "WHOLE_DEFER_FROM", 1000)   # fewer packages than that: every publish
    world.add([world.package("pkg-06", "2.0.0", provides=["cmd:pkg-06"])])
    assert world.publish()["incremental"] == 1
    assert whole(world)[1] == 0


def test_a_mirror_of_a_repository_whose_whole_index_is_behind_serves_every_change(
        world: World, tmp_path: Path) -> None:
    new = world.package("pkg-08", "2.0.0", provides=["cmd:pkg-08"])
    world.add([new, world.package("pkg-new", "1.0.0")])
    world.publish()
    assert whole(world)[1] == 3
    dest = tmp_path / "mirror"
    first = mirror(client(world, tmp_path / "m1"), dest, [ARCH])
    assert first.packages == 12
    m = RepositoryClient(dest.resolve().as_uri(), (world.dir / "metadata" / "1.root.json").read_bytes(),
                         tmp_path / "mc")
    m.refresh()
    assert m.fetch(m.metadata("pkg-08", ARCH, "2.0.0")).read_bytes() == new.read_bytes()
    assert m.metadata("pkg-new", ARCH).version == "1.0.0"
    again = mirror(client(world, tmp_path / "m2"), dest, [ARCH])
    assert again.downloaded == 0


@pytest.mark.parametrize(("custom", "behind"), [
    (None, 0), ({}, 0), ({"behind": 0}, 0), ({"behind": 7}, 7), ({"other": 1}, 0),
    ({"behind": -1}, 1), ({"behind": True}, 1), ({"behind": "3"}, 1), ({"behind": 2.5}, 1), ([1], 0)])
def test_a_malformed_backlog_counts_as_behind(custom: object, behind: int) -> None:
    """A value the index role should not carry makes clients read the sparse files: they are always current."""
    assert whole_behind(custom) == behind


def test_a_record_of_format_2_reads_with_no_backlog() -> None:
    old = {"format": 2, "bits": 1, "files": 3, "arches": ["x86_64"], "renew_by": "2030-01-01T00:00:00+00:00"}
    record = incremental.Record.from_value(old)
    assert record is not None and record.behind == 0
    now = incremental.Record(bits=1, files=3, arches=("x86_64",), renew_by=old["renew_by"], behind=9)
    assert incremental.Record.from_value(now.to_dict()) == now


def test_a_whole_index_past_what_clients_read_is_a_limit_error_and_mirrors_copy_it_unread(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from composer.limits import LimitExceeded
    from composer.repo import client as client_module
    from composer.repo import index as index_module
    monkeypatch.setattr(index_module, "MAX_INDEX_BYTES", 200)   # (a million packages: ~740 MB of JSON)
    monkeypatch.setattr(client_module, "AUTO_SPARSE_BYTES", 100)   # (and so large that clients read sparse files)
    c = client(world, tmp_path / "c")
    with pytest.raises(LimitExceeded, match="the index decompresses to .* more than the 200 a client reads"):
        c.index(ARCH)
    dest = tmp_path / "mirror"
    assert mirror(client(world, tmp_path / "m1"), dest, [ARCH]).packages == 10
    m = RepositoryClient(dest.resolve().as_uri(), (world.dir / "metadata" / "1.root.json").read_bytes(),
                         tmp_path / "mc")
    m.refresh()
    assert m.fetch(m.metadata("pkg-04", ARCH)).read_bytes() == (world.pkgs / "pkg-04-1.0.0-x86_64.vpk").read_bytes()


def test_a_backlog_older_than_its_age_limit_rebuilds_the_whole_indexes(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt
    before, _ = whole(world)
    world.add([world.package("pkg-01", "2.0.0", provides=["cmd:pkg-01"])])
    world.publish()
    record = incremental.Record.from_value(world.store().writable_state().meta(incremental.RECORD_KEY))
    assert record is not None and record.behind == 2 and record.behind_since
    later = dt.datetime.fromisoformat(record.behind_since) + incremental.WHOLE_MAX_AGE + dt.timedelta(seconds=1)
    monkeypatch.setattr(incremental, "utcnow", lambda: later)
    world.add([world.package("pkg-02", "2.0.0", provides=["cmd:pkg-02"])])   # 4 changes: within the budget
    assert world.publish()["incremental"] == 1
    after, behind = whole(world)
    assert after != before and behind == 0
