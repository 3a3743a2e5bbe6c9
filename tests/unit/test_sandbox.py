"""Recipe ``command`` sources run confined (issue 11, finding 4): bubblewrap, host read-only, no network.

Everything is real: the builder, bwrap, /bin/sh, gcc. A sentinel directory outside /tmp (which the
sandbox replaces by a private tmpfs), the user's $HOME and the project's own checkout are the host
paths a hostile step tries to write.
"""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import composer
from composer.errors import ComposerError, UserError
from composer.package.archive import verify_package
from composer.package.build import build
from composer.trust.keys import SigningKey
from tests.conftest import write_recipe
from tests.hostile import snapshot

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

HEAD = """
[package]
name = "demo"
version = "1.0.0"
description = "demo"
license = "MIT"
type = "application"

[[source]]
kind = "tree"
path = "files"
"""
REPO = Path(composer.__file__).resolve().parents[1]


def command_recipe(base: Path, run: str, tools: tuple[str, ...] = ()) -> Path:
    tools_line = f"tools = {list(tools)!r}\n".replace("'", '"') if tools else ""
    toml = HEAD + f"\n[[source]]\nkind = \"command\"\n{tools_line}run = '''\n{run}\n'''\n"
    return write_recipe(base / "r", toml, {"files/etc/demo.conf": "x\n"})


@pytest.fixture()
def sentinel() -> Iterator[Path]:
    """A directory outside every target and outside /tmp, with one file in it."""
    d = Path(tempfile.mkdtemp(prefix="vcomp-sentinel-", dir="/var/tmp"))
    (d / "keep").write_text("untouched\n")
    try:
        yield d
    finally:
        shutil.rmtree(d)


def _build(base: Path, key: SigningKey, run: str, tools: tuple[str, ...] = ()) -> Path:
    return build(command_recipe(base, run, tools), "x86_64", key, base / "out").path


def _escape_target(kind: str, sentinel: Path) -> Path:
    return {"sentinel": sentinel / "escaped", "home": Path.home() / ".vcomp-sandbox-escape",
            "repo": REPO / ".vcomp-sandbox-escape", "etc": Path("/etc/vcomp-sandbox-escape")}[kind]


WRITES = {
    "redirect": 'echo pwned > "{p}"',
    "touch": 'touch "{p}"',
    "mkdir": 'mkdir -p "{p}"',
    "cp": 'cp "$DESTDIR/etc/demo.conf" "{p}"',
    "symlink-in-destdir": 'ln -s "{p}" "$DESTDIR/etc/link"\necho pwned > "$DESTDIR/etc/link"',
}


@pytest.mark.parametrize("where", ["sentinel", "home", "repo", "etc"])
@pytest.mark.parametrize("how", sorted(WRITES))
def test_a_write_outside_the_build_fails_naming_the_path(tmp_path: Path, dev_key: SigningKey, sentinel: Path,
                                                         where: str, how: str) -> None:
    if where == "repo" and REPO.is_relative_to("/tmp"):
        pytest.skip("the checkout is under /tmp, which the sandbox replaces by a private tmpfs: no write reaches it")
    target = _escape_target(where, sentinel)
    before = snapshot(sentinel)
    with pytest.raises(UserError) as info:
        _build(tmp_path, dev_key, WRITES[how].format(p=target))
    message = str(info.value)
    assert "\n" not in message
    assert "recipe.toml" in message and "recipe 'demo', step 2 (command)" in message
    assert "tried to write outside its build directory: " in message and str(target) in message
    assert "$DESTDIR" in info.value.hint
    assert not target.exists() and not target.is_symlink()
    assert snapshot(sentinel) == before
    assert list((tmp_path / "out").iterdir()) == []


def test_an_ignored_failed_write_still_changes_nothing(tmp_path: Path, dev_key: SigningKey, sentinel: Path) -> None:
    before = snapshot(sentinel)
    pkg = _build(tmp_path, dev_key, f'echo pwned > "{sentinel}/keep" || true\nrm -f "{sentinel}/keep" || true')
    verify_package(pkg)
    assert snapshot(sentinel) == before


def test_the_host_tmp_is_not_shared(tmp_path: Path, dev_key: SigningKey) -> None:
    """The host's /tmp (where this test's own files are) is replaced by a private, empty tmpfs."""
    secret = tmp_path / "host-secret"
    secret.write_text("s3cret\n")
    with pytest.raises(ComposerError) as info:
        _build(tmp_path, dev_key, f'cat "{secret}" > "$DESTDIR/etc/stolen"')
    assert "No such file" in str(info.value)
    secret.write_text("changed\n")
    _build(tmp_path, dev_key, f'echo x > "{secret}"\ntest "$(cat "{secret}")" = x')
    assert secret.read_text() == "changed\n"


def test_the_build_directory_destdir_home_and_tmp_are_writable(tmp_path: Path, dev_key: SigningKey) -> None:
    run = "\n".join([
        'echo work > ./scratch-file', 'mkdir -p sub && echo nested > sub/f',
        'echo tmp > "$TMPDIR/t" && echo tmp2 > /tmp/t2', 'echo home > "$HOME/.rc"',
        'mkdir -p "$DESTDIR/usr/share/demo"',
        'cat ./scratch-file sub/f "$TMPDIR/t" /tmp/t2 "$HOME/.rc" > "$DESTDIR/usr/share/demo/out"',
    ])
    pkg = _build(tmp_path, dev_key, run)
    paths = {e.path for e in verify_package(pkg).header.manifest.entries}
    assert "usr/share/demo/out" in paths


class _Listener:
    """A real TCP server on the host's loopback that records whether anything connected."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


# a Python the sandbox can see: the host's /tmp is hidden in it, and a checkout (and its .venv) may live there
SANDBOX_PY = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
PY_CONNECT = SANDBOX_PY + " -c 'import socket; socket.create_connection((\"{host}\", {port}), timeout=3)'"


def test_the_network_is_off(tmp_path: Path, dev_key: SigningKey) -> None:
    server = _Listener()
    try:
        # the host's loopback is not the sandbox's: nothing reaches the server
        with pytest.raises(ComposerError) as info:
            _build(tmp_path, dev_key, PY_CONNECT.format(host="127.0.0.1", port=server.port))
        assert "Connection refused" in str(info.value)
        # and there is no route anywhere else
        with pytest.raises(UserError) as info:
            _build(tmp_path, dev_key, PY_CONNECT.format(host="192.0.2.1", port=80))
        assert "recipe 'demo', step 2 (command) tried to use the network" in str(info.value)
    finally:
        server.close()
    assert server.connections == 0
    # the same client does reach the server from outside the sandbox (so the test can fail)
    probe = _Listener()
    try:
        socket.create_connection(("127.0.0.1", probe.port), timeout=3).close()
        probe.stop.wait(0.5)
    finally:
        probe.close()
    assert probe.connections == 1


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_the_sample_hello_recipe_builds_confined_and_deterministically(tmp_path: Path, dev_key: SigningKey,
                                                                       arch: str) -> None:
    """recipes/hello compiles C with the host (x86_64) or cross (aarch64) gcc inside the sandbox."""
    first = build(REPO / "recipes" / "hello", arch, dev_key, tmp_path / "one")
    second = build(REPO / "recipes" / "hello", arch, dev_key, tmp_path / "two")
    assert first.path.read_bytes() == second.path.read_bytes()
    entries = {e.path: e for e in verify_package(first.path).header.manifest.entries}
    assert entries["usr/bin/hello"].size > 10_000


def test_a_sandbox_that_cannot_start_says_so(tmp_path: Path) -> None:
    from composer.errors import ToolError
    from composer.package.recipe import load_recipe
    from composer.package.sources import Context, command_failed
    from composer.run import Result

    recipe = load_recipe(command_recipe(tmp_path, "true"), "x86_64")
    ctx = Context(recipe=recipe, staging=tmp_path, epoch=0, archive=None, scratch=tmp_path)  # type: ignore[arg-type]
    result = Result(args=("bwrap",), returncode=1, stdout=b"",
                    stderr=b"bwrap: Creating new namespace failed: Operation not permitted\n")
    error = command_failed(ctx, 1, result)
    assert isinstance(error, ToolError)
    assert "recipe 'demo', step 2 (command): the build sandbox could not start (bwrap: Creating new namespace" \
        in error.message and "user namespaces" in error.hint
