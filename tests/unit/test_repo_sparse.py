"""The sparse index (composer/repo/sparse.py, composer/solve/sparsepool.py): paths of hostile names, what a
publish writes, the client's verified per-name reads cached by hash, a tampered file refused, and every resolver
case resolved from the closure of its requests equal to the resolution against the whole index."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from composer.errors import UserError, VerificationError
from composer.fsutil import canonical_json
from composer.repo import edit
from composer.repo.client import RepositoryClient
from composer.repo.hashbins import bin_bits
from composer.repo.sparse import (
    MAX_NAME,
    SPARSE_BIN_PREFIX,
    SparseFile,
    base_target_path,
    build_sparse,
    encode_name,
    parse_base,
    parse_sparse,
    sparse_target_path,
)
from composer.solve.pool import IndexData, SolvIndex
from composer.solve.resolve import ResolveError, Resolver, base_requests
from composer.solve.sparsepool import closure
from tests.repo_fixtures import ARCH, Pristine, Repo, build_pristine, flip_byte, load
from tests.unit.test_resolve import CASES, entry, request

# ----------------------------------------------------------------- paths

@pytest.mark.parametrize(("name", "path"), [
    ("hello", "index/sparse/x86_64/he/hello.json"),
    ("a", "index/sparse/x86_64/a_/a.json"),
    ("libc6", "index/sparse/x86_64/li/libc6.json"),
    ("driver:virtio-net", "index/sparse/x86_64/dr/driver%3Avirtio-net.json"),
    ("../../etc/passwd", "index/sparse/x86_64/__/..%2F..%2Fetc%2Fpasswd.json"),
    ("Hello", "index/sparse/x86_64/_4/%48ello.json"),
    (".", "index/sparse/x86_64/_2/%2E.json"),
    ("..", "index/sparse/x86_64/_2/%2E%2E.json"),
    ("é", "index/sparse/x86_64/_C/%C3%A9.json"),
])
def test_a_sparse_path_is_one_safe_segment_per_part(name: str, path: str) -> None:
    assert sparse_target_path("x86_64", name) == path
    parts = path.split("/")
    assert len(parts) == 5 and all(p not in ("", ".", "..") for p in parts)
    assert "/" not in encode_name(name)


def test_empty_and_overlong_names_have_no_sparse_file() -> None:
    for name in ("", "x" * (MAX_NAME + 1)):
        with pytest.raises(UserError, match="no sparse file"):
            sparse_target_path("x86_64", name)


# ----------------------------------------------------------------- building and parsing

def entries() -> list[object]:
    return [entry({"name": "app", "version": "1.0.0", "deps": {"web": "1"}}),
            entry({"name": "nginx", "version": "1.2.0", "provides": ["web = 1.0.0"]}),
            entry({"name": "base", "version": "1.0.0", "essential": True, "arch": "noarch"}),
            entry({"name": "other", "version": "1.0.0", "arch": "aarch64"})]


def test_build_writes_names_virtual_names_and_the_base_set() -> None:
    files = build_sparse("x86_64", entries())   # type: ignore[arg-type]
    assert set(files) == {sparse_target_path("x86_64", n) for n in ("app", "nginx", "base", "web")} | \
        {base_target_path("x86_64")}
    web = parse_sparse(files[sparse_target_path("x86_64", "web")], "t", arch="x86_64", name="web")
    assert web.packages == () and web.providers == ("nginx",)
    assert parse_base(files[base_target_path("x86_64")], "t", arch="x86_64").essential == ("base",)
    assert files == build_sparse("x86_64", reversed(entries()))   # type: ignore[arg-type]  # deterministic


def test_a_file_cannot_carry_another_names_packages() -> None:
    files = build_sparse("x86_64", entries())   # type: ignore[arg-type]
    app = files[sparse_target_path("x86_64", "app")]
    with pytest.raises(VerificationError, match="about 'app'"):
        parse_sparse(app, "t", arch="x86_64", name="nginx")
    doc = json.loads(app)
    doc["name"] = "nginx"
    with pytest.raises(VerificationError, match=r"packages\[0\] is app"):
        parse_sparse(canonical_json(doc), "t", arch="x86_64", name="nginx")
    with pytest.raises(VerificationError, match="served for aarch64"):
        parse_sparse(app, "t", arch="aarch64", name="app")
    for bad in (b"{", b"[]", canonical_json({**json.loads(app), "providers": [1]})):
        with pytest.raises(VerificationError):
            parse_sparse(bad, "t", arch="x86_64", name="app")


# ----------------------------------------------------------------- resolution: the closure == the whole index

def _sparse_resolver(files: Mapping[str, bytes], arch: str, roots: set[str]) -> Resolver:
    def lookup(names: Sequence[str]) -> dict[str, list[SparseFile]]:
        out: dict[str, list[SparseFile]] = {}
        for n in names:
            data = files.get(sparse_target_path(arch, n))
            if data is not None:
                out[n] = [parse_sparse(data, n, arch=arch, name=n)]
        return out
    base = parse_base(files[base_target_path(arch)], "base", arch=arch)
    reached = closure({*roots, *base.essential, *base.required}, lookup)
    docs = [d for fs in reached.values() for f in fs for d in f.packages]
    return Resolver(SolvIndex.build([("index", IndexData(None, docs))], arch))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_every_resolver_case_resolves_the_same_from_the_sparse_closure(case: Path) -> None:
    data = json.loads(case.read_text())
    index = [entry(e) for e in data["index"]]
    reqs = [request(r) for r in data["requested"]]
    from composer.solve.lockmodel import Reason
    from composer.solve.resolve import Request
    reqs += [Request(name=f"driver:{d}", reason=Reason.driver_for(d)) for d in data.get("drivers", [])]
    whole = Resolver.of(index, "x86_64")
    sparse = _sparse_resolver(build_sparse("x86_64", index), "x86_64", {r.name for r in reqs})
    for mode in ("none", "essential", "required"):
        reqs_whole = reqs + [r for r in base_requests(whole.index, mode) if r.name not in {q.name for q in reqs}]
        reqs_sparse = reqs + [r for r in base_requests(sparse.index, mode) if r.name not in {q.name for q in reqs}]
        assert [r.name for r in reqs_whole] == [r.name for r in reqs_sparse]
        try:
            expected = [(c.entry.nva, c.reason.text) for c in whole.solve(reqs_whole)]
        except ResolveError:
            with pytest.raises(ResolveError):
                sparse.solve(reqs_sparse)
            continue
        assert [(c.entry.nva, c.reason.text) for c in sparse.solve(reqs_sparse)] == expected


# ----------------------------------------------------------------- the client on a real signed repository

@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    return build_pristine(tmp_path_factory.mktemp("pristine"))


@pytest.fixture()
def repo(pristine: Pristine, tmp_path: Path) -> Repo:
    return pristine.copy(tmp_path)


def test_publish_signs_sparse_files_equal_to_the_whole_index(repo: Repo) -> None:
    client = repo.client()
    assert client.has_sparse(ARCH) and not client.has_sparse("aarch64")
    got = client.sparse_entries(ARCH, ["hello", "libfoo", "evil-tool", "nothing-called-so"])
    assert set(got) == {"hello", "libfoo", "evil-tool"}
    whole: dict[str, list[dict[str, object]]] = {e.name: [] for e in client.index(ARCH)}
    for e in client.index(ARCH):
        whole[e.name].append(e.to_dict())
    assert {n: list(f.packages) for n, f in got.items()} == whole


def test_sparse_files_are_cached_by_hash_only_changed_names_are_fetched(repo: Repo) -> None:
    client = repo.client()
    client.sparse_entries(ARCH, ["hello", "libfoo"])
    assert client.transfers["full"] == 2
    client.sparse_entries(ARCH, ["hello", "libfoo"])
    assert client.transfers["full"] == 2          # from the content-addressed cache
    edit.add(repo.store, [repo.package("hello", "1.2.0")], [repo.keys.alice])
    repo.publish()
    client.refresh()
    before = client.transfers["full"]
    got = client.sparse_entries(ARCH, ["hello", "libfoo"])
    assert client.transfers["full"] == before + 1   # hello changed, libfoo did not
    assert [d["version"] for d in got["hello"].packages] == ["1.0.0", "1.1.0", "1.2.0"]


def test_a_tampered_sparse_file_is_refused(repo: Repo) -> None:
    flip_byte(_stored(repo, sparse_target_path(ARCH, "hello")))
    client = repo.client()
    with pytest.raises(VerificationError, match="hello"):
        client.sparse_entries(ARCH, ["hello"])
    assert client.sparse_entries(ARCH, ["libfoo"])    # the others still verify


def _bin_of(repo: Repo, target_path: str) -> str:
    index = load(repo.latest("index")).signed
    return str(index.delegations.succinct_roles.get_role_for_target(target_path))


def _stored(repo: Repo, target_path: str) -> Path:
    info = load(repo.latest(_bin_of(repo, target_path))).signed.targets[target_path]
    directory, base = target_path.rsplit("/", 1)
    return repo.dir / "targets" / directory / f"{info.hashes['sha256']}.{base}"


def _bin_versions(repo: Repo) -> dict[str, int]:
    snapshot = load(repo.latest("snapshot")).signed
    return {k: v.version for k, v in snapshot.meta.items() if k.startswith(SPARSE_BIN_PREFIX)}


def test_the_sparse_files_live_in_hash_bins_and_one_upload_re_signs_one_bin(repo: Repo) -> None:
    index = load(repo.latest("index")).signed
    assert not any(p.startswith("index/sparse/") for p in index.targets)   # the index role stays small
    succinct = index.delegations.succinct_roles
    assert succinct.name_prefix == SPARSE_BIN_PREFIX and succinct.keyids == [repo.keys.index.keyid]
    before = _bin_versions(repo)
    assert len(before) == 2 ** succinct.bit_length
    edit.add(repo.store, [repo.package("hello", "1.2.0")], [repo.keys.alice])
    repo.publish()
    after = _bin_versions(repo)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {_bin_of(repo, sparse_target_path(ARCH, "hello")) + ".json"}


def test_bin_bits_grow_with_the_number_of_files() -> None:
    assert [bin_bits(n) for n in (0, 1, 512, 1_000, 100_000, 10**7)] == [1, 1, 1, 2, 9, 14]


def test_sparse_files_are_read_offline_from_the_cache(repo: Repo) -> None:
    client = repo.client()
    online = client.sparse_entries(ARCH, ["hello", "libfoo"])
    assert client.has_sparse(ARCH) and client.sparse_base(ARCH).essential == ()
    offline = RepositoryClient(repo.url, repo.root_bytes, client.cache.parent, offline=True)
    assert offline.has_sparse(ARCH) and offline.sparse_entries(ARCH, ["hello", "libfoo"]) == online
    assert offline.is_offline


def test_the_index_role_without_sparse_paths_publishes_no_sparse_index(repo: Repo) -> None:
    targets = load(repo.latest("targets")).signed
    assert edit.publishes_sparse(targets, [ARCH])
    targets.delegations.roles["index"].paths = ["index/*"]
    assert not edit.publishes_sparse(targets, [ARCH])


def test_auto_uses_the_sparse_index_for_large_indexes_only(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    from composer.solve import sparsepool
    clients = {"r": repo.client()}
    assert not sparsepool.sparse_wanted(clients, ARCH)            # auto: this small index is cheaper whole
    monkeypatch.setattr(sparsepool, "AUTO_SPARSE_BYTES", 1)
    assert sparsepool.sparse_wanted(clients, ARCH)
    assert not sparsepool.sparse_wanted(clients, "aarch64")       # not published for aarch64: the whole index
    monkeypatch.setenv("VCOMP_INDEX", "whole")
    assert not sparsepool.sparse_wanted(clients, ARCH)
    monkeypatch.setenv("VCOMP_INDEX", "sparse")
    with pytest.raises(UserError, match="publishes no sparse index for aarch64"):
        sparsepool.sparse_wanted(clients, "aarch64")
    monkeypatch.setenv("VCOMP_INDEX", "partial")
    with pytest.raises(UserError, match="not one of auto, sparse, whole"):
        sparsepool.sparse_wanted(clients, ARCH)


def test_the_closure_skips_names_that_can_have_no_file() -> None:
    asked: list[str] = []

    def lookup(names: Sequence[str]) -> dict[str, list[SparseFile]]:
        asked.extend(names)
        return {n: [SparseFile(name=n, packages=(), providers=("", "x" * (MAX_NAME + 1), "b"))] for n in names}
    assert set(closure(["a", ""], lookup)) == {"a", "b"} and sorted(asked) == ["a", "b"]
