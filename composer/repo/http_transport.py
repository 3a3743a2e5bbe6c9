"""The http:// and https:// rows of :data:`composer.repo.transports.TRANSPORTS`: every request has a deadline.

urllib3's timeouts bound one socket operation each, so a server that sends its headers one byte every
few seconds, or a body at a few bytes a second, never trips them. Here each HTTP request is watched by
a :class:`_Deadline`: a small thread that shuts the request's socket down (the blocked read returns at
once) when

* the connection, the request and the response headers took longer than ``header_seconds``;
* once the body has started, fewer than ``min_rate * window_seconds`` bytes arrived in a window of
  ``window_seconds`` (the first window is the grace period: the clock restarts every time that many
  bytes have arrived, so a large download at any honest speed never trips it, and a stall trips it
  within one window);
* the whole request took longer than ``max_seconds`` (an absolute cap).

Every failure is a python-tuf ``DownloadError`` (``SlowRetrievalError`` for a deadline), so ngclient and
:class:`~composer.repo.client.RepositoryClient` fail over to the next mirror. A missing file is
``DownloadHTTPError`` 404, as ngclient expects. A response that is not 200 is drained up to
``drain_bytes`` (then its connection is reused, HTTP/1.1 keep-alive) or its connection is closed; so is
any response whose body was not read to its end. Redirects are refused (the URL of a repository or a
mirror is the URL that serves it). Content-Encoding is never decoded: the bytes hashed are the bytes sent.

The limits (:class:`~composer.repo.deadlines.TransportLimits`) have defaults and are changed per run by
``VCOMP_HTTP_<FIELD>`` environment variables (``VCOMP_HTTP_HEADER_SECONDS=30``); see docs/security/transport.md.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import urllib3
from tuf.api import exceptions as tuf_exc
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from composer.fsutil import CHUNK
from composer.repo.deadlines import ENV_PREFIX, TransportLimits

# ----------------------------------------------------------------- the deadline of one request

class _Deadline:
    """Shuts the watched socket down when ``due`` (a ``time.monotonic()`` value) has passed.

    The due time and its reason change as the request moves on (headers, then each body window); the
    thread sleeps until the current due time and re-checks. ``stop()`` ends the watch and tells whether
    it fired; after it returns the socket is never touched again, so a connection can go back to the pool.
    """

    def __init__(self, due: float, reason: str) -> None:
        self._lock = threading.Condition()
        self._due, self._reason = due, reason
        self._sock: socket.socket | None = None
        self._stopped = False
        self.fired = ""
        threading.Thread(target=self._run, name="vcomp-http-deadline", daemon=True).start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self.fired:
                _shutdown(sock)

    def move(self, due: float, reason: str) -> None:
        with self._lock:
            self._due, self._reason = due, reason
            self._lock.notify()

    def stop(self) -> str:
        with self._lock:
            self._stopped = True
            self._lock.notify()
            return self.fired

    def _run(self) -> None:
        with self._lock:
            while not self._stopped:
                left = self._due - time.monotonic()
                if left <= 0:
                    self.fired = self._reason
                    if self._sock is not None:
                        _shutdown(self._sock)
                    return
                self._lock.wait(left)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to wake
        sock.shutdown(socket.SHUT_RDWR)


_CURRENT: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar("vcomp_http_deadline", default=None)


class _Watched:
    """Mixin for urllib3 connections: hand the current request's deadline a handle on the socket.

    The handle is a duplicate descriptor of the connection's socket, made when it connects (before TLS:
    a handshake that trickles is covered too). shutdown() through it stops the connection itself.
    """

    _handle: socket.socket | None = None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        self._handle = socket.fromfd(sock.fileno(), sock.family, sock.type)
        self._register()
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._register()  # a connection reused from the pool: the handle from when it connected
        super().request(*args, **kwargs)  # type: ignore[misc]

    def close(self) -> None:
        super().close()  # type: ignore[misc]
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _register(self) -> None:
        deadline = _CURRENT.get()
        if deadline is not None and self._handle is not None:
            deadline.watch(self._handle)


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


# ----------------------------------------------------------------- the transport

def open_http(limits: TransportLimits) -> Callable[[str], Iterator[bytes]]:
    """The fetch function of the http and https rows (one connection pool for both)."""
    return HttpTransport(limits).fetch


class HttpTransport:
    """http(s):// through urllib3 with a deadline on every request (see the module doc).

    A missing file is a 404 as ngclient expects; every other failure is a python-tuf DownloadError, so
    the client fails over to the next mirror.
    """

    def __init__(self, limits: TransportLimits) -> None:
        self.limits = limits
        per_read = max(self.limits.header_seconds, self.limits.window_seconds)
        self._pool = urllib3.PoolManager(headers={"User-Agent": "vcomp"},
                                         timeout=urllib3.Timeout(connect=self.limits.header_seconds, read=per_read))
        self._pool.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    def fetch(self, url: str) -> Iterator[bytes]:
        """The body of ``url`` in chunks, watched by a deadline from the first byte sent to the last read."""
        limits = self.limits
        start = time.monotonic()
        cap = start + limits.max_seconds
        deadline = _Deadline(min(start + limits.header_seconds, cap),
                             f"no response headers within {limits.header_seconds:g} s "
                             f"({ENV_PREFIX}HEADER_SECONDS)")
        token = _CURRENT.set(deadline)
        try:
            resp = self._pool.request("GET", url, preload_content=False, decode_content=False,
                                      retries=False, redirect=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            _fail(deadline, url, exc)
        finally:
            _CURRENT.reset(token)
        if resp.status != 200:
            self._discard(resp, deadline)
            raise tuf_exc.DownloadHTTPError(f"{url}: HTTP {resp.status}{_redirect_note(resp)}", resp.status)
        return self._body(resp, deadline, url, start=start)

    def _body(self, resp: urllib3.BaseHTTPResponse, deadline: _Deadline, url: str, *, start: float) \
            -> Iterator[bytes]:
        limits = self.limits
        cap = start + limits.max_seconds
        block = max(1, int(limits.min_rate * limits.window_seconds))
        slow = (f"less than {block} bytes in {limits.window_seconds:g} s (slow retrieval; minimum "
                f"{limits.min_rate:g} bytes/s, {ENV_PREFIX}MIN_RATE and {ENV_PREFIX}WINDOW_SECONDS)")
        capped = f"not complete within {limits.max_seconds:g} s ({ENV_PREFIX}MAX_SECONDS)"
        complete = False

        def next_window(now: float) -> None:
            due = now + limits.window_seconds
            deadline.move(min(due, cap), slow if due < cap else capped)

        try:
            next_window(time.monotonic())
            window = 0
            while True:
                try:
                    data = resp.read1(CHUNK, decode_content=False)
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    _fail(deadline, url, exc)
                if deadline.fired:  # the socket was shut down under the read: what came back is not the end
                    raise tuf_exc.SlowRetrievalError(f"{url}: {deadline.fired}")
                if not data:
                    complete = True
                    return
                window += len(data)
                if window >= block:
                    window = 0
                    next_window(time.monotonic())
                yield data
        finally:
            fired = deadline.stop()
            if complete and not fired:
                resp.release_conn()   # read to its end: the connection can serve the next request
            else:
                resp.close()          # unread bytes or a dead socket: never reused

    def _discard(self, resp: urllib3.BaseHTTPResponse, deadline: _Deadline) -> None:
        """Read a small error body so the connection can be reused; close it otherwise."""
        left = self.limits.drain_bytes
        complete = False
        try:
            while left >= 0:
                data = resp.read1(min(CHUNK, left + 1), decode_content=False)
                if not data:
                    complete = True
                    break
                left -= len(data)
        except (urllib3.exceptions.HTTPError, OSError):
            pass
        fired = deadline.stop()
        if complete and not fired:
            resp.release_conn()
        else:
            resp.close()


_CONNECTION_OBJECT = re.compile(r"^<[^<>]{1,200}>: ")


def _fail(deadline: _Deadline, url: str, exc: BaseException) -> NoReturn:
    """Raise the python-tuf error for a failed request: a deadline, a timeout, or a broken source."""
    fired = deadline.stop()
    if fired:
        raise tuf_exc.SlowRetrievalError(f"{url}: {fired}") from None
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # (a subclass of ConnectTimeoutError)
        reason = _CONNECTION_OBJECT.sub("", str(exc))   # urllib3 prefixes the connection object's repr
        raise tuf_exc.DownloadError(f"{url}: cannot connect ({_shown(reason)})") from None
    if isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError)):
        raise tuf_exc.SlowRetrievalError(f"{url}: no data within the per-read timeout ({_shown(str(exc))})") \
            from None
    raise tuf_exc.DownloadError(f"{url}: connection broken ({_shown(str(exc))})") from None


def _shown(text: str, limit: int = 240) -> str:
    """Server-controlled text (a bad status line, a Location) as one short printable line."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= limit else f"{clean[:limit]}... ({len(clean)} characters)"


def _redirect_note(resp: urllib3.BaseHTTPResponse) -> str:
    if not 300 <= resp.status < 400:
        return ""
    shown = _shown(resp.headers.get("Location", ""))
    return (f": redirect to '{shown}' refused (vcomp follows no redirects: "
            "give the final URL as the repository or mirror)")
