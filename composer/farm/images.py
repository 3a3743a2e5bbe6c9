"""Image builds on the farm (docs/farm.md, "Image builds"): the (profile, architecture, output) jobs of a build,
or of ``vcomp plan --matrix``, run as Dask tasks, one output each, and travel through the shared cache.

A worker runs ``vcomp build PROFILE --arch A --output O`` in a scratch images directory with the client's shared
cache settings (``VCOMP_SHARED_CACHE``, ``VCOMP_SHARED_CACHE_KEY``), so what it builds is signed into the shared
cache (composer/farm/imageshare.py); nothing else comes back. The client then builds the profile itself, which
takes every output from the shared cache instead of building it. A job whose output the shared cache already
holds costs its worker the cache check only. Workers need the profile (and its lock) at the same path, the
key file named by VCOMP_SHARED_CACHE_KEY at the same path, and the build tools; a worker advertising
``arch-ARCH`` (``dask worker --resources arch-aarch64=1``) gets that architecture's jobs when one does.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer import settings
from composer.errors import ComposerError, UserError, combine
from composer.farm.engine import native_resources
from composer.run import run
from composer.trust.keys import parse_key_spec

JOB_TIMEOUT = 4 * 3600.0     # seconds one output's build may take on a worker
MAX_MATRIX = 10_000          # jobs in one matrix document
TAIL = 12                    # lines of a failed job's output shown


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageJob:
    profile: str   # the profile's path (the same on every worker)
    arch: str
    output: str

    @property
    def id(self) -> str:
        return f"{self.profile}:{self.arch}:{self.output}"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobResult:
    job: ImageJob
    ok: bool
    seconds: float
    worker: str
    cached: bool        # not built: the worker took it from its cache or the shared cache (built before)
    message: str = ""   # a failed job: the tail of its output


def shared_env() -> dict[str, str]:
    """The client's shared cache settings, for the workers; refused without them (the outputs would be lost)."""
    where, key = settings.SHARED_CACHE.get(), settings.SHARED_CACHE_KEY.get()
    if not where or not key or key.endswith(".pub"):
        raise UserError("image builds on the farm need a writable shared cache: the workers' outputs travel "
                        "through it", hint="set VCOMP_SHARED_CACHE=DIR|URL and VCOMP_SHARED_CACHE_KEY=KEYFILE "
                                           "(docs/farm.md, 'Image builds')")
    spec = parse_key_spec(key)
    env = {"VCOMP_SHARED_CACHE": where if "://" in where else str(Path(where).resolve()),
           "VCOMP_SHARED_CACHE_KEY": str(spec.path.resolve()) + (f":{spec.passphrase_env}" if spec.passphrase_env
                                                                  else "")}
    epoch = settings.SOURCE_DATE_EPOCH.name
    if settings.read(epoch):   # part of every output's key: the workers build with the client's epoch
        env[epoch] = settings.read(epoch)
    return env


def parse_matrix(data: bytes, origin: str) -> list[ImageJob]:
    """The jobs of ``vcomp plan --matrix`` output (``{"include": [{profile, arch, output}, ...]}``)."""
    try:
        doc = json.loads(data)
        rows = doc["include"] if isinstance(doc, dict) else doc
        if not isinstance(rows, list) or len(rows) > MAX_MATRIX:
            raise TypeError(f"'include' is not a list of at most {MAX_MATRIX} jobs")
        jobs = [ImageJob(profile=_text(r, "profile"), arch=_text(r, "arch"), output=_text(r, "output"))
                for r in rows]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise UserError(f"{origin}: not a build matrix ({exc})",
                        hint="write one with: vcomp plan --matrix > matrix.json") from None
    return jobs


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")   # an architecture or output name


def _text(row: Any, field: str) -> str:
    value = row[field] if isinstance(row, dict) else None
    if not isinstance(value, str) or not value or len(value) > 4096 or value.startswith("-") or \
            any(ord(c) < 32 or ord(c) == 127 for c in value) or (field != "profile" and not _NAME.match(value)):
        raise TypeError(f"'{field}' of a job is not a {'path' if field == 'profile' else 'name'}: {value!r:.80}")
    return value


# ------------------------------------------------------------------ the worker side

def build_job(profile: str, arch: str, output: str, env: Mapping[str, str]) -> dict[str, Any]:
    """Runs on a worker: build one output into a scratch images directory (the shared cache keeps it)."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vcomp-farm-image-") as tmp:
        try:
            found = run([sys.executable, "-m", "composer", "build", "--arch", arch, "--output", output,
                         "--images", str(Path(tmp) / "images"), "--", profile], env=dict(env), check=False,
                        timeout=JOB_TIMEOUT)
        except ComposerError as exc:
            return {"ok": False, "message": exc.message, "seconds": time.monotonic() - start, "worker": _worker()}
    text = (found.stdout + found.stderr).decode(errors="replace")
    return {"ok": found.returncode == 0, "seconds": time.monotonic() - start, "worker": _worker(),
            "cached": "unchanged: taken from" in text,
            "message": "" if found.returncode == 0 else "\n".join(text.strip().splitlines()[-TAIL:])}


def _worker() -> str:
    try:
        from distributed import get_worker
        return str(get_worker().name)
    except (ImportError, ValueError):
        return os.uname().nodename


# ------------------------------------------------------------------ the client side

def farm_images(client: Any, jobs: Sequence[ImageJob], *, progress: Callable[[str], None] = lambda _m: None,
                ) -> list[JobResult]:
    """Run ``jobs`` on the cluster (each with the shared cache settings); raise one error naming every job
    that failed, after all have finished."""
    env = shared_env()
    futures = [client.submit(build_job, j.profile, j.arch, j.output, env, key=f"image-{i}-{j.id}", pure=False,
                             resources=native_resources(client, j.arch) or None) for i, j in enumerate(jobs)]
    results = []
    for job, future in zip(jobs, futures, strict=True):
        try:
            done = future.result()
        except Exception as exc:   # a killed worker, a cancelled task: that job failed, the others go on
            done = {"ok": False, "seconds": 0.0, "worker": "?", "message": f"{type(exc).__name__}: {exc}"}
        r = JobResult(job=job, ok=bool(done["ok"]), seconds=float(done["seconds"]), worker=str(done["worker"]),
                      cached=bool(done.get("cached")), message=str(done.get("message", "")))
        progress(f"{job.id}: {'failed' if not r.ok else 'cached' if r.cached else 'built'} "
                 f"on {r.worker} in {r.seconds:.1f} s")
        results.append(r)
    failed = [r for r in results if not r.ok]
    if failed:
        raise combine([UserError(f"{r.job.id}: the build failed on {r.worker}:\n    "
                                 + r.message.replace("\n", "\n    ")) for r in failed],
                      summary=f"{len(failed)} of {len(results)} image jobs failed")
    return results
