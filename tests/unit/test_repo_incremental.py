"""Incremental publish (composer/repo/incremental.py): after any sequence of changes, what an incremental publish
serves is what a full publish of the same state serves, and it touches only what changed.

A real repository (real keys, TUF metadata, metadata-only packages written and signed by ``write_package``,
added through ``edit.add``), changed at random: new names, new versions, provides of other names, the base set,
noarch, a repair dropping a package. After each publish the sparse files the bins list are compared with
``build_sparse`` over the whole state (what a full publish writes).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from tuf.api.metadata import Snapshot, Targets

from composer.package.archive import write_package
from composer.package.metadata import Dependency, Metadata, Security
from composer.repo import edit, incremental
from composer.repo.index import IndexEntry
from composer.repo.sparse import SPARSE_BIN_PREFIX, build_sparse
from composer.repo.statedb import BASE_NAME
from composer.repo.store import RepoStore
from composer.trust.keys import SigningKey, generate, load_public_key, load_signing_key

ARCHES = ("x86_64", "aarch64")
EPOCH = 1_700_000_000


class World:
    """A repository and a developer who may publish ``pkg-*`` (and provide ``cmd:*``/``virt-*``)."""

    def __init__(self, base: Path) -> None:
        keys = {n: generate(n, base / "keys")[0] for n in ("root", "targets", "index", "snapshot", "timestamp",
                                                             "dev")}
        self.dev: SigningKey = load_signing_key(keys["dev"])
        self.dir = base / "repo"
        self.pkgs = base / "pkgs"
        online = {r: [load_signing_key(keys[r])] for r in ("index", "snapshot", "timestamp")}
        edit.init(self.dir, root_keys=[load_signing_key(keys["root"])], root_threshold=1,
                  targets_keys=[load_signing_key(keys["targets"])], online=online,
                  online_paths={r: [str(keys[r])] for r in online}, architectures=list(ARCHES))
        edit.delegate(RepoStore(self.dir), "dev", [load_public_key(keys["dev"].with_suffix(".pub"))],
                      ["pkg-*", "cmd:*", "virt-*"], targets_keys=[load_signing_key(keys["targets"])])

    def package(self, name: str, version: str, *, arch: str = "x86_64", provides: Sequence[str] = (),
                essential: bool = False, priority: str = "", deps: Sequence[str] = ()) -> Path:
        meta = Metadata(name=name, version=version, description=f"{name} for the incremental publish test",
                        license="MIT", type="application", arch=arch, authors=("T <t@example.org>",),
                        homepage="https://example.org", provides=tuple(provides), essential=essential,
                        priority=priority, dependencies=tuple(Dependency(name=d, requirement="*") for d in deps),
                        security=Security(context="system_t"), provenance={"source-date-epoch": EPOCH})
        path = self.pkgs / f"{meta.nva}.vpk"
        write_package(path, metadata=meta, staged=[], key=self.dev, epoch=EPOCH)
        return path

    def add(self, paths: Sequence[Path]) -> None:
        edit.add(RepoStore(self.dir), list(paths), [self.dev])

    def publish(self, *, full: bool = False) -> dict[str, int]:
        return edit.publish(RepoStore(self.dir), full=full)

    def store(self) -> RepoStore:
        return RepoStore(self.dir)


def served_sparse(store: RepoStore) -> dict[str, str]:
    """path -> sha256 of every sparse file the current bins list."""
    index = store.load("index", Targets).signed
    out: dict[str, str] = {}
    for name in index.delegations.succinct_roles.get_roles():
        for path, info in store.load(name, Targets).signed.targets.items():
            out[path] = info.hashes["sha256"]
    return out


def expected_sparse(store: RepoStore) -> dict[str, str]:
    """path -> sha256 of every sparse file a full publish of the current state writes."""
    entries = [IndexEntry.from_dict(e) for e in store.writable_state().packages().values()]
    out = {}
    for arch in ARCHES:
        for path, data in build_sparse(arch, entries).items():
            out[path] = hashlib.sha256(data).hexdigest()
    return out


def bin_versions(store: RepoStore) -> dict[str, int]:
    snapshot = store.load("snapshot", Snapshot).signed
    return {k: v.version for k, v in snapshot.meta.items() if k.startswith(SPARSE_BIN_PREFIX)}


@pytest.fixture()
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.add([w.package(f"pkg-{i:03d}", "1.0.0", arch="noarch" if i % 9 == 0 else "x86_64",
                     provides=[f"cmd:pkg-{i:03d}"] + (["virt-shell"] if i % 10 == 3 else []),
                     essential=i == 1, priority="required" if i == 2 else "") for i in range(40)])
    first = w.publish()
    assert first["incremental"] == 0   # no record of a last publish: a full one
    return w


def test_one_add_publishes_incrementally_and_re_signs_only_the_touched_bins(world: World) -> None:
    store = world.store()
    before = bin_versions(store)
    world.add([world.package("pkg-005", "1.1.0", provides=["cmd:pkg-005"])])
    assert set(store.writable_state().changes(100) or ()) == {("pkg-005", "x86_64"), ("cmd:pkg-005", "x86_64")}
    out = world.publish()
    assert out["incremental"] == 1
    store = world.store()
    assert served_sparse(store) == expected_sparse(store)
    index = store.load("index", Targets).signed
    succinct = index.delegations.succinct_roles
    touched = {succinct.get_role_for_target(p) + ".json" for p in expected_sparse(store)
               if p.endswith(("/pkg-005.json", "/cmd%3Apkg-005.json"))}
    after = bin_versions(store)
    assert {k for k in after if after[k] != before[k]} == touched
    assert store.writable_state().changes(100) == []   # published: forgotten


def test_random_changes_published_incrementally_serve_what_a_full_publish_serves(world: World) -> None:
    rng = random.Random(20)
    versions: dict[str, int] = {}
    incrementally = 0
    for _round in range(6):
        batch = []
        for _ in range(rng.randint(1, 6)):
            i = rng.randint(0, 60)
            name = f"pkg-{i:03d}"
            versions[name] = versions.get(name, 0) + 1
            arch = rng.choice(["x86_64", "aarch64", "noarch"]) if i >= 40 else \
                ("noarch" if i % 9 == 0 else "x86_64")
            batch.append(world.package(name, f"2.{versions[name]}.0", arch=arch,
                                       provides=rng.sample([f"cmd:{name}", "virt-shell", "virt-editor"], 2),
                                       essential=rng.random() < 0.2, priority=rng.choice(["", "required"]),
                                       deps=rng.sample(["pkg-001", "virt-shell"], 1)))
        world.add(batch)
        out = world.publish()
        store = world.store()
        assert served_sparse(store) == expected_sparse(store), f"round {_round}"
        incrementally += out["incremental"]
    assert incrementally >= 5   # (a round whose new names double the sparse files changes the bins: full)
    full = world.publish(full=True)
    assert full["incremental"] == 0
    store = world.store()
    assert served_sparse(store) == expected_sparse(store)


def test_a_base_set_change_rewrites_base_json(world: World) -> None:
    world.add([world.package("pkg-050", "1.0.0", essential=True)])
    assert (BASE_NAME, "x86_64") in (world.store().writable_state().changes(100) or [])
    world.publish()
    store = world.store()
    assert served_sparse(store) == expected_sparse(store)


def test_the_whole_indexes_follow_every_publish(world: World, tmp_path: Path) -> None:
    """Below WHOLE_DEFER_FROM packages the whole index lists every change at once (search, catalogs and vendoring
    read it; at scale it has a backlog: tests/unit/test_repo_whole_backlog.py)."""
    from composer.repo.client import RepositoryClient
    world.add([world.package("pkg-new", "1.0.0")])
    assert world.publish()["incremental"] == 1
    root = (world.dir / "metadata" / "1.root.json").read_bytes()
    client = RepositoryClient(world.dir.resolve().as_uri(), root, tmp_path / "client")
    client.refresh()
    assert "pkg-new" in {e.name for e in client.index("x86_64")}
    assert client.metadata("pkg-new", "x86_64").version == "1.0.0"


def test_a_publish_killed_after_signing_a_bin_is_followed_by_a_full_one(world: World) -> None:
    """The record of the last publish is written last: a publish that stopped after signing bins (a kill)
    leaves bins newer than the snapshot lists, and the next publish rebuilds everything."""
    from composer.repo.hashbins import sign_bin
    store = world.store()
    index = store.load("index", Targets).signed
    name = next(iter(index.delegations.succinct_roles.get_roles()))
    listed = dict(store.load(name, Targets).signed.targets)
    sign_bin(store, name, listed, [load_signing_key(world.dir.parent / "keys" / "index.key")], days=90, force=True)
    world.add([world.package("pkg-009", "1.1.0")])
    assert world.publish()["incremental"] == 0
    store = world.store()
    assert served_sparse(store) == expected_sparse(store)
    world.add([world.package("pkg-010", "1.1.0")])
    assert world.publish()["incremental"] == 1   # and then incremental again


def test_past_the_renewal_date_a_publish_is_full(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    record = incremental.Record.from_value(world.store().writable_state().meta(incremental.RECORD_KEY))
    assert record is not None
    monkeypatch.setenv("VCOMP_REPO_NOW", "2099-01-01T00:00:00+00:00")
    world.add([world.package("pkg-003", "1.1.0")])
    assert world.publish()["incremental"] == 0


def test_a_bin_count_change_falls_back_to_a_full_publish(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    record = incremental.Record.from_value(world.store().writable_state().meta(incremental.RECORD_KEY))
    assert record is not None
    bits = record.bits
    # enough new names to double the sparse files: more bins
    world.add([world.package(f"pkg-{i:03d}", "1.0.0", provides=[f"cmd:pkg-{i:03d}"]) for i in range(100, 400)])
    out = world.publish()
    store = world.store()
    new = incremental.Record.from_value(store.writable_state().meta(incremental.RECORD_KEY))
    assert new is not None and new.bits > bits and out["incremental"] == 0
    assert served_sparse(store) == expected_sparse(store)
    assert new.files == len(expected_sparse(store))


def test_a_state_rebuilt_by_the_repair_publishes_what_it_holds(world: World) -> None:
    from composer.repo.guard import migrate_state
    migrate_state(world.dir, rebuild=True)   # a new database: no record, every change unknown
    out = world.publish()
    assert out["incremental"] == 0
    store = world.store()
    assert served_sparse(store) == expected_sparse(store)


def test_the_links_table_answers_providers_and_dependents(world: World) -> None:
    db = world.store().writable_state()
    providers = db.linked("provides", "virt-shell", ["x86_64", "noarch"])
    assert providers == ["pkg-003", "pkg-013", "pkg-023", "pkg-033"]
    world.add([world.package("pkg-070", "1.0.0", deps=["pkg-001"])])
    assert world.store().writable_state().linked("requires", "pkg-001", ["x86_64", "noarch"]) == ["pkg-070"]


def test_an_unreadable_record_means_a_full_publish() -> None:
    assert incremental.Record.from_value({"format": 1, "bits": "x"}) is None
    assert incremental.Record.from_value(None) is None
    assert incremental.Record.from_value({"format": 2}) is None
    good = incremental.Record(bits=1, files=3, arches=("x86_64",), renew_by="2030-01-01T00:00:00+00:00")
    assert incremental.Record.from_value(good.to_dict()) == good



def test_new_index_keys_re_sign_every_bin(world: World, tmp_path: Path) -> None:
    from composer.repo import rotate
    from composer.repo.client import RepositoryClient
    keys = world.dir.parent / "keys"
    new, _pub, new_id = generate("index2", keys)
    rotate.rotate(world.store(), "index", add=[load_signing_key(new)],
                  remove=[load_public_key(keys / "index.pub")],
                  targets_keys=[load_signing_key(keys / "targets.key")], add_paths=[str(new)])
    store = world.store()
    index = store.load("index", Targets).signed
    assert index.delegations.succinct_roles.keyids == [new_id]
    for name in index.delegations.succinct_roles.get_roles():
        assert list(store.load(name, Targets).signatures) == [new_id], name   # none left signed by the old key
    root = (world.dir / "metadata" / "1.root.json").read_bytes()
    client = RepositoryClient(world.dir.resolve().as_uri(), root, tmp_path / "client")
    client.refresh()
    names = [f"pkg-{i:03d}" for i in range(40)]
    assert set(client.sparse_entries("x86_64", names)) == set(names)   # every bin verifies under the new key
