"""Publish to a static HTTP server that takes WebDAV ``PUT`` (``dav+http://HOST/PATH``, ``dav+https://...``).

Each served file is one ``PUT`` of ``PATH/metadata/NAME`` or ``PATH/targets/NAME``; a ``409 Conflict`` (the
parent collection is missing) makes the collections with ``MKCOL`` and tries again. Readers fetch the same
paths with plain GET. The server must make a PUT appear whole (nginx's dav module and Apache's mod_dav_fs write
a temporary file and rename it). Which files the server already holds is asked with ``HEAD``.

Credentials come from a netrc file (``~/.netrc``: ``machine HOST login USER password PASS``), sent as HTTP
Basic authentication (use https:// beyond a trusted network); never from the command line. Every request has a
timeout and a bounded number of attempts, with a pause between them (:data:`LIMITS`).
"""

from __future__ import annotations

import base64
import http.client
import netrc
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from composer.errors import FetchError, UserError
from composer.repo.publish import METADATA, TARGETS
from composer.repo.push import LOG, LOG_MAX_BYTES


@dataclass(frozen=True, slots=True, kw_only=True)
class DavLimits:
    seconds: float = 30.0       # connect, and each read of the response
    attempts: int = 4           # a connection failure or a 5xx is tried again, this many times in all
    pause: float = 0.5          # seconds before the second attempt, doubling


LIMITS = DavLimits()
RETRIED = frozenset({500, 502, 503, 504})
HINTS = {
    401: "put the server's login in ~/.netrc (machine HOST login USER password PASS)",
    403: "give the netrc login write access to the path on the server",
    405: "the server does not take PUT there: enable WebDAV (nginx dav_methods PUT; Apache Dav On)",
    413: "raise the server's upload size limit (nginx client_max_body_size)",
    507: "the server is out of space",
}
RESUME = "run the same command again: the push resumes, what was uploaded is kept"
UNREACHABLE = "check the URL and that the server is up, then " + RESUME


def _credentials(host: str) -> str | None:
    """The Basic ``Authorization`` value for ``host`` from the user's netrc file (None: no file or no entry)."""
    try:
        entry = netrc.netrc().authenticators(host)
    except FileNotFoundError:
        return None
    except (netrc.NetrcParseError, OSError) as exc:
        raise UserError(f"~/.netrc: {exc}", hint="fix the file (machine HOST login USER password PASS)") from None
    if entry is None:
        return None
    login, _, password = entry
    return "Basic " + base64.b64encode(f"{login}:{password or ''}".encode()).decode()


@dataclass(slots=True, kw_only=True)
class DavPublisher:
    """``base`` (``http(s)://HOST/PATH``) through http.client, one connection reused."""

    where: str
    scheme: str
    host: str
    port: int | None
    path: str
    auth: str | None
    _conn: http.client.HTTPConnection | None = field(default=None, repr=False)
    _made: set[str] = field(default_factory=set, repr=False)
    _body_limit: int = field(default=1 << 16, repr=False)
    _body: bytes = field(default=b"", repr=False)

    def present(self, keys: Iterable[str]) -> frozenset[str]:
        return frozenset(k for k in keys if self._request("HEAD", k, None, ok=(200, 404)) == 200)

    def put_metadata(self, name: str, data: bytes) -> None:
        self._put(f"{METADATA}/{name}", data)

    def put_target(self, name: str, data: bytes) -> None:
        self._put(f"{TARGETS}/{name}", data)

    def put_target_file(self, name: str, source: Path) -> None:
        """Uploads ``source`` (left in place)."""
        self._put(f"{TARGETS}/{name}", source)

    def get_log(self) -> bytes | None:
        status, body = self._get(LOG)
        return body if status == 200 else None

    def put_log(self, data: bytes) -> None:
        self._put(LOG, data)

    def delete(self, keys: Iterable[str]) -> None:
        """Remove ``keys`` (pruning, docs/publishing.md; a missing one is fine)."""
        for key in keys:
            self._request("DELETE", key, None, ok=(200, 204, 404))

    def _get(self, key: str) -> tuple[int, bytes]:
        """A GET of a small file (the push log), bounded; (404, b"") when there is none."""
        self._body_limit = LOG_MAX_BYTES
        try:
            status = self._request("GET", key, None, ok=(200, 404))
            return status, self._body
        finally:
            self._body_limit = 1 << 16

    def _put(self, key: str, body: bytes | Path) -> None:
        status = self._request("PUT", key, body, ok=(200, 201, 204, 409))
        if status == 409:       # a parent collection is missing
            self._make_parents(key)
            self._request("PUT", key, body, ok=(200, 201, 204))

    def _make_parents(self, key: str) -> None:
        """MKCOL each collection from the top of PATH down to ``key``'s parent (405: it is there already)."""
        parts = f"{self.path}/{key}".strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            collection = "/" + "/".join(parts[:i]) + "/"
            if collection not in self._made:
                self._request("MKCOL", collection, None, ok=(201, 405), absolute=True)
                self._made.add(collection)

    def _url_path(self, key: str, *, absolute: bool = False) -> str:
        return quote(key if absolute else f"{self.path}/{key}")

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self.host, self.port, timeout=LIMITS.seconds)
        return self._conn

    def _request(self, method: str, key: str, body: bytes | Path | None, *, ok: tuple[int, ...],
                 absolute: bool = False) -> int:
        target = self._url_path(key, absolute=absolute)
        place = f"{self.scheme}://{self.host}{':' + str(self.port) if self.port else ''}{target}"
        headers = {"Authorization": self.auth} if self.auth else {}
        failure, hint = "", RESUME
        for attempt in range(LIMITS.attempts):
            if attempt:
                time.sleep(LIMITS.pause * 2 ** (attempt - 1))
            conn = self._connect()
            try:
                if isinstance(body, Path):
                    with body.open("rb") as f:
                        headers["Content-Length"] = str(body.stat().st_size)
                        conn.request(method, target, body=f, headers=headers)
                        status = self._status(conn)
                else:
                    conn.request(method, target, body=body, headers=headers)
                    status = self._status(conn)
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._conn = None
                failure, hint = f"{method} {place}: {type(exc).__name__}: {exc}", UNREACHABLE
                continue
            if status in ok:
                return status
            if status not in RETRIED:
                raise UserError(f"{method} {place}: the server answered {status}",
                                hint=HINTS.get(status, "check the URL and the server's WebDAV set-up"))
            failure, hint = f"{method} {place}: the server answered {status}", RESUME
        raise FetchError(f"{failure} ({LIMITS.attempts} attempts)", hint=hint)

    def _status(self, conn: http.client.HTTPConnection) -> int:
        response = conn.getresponse()
        self._body = response.read(self._body_limit)   # bounded; the connection is reused after a whole body
        if not response.isclosed():
            response.close()
            conn.close()
            self._conn = None
        return response.status


def open_dav(url: str) -> DavPublisher:
    """``dav+http(s)://HOST[:PORT]/PATH`` -> a publisher (netrc credentials for HOST)."""
    parts = urlsplit(url)
    scheme = parts.scheme.removeprefix("dav+")
    if scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment or \
            parts.username or parts.password:
        raise UserError(f"{url}: not a WebDAV URL",
                        hint="write dav+https://HOST/PATH (credentials go in ~/.netrc, never in the URL)")
    return DavPublisher(where=url, scheme=scheme, host=parts.hostname, port=parts.port, path=parts.path.rstrip("/"),
                        auth=_credentials(parts.hostname))
