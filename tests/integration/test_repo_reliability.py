"""Repository writers under concurrency and faults: one lock, nothing lost, one clear line.

Real processes (``python -m composer repo add``) race on a copy of the real signed repository of
``tests/repo_fixtures.py``; afterwards every package must be in the index and in its developer's
role, and a fresh client must refresh and fetch each one. Before the repository lock, two concurrent
``repo add`` lost a package in 4 of 10 rounds.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tuf.api.metadata import Targets

from composer.repo import edit, guard, statedb
from composer.repo.client import RepositoryClient
from composer.repo.store import RepoStore
from tests.reliability.killsweep import REPO as SOURCE
from tests.reliability.killsweep import kills_wanted, tree_digest
from tests.repo_fixtures import ARCH, Pristine, Repo, build_package, build_pristine

EXTRA = tuple((f"libcc{i}", "1.0.0", ARCH, "alice") for i in range(4))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    return build_pristine(tmp_path_factory.mktemp("pristine"))


@pytest.fixture(scope="module")
def extra(pristine: Pristine, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("extra")
    return [build_package(base, spec, pristine.keys) for spec in EXTRA]


def vcomp(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full = {**os.environ, "PYTHONPATH": str(SOURCE), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "composer", *argv], cwd=cwd, env=full, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = vcomp(*argv, env=env)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def check_consistent(repo: Repo, expected: list[str]) -> None:
    """Every expected package in state, in its role and (after publish) in the index, fetchable."""
    store = RepoStore(repo.dir)
    edit.publish(store)                     # repairs what a killed writer left, under the lock
    listed = set(guard.listed_targets(store))
    state = set(store.read_state()["packages"])
    assert state == listed, (state ^ listed)
    client = repo.client()
    client.refresh()
    names = {e.name for e in client.index(ARCH)}
    for name in expected:
        assert name in names, f"{name} lost: index has {sorted(names)}"
        entry = client.metadata(name, ARCH)
        assert client.fetch(entry).is_file()


@pytest.mark.parametrize("writers", [2, 4])
def test_concurrent_repo_add_loses_nothing(pristine: Pristine, extra: list[Path], tmp_path: Path,
                                           writers: int) -> None:
    rounds = kills_wanted(2)
    for n in range(rounds):
        repo = pristine.copy(tmp_path / f"round{n}")
        key = str(repo.keys.path("alice"))
        procs = [vcomp("repo", "add", str(repo.dir), str(pkg), "--key", key) for pkg in extra[:writers]]
        results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
        for code, err in results:
            assert code == 0, err
        assert not list((repo.dir / "metadata").glob(".*.tmp"))
        check_consistent(repo, [f"libcc{i}" for i in range(writers)] + ["hello", "libfoo"])
        role = RepoStore(repo.dir).load("alice", Targets).signed
        assert {f"packages/libcc{i}/libcc{i}-1.0.0-{ARCH}.vpk" for i in range(writers)} <= set(role.targets)


def test_second_writer_waits_and_no_wait_fails(pristine: Pristine, extra: list[Path], tmp_path: Path) -> None:
    repo = pristine.copy(tmp_path)
    with guard.repo_lock(repo.dir):
        r = run("--no-wait", "repo", "add", str(repo.dir), str(extra[0]), "--key", str(repo.keys.path("alice")))
        assert r.returncode != 0
        assert "is locked by PID" in r.stderr and "internal error" not in r.stderr, r.stderr
        waiting = vcomp("repo", "publish", str(repo.dir))
        assert waiting.stderr is not None
        line = waiting.stderr.readline()  # said before it waits: no fixed sleep (a loaded machine starts late)
        assert f"waiting for the lock on repository '{repo.dir}' held by PID {os.getpid()}" in line, line
        assert waiting.poll() is None, "it did not wait for the lock"
    _, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err


def test_killed_add_is_repaired_by_the_next_publish(pristine: Pristine, extra: list[Path], tmp_path: Path) -> None:
    """A kill after the role was signed but before the state transaction: the next writer restores the entry."""
    repo = pristine.copy(tmp_path)
    store = RepoStore(repo.dir)
    guard.migrate_state(repo.dir)
    before, marker = store.read_state(), store.writable_state().meta(guard.ROLES_KEY)
    edit.add(repo.store, [extra[0]], [repo.keys.alice])
    store.write_state(before)                                 # as if killed before the state transaction
    store.writable_state().put((), meta={guard.ROLES_KEY: marker})
    (repo.dir / "metadata" / ".5.alice.json.x1.tmp").write_bytes(b"{half")  # and a torn temporary
    check_consistent(repo, ["libcc0"])
    assert not list((repo.dir / "metadata").glob(".*.tmp"))


def test_lost_state_is_rebuilt_from_the_roles(pristine: Pristine, tmp_path: Path) -> None:
    repo = pristine.copy(tmp_path)
    guard.migrate_state(repo.dir)
    statedb.remove_state(repo.dir)
    check_consistent(repo, ["hello", "libfoo", "evil-tool"])


def test_corrupt_state_is_one_line_then_rebuilt(pristine: Pristine, tmp_path: Path) -> None:
    repo = pristine.copy(tmp_path)
    guard.migrate_state(repo.dir)
    statedb.remove_state(repo.dir)
    (repo.dir / "state.db").write_bytes(b"\x00not a database" * 512)
    done = run("repo", "publish", str(repo.dir))
    assert done.returncode != 0 and "state.db: the repository state database is unreadable" in done.stderr
    assert f"vcomp repo migrate {repo.dir} --rebuild" in done.stderr and "Traceback" not in done.stderr
    done = run("repo", "migrate", str(repo.dir), "--rebuild")
    assert done.returncode == 0 and "rebuilt from the signed roles" in done.stdout, done.stderr
    check_consistent(repo, ["hello", "libfoo", "evil-tool"])


@pytest.mark.parametrize(("content", "expect"), [
    (b"keys = [", "not a valid repository configuration"),
    (b"[keys]\nindex = 3\nsnapshot = []\ntimestamp = []\n", "'keys.index' must be a list of strings"),
    (b"expiry-days = [1]\n[keys]\nindex = []\nsnapshot = []\ntimestamp = []\n", "expiry-days"),
])
def test_corrupt_repo_toml_is_one_line(pristine: Pristine, tmp_path: Path, content: bytes, expect: str) -> None:
    repo = pristine.copy(tmp_path)
    (repo.dir / "repo.toml").write_bytes(content)
    before = sorted(p.name for p in (repo.dir / "metadata").iterdir())
    r = run("repo", "publish", str(repo.dir))
    assert r.returncode == 1 and expect in r.stderr and "internal error" not in r.stderr, r.stderr
    assert sorted(p.name for p in (repo.dir / "metadata").iterdir()) == before


def test_corrupt_metadata_is_one_line(pristine: Pristine, tmp_path: Path) -> None:
    repo = pristine.copy(tmp_path)
    version = repo.store.current_version("snapshot")
    (repo.dir / "metadata" / f"{version}.snapshot.json").write_bytes(b"{\"signed\": 1")
    r = run("repo", "publish", str(repo.dir))
    assert r.returncode == 1 and "unreadable metadata" in r.stderr and "internal error" not in r.stderr, r.stderr
    assert (repo.dir / "metadata" / f"{version + 1}.snapshot.json").exists() is False


@pytest.fixture()
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs (root only: mounting needs privileges)."""
    where = tmp_path / "fs"
    where.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)],
                                           capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(fs: Path, leave: int) -> Path:
    """Fill ``fs`` until only about ``leave`` bytes are free."""
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    with contextlib.suppress(OSError):
        while True:
            os.write(fd, b"\0" * 65536)
    with contextlib.suppress(OSError):
        while True:
            os.write(fd, b"\0" * 512)
    os.close(fd)
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


WRITERS = (("add", lambda repo, pkg: ["repo", "add", str(repo), str(pkg), "--key", "ALICE"]),
           ("publish", lambda repo, pkg: ["repo", "publish", str(repo)]),
           ("refresh", lambda repo, pkg: ["repo", "refresh", str(repo)]))


def writer_argv(which: int, repo: Repo, pkg: Path) -> list[str]:
    argv: list[str] = WRITERS[which][1](repo.dir, pkg)
    return [str(repo.keys.path("alice")) if a == "ALICE" else a for a in argv]


@pytest.mark.parametrize("leave", [0, 8192, 40960])
def test_enospc_while_writing_is_one_line_and_recoverable(pristine: Pristine, extra: list[Path], small_fs: Path,
                                                          leave: int) -> None:
    repo = pristine.copy(small_fs)
    filler = fill(small_fs, leave)
    failed = []
    for which in range(len(WRITERS)):
        before = guard.listed_targets(repo.store)
        r = run(*writer_argv(which, repo, extra[0]))
        failed.append(r.returncode != 0)
        assert "internal error" not in r.stderr and "Traceback" not in r.stderr, r.stderr
        if r.returncode != 0:
            assert "no space left on the device" in r.stderr, r.stderr
            assert len(r.stderr.strip().splitlines()) <= 2, r.stderr
            assert guard.listed_targets(repo.store) == before
    assert failed[0] or leave, "a full file system must refuse 'repo add'"
    filler.unlink()
    r = run(*writer_argv(0, repo, extra[0]))
    assert r.returncode == 0, r.stderr
    check_consistent(repo, ["libcc0", "hello"])


def test_read_only_repository_is_one_line(pristine: Pristine, extra: list[Path], small_fs: Path) -> None:
    repo = pristine.copy(small_fs)
    tree = tree_digest(repo.dir)
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    try:
        for which in range(len(WRITERS)):
            r = run(*writer_argv(which, repo, extra[0]))
            assert r.returncode == 1, r.stderr
            assert "read-only" in r.stderr and "internal error" not in r.stderr, r.stderr
            assert len(r.stderr.strip().splitlines()) <= 2, r.stderr
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    assert tree_digest(repo.dir) == tree
    check_consistent(repo, ["hello"])


def test_repo_add_on_a_missing_directory_creates_nothing(extra: list[Path], tmp_path: Path) -> None:
    r = run("repo", "add", str(tmp_path / "nope"), str(extra[0]), "--key", "x.key")
    assert r.returncode == 1 and "not a repository" in r.stderr, r.stderr
    assert not (tmp_path / "nope").exists()


# ----------------------------------------------------------------- repo mirror against a dead server

class _Dying(http.server.SimpleHTTPRequestHandler):
    """Serves the repository until the first package is asked for; then the server goes away."""

    dead = threading.Event()

    def do_GET(self) -> None:
        if self.path.startswith("/targets/packages/") or self.dead.is_set():
            self.dead.set()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            threading.Thread(target=self.server.shutdown, daemon=True).start()
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


def dying_server(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    _Dying.dead.clear()
    handler = functools.partial(_Dying, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host!s}:{port}"


def test_repo_mirror_from_a_dead_server_is_one_line_and_keeps_the_mirror(pristine: Pristine, extra: list[Path],
                                                                        tmp_path: Path) -> None:
    repo = pristine.copy(tmp_path)
    dest, root = tmp_path / "mirror", str(repo.meta("1.root.json"))
    cache = {"VCOMP_CACHE": str(tmp_path / "cache")}
    r = run("repo", "mirror", repo.url, str(dest), "--root", root, "--arch", ARCH, env=cache)
    assert r.returncode == 0, r.stderr
    before = tree_digest(dest / "metadata")
    edit.add(repo.store, [extra[0]], [repo.keys.alice])
    edit.publish(repo.store)
    server, url = dying_server(repo.dir)
    try:
        r = run("repo", "mirror", url, str(dest), "--root", root, "--arch", ARCH, env=cache)
    finally:
        server.server_close()
    assert r.returncode == 1, r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and "libcc0" in lines[0] and lines[1].startswith("  hint:"), r.stderr
    # targets may have gained verified files; the metadata clients read is untouched
    assert tree_digest(dest / "metadata") == before
    client = repo.client(url=dest.as_uri())
    client.refresh()
    assert {e.name for e in client.index(ARCH)} == {"hello", "libfoo", "evil-tool"}   # the old mirror, whole
    r = run("repo", "mirror", f"http://127.0.0.1:{free_port()}", str(tmp_path / "m2"), "--root", root, env=cache)
    assert r.returncode == 1 and "cannot get trusted metadata" in r.stderr and "internal error" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 2, r.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------- every write step of add + publish

class Killed(BaseException):
    """Stands for SIGKILL at one rename (the kill sweeps in tests/reliability do it from outside)."""


def view(repo: Repo) -> list[tuple[str, str]]:
    client = repo.client()
    client.refresh()
    entries = client.index(ARCH)
    for e in entries:
        client.fetch(e)
    return sorted((e.path, e.sha256) for e in entries)


def test_a_crash_at_every_rename_of_add_and_publish_recovers(pristine: Pristine, extra: list[Path], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.replace
    calls: list[tuple[str, str]] = []

    def counting(a: str, b: str, **kw: object) -> None:
        calls.append((str(a), str(b)))
        if len(calls) == crash_at:
            raise Killed
        real(a, b)

    def add_and_publish(repo: Repo) -> None:
        edit.add(repo.store, [extra[0]], [repo.keys.alice])
        edit.publish(repo.store)

    crash_at = 0
    first = pristine.copy(tmp_path / "uncut")
    old = view(first)
    monkeypatch.setattr(os, "replace", counting)
    add_and_publish(first)
    monkeypatch.setattr(os, "replace", real)
    new, steps = view(first), len(calls)
    assert steps >= 7 and old != new
    outcomes = []
    for crash_at in range(1, steps + 1):
        calls.clear()
        repo = pristine.copy(tmp_path / f"crash{crash_at}")
        monkeypatch.setattr(os, "replace", counting)
        with pytest.raises(Killed):
            add_and_publish(repo)
        monkeypatch.setattr(os, "replace", real)
        assert view(repo) in (old, new), f"a client sees a mix after a crash at rename {crash_at}"
        edit.publish(repo.store)                     # the user's retry
        after = view(repo)
        assert after in (old, new), f"crash at rename {crash_at}: neither old nor new after the retry"
        outcomes.append("new" if after == new else "old")
    assert "new" in outcomes and "old" in outcomes


@pytest.mark.parametrize("leave", [0, 8192])
def test_a_full_package_cache_is_one_line_and_leaves_no_partial_entry(pristine: Pristine, small_fs: Path,
                                                                      tmp_path: Path, leave: int) -> None:
    repo = pristine.copy(tmp_path)
    cache = small_fs / "cache"
    argv = ("fetch", "hello", "--repo", repo.url, "--root", str(repo.meta("1.root.json")), "--out",
            str(tmp_path / "out"))
    filler = fill(small_fs, leave)
    r = run(*argv, env={"VCOMP_CACHE": str(cache)})
    assert r.returncode == 1 or leave, "a full file system must refuse the download"
    if r.returncode:
        assert "no space left on the device" in r.stderr and "internal error" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 2, r.stderr
    assert not [p for p in cache.rglob("*") if p.name.endswith(".tmp")]
    filler.unlink()
    r = run(*argv, env={"VCOMP_CACHE": str(cache)})
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).read_bytes() == repo.package("hello", "1.1.0").read_bytes()


def test_init_runs_again_after_a_killed_init(pristine: Pristine, tmp_path: Path) -> None:
    keys = pristine.keys
    directory = tmp_path / "new"
    (directory / "metadata").mkdir(parents=True)
    (directory / "metadata" / "1.root.json").write_bytes(b"{half")      # what a kill can leave: no repo.toml
    (directory / ".repo.toml.abc123.tmp").write_bytes(b"[keys")
    online = {role: [keys.by_name[role]] for role in ("index", "snapshot", "timestamp")}
    edit.init(directory, root_keys=[keys.root1], root_threshold=1, targets_keys=[keys.targets], online=online,
              online_paths={role: [str(keys.path(role))] for role in online}, architectures=[ARCH])
    assert sorted(p.name for p in directory.iterdir()) == [".lock", "metadata", "repo.toml", "targets"]
    edit.publish(RepoStore(directory))
    client = RepositoryClient(directory.as_uri(), (directory / "metadata" / "1.root.json").read_bytes(),
                              tmp_path / "cache")
    assert client.index(ARCH) == []
