"""Snapshot patches (composer/repo/snapdiff.py, snappatches.py): a client that holds the previous snapshot
downloads a small untrusted patch instead of the whole snapshot, and ends with exactly the trusted metadata a
client that downloaded it in full has; any damage to a patch means a full download, never a failed refresh.

The repository is real (World of test_repo_incremental.py: real keys, signed packages, ``edit.publish``), with
its sparse index forced into 256 hash bins so that its snapshot has the shape of a large repository's (one
entry per bin, most unchanged by a publish)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from tuf.ngclient import FetcherInterface

from composer.errors import VerificationError
from composer.repo import incremental, publishing, snappatches
from composer.repo.client import RepositoryClient
from composer.repo.guard import role_versions
from composer.repo.mirror import mirror
from composer.repo.push import current_metadata, plan
from composer.repo.snapdiff import (
    FORMAT,
    MAX_OPS,
    MAX_PATCH_BYTES,
    SEPARATOR,
    FileId,
    apply_patch,
    make_patch,
    segments,
)
from composer.repo.transports import UrlFetcher
from tests.httpserve import serving
from tests.unit.test_repo_incremental import ARCHES, World

BITS = 8   # 256 bins


# ----------------------------------------------------------------- the repository and its clients

class Counting(UrlFetcher):
    """The client's fetcher, recording the URLs asked for (relative to the repository) and the bytes given."""

    def __init__(self, log: list[tuple[str, int]], base: str) -> None:
        super().__init__()
        self.log, self.base = log, base

    def _fetch(self, url: str) -> Iterator[bytes]:
        chunks = super()._fetch(url)
        name = url.removeprefix(self.base + "/")

        def count() -> Iterator[bytes]:
            for chunk in chunks:
                self.log.append((name, len(chunk)))
                yield chunk
        return count()


class Client(RepositoryClient):
    def __init__(self, world: World, cache: Path, *, served: Path | None = None, url: str = "") -> None:
        super().__init__(url or (served or world.dir).as_uri(),
                         (world.dir / "metadata" / "1.root.json").read_bytes(), cache)
        self.log: list[tuple[str, int]] = []

    def _fetcher(self) -> FetcherInterface:
        return Counting(self.log, self.urls[0])

    def refreshed(self) -> list[str]:
        """Refresh; the names downloaded (each once)."""
        self.log.clear()
        self.transfers = dict.fromkeys(self.transfers, 0)
        self.refresh()
        return sorted({name for name, _ in self.log})

    @property
    def patching(self) -> dict[str, int]:
        """The snapshot patch counts of the last refresh (those not zero)."""
        return {k: v for k, v in self.transfers.items() if k.startswith("snapshot-patch") and v}

    @property
    def compressed(self) -> dict[str, int]:
        """The compressed snapshot counts of the last refresh (those not zero)."""
        return {k: v for k, v in self.transfers.items() if k.startswith("snapshot-compressed") and v}

    def trusted(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.metadata_dir.glob("*.json"))}


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    for module in (publishing, incremental):
        monkeypatch.setattr(module, "bin_bits", lambda files, per_bin=256: BITS)
    w = World(tmp_path)
    w.add([w.package(f"pkg-{i:03d}", "1.0.0", provides=[f"cmd:pkg-{i:03d}"]) for i in range(6)])
    w.publish()
    return w


def snapshot_version(world: World) -> int:
    return world.store().current_version("snapshot")


def snapshot_bytes(world: World, version: int) -> bytes:
    return (world.dir / "metadata" / f"{version}.snapshot.json").read_bytes()


def patch_path(world: World, version: int) -> Path:
    return world.dir / "metadata" / snappatches.patch_name(version)


def change(world: World, i: int) -> int:
    """One package added and published: the new snapshot version."""
    world.add([world.package(f"pkg-{100 + i:03d}", "1.0.0")])
    world.publish()
    return snapshot_version(world)


def whole(got: list[str], version: int) -> bool:
    """Whether snapshot ``version`` was downloaded whole: compressed (or, failing that, in full)."""
    return bool({f"metadata/{version}.snapshot.json", f"metadata/snapshot-patches/{version}.zst"} & set(got))


def assert_same_as_full(world: World, client: Client, tmp_path: Path) -> None:
    fresh = Client(world, tmp_path / "fresh-cache")
    assert whole(fresh.refreshed(), snapshot_version(world))
    assert client.trusted() == fresh.trusted()
    assert client.trusted()["snapshot.json"] == snapshot_bytes(world, snapshot_version(world))


# ----------------------------------------------------------------- the publisher

def test_each_publish_writes_the_patch_from_the_previous_snapshot(world: World) -> None:
    first = snapshot_version(world)
    versions = [change(world, i) for i in range(3)]
    assert versions == [first + 1, first + 2, first + 3]
    for v in versions:
        old, new = snapshot_bytes(world, v - 1), snapshot_bytes(world, v)
        patch = patch_path(world, v).read_bytes()
        assert patch == make_patch(old, new), "deterministic: the file is make_patch of the two snapshots"
        assert apply_patch(old, patch, origin="test") == new
        assert len(segments(new)) > 256 and len(patch) * 10 < len(new), (len(patch), len(new))
        doc = json.loads(patch)
        assert doc["format"] == FORMAT and doc["to"] == FileId.of(new).to_dict()


def test_patches_are_not_roles_and_leave_no_temporaries(world: World) -> None:
    change(world, 0)
    store = world.store()
    assert "snapshot-patches" not in role_versions(store) and not store.has_role("snapshot-patches")
    assert sorted(p.name for p in (world.dir / "metadata").iterdir() if p.name.startswith(".")) == []
    v = snapshot_version(world)
    assert sorted(p.name for p in (world.dir / "metadata" / "snapshot-patches").iterdir()) == \
        sorted([f"{v}.json", *(f"{n}.zst" for n in range(2, v + 1))])


def test_only_the_last_patches_are_kept_and_pushed(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snappatches, "KEEP", 3)
    versions = [change(world, i) for i in range(5)]
    assert snappatches.patch_versions(world.dir / "metadata") == versions[-3:]
    names = [f"snapshot-patches/{v}.json" for v in versions[-3:]]
    assert set(names) <= current_metadata(world.dir)
    keys = [u.key for u in plan(world.dir)]
    assert keys[-1] == "metadata/timestamp.json"
    at = [keys.index(f"metadata/{n}") for n in names]
    assert at == sorted(at) and max(at) < keys.index(f"metadata/{versions[-1]}.snapshot.json")


# ----------------------------------------------------------------- the client

def test_a_refresh_after_one_change_downloads_the_patch_not_the_snapshot(world: World, tmp_path: Path) -> None:
    client = Client(world, tmp_path / "cache")
    assert whole(client.refreshed(), snapshot_version(world))
    v = change(world, 0)
    got = client.refreshed()
    assert f"metadata/snapshot-patches/{v}.json" in got and not whole(got, v)
    assert client.patching == {"snapshot-patch-bytes": patch_path(world, v).stat().st_size, "snapshot-patched": 1}
    assert dict(client.log)[f"metadata/snapshot-patches/{v}.json"] == patch_path(world, v).stat().st_size
    assert_same_as_full(world, client, tmp_path)
    assert client.metadata("pkg-100", "x86_64").version == "1.0.0"


@pytest.mark.parametrize("missing", [False, True])
def test_patches_over_http(world: World, tmp_path: Path, missing: bool) -> None:
    with serving(world.dir) as url:
        client = Client(world, tmp_path / "cache", url=url)
        client.refreshed()
        v = change(world, 0)
        if missing:
            patch_path(world, v).unlink()   # a 404: the full snapshot
        got = client.refreshed()
        assert whole(got, v) == missing
        assert client.patching.get("snapshot-patched", 0) == (not missing)
        assert client.trusted()["snapshot.json"] == snapshot_bytes(world, v)


def test_a_client_a_few_versions_behind_applies_the_patches_in_order(world: World, tmp_path: Path) -> None:
    client = Client(world, tmp_path / "cache")
    client.refreshed()
    versions = [change(world, i) for i in range(3)]
    got = client.refreshed()
    assert [n for n in got if "snapshot" in n] == [f"metadata/snapshot-patches/{v}.json" for v in versions]
    assert client.patching["snapshot-patched"] == 1
    assert_same_as_full(world, client, tmp_path)


def test_a_client_further_behind_than_the_window_downloads_in_full(world: World, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert snappatches.KEEP == 64
    monkeypatch.setattr(snappatches, "KEEP", 2)
    client = Client(world, tmp_path / "cache")
    client.refreshed()
    versions = [change(world, i) for i in range(3)]
    got = client.refreshed()
    assert whole(got, versions[-1]) and not [n for n in got if n.endswith(".json") and "patches" in n]
    assert client.patching == {}
    assert_same_as_full(world, client, tmp_path)


def test_a_timestamp_without_the_snapshot_hash_means_a_full_download(world: World, tmp_path: Path) -> None:
    client = Client(world, tmp_path / "cache")
    client.refreshed()
    v = change(world, 0)
    fetcher = snappatches.PatchingFetcher(UrlFetcher(), metadata_url=world.dir.as_uri() + "/metadata/",
                                          cache=client.metadata_dir)
    ts = json.loads((world.dir / "metadata" / "timestamp.json").read_bytes())
    del ts["signed"]["meta"]["snapshot.json"]["hashes"]
    (client.metadata_dir / "timestamp.json").write_text(json.dumps(ts))
    assert fetcher._derived(v, "x") is None
    ts["signed"]["meta"]["snapshot.json"] = {"version": v, "length": len(snapshot_bytes(world, v)),
                                             "hashes": {"sha256": hashlib.sha256(snapshot_bytes(world, v)).hexdigest()}}
    (client.metadata_dir / "timestamp.json").write_text(json.dumps(ts))
    assert fetcher._derived(v, "x") == snapshot_bytes(world, v), "the same cache with the hash: patched"


def test_a_mirror_serves_the_patches_between_the_snapshots_it_copied(world: World, tmp_path: Path) -> None:
    dest = tmp_path / "mirror"
    mirror(Client(world, tmp_path / "mirror-cache"), dest, list(ARCHES))
    reader = Client(world, tmp_path / "cache", served=dest)
    reader.refreshed()
    v = change(world, 0)
    mirror(Client(world, tmp_path / "mirror-cache"), dest, list(ARCHES))
    assert (dest / "metadata" / snappatches.patch_name(v)).read_bytes() == patch_path(world, v).read_bytes()
    got = reader.refreshed()
    assert f"metadata/snapshot-patches/{v}.json" in got and not whole(got, v)
    assert reader.trusted()["snapshot.json"] == snapshot_bytes(world, v)


# ----------------------------------------------------------------- the compressed snapshot

def compressed_path(world: World, version: int) -> Path:
    return world.dir / "metadata" / snappatches.compressed_name(version)


def test_a_new_client_downloads_the_compressed_snapshot(world: World, tmp_path: Path) -> None:
    v = snapshot_version(world)
    packed = compressed_path(world, v).read_bytes()
    assert packed == snappatches.compress(snapshot_bytes(world, v)), "deterministic"
    assert len(packed) * 4 < len(snapshot_bytes(world, v))
    client = Client(world, tmp_path / "cache")
    got = client.refreshed()
    assert f"metadata/snapshot-patches/{v}.zst" in got and f"metadata/{v}.snapshot.json" not in got
    assert client.compressed == {"snapshot-compressed": 1, "snapshot-compressed-bytes": len(packed)}
    assert client.trusted()["snapshot.json"] == snapshot_bytes(world, v)
    assert client.metadata("pkg-001", "x86_64").version == "1.0.0"


def test_the_compressed_snapshot_over_http_and_pushed_before_the_timestamp(world: World, tmp_path: Path) -> None:
    v = change(world, 0)
    with serving(world.dir) as url:
        client = Client(world, tmp_path / "cache", url=url)
        assert f"metadata/snapshot-patches/{v}.zst" in client.refreshed()
        assert client.trusted()["snapshot.json"] == snapshot_bytes(world, v)
    keys = [u.key for u in plan(world.dir)]
    assert f"snapshot-patches/{v}.zst" in current_metadata(world.dir)
    assert f"snapshot-patches/{v - 1}.zst" not in current_metadata(world.dir)   # only the current one is served
    assert keys.index(f"metadata/snapshot-patches/{v}.zst") < keys.index("metadata/timestamp.json")


def _bomb(data: bytes) -> bytes:
    """A small frame declaring 50 times the snapshot (python-zstandard would allocate what it declares)."""
    return zstandard.ZstdCompressor(write_content_size=True).compress(b"\0" * (len(data) * 50))


def _tampered(data: bytes) -> bytes:
    """The snapshot with one byte of its signature changed: the same length, another hash."""
    at = data.index(b'"sig":"') + len(b'"sig":"')
    return snappatches.compress(data[:at] + (b"0" if data[at:at + 1] != b"0" else b"1") + data[at + 1:])


PACKED_DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "tampered": _tampered,
    "not zstd": lambda data: b"not a zstd frame at all",
    "another snapshot": lambda data: snappatches.compress(data.replace(b'"version":', b'"version": ', 1)),
    "truncated": lambda data: snappatches.compress(data)[:-9],
    "declares too much": _bomb,
    "larger than the snapshot": lambda data: zstandard.ZstdCompressor(level=1).compress(data) + b"x" * len(data),
    "empty": lambda data: b"",
}


@pytest.mark.parametrize("damage", [*sorted(PACKED_DAMAGE), "missing"])
def test_a_hostile_or_missing_compressed_snapshot_means_a_full_download(world: World, tmp_path: Path,
                                                                        damage: str) -> None:
    v = snapshot_version(world)
    path = compressed_path(world, v)
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(PACKED_DAMAGE[damage](snapshot_bytes(world, v)))
    client = Client(world, tmp_path / "cache")
    got = client.refreshed()
    assert f"metadata/{v}.snapshot.json" in got, "the full snapshot, after the compressed one was given up"
    assert client.compressed.get("snapshot-compressed-fallbacks") == 1 and "snapshot-compressed" not in \
        client.compressed
    assert client.trusted()["snapshot.json"] == snapshot_bytes(world, v)


def test_a_mirror_serves_its_snapshot_compressed(world: World, tmp_path: Path) -> None:
    dest = tmp_path / "mirror"
    v = change(world, 0)
    mirror(Client(world, tmp_path / "mirror-cache"), dest, list(ARCHES))
    assert (dest / "metadata" / snappatches.compressed_name(v)).read_bytes() == compressed_path(world, v).read_bytes()
    reader = Client(world, tmp_path / "cache", served=dest)
    assert f"metadata/snapshot-patches/{v}.zst" in reader.refreshed()
    assert reader.trusted()["snapshot.json"] == snapshot_bytes(world, v)


# ----------------------------------------------------------------- hostile patches

def _doc(patch: bytes) -> dict[str, object]:
    doc: dict[str, object] = json.loads(patch)
    return doc


def _with(patch: bytes, **fields: object) -> bytes:
    return json.dumps({**_doc(patch), **fields}).encode()


def _other_base(old: bytes, new: bytes, patch: bytes) -> bytes:
    return make_patch(old + b" ", new)


def _wrong_result(old: bytes, new: bytes, patch: bytes) -> bytes:
    return _with(patch, to={"length": len(new), "sha256": "0" * 64})


def _out_of_range(old: bytes, new: bytes, patch: bytes) -> bytes:
    n = len(segments(old))
    return _with(patch, ops=[[n, n + 1, ["x"]]])


def _overlapping(old: bytes, new: bytes, patch: bytes) -> bytes:
    return _with(patch, ops=[[5, 9, ["x"]], [7, 8, ["y"]]])


def _too_many_ops(old: bytes, new: bytes, patch: bytes) -> bytes:
    return _with(patch, ops=[[i, i + 1, []] for i in range(MAX_OPS + 1)])


def _oversized(old: bytes, new: bytes, patch: bytes) -> bytes:
    return patch + b" " * MAX_PATCH_BYTES


def _not_json(old: bytes, new: bytes, patch: bytes) -> bytes:
    return b"\x00not json" + patch


def _deep(old: bytes, new: bytes, patch: bytes) -> bytes:
    return b"[" * 200_000 + b"]" * 200_000


def _wide_char(old: bytes, new: bytes, patch: bytes) -> bytes:
    return _with(patch, ops=[[0, 1, ["\u2603"]]])


def _garbage_result(old: bytes, new: bytes, patch: bytes) -> bytes:
    """Self-consistent (its own result hash is right) but the result, of the right length, is not the signed
    snapshot (one character of the signature changed): only the timestamp's hash tells."""
    at = new.index(b'"sig":"') + len(b'"sig":"')
    evil = new[:at] + (b"0" if new[at:at + 1] != b"0" else b"1") + new[at + 1:]
    assert len(evil) == len(new) and evil != new
    return make_patch(old, evil)


def _lengthy_result(old: bytes, new: bytes, patch: bytes) -> bytes:
    """The ops insert far more than the stated result length."""
    return _with(patch, ops=[[0, 0, ["A" * 100_000] * 5]])


# damage -> (the hostile patch, what apply_patch says of it: each check is the one that catches it)
DAMAGE: dict[str, tuple[Callable[[bytes, bytes, bytes], bytes], str]] = {
    "other base": (_other_base, "for another snapshot"),
    "wrong result": (_wrong_result, "not the one the patch names"),
    "out of range": (_out_of_range, "goes past the"),
    "overlapping": (_overlapping, "overlaps the previous range"),
    "too many ops": (_too_many_ops, "at most 16384 ranges"),
    "oversized": (_oversized, "a snapshot patch of .* bytes \\(at most"),
    "not JSON": (_not_json, "not a snapshot patch"),
    "deep nesting": (_deep, "not a snapshot patch .*recursion"),
    "wide character": (_wide_char, "not a snapshot patch .*latin-1"),
    "lengthy result": (_lengthy_result, "gives more than"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_apply_refuses_a_hostile_patch(world: World, damage: str) -> None:
    v = change(world, 0)
    old, new = snapshot_bytes(world, v - 1), snapshot_bytes(world, v)
    make, says = DAMAGE[damage]
    with pytest.raises(VerificationError, match=f"^snapshot-patches/x.json: .*{says}"):
        apply_patch(old, make(old, new, make_patch(old, new)), origin="snapshot-patches/x.json")


@pytest.mark.parametrize("damage", [*sorted(DAMAGE), "garbage result", "missing"])
def test_a_hostile_or_missing_patch_means_a_full_download(world: World, tmp_path: Path, damage: str) -> None:
    client = Client(world, tmp_path / "cache")
    client.refreshed()
    v = change(world, 0)
    old, new = snapshot_bytes(world, v - 1), snapshot_bytes(world, v)
    path = patch_path(world, v)
    if damage == "missing":
        path.unlink()
    else:
        make = _garbage_result if damage == "garbage result" else DAMAGE[damage][0]
        path.write_bytes(make(old, new, path.read_bytes()))
    got = client.refreshed()
    assert f"metadata/snapshot-patches/{v}.json" in got or damage == "missing"
    assert whole(got, v), "the whole snapshot, after the patch was given up"
    assert client.patching.get("snapshot-patch-fallbacks") == 1 and "snapshot-patched" not in client.patching
    assert_same_as_full(world, client, tmp_path)


def test_a_damaged_cached_snapshot_means_a_full_download(world: World, tmp_path: Path) -> None:
    client = Client(world, tmp_path / "cache")
    client.refreshed()
    v = change(world, 0)
    cached = client.metadata_dir / "snapshot.json"
    cached.write_bytes(cached.read_bytes().replace(b'"version":', b'"version": ', 1))   # not the patch's base
    got = client.refreshed()
    assert whole(got, v) and client.patching.get("snapshot-patch-fallbacks") == 1
    assert_same_as_full(world, client, tmp_path)


# ----------------------------------------------------------------- properties of make/apply

# segments from a tiny alphabet: equal segments are common, and the separator's bytes appear inside them
SEGMENT = st.binary(max_size=6).map(lambda b: bytes(b'a,"{}'[x % 5] for x in b))
LISTS = st.lists(SEGMENT, min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(LISTS, LISTS)
def test_a_patch_turns_any_file_into_any_other(a: list[bytes], b: list[bytes]) -> None:
    old, new = SEPARATOR.join(a), SEPARATOR.join(b)
    patch = make_patch(old, new)
    assert apply_patch(old, patch, origin="p") == new
    assert make_patch(old, new) == patch
    if old != new:
        with pytest.raises(VerificationError):
            apply_patch(new + b"!", patch, origin="p")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=12).filter(lambda s: SEPARATOR not in s), min_size=50, max_size=300,
                unique=True),
       st.data())
def test_a_few_changed_entries_make_a_few_ranges(entries: list[bytes], data: st.DataObject) -> None:
    changed = data.draw(st.sets(st.integers(0, len(entries) - 1), min_size=1, max_size=3))
    new_entries = [e + b"'" if i in changed else e for i, e in enumerate(entries)]
    old, new = SEPARATOR.join(entries), SEPARATOR.join(new_entries)
    patch = make_patch(old, new)
    assert len(_doc(patch)["ops"]) <= len(changed)   # type: ignore[arg-type]
    assert apply_patch(old, patch, origin="p") == new
