"""Kill sweeps from outside over repo add, publish, refresh and `vcomp lock` (a few points each in
`make test`; RELIABILITY_FULL=1 or bench/reliability.py --only repo --kills 40 for the long run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.killsweep import Scenario, kills_wanted, sweep
from tests.reliability.scenarios_repo import SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_a_killed_repository_command_leaves_old_or_new(scenario: Scenario, tmp_path: Path) -> None:
    result = sweep(scenario, tmp_path, kills=kills_wanted(2))
    assert result.lost == 0, "\n".join(result.failures)
    assert result.kills == kills_wanted(2)
