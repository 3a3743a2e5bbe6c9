"""A real Dask cluster for the farm tests: a `dask scheduler` and `dask worker`s started as processes on
127.0.0.1 (tests/unit/test_farm.py, tests/integration/test_farm_sample.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _wait_for(path: Path, what: str, procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            pytest.fail(f"{what} did not start (see its log in {path.parent})")
        time.sleep(0.2)


@contextlib.contextmanager
def dask_cluster(tmp_path: Path, resources: Sequence[str]) -> Iterator[str]:
    """One scheduler and one worker per entry of ``resources`` (``--resources`` of each, e.g.
    ``arch-x86_64=1``), one thread each; yields the scheduler file. Logs in ``tmp_path``."""
    dask = Path(sys.executable).parent / "dask"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sched_file = tmp_path / "scheduler.json"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with (tmp_path / "scheduler.log").open("wb") as log:
            procs.append(subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                           "--no-dashboard", "--scheduler-file", sched_file],
                                          stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True))
        _wait_for(sched_file, "dask scheduler", procs)
        for i, resource in enumerate(resources):
            with (tmp_path / f"worker{i}.log").open("wb") as log:
                procs.append(subprocess.Popen([dask, "worker", "--scheduler-file", sched_file, "--nthreads", "1",
                                               "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}",
                                               "--resources", resource],
                                              stdout=log, stderr=subprocess.STDOUT, env=env,
                                              start_new_session=True))
        yield str(sched_file)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
