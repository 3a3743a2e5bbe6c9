"""build-all on Dask distributed (docs/farm.md).

The client (this process) owns the order, the build state and the shared cache: it walks the recipe graph,
skips what is unchanged in the output folder, downloads what the shared cache holds (verified), and submits the
rest to the Dask cluster as soon as their build dependencies are done. A worker builds one recipe in a scratch
folder and returns the package bytes; the client writes them, records them and pushes them to the shared cache.
Workers need the same recipes folder at the same path (a checkout or a shared mount) and the build tools.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from composer.errors import ComposerError, UserError, combine
from composer.farm import cache as shared
from composer.fsutil import atomic_write, sha256_bytes
from composer.package import build as builder
from composer.package.archive import read_header
from composer.package.debian import DebianArchive
from composer.package.recipe import Recipe
from composer.trust.keys import SigningKey, public_from_crypto

WORKER_WAIT = 60.0             # seconds a --scheduler may have no worker before build-all gives up
RESOURCE_PREFIX = "arch-"      # a worker that builds aarch64 natively runs with --resources arch-aarch64=1


def resource_for(arch: str) -> str:
    return RESOURCE_PREFIX + arch


@dataclass(slots=True, kw_only=True)
class Outcome:
    """What a farm build-all did: packages (in recipe order) and how each recipe got them."""
    built: list[builder.Built] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"built": 0, "fetched": 0, "unchanged": 0})
    seconds: float = 0.0
    build_seconds: dict[str, float] = field(default_factory=dict)   # recipe -> time its build took on a worker
    placed: dict[str, str] = field(default_factory=dict)            # recipe -> the worker (name) that built it


# ------------------------------------------------------------------ the worker side

def _key_from(raw: bytes) -> SigningKey:
    private = Ed25519PrivateKey.from_private_bytes(raw)
    return SigningKey(private=private, public=public_from_crypto(private.public_key()))


_ARCHIVES: dict[tuple[str, str], DebianArchive] = {}    # per worker process: Debian lookups made once per set


def _archive(cache: str | None, arch: str, debs: Sequence[Mapping[str, Any]]) -> DebianArchive:
    path = Path(cache) if cache else builder.default_cache()
    archive = _ARCHIVES.setdefault((str(path), arch), DebianArchive(path))
    builder.prefetch(archive, arch, debs)      # only what this process has not looked up yet
    return archive


def build_remote(recipe_dir: str, arch: str, key_raw: bytes, deps: Sequence[tuple[str, bytes]],
                 cache: str | None, debs: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Runs on a worker: build one recipe; {"files": [[name, bytes], ...]} (main first) or {"error": [msg, hint]}.

    ``debs`` are the Debian sources of the whole set: the worker looks them up together on its first build."""
    from composer.package.recipe import load_recipe
    key = _key_from(key_raw)
    start = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="vcomp-farm-") as tmp:
            depdir = Path(tmp) / "deps"
            depdir.mkdir()
            for name, blob in deps:
                (depdir / name).write_bytes(blob)
            recipe = load_recipe(Path(recipe_dir), arch)
            archive = _archive(cache, arch, debs)
            result = builder.build(Path(recipe_dir), arch, key, Path(tmp) / "out", archive=archive, recipe=recipe,
                                   deps=[depdir / name for name, _ in deps])
            return {"files": [[b.path.name, b.path.read_bytes()] for b in (result, *result.split)],
                    "host": os.uname().nodename, "seconds": time.monotonic() - start, "worker": _worker_name()}
    except ComposerError as exc:
        return {"error": [exc.message, exc.hint]}


def _worker_name() -> str:
    try:
        return str(importlib.import_module("distributed").get_worker().name)
    except ValueError:          # not on a worker (called directly)
        return ""


# ------------------------------------------------------------------ the client side

@contextmanager
def connect(scheduler: str | None, workers: int, arch_native: str) -> Iterator[Any]:
    """A Dask client: of ``scheduler`` (tcp://HOST:8786), or of an in-process LocalCluster of ``workers``."""
    dist: Any = importlib.import_module("distributed")   # untyped; imported only when a farm is used
    _quiet_dask()
    Client, LocalCluster = dist.Client, dist.LocalCluster
    if scheduler:
        try:
            client = Client(scheduler, timeout=10)
        except (OSError, TimeoutError) as exc:
            raise UserError(f"--scheduler {scheduler}: cannot connect ({exc})",
                            hint="start one with `dask scheduler` and workers with `dask worker ADDRESS`") from None
        with client:
            try:
                client.wait_for_workers(1, timeout=WORKER_WAIT)
            except (OSError, TimeoutError):
                raise UserError(f"--scheduler {scheduler}: no dask worker joined within {WORKER_WAIT:.0f} s",
                                hint=f"start workers: dask worker {scheduler} --nthreads 1 "
                                     "--resources arch-ARCH=1 (docs/farm.md)") from None
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      resources={resource_for(arch_native): 1}, silence_logs=40) as cluster, Client(cluster) as client:
        yield client


def _quiet_dask() -> None:
    """Dask's INFO lines (scheduler and nanny start and stop) are not ours to print: errors only."""
    for name in ["distributed", *logging.root.manager.loggerDict]:
        if name.startswith("distributed"):
            logging.getLogger(name).setLevel(logging.ERROR)


def native_resources(client: Any, arch: str) -> dict[str, float]:
    """``{arch-ARCH: 1}`` when some worker advertises it (native builds go there), else {} (run anywhere)."""
    workers: Mapping[str, Any] = client.scheduler_info().get("workers", {})
    wanted = resource_for(arch)
    return {wanted: 1} if any(wanted in (w.get("resources") or {}) for w in workers.values()) else {}


def farm_build_all(recipes_dir: Path, arch: str, key: SigningKey, out_dir: Path, *, client: Any,
                   cache: Path | None = None, store: shared.Store | None = None,
                   progress: Callable[[str, str], None] = lambda name, status: None) -> Outcome:
    """Build every recipe of ``recipes_dir`` on the cluster behind ``client`` (see the module docstring)."""
    start = time.monotonic()
    archive = DebianArchive(cache or builder.default_cache())
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    bset = builder.load_set(recipes_dir, arch, archive, progress)
    run = FarmRun(bset=bset, arch=arch, key=key, out_dir=out_dir, client=client, archive=archive, cache=cache,
                  store=store, progress=progress)
    run.start_ready()
    for future in run.running:
        run.collect(future)
        run.start_ready()
    run.outcome.built = [run.results[n] for n in bset.graph.order if n in run.results]
    run.outcome.seconds = time.monotonic() - start
    if run.failed:
        errors = [UserError(f"{bset.loaded[n][0].name}: {e.message}", hint=e.hint)
                  for n, e in sorted(run.failed.items())]
        raise combine(errors, summary=f"{len(errors)} of the recipes in {recipes_dir} failed to build")
    return run.outcome


@dataclass(slots=True, kw_only=True)
class FarmRun:
    """The client's state during one farm build-all: what waits, runs, is done or failed."""
    bset: builder.BuildSet
    arch: str
    key: SigningKey
    out_dir: Path
    client: Any
    archive: DebianArchive
    cache: Path | None
    store: shared.Store | None
    progress: Callable[[str, str], None]
    state: dict[str, Any] = field(init=False)
    debs: list[dict[str, Any]] = field(init=False)          # the set's Debian sources (a few KiB, to each task)
    resources: dict[str, float] = field(init=False)
    running: Any = field(init=False)                        # distributed.as_completed
    waiting: set[str] = field(init=False)
    futures: dict[Any, str] = field(default_factory=dict)   # running future -> recipe
    digests: dict[str, str] = field(default_factory=dict)
    results: dict[str, builder.Built] = field(default_factory=dict)
    failed: dict[str, ComposerError] = field(default_factory=dict)
    provided: dict[str, Path] = field(default_factory=dict)  # package name -> file (for dependents)
    outcome: Outcome = field(default_factory=Outcome)

    def __post_init__(self) -> None:
        try:
            self.state = json.loads((self.out_dir / builder.STATE_FILE).read_text())
        except (FileNotFoundError, ValueError):
            self.state = {}
        self.debs = builder.deb_sources([r for _, r in self.bset.loaded.values() if isinstance(r, Recipe)])
        self.resources = native_resources(self.client, self.arch)
        self.running = importlib.import_module("distributed").as_completed()
        self.waiting = set(self.bset.graph.order)

    def _finish(self, name: str, result: builder.Built, how: str) -> None:
        self.results[name] = result
        self.provided.update(builder.provided_by(result))
        self.outcome.counts[how] += 1

    def _fail(self, name: str, exc: ComposerError) -> None:
        self.failed[name] = exc
        self.progress(name, "FAILED")

    def _record(self, package: str, digest: str, result: builder.Built) -> None:
        self.state[f"{package}/{self.arch}"] = builder.record(digest, result)
        atomic_write(self.out_dir / builder.STATE_FILE, json.dumps(self.state, indent=1, sort_keys=True).encode())

    def start_ready(self) -> None:
        """Start every waiting recipe whose dependencies are done (or failed: then it fails too)."""
        for name in [n for n in self.bset.graph.order if n in self.waiting]:
            needs = self.bset.graph.needs[name]
            busy = any(d in self.waiting or d in self.futures.values() for d in needs)
            if busy and not any(d in self.failed for d in needs):
                continue
            self.waiting.discard(name)
            problem = builder.blocker(self.bset, name, self.failed)
            recipe = self.bset.loaded[name][1]
            if problem is not None or not isinstance(recipe, Recipe):
                self._fail(name, problem or UserError("not loaded"))
                continue
            try:
                self._start(name, recipe)
            except ComposerError as exc:
                self._fail(name, exc)

    def _start(self, name: str, recipe: Recipe) -> None:
        """Reuse the output folder's package, or the shared cache's, or submit the build."""
        deps = builder.dep_files(recipe, self.provided)
        digest = builder.recipe_inputs(recipe, self.archive, self.key, builder.dep_inputs(deps))
        self.digests[name] = digest
        prev = self.state.get(f"{recipe.name}/{self.arch}")
        if prev and prev["inputs"] == digest and builder.unchanged(self.out_dir, prev):
            paths = [self.out_dir / prev["file"], *(self.out_dir / n for n, _ in prev.get("split", ()))]
            self._finish(name, reread(paths, skipped=True), "unchanged")
            self.progress(name, "unchanged")
            return
        if self.store is not None and self._fetch(name, recipe, digest):
            return
        self.progress(name, "building")
        blobs = [(p.name, p.read_bytes()) for p in deps]
        future = self.client.submit(build_remote, str(self.bset.loaded[name][0].resolve()), self.arch,
                                    self.key.private.private_bytes_raw(), blobs,
                                    str(self.cache) if self.cache else None, self.debs,
                                    resources=self.resources or None, pure=False,
                                    key=f"vcomp-build-{name}-{digest[:16]}")
        self.futures[future] = name
        self.running.add(future)

    def _fetch(self, name: str, recipe: Recipe, digest: str) -> bool:
        assert self.store is not None
        try:
            paths, why = shared.fetch(self.store, digest, self.key.public, self.out_dir)
        except ComposerError as exc:       # the cache is down: build instead
            paths, why = [], exc.message
        if not paths:
            if why != "absent":
                self.progress(name, f"shared cache entry not used ({why}); building")
            return False
        result = reread(paths, skipped=False)
        self._record(recipe.name, digest, result)
        self._finish(name, result, "fetched")
        self.progress(name, f"fetched {paths[0].name} from the shared cache")
        return True

    def collect(self, future: Any) -> None:
        """A finished build: write its packages, record them, push them to the shared cache."""
        name = self.futures.pop(future)
        try:
            answer: dict[str, Any] = future.result()
        except Exception as exc:    # a worker died or the task could not run: one line
            answer = {"error": [f"the farm could not run the build ({type(exc).__name__}: {exc})",
                                "see the dask worker's log"]}
        if "error" in answer:
            self._fail(name, UserError(answer["error"][0], hint=answer["error"][1]))
            return
        files = [(str(n), bytes(b)) for n, b in answer["files"]]
        for fname, blob in files:
            atomic_write(self.out_dir / fname, blob, durable=False)
        result = reread([self.out_dir / n for n, _ in files], skipped=False)
        self._record(result.metadata.name, self.digests[name], result)
        self._finish(name, result, "built")
        self.outcome.build_seconds[name] = float(answer.get("seconds", 0.0))
        self.outcome.placed[name] = str(answer.get("worker", ""))
        self.progress(name, f"built {files[0][0]} on {answer.get('host', '?')} "
                            f"(sha256 {sha256_bytes(files[0][1])[:12]})")
        if self.store is not None:
            try:
                shared.push(self.store, self.digests[name], files, self.key)
            except ComposerError as exc:
                self.progress(name, f"not stored in the shared cache: {exc.message}")


def reread(paths: Sequence[Path], *, skipped: bool) -> builder.Built:
    main = read_header(paths[0])
    subs = tuple(builder.reread(p) for p in paths[1:])
    return builder.Built(path=paths[0], metadata=main.metadata, manifest=main.manifest, skipped=skipped, split=subs)
