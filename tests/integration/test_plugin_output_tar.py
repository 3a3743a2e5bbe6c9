"""The example plugin (examples/plugin-output-tar) installed beside vcomp adds the output type ``tarball``
without a change to composer/ (issue 18 item 4, docs/plugins.md).

The plugin is built and installed with pip, offline (``--no-build-isolation --no-deps``), into a throwaway
``--target`` directory; vcomp runs in a child process with that directory on PYTHONPATH, so only the child
sees the plugin (this process keeps the built-in registries). The minimal profile with one ``tarball``
output is locked and built twice, each with an empty cache of its own (the second build cannot take the
first one's output from the image cache): the two files are the same bytes, and a valid tar.zst of the root
with numeric owners and every mtime the build's epoch.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard

from tests.conftest import REPO
from tests.integration.conftest import copy_profiles

pytestmark = pytest.mark.integration
EXAMPLE = REPO / "examples" / "plugin-output-tar"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the installed example plugin (its dist-info with the entry point, its module)."""
    base = tmp_path_factory.mktemp("plugin")
    source = base / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = base / "site"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps",
                             "--no-index", "--target", str(target), str(source)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"pip install of the example plugin failed:\n{result.stderr[-3000:]}"
    assert (target / "vcomp_output_tar").is_dir()
    return target


def vcomp(plugin: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """vcomp in a child process that sees the plugin (and this checkout's composer)."""
    env = {k: v for k, v in os.environ.items() if k != "VCOMP_NO_PLUGINS"}
    env |= {"PYTHONPATH": os.pathsep.join([str(plugin), str(REPO), *filter(None, [env.get("PYTHONPATH")])]),
            "VCOMP_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "composer", *args], capture_output=True, text=True, env=env,
                          timeout=900, check=False)


def tarball_profile(minimal: str) -> str:
    """minimal.yaml for x86_64 with one output: a tarball at zstd level 3."""
    head, _, tail = minimal.partition("outputs:\n")
    arches = next(line for line in head.splitlines() if line.startswith("architectures: "))
    return (head.replace(arches, "architectures: [x86_64]") + "outputs:\n  - type: tarball\n"
            "    options: {level: 3}\n" + tail[tail.index("policy:"):])


def test_plugins_lists_the_example(plugin_path: Path, tmp_path: Path) -> None:
    listed = vcomp(plugin_path, tmp_path / "cache", "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    doc = json.loads(listed.stdout)
    assert doc["refused"] == [] and doc["enabled"] is True
    assert [(p["kind"], p["name"], p["distribution"], p["version"], p["group"], p["target"]) for p in doc["plugins"]] \
        == [("output type", "tarball", "vcomp-output-tar", "1.0.0", "vcomp.outputs", "vcomp_output_tar:PLUGIN")]
    text = vcomp(plugin_path, tmp_path / "cache", "plugins")
    assert "tarball" in text.stdout and "vcomp-output-tar" in text.stdout
    off = vcomp(plugin_path, tmp_path / "cache", "--no-plugins", "plugins", "--json")
    assert json.loads(off.stdout)["plugins"] == []


def test_tarball_output_is_built_and_deterministic(plugin_path: Path, sample_repo_base: Path,
                                                   tmp_path: Path) -> None:
    profiles = copy_profiles(sample_repo_base, tmp_path)
    profile = profiles / "tarball.yaml"
    profile.write_text(tarball_profile((profiles / "minimal.yaml").read_text()))
    unknown = vcomp(plugin_path, tmp_path / "cache-a", "--no-plugins", "validate", str(profile))
    assert unknown.returncode == 1 and "tarball" in unknown.stderr, "without the plugin the type is unknown"
    locked = vcomp(plugin_path, tmp_path / "cache-a", "lock", str(profile))
    assert locked.returncode == 0, locked.stderr
    files = []
    for run in ("a", "b"):
        built = vcomp(plugin_path, tmp_path / f"cache-{run}", "build", str(profile), "--images",
                      str(tmp_path / f"images-{run}"))
        assert built.returncode == 0, built.stderr
        files.append(tmp_path / f"images-{run}" / "minimal" / "x86_64" / "tarball.tar.zst")
    first, second = (f.read_bytes() for f in files)
    assert first == second, "two builds of the tarball differ"
    data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(first)).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[0] == "." and "./boot/vmlinuz" in names and "./etc/os-release" in names, names[:20]
    assert all(m.uname == "" and m.gname == "" for m in members), "owners are numeric only"
    assert len({m.mtime for m in members}) == 1, "every mtime is the epoch"
