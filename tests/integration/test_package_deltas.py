"""Package deltas over real loopback HTTP: the repository makes them, the client rebuilds the new package from
the cached previous version, verified against the signed hash, and falls back to the full download."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from composer.cli.main import main
from composer.repo.client import RepositoryClient
from composer.repo.deltas import apply_delta, delta_name, make_delta, pairs, write_deltas
from composer.repo.index import IndexEntry
from composer.repo.serve import serve_in_thread
from tests.repo_fixtures import ARCH, Repo

pytestmark = pytest.mark.integration


def upgrade(repo: Repo, url: str) -> RepositoryClient:
    """hello 1.0.0 fetched (so it is in the cache), then hello 1.1.0, by one client."""
    client = repo.client(url=url)
    client.fetch(client.metadata("hello", ARCH, "1.0.0"))
    full = dict(client.transfers)
    client.fetch(client.metadata("hello", ARCH, "1.1.0"))
    client.transfers = {k: v - full.get(k, 0) for k, v in client.transfers.items()}   # the upgrade alone
    return client


def hello_delta(repo: Repo) -> Path:
    entries = {e.version: e for e in repo.client().index(ARCH) if e.name == "hello"}
    return repo.dir / "targets" / delta_name(entries["1.0.0"].sha256, entries["1.1.0"].sha256)


def test_the_repository_makes_a_delta_per_consecutive_pair(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["repo", "deltas", str(repo.dir), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    schema = Path(__file__).resolve().parents[2] / "schemas" / "repo-deltas.schema.json"
    jsonschema.validate(doc, json.loads(schema.read_text()))
    made = {(d["name"], d["from"], d["to"]) for d in doc["deltas"]}
    assert ("hello", "1.0.0", "1.1.0") in made and ("libfoo", "1.0.0", "1.1.0") in made
    assert all(d["made"] for d in doc["deltas"])
    assert main(["repo", "deltas", str(repo.dir), "--json"]) == 0          # idempotent
    assert not any(d["made"] for d in json.loads(capsys.readouterr().out)["deltas"])


def upgrade_served(repo: Repo) -> RepositoryClient:
    """The client after upgrading hello from the repository served over HTTP on 127.0.0.1 (server stopped)."""
    server, url = serve_in_thread(repo.dir)
    try:
        return upgrade(repo, url)
    finally:
        server.shutdown()
        server.server_close()


def test_an_upgrade_is_rebuilt_from_the_delta(repo: Repo) -> None:
    write_deltas(repo.store)
    client = upgrade_served(repo)
    assert client.transfers["delta"] == 1 and client.transfers["full"] == 0
    assert client.transfers["delta-bytes"] == hello_delta(repo).stat().st_size
    assert client.transfers["delta-bytes"] < repo.package("hello", "1.1.0").stat().st_size


@pytest.mark.parametrize("damage", ["missing", "garbage", "another package", "too large"])
def test_a_bad_or_missing_delta_falls_back_to_the_full_package(repo: Repo, damage: str) -> None:
    write_deltas(repo.store)
    delta = hello_delta(repo)
    old, new = repo.package("hello", "1.0.0").read_bytes(), repo.package("hello", "1.1.0").read_bytes()
    if damage == "missing":
        delta.unlink()
    elif damage == "garbage":
        delta.write_bytes(b"\x28\xb5\x2f\xfd" + b"x" * 100)
    elif damage == "another package":      # a valid delta of the right size that gives other bytes
        other = bytearray(new)
        other[len(other) // 2] ^= 0xFF
        delta.write_bytes(make_delta(old, bytes(other)))
    else:
        delta.write_bytes(b"\0" * (len(new) + 1))
    client = upgrade_served(repo)
    assert client.transfers["full"] == 1 and client.transfers["delta"] == 0
    assert client.transfers["delta-fallbacks"] == (0 if damage == "missing" else 1)


def test_no_cached_previous_version_means_the_full_download(repo: Repo) -> None:
    write_deltas(repo.store)
    client = repo.client()
    entry = client.metadata("hello", ARCH, "1.1.0")
    before = client.transfers["full"]       # the index
    client.fetch(entry)
    assert client.transfers["delta"] == 0 and client.transfers["full"] == before + 1


def test_pairs_and_round_trip(repo: Repo) -> None:
    entries = repo.client().index(ARCH)
    assert {(a.name, a.version, b.version) for a, b in pairs(entries)} >= {("hello", "1.0.0", "1.1.0")}
    old, new = repo.package("hello", "1.0.0").read_bytes(), repo.package("hello", "1.1.0").read_bytes()
    assert apply_delta(old, make_delta(old, new), len(new), origin="t") == new


def test_a_pool_build_index_also_finds_the_previous_version(repo: Repo) -> None:
    """The package manager reads the index as documents (index_documents), not entries: deltas still apply."""
    write_deltas(repo.store)
    client = repo.client()
    old = client.metadata("hello", ARCH, "1.0.0")
    client.fetch(old)
    fresh = RepositoryClient(client.urls[0], repo.root_bytes, client.cache.parent)   # same cache, no entries read
    _, docs = fresh.index_documents(ARCH)
    new = next(d for d in docs if d["name"] == "hello" and d["version"] == "1.1.0")
    fresh.fetch(IndexEntry.from_dict(new))
    assert fresh.transfers["delta"] == 1
