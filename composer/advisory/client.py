"""Reading advisory feeds through the verifying repository client (the I/O edge of audit, plan, outdated and
vpk): the feed is a TUF target like an index, so ngclient checks its length and hash against the
``advisories`` role, which the offline targets key delegated."""

from __future__ import annotations

from collections.abc import Iterable

from composer.advisory.feed import FEED_PATH, Feed, decode, union
from composer.repo.client import RepositoryClient


def client_feed(client: RepositoryClient) -> Feed:
    """The repository's verified feed; an empty one when it publishes none."""
    if client.targetinfo(FEED_PATH) is None:
        return Feed()
    return decode(client.download(FEED_PATH).read_bytes(), f"{client.urls[0]}: {FEED_PATH}")


def feeds(clients: Iterable[RepositoryClient]) -> Feed:
    """The feeds of several repositories as one (a profile's repositories)."""
    return union(client_feed(c) for c in clients)
