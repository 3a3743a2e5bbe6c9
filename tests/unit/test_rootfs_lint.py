"""No module that handles a root touches it by host path: every mutation goes through composer.rootfs.

An AST scan of the modules that work on roots, image trees and staging directories fails on a path-based
mutating call (``os.rename(root / p, ...)``, ``shutil.rmtree(path)``, ``Path.write_text``, ``open(p, "w")`` ...)
outside ``composer/rootfs``. A call that passes ``dir_fd=`` (or ``src_dir_fd``/``dst_dir_fd``) works on a
descriptor the layer opened and is allowed; so are the few host-only writes in ``ALLOWED`` (with the reason).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

SCANNED = sorted({*(REPO / "composer" / "pkgmgr").glob("*.py"), REPO / "composer" / "cli" / "pkgroot.py",
                  REPO / "composer" / "pkgmgr" / "install.py", REPO / "composer" / "pkgmgr" / "configure.py",
                  REPO / "composer" / "package" / "extract.py"})
OS_MUTATING = {"rename", "replace", "unlink", "remove", "rmdir", "removedirs", "mkdir", "makedirs", "chmod",
               "lchmod", "chown", "lchown", "symlink", "link", "truncate", "mknod", "mkfifo", "utime"}
SHUTIL_MUTATING = {"rmtree", "copy", "copy2", "copyfile", "copytree", "move", "chown", "copymode", "copystat"}
HOST_WRITERS = {"atomic_write", "atomic_output"}  # composer.fsutil: host paths only
# Path methods, and how many positional arguments the Path form takes at most (the Root methods of the same
# name take one more: the root-relative path).
PATH_MUTATING = {"write_text": 1, "write_bytes": 1, "mkdir": 0, "unlink": 0, "rmdir": 0, "chmod": 1, "lchmod": 1,
                 "rename": 1, "replace": 1, "symlink_to": 9, "hardlink_to": 9, "touch": 9}
WRITE_FLAGS = {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"}
FD_KEYWORDS = {"dir_fd", "src_dir_fd", "dst_dir_fd"}
# (module, source of the call) -> why it is not a root operation.
ALLOWED: dict[tuple[str, str], str] = {
    ("composer/package/extract.py", "os.utime(root_fd, ns=_times(root_st))"):
        "descriptor of the extraction root opened by the layer (fd, not a path)",
    ("composer/package/extract.py", "os.utime(fout.fileno(), ns=self.stamp)"): "an open file descriptor",
    ("composer/package/extract.py", "os.utime(out.fileno(), ns=self.stamp)"): "an open file descriptor",
    ("composer/package/extract.py", "os.utime(fd, ns=self.stamp)"): "a directory descriptor from the walker",
    ("composer/package/extract.py", "os.utime(walker.open(parts), ns=ns)"): "a directory descriptor from the walker",
    ("composer/package/extract.py", "os.utime(walker.open(parts), ns=self.stamp)"):
        "a directory descriptor from the walker",
}


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _has_fd_keyword(call: ast.Call) -> bool:
    return any(k.arg in FD_KEYWORDS for k in call.keywords)


def _write_mode(call: ast.Call, position: int) -> bool:
    args = [*call.args[position:position + 1], *(k.value for k in call.keywords if k.arg == "mode")]
    return any(isinstance(a, ast.Constant) and isinstance(a.value, str) and set(a.value) & set("wax+") for a in args)


def _write_flags(call: ast.Call) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr in WRITE_FLAGS for a in call.args[1:2] for n in ast.walk(a))


def violation(call: ast.Call) -> str | None:
    """Why ``call`` mutates a file by host path, or None."""
    name = _dotted(call.func)
    if _has_fd_keyword(call):
        return None
    if name.startswith("os.") and name[3:] in OS_MUTATING:
        return f"{name}() by path"
    if name == "os.open" and _write_flags(call):
        return "os.open() for writing by path"
    if name.startswith("shutil.") and name[7:] in SHUTIL_MUTATING:
        return f"{name}() by path"
    if name in HOST_WRITERS or name.endswith(tuple(f".{w}" for w in HOST_WRITERS)):
        return f"{name}() writes a host path"
    if name == "open" and _write_mode(call, 1):
        return "open() for writing"
    if isinstance(call.func, ast.Attribute):
        attr = call.func.attr
        if attr in PATH_MUTATING and len(call.args) <= PATH_MUTATING[attr]:
            return f"Path.{attr}()"
        if attr == "open" and _write_mode(call, 0):
            return "Path.open() for writing"
    return None


def scan(source: str, module: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            why = violation(node)
            text = ast.get_source_segment(source, node) or ""
            if why and (module, text) not in ALLOWED:
                found.append(f"{module}:{node.lineno}: {why}: {text}")
    return found


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_root_is_touched_by_host_path(path: Path) -> None:
    module = path.relative_to(REPO).as_posix()
    assert scan(path.read_text(), module) == []


def test_every_allowed_call_still_exists() -> None:
    """A stale allow-list entry would silently allow a future call with the same text elsewhere."""
    sources = {p.relative_to(REPO).as_posix(): p.read_text() for p in SCANNED}
    for module, text in ALLOWED:
        assert text in sources[module], (module, text)


@pytest.mark.parametrize("line", [
    "os.rename(root / p, backup)", "os.replace(src, root / o['path'])", "os.unlink(path)", "os.mkdir(root / 'x')",
    "os.chmod(p, 0o644)", "os.chown(p, 0, 0)", "os.symlink('t', root / 'l')", "os.link(a, b)",
    "os.open(p, os.O_WRONLY | os.O_CREAT)", "shutil.rmtree(stage)", "shutil.copy2(s, d)", "shutil.move(a, b)",
    "open(p, 'w')", "open(p, mode='ab')", "(root / 'x').write_text('hi')", "path.write_bytes(b'')",
    "path.mkdir(parents=True)", "path.unlink()", "path.rmdir()", "path.chmod(0o755)", "path.rename(other)",
    "d.symlink_to(t)", "p.touch()", "p.open('w')", "atomic_write(root / 'etc/x', b'')",
])
def test_the_scan_catches_a_path_based_mutation(line: str) -> None:
    assert scan(line, "composer/pkgmgr/transaction.py"), line


@pytest.mark.parametrize("line", [
    "root.rename(path, dst)", "root.write_text('etc/x', text)", "root.mkdir('a', 0o755)", "root.unlink('a')",
    "os.rename(a, b, src_dir_fd=s, dst_dir_fd=d)", "os.mkdir(name, 0o700, dir_fd=pfd)", "text.replace('a', 'b')",
    "open(p)", "open(p, 'rb')", "os.open(name, os.O_RDONLY, dir_fd=fd)", "Root.open(path)",
])
def test_the_scan_allows_the_layer_and_reads(line: str) -> None:
    assert scan(line, "composer/pkgmgr/transaction.py") == [], line


def test_a_reintroduced_rename_by_path_in_the_transaction_engine_is_caught() -> None:
    path = REPO / "composer" / "pkgmgr" / "steps.py"  # the transaction engine's operations (issue 12)
    source = path.read_text()
    marker = "def do("
    assert marker in source
    broken = source.replace(marker, "def _rename_by_path(root, p, backup):\n    os.rename(root / p, backup)\n\n\n"
                            + marker, 1)
    found = scan(broken, "composer/pkgmgr/steps.py")
    assert any("os.rename() by path: os.rename(root / p, backup)" in f for f in found), found
