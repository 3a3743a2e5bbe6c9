"""The kill-sweep harness can fail: a non-atomic writer killed midway is reported as lost."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.killsweep import sweep
from tests.reliability.scenarios_selftest import TORN


def test_a_torn_writer_is_caught_as_lost(tmp_path: Path) -> None:
    result = sweep(TORN, tmp_path, kills=6)
    assert result.kills == 6
    assert result.lost >= 1, result
    assert all("neither old nor new" in f for f in result.failures)
