"""Bytes a `vcomp lock` downloads: whole index against sparse index, and whether both give the same lock.

    .venv/bin/python bench/sparse.py PROFILE.yaml... [--json FILE]
    .venv/bin/python bench/sparse.py --synthetic 10000,100000 [--requests 20] [--json FILE]

For each profile and each mode (VCOMP_INDEX=whole, then sparse), a lock is resolved twice with a fresh cache
directory: "cold" (nothing cached) and "warm" (the same cache again, nothing changed). Every byte the TUF
client receives is counted at the transport (metadata and targets; the repositories are read through file://
URLs exactly as over HTTP). It prints, per profile: bytes and files per mode, and whether the two locks are
byte-identical (they must be: docs/repo-sparse.md). The repositories must publish the sparse index.

--synthetic N builds, in memory, a repository of N packages (deterministic: names pkg-N; a core of n/200 libraries,
at least 50, depending on older core packages, every other package on 0-3 core ones; one in 20 providing a
virtual name), with the real index, sparse files and hash-bin
metadata (serialized as publish does, one ed25519 signature each), and counts what a cold lock of --requests
random names downloads (the closure's sparse files, the bins they are listed in, the snapshot) against the
whole index, and what a client refetches after one package changes (snapshot + one bin + the changed files,
against the whole index again). Timestamp and top-level metadata are the same for both and left out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from composer import settings
from composer.profile.load import load_profile
from composer.repo import transports
from composer.repo.sparse import FILES_PER_BIN
from composer.solve.lock import open_sources, resolve_profile
from composer.solve.lockmodel import lock_bytes

COUNT = {"bytes": 0, "files": 0}


def counting(original: Any) -> Any:
    def fetch(self: transports.UrlFetcher, url: str) -> Iterator[bytes]:
        COUNT["files"] += 1
        for chunk in original(self, url):
            COUNT["bytes"] += len(chunk)
            yield chunk
    return fetch


def lock_once(profile: Path, cache: Path, mode: str) -> tuple[bytes, dict[str, float]]:
    COUNT.update(bytes=0, files=0)
    with settings.overriding(settings.INDEX, mode):
        start = time.perf_counter()
        doc = resolve_profile(load_profile(profile), open_sources(load_profile(profile), cache))
        took = time.perf_counter() - start
    return lock_bytes(doc), {"bytes": COUNT["bytes"], "files": COUNT["files"], "seconds": round(took, 3)}


def synthetic(n: int, requests: int, per_bin: int, seed: int = 20) -> dict[str, Any]:
    """Bytes of a cold lock and of a refresh after one change, whole index vs sparse (see the docstring)."""
    import random

    from tuf.api.metadata import Metadata, MetaFile, Snapshot, SuccinctRoles, TargetFile, Targets

    from composer.repo.edit import bin_bits
    from composer.repo.index import IndexEntry, build_index
    from composer.repo.sparse import SPARSE_BIN_PREFIX, build_sparse, sparse_target_path
    from composer.repo.store import SERIALIZER
    from composer.solve.sparsepool import closure
    rng = random.Random(seed)
    width = len(str(n))
    core = min(n, max(50, n // 200))

    def name(i: int) -> str:
        return f"pkg-{i:0{width}d}"

    def entry(i: int, version: str = "1.0.0") -> IndexEntry:
        # a core of libraries (the first n/200, at least 50) depending on older core packages; every other
        # package on 0-3 core packages: a lock reaches its requests and part of the core, as in a distribution
        pool = i if i < core else core
        deps = {name(rng.randrange(pool)): "*" for _ in range(rng.randrange(4 if i >= core else 3))} if pool else {}
        return IndexEntry(name=name(i), version=version, arch="x86_64", type="application",
                          description=f"synthetic package {i}", license="MIT", dependencies=deps,
                          provides=(f"virtual-{i % 997}",) if i % 20 == 0 else (), conflicts=(), features={},
                          capabilities={}, driver={}, size=1000 + i, installed_size=4000 + i,
                          sha256=f"{i:064x}", path=f"packages/{name(i)}/{name(i)}-{version}-x86_64.vpk",
                          signer="a" * 64)

    entries = [entry(i) for i in range(n)]
    whole = len(build_index("x86_64", entries))
    files = build_sparse("x86_64", entries)
    succinct = SuccinctRoles(keyids=["b" * 64], threshold=1, bit_length=bin_bits(len(files), per_bin),
                             name_prefix=SPARSE_BIN_PREFIX)
    signature = 2 * 64 + 128 + 40   # keyid, ed25519 signature in hex, JSON

    def bin_sizes(files: dict[str, bytes]) -> dict[str, int]:
        listed: dict[str, dict[str, TargetFile]] = {r: {} for r in succinct.get_roles()}
        for path, data in files.items():
            listed[succinct.get_role_for_target(path)][path] = TargetFile.from_data(path, data, ["sha256"])
        return {r: len(Metadata(Targets(targets=t)).to_bytes(SERIALIZER)) + signature for r, t in listed.items()}

    bins = bin_sizes(files)
    meta = {f"{r}.json": MetaFile(version=1, length=bins[r], hashes={"sha256": "c" * 64}) for r in bins}
    snapshot = len(Metadata(Snapshot(meta=meta)).to_bytes(SERIALIZER)) + signature
    roots = [name(rng.randrange(n)) for _ in range(requests)]
    reached = closure(roots, lambda names: {k: [_file(files, k)] for k in names
                                             if sparse_target_path("x86_64", k) in files})
    paths = [sparse_target_path("x86_64", k) for k in reached if sparse_target_path("x86_64", k) in files]
    touched = {succinct.get_role_for_target(p) for p in paths}
    sparse = sum(len(files[p]) for p in paths) + sum(bins[b] for b in touched) + snapshot
    changed = sparse_target_path("x86_64", name(n // 2))
    return {"packages": n, "sparse_files": len(files), "bins": len(bins), "bin_bytes_median": sorted(bins.values())[
        len(bins) // 2], "snapshot_bytes": snapshot, "lock_names_reached": len(reached),
            "lock_bins_touched": len(touched), "whole_index_bytes": whole, "sparse_lock_bytes": sparse,
            "refresh_after_one_change_whole": whole,
            "refresh_after_one_change_sparse": snapshot + bins[succinct.get_role_for_target(changed)]
            + len(files[changed])}


def _file(files: dict[str, bytes], name: str) -> Any:
    from composer.repo.sparse import parse_sparse, sparse_target_path
    return parse_sparse(files[sparse_target_path("x86_64", name)], name, arch="x86_64", name=name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profiles", nargs="*", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--synthetic", help="comma-separated package counts (see the docstring)")
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--files-per-bin", type=int, help="try another bin size than composer.repo.sparse's")
    args = ap.parse_args()
    if args.synthetic:
        rows = []
        for n in (int(x) for x in args.synthetic.split(",")):
            start = time.perf_counter()
            figures = synthetic(n, args.requests, args.files_per_bin or FILES_PER_BIN)
            rows.append(figures)
            print(json.dumps(figures), f"({time.perf_counter() - start:.1f} s)", flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2) + "\n")
        return 0
    transports.UrlFetcher._fetch = counting(transports.UrlFetcher._fetch)  # type: ignore[method-assign]
    results: dict[str, Any] = {}
    same = True
    for profile in args.profiles:
        row: dict[str, Any] = {}
        locks = {}
        for mode in ("whole", "sparse"):
            with tempfile.TemporaryDirectory(prefix="vcomp-sparse-bench-") as tmp:
                cache = Path(tmp)
                os.chmod(cache, 0o700)
                locks[mode], cold = lock_once(profile, cache, mode)
                _, warm = lock_once(profile, cache, mode)
            row[mode] = {"cold": cold, "warm": warm}
        row["same_lock"] = locks["whole"] == locks["sparse"]
        same = same and row["same_lock"]
        results[str(profile)] = row
        w, s = row["whole"]["cold"], row["sparse"]["cold"]
        print(f"{profile}: whole {w['bytes']:,} B in {w['files']} files ({w['seconds']} s); "
              f"sparse {s['bytes']:,} B in {s['files']} files ({s['seconds']} s): "
              f"{w['bytes'] / max(s['bytes'], 1):.1f}x less; warm: whole {row['whole']['warm']['bytes']:,} B, "
              f"sparse {row['sparse']['warm']['bytes']:,} B; same lock: {row['same_lock']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
