"""Bytes a `vcomp lock` downloads: whole index against sparse index, and whether both give the same lock.

    .venv/bin/python bench/sparse.py PROFILE.yaml... [--json FILE]

For each profile and each mode (VCOMP_INDEX=whole, then sparse), a lock is resolved twice with a fresh cache
directory: "cold" (nothing cached) and "warm" (the same cache again, nothing changed). Every byte the TUF
client receives is counted at the transport (metadata and targets; the repositories are read through file://
URLs exactly as over HTTP). It prints, per profile: bytes and files per mode, and whether the two locks are
byte-identical (they must be: docs/repo-sparse.md). The repositories must publish the sparse index.
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
    with settings.overriding(settings.INDEX, mode):   # type: ignore[arg-type]
        start = time.perf_counter()
        doc = resolve_profile(load_profile(profile), open_sources(load_profile(profile), cache))
        took = time.perf_counter() - start
    return lock_bytes(doc), {"bytes": COUNT["bytes"], "files": COUNT["files"], "seconds": round(took, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profiles", nargs="+", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
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
