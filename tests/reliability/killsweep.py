"""Kill sweeps from outside: SIGKILL a real vcomp process at points spread over its run.

A :class:`Scenario` builds a world in a directory (a repository, a root, a profile...), names the
command to kill, the command(s) a user runs next (which must recover), and how to observe the
state that matters. :func:`sweep` measures one uncut run (the *new* state and its duration),
then for each kill point restores the world from a snapshot **at the same path** (so absolute
paths recorded inside stay valid), starts the command in its own process group, kills the whole
group after the chosen delay, runs the follow-up commands and classifies the observed state:

* ``old``  - exactly the state before the command,
* ``new``  - exactly the state after an uncut run,
* ``lost`` - anything else (half-applied, damaged, or a follow-up that failed).

Kill points are deterministic (evenly spread with a seeded jitter) so a failure reproduces.
``RELIABILITY_FULL=1`` multiplies the number of points (see :func:`kills_wanted`).
Used by ``tests/reliability/test_*.py`` (few points, in ``make test``) and by
``bench/reliability.py`` (the table of kills / recovered / lost per operation).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VCOMP = [sys.executable, "-m", "composer"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """What a prepared world says: the command to kill, the follow-ups, the state to compare."""
    argv: Sequence[str]
    follow_up: Sequence[Sequence[str]] = ()      # run after the kill (e.g. `vcomp pkg --root R list`)
    observe: Callable[[], str]                    # digest of the state that must be old or new
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    ok_codes: frozenset[int] = frozenset({0})      # exit codes a follow-up may end with


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    name: str                                     # "pkg install", "repo add", ...
    prepare: Callable[[Path], Run]                # build the world under the directory, return the run


@dataclass(slots=True)
class Result:
    name: str
    kills: int = 0
    old: int = 0
    new: int = 0
    lost: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def recovered(self) -> int:
        return self.old + self.new

    def to_dict(self) -> dict[str, object]:
        return {"operation": self.name, "kills": self.kills, "recovered": self.recovered, "old": self.old,
                "new": self.new, "lost": self.lost, "run_seconds": round(self.seconds, 3),
                "failures": self.failures}


def kills_wanted(default: int) -> int:
    raw = os.environ.get("RELIABILITY_KILLS")
    if raw:
        return int(raw)
    return default * 10 if os.environ.get("RELIABILITY_FULL") == "1" else default


def tree_digest(top: Path, *, exclude: Callable[[str], bool] = lambda rel: False) -> str:
    """Digest of a tree: every path, type, mode, symlink target and file content (not times)."""
    h = hashlib.sha256()
    if not top.exists() and not top.is_symlink():
        return "absent"
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted([*dirnames, *filenames]):
            path = base / name
            rel = path.relative_to(top).as_posix()
            if exclude(rel):
                continue
            st = path.lstat()
            h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode):o}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(path).encode())
            elif stat.S_ISREG(st.st_mode):
                h.update(hashlib.sha256(path.read_bytes()).digest())
        dirnames[:] = [d for d in dirnames if not exclude((base / d).relative_to(top).as_posix())]
    return h.hexdigest()


def _env(run: Run) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(run.env)
    return env


def _follow_up(run: Run) -> list[str]:
    problems = []
    for argv in run.follow_up:
        proc = subprocess.run(list(argv), cwd=run.cwd, env=_env(run), capture_output=True, text=True,
                              timeout=600, check=False)
        if proc.returncode not in run.ok_codes:
            problems.append(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
        if "internal error" in proc.stderr or "Traceback" in proc.stderr:
            problems.append(f"{' '.join(argv)}: {proc.stderr.strip()[-400:]}")
    return problems


def _restore(template: Path, work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(["cp", "-a", str(template), str(work)], check=True)


def points(duration: float, count: int, seed: str) -> list[float]:
    """``count`` delays spread over ``[0, duration]``, each jittered inside its slot."""
    rng = random.Random(seed)
    slot = duration / max(count, 1)
    return [slot * i + rng.uniform(0, slot) for i in range(count)]


def sweep(scenario: Scenario, base: Path, *, kills: int, extra_points: Iterable[float] = ()) -> Result:
    """Run the sweep for one scenario under ``base`` (a fresh directory)."""
    work, template = base / "w", base / "template"
    work.mkdir(parents=True)
    run = scenario.prepare(work)
    subprocess.run(["cp", "-a", str(work), str(template)], check=True)
    old = run.observe()
    start = time.monotonic()
    proc = subprocess.run(list(run.argv), cwd=run.cwd, env=_env(run), capture_output=True, text=True,
                          timeout=1800, check=False)
    duration = time.monotonic() - start
    if proc.returncode != 0:
        raise AssertionError(f"{scenario.name}: the uncut run failed ({proc.returncode}): {proc.stderr[-800:]}")
    new = run.observe()
    result = Result(name=scenario.name, seconds=duration)
    for delay in [*points(duration, kills, scenario.name), *extra_points]:
        _restore(template, work)
        child = subprocess.Popen(list(run.argv), cwd=run.cwd, env=_env(run), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(delay)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        problems = _follow_up(run)
        state = run.observe()
        result.kills += 1
        if problems:
            result.lost += 1
            result.failures.append(f"kill at {delay:.3f}s: {'; '.join(problems)}")
        elif state == old:
            result.old += 1
        elif state == new:
            result.new += 1
        else:
            result.lost += 1
            result.failures.append(f"kill at {delay:.3f}s: state is neither old nor new")
    return result


def all_scenarios() -> list[Scenario]:
    """Every ``SCENARIOS`` list in ``tests/reliability/scenarios_*.py``, in file order."""
    found: list[Scenario] = []
    for path in sorted(Path(__file__).parent.glob("scenarios_*.py")):
        module = importlib.import_module(f"tests.reliability.{path.stem}")
        found.extend(module.SCENARIOS)
    return found
