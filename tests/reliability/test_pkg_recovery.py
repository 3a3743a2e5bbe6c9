"""Crash at every point of a transaction, then crash again at every point of the recovery (issue 12, finding 2:
a kill during recovery once left /etc/motd gone while the database still listed it and verify said clean).

The in-process hook ``VCOMP_TEST_CRASH_AT=N`` exits at the Nth crash point (a stand-in for kill -9 at a
known step): the upgrade is crashed at each of its points; at sampled points the recovery that follows is
crashed at each of *its* points, then recovered again. The root must end byte-for-byte old or new, with
``verify`` clean and no journal, staging tree or empty directory left behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.reliability.killsweep import kills_wanted
from tests.reliability.scenarios_pkg import observe_root, pkg, prepared, run_ok


def _restore(template: Path, root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(template, root, symlinks=True)


def _settle(root: Path, work: Path, old: str, new: str, what: str) -> str:
    proc = run_ok(pkg(root, "recover"), work)
    assert proc.returncode == 0 and "internal error" not in proc.stderr, f"{what}: {proc.stderr}"
    verify = run_ok(pkg(root, "verify"), work)
    assert verify.returncode == 0 and "verify: clean" in verify.stdout, f"{what}: {verify.stdout}{verify.stderr}"
    assert not (root / "var/lib/vpk/journal.json").exists() and not (root / "var/lib/vpk/staging").exists()
    state = observe_root(root)
    assert state in (old, new), f"{what}: the root is neither the old nor the new state"
    return "old" if state == old else "new"


def test_a_crash_at_any_point_of_a_transaction_or_of_its_recovery_recovers(tmp_path: Path) -> None:
    work = tmp_path
    root = prepared(work, ["install", "alpha==1.0.0", "beta"])
    template = tmp_path / "template"
    shutil.copytree(root, template, symlinks=True)
    old = observe_root(root)
    assert run_ok(pkg(root, "upgrade", "alpha"), work).returncode == 0
    new = observe_root(root)
    assert new != old
    outcomes, recoveries = [], 0
    full = kills_wanted(1) > 1  # RELIABILITY_FULL=1: every point, and every recovery crashed at every point
    for point in range(1, 100):
        _restore(template, root)
        proc = run_ok(pkg(root, "upgrade", "alpha"), work, {"VCOMP_TEST_CRASH_AT": str(point)})
        if proc.returncode == 0:
            break
        assert proc.returncode == 137, proc.stderr
        if not full and point % 3 != 1 and point != 6:
            continue
        if full or point == 6:  # point 6: files placed, not committed: the recovery has the most to undo
            crashed = tmp_path / "crashed"
            _restore(root, crashed)
            for again in range(1, 100):
                _restore(crashed, root)
                rec = run_ok(pkg(root, "recover"), work, {"VCOMP_TEST_CRASH_AT": str(again)})
                if rec.returncode == 0:
                    break
                assert rec.returncode == 137, rec.stderr
                recoveries += 1
                _settle(root, work, old, new, f"crash {point}, recovery crash {again}")
            _restore(crashed, root)
        outcomes.append(_settle(root, work, old, new, f"crash {point}"))
    assert len(outcomes) >= 3 and outcomes[0] == "old" and "new" in outcomes, outcomes
    assert recoveries >= 3, "the recovery was never crashed: the sample missed every point with work to undo"
