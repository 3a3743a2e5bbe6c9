"""The repository over real loopback HTTP: ``serve_in_thread``, the client, the CLI, and hostile servers.

Hostile servers are tiny ``http.server`` handlers written here: a timestamp that never ends, one that
announces 10 GB, a server that answers 500, one that drops the connection mid-file, one that trickles
a byte at a time. The repository itself is the real one from ``tests/repo_fixtures.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.errors import FetchError
from composer.repo.serve import serve_in_thread
from tests.repo_fixtures import ARCH, Pristine, Repo

pytestmark = pytest.mark.integration

QUICK = 10.0  # seconds: a hostile server must not hold the client longer


@pytest.fixture()
def http_url(repo: Repo) -> Iterator[str]:
    server, url = serve_in_thread(repo.dir)
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture()
def vcache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's cache (default_cache() reads VCOMP_CACHE)."""
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "vcache"))
    return tmp_path / "vcache"


# ----------------------------------------------------------------- hostile servers

class _Hostile(http.server.BaseHTTPRequestHandler):
    behaviour: Callable[[_Hostile], None]
    stop: threading.Event

    def do_GET(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up: what we want
            type(self).behaviour(self)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def timestamp_only(self) -> bool:
        """404 for everything but timestamp.json (so the client finds no newer root and asks for it)."""
        if self.path.endswith("/timestamp.json"):
            return True
        self.send_error(404)
        return False


@contextlib.contextmanager
def hostile_server(behaviour: Callable[[_Hostile], None]) -> Iterator[str]:
    stop = threading.Event()
    handler = type("Handler", (_Hostile,), {"behaviour": staticmethod(behaviour), "stop": stop})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def endless(h: _Hostile) -> None:
    if h.timestamp_only():
        h.send_response(200)
        h.end_headers()
        while not h.stop.is_set():
            h.wfile.write(b" " * 65536)


def huge_length(h: _Hostile) -> None:
    if h.timestamp_only():
        h.send_response(200)
        h.send_header("Content-Length", str(10 ** 10))
        h.end_headers()
        while not h.stop.is_set():
            h.wfile.write(b"{" * 65536)


def server_error(h: _Hostile) -> None:
    h.send_error(500)


def dropped(h: _Hostile) -> None:
    if h.timestamp_only():
        h.send_response(200)
        h.send_header("Content-Length", "5000")
        h.end_headers()
        h.wfile.write(b'{"signed": ' + b" " * 89)
        h.wfile.flush()
        h.close_connection = True


def trickle(h: _Hostile) -> None:
    if h.timestamp_only():
        h.send_response(200)
        h.end_headers()
        while not h.stop.wait(0.2):     # 5 bytes a second, well inside any per-read timeout
            h.wfile.write(b" ")
            h.wfile.flush()


def timed(call: Callable[[], object]) -> tuple[BaseException | None, float]:
    start = time.monotonic()
    try:
        call()
    except BaseException as exc:
        return exc, time.monotonic() - start
    return None, time.monotonic() - start


# ----------------------------------------------------------------- the client over HTTP

def test_search_info_fetch_over_http(repo: Repo, pristine: Pristine, tmp_path: Path) -> None:
    server, url = serve_in_thread(repo.dir)
    try:
        client = repo.client(url=url)
        client.refresh()
        assert sorted((e.name, e.version, e.arch) for e in client.search("hello", ARCH)) == [
            ("hello", "1.0.0", "x86_64"), ("hello", "1.1.0", "x86_64")]
        assert {e.name for e in client.search("tiny package", ARCH)} == {"hello", "libfoo", "evil-tool"}
        assert client.metadata("libfoo", ARCH).arch == "noarch"
        assert client.metadata("hello", ARCH, "1.0.0").version == "1.0.0"
        assert client.metadata("hello", ARCH, "^1").version == "1.1.0"
        fetched = {}
        for name in ("hello", "libfoo", "evil-tool"):
            entry = client.metadata(name, ARCH)
            path = client.fetch(entry, tmp_path / "out")
            assert path.parent == tmp_path / "out"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256
            fetched[name] = entry
        assert (tmp_path / "out" / "hello-1.1.0-x86_64.vpk").read_bytes() == \
            repo.package("hello", "1.1.0").read_bytes()
    finally:
        server.shutdown()
        server.server_close()
    # verified targets stay in the cache: fetching again needs no server
    assert client.fetch(fetched["hello"]).read_bytes() == repo.package("hello", "1.1.0").read_bytes()


@pytest.mark.parametrize("transport", ["directory", "file", "http"])
def test_cli_search_info_fetch(repo: Repo, vcache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               transport: str) -> None:
    server, http_base = serve_in_thread(repo.dir)
    try:
        url = {"directory": str(repo.dir), "file": repo.dir.as_uri(), "http": http_base}[transport]
        where = ["--repo", url, "--root", str(repo.meta("1.root.json"))]
        assert main(["search", "hello", *where]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [line.split()[:3] for line in lines] == [["hello", "1.0.0", "x86_64"], ["hello", "1.1.0", "x86_64"]]
        assert main(["search", "nothing-like-this", *where]) == 0
        assert "no package matches 'nothing-like-this' for x86_64" in capsys.readouterr().out
        assert main(["info", "libfoo", "--json", *where]) == 0
        info = json.loads(capsys.readouterr().out)
        assert (info["name"], info["version"], info["arch"]) == ("libfoo", "1.1.0", "noarch")
        assert info["signer"] == repo.keys.alice.keyid
        assert main(["info", "hello", "--version", "1.0.0", *where]) == 0
        assert "version      1.0.0" in capsys.readouterr().out
        assert main(["fetch", "hello=1.0.0", "--out", str(tmp_path / "out"), *where]) == 0
        fetched = Path(capsys.readouterr().out.strip())
        assert fetched.read_bytes() == repo.package("hello", "1.0.0").read_bytes()
        assert main(["fetch", "hullo", "--out", str(tmp_path / "out"), *where]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: no package 'hullo' for x86_64") and "hint:" in err
    finally:
        server.shutdown()
        server.server_close()
    assert any(vcache.rglob("timestamp.json")), "the CLI keeps trusted metadata in its cache"


def test_cli_refuses_a_rollback_with_a_clear_error(repo: Repo, vcache: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--repo", repo.url, "--root", str(repo.meta("1.root.json"))]
    assert main(["search", "hello", *where]) == 0               # trusts the current repository
    capsys.readouterr()
    repo.serve(repo.old())
    assert main(["search", "hello", *where]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot get trusted metadata from the repository:")
    assert "rollback attack or stale mirror" in err and "internal error" not in err
    assert "hint: the local cache keeps its last trusted state" in err
    repo.serve(repo.dir)
    assert main(["search", "hello", *where]) == 0
    assert "1.1.0" in capsys.readouterr().out


# ----------------------------------------------------------------- hostile servers

@pytest.mark.parametrize("behaviour", [endless, huge_length], ids=["endless", "10-GB-content-length"])
def test_endless_timestamp_is_refused_quickly(repo: Repo, http_url: str,
                                              behaviour: Callable[[_Hostile], None]) -> None:
    with hostile_server(behaviour) as bad:
        client = repo.client(url=bad)
        error, seconds = timed(client.refresh)
        assert isinstance(error, FetchError), error
        assert "file longer than allowed" in error.message and "16384" in error.message
        assert seconds < QUICK
        assert not (client.metadata_dir / "timestamp.json").exists()
        failover = repo.client(url=bad, mirrors=[http_url])
        error, seconds = timed(failover.refresh)
        assert error is None and seconds < QUICK
    assert failover.metadata("hello", ARCH).version == "1.1.0"


def test_server_error_fails_over_to_the_next_mirror(repo: Repo, http_url: str) -> None:
    with hostile_server(server_error) as bad, hostile_server(server_error) as bad2:
        client = repo.client(url=bad, mirrors=[bad2, http_url])
        client.refresh()
        assert client.metadata("hello", ARCH).version == "1.1.0"
        alone = repo.client(url=bad, mirrors=[bad2])
        error, _ = timed(alone.refresh)
        assert isinstance(error, FetchError)
        assert "all 2 sources" in error.message and error.message.count("HTTP 500") == 2
        assert bad in error.message and bad2 in error.message


@pytest.mark.parametrize("with_mirror", [False, True], ids=["alone", "with-good-mirror"])
def test_connection_dropped_mid_file_is_a_fetch_error(repo: Repo, http_url: str, with_mirror: bool) -> None:
    with hostile_server(dropped) as bad:
        client = repo.client(url=bad, mirrors=[http_url] if with_mirror else [])
        if with_mirror:
            client.refresh()
            assert client.metadata("hello", ARCH).version == "1.1.0"
        else:
            with pytest.raises(FetchError, match="download failed"):
                client.refresh()


def test_slow_retrieval_is_bounded(repo: Repo, http_url: str) -> None:
    with hostile_server(trickle) as slow:
        client = repo.client(url=slow, mirrors=[http_url])
        outcome: list[BaseException | None] = []
        worker = threading.Thread(target=lambda: outcome.append(timed(client.refresh)[0]), daemon=True)
        worker.start()
        worker.join(QUICK)
        still_waiting = worker.is_alive()
    worker.join(QUICK)  # the server is gone: the client gets a short body and moves on
    assert not still_waiting, f"refresh still waiting after {QUICK} s on a server sending 5 bytes/s"
    assert outcome == [None]


# ----------------------------------------------------------------- what the server serves

def _status(url: str, method: str, path: str) -> int:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()



@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/repo.toml"),
    ("GET", "/state.json"),
    ("GET", "/state.db"),
    ("GET", "/keys/timestamp.key"),
    ("GET", "/metadata/../repo.toml"),
    ("GET", "/metadata/"),
    ("HEAD", "/repo.toml"),
    ("HEAD", "/metadata/../repo.toml"),
    ("GET", "/metadata/%2e%2e/repo.toml"),
    ("GET", "/targets/%2E%2E/state.json"),
    ("GET", "/targets/%2E%2E/state.db"),
    ("GET", "/metadata/%2e%2e/keys/timestamp.key"),
])
def test_server_serves_only_metadata_and_targets(repo: Repo, http_url: str, method: str, path: str) -> None:
    secret = repo.dir / "keys" / "timestamp.key"      # an operator who keeps online keys beside the repository
    secret.parent.mkdir()
    secret.write_bytes(repo.keys.path("timestamp").read_bytes())
    assert _status(http_url, "GET", "/metadata/timestamp.json") == 200
    assert _status(http_url, method, path) == 404


def test_stale_http_mirror_is_refused_once_the_primary_is_gone(repo: Repo) -> None:
    """A good primary and a stale mirror (the old repository), both over HTTP; then the primary goes away."""
    primary, primary_url = serve_in_thread(repo.dir)
    mirror, mirror_url = serve_in_thread(repo.old())
    try:
        client = repo.client(url=primary_url, mirrors=[mirror_url])
        client.refresh()
        assert client.metadata("hello", ARCH).version == "1.1.0"
        primary.shutdown()
        primary.server_close()                  # nothing listens there any more: connection refused
        error, seconds = timed(client.refresh)
        assert isinstance(error, FetchError) and seconds < QUICK
        first, second = error.message.splitlines()[1:]
        assert first.strip().startswith(f"{primary_url}: download failed")
        assert second.strip().startswith(f"{mirror_url}: rollback attack or stale mirror")
        unreachable = repo.client(url=primary_url, mirrors=[mirror_url])
        unreachable.refresh()                   # a new client has nothing newer to compare with
        assert unreachable.metadata("hello", ARCH).version == "1.0.0"
    finally:
        mirror.shutdown()
        mirror.server_close()
