"""The package cache and offline work, with the real sample repository and real `vcomp` processes.

* two cold `vcomp build` sharing one cache (before: a reader saw a half-written package, `corrupt
  payload`) give identical outputs;
* a damaged cache entry is a miss: removed and fetched again;
* a fully cached build works with the repository gone (a warning line), and with `--offline`;
* with `--offline`, a package that is not cached is one line naming it and saying how to fix it;
* `lock --check --offline` works from the cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from composer.repo.pkgcache import PACKAGES, objects_dir
from tests.conftest import REPO
from tests.reliability.killsweep import REPO as SOURCE

pytestmark = pytest.mark.integration

PROFILE = """name: box
architectures: [x86_64]
repositories:
  - name: sample
    url: ../images/repo
    root: trust/sample-root.json
packages: [base-files, busybox, init, nano]
drivers: [virtio-blk]
kernel: {package: linux, cmdline: quiet}
init: init
hostname: box
outputs:
  - type: rootfs
"""


class Site:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.profile = base / "profiles" / "box.yaml"
        self.repo = base / "images" / "repo"

    def run(self, *argv: str, cache: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "composer", *argv], cwd=self.base / "profiles", text=True,
                              capture_output=True, timeout=600, check=False,
                              env={**os.environ, "PYTHONPATH": str(SOURCE), "VCOMP_CACHE": str(cache),
                                   **(env or {})})

    def start_build(self, images: Path, cache: Path) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "composer", "build", "box.yaml", "--images", str(images)],
                                cwd=self.base / "profiles", text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE,
                                env={**os.environ, "PYTHONPATH": str(SOURCE), "VCOMP_CACHE": str(cache)})


@pytest.fixture(scope="module")
def site(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Site:
    base = tmp_path_factory.mktemp("offline")
    s = Site(base)
    (base / "profiles" / "trust").mkdir(parents=True)
    shutil.copy(REPO / "profiles" / "trust" / "sample-root.json", base / "profiles" / "trust")
    shutil.copytree(sample_repo_base / "images" / "repo", s.repo, symlinks=True)
    s.profile.write_text(PROFILE)
    r = s.run("lock", "box.yaml", cache=base / "lock-cache")
    assert r.returncode == 0, r.stderr
    return s


def outputs(images: Path) -> dict[str, str]:
    top = images / "box" / "x86_64"
    return {p.relative_to(top).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(top.rglob("*")) if p.is_file() and p.suffix == ".tar"}


@pytest.fixture(scope="module")
def warm(site: Site, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Two cold builds at once sharing one empty cache: both work, identical outputs; the cache is warm."""
    cache = tmp_path_factory.mktemp("shared-cache")
    images = [tmp_path_factory.mktemp(f"images{i}") for i in range(2)]
    procs = [site.start_build(images[i], cache) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err
        assert "corrupt" not in err and "internal error" not in err, err
    first, second = outputs(images[0]), outputs(images[1])
    assert first and first == second
    return cache, first


def test_two_cold_builds_sharing_a_cache_agree(warm: tuple[Path, dict[str, str]]) -> None:
    cache, _ = warm
    entries = PACKAGES.entries(cache)
    assert entries and all(PACKAGES.verify(cache, e) == [] for e in entries)
    assert not list(objects_dir(cache / "repos").glob("*/.*.tmp"))


def test_a_damaged_entry_is_refetched(site: Site, warm: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(warm[0], cache, symlinks=True)
    shutil.rmtree(cache / "images", ignore_errors=True)   # the output cache must not answer for us
    victim = max(PACKAGES.entries(cache), key=lambda e: e.size)
    data = bytearray(victim.path.read_bytes())
    data[len(data) // 2] ^= 1
    victim.path.write_bytes(bytes(data))
    assert PACKAGES.verify(cache, victim)
    r = site.run("build", "box.yaml", "--images", str(tmp_path / "images"), cache=cache)
    assert r.returncode == 0, r.stderr
    assert outputs(tmp_path / "images") == warm[1]
    assert PACKAGES.verify(cache, victim) == []


def test_a_cached_build_works_with_the_repository_gone(site: Site, warm: tuple[Path, dict[str, str]],
                                                      tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(warm[0], cache, symlinks=True)
    shutil.rmtree(cache / "images", ignore_errors=True)   # the output cache must not answer for us
    gone = site.repo.with_name("repo.gone")
    site.repo.rename(gone)
    try:
        r = site.run("build", "box.yaml", "--images", str(tmp_path / "auto"), cache=cache)
        assert r.returncode == 0, r.stderr
        assert "cannot be reached" in r.stderr and "working offline" in r.stderr, r.stderr
        assert outputs(tmp_path / "auto") == warm[1]
        shutil.rmtree(cache / "images", ignore_errors=True)
        r = site.run("build", "box.yaml", "--offline", "--images", str(tmp_path / "explicit"), cache=cache)
        assert r.returncode == 0, r.stderr
        assert "warning" not in r.stderr, r.stderr
        assert outputs(tmp_path / "explicit") == warm[1]
        r = site.run("lock", "--offline", "--check", "box.yaml", cache=cache)
        assert r.returncode == 0, r.stderr
    finally:
        gone.rename(site.repo)


def test_offline_names_a_package_that_is_not_cached(site: Site, warm: tuple[Path, dict[str, str]],
                                                    tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(warm[0], cache, symlinks=True)
    shutil.rmtree(cache / "images", ignore_errors=True)
    lock = (site.base / "profiles" / "box.lock").read_text()
    nano = next(e for e in PACKAGES.entries(cache) if e.key in lock and e.key in _digest_of(lock, "nano"))
    nano.path.unlink()
    r = site.run("--offline", "build", "box.yaml", "--images", str(tmp_path / "images"), cache=cache)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert "packages/nano/" in lines[0] and "not in the package cache" in lines[0], r.stderr
    assert "--offline" in lines[0] and "run the command once online" in r.stderr, r.stderr
    assert len(lines) == 2 and "internal error" not in r.stderr
    # online again, the same cache: fetched, then the offline build works
    r = site.run("build", "box.yaml", "--images", str(tmp_path / "online"), cache=cache)
    assert r.returncode == 0, r.stderr
    assert nano.path.is_file()


def _digest_of(lock: str, name: str) -> str:
    import json
    rows = json.loads(lock)["architectures"]["x86_64"]
    return next(str(p["sha256"]) for p in rows if p["name"] == name)


def test_pkg_root_reinstalls_from_the_cache_with_the_repository_gone(site: Site, warm: tuple[Path, dict[str, str]],
                                                                     tmp_path: Path) -> None:
    """The package manager's client is the same RepositoryClient: it falls back to the cache too."""
    import tarfile
    cache = tmp_path / "cache"
    shutil.copytree(warm[0], cache, symlinks=True)
    r = site.run("build", "box.yaml", "--images", str(tmp_path / "images"), cache=cache)
    assert r.returncode == 0, r.stderr
    root = tmp_path / "root"
    with tarfile.open(tmp_path / "images" / "box" / "x86_64" / "rootfs.tar") as tar:
        tar.extractall(root, filter="fully_trusted")  # our own tar: keep the sticky bits
    assert site.run("pkg", "--root", str(root), "remove", "nano", cache=cache).returncode == 0
    assert not (root / "bin" / "nano").exists()
    r = site.run("pkg", "--root", str(root), "repo-url", "sample", str(site.repo), cache=cache)  # built: relative
    assert r.returncode == 0, r.stderr
    gone = site.repo.with_name("repo.gone")
    site.repo.rename(gone)
    try:
        r = site.run("pkg", "--root", str(root), "install", "nano", cache=cache)
        assert r.returncode == 0, r.stderr
        assert "working offline" in r.stderr
        assert (root / "bin" / "nano").exists()
        r = site.run("--offline", "pkg", "--root", str(root), "list", cache=cache)
        assert r.returncode == 0 and "nano" in r.stdout, r.stderr
    finally:
        gone.rename(site.repo)
