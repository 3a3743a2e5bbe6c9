"""The transport under attack, over real loopback HTTP: our own malicious servers on 127.0.0.1.

Raw-socket servers (one thread per connection) play the attacks byte by byte: headers one byte at a time,
a body that trickles or stalls, more bytes than declared, fewer, a reset mid-body, a redirect. A real
HTTP/1.1 keep-alive server (``http.server`` with ``protocol_version = "HTTP/1.1"``) serves 404s with
bodies and 200s on one connection. Deadlines are made small through ``TransportLimits`` (fetcher tests)
or the ``VCOMP_HTTP_*`` variables (the real ``RepositoryClient`` against the real repository of
``tests/repo_fixtures.py``), so every attack ends in about a second.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest
from tuf.api import exceptions as tuf_exc

from composer.errors import FetchError, UserError, VerificationError
from composer.repo.deadlines import TransportLimits
from composer.repo.serve import serve_in_thread
from composer.repo.transports import UrlFetcher
from tests.repo_fixtures import ARCH, Repo, assert_kept, cache_state

pytestmark = pytest.mark.integration

# small deadlines: every attack below must end within about one of them
FAST = TransportLimits(header_seconds=1.0, window_seconds=0.5, min_rate=1024, max_seconds=20.0)
SLACK = 1.0  # seconds of scheduling slack on a loaded 2-core machine


# ----------------------------------------------------------------- a raw malicious server

Behaviour = Callable[["Conn"], None]


@dataclass
class Conn:
    """One client connection to a raw server: read requests, send bytes as the attack needs."""

    sock: socket.socket
    stop: threading.Event
    buffer: bytes = b""

    def request(self) -> str:
        """The next request's path ('' when the client closed the connection)."""
        while b"\r\n\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                return ""
            self.buffer += data
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        return head.split(b"\r\n", 1)[0].split(b" ")[1].decode()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def trickle(self, data: bytes, every: float) -> None:
        """One byte every ``every`` seconds, until the data ends or the test does."""
        for i in range(len(data)):
            if self.stop.wait(every):
                return
            self.sock.sendall(data[i:i + 1])

    def hold(self) -> None:
        """Keep the connection open and silent until the test ends."""
        self.stop.wait(30)

    def reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


@dataclass
class RawServer:
    url: str
    connections: list[int] = field(default_factory=lambda: [0])
    paths: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.connections[0]


@contextlib.contextmanager
def raw_server(behaviour: Behaviour) -> Iterator[RawServer]:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    server = RawServer(url=f"http://127.0.0.1:{listener.getsockname()[1]}")

    def serve(sock: socket.socket) -> None:
        with contextlib.suppress(OSError), sock:
            behaviour(Conn(sock=sock, stop=stop))

    def accept() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            server.connections[0] += 1
            threading.Thread(target=serve, args=(sock,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server
    finally:
        stop.set()
        listener.close()


def response(body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def header_slowloris(c: Conn) -> None:
    """The status line and headers, one byte every 0.2 s (each read succeeds: no per-read timeout trips)."""
    if c.request():
        c.trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: " + b"a" * 10_000, every=0.2)


def body_slowloris(c: Conn) -> None:
    if c.request():
        c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        c.trickle(b"{" * 100_000, every=0.05)


def stall_after_headers(c: Conn) -> None:
    if c.request():
        c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        c.hold()


def fast_then_stall(c: Conn) -> None:
    """200 KB at full speed (credit a per-transfer average would keep for minutes), then silence."""
    if c.request():
        c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 200_000)
        c.hold()


def fed_at_the_minimum(c: Conn) -> None:
    """Always just fast enough for the rate (600 bytes every 0.2 s against 1024 B/s): only the cap stops it."""
    if c.request():
        c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
        while not c.stop.wait(0.2):
            c.send(b"x" * 600)


def timed(call: Callable[[], object]) -> tuple[BaseException | None, float]:
    start = time.monotonic()
    try:
        call()
    except BaseException as exc:
        return exc, time.monotonic() - start
    return None, time.monotonic() - start


def fetch(url: str, limits: TransportLimits = FAST, max_length: int = 10_000_000) -> bytes:
    return UrlFetcher(limits).download_bytes(url, max_length)


# ----------------------------------------------------------------- deadlines

@pytest.mark.parametrize(("behaviour", "limit", "words"), [
    (header_slowloris, FAST.header_seconds, "no response headers within 1 s (VCOMP_HTTP_HEADER_SECONDS)"),
    (body_slowloris, FAST.window_seconds, "less than 512 bytes in 0.5 s (slow retrieval"),
    (stall_after_headers, FAST.window_seconds, "less than 512 bytes in 0.5 s"),
    (fast_then_stall, FAST.window_seconds, "less than 512 bytes in 0.5 s"),   # no credit from the fast start
], ids=["header-slowloris", "body-slowloris", "stall-after-headers", "fast-then-stall"])
def test_a_slow_source_fails_within_its_deadline(behaviour: Behaviour, limit: float, words: str) -> None:
    with raw_server(behaviour) as bad:
        error, seconds = timed(lambda: fetch(f"{bad.url}/metadata/timestamp.json"))
    assert isinstance(error, tuf_exc.SlowRetrievalError), error
    assert words in str(error) and f"{bad.url}/metadata/timestamp.json" in str(error)
    assert limit - 0.1 < seconds < limit + SLACK


def test_a_tls_handshake_that_never_completes_is_bounded_by_the_header_deadline() -> None:
    """https://: the watchdog holds the socket from before the handshake, so a silent server fails too."""
    def silent(c: Conn) -> None:
        c.hold()

    with raw_server(silent) as bad:
        url = bad.url.replace("http://", "https://") + "/metadata/timestamp.json"
        error, seconds = timed(lambda: fetch(url))
    assert isinstance(error, tuf_exc.SlowRetrievalError), error
    assert "no response headers within 1 s" in str(error)
    assert seconds < FAST.header_seconds + SLACK


def test_the_absolute_cap_stops_a_source_that_keeps_just_above_the_rate() -> None:
    limits = TransportLimits(header_seconds=1.0, window_seconds=0.5, min_rate=1024, max_seconds=2.0)
    with raw_server(fed_at_the_minimum) as bad:
        error, seconds = timed(lambda: fetch(f"{bad.url}/targets/big.vpk", limits, max_length=10 ** 9))
    assert isinstance(error, tuf_exc.SlowRetrievalError), error
    assert "not complete within 2 s (VCOMP_HTTP_MAX_SECONDS)" in str(error)
    assert 1.9 < seconds < 2.0 + SLACK


def test_a_large_download_at_an_honest_speed_passes_every_window() -> None:
    """4 MB at ~2 MB/s takes two seconds, four windows of 0.5 s: the windows restart, nothing trips."""
    size = 4_000_000

    def steady(c: Conn) -> None:
        if c.request():
            c.send(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
            for _ in range(size // 100_000):
                time.sleep(0.05)
                c.send(b"v" * 100_000)

    with raw_server(steady) as good:
        error, seconds = timed(lambda: fetch(f"{good.url}/targets/big.vpk"))
    assert error is None and seconds > 4 * FAST.window_seconds - 0.1


def test_a_slow_error_body_is_bounded_by_the_header_deadline() -> None:
    def slow_404(c: Conn) -> None:
        if c.request():
            c.send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 5000\r\n\r\n")
            c.trickle(b"n" * 5000, every=0.1)

    with raw_server(slow_404) as bad:
        error, seconds = timed(lambda: fetch(f"{bad.url}/metadata/2.root.json"))
    assert isinstance(error, tuf_exc.DownloadHTTPError) and error.status_code == 404, error
    assert seconds < FAST.header_seconds + SLACK


# ----------------------------------------------------------------- lengths, resets, framing

def test_bytes_beyond_the_declared_length_are_not_read_and_never_reach_the_next_request() -> None:
    """Content-Length 5, then a response nobody asked for and junk: the fetch gets 5 bytes, and the rest
    is not read as the next response (a connection with unread data is not reused)."""
    def lying(c: Conn) -> None:
        while path := c.request():
            if path.endswith("/first"):
                c.send(response(b"first") + response(b"EVIL!") + b"junk" * 50_000)
            else:
                c.send(response(b"second"))

    with raw_server(lying) as bad:
        fetcher = UrlFetcher(FAST)
        assert fetcher.download_bytes(f"{bad.url}/first", 100) == b"first"
        time.sleep(0.1)  # the junk has arrived
        assert fetcher.download_bytes(f"{bad.url}/second", 100) == b"second"   # not b"EVIL!"
        assert bad.accepted == 2


def test_an_endless_body_without_length_is_cut_at_the_trusted_length() -> None:
    def endless(c: Conn) -> None:
        if c.request():
            c.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            while not c.stop.is_set():
                c.send(b"{" * 65536)

    with raw_server(endless) as bad:
        error, seconds = timed(lambda: fetch(f"{bad.url}/metadata/timestamp.json", max_length=16384))
    assert isinstance(error, tuf_exc.DownloadLengthMismatchError), error
    assert seconds < SLACK


def test_fewer_bytes_than_declared_then_close_is_a_broken_download() -> None:
    def short(c: Conn) -> None:
        if c.request():
            c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"s" * 10)

    with raw_server(short) as bad:
        error, _ = timed(lambda: fetch(f"{bad.url}/metadata/timestamp.json"))
    assert isinstance(error, tuf_exc.DownloadError) and not isinstance(error, tuf_exc.SlowRetrievalError)
    assert "connection broken" in str(error) and "IncompleteRead" in str(error)


def test_fewer_bytes_than_declared_on_an_open_connection_is_a_stall() -> None:
    def short_open(c: Conn) -> None:
        if c.request():
            c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"s" * 10)
            c.hold()

    with raw_server(short_open) as bad:
        error, seconds = timed(lambda: fetch(f"{bad.url}/metadata/timestamp.json"))
    assert isinstance(error, tuf_exc.SlowRetrievalError) and "less than 512 bytes" in str(error)
    assert seconds < FAST.window_seconds + SLACK


def test_a_reset_mid_body_is_a_broken_download() -> None:
    def reset(c: Conn) -> None:
        if c.request():
            c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"r" * 3000)
            time.sleep(0.1)
            c.reset()

    with raw_server(reset) as bad:
        error, _ = timed(lambda: fetch(f"{bad.url}/targets/p.vpk"))
    assert type(error) is tuf_exc.DownloadError and "connection broken" in str(error), error


def test_a_garbage_status_line_is_a_short_one_line_error() -> None:
    def garbage(c: Conn) -> None:
        if c.request():
            c.send(b"EVIL\x1b[2J\x00" + b"A" * 60_000 + b"\r\n\r\n")

    with raw_server(garbage) as bad:
        error, _ = timed(lambda: fetch(f"{bad.url}/metadata/timestamp.json"))
    assert type(error) is tuf_exc.DownloadError and "connection broken" in str(error), error
    assert len(str(error)) < 500 and str(error).isprintable()


def test_nothing_listening_is_a_download_error_not_a_slow_one() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    error, _ = timed(lambda: fetch(f"http://127.0.0.1:{port}/metadata/timestamp.json"))
    assert type(error) is tuf_exc.DownloadError and "cannot connect" in str(error), error


def test_a_chunked_response_is_read_whole_and_its_connection_reused() -> None:
    chunks = [b"{\"signed\":", b" " * 70_000, b"}"]
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"

    def chunked(c: Conn) -> None:
        while c.request():
            c.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)

    with raw_server(chunked) as good:
        fetcher = UrlFetcher(FAST)
        for _ in range(3):
            assert fetcher.download_bytes(f"{good.url}/metadata/timestamp.json", 100_000) == b"".join(chunks)
        assert good.accepted == 1


def test_a_chunked_slowloris_in_the_chunk_sizes_is_bounded() -> None:
    def chunk_sizes_slowly(c: Conn) -> None:
        if c.request():
            c.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            c.trickle(b"0" * 10_000, every=0.05)   # a chunk-size line that never ends

    with raw_server(chunk_sizes_slowly) as bad:
        error, seconds = timed(lambda: fetch(f"{bad.url}/metadata/timestamp.json"))
    assert isinstance(error, tuf_exc.DownloadError), error
    assert seconds < FAST.window_seconds + SLACK


# ----------------------------------------------------------------- redirects

def test_redirects_are_refused_and_never_followed() -> None:
    with raw_server(lambda c: c.send(response(b"{}")) if c.request() else None) as target:
        def redirect(c: Conn) -> None:
            if c.request():
                c.send(response(b"moved", "301 Moved Permanently",
                                f"Location: {target.url}/metadata/timestamp.json\x1b[2J\r\n"))

        with raw_server(redirect) as bad:
            error, _ = timed(lambda: fetch(f"{bad.url}/metadata/timestamp.json"))
        assert target.accepted == 0
    assert isinstance(error, tuf_exc.DownloadHTTPError) and error.status_code == 301, error
    assert f"redirect to '{target.url}/metadata/timestamp.json?[2J' refused" in str(error)
    assert "\x1b" not in str(error)


# ----------------------------------------------------------------- a real HTTP/1.1 keep-alive server

class _KeepAlive(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    files: ClassVar[dict[str, bytes]] = {}
    missing_body = b"<html>" + b"not here " * 100 + b"</html>"

    def do_GET(self) -> None:
        body = self.files.get(self.path)
        self.send_response(200 if body is not None else 404)
        body = self.missing_body if body is None else body
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def keep_alive_server(files: dict[str, bytes], missing_body: bytes) -> Iterator[tuple[str, list[int]]]:
    connections = [0]

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def process_request(self, request: object, client_address: object) -> None:
            connections[0] += 1
            super().process_request(request, client_address)  # type: ignore[arg-type]

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the client closed a connection with an undrained body: expected, not news

    handler = type("Handler", (_KeepAlive,), {"files": files, "missing_body": missing_body})
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", connections
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("missing_body", "expected_connections"), [
    (b"<html>" + b"not here " * 100 + b"</html>", 1),        # drained: the one connection serves all
    (b"n" * (FAST.drain_bytes + 1000), 5),                  # too big to drain: closed after each 404
], ids=["small-404-bodies-drained", "large-404-bodies-closed"])
def test_keep_alive_404s_with_bodies_then_200s_on_one_connection(missing_body: bytes,
                                                                 expected_connections: int) -> None:
    files = {"/metadata/timestamp.json": b'{"ts": 1}', "/metadata/1.snapshot.json": b'{"snap": 1}' * 500}
    with keep_alive_server(files, missing_body) as (url, connections):
        fetcher = UrlFetcher(FAST)
        for _ in range(4):
            with pytest.raises(tuf_exc.DownloadHTTPError, match="HTTP 404"):
                fetcher.download_bytes(f"{url}/metadata/2.root.json", 10_000)
            assert fetcher.download_bytes(f"{url}/metadata/timestamp.json", 10_000) == files[
                "/metadata/timestamp.json"]
            assert fetcher.download_bytes(f"{url}/metadata/1.snapshot.json", 10_000) == files[
                "/metadata/1.snapshot.json"]
        assert connections[0] == expected_connections


def test_a_pooled_connection_outlives_the_deadline_of_the_request_that_used_it() -> None:
    """The watchdog of a finished request never touches the connection it gave back to the pool."""
    files = {"/metadata/timestamp.json": b'{"ts": 1}'}
    quick = TransportLimits(header_seconds=0.3, window_seconds=0.3)
    with keep_alive_server(files, b"") as (url, connections):
        fetcher = UrlFetcher(quick)
        for _ in range(3):
            assert fetcher.download_bytes(f"{url}/metadata/timestamp.json", 100) == b'{"ts": 1}'
            time.sleep(0.4)  # past the deadline each request had
        assert connections[0] == 1


# ----------------------------------------------------------------- file:// and the knobs

def test_file_urls(tmp_path: Path) -> None:
    (tmp_path / "f.json").write_bytes(b"{}")
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "dir.json").mkdir()
    fetcher = UrlFetcher()
    assert fetcher.download_bytes((tmp_path / "f.json").as_uri(), 10) == b"{}"
    with pytest.raises(tuf_exc.DownloadHTTPError, match="not found"):
        fetcher.download_bytes((tmp_path / "none.json").as_uri(), 10)
    for name in ("fifo.json", "dir.json"):       # a FIFO would block forever; neither is a file
        error, seconds = timed(lambda: fetcher.download_bytes((tmp_path / name).as_uri(), 10))  # noqa: B023
        assert type(error) is tuf_exc.DownloadError and "not a regular file" in str(error) and seconds < 1


def test_limits_from_the_environment() -> None:
    limits = TransportLimits.from_env({"VCOMP_HTTP_HEADER_SECONDS": "2.5", "VCOMP_HTTP_DRAIN_BYTES": "10"})
    assert limits.header_seconds == 2.5 and limits.drain_bytes == 10 and limits.min_rate == 1024
    for bad in ("0", "-1", "fast", "inf", "nan"):
        with pytest.raises(UserError, match=f"VCOMP_HTTP_MIN_RATE='{bad}' is not a positive number"):
            TransportLimits.from_env({"VCOMP_HTTP_MIN_RATE": bad})


# ----------------------------------------------------------------- the real client, mirrors and failover

@pytest.fixture()
def fast_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client builds its fetchers itself: small deadlines through the documented variables."""
    monkeypatch.setenv("VCOMP_HTTP_HEADER_SECONDS", "1")
    monkeypatch.setenv("VCOMP_HTTP_WINDOW_SECONDS", "0.5")


@pytest.fixture()
def good_url(repo: Repo) -> Iterator[str]:
    server, url = serve_in_thread(repo.dir)
    yield url
    server.shutdown()
    server.server_close()


@pytest.mark.usefixtures("fast_env")
@pytest.mark.parametrize(("behaviour", "limit"), [(header_slowloris, 1.0), (body_slowloris, 0.5),
                                                  (stall_after_headers, 0.5)],
                         ids=["header-slowloris", "body-slowloris", "stall"])
def test_a_stalled_first_mirror_fails_over_to_the_second_within_the_deadline(
        repo: Repo, good_url: str, behaviour: Behaviour, limit: float) -> None:
    """refresh, index and package: the stalled primary costs one deadline, not one per file (the
    targets are asked first from the source that gave the trusted metadata)."""
    with raw_server(behaviour) as bad:
        client = repo.client(url=bad.url, mirrors=[good_url])
        got: list[Path] = []
        error, seconds = timed(lambda: got.append(client.fetch(client.metadata("hello", ARCH))))
        assert error is None, error
        assert seconds < limit + 1.5
        assert bad.accepted == 1
    assert got[0].read_bytes() == repo.package("hello", "1.1.0").read_bytes()


@pytest.mark.usefixtures("fast_env")
def test_all_sources_bad_is_one_error_naming_each_and_the_trusted_state_is_kept(repo: Repo, good_url: str) -> None:
    client = repo.client(url=good_url)
    client.refresh()
    before = cache_state(client)
    with raw_server(header_slowloris) as slow, raw_server(stall_after_headers) as stalled:
        client.urls = [slow.url, stalled.url]   # the same cache, now only behind two hostile sources
        error, seconds = timed(client.refresh)
    assert isinstance(error, FetchError), error
    assert error.message.startswith("cannot get trusted metadata from all 2 sources")
    lines = [line.strip() for line in error.message.splitlines()[1:]]
    assert lines[0].startswith(f"{slow.url}: download too slow") and "no response headers within 1 s" in lines[0]
    assert lines[1].startswith(f"{stalled.url}: download too slow") and "less than 512 bytes" in lines[1]
    assert error.hint and "keeps its last trusted state" in error.hint
    assert seconds < 1.0 + 0.5 + 2 * SLACK
    assert_kept(before, cache_state(client))


@pytest.mark.usefixtures("fast_env")
def test_a_package_served_slowly_is_fetched_from_the_next_mirror(repo: Repo, good_url: str) -> None:
    """The first source serves metadata honestly and packages at a trickle: the download of the package
    fails over to the mirror within one window; the verified package is the real one."""
    def metadata_fast_targets_slow(c: Conn) -> None:
        while path := c.request():
            if path.startswith("/targets/packages/"):
                c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                c.trickle(b"x" * 100_000, every=0.05)
                return
            file = repo.dir / path.lstrip("/")
            c.send(response(file.read_bytes()) if file.is_file() else response(b"no", "404 Not Found"))

    with raw_server(metadata_fast_targets_slow) as half:
        client = repo.client(url=half.url, mirrors=[good_url])
        entry = client.metadata("hello", ARCH)
        client.updater.get_targetinfo(entry.path)   # the developer's role, from the honest metadata
        before = cache_state(client)
        error, seconds = timed(lambda: client.fetch(entry))
        assert error is None, error
        assert seconds < 0.5 + SLACK + 1.0
        assert_kept(before, cache_state(client))
        alone = repo.client(url=half.url)
        with pytest.raises(VerificationError, match="download too slow") as info:
            alone.fetch(alone.metadata("hello", ARCH))
        assert half.url in info.value.message


def test_the_client_over_the_keep_alive_sample_server_reuses_its_connection(repo: Repo) -> None:
    """serve.py speaks HTTP/1.1 keep-alive: a whole refresh (with its 404 root probe) and a package
    fetch go over one connection per updater, and give the right bytes."""
    connections = [0]
    server, url = serve_in_thread(repo.dir)
    original = server.process_request

    def counting(request: object, client_address: object) -> None:
        connections[0] += 1
        original(request, client_address)  # type: ignore[arg-type]

    server.process_request = counting  # type: ignore[method-assign]
    try:
        client = repo.client(url=url)
        entry = client.metadata("hello", ARCH)
        path = client.fetch(entry)
        assert path.stat().st_size == entry.size
        assert connections[0] == 1
        again = repo.client(url=url)
        again.refresh()
        assert again.metadata("hello", ARCH) == entry
    finally:
        server.shutdown()
        server.server_close()


def test_the_keep_alive_sample_server_answers_small_requests_without_a_delayed_ack_stall(repo: Repo) -> None:
    """Headers and body are two writes: without TCP_NODELAY each small response waits ~40 ms for the
    client's delayed ACK on a kept-alive connection (50 requests: ~2 s instead of a few ms each). Checked
    structurally, not timed: 50 requests over one connection whose server socket has Nagle off."""
    server, url = serve_in_thread(repo.dir)
    accepted: list[tuple[socket.socket, int]] = []  # the server's connections, TCP_NODELAY as accepted
    handler = server.RequestHandlerClass

    def probing(request: socket.socket, client_address: object, srv: object) -> object:
        accepted.append((request, request.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))
        return handler(request, client_address, srv)  # type: ignore[call-arg, arg-type]  # serves its requests

    server.RequestHandlerClass = probing  # type: ignore[assignment]
    try:
        fetcher = UrlFetcher(FAST)
        for _ in range(50):
            fetcher.download_bytes(f"{url}/metadata/timestamp.json", 100_000)
        assert len(accepted) == 1, "one kept-alive connection for the 50 requests"
        (sock, as_accepted), = accepted
        assert as_accepted == 0 and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0, \
            "the server turns Nagle off on its connection"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.usefixtures("fast_env")
def test_a_redirecting_source_is_refused_and_the_mirror_used(repo: Repo, good_url: str) -> None:
    def redirect(c: Conn) -> None:
        while path := c.request():
            c.send(response(b"", "302 Found", f"Location: {good_url}{path}\r\n"))

    with raw_server(redirect) as bad:
        alone = repo.client(url=bad.url)
        with pytest.raises(FetchError) as info:
            alone.refresh()
        assert f"redirect to '{good_url}/metadata/2.root.json' refused" in info.value.message
        assert cache_state(alone) == {"root.json": b"-> root_history/1.root.json",   # the pin, nothing else
                                      "root_history/1.root.json": repo.root_bytes}
        client = repo.client(url=bad.url, mirrors=[good_url])
        client.refresh()
        assert client.metadata("hello", ARCH).version == "1.1.0"


# ----------------------------------------------------------------- the CLI

@pytest.mark.usefixtures("fast_env")
def test_cli_over_a_slowloris_primary_with_a_mirror_and_without(repo: Repo, good_url: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from composer.cli.main import main
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "vcache"))
    with raw_server(header_slowloris) as bad:
        where = ["--repo", bad.url, "--root", str(repo.meta("1.root.json"))]
        error, seconds = timed(lambda: main(["search", "hello", *where, "--mirror", good_url]))
        assert error is None and seconds < 1.0 + 1.5
        assert [line.split()[:2] for line in capsys.readouterr().out.splitlines()] == [
            ["hello", "1.0.0"], ["hello", "1.1.0"]]
        assert main(["search", "hello", "--repo", bad.url, "--root", str(repo.meta("1.root.json"))]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: cannot get trusted metadata from the repository")
        assert f"{bad.url}/metadata/2.root.json: no response headers within 1 s (VCOMP_HTTP_HEADER_SECONDS)" in err
        assert "hint:" in err and "Traceback" not in err
    monkeypatch.setenv("VCOMP_HTTP_MIN_RATE", "fast")
    assert main(["search", "hello", "--repo", good_url, "--root", str(repo.meta("1.root.json"))]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: VCOMP_HTTP_MIN_RATE='fast' is not a positive number") and "hint:" in err
