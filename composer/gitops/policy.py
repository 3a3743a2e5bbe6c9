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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from composer.plugins.registry import Registry

if TYPE_CHECKING:
    from composer.solve.lockmodel import Lock

SIZE_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KiB": 1 << 10, "M": 1 << 20, "MiB": 1 << 20, "G": 1 << 30,
              "GiB": 1 << 30}


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    rule: str
    message: str


# ----------------------------------------------------------------- what gates look at

@dataclass(frozen=True, slots=True, kw_only=True)
class Locked:
    """One package of the new lock, on one architecture."""

    arch: str
    name: str
    version: str
    license: str


class OutputItem(Protocol):
    """An output change of the plan (gitops.plan.OutputChange)."""

    @property
    def arch(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def size_before(self) -> int | None: ...
    @property
    def size_delta(self) -> int: ...


class ChangeItem(Protocol):
    """A package change of the plan (gitops.plan.PackageChange)."""

    @property
    def arch(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def new(self) -> str | None: ...


class CalloutItem(Protocol):
    """A call-out of the plan (gitops.plan.Callout)."""

    @property
    def kind(self) -> str: ...
    @property
    def message(self) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What every gate may read besides the item it is asked about."""

    policy: Mapping[str, object]                          # the profile's policy: mapping
    acknowledged: Sequence[str]                           # vcomp plan --ack ...
    setuid_files: Callable[[ChangeItem], Sequence[str]]   # the setuid files a change's new version adds (I/O)


Messages = Iterable[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Gate:
    """One policy gate: set exactly one of the hooks ``locked``, ``output``, ``change``, ``callout``."""

    rule: str                                      # its key under policy: and the rule of its violations
    checks: str                                    # what it checks, in words
    reads: str                                     # how a violation reads (a sample)
    active: Callable[[Context], bool]              # whether the policy turns it on
    locked: Callable[[Context, Locked], Messages] | None = None
    output: Callable[[Context, OutputItem], Messages] | None = None
    change: Callable[[Context, ChangeItem], Messages] | None = None
    callout: Callable[[Context, CalloutItem], Messages] | None = None
    schema: Mapping[str, Any] | None = None        # a plugin's: the JSON schema of its value under policy: (the
                                                   # built-ins' are in schemas/profile.schema.json)


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
    if p.license and not license_ok(p.license, _strings(ctx, "allowed-licenses")):
        yield f"{p.arch}: {p.name} {p.version} is licensed {p.license}, not in allowed-licenses"


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


def _kernel_ack(_ctx: Context, c: CalloutItem) -> Messages:
    if c.kind == "kernel":
        yield f"{c.message}: acknowledge it with --ack kernel"


GATES: tuple[Gate, ...] = (
    Gate(rule="denied-packages", checks="no package of the new lock is in the list",
         reads="x86_64: telnetd is denied by policy", active=_has("denied-packages"), locked=_denied),
    Gate(rule="allowed-licenses", checks="every package of the new lock that states a license has one allowed "
                                         "(an SPDX OR needs one allowed branch, an AND all its parts)",
         reads="x86_64: foo 1.0.0 is licensed GPL-3.0-only, not in allowed-licenses",
         active=lambda ctx: ctx.policy.get("allowed-licenses") is not None, locked=_licensed),
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
)


def plugin_problem(gate: Gate) -> str:
    """What is wrong with a plugin's gate ("" when nothing; composer.plugins.load refuses it with that)."""
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,63}", gate.rule):
        return f"rule '{gate.rule}' is not 1-64 of a-z, 0-9, '-' starting with a letter"
    hooks = [h for h in (gate.locked, gate.output, gate.change, gate.callout) if h is not None]
    if len(hooks) != 1 or not all(callable(h) for h in (*hooks, gate.active)):
        return "set active and exactly one of the hooks locked, output, change, callout (functions)"
    if not isinstance(gate.schema, Mapping):
        return "schema must be the JSON schema of its value under the profile's policy:"
    try:
        Draft202012Validator.check_schema(dict(gate.schema))
    except SchemaError as exc:
        return f"its schema is not a JSON schema: {exc.message}"
    return ""


POLICY_GATES: Registry[Gate] = Registry(GATES, group="vcomp.policies", kind="policy gate", row_type=Gate,
                                        name_of=lambda g: g.rule, check=plugin_problem)
"""The gates by rule: :data:`GATES`, then the gates plugins add (``vcomp.policies``; docs/plugins.md)."""


def every_gate() -> tuple[Gate, ...]:
    """The gates :func:`evaluate` asks by default: :data:`GATES` (looked up now), then the plugins' gates."""
    return (*GATES, *POLICY_GATES.plugin_rows().values())


# ----------------------------------------------------------------- evaluation

C = TypeVar("C", bound=ChangeItem)


def evaluate(policy: Mapping[str, object], *, locked: Iterable[Locked], outputs: Sequence[OutputItem],
             changes: Sequence[C], callouts: Sequence[CalloutItem], acknowledged: Sequence[str] = (),
             setuid: Callable[[C], Sequence[str]] = lambda _c: (),
             gates: Sequence[Gate] | None = None) -> list[Violation]:
    """The violations of ``policy`` by a plan, in a stable order (see the module doc).

    ``gates``: the table (default :func:`every_gate`, looked up at the call). ``setuid``: the setuid files a
    changed package's new version adds (I/O: called only when a gate asks, through ``Context.setuid_files``)."""
    # the gates are only ever handed the changes given here, so each is a C again
    ctx = Context(policy=policy, acknowledged=tuple(acknowledged), setuid_files=lambda c: setuid(cast(C, c)))
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
            yield Locked(arch=arch, name=p.name, version=p.version, license=p.license or "")


def parse_size(text: str) -> int:
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)", text.strip())
    if not m or m.group(2) not in SIZE_UNITS:
        raise ValueError(f"not a size: {text!r}")
    return int(float(m.group(1)) * SIZE_UNITS[m.group(2)])


def license_ok(expression: str, allowed: Sequence[str]) -> bool:
    """An SPDX expression is allowed when every alternative of some OR branch is allowed."""
    branches = [b.strip(" ()") for b in re.split(r"\s+OR\s+", expression)]
    return any(all(part.strip(" ()") in allowed for part in re.split(r"\s+AND\s+", b)) for b in branches)
