"""Content-defined chunking, the chunk index and assemble: real files, a real store, hostile inputs."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import FetchError, UserError, VerificationError
from composer.update import assemble as assemble_module
from composer.update.assemble import Seed, assemble, plan, seed_map
from composer.update.chunking import ChunkParams, chunk_lengths
from composer.update.index import ChunkIndex
from composer.update.store import chunk_image, chunk_name
from tests.unit.test_zstd_limits import lying_frame

SMALL = ChunkParams(min_size=1 << 10, avg_size=4 << 10, max_size=16 << 10)


def noise(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def image(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=40_000))
def test_chunks_cover_the_input_within_bounds(data: bytes) -> None:
    lengths = list(chunk_lengths(data, SMALL))
    assert sum(lengths) == len(data)
    assert all(n <= SMALL.max_size for n in lengths)
    assert all(n >= SMALL.min_size for n in lengths[:-1])


def test_an_insertion_moves_only_the_cuts_near_it() -> None:
    old = noise(400_000)
    new = old[:200_000] + b"inserted" + old[200_000:]
    a, b = list(chunk_lengths(old, SMALL)), list(chunk_lengths(new, SMALL))
    def digests(data: bytes, lengths: list[int]) -> set[str]:
        out, pos = set(), 0
        for n in lengths:
            out.add(hashlib.sha256(data[pos:pos + n]).hexdigest())
            pos += n
        return out
    shared = digests(old, a) & digests(new, b)
    assert len(shared) >= len(a) - 3


def test_zeros_are_cut_at_the_maximum_and_deduplicated(tmp_path: Path) -> None:
    stored = chunk_image(image(tmp_path / "z", bytes(100_000)), tmp_path / "store", SMALL)
    assert {c.size for c in stored.index.chunks[:-1]} == {SMALL.max_size}
    assert len(stored.index.unique()) == 2 and stored.written == 2


def test_the_store_and_index_are_deterministic(tmp_path: Path) -> None:
    data = noise(300_000)
    one = chunk_image(image(tmp_path / "a", data), tmp_path / "s1", SMALL)
    two = chunk_image(image(tmp_path / "b", data), tmp_path / "s2", SMALL)
    assert one.index.to_bytes() == two.index.to_bytes()
    files = sorted(p.relative_to(tmp_path / "s1") for p in (tmp_path / "s1").rglob("*.cacnk"))
    assert files == sorted(p.relative_to(tmp_path / "s2") for p in (tmp_path / "s2").rglob("*.cacnk"))
    assert all((tmp_path / "s1" / f).read_bytes() == (tmp_path / "s2" / f).read_bytes() for f in files)
    assert ChunkIndex.from_bytes(one.index.to_bytes(), "x") == one.index


def test_invalid_chunk_sizes_are_a_user_error() -> None:
    with pytest.raises(UserError, match="are invalid") as caught:
        ChunkParams(min_size=1024, avg_size=3000, max_size=8192)
    assert "avg a power of two" in caught.value.hint


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(format="casync"), r"not a chunk index"),
    (lambda d: d.update(version=2), r"\$\.version: 2"),
    (lambda d: d.update(chunking={"min": 1, "avg": 2, "max": 3}), r"\$\.chunking"),
    (lambda d: d.update(size=d["size"] + 1), r"add up to"),
    (lambda d: d["chunks"][0].__setitem__(0, "zz"), r"\$\.chunks\[0\]"),
    (lambda d: d["chunks"][0].__setitem__(1, 1 << 30), r"\$\.chunks\[0\]"),
    (lambda d: d.update(sha256=5), r"\$\.sha256"),
])
def test_a_hostile_index_is_refused_naming_the_place(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    stored = chunk_image(image(tmp_path / "a", noise(50_000)), tmp_path / "s", SMALL)
    doc = json.loads(stored.index.to_bytes())
    edit(doc)
    with pytest.raises(VerificationError, match=message):
        ChunkIndex.from_bytes(json.dumps(doc).encode(), "idx")


def test_an_index_over_the_size_limit_is_refused_before_parsing() -> None:
    with pytest.raises(VerificationError, match="over the limit"):
        ChunkIndex.from_bytes(b" " * (97 << 20), "idx")


class Store:
    """A fetch over a local store that counts, and can be told to misbehave."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.asked: list[str] = []

    def __call__(self, sha: str, max_bytes: int) -> bytes:
        self.asked.append(sha)
        data = (self.root / chunk_name(sha)).read_bytes()
        if len(data) > max_bytes:
            raise FetchError("too long")
        return data


def test_assemble_reuses_the_seed_and_fetches_the_rest(tmp_path: Path) -> None:
    old = noise(500_000)
    new = old[:100_000] + noise(5_000, seed=2) + old[100_000:400_000] + old[:50_000]
    seed = image(tmp_path / "old", old)
    stored = chunk_image(image(tmp_path / "new", new), tmp_path / "s", SMALL)
    fetch = Store(tmp_path / "s")
    report = assemble(stored.index, [seed], fetch, tmp_path / "out", origin="store")
    assert (tmp_path / "out").read_bytes() == new
    assert report.fetched_chunks == len(set(fetch.asked)) == len(fetch.asked) <= 4
    assert report.reused_bytes + report.fetched_bytes < report.size + 1 and report.reused_bytes > 400_000


def test_assemble_without_a_seed_fetches_each_distinct_chunk_once(tmp_path: Path) -> None:
    data = noise(40_000) * 3
    stored = chunk_image(image(tmp_path / "a", data), tmp_path / "s", SMALL)
    fetch = Store(tmp_path / "s")
    report = assemble(stored.index, [], fetch, tmp_path / "out", origin="store")
    assert (tmp_path / "out").read_bytes() == data
    assert len(fetch.asked) == len(stored.index.unique()) == report.fetched_chunks
    assert [s.kind for s in plan(stored.index, {})].count("output") == len(stored.index.chunks) - len(fetch.asked)


@pytest.mark.parametrize("attack", ["other bytes", "not zstd", "bomb", "lying header"])
def test_a_bad_chunk_is_an_error_and_nothing_is_written(tmp_path: Path, attack: str) -> None:
    stored = chunk_image(image(tmp_path / "a", noise(60_000)), tmp_path / "s", SMALL)
    victim = tmp_path / "s" / chunk_name(stored.index.chunks[1].sha256)
    size = stored.index.chunks[1].size
    victim.write_bytes({"other bytes": zstandard.ZstdCompressor().compress(noise(size, seed=9)),
                        "not zstd": b"garbage" * 10,
                        "bomb": zstandard.ZstdCompressor().compress(bytes(size * 100)),
                        "lying header": lying_frame(noise(size), 1 << 40)}[attack])
    (tmp_path / "out").write_bytes(b"previous")
    with pytest.raises(VerificationError, match=r"store: chunk 1 \("):
        assemble(stored.index, [], Store(tmp_path / "s"), tmp_path / "out", origin="store")
    assert (tmp_path / "out").read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_seed_chunk_is_verified_when_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A seed that changes between planning and reading is caught, not copied."""
    data = noise(60_000)
    seed = image(tmp_path / "seed", data)
    stored = chunk_image(image(tmp_path / "a", data), tmp_path / "s", SMALL)
    seeded = seed_map(stored.index, [seed])
    assert len(seeded) == len(stored.index.unique())
    seed.write_bytes(noise(60_000, seed=5))
    monkeypatch.setattr(assemble_module, "seed_map", lambda index, seeds: seeded)
    with pytest.raises(VerificationError, match="do not have the index's sha256"):
        assemble(stored.index, [seed], Store(tmp_path / "s"), tmp_path / "out", origin="store")
    assert not (tmp_path / "out").exists()


def test_a_seed_with_its_own_index_is_not_cut_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = noise(300_000)
    new = old[:150_000] + b"x" + old[150_000:]
    seed_stored = chunk_image(image(tmp_path / "old", old), tmp_path / "s", SMALL)
    stored = chunk_image(image(tmp_path / "new", new), tmp_path / "s", SMALL)
    monkeypatch.setattr(assemble_module, "iter_chunks", None)   # cutting the seed would fail
    report = assemble(stored.index, [Seed(path=tmp_path / "old", index=seed_stored.index)],
                      Store(tmp_path / "s"), tmp_path / "out", origin="store")
    assert (tmp_path / "out").read_bytes() == new and report.fetched_chunks <= 3
