"""The table of transports: a scheme is one row (issue 13).

A toy ``mem://`` transport, written here as one row and one fetch function, serves a real signed repository
(the bytes of its metadata/ and targets/ held in a dict) to the real client: the pinned-root refresh, the
index and a package fetch with every verification, exactly as over file:// or http://.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tuf.api import exceptions as tuf_exc

from composer.errors import FetchError, VerificationError
from composer.repo import transports
from composer.repo.client import RepositoryClient
from composer.repo.deadlines import TransportLimits
from composer.repo.transports import TRANSPORTS, Transport, UrlFetcher
from tests.repo_fixtures import ARCH, Repo, flip_byte


class Memory:
    """A bucket: URL -> bytes, and the URLs asked for."""

    def __init__(self, directory: Path, base: str) -> None:
        self.files = {f"{base}/{p.relative_to(directory).as_posix()}": p.read_bytes()
                      for sub in ("metadata", "targets") for p in (directory / sub).rglob("*") if p.is_file()}
        self.asked: list[str] = []
        self.made = 0

    def make(self, limits: TransportLimits) -> Callable[[str], Iterator[bytes]]:
        assert isinstance(limits, TransportLimits)
        self.made += 1
        return self.fetch

    def fetch(self, url: str) -> Iterator[bytes]:
        self.asked.append(url)
        if url not in self.files:
            raise tuf_exc.DownloadHTTPError(f"{url}: not found", 404)
        data = self.files[url]
        return iter([data[:100], data[100:]])


@pytest.fixture()
def memory(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> Memory:
    bucket = Memory(repo.dir, "mem://bucket/repo")
    monkeypatch.setitem(TRANSPORTS, "mem", Transport(scheme="mem", summary="a dict of bytes", make=bucket.make))
    return bucket


def test_the_table_has_one_row_per_scheme() -> None:
    assert list(TRANSPORTS) == ["file", "http", "https"]
    assert all(t.scheme == s for s, t in TRANSPORTS.items())
    assert transports.schemes() == "file://, http://, https://"
    assert TRANSPORTS["http"].make is TRANSPORTS["https"].make, "one connection pool serves both"


def test_a_toy_scheme_serves_a_signed_repository_to_the_real_client(memory: Memory, repo: Repo) -> None:
    client = RepositoryClient("mem://bucket/repo", repo.root_bytes, repo.tmp / "cache-mem")
    entry = client.metadata("hello", ARCH)
    assert entry.version == "1.1.0"
    path = client.fetch(entry, repo.tmp / "out")
    assert path.read_bytes() == memory.files[f"mem://bucket/repo/targets/{entry.path.rsplit('/', 1)[0]}/"
                                             f"{entry.sha256}.{entry.path.rsplit('/', 1)[1]}"]
    asked = [u.removeprefix("mem://bucket/repo/") for u in memory.asked]
    assert "metadata/timestamp.json" in asked and any(u.startswith("targets/index/") for u in asked)
    assert any(u.startswith("targets/packages/hello/") for u in asked)
    assert memory.made == 1, "a fetcher makes the fetch function of a row once"


def test_a_toy_scheme_gets_every_verification(memory: Memory, repo: Repo) -> None:
    entry = RepositoryClient("mem://bucket/repo", repo.root_bytes, repo.tmp / "cache-a").metadata("hello", ARCH)
    package = next(u for u in memory.files if u.endswith(f"{entry.sha256}.{entry.path.rsplit('/', 1)[1]}"))
    tampered = repo.tmp / "tampered"
    tampered.write_bytes(memory.files[package])
    flip_byte(tampered, len(memory.files[package]) // 2)
    memory.files[package] = tampered.read_bytes()
    client = RepositoryClient("mem://bucket/repo", repo.root_bytes, repo.tmp / "cache-b")
    with pytest.raises(VerificationError, match="no source gave a verified copy"):
        client.fetch(client.metadata("hello", ARCH))


def test_a_mirror_over_a_toy_scheme_takes_over_from_a_dead_file_url(memory: Memory, repo: Repo) -> None:
    client = RepositoryClient((repo.tmp / "gone").as_uri(), repo.root_bytes, repo.tmp / "cache-m",
                              mirrors=["mem://bucket/repo"])
    assert client.metadata("hello", ARCH).version == "1.1.0"
    assert memory.asked


def test_a_scheme_without_a_row_is_a_download_error(repo: Repo, tmp_path: Path) -> None:
    with pytest.raises(tuf_exc.DownloadError, match="unsupported URL scheme in s3://bucket/x"):
        UrlFetcher().download_bytes("s3://bucket/x", 10)
    client = RepositoryClient("s3://bucket/repo", repo.root_bytes, tmp_path / "cache", fallback=False)
    with pytest.raises(FetchError, match="unsupported URL scheme"):
        client.refresh()


def test_a_fetcher_can_be_given_its_own_table(tmp_path: Path) -> None:
    served = {"only://x/a": b"abc"}
    table = {"only": Transport(scheme="only", summary="test", make=lambda _limits: lambda url: iter([served[url]]))}
    assert UrlFetcher(transports=table).download_bytes("only://x/a", 10) == b"abc"
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(tuf_exc.DownloadError, match="unsupported URL scheme"):
        UrlFetcher(transports=table).download_bytes((tmp_path / "f").as_uri(), 10)
