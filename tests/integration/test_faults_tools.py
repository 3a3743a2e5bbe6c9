"""A missing host tool is one clear line naming the tool and the Debian package that provides it.

Every tool vcomp calls (found in the source: the literal first word of each ``run``/``stream``/``require_tool``
call, the image tool tables, the recipe sandbox's base tools, the QEMU of each architecture) must be in
``composer.run.TOOL_PACKAGES``, and each package there must be one apt knows (``apt-cache show``, no network).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

from composer import arch, run
from composer.compose import seed
from composer.errors import ToolError
from composer.image.outputs import OUTPUT_TYPES
from composer.package import sources
from tests.conftest import REPO

CALLS = {"run", "stream", "run_attached", "require_tool"}


def literal_tools() -> set[str]:
    """The first word of every run(...)-like call whose command starts with a string literal."""
    found: set[str] = set()
    for path in (REPO / "composer").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else \
                node.func.attr if isinstance(node.func, ast.Attribute) else ""
            if name not in CALLS:
                continue
            first = node.args[0]
            if isinstance(first, (ast.List, ast.Tuple)) and first.elts:
                first = first.elts[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
    return found


def every_tool() -> set[str]:
    tables = {t for row in OUTPUT_TYPES.values() for t in row.every_tool()}
    versions = {cmd[0] for cmd in seed.VERSION_COMMANDS.values()}
    qemus = {a.qemu for a in arch.ARCHES.values()}
    return literal_tools() | tables | versions | set(sources.BASE_TOOLS) | qemus


def test_the_source_scan_finds_the_tools() -> None:
    """The scan is not vacuous: it sees tools we know are called."""
    assert {"mkfs.fat", "apt-get", "qemu-img", "bwrap", "debugfs"} <= every_tool()


def test_every_tool_vcomp_calls_names_its_debian_package() -> None:
    missing = sorted(every_tool() - set(run.TOOL_PACKAGES))
    assert not missing, f"add to composer.run.TOOL_PACKAGES: {missing}"


@pytest.mark.skipif(shutil.which("apt-cache") is None, reason="needs apt-cache")
def test_every_package_in_the_table_is_one_apt_knows() -> None:
    wanted = sorted(set(run.TOOL_PACKAGES.values()))
    r = subprocess.run(["apt-cache", "show", "--no-all-versions", *wanted], capture_output=True, text=True,
                       check=False)  # one call: apt loads its cache once
    known = {line.split(":", 1)[1].strip() for line in r.stdout.splitlines() if line.startswith("Package:")}
    # a cross compiler for the host's own architecture is only a name apt knows (gcc provides the tool there)
    known |= {pkg for pkg in set(wanted) - known
              if f"Package: {pkg}\n" in subprocess.run(["apt-cache", "showpkg", pkg], capture_output=True,
                                                       text=True, check=False).stdout}
    assert not set(wanted) - known, f"not Debian packages: {sorted(set(wanted) - known)}"


def test_a_missing_tool_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError) as caught:
        run.run(["mkfs.fat", "--help"])
    assert caught.value.message == "host tool 'mkfs.fat' is not installed (not found in PATH)"
    assert caught.value.hint == "install it with: apt-get install dosfstools (or put it in PATH)"
    with pytest.raises(ToolError) as caught:
        run.require_tool("frobnicate")
    assert "apt-file search --regexp 'bin/frobnicate$'" in caught.value.hint


def test_a_tool_that_cannot_be_executed_is_one_line(tmp_path: Path) -> None:
    tool = tmp_path / "mkfs.fat"
    tool.write_bytes(b"\x7fELF not really")
    tool.chmod(0o755)
    with pytest.raises(ToolError) as caught:
        run.run([str(tool), "--help"])
    message = caught.value.message
    assert "\n" not in message and str(tool) in message and "[ENOEXEC]" in message
    assert "executable for this machine" in caught.value.hint
