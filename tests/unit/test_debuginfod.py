"""vcomp debuginfod: the protocol's URL grammar (hostile forms refused), the build-id index of a real signed
repository (a C program split into crasher and crasher-dbg), the HTTP server, and elfutils' debuginfod-find and
gdb as its real clients."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.cli.debug import parse_listen
from composer.debug.buildid import debug_path_of, id_of_debug_path, is_build_id
from composer.debug.index import Store, architectures, build_index
from composer.debug.protocol import MAX_SOURCE_PATH, Request, parse_request
from composer.debug.server import DebuginfodServer, serve_in_thread
from composer.errors import UserError
from composer.repo.client import RepositoryClient
from tests.support.debugpkgs import DebugRepo, make_debug_repo

ID = "a85e81fab2c11bcc3d1e4c3bf0f78d89178fd6ea"


@pytest.mark.parametrize(("path", "want"), [
    (f"/buildid/{ID}/debuginfo", Request(build_id=ID, kind="debuginfo")),
    (f"/buildid/{ID.upper()}/executable", Request(build_id=ID, kind="executable")),
    (f"/buildid/{ID}/debuginfo?x=1", Request(build_id=ID, kind="debuginfo")),
    (f"/buildid/{ID}/source/usr/src/a.c", Request(build_id=ID, kind="source", source="/usr/src/a.c")),
    (f"/buildid/{ID}/source/%2Fusr%2Fsrc%2Fa.c", Request(build_id=ID, kind="source", source="/usr/src/a.c")),
    (f"/buildid/{ID}/source//usr//src/a.c", Request(build_id=ID, kind="source", source="/usr/src/a.c")),
    (f"/buildid/{ID}/section/.gdb_index", Request(build_id=ID, kind="section", section=".gdb_index")),
    (f"/buildid/{ID}/section/%2Edebug_info", Request(build_id=ID, kind="section", section=".debug_info")),
])
def test_well_formed_requests(path: str, want: Request) -> None:
    assert parse_request(path) == want


@pytest.mark.parametrize("path", [
    "/", "/buildid", "/buildid/", f"/buildid/{ID}", f"/buildid/{ID}/", f"/buildid/{ID}/debuginfo/extra",
    f"/buildid/{ID}/section", f"/buildid/{ID}/section/", f"/buildid/{ID}/section/.a/b",
    f"/buildid/{ID}/section/..%2Fx", f"/buildid/{ID}/section/" + "a" * 129, f"/buildid/{ID}/section/a%00",
    f"/buildid/{ID}/source", f"/buildid/{ID}/source/",
    "/buildid/abc/debuginfo",                       # odd length
    "/buildid/zz/debuginfo", "/buildid/0x12/debuginfo", "/buildid/12-4/debuginfo",
    f"/buildid/{'ab' * 65}/debuginfo",               # over 128 hex digits
    "/buildid/%61%62/debuginfo",                     # escaped hex is not hex
    f"/buildid/{ID}/source/usr/../etc/shadow", f"/buildid/{ID}/source/%2e%2e/etc/passwd",
    f"/buildid/{ID}/source/usr/src/a.c%00", f"/buildid/{ID}/source/usr/src/%ff%fe",
    f"/buildid/{ID}/source/" + "a/" * (MAX_SOURCE_PATH // 2 + 1), f"/buildid/{ID}/source/a\\..\\b",
    "/buildid/" + "a" * 20000 + "/debuginfo", f"/metadata/{ID}", f"//buildid/{ID}/debuginfo",
])
def test_hostile_or_foreign_requests_are_nothing(path: str) -> None:
    assert parse_request(path) is None


def test_build_id_paths() -> None:
    assert debug_path_of(ID) == f"usr/lib/debug/.build-id/a8/{ID[2:]}.debug"
    assert id_of_debug_path(debug_path_of(ID)) == ID
    for bad in ("usr/lib/debug/.build-id/a8/", "usr/lib/debug/.build-id/A8/5e.debug",
                "usr/lib/debug/.build-id/a8/5e81.debug.x", "usr/lib/debug/.build-id/a/85e81.debug",
                "usr/lib/debug/.build-id/a8/5.debug", "usr/lib/debug/.build-id/a8/../5e.debug"):
        assert id_of_debug_path(bad) is None, bad
    assert is_build_id("ab") and not is_build_id("a") and not is_build_id("AB") and not is_build_id("")


# ----------------------------------------------------------------- a real repository and server

@pytest.fixture(scope="module")
def debug_repo(tmp_path_factory: pytest.TempPathFactory) -> DebugRepo:
    return make_debug_repo(tmp_path_factory.mktemp("debugrepo"))


@pytest.fixture()
def served(debug_repo: DebugRepo, tmp_path: Path) -> Iterator[tuple[DebuginfodServer, Store, list[str]]]:
    client = RepositoryClient(str(debug_repo.dir), debug_repo.root.read_bytes(), tmp_path / "repos")
    store = Store(dir=tmp_path / "debuginfod")
    said: list[str] = []
    index = build_index(client, store, architectures(client, ()), said.append)
    server = serve_in_thread(index, store)
    yield server, store, said
    server.shutdown()
    server.server_close()


def _get(url: str, method: str = "GET") -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def test_the_index_holds_debug_files_executables_and_sources(served: tuple[DebuginfodServer, Store, list[str]],
                                                             debug_repo: DebugRepo) -> None:
    server, _store, said = served
    bid = debug_repo.crasher.build_id
    assert server.index.debuginfo[bid].path == debug_path_of(bid)
    assert server.index.debuginfo[bid].package == "crasher-dbg=1.0.0/x86_64"
    assert server.index.executable[bid].path == "usr/bin/crasher"
    assert set(server.index.sources["crasher-dbg=1.0.0/x86_64"]) == {"crasher/crasher.c"}
    assert len(said) == 2   # both packages scanned once


def test_a_second_index_reads_only_the_cache(served: tuple[DebuginfodServer, Store, list[str]],
                                             debug_repo: DebugRepo, tmp_path: Path) -> None:
    server, store, _said = served
    client = RepositoryClient(str(debug_repo.dir), debug_repo.root.read_bytes(), tmp_path / "repos")
    again: list[str] = []
    index = build_index(client, store, ["x86_64"], again.append)
    assert again == [] and index.to_json() == server.index.to_json()


def test_http_answers_files_and_404s(served: tuple[DebuginfodServer, Store, list[str]], debug_repo: DebugRepo) -> None:
    server, _store, _said = served
    c = debug_repo.crasher
    status, body, headers = _get(f"{server.url}/buildid/{c.build_id}/debuginfo")
    assert status == 200 and body == c.debug.read_bytes()
    assert headers["X-Debuginfod-Archive"] == "crasher-dbg=1.0.0/x86_64"
    assert _get(f"{server.url}/buildid/{c.build_id}/executable")[1] == c.binary.read_bytes()
    status, body, headers = _get(f"{server.url}/buildid/{c.build_id}/debuginfo", "HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == str(c.debug.stat().st_size)
    assert b"veridian_crash_here" in _get(f"{server.url}/buildid/{c.build_id}/source/usr/src/debug/crasher/"
                                          "crasher.c")[1]
    for path in (f"/buildid/{'00' * 20}/debuginfo", f"/buildid/{c.build_id}/source/etc/passwd",
                 f"/buildid/{c.build_id}/source/usr/src/debug/crasher/../../../../etc/passwd",
                 "/buildid/zz/debuginfo", "/metadata/root.json", "/"):
        assert _get(server.url + path)[0] == 404, path


def _section(path: Path, name: str, tmp_path: Path) -> bytes:
    out = tmp_path / f"section{name}"
    subprocess.run(["objcopy", f"--dump-section={name}={out}", str(path), str(tmp_path / "scratch")], check=True)
    return out.read_bytes()


def test_http_answers_sections_from_the_debug_file_else_the_executable(
        served: tuple[DebuginfodServer, Store, list[str]], debug_repo: DebugRepo, tmp_path: Path) -> None:
    server, _store, _said = served
    c = debug_repo.crasher
    status, body, headers = _get(f"{server.url}/buildid/{c.build_id}/section/.debug_info")
    assert status == 200 and body == _section(c.debug, ".debug_info", tmp_path) and body
    assert headers["X-Debuginfod-Archive"] == "crasher-dbg=1.0.0/x86_64"
    assert headers["X-Debuginfod-Size"] == headers["Content-Length"] == str(len(body))
    # .text is NOBITS in the debug file: it comes from the executable
    status, body, headers = _get(f"{server.url}/buildid/{c.build_id}/section/.text")
    assert status == 200 and body == _section(c.binary, ".text", tmp_path)
    assert headers["X-Debuginfod-Archive"] == "crasher=1.0.0/x86_64"
    assert _get(f"{server.url}/buildid/{c.build_id}/section/.debug_info", "HEAD")[1] == b""
    for path in (f"/buildid/{c.build_id}/section/.no_such_section", f"/buildid/{'00' * 20}/section/.text"):
        assert _get(server.url + path)[0] == 404, path


def _client_env(server: DebuginfodServer, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DEBUGINFOD_URLS": server.url, "DEBUGINFOD_CACHE_PATH": str(tmp_path / "client-cache"),
            "DEBUGINFOD_TIMEOUT": "20"}


def test_debuginfod_find_is_a_client(served: tuple[DebuginfodServer, Store, list[str]], debug_repo: DebugRepo,
                                     tmp_path: Path) -> None:
    server, _store, _said = served
    env, c = _client_env(server, tmp_path), debug_repo.crasher
    for kind, want in (("debuginfo", c.debug), ("executable", c.binary)):
        got = subprocess.run(["debuginfod-find", kind, c.build_id], env=env, capture_output=True, text=True,
                             check=True).stdout.strip()
        assert Path(got).read_bytes() == want.read_bytes()
    src = subprocess.run(["debuginfod-find", "source", c.build_id, "/usr/src/debug/crasher/crasher.c"], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert "veridian_outer" in Path(src).read_text()
    section = subprocess.run(["debuginfod-find", "section", c.build_id, ".debug_line"], env=env,
                             capture_output=True, text=True, check=True).stdout.strip()
    assert Path(section).read_bytes() == _section(c.debug, ".debug_line", tmp_path)
    missing = subprocess.run(["debuginfod-find", "debuginfo", "00" * 20], env=env, capture_output=True, text=True)
    assert missing.returncode != 0


def test_gdb_symbolises_the_stripped_program_through_the_server(
        served: tuple[DebuginfodServer, Store, list[str]], debug_repo: DebugRepo, tmp_path: Path) -> None:
    """The stripped binary alone (its debuglink names nothing beside it): gdb fetches the rest."""
    server, _store, _said = served
    alone = tmp_path / "alone" / "crasher"
    alone.parent.mkdir()
    shutil.copy2(debug_repo.crasher.binary, alone)
    out = subprocess.run(["gdb-multiarch", "-nx", "-batch", "-iex", "set debuginfod enabled on", "-ex", "run crash",
                          "-ex", "bt", str(alone)], env=_client_env(server, tmp_path), capture_output=True,
                         text=True, timeout=120).stdout
    assert "veridian_crash_here" in out and "veridian_outer" in out and "main" in out, out


def test_a_damaged_cache_is_read_again(served: tuple[DebuginfodServer, Store, list[str]], debug_repo: DebugRepo,
                                       tmp_path: Path) -> None:
    server, store, _said = served
    obj = store.object(server.index.debuginfo[debug_repo.crasher.build_id].sha256)
    obj.write_bytes(b"short")
    client = RepositoryClient(str(debug_repo.dir), debug_repo.root.read_bytes(), tmp_path / "repos")
    again: list[str] = []
    build_index(client, store, ["x86_64"], again.append)
    assert len(again) == 1 and obj.read_bytes() == debug_repo.crasher.debug.read_bytes()


@pytest.mark.parametrize(("text", "want"), [("127.0.0.1:8002", ("127.0.0.1", 8002)), ("[::1]:0", ("::1", 0))])
def test_listen_addresses(text: str, want: tuple[str, int]) -> None:
    assert parse_listen(text) == want


@pytest.mark.parametrize("text", ["8002", "localhost:8002", "127.0.0.1:70000", "127.0.0.1:x", ":8002"])
def test_bad_listen_addresses_are_one_clear_error(text: str) -> None:
    with pytest.raises(UserError, match="not an address and port"):
        parse_listen(text)
