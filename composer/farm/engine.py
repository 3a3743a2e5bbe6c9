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
                    "host": os.uname().nodename, "seconds": time.monotonic() - start}
    except ComposerError as exc:
        return {"error": [exc.message, exc.hint]}


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
    as_completed: Any = importlib.import_module("distributed").as_completed
    start = time.monotonic()
    archive = DebianArchive(cache or builder.default_cache())
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / builder.STATE_FILE
    try:
        state: dict[str, Any] = json.loads(state_path.read_text())
    except (FileNotFoundError, ValueError):
        state = {}
    bset = builder.load_set(recipes_dir, arch, archive, progress)
    resources = native_resources(client, arch)
    key_raw = key.private.private_bytes_raw()
    debs = builder.deb_sources([r for _, r in bset.loaded.values() if isinstance(r, Recipe)])   # a few KiB
    results: dict[str, builder.Built] = {}
    failed: dict[str, ComposerError] = {}
    provided: dict[str, Path] = {}
    digests: dict[str, str] = {}
    outcome = Outcome()
    waiting = set(bset.graph.order)
    running = as_completed()
    futures: dict[Any, str] = {}

    def finish(name: str, result: builder.Built, how: str) -> None:
        results[name] = result
        provided.update(builder.provided_by(result))
        outcome.counts[how] += 1

    def fail(name: str, exc: ComposerError) -> None:
        failed[name] = exc
        progress(name, "FAILED")

    def start_ready() -> None:
        for name in [n for n in bset.graph.order if n in waiting]:
            needs = bset.graph.needs[name]
            if any(d in waiting or d in futures.values() for d in needs) and not any(d in failed for d in needs):
                continue
            waiting.discard(name)
            problem = builder.blocker(bset, name, failed)
            recipe = bset.loaded[name][1]
            if problem is not None or not isinstance(recipe, Recipe):
                fail(name, problem or UserError("not loaded"))
                continue
            try:
                _start(name, recipe)
            except ComposerError as exc:
                fail(name, exc)

    def _start(name: str, recipe: Recipe) -> None:
        deps = builder.dep_files(recipe, provided)
        digest = builder.recipe_inputs(recipe, archive, key, builder.dep_inputs(deps))
        digests[name] = digest
        prev = state.get(f"{recipe.name}/{arch}")
        if prev and prev["inputs"] == digest and builder.unchanged(out_dir, prev):
            paths = [out_dir / prev["file"], *(out_dir / n for n, _ in prev.get("split", ()))]
            finish(name, reread(paths, skipped=True), "unchanged")
            progress(name, "unchanged")
            return
        if store is not None:
            paths, why = shared.fetch(store, digest, key.public, out_dir)
            if paths:
                result = reread(paths, skipped=False)
                _record(recipe.name, digest, result)
                finish(name, result, "fetched")
                progress(name, f"fetched {paths[0].name} from the shared cache")
                return
            if why != "absent":
                progress(name, f"shared cache entry refused ({why}); building")
        progress(name, "building")
        blobs = [(p.name, p.read_bytes()) for p in deps]
        future = client.submit(build_remote, str(bset.loaded[name][0].resolve()), arch, key_raw, blobs,
                               str(cache) if cache else None, debs, resources=resources or None, pure=False,
                               key=f"vcomp-build-{name}-{digest[:16]}")
        futures[future] = name
        running.add(future)

    def _record(package: str, digest: str, result: builder.Built) -> None:
        state[f"{package}/{arch}"] = builder.record(digest, result)
        atomic_write(state_path, json.dumps(state, indent=1, sort_keys=True).encode())

    start_ready()
    for future in running:
        name = futures[future]
        try:
            answer: dict[str, Any] = future.result()
        except Exception as exc:    # a worker died or the task could not run: one line
            answer = {"error": [f"the farm could not run the build ({type(exc).__name__}: {exc})",
                                "see the dask worker's log"]}
        del futures[future]
        if "error" in answer:
            fail(name, UserError(answer["error"][0], hint=answer["error"][1]))
        else:
            files = [(str(n), bytes(b)) for n, b in answer["files"]]
            for fname, blob in files:
                atomic_write(out_dir / fname, blob, durable=False)
            result = reread([out_dir / n for n, _ in files], skipped=False)
            recipe = bset.loaded[name][1]
            assert isinstance(recipe, Recipe)
            _record(recipe.name, digests[name], result)
            if store is not None:
                shared.push(store, digests[name], files, key)
            finish(name, result, "built")
            outcome.build_seconds[name] = float(answer.get("seconds", 0.0))
            progress(name, f"built {files[0][0]} on {answer.get('host', '?')} "
                           f"(sha256 {sha256_bytes(files[0][1])[:12]})")
        start_ready()
    outcome.built = [results[n] for n in bset.graph.order if n in results]
    outcome.seconds = time.monotonic() - start
    if failed:
        errors = [UserError(f"{bset.loaded[n][0].name}: {e.message}", hint=e.hint) for n, e in sorted(failed.items())]
        raise combine(errors, summary=f"{len(errors)} of the recipes in {recipes_dir} failed to build")
    return outcome


def reread(paths: Sequence[Path], *, skipped: bool) -> builder.Built:
    main = read_header(paths[0])
    subs = tuple(builder.reread(p) for p in paths[1:])
    return builder.Built(path=paths[0], metadata=main.metadata, manifest=main.manifest, skipped=skipped, split=subs)
