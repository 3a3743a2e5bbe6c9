"""Kill sweeps from outside over every package transaction on a root, and over recovery itself.

A few kill points per operation in ``make test`` (``RELIABILITY_FULL=1``: ten times more); after each
SIGKILL and the follow-up (``recover``, then ``verify``, which must say clean) the root is byte-for-byte
the old or the new state.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.killsweep import Scenario, kills_wanted, sweep
from tests.reliability.scenarios_pkg import SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_a_killed_transaction_leaves_the_old_or_the_new_root(scenario: Scenario, tmp_path: Path) -> None:
    result = sweep(scenario, tmp_path, kills=kills_wanted(2))
    assert result.lost == 0, result.failures
    assert result.kills == kills_wanted(2)
