"""Policy gates on plans (pure): size growth, image size, setuid files, kernel changes needing an acknowledgement."""

from __future__ import annotations

from typing import Any

from composer.gitops.plan import EXIT_CHANGES, EXIT_CODES, EXIT_POLICY, PackageChange, State, plan_profile
from tests.unit.test_plan_render import BASE_ROWS, BUILT, MIB, lock, old_state, plan_of, profile, row, state


def _with(rows_changed: dict[str, dict[str, Any]], **policy: Any) -> tuple[State, State]:
    rows = [rows_changed.get(r["name"], r) for r in BASE_ROWS]
    return state(profile(policy=policy), lock(rows)), state(profile(policy=policy), lock(BASE_ROWS))


def test_size_growth_and_image_size_limits() -> None:
    big = {"busybox": row("busybox", "1.36.0", size=12 * MIB, license="GPL-2.0-only")}
    new, _ = _with(big, **{"max-size-growth": "10%"})
    p = plan_profile("p.yaml", old_state(), new, BUILT)
    assert [v.rule for v in p.violations] == ["max-size-growth", "max-size-growth"]
    assert "x86_64/disk: grows by about" in p.violations[0].message
    assert EXIT_CODES[plan_of(p).verdict] == EXIT_POLICY
    new, _ = _with(big, **{"max-image-size": "25M"})
    p = plan_profile("p.yaml", old_state(), new, BUILT)
    assert {v.message.split(":")[0] for v in p.violations} == {"x86_64/iso", "x86_64/disk"}
    new, _ = _with(big, **{"max-image-size": "1G", "max-size-growth": "100%"})
    assert plan_profile("p.yaml", old_state(), new, BUILT).violations == ()


def test_new_setuid_files_are_refused_unless_allowed() -> None:
    upgraded = {"busybox": row("busybox", "1.36.0", license="GPL-2.0-only")}
    new, _ = _with(upgraded)
    seen: list[PackageChange] = []

    def setuid(change: PackageChange) -> list[str]:
        seen.append(change)
        return ["bin/busybox"] if change.name == "busybox" else []

    p = plan_profile("p.yaml", old_state(), new, BUILT, setuid=setuid)
    assert [v.message for v in p.violations] == ["x86_64: busybox 1.36.0 adds the setuid file /bin/busybox"]
    assert [c.name for c in seen] == ["busybox"], "only changed packages are read"
    allowed, _ = _with(upgraded, **{"allow-setuid": True})
    assert plan_profile("p.yaml", old_state(), allowed, BUILT, setuid=setuid).violations == ()


def test_a_kernel_change_needs_an_acknowledgement() -> None:
    kernel = {"linux": row("linux", "6.1.1", "kernel", size=8 * MIB, license="GPL-2.0-only")}
    new, _ = _with(kernel, **{"kernel-change-requires-ack": True})
    p = plan_profile("p.yaml", old_state(), new, BUILT)
    assert [c.kind for c in p.callouts] == ["kernel"]
    assert [v.rule for v in p.violations] == ["kernel-change-requires-ack"]
    assert "--ack kernel" in p.violations[0].message
    acked = plan_profile("p.yaml", old_state(), new, BUILT, acknowledged=("kernel",))
    assert acked.violations == () and EXIT_CODES[plan_of(acked).verdict] == EXIT_CHANGES
