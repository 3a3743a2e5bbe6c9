"""The policy gates of a plan: one row per gate. Pure: no I/O (reading setuid files is a callback).

A gate is named by its key under the profile's ``policy:`` (which is also the ``rule`` of its violations),
says what it checks and how a violation reads, when the policy turns it on, and what it looks at: the
packages of the new lock, the outputs whose size is known, the package changes, or the call-outs. A gate
sets the one hook it needs; :func:`evaluate` walks those four in that order, item by item, and asks every
gate of the table about each item in table order. So violations come out grouped as a reviewer reads a
plan (packages, then outputs, then changes, then call-outs), and the same on every run.

Adding a gate is one row in :data:`GATES` (plus its key in ``schemas/profile.schema.json``'s ``policy``,
whose properties are closed); see docs/architecture/seams.md. Another distribution adds one through the
``vcomp.policies`` entry point (docs/plugins.md): its row carries the ``schema`` of its value, which completes
the profile schema's ``policy`` (:func:`composer.profile.validate.profile_schema_now`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

from composer import spdx as licenses
from composer.advisory.osv import SEVERITIES

# the gate's types and the registry live under the profile layer (composer/profile/gates.py); re-exported
from composer.profile.gates import POLICY_GATES as POLICY_GATES
from composer.profile.gates import AdvisoryItem as AdvisoryItem
from composer.profile.gates import CalloutItem as CalloutItem
from composer.profile.gates import ChangeItem as ChangeItem
from composer.profile.gates import Context as Context
from composer.profile.gates import Gate as Gate
from composer.profile.gates import Locked as Locked
from composer.profile.gates import Messages as Messages
from composer.profile.gates import OutputItem as OutputItem
from composer.profile.gates import Violation as Violation

if TYPE_CHECKING:
    from composer.solve.lockmodel import Lock

ADVISORY_LEVELS = ("none", *SEVERITIES)   # max-severity: none refuses every advisory, unknown every known one
SIZE_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KiB": 1 << 10, "M": 1 << 20, "MiB": 1 << 20, "G": 1 << 30,
              "GiB": 1 << 30}


# ----------------------------------------------------------------- the gates

def _has(key: str) -> Callable[[Context], bool]:
    return lambda ctx: key in ctx.policy


def _strings(ctx: Context, key: str) -> list[str]:
    value = ctx.policy.get(key, [])
    return [str(v) for v in value] if isinstance(value, list) else []


def _denied(ctx: Context, p: Locked) -> Messages:
    if p.name in _strings(ctx, "denied-packages"):
        yield f"{p.arch}: {p.name} is denied by policy"


def _licensed(ctx: Context, p: Locked) -> Messages:
    if not p.license:
        return
    why = licenses.problem(p.license)
    if why:
        yield f"{p.arch}: {p.name} {p.version} is licensed '{p.license}', not a valid SPDX expression ({why})"
    elif not licenses.allowed_choice(p.license, _strings(ctx, "allowed-licenses")):
        yield f"{p.arch}: {p.name} {p.version} is licensed {p.license}, not in allowed-licenses"


def _not_denied(ctx: Context, p: Locked) -> Messages:
    if not p.license:
        return
    denied = _strings(ctx, "denied-licenses")
    why = licenses.problem(p.license)
    if why:
        yield f"{p.arch}: {p.name} {p.version} is licensed '{p.license}', not a valid SPDX expression ({why})"
    elif not licenses.avoidable(p.license, denied):
        yield (f"{p.arch}: {p.name} {p.version} is licensed {p.license}: every choice includes a denied license "
               f"({', '.join(licenses.denied_in(p.license, denied))})")


def _over_size(ctx: Context, o: OutputItem) -> Messages:
    text = str(ctx.policy["max-image-size"])
    after = (o.size_before or 0) + o.size_delta
    if after > parse_size(text):
        yield f"{o.arch}/{o.name}: about {after} bytes, over {text}"


def _growth(ctx: Context, o: OutputItem) -> Messages:
    text = str(ctx.policy["max-size-growth"])
    if o.size_before and o.size_delta * 100 > float(text.rstrip("%")) * o.size_before:
        yield f"{o.arch}/{o.name}: grows by about {o.size_delta * 100 / o.size_before:.1f}% (limit {text})"


def _setuid(ctx: Context, c: ChangeItem) -> Messages:
    for path in ctx.setuid_files(c) if c.action != "remove" else ():
        yield f"{c.arch}: {c.name} {c.new} adds the setuid file /{path}"


def _advisories(ctx: Context, p: Locked) -> Messages:
    rule = ctx.policy["advisories"]
    assert isinstance(rule, Mapping)
    allowed = ADVISORY_LEVELS.index(str(rule.get("max-severity", "high")))
    ignore = {str(i) for i in rule.get("ignore", ())}
    for a in ctx.advisories(p):
        if ADVISORY_LEVELS.index(a.severity) > allowed and not ignore & {a.id, *a.aliases}:
            fix = f"fixed in {', '.join(a.fixed)}" if a.fixed else "no fix known"
            yield f"{p.arch}: {p.name} {p.version} is affected by {a.id} ({a.severity}; {fix})"


def _kernel_ack(_ctx: Context, c: CalloutItem) -> Messages:
    if c.kind == "kernel":
        yield f"{c.message}: acknowledge it with --ack kernel"


GATES: tuple[Gate, ...] = (
    Gate(rule="denied-packages", checks="no package of the new lock is in the list",
         reads="x86_64: telnetd is denied by policy", active=_has("denied-packages"), locked=_denied),
    Gate(rule="allowed-licenses", checks="every package of the new lock that states a license has one allowed "
                                         "(an SPDX OR needs one allowed branch, an AND all its parts; X WITH E "
                                         "is allowed by X or by X WITH E)",
         reads="x86_64: foo 1.0.0 is licensed GPL-3.0-only, not in allowed-licenses",
         active=lambda ctx: ctx.policy.get("allowed-licenses") is not None, locked=_licensed),
    Gate(rule="denied-licenses", checks="every package of the new lock that states a license can be taken under "
                                        "licenses none of which is denied (an OR branch without them)",
         reads="x86_64: foo 1.0.0 is licensed GPL-3.0-only AND MIT: every choice includes a denied license "
               "(GPL-3.0-only)",
         active=lambda ctx: ctx.policy.get("denied-licenses") is not None, locked=_not_denied),
    Gate(rule="max-image-size", checks="no output built before grows beyond the size (its last size plus the "
                                       "size change of its packages)",
         reads="x86_64/disk: about 30000000 bytes, over 25M", active=_has("max-image-size"), output=_over_size),
    Gate(rule="max-size-growth", checks="no output built before grows by more than the percentage",
         reads="x86_64/disk: grows by about 12.5% (limit 10%)", active=_has("max-size-growth"), output=_growth),
    Gate(rule="allow-setuid", checks="unless true: no added or changed package brings a setuid file",
         reads="x86_64: busybox 1.36.0 adds the setuid file /bin/busybox",
         active=lambda ctx: not ctx.policy.get("allow-setuid", False), change=_setuid),
    Gate(rule="kernel-change-requires-ack", checks="when true: a kernel change needs vcomp plan --ack kernel",
         reads="x86_64: kernel linux 6.1.0 -> 6.1.1: acknowledge it with --ack kernel",
         active=lambda ctx: bool(ctx.policy.get("kernel-change-requires-ack")) and "kernel" not in ctx.acknowledged,
         callout=_kernel_ack),
    Gate(rule="advisories", checks="no package of the new lock is covered by an advisory above max-severity "
                                   "(unless its id or alias is in ignore)",
         reads="x86_64: nginx 1.26.3-3 is affected by DEBIAN-CVE-2026-1 (critical; fixed in 1.26.3-4)",
         active=lambda ctx: isinstance(ctx.policy.get("advisories"), Mapping), locked=_advisories),
)


for _gate in GATES:   # the built-in rows of the registry (composer.profile.gates: the types and the registry)
    POLICY_GATES[_gate.rule] = _gate


def every_gate() -> tuple[Gate, ...]:
    """The gates :func:`evaluate` asks by default: :data:`GATES` (looked up now), then the plugins' gates."""
    return (*GATES, *POLICY_GATES.plugin_rows().values())


# ----------------------------------------------------------------- evaluation

C = TypeVar("C", bound=ChangeItem)


def evaluate(policy: Mapping[str, object], *, locked: Iterable[Locked], outputs: Sequence[OutputItem],
             changes: Sequence[C], callouts: Sequence[CalloutItem], acknowledged: Sequence[str] = (),
             setuid: Callable[[C], Sequence[str]] = lambda _c: (),
             advisories: Callable[[Locked], Sequence[AdvisoryItem]] = lambda _p: (),
             gates: Sequence[Gate] | None = None) -> list[Violation]:
    """The violations of ``policy`` by a plan, in a stable order (see the module doc).

    ``gates``: the table (default :func:`every_gate`, looked up at the call). ``setuid``: the setuid files a
    changed package's new version adds (I/O: called only when a gate asks, through ``Context.setuid_files``)."""
    # the gates are only ever handed the changes given here, so each is a C again
    ctx = Context(policy=policy, acknowledged=tuple(acknowledged), setuid_files=lambda c: setuid(cast(C, c)),
                  advisories=advisories)
    on = [g for g in (every_gate() if gates is None else gates) if g.active(ctx)]
    sized = [o for o in outputs if o.size_before is not None and o.action != "remove"]
    out = [Violation(rule=g.rule, message=m) for p in locked for g in on if g.locked for m in g.locked(ctx, p)]
    out += [Violation(rule=g.rule, message=m) for o in sized for g in on if g.output for m in g.output(ctx, o)]
    out += [Violation(rule=g.rule, message=m) for c in changes for g in on if g.change for m in g.change(ctx, c)]
    out += [Violation(rule=g.rule, message=m) for k in callouts for g in on if g.callout for m in g.callout(ctx, k)]
    return out


def locked_packages(lock: Lock | None) -> Iterator[Locked]:
    """The packages of a lock, architectures in order."""
    for arch, pkgs in sorted(lock.architectures.items()) if lock else ():
        for p in pkgs:
            yield Locked(arch=arch, name=p.name, version=p.version, license=p.license or "",
                         version_scheme=p.version_scheme)


def parse_size(text: str) -> int:
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)", text.strip())
    if not m or m.group(2) not in SIZE_UNITS:
        raise ValueError(f"not a size: {text!r}")
    return int(float(m.group(1)) * SIZE_UNITS[m.group(2)])


def license_ok(expression: str, allowed: Sequence[str]) -> bool:
    """An SPDX expression is allowed when every license of some OR branch is allowed (invalid: not allowed)."""
    return not licenses.problem(expression) and licenses.allowed_choice(expression, allowed)
