"""Offline clients: the last verified state of the cache, re-verified from the pinned root (not freshness)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from composer.errors import FetchError, VerificationError
from composer.repo.client import RepositoryClient
from composer.repo.offline import OfflineView
from tests.repo_fixtures import ARCH, Pristine, Repo, build_pristine, sign


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    return build_pristine(tmp_path_factory.mktemp("pristine"))


@pytest.fixture()
def repo(pristine: Pristine, tmp_path: Path) -> Repo:
    return pristine.copy(tmp_path)


def warm(repo: Repo, cache: Path) -> RepositoryClient:
    client = RepositoryClient(repo.url, repo.root_bytes, cache)
    client.refresh()
    for entry in client.index(ARCH):
        client.fetch(entry)
    return client


def gone(repo: Repo, tmp_path: Path) -> None:
    """What the client's URL serves disappears (an unmounted share, a dead server)."""
    repo.serve(tmp_path / "nowhere")


def offline(repo: Repo, cache: Path, lines: list[str] | None = None, **kw: bool) -> RepositoryClient:
    say = (lines.append if lines is not None else None)
    return RepositoryClient(repo.url, repo.root_bytes, cache, say=say, **kw)


def test_an_offline_client_answers_from_the_cache_without_the_repository(repo: Repo, tmp_path: Path) -> None:
    online = warm(repo, tmp_path / "cache")
    gone(repo, tmp_path)      # the repository is gone: nothing can come from it
    client = offline(repo, tmp_path / "cache", offline=True)
    assert [e.nva for e in client.index(ARCH)] == [e.nva for e in online.index(ARCH)]
    assert client.index_digest(ARCH) == online.index_digest(ARCH)
    entry = client.metadata("hello", ARCH)
    assert client.fetch(entry).read_bytes() == online.fetch(entry).read_bytes()
    assert client.delegated_key(entry).keyid == repo.keys.alice.keyid
    assert client.is_offline


def test_an_unreachable_repository_falls_back_with_a_warning(repo: Repo, tmp_path: Path) -> None:
    warm(repo, tmp_path / "cache")
    gone(repo, tmp_path)
    lines: list[str] = []
    client = offline(repo, tmp_path / "cache", lines)
    assert client.metadata("hello", ARCH).version == "1.1.0"
    assert len(lines) == 1 and "cannot be reached" in lines[0] and "working offline" in lines[0]
    strict = offline(repo, tmp_path / "cache", fallback=False)
    with pytest.raises(FetchError, match="cannot get trusted metadata"):
        strict.refresh()


def test_a_repository_serving_bad_metadata_is_not_a_reason_to_go_offline(repo: Repo, tmp_path: Path) -> None:
    warm(repo, tmp_path / "cache")
    ts = repo.meta("timestamp.json")
    doc = json.loads(ts.read_bytes())
    doc["signatures"][0]["sig"] = "00" * 64
    ts.write_text(json.dumps(doc))
    with pytest.raises(FetchError, match="signatures do not verify"):
        offline(repo, tmp_path / "cache").refresh()


def test_offline_with_nothing_cached_says_run_once_online(repo: Repo, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="no cached 'targets' metadata") as info:
        offline(repo, tmp_path / "empty", offline=True).refresh()
    assert info.value.hint and "online" in info.value.hint


def test_offline_names_a_package_that_is_not_cached(repo: Repo, tmp_path: Path) -> None:
    client = RepositoryClient(repo.url, repo.root_bytes, tmp_path / "cache")
    client.refresh()
    client.index(ARCH)                               # the index is cached, no package is
    client.fetch(client.metadata("libfoo", ARCH))    # (and alice's role metadata with it)
    cold = offline(repo, tmp_path / "cache", offline=True)
    with pytest.raises(FetchError, match=r"packages/hello/hello-1\.1\.0-x86_64\.vpk is not in the package cache "
                                         r"and --offline forbids the network") as info:
        cold.fetch(cold.metadata("hello", ARCH))
    assert info.value.hint and "once online" in info.value.hint


def test_tampered_cached_metadata_is_refused_offline(repo: Repo, tmp_path: Path) -> None:
    client = warm(repo, tmp_path / "cache")
    path = client.metadata_dir / "targets.json"
    from tuf.api.metadata import Metadata
    md = Metadata.from_bytes(path.read_bytes())
    md.signed.version += 1
    path.write_bytes(sign(md, [repo.keys.mallory]))   # not the offline targets key
    with pytest.raises(VerificationError, match="cached 'targets' metadata does not verify"):
        OfflineView(client.metadata_dir, repo.root_bytes, repo.url)
    with pytest.raises(VerificationError, match="does not verify"):
        offline(repo, tmp_path / "cache", offline=True).refresh()


def test_a_developer_role_cannot_list_paths_outside_its_delegation_offline(repo: Repo, tmp_path: Path) -> None:
    client = warm(repo, tmp_path / "cache")
    view = OfflineView(client.metadata_dir, repo.root_bytes, repo.url)
    assert view.get_targetinfo("packages/hello/hello-1.1.0-x86_64.vpk") is not None
    # mallory's role is delegated evil* only: a hello listed there is never found
    (client.metadata_dir / "mallory.json").write_bytes((client.metadata_dir / "alice.json").read_bytes())
    fresh = OfflineView(client.metadata_dir, repo.root_bytes, repo.url)
    with pytest.raises(VerificationError):
        fresh.get_targetinfo("packages/evil-tool/evil-tool-1.0.0-noarch.vpk")


def test_offline_without_the_developer_role_cached_says_so(repo: Repo, tmp_path: Path) -> None:
    client = RepositoryClient(repo.url, repo.root_bytes, tmp_path / "cache")
    client.refresh()
    client.index(ARCH)                               # the index only: alice's role was never needed
    cold = offline(repo, tmp_path / "cache", offline=True)
    with pytest.raises(FetchError, match=r"packages/hello/hello-1\.1\.0-x86_64\.vpk cannot be checked offline: "
                                         r".*no cached 'alice' metadata") as info:
        cold.fetch(cold.metadata("hello", ARCH))
    assert info.value.hint and "online" in info.value.hint


def test_a_re_serialised_root_shares_the_trusted_cache(repo: Repo, tmp_path: Path) -> None:
    """A root's repositories.json keeps the root as JSON, not as the file's bytes: same cache."""
    again = json.dumps(json.loads(repo.root_bytes), indent=4).encode()
    assert again != repo.root_bytes
    a = RepositoryClient(repo.url, repo.root_bytes, tmp_path / "cache")
    b = RepositoryClient(repo.url, again, tmp_path / "cache")
    assert a.cache == b.cache
    doc = json.loads(repo.root_bytes)
    doc["signed"]["expires"] = "2099-01-01T00:00:00Z"      # another root: never the same trusted state
    assert RepositoryClient(repo.url, json.dumps(doc).encode(), tmp_path / "cache").cache != a.cache
