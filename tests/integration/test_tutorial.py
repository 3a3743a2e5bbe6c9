"""docs/tutorial.md ("Your first OS") works as written: its ```sh blocks marked ``<!-- tutorial -->`` run
literally, in order, with the real vcomp, from `vcomp init` to two QEMU boots (x86_64, TCG) of an image holding
the user's own package.

Substitutions (documented at the end of the tutorial): the upstream paths only. The machine time is printed
(the issue asks for under 10 minutes), never asserted.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from composer import settings
from tests.conftest import REPO

pytestmark = pytest.mark.integration

TUTORIAL = REPO / "docs" / "tutorial.md"
VCOMP = REPO / ".venv" / "bin" / "vcomp"
MARKER = "<!-- tutorial -->"
_BLOCK = re.compile(r"^" + re.escape(MARKER) + r"\n```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def tutorial_script(text: str, substitutions: dict[str, str]) -> str:
    """The marked ```sh blocks of ``text``, in order, as one script, with ``substitutions`` applied (pure)."""
    blocks = _BLOCK.findall(text)
    script = "\n".join(blocks)
    for old, new in substitutions.items():
        assert old in script, f"the tutorial no longer says {old}"
        script = script.replace(old, new)
    return "set -euo pipefail\n" + script


def test_the_script_is_the_marked_blocks_only() -> None:
    text = f"intro\n```sh\nnot run\n```\n{MARKER}\n```sh\necho a\n```\nmore\n{MARKER}\n```sh\necho b\n```\n"
    assert tutorial_script(text, {}) == "set -euo pipefail\necho a\n\necho b\n"


def test_the_readme_tutorial_is_the_tested_one() -> None:
    """The README's "Your first OS" runs the same commands as docs/tutorial.md (which this test runs): every
    marked README line is a line of the tutorial's script, in the same order."""
    readme = [line for block in _BLOCK.findall((REPO / "README.md").read_text()) for line in block.splitlines()]
    tutorial = [line for block in _BLOCK.findall(TUTORIAL.read_text()) for line in block.splitlines()]
    assert len(readme) >= 8, "the README lost its tutorial"
    at = 0
    for line in readme:
        assert line in tutorial[at:], f"README.md runs {line!r}, which docs/tutorial.md does not run here"
        at = tutorial.index(line, at) + 1


def test_the_tutorial_boots_the_users_os(sample_repo_base: Path, tmp_path: Path) -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("QEMU is not installed (make setup installs it)")
    script = tutorial_script(TUTORIAL.read_text(), {
        "~/veridian-composer/images/repo": str(sample_repo_base / "images" / "repo"),
        "~/veridian-composer/profiles/trust/sample-root.json": str(REPO / "profiles/trust/sample-root.json"),
    })
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    env = {"PATH": f"{VCOMP.parent}:{os.environ.get('PATH', os.defpath)}", "HOME": str(home),
           "VCOMP_CACHE": str(settings.cache_dir()), "SOURCE_DATE_EPOCH": "1700000000", "LANG": "C.UTF-8",
           "GIT_AUTHOR_NAME": "Tutorial", "GIT_AUTHOR_EMAIL": "tutorial@example.invalid",
           "GIT_COMMITTER_NAME": "Tutorial", "GIT_COMMITTER_EMAIL": "tutorial@example.invalid"}
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=1800, check=False)
    wall, after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"\ntutorial: {wall:.0f} s wall clock, {cpu:.0f} s CPU (the issue asks for under 10 minutes)")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.stdout.count("1 of 1 boot tests passed") == 2, proc.stdout[-4000:]
    assert "x86_64/disk/disk/uefi/hello: PASS" in proc.stdout
    lock = (work / "myos" / "profiles" / "myos.lock").read_text()
    assert '"repository": "myos"' in lock and '"version": "1.0.1"' in lock
    assert (home / ".config" / "vcomp" / "keys" / "myos" / "root.key").is_file()
