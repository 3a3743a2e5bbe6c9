"""The snapshot as plain JSON (composer/repo/snapshotdoc.py): the bytes publish writes are python-tuf's for the
same content, signed by the root's snapshot key; a malformed previous snapshot is one line; only a well-formed
length and hash are carried."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from tuf.api.metadata import Metadata, Root, Snapshot

from composer.errors import VerificationError
from composer.repo import snapshotdoc
from composer.repo.store import SERIALIZER, RepoStore
from tests.repo_fixtures import Pristine, Repo, build_pristine


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    return build_pristine(tmp_path_factory.mktemp("pristine"))


@pytest.fixture()
def repo(pristine: Pristine, tmp_path: Path) -> Repo:
    return pristine.copy(tmp_path)


def current(repo: Repo) -> tuple[Path, bytes]:
    path = repo.latest("snapshot")
    return path, path.read_bytes()


def test_a_published_snapshot_is_python_tufs_bytes_and_verifies(repo: Repo) -> None:
    repo.publish()
    _, data = current(repo)
    md = Metadata[Snapshot].from_bytes(data)
    assert md.to_bytes(SERIALIZER) == data            # python-tuf writes exactly these bytes for this content
    root = Metadata[Root].from_bytes(repo.latest("root").read_bytes()).signed
    root.verify_delegate("snapshot", md.signed_bytes, md.signatures)
    listed = md.signed.meta
    assert listed["targets.json"].hashes and listed["alice.json"].length   # top-level roles: length and hash
    assert all(m.length is None for name, m in listed.items() if name.startswith("sparse-"))   # bins: version
    client = repo.client()
    client.refresh()                                  # ngclient takes it


def test_the_next_snapshot_keeps_unknown_fields_and_bumps_the_version(repo: Repo) -> None:
    store = repo.store
    before = snapshotdoc.read(store)
    version, data = snapshotdoc.sign(store, before, snapshotdoc.meta(store, ["targets"], before),
                                     expires=dt.datetime(2030, 1, 2, 3, 4, 5),   # (naive: taken as UTC)
                                     keys=store.online_keys("snapshot"))
    signed = json.loads(data)["signed"]
    assert version == before.version + 1 == signed["version"]
    assert signed["expires"] == "2030-01-02T03:04:05Z" and signed["spec_version"] == before.signed["spec_version"]
    assert list(signed["meta"]) == ["targets.json"]


BAD: list[tuple[Any, str]] = [
    (b"not json", "not JSON"),
    ([1], "not snapshot metadata"),
    ({"signed": {"_type": "timestamp"}}, "not snapshot metadata"),
    ({"signed": {"_type": "snapshot", "version": 0, "meta": {}}}, "version is not a positive integer"),
    ({"signed": {"_type": "snapshot", "version": True, "meta": {}}}, "version is not a positive integer"),
    ({"signed": {"_type": "snapshot", "version": 2, "meta": []}}, "meta is not an object"),
]


@pytest.mark.parametrize("entry", [{"version": "3"}, 3, {"version": 0}, {"version": True}, {}, None])
def test_a_malformed_entry_is_not_listed(entry: Any) -> None:
    doc = snapshotdoc.parse(json.dumps({"signed": {
        "_type": "snapshot", "version": 2, "spec_version": "1.0.31", "expires": "2030-01-01T00:00:00Z", "meta": {
        "a.json": entry, "b.json": {"version": 4}}}}).encode(), "s.json")
    assert doc.listed_version("a") is None and doc.hashed("a") is None
    assert doc.listed_versions() == {"b.json": 4} and doc.listed_version("b") == 4


@pytest.mark.parametrize(("doc", "what"), BAD)
def test_a_malformed_snapshot_is_one_line_naming_the_file(doc: Any, what: str) -> None:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    with pytest.raises(VerificationError, match="7.snapshot.json: unreadable metadata") as info:
        snapshotdoc.parse(data, "metadata/7.snapshot.json")
    assert what in str(info.value)


def test_an_oversized_snapshot_is_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshotdoc, "MAX_SNAPSHOT_BYTES", 100)
    with pytest.raises(VerificationError, match="larger than 100 bytes"):
        snapshotdoc.parse(b"{" + b" " * 200 + b"}", "s.json")


@pytest.mark.parametrize("entry", [
    {"version": 1, "length": -1, "hashes": {"sha256": "a" * 64}},
    {"version": 1, "length": 10, "hashes": {"sha256": "short"}},
    {"version": 1, "length": 10, "hashes": ["a" * 64]},
    {"version": 1, "length": True, "hashes": {"sha256": "a" * 64}},
    {"version": 1},
])
def test_only_a_well_formed_length_and_hash_is_carried(repo: Repo, entry: dict[str, Any]) -> None:
    store = repo.store
    version = store.current_version("alice")
    previous = snapshotdoc.SnapshotDoc({"_type": "snapshot", "version": 3,
                                        "meta": {"alice.json": {**entry, "version": version}}})
    got = snapshotdoc.meta(store, ["alice"], previous)["alice.json"]
    real = (store.metadata_dir / f"{version}.alice.json").read_bytes()
    assert got == snapshotdoc.file_entry(version, real)   # read and hashed again, not carried
    good = snapshotdoc.SnapshotDoc({"_type": "snapshot", "version": 3, "meta": {"alice.json": {
        "version": version, "length": 5, "hashes": {"sha256": "b" * 64}}}})
    assert snapshotdoc.meta(store, ["alice"], good)["alice.json"]["length"] == 5   # carried (not re-read)


@pytest.mark.parametrize("change", [
    lambda s: s.pop("spec_version"),                 # missing
    lambda s: s.update(spec_version="2.0.0"),        # a spec python-tuf does not support
    lambda s: s.update(spec_version=1),              # not a string
    lambda s: s.update(expires="tomorrow"),
    lambda s: s.pop("expires"),
])
def test_a_previous_snapshot_python_tuf_refuses_is_not_signed_again(repo: Repo, change: Any) -> None:
    """(found by review: the other fields of the previous snapshot are carried into the next one)"""
    path = repo.latest("snapshot")
    doc = json.loads(path.read_bytes())
    change(doc["signed"])
    path.write_bytes(json.dumps(doc).encode())
    before = sorted(p.name for p in (repo.dir / "metadata").iterdir())
    with pytest.raises(VerificationError, match=f"{path.name}: unreadable metadata .not valid snapshot metadata"):
        repo.publish()
    assert sorted(p.name for p in (repo.dir / "metadata").iterdir()) == before   # nothing signed


@pytest.mark.parametrize("digest", ["Z" * 64, "A" * 64, "\u00e9" * 64])
def test_a_sha256_that_is_not_64_lower_case_hex_digits_is_not_carried(digest: str) -> None:
    doc = snapshotdoc.SnapshotDoc({"_type": "snapshot", "version": 3, "meta": {
        "alice.json": {"version": 2, "length": 10, "hashes": {"sha256": digest}}}})
    assert doc.hashed("alice") is None


def test_a_role_written_after_the_names_were_listed_is_in_the_listing(repo: Repo) -> None:
    """(found by review: metadata/'s names listed first, the role listing built from them after a write)"""
    store = RepoStore(repo.dir)
    store.metadata_names()                                  # what repair() asks first (remove_temporaries)
    data = repo.latest("alice").read_bytes()
    newest = int(repo.latest("alice").name.split(".")[0]) + 1
    store.publisher.put_metadata(f"{newest}.alice.json", data)
    assert store.current_version("alice") == newest
