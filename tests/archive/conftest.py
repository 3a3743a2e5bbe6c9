"""Tests marked ``archive`` (the Debian archive, apt runs, minutes) run only when asked for:
``pytest -m archive`` (``make test-archive`` later). Otherwise they are skipped, so ``make test`` stays fast
until its ``-m "not archive"`` lands (design14 §5.3)."""

from __future__ import annotations

import pytest


def _asked_for(config: pytest.Config) -> bool:
    expression = str(config.getoption("markexpr", "") or "")
    return "archive" in expression and "not archive" not in expression


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _asked_for(config):
        return
    skip = pytest.mark.skip(reason="archive test: run it with pytest -m archive")
    for item in items:
        if item.get_closest_marker("archive") is not None:
            item.add_marker(skip)
