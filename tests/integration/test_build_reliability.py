"""`vcomp build` faults and conveniences, with the real CLI in a child process over the small ``tiny``
profile of the build sweeps: --output replaces only its output, the old layout is migrated, damaged
cache entries are rebuilt, and ENOSPC / a read-only images directory / a cache that is a file are one
clear line that leaves the previous outputs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.killsweep import REPO, VCOMP
from tests.reliability.scenarios_build import PROFILE, observe_images, world

pytestmark = pytest.mark.integration
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")


def run(work: Path, *args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["VCOMP_CACHE"] = str(cache or work / "cache")
    return subprocess.run([*VCOMP, *args], cwd=work, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


def one_clear_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "  hint: " in proc.stderr, proc.stderr
    return lines[0]


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def hidden(top: Path) -> list[str]:
    return sorted(p.name for p in top.iterdir() if p.name.startswith(".") and p.name not in (".lock", ".gen"))


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    """tiny built from hostname one into out/, then changed and relocked (the cache holds no image)."""
    w = tmp_path / "w"
    world(w)
    return w


def test_output_x_replaces_only_x_and_marks_the_others_stale(work: Path) -> None:
    top = work / "out" / "tiny"
    (top / "x86_64" / "boot").mkdir()
    (top / "x86_64" / "boot" / "x86_64-initramfs-none.log").write_text("VCOMP-BOOT: ready\n")
    before = json.loads((top / "x86_64" / "manifest.json").read_bytes())
    kept = {f["path"]: f["sha256"] for o in before["outputs"] if o["name"] == "initramfs" for f in o["files"]}
    aarch64 = observe_images(work / "out").split("|")[1]
    proc = run(work, "build", PROFILE, "--images", "out", "--output", "rootfs", "--arch", "x86_64")
    assert proc.returncode == 0, proc.stderr
    assert "initramfs: stale (built from other inputs" in proc.stdout
    manifest = json.loads((top / "x86_64" / "manifest.json").read_bytes())
    by_name = {o["name"]: o for o in manifest["outputs"]}
    assert by_name["rootfs"]["stale"] is False and by_name["rootfs"]["inputs"] == manifest["inputs"]
    assert by_name["initramfs"]["stale"] is True and by_name["initramfs"]["inputs"] == before["inputs"] \
        != manifest["inputs"]
    assert by_name["initramfs"]["profile-digest"] == before["profile-digest"] != manifest["profile-digest"]
    assert {f["path"]: f["sha256"] for f in by_name["initramfs"]["files"]} == kept, "kept byte for byte"
    assert all((top / "x86_64" / p).is_file() for p in kept)
    assert (top / "x86_64" / "boot" / "x86_64-initramfs-none.log").read_text() == "VCOMP-BOOT: ready\n"
    assert observe_images(work / "out").split("|")[1] == aarch64, "the architecture not built is carried over"
    # a full build makes every output current again
    assert run(work, "build", PROFILE, "--images", "out", "--arch", "x86_64").returncode == 0
    assert not [o for o in json.loads((top / "x86_64" / "manifest.json").read_bytes())["outputs"] if o["stale"]]


def test_the_layout_before_generations_is_taken_over_with_its_leftovers(work: Path) -> None:
    legacy = work / "legacy"
    for arch in ("x86_64", "aarch64"):
        (legacy / "tiny" / arch).mkdir(parents=True)
        (legacy / "tiny" / arch / "manifest.json").write_text("{}")
    (legacy / "tiny" / ".x86_64.staging-4242").mkdir()
    (legacy / "tiny" / ".aarch64.old-77").mkdir()
    proc = run(work, "build", PROFILE, "--images", "legacy")
    assert proc.returncode == 0, proc.stderr
    top = legacy / "tiny"
    assert (top / "x86_64").is_symlink() and (top / "aarch64").is_symlink() and hidden(top) == []
    assert json.loads((top / "aarch64" / "manifest.json").read_bytes())["arch"] == "aarch64"


def test_a_damaged_cache_entry_is_said_once_and_rebuilt(work: Path) -> None:
    assert run(work, "build", PROFILE, "--images", "out", "--arch", "x86_64").returncode == 0
    entries = sorted((work / "cache" / "images").glob("*/contents.json"))
    assert len(entries) == 2
    entries[0].write_bytes(b"")                          # the issue: an emptied contents.json
    assert run(work, "cache", "verify").returncode == 1
    proc = run(work, "build", PROFILE, "--images", "again", "--arch", "x86_64")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("does not match its recorded sha256 and size") == 1, proc.stderr
    assert observe_images(work / "again").split("|")[0] == observe_images(work / "out").split("|")[0]
    verify = run(work, "cache", "verify")
    assert verify.returncode == 0 and "cache entries checked: all intact" in verify.stdout, verify.stdout
    images = json.loads(run(work, "cache", "list", "--json").stdout)
    assert len([e for e in images if e.get("kind") == "images"]) == 2, images


def test_the_automatic_cap_evicts_the_least_recently_used(work: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "VCOMP_CACHE": str(work / "cache"), "VCOMP_CACHE_MAX": "20M"}
    proc = subprocess.run([*VCOMP, "build", PROFILE, "--images", "out", "--arch", "x86_64"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "cache: evicted" in proc.stdout
    du = json.loads(run(work, "cache", "du", "--json").stdout)
    assert du["size"] <= 20 << 20 and du["kinds"]["images"]["entries"] == 1


def test_a_cache_path_that_is_a_file_is_one_line(work: Path) -> None:
    bad = work / "cachefile"
    bad.write_text("not a directory")
    before = observe_images(work / "out")
    line = one_clear_line(run(work, "build", PROFILE, "--images", "out", cache=bad))
    assert str(bad) in line
    assert observe_images(work / "out") == before


@needs_root
def test_no_space_in_the_images_directory_is_one_line_and_keeps_the_old_outputs(work: Path) -> None:
    with tmpfs(work / "small", "80M") as small:
        assert run(work, "build", PROFILE, "--images", "small", "--arch", "x86_64").returncode == 0
        (work / PROFILE).write_text((work / PROFILE).read_text().replace("hostname: two", "hostname: three"))
        assert run(work, "lock", PROFILE).returncode == 0
        free = os.statvfs(small).f_bavail * os.statvfs(small).f_frsize
        (small / "filler").write_bytes(bytes(free - (8 << 20)))
        before = observe_images(small)
        line = one_clear_line(run(work, "build", PROFILE, "--images", "small", "--arch", "x86_64"))
        assert "no space left on the device [ENOSPC]" in line and str(Path("small") / "tiny") in line
        assert observe_images(small) == before and hidden(small / "tiny") == []
        assert len(list((small / "tiny" / ".gen").iterdir())) == 1


@needs_root
def test_a_read_only_images_directory_is_one_line(work: Path) -> None:
    with tmpfs(work / "ro", "80M") as ro:
        assert run(work, "build", PROFILE, "--images", "ro", "--arch", "x86_64").returncode == 0
        before = observe_images(ro)
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        line = one_clear_line(run(work, "build", PROFILE, "--images", "ro", "--arch", "x86_64"))
        assert "read-only [EROFS]" in line and str(Path("ro") / "tiny") in line
        assert observe_images(ro) == before


@needs_root
def test_no_space_in_the_cache_is_a_warning_and_the_build_succeeds(work: Path) -> None:
    with tmpfs(work / "smallcache", "24M") as cache:
        proc = run(work, "build", PROFILE, "--images", "o2", "--arch", "x86_64", cache=cache)
        assert proc.returncode == 0, proc.stderr
        assert "no space left on the device [ENOSPC]; the output is not cached" in proc.stderr
        assert "internal error" not in proc.stderr
        verify = run(work, "cache", "verify", cache=cache)
        assert verify.returncode == 0, verify.stdout
        assert not [p for p in (cache / "images").iterdir() if p.name.startswith((".tmp-", ".trash-"))]
