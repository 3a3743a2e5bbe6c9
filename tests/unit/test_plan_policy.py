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


def _advisory(id_: str, name: str, fixed: str, severity: str) -> Any:
    from composer.advisory.osv import Advisory
    return Advisory.from_dict({"id": id_, "modified": "2026-12-01T00:00:00Z", "summary": f"{name} hole",
                               "aliases": [f"CVE-{id_[-6:]}"],
                               "affected": [{"package": {"ecosystem": "Veridian", "name": name},
                                             "ranges": [{"type": "ECOSYSTEM",
                                                         "events": [{"introduced": "0"}, {"fixed": fixed}]}]}],
                               "database_specific": {"severity": severity}}, "test")


def test_advisories_a_change_introduces_and_fixes_and_the_severity_gate() -> None:
    feed = [_advisory("VER-2026-000001", "busybox", "1.36.0", "critical"),
            _advisory("VER-2026-000002", "busybox", "1.37.0", "medium"),
            _advisory("VER-2026-000003", "init", "2.0.0", "low")]
    downgrade = {"busybox": row("busybox", "1.34.0", license="GPL-2.0-only")}
    new, _ = _with(downgrade)
    patched = state(profile(), lock([r for r in BASE_ROWS if r["name"] != "busybox"]
                                    + [row("busybox", "1.36.0", license="GPL-2.0-only")]))
    p = plan_profile("p.yaml", patched, new, BUILT, advisories=feed)
    assert [(a.action, a.name, a.version, a.id, a.fixed) for a in p.advisories] == [
        ("introduce", "busybox", "1.34.0", "VER-2026-000001", ("1.36.0",))]
    assert p.advisories_remaining == 2 and p.violations == ()     # busybox medium and init low: still there
    gated, _ = _with(downgrade, advisories={"max-severity": "high"})
    p = plan_profile("p.yaml", old_state(), gated, BUILT, advisories=feed)
    assert [v.rule for v in p.violations] == ["advisories"]
    assert p.violations[0].message == ("x86_64: busybox 1.34.0 is affected by VER-2026-000001 (critical; fixed in "
                                       "1.36.0)")
    assert EXIT_CODES[plan_of(p).verdict] == EXIT_POLICY
    strict, _ = _with(downgrade, advisories={"max-severity": "low"})
    assert [v.message.split(" is affected by ")[1][:15] for v in
            plan_profile("p.yaml", old_state(), strict, BUILT, advisories=feed).violations] == [
        "VER-2026-000001", "VER-2026-000002"]
    accepted, _ = _with(downgrade, advisories={"max-severity": "high", "ignore": ["CVE-000001"]})
    assert plan_profile("p.yaml", old_state(), accepted, BUILT, advisories=feed).violations == ()
    fixed = plan_profile("p.yaml", new, patched, BUILT, advisories=feed)
    assert {(a.action, a.id) for a in fixed.advisories} == {("fix", "VER-2026-000001")}


def test_advisories_in_the_table_the_markdown_and_the_json() -> None:
    import json

    from composer import schema
    from composer.gitops import render
    feed = [_advisory("VER-2026-000001", "busybox", "1.36.0", "critical")]
    new, _ = _with({"busybox": row("busybox", "1.34.0", license="GPL-2.0-only")}, advisories={"max-severity": "high"})
    patched = state(profile(), lock([r for r in BASE_ROWS if r["name"] != "busybox"]
                                    + [row("busybox", "1.36.0", license="GPL-2.0-only")]))
    plan = plan_of(plan_profile("p.yaml", patched, new, BUILT, advisories=feed))
    text = render.table(plan)
    assert "+ introduces x86_64: busybox 1.34.0: VER-2026-000001 (critical) fixed in 1.36.0: busybox hole" in text
    assert "policy advisories: x86_64: busybox 1.34.0 is affected by VER-2026-000001" in text
    assert "advisories: 1 introduced, 0 fixed." in text
    assert "| introduce | x86_64 | busybox | 1.34.0 | VER-2026-000001 | critical | 1.36.0 |" in render.markdown(plan)
    doc = json.loads(render.to_json(plan))
    schema.check(doc, "plan.schema.json", origin="plan", locate=lambda _p: (1, 1))
    assert doc["summary"]["advisories_introduced"] == 1 and doc["exit_code"] == EXIT_POLICY
