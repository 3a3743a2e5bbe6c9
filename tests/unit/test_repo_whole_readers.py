"""Every reader with a whole index behind its sparse files (composer/repo/incremental.py), found by a review:
a root's pool beside a repository without sparse files, a lock with such a repository, ``vcomp graph`` of a lock
made from sparse files, the lock's index digests while behind, ``VCOMP_INDEX=whole``, and a second mirror run.

Real repositories (tests/unit/test_repo_incremental.py's World), real clients over file:// URLs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tuf.api.metadata import Targets

from composer import settings
from composer.graph.subjects import locked_set
from composer.pkgmgr.ops import RootSources
from composer.profile.load import load_profile
from composer.repo import incremental, publishing
from composer.repo.client import RepositoryClient
from composer.repo.index import index_target_path, whole_behind
from composer.repo.mirror import mirror
from composer.solve.lock import diff_locks, lock_path, open_sources, resolve_profile
from composer.solve.lockcheck import LockMismatch, check_lock
from composer.solve.lockmodel import Lock, lock_bytes
from tests.unit.test_repo_incremental import World

ARCH = "x86_64"


@pytest.fixture(autouse=True)
def scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(incremental, "WHOLE_DEFER_FROM", 0)
    monkeypatch.setattr(incremental, "WHOLE_MIN_BACKLOG", 100)
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "vcache"))


def make_world(base: Path, n: int = 10) -> World:
    w = World(base)
    w.add([w.package(f"pkg-{i:02d}", "1.0.0", provides=[f"cmd:pkg-{i:02d}"]) for i in range(n)])
    w.publish()
    return w


def behind_world(base: Path) -> World:
    w = make_world(base)
    w.add([w.package("pkg-03", "2.0.0", provides=["cmd:pkg-03"])])
    w.publish()
    info = w.store().load("index", Targets).signed.targets[index_target_path(ARCH)]
    assert whole_behind(info.custom) == 2
    return w


def legacy_world(base: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """A repository made before the sparse index (its index role is not delegated the sparse paths)."""
    with monkeypatch.context() as m:
        m.setattr(publishing, "publishes_sparse", lambda *a: False)
        w = make_world(base, n=0)
        w.add([w.package("pkg-50", "1.0.0")])
        w.publish()
    return w


def client(world: World, cache: Path) -> RepositoryClient:
    c = RepositoryClient(world.dir.resolve().as_uri(), (world.dir / "metadata" / "1.root.json").read_bytes(), cache)
    c.refresh()
    return c


def write_profile(tmp: Path, worlds: dict[str, World], packages: str) -> Path:
    d = tmp / "profile"
    d.mkdir(parents=True, exist_ok=True)
    repos = ""
    for name, w in worlds.items():
        (d / f"{name}.root.json").write_bytes((w.dir / "metadata" / "1.root.json").read_bytes())
        repos += f"  - {{name: {name}, url: '{w.dir.resolve().as_uri()}', root: {name}.root.json}}\n"
    p = d / "p.yaml"
    p.write_text(f"name: checked\narchitectures: [x86_64]\nrepositories:\n{repos}"
                 f"packages: {packages}\noutputs:\n  - type: rootfs\n")
    return p


def versions(lock: Lock) -> dict[str, str]:
    return {r.name: r.version for r in lock.packages(ARCH)}


def record(name: str, w: World) -> dict[str, object]:
    return {"name": name, "url": w.dir.resolve().as_uri(),
            "root": json.loads((w.dir / "metadata" / "1.root.json").read_bytes())}


def test_a_root_pool_takes_a_repository_without_sparse_files_whole(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    main, legacy = behind_world(tmp_path / "main"), legacy_world(tmp_path / "legacy", monkeypatch)
    sources = RootSources(repositories=[record("main", main), record("legacy", legacy)],
                          cache=tmp_path / "root-cache", arch=ARCH, installed=[], granted=(), _pool=[])
    assert not sources.clients["legacy"].has_sparse(ARCH)
    index = sources.index(ARCH, roots=["pkg-50", "pkg-03"])    # vcomp pkg install pkg-50 pkg-03
    assert index.versions_of("pkg-50") == ["1.0.0"] and "2.0.0" in index.versions_of("pkg-03")


def test_a_lock_beside_a_repository_without_sparse_files_reads_the_current_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    main, legacy = behind_world(tmp_path / "main"), legacy_world(tmp_path / "legacy", monkeypatch)
    profile = load_profile(write_profile(tmp_path, {"main": main, "legacy": legacy}, "[pkg-03, pkg-50]"))
    lock = resolve_profile(profile, open_sources(profile, tmp_path / "c1"))
    assert versions(lock)["pkg-03"] == "2.0.0" and versions(lock)["pkg-50"] == "1.0.0"


def test_graph_reads_a_lock_made_from_the_sparse_files(tmp_path: Path) -> None:
    world = behind_world(tmp_path / "w")
    p = write_profile(tmp_path, {"main": world}, "[pkg-03]")
    profile = load_profile(p)
    lock = resolve_profile(profile, open_sources(profile, tmp_path / "c1"))
    assert versions(lock)["pkg-03"] == "2.0.0"
    lock_path(p).write_bytes(lock_bytes(lock))
    check_lock(profile, lock, open_sources(profile, tmp_path / "c2"), lock_path(p))
    found = locked_set(str(p), ARCH)     # vcomp graph / size of the lock
    assert {e.version for e in found.entries if e.name == "pkg-03"} == {"2.0.0"}


def test_the_lock_index_digests_move_with_the_repository_while_behind(tmp_path: Path) -> None:
    world = behind_world(tmp_path / "w")
    p = write_profile(tmp_path, {"main": world}, "[pkg-03]")
    profile = load_profile(p)
    old = resolve_profile(profile, open_sources(profile, tmp_path / "c1"))
    world.add([world.package("pkg-03", "3.0.0", provides=["cmd:pkg-03"])])
    world.publish()
    new = resolve_profile(profile, open_sources(profile, tmp_path / "c2"))
    assert old.indexes != new.indexes
    assert any("published a new index" in line for line in diff_locks(old, new))
    with pytest.raises(LockMismatch) as info:
        check_lock(profile, old, open_sources(profile, tmp_path / "c3"), lock_path(p))
    assert "edited by hand" not in info.value.message


def test_whole_mode_resolves_from_the_sparse_files_while_a_whole_index_is_behind(tmp_path: Path) -> None:
    world = behind_world(tmp_path / "w")
    p = write_profile(tmp_path, {"main": world}, "[pkg-03]")
    profile = load_profile(p)
    auto = resolve_profile(profile, open_sources(profile, tmp_path / "c1"))
    with settings.overriding(settings.INDEX, "whole"):
        whole = resolve_profile(profile, open_sources(profile, tmp_path / "c2"))
        check_lock(profile, auto, open_sources(profile, tmp_path / "c3"), lock_path(p))
    assert lock_bytes(whole) == lock_bytes(auto) and versions(auto)["pkg-03"] == "2.0.0"


@pytest.mark.parametrize("behind", [False, True])
def test_a_second_mirror_run_reads_nothing_it_holds(tmp_path: Path, behind: bool) -> None:
    world = make_world(tmp_path / "w", n=40)
    world.add([world.package("pkg-03", "2.0.0", provides=["cmd:pkg-03"])])
    world.publish(full=not behind)
    dest = tmp_path / "mirror"
    mirror(client(world, tmp_path / "m1"), dest, [ARCH])
    c = client(world, tmp_path / "m2")       # a cron job with a fresh cache, or another host
    before = c.transfers["full"]
    again = mirror(c, dest, [ARCH])
    assert again.downloaded == 0 and c.transfers["full"] - before <= 2
