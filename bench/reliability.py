#!/usr/bin/env python3
"""Kill sweeps from outside, as a table: for each operation, N kills, N recovered cleanly, N lost data.

    python bench/reliability.py [--kills 20] [--only NAME] [--json FILE] [--tmpdir DIR]

Every scenario in ``tests/reliability/scenarios_*.py`` is run: one uncut run measures the duration
and the *new* state, then ``--kills`` runs are SIGKILLed (the whole process group) at delays
spread over that duration, the next command a user would run is run, and the state is compared
with the old and the new one (see tests/reliability/killsweep.py). ``recovered`` = old + new;
``lost`` is every other outcome, with the kill delay and what differed. Exit status 1 if any
operation lost data.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness

from tests.reliability.killsweep import Result, all_scenarios, sweep


def main() -> int:
    ap = harness.parser(__doc__, raw=True)
    ap.add_argument("--kills", type=int, default=20, help="kills per operation (default 20)")
    ap.add_argument("--only", action="append", default=[], help="run only operations whose name contains this")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    ap.add_argument("--tmpdir", type=Path, help="where the worlds are built (default: $TMPDIR)")
    args = ap.parse_args()
    results: list[Result] = []
    print(f"{'operation':<28} {'kills':>6} {'recovered':>10} {'old':>5} {'new':>5} {'lost':>5} {'run s':>7}")
    for scenario in all_scenarios():
        if args.only and not any(o in scenario.name for o in args.only):
            continue
        with tempfile.TemporaryDirectory(prefix="vcomp-sweep-", dir=args.tmpdir) as tmp:
            r = sweep(scenario, Path(tmp), kills=args.kills)
        results.append(r)
        print(f"{r.name:<28} {r.kills:>6} {r.recovered:>10} {r.old:>5} {r.new:>5} {r.lost:>5} {r.seconds:>7.2f}",
              flush=True)
        for failure in r.failures:
            print(f"    {failure}")
    harness.write_json(args.json, [r.to_dict() for r in results], indent=2, say=False)
    return 1 if any(r.lost for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
