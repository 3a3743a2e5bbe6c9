"""Snapshot buckets (composer/repo/snapbins.py, bucketed.py): from BUCKETS_FROM hash bins the snapshot names
content-addressed buckets listing the bins' versions instead of listing every bin, so a publish and a client's
refresh after one change cost what the change touched, not the number of bins.

The repository is real (World of test_repo_incremental.py: real keys, signed packages, ``edit.publish``), its
sparse index forced into 256 hash bins and the bucket threshold lowered to 64, so that a small repository has
the shape of a million-package one. Clients are real RepositoryClients (python-tuf's ngclient underneath)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tuf.api.metadata import Metadata, Snapshot, Targets
from tuf.ngclient import Updater

from composer.errors import FetchError, VerificationError
from composer.repo import incremental, publishing, snapbins, snappatches, snapshotdoc
from composer.repo.client import RepositoryClient
from composer.repo.mirror import mirror
from composer.repo.push import current_metadata, plan
from composer.repo.sparse import SPARSE_BIN_PREFIX, sparse_target_path
from composer.repo.store import expires
from composer.repo.transports import UrlFetcher
from tests.httpserve import serving
from tests.unit.test_repo_incremental import World
from tests.unit.test_snapdiff import BITS, Client, change, snapshot_bytes, snapshot_version

FROM = 64


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    for module in (publishing, incremental):
        monkeypatch.setattr(module, "bin_bits", lambda files, per_bin=256: BITS)
    monkeypatch.setattr(snapbins, "BUCKETS_FROM", FROM)
    w = World(tmp_path)
    w.add([w.package(f"pkg-{i:03d}", "1.0.0", provides=[f"cmd:pkg-{i:03d}"]) for i in range(6)])
    w.publish()
    return w


def signed_snapshot(world: World, version: int | None = None) -> dict:
    v = version if version is not None else snapshot_version(world)
    return json.loads(snapshot_bytes(world, v))["signed"]


def bucket_listing(world: World, version: int | None = None) -> dict[str, int]:
    """ROLE.json -> version of every bin the buckets of snapshot ``version`` list, read from the files."""
    signed = signed_snapshot(world, version)
    out: dict[str, int] = {}
    for bucket, named in snapbins.table(signed).items():
        data = (world.dir / "metadata" / snapbins.file_name(named["hashes"]["sha256"])).read_bytes()
        out.update(snapbins.parse(data, bucket, named))
    return out


def found(client: Client, name: str) -> bool:
    """Whether the client finds ``name``'s sparse file (through the index role's bin, listed in a bucket) and
    it lists version 1.0.0."""
    path = sparse_target_path("x86_64", name)
    info = client.targetinfo(path)
    return info is not None and b'"1.0.0"' in client.download(path).read_bytes()


def bins_on_disk(world: World) -> dict[str, int]:
    store = world.store()
    return {f"{r}.json": v for r, v in store.latest_versions().items() if r.startswith(f"{SPARSE_BIN_PREFIX}-")}


# ----------------------------------------------------------------- publish

def test_the_snapshot_names_buckets_and_lists_no_bin(world: World) -> None:
    signed = signed_snapshot(world)
    assert not [n for n in signed["meta"] if n.startswith(f"{SPARSE_BIN_PREFIX}-")]
    assert {"targets.json", "index.json", "dev.json"} <= set(signed["meta"])
    assert bucket_listing(world) == bins_on_disk(world) and len(bins_on_disk(world)) == 2 ** BITS
    assert len(snapbins.table(signed)) > 100   # 256 bins over 256 buckets (about 160 not empty)
    # python-tuf reads it and its signature verifies with the root's snapshot key
    md = Metadata[Snapshot].from_bytes(snapshot_bytes(world, snapshot_version(world)))
    world.store().root().signed.verify_delegate("snapshot", md.signed_bytes, md.signatures)
    assert snapbins.FIELD in md.signed.unrecognized_fields


def test_one_change_rewrites_its_buckets_only_and_matches_a_rebuild(world: World) -> None:
    before = snapbins.table(signed_snapshot(world))
    v = change(world, 0)
    after = snapbins.table(signed_snapshot(world, v))
    moved = {b for b in after if after[b] != before.get(b)}
    assert 1 <= len(moved) <= 4   # the bins of the new package's two names (own, cmd:), maybe the base set
    assert bucket_listing(world, v) == bins_on_disk(world)
    # what a full build of every bucket from the bins on disk gives: the same table
    store = world.store()
    assert snapshotdoc.bucket_table(store, snapshotdoc.read(store), lambda: bins_on_disk(world), None) == after


def test_a_full_publish_gives_the_same_buckets(world: World) -> None:
    change(world, 0)
    incremental_table = snapbins.table(signed_snapshot(world))
    world.publish(full=True)
    assert bucket_listing(world) == bins_on_disk(world)
    # the bins a full publish re-signs (none changed) keep their versions: the same table
    assert snapbins.table(signed_snapshot(world)) == incremental_table


def test_below_the_threshold_the_snapshot_lists_every_bin(world: World, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    client = Client(world, tmp_path / "cache")
    client.refreshed()
    assert found(client, "pkg-001")
    monkeypatch.setattr(snapbins, "BUCKETS_FROM", 10_000)
    v = change(world, 0)
    signed = signed_snapshot(world, v)
    assert snapbins.FIELD not in signed and len([n for n in signed["meta"] if n.startswith(SPARSE_BIN_PREFIX)]) == 256
    client.refreshed()   # a client that had buckets reads the plain snapshot
    assert found(client, "pkg-100")
    monkeypatch.setattr(snapbins, "BUCKETS_FROM", FROM)
    v = change(world, 1)
    assert snapbins.FIELD in signed_snapshot(world, v)   # and back
    client.refreshed()
    assert found(client, "pkg-101")


def test_a_killed_publish_makes_the_next_one_full(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.add([world.package("pkg-100", "1.0.0")])

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt   # after the bins and buckets were written, before the snapshot

    monkeypatch.setattr(snapshotdoc, "sign", killed)
    with pytest.raises(KeyboardInterrupt):
        world.publish()
    monkeypatch.undo()
    monkeypatch.setattr(snapbins, "BUCKETS_FROM", FROM)
    for module in (publishing, incremental):
        monkeypatch.setattr(module, "bin_bits", lambda files, per_bin=256: BITS)
    assert incremental.started(world.store().writable_state().meta(incremental.RECORD_KEY))
    assert world.publish()["incremental"] == 0
    assert bucket_listing(world) == bins_on_disk(world)
    assert not incremental.started(world.store().writable_state().meta(incremental.RECORD_KEY))
    assert change(world, 1) and world.store().writable_state().meta(incremental.RECORD_KEY)["files"] > 0


def test_a_damaged_bucket_of_the_previous_snapshot_is_built_again(world: World) -> None:
    for path in (world.dir / "metadata" / snapbins.DIR).iterdir():
        path.write_bytes(b"{}")
    v = change(world, 0)
    assert bucket_listing(world, v) == bins_on_disk(world)


# ----------------------------------------------------------------- clients

def test_a_client_reads_bins_through_the_buckets(world: World, tmp_path: Path) -> None:
    client = Client(world, tmp_path / "cache")
    client.refreshed()
    assert found(client, "pkg-001")
    assert any(n.startswith(f"metadata/{snapbins.DIR}/") for n, _ in client.log)
    v = change(world, 0)
    client.log.clear()
    client.refreshed()
    assert found(client, "pkg-100")
    fetched = sorted({n for n, _ in client.log})
    buckets = [n for n in fetched if n.startswith(f"metadata/{snapbins.DIR}/")]
    assert 1 <= len(buckets) <= 2, fetched   # the bucket of the new name's bin (and of the one its cmd: is in)
    assert f"metadata/{v}.snapshot.json" not in fetched   # the patch, as before
    # the client's trusted snapshot is the signed one (the entries added from buckets are not persisted)
    assert client.trusted()["snapshot.json"] == snapshot_bytes(world, v)


def test_over_http_and_a_mirror_of_it(world: World, tmp_path: Path) -> None:
    change(world, 0)
    with serving(world.dir) as url:
        client = Client(world, tmp_path / "cache", url=url)
        client.refreshed()
        assert found(client, "pkg-100")
        copy = tmp_path / "mirror"
        mirror(client, copy, ["x86_64"])
    served = {p.name for p in (copy / "metadata" / snapbins.DIR).iterdir()}
    assert served == {f"{n['hashes']['sha256']}.json" for n in snapbins.table(signed_snapshot(world)).values()}
    reader = Client(world, tmp_path / "cache2", served=copy)
    reader.refreshed()
    assert found(reader, "pkg-005")


def test_push_sends_the_buckets_before_the_snapshot(world: World) -> None:
    v = change(world, 0)
    current = current_metadata(world.dir)
    table = snapbins.table(signed_snapshot(world, v))
    names = {snapbins.file_name(n["hashes"]["sha256"]) for n in table.values()}
    assert names <= current
    assert {f"{ver}.{name}" for name, ver in bucket_listing(world, v).items()} <= current   # the bins they list
    keys = [u.key for u in plan(world.dir)]
    last_bucket = max(keys.index(f"metadata/{n}") for n in names)
    assert last_bucket < keys.index(f"metadata/{v}.snapshot.json") < keys.index("metadata/timestamp.json")


def test_a_stock_ngclient_cannot_walk_into_a_bucketed_bin(world: World, tmp_path: Path) -> None:
    """What older clients see: python-tuf alone finds the bin unlisted (the threshold keeps small
    repositories plain TUF, docs/repo-scale.md)."""
    cache = tmp_path / "stock"
    cache.mkdir()
    updater = Updater(str(cache), (world.dir / "metadata").as_uri() + "/", None, None, UrlFetcher(),
                      bootstrap=(world.dir / "metadata" / "1.root.json").read_bytes())
    updater.refresh()
    with pytest.raises(Exception, match="not part of snapshot"):
        updater.get_targetinfo(sparse_target_path("x86_64", "pkg-001"))


# ----------------------------------------------------------------- hostile buckets

def _sign_snapshot_with(world: World, table: dict) -> int:
    """A new snapshot and timestamp, signed with the repository's own online keys, naming ``table``."""
    store = world.store()
    doc = snapshotdoc.read(store)
    listing = {k: v for k, v in doc.meta.items()}
    version, data = snapshotdoc.sign(store, doc, listing, expires=expires(7), keys=store.online_keys("snapshot"),
                                     buckets=table)
    publishing._timestamp(store, version, data)
    return version


def _bucket_of_bin(world: World, name: str) -> tuple[str, dict, Path]:
    role = world.store().load("index", Targets).signed.delegations.succinct_roles.get_role_for_target(name)
    bucket = snapbins.bucket_of(f"{role}.json")
    table = snapbins.table(signed_snapshot(world))
    return bucket, table, world.dir / "metadata" / snapbins.file_name(table[bucket]["hashes"]["sha256"])


def test_a_tampered_bucket_is_refused_with_one_line(world: World, tmp_path: Path) -> None:
    bucket, _, path = _bucket_of_bin(world, sparse_target_path("x86_64", "pkg-001"))
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"version":', b'"version": ', 1)[: len(data)])   # same length, other hash
    client = Client(world, tmp_path / "cache")
    client.refreshed()
    with pytest.raises(VerificationError, match=f"bucket {bucket}: its sha256"):
        found(client, "pkg-001")


def test_a_bucket_larger_than_named_is_cut_at_its_length(world: World, tmp_path: Path) -> None:
    _, _, path = _bucket_of_bin(world, sparse_target_path("x86_64", "pkg-001"))
    path.write_bytes(path.read_bytes() + b" " * (1 << 20))
    client = Client(world, tmp_path / "cache")
    client.refreshed()
    with pytest.raises(VerificationError, match="bucket|length"):
        found(client, "pkg-001")
    assert not (client.metadata_dir / snapbins.DIR).exists() or not list((client.metadata_dir / snapbins.DIR).iterdir())


def test_a_signed_bucket_rolling_a_bin_back_is_refused(world: World, tmp_path: Path) -> None:
    client = Client(world, tmp_path / "cache")
    client.refreshed()
    old = snapbins.table(signed_snapshot(world))
    change(world, 0)
    client.refreshed()
    assert found(client, "pkg-100")   # the new bins are cached
    _sign_snapshot_with(world, old)   # a snapshot key holder names the old buckets
    client.refreshed()
    with pytest.raises(VerificationError, match="rollback"):
        found(client, "pkg-100")


def test_an_entry_in_the_wrong_bucket_is_refused(world: World, tmp_path: Path) -> None:
    table = snapbins.table(signed_snapshot(world))
    bucket = sorted(table)[0]
    stray = next(f"bins-{i:02x}.json" for i in range(256) if snapbins.bucket_of(f"bins-{i:02x}.json") != bucket)
    data = snapbins.encode(bucket, {stray: 99})
    (world.dir / "metadata" / snapbins.file_name(hashlib.sha256(data).hexdigest())).parent.mkdir(exist_ok=True)
    (world.dir / "metadata" / snapbins.file_name(hashlib.sha256(data).hexdigest())).write_bytes(data)
    with pytest.raises(ValueError, match="does not belong"):
        snapbins.parse(data, bucket, snapbins.entry(data))


@pytest.mark.parametrize("value", [
    [], {"format": 2, "buckets": {}}, {"format": 1, "buckets": []},
    {"format": 1, "buckets": {"0": {"length": 1, "hashes": {"sha256": "a" * 64}}}},
    {"format": 1, "buckets": {"0g": {"length": 1, "hashes": {"sha256": "a" * 64}}}},
    {"format": 1, "buckets": {"00": {"length": 0, "hashes": {"sha256": "a" * 64}}}},
    {"format": 1, "buckets": {"00": {"length": True, "hashes": {"sha256": "a" * 64}}}},
    {"format": 1, "buckets": {"00": {"length": snapbins.MAX_BUCKET_BYTES + 1, "hashes": {"sha256": "a" * 64}}}},
    {"format": 1, "buckets": {"00": {"length": 5, "hashes": {"sha256": "A" * 64}}}},
    {"format": 1, "buckets": {"00": {"length": 5, "hashes": {}}}},
])
def test_a_malformed_table_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match=snapbins.FIELD):
        snapbins.table({snapbins.FIELD: value})


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.builds(lambda v: json.dumps(v).encode(), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4))))
def test_any_bytes_parse_or_raise_value_error(data: bytes) -> None:
    try:
        out = snapbins.parse(data, "00", snapbins.entry(data))
    except ValueError:
        return
    assert all(snapbins.bucket_of(k) == "00" and type(v) is int and v > 0 for k, v in out.items())


def test_encode_and_parse_round_trip() -> None:
    versions = {f"bins-{i:04x}.json": i + 1 for i in range(2000)}
    groups = snapbins.group(versions)
    back: dict[str, int] = {}
    for bucket, entries in groups.items():
        data = snapbins.encode(bucket, entries)
        assert data == snapbins.encode(bucket, dict(reversed(list(entries.items()))))   # deterministic
        back.update(snapbins.parse(data, bucket, snapbins.entry(data)))
    assert back == versions


# ----------------------------------------------------------------- found by review (each failed before its fix)

def _sign(world: World, meta: dict, table: dict | None) -> int:
    """What a holder of the online snapshot (and timestamp) key can publish: a snapshot listing ``meta`` and
    naming ``table``'s buckets (None: a plain snapshot), and a timestamp naming it."""
    store = world.store()
    doc = snapshotdoc.read(store)
    version, data = snapshotdoc.sign(store, doc, meta, expires=expires(7), keys=store.online_keys("snapshot"),
                                     buckets=table)
    publishing._timestamp(store, version, data)
    return version


def _not_bins(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if not k.startswith(f"{SPARSE_BIN_PREFIX}-")}


# 1. a mirror without keys: a deeply nested snapshot body crashes the client with RecursionError
def test_a_deeply_nested_snapshot_from_a_mirror_is_a_verification_failure(world: World, tmp_path: Path) -> None:
    client = Client(world, tmp_path / "cache")
    client.refreshed()                      # the client holds a trusted snapshot
    v = change(world, 0)
    meta = world.dir / "metadata"
    for name in (snappatches.patch_name(v), snappatches.compressed_name(v)):   # untrusted: a mirror omits them
        (meta / name).unlink(missing_ok=True)
    (meta / f"{v}.snapshot.json").write_bytes(b"[" * 5000)   # shorter than the length the timestamp names
    with pytest.raises((FetchError, VerificationError)):
        client.refreshed()                  # plain ngclient: a DeserializationError (a RepositoryError)


# 2. plain -> bucketed: the rollback check runs after ngclient persisted the new snapshot; a second refresh
#    trusts the persisted snapshot as "local" and never checks the moved bins again
def test_a_refused_plain_to_bucketed_rollback_stays_refused(world: World, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    old_table = snapbins.table(signed_snapshot(world))          # the fixture's bucketed snapshot
    monkeypatch.setattr(snapbins, "BUCKETS_FROM", 10_000)
    v = change(world, 0)                                         # plain: pkg-100's bin at a new version
    plain = signed_snapshot(world, v)
    assert snapbins.FIELD not in plain
    client = Client(world, tmp_path / "cache")
    client.refreshed()                                           # trusts the plain snapshot (no bin walked)
    # the snapshot key holder moves the bins into the old buckets (pkg-100's bin one version back)
    _sign(world, _not_bins(plain["meta"]), old_table)
    with pytest.raises(FetchError, match="rollback"):
        client.refreshed()                                       # refused: good
    with pytest.raises(FetchError, match="rollback"):
        client.refreshed()                                       # BUG: accepted (the snapshot was persisted)


def test_after_the_refused_rollback_the_bin_is_not_rolled_back(world: World, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    old_table = snapbins.table(signed_snapshot(world))
    monkeypatch.setattr(snapbins, "BUCKETS_FROM", 10_000)
    v = change(world, 0)
    plain = signed_snapshot(world, v)
    client = Client(world, tmp_path / "cache")
    client.refreshed()
    _sign(world, _not_bins(plain["meta"]), old_table)
    with pytest.raises(FetchError):
        client.refreshed()
    try:
        client.refreshed()
    except FetchError:
        return                                                    # (fixed)
    assert found(client, "pkg-100")                               # BUG: pkg-100's bin rolled back: not found


# 3. bucketed -> plain (or a bin listed in meta next to the buckets): no check against the cached bin
@pytest.mark.parametrize("keep_buckets", [False, True])
def test_a_bin_listed_in_meta_cannot_roll_back_a_cached_bin(world: World, tmp_path: Path,
                                                            keep_buckets: bool) -> None:
    old = bucket_listing(world)                                  # bins' versions before pkg-100
    change(world, 0)
    client = Client(world, tmp_path / "cache")
    client.refreshed()
    assert found(client, "pkg-100")                              # its bin (the new version) is cached
    current = signed_snapshot(world)
    rolled = {**_not_bins(current["meta"]), **{name: {"version": v} for name, v in old.items()}}
    _sign(world, rolled, snapbins.table(current) if keep_buckets else None)
    # the same rollback through a bucket is refused (test_a_signed_bucket_rolling_a_bin_back_is_refused)
    try:
        client.refreshed()
    except FetchError as exc:                                    # refused with the snapshot (the fix)
        assert "rollback" in str(exc)
        return
    with pytest.raises(VerificationError, match="rollback"):     # or when the bin is read
        found(client, "pkg-100")                                 # BUG: the old bin is accepted: not found


# 4. a damaged cached bin (local) crashes BucketedUpdater._cached_version; plain ngclient re-downloads it
def test_a_damaged_cached_bin_is_not_an_internal_error(world: World, tmp_path: Path) -> None:
    client = Client(world, tmp_path / "cache")
    client.refreshed()
    assert found(client, "pkg-001")
    for path in client.metadata_dir.glob(f"{SPARSE_BIN_PREFIX}-*.json"):
        path.write_bytes(b"[" * 5000)
    client2 = Client(world, tmp_path / "cache")
    client2.refreshed()
    assert found(client2, "pkg-001")


def test_an_offline_client_reads_the_bins_it_cached(world: World, tmp_path: Path) -> None:
    """--offline answers from the verified cache: the bins a bucketed snapshot does not list are there."""
    online = Client(world, tmp_path / "cache")
    online.refreshed()
    assert found(online, "pkg-001")
    offline = RepositoryClient(world.dir.as_uri(), (world.dir / "metadata" / "1.root.json").read_bytes(),
                               tmp_path / "cache", offline=True)
    info = offline.targetinfo(sparse_target_path("x86_64", "pkg-001"))
    assert info is not None and info.hashes == online.targetinfo(sparse_target_path("x86_64", "pkg-001")).hashes
