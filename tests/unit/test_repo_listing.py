"""metadata/'s listing kept in the state (composer/repo/listing.py): a writer that finds the state clean reads
role versions from it instead of listing metadata/; a killed writer, or a change behind vcomp's back, makes the
next writer list metadata/ again. The repository is real (World of test_repo_incremental.py)."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from composer.errors import ComposerError
from composer.repo import ceremony, edit, guard, rotate, snapbins
from composer.repo.listing import JournalListing, directory_mark, parse_name
from composer.repo.publish import LocalDirectory
from composer.repo.publishing import publish_unlocked
from composer.repo.statedb import LISTING_KEY, StateDB, open_state
from composer.repo.store import RepoStore
from composer.trust.keys import SigningKey, generate, load_public_key, load_signing_key
from tests.unit.test_repo_incremental import World


def listed(directory: Path) -> dict[str, int]:
    """role -> newest version, from a listing of metadata/ (what the state must say)."""
    out: dict[str, int] = {}
    for name in os.listdir(directory / "metadata"):
        parsed = parse_name(name)
        if parsed is not None and out.get(parsed[0], 0) < parsed[1]:
            out[parsed[0]] = parsed[1]
    return out


def kept(world: World) -> tuple[dict[str, int], object]:
    store = world.store()
    try:
        db = store.writable_state()
        return db.all_role_versions(), db.meta(LISTING_KEY)
    finally:
        store.close_state()


def assert_clean_and_exact(world: World) -> None:
    versions, mark = kept(world)
    assert versions == listed(world.dir)
    assert mark == {"clean": True, **directory_mark(world.dir / "metadata")}


@pytest.fixture()
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.add([w.package(f"pkg-{i:03d}", "1.0.0") for i in range(4)])
    w.publish()
    return w


class Listings:
    """Counts the listings of metadata/ (``RepoStore.metadata_names``) and can forbid them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count, self.forbidden = 0, False
        real = RepoStore.metadata_names

        def counted(store: RepoStore) -> list[str]:
            assert not self.forbidden, "metadata/ listed although the state was clean"
            self.count += 1
            return real(store)
        monkeypatch.setattr(RepoStore, "metadata_names", counted)


def test_every_writer_leaves_the_listing_exact_and_clean(world: World) -> None:
    assert_clean_and_exact(world)
    world.add([world.package("pkg-100", "1.0.0")])
    assert_clean_and_exact(world)
    world.publish()
    assert_clean_and_exact(world)
    world.publish(full=True)
    assert_clean_and_exact(world)
    edit.refresh(world.store())   # the timestamp alone
    assert_clean_and_exact(world)


def test_a_clean_state_is_read_not_listed(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    listings = Listings(monkeypatch)
    listings.forbidden = True
    world.add([world.package("pkg-100", "1.0.0")])
    assert world.publish()["incremental"] == 1
    assert_clean_and_exact(world)


def test_buckets_and_the_listing_together(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapbins, "BUCKETS_FROM", 1)
    world.publish()
    Listings(monkeypatch).forbidden = True
    world.add([world.package("pkg-100", "1.0.0")])
    assert world.publish()["incremental"] == 1
    assert_clean_and_exact(world)


def test_a_killed_writer_makes_the_next_one_list(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.add([world.package("pkg-100", "1.0.0")])
    real = edit.publish_unlocked

    def killed(store: RepoStore, **kwargs: object) -> None:
        real(store)   # everything written...
        raise KeyboardInterrupt   # ...and killed before the command's end

    monkeypatch.setattr("composer.repo.publishing.publish_unlocked", killed)
    with pytest.raises(KeyboardInterrupt):
        world.publish()
    monkeypatch.undo()
    versions, mark = kept(world)
    assert mark == {"clean": False} and versions != listed(world.dir)   # the kill's writes are not in it
    listings = Listings(monkeypatch)
    world.publish()
    assert listings.count >= 1
    assert_clean_and_exact(world)


def test_a_change_behind_vcomps_back_makes_the_next_writer_list(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    meta = world.dir / "metadata"
    dev = max((p for p in meta.iterdir() if p.name.endswith(".dev.json")), key=lambda p: int(p.name.split(".")[0]))
    shutil.copy(dev, meta / ".dev.json.123.tmp")   # a temporary file an outside writer left
    listings = Listings(monkeypatch)
    world.publish()
    assert listings.count >= 1 and not (meta / ".dev.json.123.tmp").exists()
    assert_clean_and_exact(world)


def test_a_state_without_the_table_is_listed_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    store = world.store()
    store.writable_state().set_listing({})
    store.close_state()
    listings = Listings(monkeypatch)
    world.publish()
    assert listings.count >= 1
    assert_clean_and_exact(world)
    listings.forbidden = True
    world.publish()
    assert_clean_and_exact(world)


def test_a_command_failing_before_it_writes_changes_nothing(world: World) -> None:
    before = {p: p.read_bytes() for p in sorted(world.dir.rglob("*")) if p.is_file()}
    with pytest.raises(Exception, match="no such"):
        edit.add(world.store(), [world.dir / "no such.vpk"], [world.dev])
    assert {p: p.read_bytes() for p in sorted(world.dir.rglob("*")) if p.is_file()} == before
    assert_clean_and_exact(world)


def test_readers_never_use_the_state_listing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RepoStore(world.dir)   # not under the lock: lists metadata/ as before
    listings = Listings(monkeypatch)
    assert store.current_version("snapshot") == listed(world.dir)["snapshot"]
    assert listings.count == 1 and not store.journal
    assert guard.role_versions(store)


def test_a_store_made_from_a_writers_publisher_marks_the_writers_state(world: World) -> None:
    """rotate and the root ceremony publish through a second store made from the writer's publisher: its
    first write marks the state too, so a kill after it makes the next writer list."""
    @guard.locked
    def inner_then_fail(store: RepoStore) -> None:
        publish_unlocked(RepoStore(store.dir, publisher=store.publisher))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        inner_then_fail(world.store())
    assert kept(world)[1] == {"clean": False}
    world.publish()
    assert_clean_and_exact(world)


# ----------------------------------------------------------------- changes behind vcomp's back (from review)

def seen_by_next_writer(world: World) -> dict[str, int]:
    out: dict[str, int] = {}

    @guard.locked
    def probe(store: RepoStore) -> None:
        out.update({r: store.current_version(r) for r in ("dev", "snapshot")})
    probe(world.store())
    return out


def test_a_change_during_a_writer_makes_the_next_one_list(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    meta = world.dir / "metadata"
    real = publish_unlocked

    def with_outside_copy(store: RepoStore, **kw: bool) -> dict[str, int]:
        out = real(store, **kw)
        n = listed(world.dir)["dev"]   # e.g. an admin restoring a role file while a cron 'repo refresh' runs
        shutil.copy(meta / f"{n}.dev.json", meta / f"{n + 1}.dev.json")
        return out
    monkeypatch.setattr("composer.repo.publishing.publish_unlocked", with_outside_copy)
    world.publish()
    monkeypatch.undo()
    assert seen_by_next_writer(world)["dev"] == listed(world.dir)["dev"]


def test_a_restore_keeping_times_makes_the_next_writer_list(world: World, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    shutil.copytree(world.dir, backup)            # nightly `cp -a` / `rsync -a` (keeps metadata/'s mtime)
    world.add([world.package("pkg-100", "1.0.0")])
    world.publish()                               # dev and snapshot move on (clients fetch them)
    shutil.copytree(backup, world.dir, dirs_exist_ok=True)   # restore `rsync -a backup/ repo/` (no --delete)
    assert seen_by_next_writer(world) == {r: listed(world.dir)[r] for r in ("dev", "snapshot")}


def test_a_restore_then_add_never_re_signs_a_published_version(world: World, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    shutil.copytree(world.dir, backup)
    world.add([world.package("pkg-100", "1.0.0")])
    n = listed(world.dir)["dev"]
    published = (world.dir / "metadata" / f"{n}.dev.json").read_bytes()
    shutil.copytree(backup, world.dir, dirs_exist_ok=True)
    world.add([world.package("pkg-101", "1.0.0")])
    assert (world.dir / "metadata" / f"{n}.dev.json").read_bytes() == published, \
        "an already published version N.dev.json was re-signed with other content"


def test_a_touched_directory_does_not_hide_a_stray_temporary(world: World) -> None:
    meta = world.dir / "metadata"
    mark = kept(world)[1]
    st = os.stat(meta)
    (meta / ".3.dev.json.abc.tmp").write_bytes(b"x")          # killed outside tool / same clock tick
    os.utime(meta, ns=(st.st_atime_ns, mark["mtime_ns"]))
    world.publish()
    assert not (meta / ".3.dev.json.abc.tmp").exists()


@pytest.mark.parametrize("name", [b"99999999999999999999.notes.json",   # a version past SQLite's integers
                                  b"1.\xff.json",                        # a role name that is not UTF-8
                                  "\u00b2.notes.json".encode()])         # a digit that is not ASCII
def test_a_stray_name_in_metadata_is_no_role(world: World, name: bytes) -> None:
    meta = os.fsencode(world.dir / "metadata")
    open(os.path.join(meta, name), "wb").close()
    world.publish()
    world.publish()
    assert kept(world)[1]["clean"] is True


# ----------------------------------------------------------------- the read side against a model

PREFIX = "index-sparse-"
ROLES = ["dev", "index", "index-sparse", "index-sparse-00", "index-sparse-ff", "index-sparsf", "index-sparse.",
         "index-sparse,", "targets", "z", "dev.bin-1", "ïndex"]


def test_journal_listing_against_a_dict(tmp_path: Path) -> None:
    """JournalListing (role by role, the range scan, the command's own writes) answers as a dict would."""
    db = open_state(tmp_path, write=True)
    rnd = random.Random(7)
    for _ in range(300):
        table = {r: rnd.randint(1, 9) for r in ROLES if rnd.random() < 0.6}
        db.record_listing(table, whole=True, mark={"clean": True, "mtime_ns": 1})
        j, model = JournalListing(db), dict(table)
        for _ in range(12):
            op, r = rnd.choice(["add", "get", "except", "iter", "contains"]), rnd.choice(ROLES)
            if op == "add":
                v = rnd.randint(1, 12)
                j.add(r, v)
                model[r] = max(model.get(r, 0), v)
            elif op == "get":
                assert j.get(r) == model.get(r)
            elif op == "except":
                assert j.versions_except(PREFIX) == {k: v for k, v in model.items() if not k.startswith(PREFIX)}
            elif op == "iter":
                assert dict(j.items()) == model and len(j) == len(model)
            else:
                assert (r in j) == (r in model)
    db.close()


# ----------------------------------------------------------------- kills and faults (from review)

def key(world: World, name: str) -> SigningKey:
    return load_signing_key(world.dir.parent / "keys" / f"{name}.key")


COUNTER = [0]


def rotate_timestamp(world: World) -> object:
    keys = world.dir.parent / "keys"
    pubs = {load_public_key(p).keyid: load_public_key(p) for p in keys.glob("*.pub")}
    current = [pubs[k] for k in world.store().root().signed.roles["timestamp"].keyids]
    COUNTER[0] += 1
    new = generate(f"ts{COUNTER[0]}", keys)[0]
    return rotate.rotate(world.store(), "timestamp", add=[load_signing_key(new)], remove=current,
                         root_keys=[key(world, "root")], add_paths=[str(new)])


def commands(world: World) -> dict[str, Callable[[], object]]:
    return {
        "add": lambda: world.add([world.package("pkg-200", "1.0.0")]),
        "publish": lambda: world.publish(),
        "full": lambda: world.publish(full=True),
        "refresh": lambda: edit.refresh(world.store()),
        "rotate": lambda: rotate_timestamp(world),
        "ceremony": lambda: (ceremony.stage_root(world.store(), add=[], remove=[], threshold=1,
                                                 keys=[key(world, "root")]),
                             ceremony.sign_root(world.store())),
    }


@pytest.mark.parametrize("buckets", [False, True])
@pytest.mark.parametrize("which", ["add", "publish", "full", "refresh", "rotate", "ceremony"])
def test_kill_at_each_metadata_write(world: World, monkeypatch: pytest.MonkeyPatch, which: str,
                                     buckets: bool) -> None:
    """Each writer killed at each of its metadata writes (a temporary left): the next writer lists metadata/,
    removes the temporary and leaves the listing exact and clean."""
    if buckets:
        monkeypatch.setattr(snapbins, "BUCKETS_FROM", 1)
        world.publish(full=True)
    real = LocalDirectory.put_metadata
    for n in range(0, 40):
        calls = [0]

        def killed(self: LocalDirectory, name: str, data: bytes, n: int = n, calls: list[int] = calls) -> None:
            if calls[0] == n:
                (self.root / "metadata" / f".{name.rsplit('/', 1)[-1]}.k{n}.tmp").write_bytes(data[:7])
                raise KeyboardInterrupt
            calls[0] += 1
            real(self, name, data)
        monkeypatch.setattr(LocalDirectory, "put_metadata", killed)
        try:
            commands(world)[which]()
            done = True
        except KeyboardInterrupt:
            done = False
        monkeypatch.setattr(LocalDirectory, "put_metadata", real)
        if done:
            assert_clean_and_exact(world)
            break
        assert kept(world)[1] == {"clean": False}
        world.publish()
        assert not [p for p in (world.dir / "metadata").iterdir() if p.name.endswith(".tmp")]
        assert_clean_and_exact(world)
        (world.dir / "staged-root.json").unlink(missing_ok=True)
    assert done


@pytest.mark.parametrize("what", ["set_listing", "record_listing"])
def test_sqlite_full_around_the_marks(world: World, monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    """The state full when the mark is set (before the first write: nothing is written, one error) or recorded
    (after the command: it is done, the mark stays not clean, the next writer lists)."""
    real = StateDB._set_meta

    def full(self: StateDB, meta: dict[str, object]) -> None:   # (inside the state's guard, as SQLite fails)
        if LISTING_KEY in meta and (meta[LISTING_KEY] == {"clean": False}) == (what == "set_listing"):
            raise sqlite3.OperationalError("database or disk is full")
        real(self, meta)
    monkeypatch.setattr(StateDB, "_set_meta", full)
    before = listed(world.dir)
    if what == "set_listing":
        with pytest.raises(ComposerError):
            world.add([world.package("pkg-300", "1.0.0")])
    else:
        world.add([world.package("pkg-300", "1.0.0")])
    monkeypatch.undo()
    if what == "set_listing":
        assert listed(world.dir) == before        # nothing written
    else:
        assert kept(world)[1] == {"clean": False}
    world.publish()
    assert_clean_and_exact(world)
