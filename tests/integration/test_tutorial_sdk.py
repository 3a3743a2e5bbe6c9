"""docs/tutorial-sdk.md ("Build your program for three architectures") works as written: its ```sh blocks marked
``<!-- tutorial -->`` run literally, in order, with the real vcomp: the server profile locked, three SDKs built,
examples/hello-cmake built by hand with each and through its recipe, published, installed into a profile,
built and booted on x86_64, aarch64 and riscv64 (TCG), then debugged with its -dbg package served by
``vcomp debuginfod``.

Its ``~/veridian-composer`` is what ``make demo`` leaves (profiles/, examples/, keys/, images/repo and the Debian
closure images/debian for the three architectures); nothing is substituted. Long (three SDKs, three TCG
boots): marker ``sdk`` (``make test-sdk``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from composer import settings
from composer.repo.debianset import build_debian_repo
from composer.repo.sample import SampleCheckout
from tests.conftest import REPO
from tests.integration.conftest import copy_profiles
from tests.integration.test_tutorial import tutorial_script

pytestmark = [pytest.mark.integration, pytest.mark.sdk]
TUTORIAL = REPO / "docs" / "tutorial-sdk.md"
ARCHES = ("x86_64", "aarch64", "riscv64")


def test_the_tutorial_has_every_step() -> None:
    script = tutorial_script(TUTORIAL.read_text(), {})
    for step in ("vcomp lock profiles/server.yaml", "vcomp sdk build", "environment-setup-", "vcomp pkg build",
                 "vcomp repo add", "vcomp build", "vcomp boot", "vcomp debuginfod", "gdb-multiarch"):
        assert step in script, step


def _checkout(home: Path, sample_repo_base: Path) -> Path:
    """~/veridian-composer as `make demo` leaves it: the sample repository and the Debian closure (3 arches)."""
    build_debian_repo(sample_repo_base / "images" / "debian", sample_repo_base / "images" / "debian-packages",
                      checkout=SampleCheckout(root=REPO), arches=ARCHES)
    clone = home / "veridian-composer"
    copy_profiles(sample_repo_base, clone)
    (clone / "images" / "repo").unlink()      # a copy: the tutorial publishes into it
    shutil.copytree(sample_repo_base / "images" / "repo", clone / "images" / "repo", symlinks=True)
    shutil.copytree(REPO / "examples" / "hello-cmake", clone / "examples" / "hello-cmake")
    (clone / "keys").symlink_to(REPO / "keys")
    return clone


def test_the_sdk_tutorial_builds_boots_and_debugs_on_three_architectures(sample_repo_base: Path,
                                                                        tmp_path: Path) -> None:
    for tool in ("qemu-system-aarch64", "qemu-system-riscv64", "gdb-multiarch", "debuginfod-find", "cmake"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run scripts/setup.sh")
    home = tmp_path / "home"
    home.mkdir()
    _checkout(home, sample_repo_base)
    script = tutorial_script(TUTORIAL.read_text(), {})
    bindir = tmp_path / "bin"                 # `vcomp`: the composer of the interpreter running this test
    bindir.mkdir()
    (bindir / "vcomp").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m composer "$@"\n')
    (bindir / "vcomp").chmod(0o755)
    env = {"PATH": f"{bindir}:{os.environ.get('PATH', os.defpath)}", "HOME": str(home),
           "VCOMP_CACHE": str(settings.cache_dir()), "SOURCE_DATE_EPOCH": "1700000000", "LANG": "C.UTF-8",
           **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {})}
    started = time.monotonic()
    proc = subprocess.run(["bash", "-c", script], cwd=home, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=5400, check=False)
    print(f"\nsdk tutorial: {time.monotonic() - started:.0f} s wall clock")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    for arch in ARCHES:
        line = re.search(rf"hello-cmake: C on {arch} with OpenSSL 3\..*", proc.stdout)
        assert line, f"no line on the {arch} console"
        print(f"console {arch}: {line.group(0).strip()}")
    assert re.search(r"ELF 64-bit.*RISC-V", proc.stdout) and re.search(r"ELF 64-bit.*aarch64", proc.stdout)
    assert re.search(r'Line \d+ of "\./hello\.c" starts at address', proc.stdout), \
        "gdb did not place main in hello.c with the -dbg package's symbols: " + proc.stdout[-3000:]
