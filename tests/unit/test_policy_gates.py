"""The policy gates are one table (composer/gitops/policy.py): one row per gate (issue 13).

Every gate fires at once on one plan and the violations come out in the order (and with the words) the
inline checks of gitops/plan.py gave before the table (the golden list below was written by them); a toy
gate is added to a plan as one row.
"""

from __future__ import annotations

from typing import Any

import pytest

from composer.gitops import policy
from composer.gitops.plan import PackageChange, State, plan_profile
from composer.gitops.policy import GATES, Gate, Locked
from tests.unit.test_plan_render import BASE_ROWS, BUILT, MIB, lock, old_state, profile, row, state

EVERY_GATE = {"denied-packages": ["driver-virtio", "linux"], "allowed-licenses": ["GPL-2.0-only", "GPL-2.0-or-later"],
              "max-image-size": "25M", "max-size-growth": "10%", "kernel-change-requires-ack": True}
# written by the inline checks before the table (git show 01cdf5e:composer/gitops/plan.py); a denied package
# is one the profile does not request (a profile that requests a denied package is invalid since issue 13)
GOLDEN = [
    ("denied-packages", "x86_64: driver-virtio is denied by policy"),
    ("allowed-licenses", "x86_64: init 1.0.0 is licensed MIT, not in allowed-licenses"),
    ("denied-packages", "x86_64: linux is denied by policy"),
    ("allowed-licenses", "x86_64: nano 7.2.0 is licensed MIT OR Apache-2.0, not in allowed-licenses"),
    ("max-image-size", "x86_64/disk: about 45703168 bytes, over 25M"),
    ("max-size-growth", "x86_64/disk: grows by about 40.6% (limit 10%)"),
    ("max-image-size", "x86_64/iso: about 34168832 bytes, over 25M"),
    ("max-size-growth", "x86_64/iso: grows by about 62.9% (limit 10%)"),
    ("allow-setuid", "x86_64: linux 6.1.1 adds the setuid file /usr/bin/su"),
    ("allow-setuid", "x86_64: nano 7.2.0 adds the setuid file /usr/bin/su"),
    ("kernel-change-requires-ack", "x86_64: kernel linux 6.1.0 -> 6.1.1: acknowledge it with --ack kernel"),
]


def every_gate_state(**policy_doc: Any) -> State:
    rows = [r for r in BASE_ROWS if r["name"] != "linux"]
    rows += [row("linux", "6.1.1", "kernel", size=20 * MIB, license="GPL-2.0-only"),
             row("nano", "7.2.0", size=600 * 1024, license="MIT OR Apache-2.0")]
    return state(profile(packages=("base-files", "busybox", "init", "nano"), policy=policy_doc), lock(rows))


def setuid(change: PackageChange) -> list[str]:
    return ["usr/bin/su"] if change.name in ("nano", "linux") else []


def test_every_gate_in_the_order_and_words_of_before() -> None:
    p = plan_profile("p.yaml", old_state(), every_gate_state(**EVERY_GATE), BUILT, setuid=setuid)
    assert [(v.rule, v.message) for v in p.violations] == GOLDEN


def test_one_row_per_gate_named_by_its_policy_key() -> None:
    assert [g.rule for g in GATES] == ["denied-packages", "allowed-licenses", "denied-licenses", "max-image-size",
                                       "max-size-growth", "allow-setuid", "kernel-change-requires-ack", "advisories"]
    for g in GATES:
        hooks = [h for h in (g.locked, g.output, g.change, g.callout) if h is not None]
        assert len(hooks) == 1 and g.checks and g.reads, g.rule


def test_a_gate_the_policy_does_not_turn_on_stays_quiet() -> None:
    calls: list[str] = []

    def counting(change: PackageChange) -> list[str]:
        calls.append(change.name)
        return setuid(change)

    allowed = plan_profile("p.yaml", old_state(), every_gate_state(**{"allow-setuid": True}), BUILT, setuid=counting)
    assert allowed.violations == () and calls == [], "setuid files are read only when the gate is on"


def _no_prerelease(_ctx: policy.Context, p: Locked) -> list[str]:
    return [f"{p.arch}: {p.name} {p.version} is a pre-release"] if "-" in p.version else []


TOY = Gate(rule="no-prerelease", checks="no package of the new lock is a pre-release (1.0.0-rc.1)",
           reads="x86_64: nano 7.2.0-rc.1 is a pre-release", active=lambda ctx: ctx.policy.get("no-prerelease") is True,
           locked=_no_prerelease)


def test_a_toy_gate_is_one_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table is the only list of gates: a row added to it is evaluated in table order (a profile turns it on
    with its key, which the profile schema and ``profile.model.Policy`` then declare: docs/architecture.md)."""
    monkeypatch.setattr(policy, "GATES", (*GATES, TOY))
    locked = [Locked(arch="x86_64", name="busybox", version="1.35.0", license="GPL-2.0-only"),
              Locked(arch="x86_64", name="nano", version="7.2.0-rc.1", license="MIT")]
    found = policy.evaluate({"no-prerelease": True, "denied-packages": ["nano"]}, locked=locked, outputs=(),
                            changes=(), callouts=())
    assert [(v.rule, v.message) for v in found] == [
        ("denied-packages", "x86_64: nano is denied by policy"),
        ("no-prerelease", "x86_64: nano 7.2.0-rc.1 is a pre-release")]
    assert policy.evaluate({"denied-packages": ["nano"]}, locked=locked, outputs=(), changes=(), callouts=()) == [
        policy.Violation(rule="denied-packages", message="x86_64: nano is denied by policy")]
