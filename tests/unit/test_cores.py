"""Core dumps carried on the console: init's real core-to-console script (busybox sh) frames a real core,
the console mixes other lines in, :mod:`composer.debug.cores` gets it back byte for byte (or says why not), and
``vcomp debug core --batch`` opens it with gdb-multiarch and symbols from the debuginfod server."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.debug.cores import MAX_GZIP_BYTES, decompress, extract, write_cores
from composer.debug.index import Store
from composer.debug.server import DebuginfodServer
from tests.conftest import REPO
from tests.support.debugpkgs import DebugRepo
from tests.unit.test_debuginfod import debug_repo, served  # noqa: F401  (fixtures)

SCRIPT = REPO / "recipes" / "init" / "files" / "usr" / "libexec" / "veridian" / "core-to-console"
BUSYBOX = shutil.which("busybox")
pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="needs busybox (scripts/setup.sh installs it)")


@pytest.fixture(scope="module")
def a_core(debug_repo: DebugRepo, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:  # noqa: F811
    """(the stripped program alone in a directory, a real core of it crashing), made by gdb on the host."""
    base = tmp_path_factory.mktemp("core")
    alone = base / "crasher"
    shutil.copy2(debug_repo.crasher.binary, alone)
    core = base / "crasher.core"
    subprocess.run(["gdb-multiarch", "-nx", "-batch", "-ex", "run crash", "-ex", f"generate-core-file {core}",
                    str(alone)], capture_output=True, check=True, timeout=120,
                   env={**os.environ, "DEBUGINFOD_URLS": ""})
    return alone, core


def carried(core: Path, tmp_path: Path) -> list[str]:
    """The console lines init's script writes for ``core``, with the console's other lines mixed in."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for applet in ("gzip", "sha256sum", "wc", "base64", "sed", "tr", "cut", "mkdir", "rm"):
        (bindir / applet).symlink_to(str(BUSYBOX))
    console = tmp_path / "console"
    with core.open("rb") as stdin:
        subprocess.run([str(BUSYBOX), "sh", str(SCRIPT), "crash er!", "321", "11"], stdin=stdin, check=True,
                       env={"PATH": str(bindir), "VCOMP_CORE_CONSOLE": str(console),
                            "VCOMP_CORE_TMP": str(tmp_path / "tmp")}, timeout=60)
    lines = console.read_text().splitlines()
    return ["[   12.3] random: crng init done", *lines[:3], "VCOMP-CHECK: FAIL 50-crash (exit 139)", *lines[3:]]


def test_a_core_comes_back_byte_for_byte(a_core: tuple[Path, Path], tmp_path: Path) -> None:
    _alone, core = a_core
    lines = carried(core, tmp_path)
    assert lines[1].startswith("VCOMP-CORE: begin crash_er_ 321 11 ")
    found = extract(lines)
    assert found.problems == () and [(c.name, c.pid, c.signal) for c in found.cores] == [("crash_er_", 321, 11)]
    assert decompress(found.cores[0]) == core.read_bytes()
    written, problems = write_cores(found, tmp_path / "cores")
    assert problems == [] and written == [tmp_path / "cores" / "core.crash_er_.321"]
    assert written[0].read_bytes()[:4] == b"\x7fELF"


def test_damaged_cut_and_oversized_cores_are_said_not_kept(a_core: tuple[Path, Path], tmp_path: Path) -> None:
    lines = carried(a_core[1], tmp_path)
    data = [i for i, line in enumerate(lines) if line.startswith("VCOMP-CORE-DATA: ")]
    changed = list(lines)
    changed[data[1]] = changed[data[1]][:-4] + ("AAAA" if not changed[data[1]].endswith("AAAA") else "BBBB")
    assert "sha256 differs" in extract(changed).problems[0] and extract(changed).cores == ()
    assert "the log ends inside it" in extract(lines[:-1]).problems[0]
    assert "not base64" in extract([*lines[:data[0]], "VCOMP-CORE-DATA: %%%%", *lines[data[0] + 1:]]).problems[0]
    huge = f"VCOMP-CORE: begin x 1 11 {MAX_GZIP_BYTES + 1} {'0' * 64}"
    assert "over the bound" in extract([huge, "VCOMP-CORE-DATA: AAAA", "VCOMP-CORE: end x 1"]).problems[0]
    liar = [lines[1].replace(lines[1].split()[5], "10"), *lines[2:]]    # announces 10 bytes, sends more
    assert "more data than announced" in extract(liar).problems[0]
    assert extract(["VCOMP-CORE: end x 1", "VCOMP-CORE-DATA: AAAA"]) == extract([])


def test_vcomp_debug_core_shows_the_crashing_function(a_core: tuple[Path, Path],
                                                      served: tuple[DebuginfodServer, Store, list[str]],  # noqa: F811
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    alone, core = a_core
    server = served[0]
    monkeypatch.setenv("DEBUGINFOD_CACHE_PATH", str(tmp_path / "client-cache"))
    assert main(["debug", "core", str(core), "--exe", str(alone), "--sysroot", "/", "--debuginfod", server.url,
                 "--batch"]) == 0
    out = capsys.readouterr().out
    assert "veridian_crash_here" in out and "veridian_outer" in out, out
    assert main(["debug", "core", str(tmp_path / "nothing")]) == 1
    assert "no core file" in capsys.readouterr().err
