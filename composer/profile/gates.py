"""The types of a policy gate and the registry of gates (pure: no I/O): what a gate looks at, the row, the
registry ``POLICY_GATES`` that plugins add rows to (``vcomp.policies``, docs/plugins.md).

The built-in gates and the evaluation are :mod:`composer.gitops.policy`, which puts its rows into
:data:`POLICY_GATES` when imported. The types live here, under the profile layer, because the profile's
schema is completed from the plugins' gates (the ``policy`` key of a plugin's gate and the schema of its value):
profile validation must not import the gitops layer. A plugin may not take the key of a built-in gate: those
keys are the ``policy`` properties of schemas/profile.schema.json (tests/unit/test_policy_gates.py keeps
them equal to the built-in rows).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from composer import schema
from composer.plugins.registry import Registry

# ----------------------------------------------------------------- what gates look at

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
    version_scheme: str = "semver"


class AdvisoryItem(Protocol):
    """An advisory that covers a locked package (composer.advisory.match.Finding)."""

    @property
    def id(self) -> str: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...
    @property
    def severity(self) -> str: ...
    @property
    def fixed(self) -> tuple[str, ...]: ...


def _no_advisories(_p: Locked) -> Sequence[AdvisoryItem]:
    return ()


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
    advisories: Callable[[Locked], Sequence[AdvisoryItem]] = _no_advisories   # the advisories covering a package


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


def builtin_keys() -> frozenset[str]:
    """The keys of the built-in gates: the ``policy`` properties of schemas/profile.schema.json."""
    return frozenset(schema.load("profile.schema.json")["properties"]["policy"]["properties"])


POLICY_GATES: Registry[Gate] = Registry((), group="vcomp.policies", kind="policy gate", row_type=Gate,
                                        name_of=lambda g: g.rule, check=plugin_problem, reserved=builtin_keys)
"""The gates by rule: the built-in ones (:data:`composer.gitops.policy.GATES`, added when that module is
imported), then the gates plugins add."""
