"""`vcomp build` killed from outside, and run twice at once: outputs old or new, never missing or mixed;
cache entries always verify; two builds sharing a cache or an images directory both succeed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.killsweep import REPO, VCOMP, kills_wanted, sweep
from tests.reliability.scenarios_build import COLD, OLD_LAYOUT, PROFILE, WARM, env_for, observe_images, vcomp, world

pytestmark = pytest.mark.integration


def _env(work: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_for(work))
    env.update(extra)
    return env


def _start(work: Path, images: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*VCOMP, "build", PROFILE, "--images", images], cwd=work, env=_env(work, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _leftovers(top: Path) -> list[str]:
    gens = sorted(p.name for p in (top / ".gen").iterdir())
    current = os.readlink(top / "current").split("/", 1)[1]
    return [*(f".gen/{g}" for g in gens if g != current),
            *(p.name for p in top.iterdir() if p.name.startswith(".") and p.name not in (".gen", ".lock"))]


def test_a_killed_cold_build_leaves_the_old_or_the_new_outputs(tmp_path: Path) -> None:
    result = sweep(COLD, tmp_path, kills=kills_wanted(2))
    assert result.lost == 0, result.failures
    assert result.kills == result.old + result.new


def test_a_killed_warm_build_leaves_the_old_or_the_new_outputs(tmp_path: Path) -> None:
    result = sweep(WARM, tmp_path, kills=kills_wanted(2))
    assert result.lost == 0, result.failures


def test_a_killed_build_over_the_old_layout_leaves_the_old_or_the_new_outputs(tmp_path: Path) -> None:
    result = sweep(OLD_LAYOUT, tmp_path, kills=kills_wanted(2))
    assert result.lost == 0, result.failures


def test_the_next_build_cleans_what_a_killed_one_left(tmp_path: Path) -> None:
    work = tmp_path / "w"
    world(work)
    old = observe_images(work / "out")
    top = work / "out" / "tiny"
    child = _start(work, "out")
    deadline = time.monotonic() + 120
    current = (top / "current").resolve()
    while not [g for g in (top / ".gen").iterdir() if g != current and (g / "x86_64").is_dir()]:
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.02)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert observe_images(work / "out") == old, "killed before its switch: the old outputs, every architecture"
    assert _leftovers(top), "the killed build left its generation"
    vcomp(work, "build", PROFILE, "--images", "out")
    assert _leftovers(top) == []
    assert observe_images(work / "out") != old


def _two_builds_sharing_a_cache(work: Path) -> None:
    first, second = _start(work, "a"), _start(work, "b")
    results = [(*p.communicate(timeout=600), p.returncode) for p in (first, second)]
    for _out, err, code in results:
        assert code == 0, err
        assert "corrupt" not in err and "internal error" not in err
    assert observe_images(work / "a") == observe_images(work / "b")
    assert "all intact" in vcomp(work, "cache", "verify").stdout


def test_two_builds_with_a_cold_image_cache_sharing_it_both_succeed(tmp_path: Path) -> None:
    """Both build every output and write the same image-cache entries at once (the packages are cached)."""
    world(tmp_path / "w", packages=True)
    _two_builds_sharing_a_cache(tmp_path / "w")


def test_two_cold_builds_sharing_a_cache_both_succeed(tmp_path: Path) -> None:
    world(tmp_path / "w")
    _two_builds_sharing_a_cache(tmp_path / "w")


def test_a_second_build_on_one_images_directory_waits_or_fails_with_no_wait(tmp_path: Path) -> None:
    work = tmp_path / "w"
    world(work)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom pathlib import Path\nfrom composer.compose import layout\n"
         "with layout.locked(Path('out'), 'tiny'):\n    print('held', flush=True)\n    time.sleep(60)\n"],
        cwd=work, env=_env(work), stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    busy = subprocess.run([*VCOMP, "--no-wait", "build", PROFILE, "--images", "out"], cwd=work, env=_env(work),
                          capture_output=True, text=True, timeout=600, check=False)
    assert busy.returncode == 1 and f"images directory {Path('out') / 'tiny'} is locked by PID {holder.pid}" \
        in busy.stderr, busy.stderr
    old = observe_images(work / "out")
    waiting = _start(work, "out")
    assert waiting.stderr is not None
    first = waiting.stderr.readline()  # the waiter says whom it waits for before it blocks (no sleep: a loaded CI)
    assert f"waiting for the lock on images directory out/tiny held by PID {holder.pid}" in first, first
    assert waiting.poll() is None and observe_images(work / "out") == old, "it waits for the holder"
    os.killpg(holder.pid, signal.SIGKILL)          # a dead holder's lock is released by the kernel
    holder.wait()
    _out, err = waiting.communicate(timeout=600)
    assert waiting.returncode == 0, first + err
    assert observe_images(work / "out") != old


def test_two_builds_on_one_images_directory_at_once_both_succeed(tmp_path: Path) -> None:
    work = tmp_path / "w"
    world(work)
    first, second = _start(work, "out"), _start(work, "out")
    results = [(*p.communicate(timeout=600), p.returncode) for p in (first, second)]
    assert [c for _o, _e, c in results] == [0, 0], results
    top = work / "out" / "tiny"
    assert _leftovers(top) == [] and len(list((top / ".gen").iterdir())) == 1
    assert "all intact" in vcomp(work, "cache", "verify").stdout
