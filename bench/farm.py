"""The build farm's speed-up (issue 20, docs/farm.md): the sample set (recipes/) for one architecture built
serially (`build_all`), then on a Dask LocalCluster of 1 worker and of N workers, each into an empty output
folder (a cold build cache; the download cache stays warm, as on any builder that has built once).

    .venv/bin/python bench/farm.py [--workers 2] [--arch x86_64] [--recipes recipes] [--json FILE]

Prints wall times and the ratios against the serial build of the same run, and the load average (the machine
may be shared). Every farm output is compared byte for byte with the serial one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composer.farm import engine
from composer.package.build import build_all
from composer.trust.keys import generate, load_signing_key


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--arch", default="x86_64")
    ap.add_argument("--recipes", default=str(Path(__file__).resolve().parents[1] / "recipes"))
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    recipes = Path(args.recipes)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-farm-") as tmp:
        base = Path(tmp)
        generate("bench", base / "keys")
        key = load_signing_key(base / "keys" / "bench.key")
        start = time.monotonic()
        serial = build_all(recipes, args.arch, key, base / "serial")
        figures["serial"] = time.monotonic() - start
        names = sorted(p.name for p in (base / "serial").glob("*.vpk"))
        print(f"serial build_all: {len(serial)} recipes, {len(names)} packages, {figures['serial']:.1f} s",
              flush=True)
        for workers in (1, args.workers):
            label = f"farm-{workers}"
            start = time.monotonic()
            with engine.connect(None, workers, os.uname().machine) as client:
                ready = time.monotonic()
                outcome = engine.farm_build_all(recipes, args.arch, key, base / label, client=client)
            figures[label] = time.monotonic() - start
            figures[label + "-startup"] = ready - start
            out = base / label
            same = all((out / n).read_bytes() == (base / "serial" / n).read_bytes() for n in names)
            work = sum(outcome.build_seconds.values())
            figures[label + "-work"] = work
            slowest = sorted(outcome.build_seconds.items(), key=lambda kv: -kv[1])[:4]
            print(f"{label}: {outcome.counts['built']} built in {figures[label]:.1f} s (cluster start "
                  f"{figures[label + '-startup']:.1f} s); the builds took {work:.1f} s summed over the workers "
                  f"(parallelism {work / (figures[label] - figures[label + '-startup']):.2f}); slowest: "
                  + ", ".join(f"{n} {t:.1f} s" for n, t in slowest)
                  + f"; bytes identical to serial: {same}", flush=True)
            if not same:
                return 1
    load = os.getloadavg()
    print(f"\n{'run':<10} {'wall s':>8} {'vs serial':>10}")
    for label in ("serial", "farm-1", f"farm-{args.workers}"):
        print(f"{label:<10} {figures[label]:>8.1f} {figures['serial'] / figures[label]:>9.2f}x")
    speedup = figures["farm-1"] / figures[f"farm-{args.workers}"]
    print(f"speed-up {args.workers} workers vs 1: {speedup:.2f}x on {os.cpu_count()} CPUs "
          f"(load average now {load[0]:.1f} {load[1]:.1f} {load[2]:.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps({**figures, "speedup": speedup, "cpus": os.cpu_count(),
                                               "load": list(load)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
