"""A scenario that proves the harness itself can tell old, new and lost apart.

The command writes ten files one by one with a pause: killed midway it leaves a state that is
neither old nor new, and the sweep must say so (tests/reliability/test_killsweep.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.reliability.killsweep import Run, Scenario, tree_digest

_WRITER = ("import sys, time, pathlib\n"
           "d = pathlib.Path(sys.argv[1])\n"
           "for i in range(10):\n"
           "    (d / f'f{i}').write_text(str(i))\n"
           "    time.sleep(0.05)\n")


def _torn(work: Path) -> Run:
    target = work / "t"
    target.mkdir()
    return Run(argv=[sys.executable, "-c", _WRITER, str(target)], observe=lambda: tree_digest(target))


TORN = Scenario(name="selftest torn writer", prepare=_torn)
SCENARIOS: list[Scenario] = []   # not an operation of vcomp: kept out of the bench table
