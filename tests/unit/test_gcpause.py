"""composer/gcpause.py: the collector is off inside, restored after (also on an exception), and left off when
the caller had turned it off."""

from __future__ import annotations

import gc

import pytest

from composer import gcpause


def test_paused_and_restored() -> None:
    assert gc.isenabled()
    with gcpause.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gcpause.paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_caller_that_disabled_it_keeps_it_disabled() -> None:
    gc.disable()
    try:
        with gcpause.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
