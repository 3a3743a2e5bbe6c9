"""Fetch an image from a repository: its chunk index as a verified TUF target, its chunks over HTTP.

The index comes through :class:`~composer.repo.client.RepositoryClient` (pinned root, signatures, expiry,
hashes: like a package index). Chunks come from ``URL/targets/chunks/…`` through the project's transports
(deadlines, a length cap of the compressed bound of the chunk's size) and are verified against the index by
:func:`~composer.update.assemble.assemble`; a server that sends too much, too little, or other bytes is one
clear error and nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tuf.api import exceptions as tuf_exc

from composer.errors import FetchError
from composer.repo.client import RepositoryClient, describe
from composer.repo.transports import UrlFetcher
from composer.update.assemble import Fetch, Report, Seed, assemble
from composer.update.index import ChunkIndex
from composer.update.publish import image_target_path
from composer.update.store import chunk_name


def chunk_fetcher(base: str, fetcher: UrlFetcher | None = None) -> Fetch:
    """fetch(sha256, max_bytes) of chunks below ``base`` (a repository's URL: ``base``/targets/chunks/…)."""
    transport = fetcher or UrlFetcher()

    def fetch(sha256: str, max_bytes: int) -> bytes:
        url = f"{base}/targets/{chunk_name(sha256)}"
        try:
            return transport.download_bytes(url, max_bytes)
        except tuf_exc.DownloadError as exc:
            raise FetchError(f"{url}: {describe(exc)}",
                             hint="the chunk store is incomplete or the server is hostile; nothing was written. "
                                  "Try a mirror or run again") from None
    return fetch


def fetch_index(client: RepositoryClient, name: str) -> ChunkIndex:
    path = image_target_path(name)
    data = client.download(path).read_bytes()
    return ChunkIndex.from_bytes(data, f"{client.urls[0]}: {path}")


def fetch_image(client: RepositoryClient, name: str, seeds: Sequence[Path | Seed], dest: Path) -> Report:
    """Assemble image ``name`` of the repository into ``dest`` from ``seeds`` plus the chunks they lack."""
    index = fetch_index(client, name)
    return assemble(index, seeds, chunk_fetcher(client.urls[0]), dest, origin=f"{client.urls[0]}: {name}")
