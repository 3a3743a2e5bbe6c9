"""bench/scale.py at a tiny size, so it cannot rot: it builds, caches and measures a 200-package repository."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCH))
    try:
        import scale as module
        yield module
    finally:
        sys.path.remove(str(BENCH))


def test_scale_runs_at_a_tiny_size_and_reuses_its_cache(scale, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    [first] = scale.run([200], tmp_path, 20, lines.append, mirror_max=200)
    assert first.size == 200 and any("written and signed" in line for line in lines)
    assert first.bytes["refresh"] > 0 and first.bytes["mirror"] > first.bytes["state.db"] > 0
    assert {"add 1", "publish", "refresh", "cold", "mirror", "sqlite insert", "raw copy"} <= set(first.seconds)
    locks = [f"lock {state} {mode}" for mode in ("whole", "sparse") for state in ("cold", "warm")]
    assert set(locks) <= set(first.seconds) and set(locks) <= set(first.bytes)
    assert first.counts["locked packages"] > len(first.profile) == 5 and first.counts["bins"] >= 2
    assert first.counts["packages"] == 200 + 21 and any("lock set added" in line for line in lines)
    # a warm lock (nothing changed) fetches the timestamp and the unchanged-snapshot check: well under a kB
    assert 0 < first.bytes["lock warm whole"] < 1000 and 0 < first.bytes["lock warm sparse"] < 1000
    assert first.bytes["lock cold sparse"] > first.bytes["lock warm sparse"]
    # the sparse refresh after one upload: the changed bins and the new package's files, no whole index
    assert first.bytes["refresh sparse"] > first.bytes["snapshot"] > 0
    assert any("refresh sparse" in line and "sparse files" in line for line in lines)
    lines.clear()
    [again] = scale.run([200], tmp_path, 20, lines.append, mirror_max=0)   # cached: nothing rebuilt
    assert not any("written and signed" in line or "lock set added" in line for line in lines)
    assert "mirror" not in again.seconds and (tmp_path / "v2" / "200" / "complete").is_file()
    bigger = scale.Figures(size=20_000, seconds={k: v * 10 for k, v in first.seconds.items()},
                           bytes={k: v * 100 for k, v in first.bytes.items()})
    table = scale.report([first, bigger]).splitlines()
    assert table[0].split() == ["figure", "200", "20,000", "200", "->", "20,000"]
    assert next(r for r in table if r.startswith("add 1 (time)")).endswith("x3.16/10x")      # 10x per 100x
    assert next(r for r in table if r.startswith("state.db (bytes)")).endswith("x10.00/10x")
    assert "mirror (time)  " in scale.report([again]) and "  -" in scale.report([again])   # not measured: "-"
