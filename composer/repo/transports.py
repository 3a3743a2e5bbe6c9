"""The table of transports: one row per URL scheme a repository or mirror may be served over.

A row names the scheme and the function that makes its fetcher from the limits of issue 11
(:class:`~composer.repo.deadlines.TransportLimits`: deadlines and rates). :class:`UrlFetcher`, the python-tuf
fetcher every repository client, mirror and conformance run uses, looks the scheme of each URL up here; a
scheme without a row is a ``DownloadError`` ("unsupported URL scheme"), so the client fails over to the
next mirror like for any other failed download.

A fetch function takes the URL and returns an iterator of byte chunks. Its contract (python-tuf's
``FetcherInterface._fetch``, which ngclient and :mod:`composer.repo.client` rely on):

* a missing file raises ``tuf.api.exceptions.DownloadHTTPError(message, 404)`` (ngclient probes for the
  next root version that way);
* every other failure raises a ``DownloadError`` (``SlowRetrievalError`` when a deadline passed): never
  an ``OSError`` or a library's own exception;
* the bytes are returned as they were stored (no decompression, no redirects followed);
* ``download_bytes``/``download_file`` of the fetcher cap the length; the transport keeps its own
  deadlines (a network transport takes them from the limits its maker is given).

Adding a scheme (``s3://``) is one row here and one module holding its fetch function
(docs/architecture/seams.md says what an S3 transport would implement), or a row another distribution adds
through the ``vcomp.transports`` entry point (docs/plugins.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from tuf.api import exceptions as tuf_exc
from tuf.ngclient import FetcherInterface

from composer.plugins.registry import Registry
from composer.repo.deadlines import TransportLimits
from composer.repo.file_transport import open_file
from composer.repo.http_transport import open_http

Fetch = Callable[[str], Iterator[bytes]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Transport:
    """One URL scheme: how to fetch from it."""

    scheme: str                                     # as written before "://"
    summary: str                                    # one line for docs and errors
    make: Callable[[TransportLimits], Fetch]        # rows sharing ``make`` share one fetch function


def plugin_problem(row: Transport) -> str:
    """What is wrong with a plugin's transport ("" when nothing; composer.plugins.load refuses it with that)."""
    if not re.fullmatch(r"[a-z][a-z0-9+.-]{0,31}", row.scheme):
        return f"scheme '{row.scheme}' is not a URL scheme (RFC 3986: a letter, then letters, digits, + - .)"
    if not callable(row.make):
        return "make must be a function of the transport limits returning a fetch function"
    return ""


TRANSPORTS: Registry[Transport] = Registry((
    Transport(scheme="file", summary="a local directory (a regular file per URL; no deadlines)", make=open_file),
    Transport(scheme="http", summary="HTTP/1.1 through urllib3, a deadline on every request", make=open_http),
    Transport(scheme="https", summary="HTTPS through urllib3, a deadline on every request", make=open_http),
), group="vcomp.transports", kind="transport", row_type=Transport, name_of=lambda t: t.scheme, check=plugin_problem)


def schemes() -> str:
    """``file://, http://, https://``: the schemes of the table, for help texts."""
    return ", ".join(f"{scheme}://" for scheme in TRANSPORTS)


class UrlFetcher(FetcherInterface):
    """A python-tuf fetcher for every URL whose scheme has a row in :data:`TRANSPORTS` (file, http, https).

    A missing file is a 404 as ngclient expects; every other failure is a python-tuf DownloadError, so
    the client fails over to the next mirror. One fetch function per row maker is made on first use and
    kept (an HTTP connection pool serves the fetcher's later requests).
    """

    def __init__(self, limits: TransportLimits | None = None, *,
                 transports: Mapping[str, Transport] | None = None) -> None:
        self.limits = TransportLimits.from_env() if limits is None else limits
        self._transports = transports
        self._made: dict[Callable[[TransportLimits], Fetch], Fetch] = {}

    def _fetch(self, url: str) -> Iterator[bytes]:
        table = TRANSPORTS if self._transports is None else self._transports
        row = table.get(urlsplit(url).scheme)
        if row is None:
            raise tuf_exc.DownloadError(f"unsupported URL scheme in {url}")
        fetch = self._made.get(row.make)
        if fetch is None:
            fetch = self._made[row.make] = row.make(self.limits)
        return fetch(url)
