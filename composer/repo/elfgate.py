"""The repository's ELF and security gate at ``repo add``: policy (``[policy]`` in repo.toml) and the pure
decision over scanned packages. See docs/elf-checks.md.

``[policy]`` keys (all optional)::

    needed = "warn"          # a NEEDED soname no package of the dependency closure provides (default warn: the
                             # library may come from another repository of the profile; lock always refuses)
    abi-break = "warn"       # a new version drops exported symbols or a soname its dependents need (default warn)
    rpath = "warn"           # unsafe RPATH/RUNPATH (default warn)
    secrets = "warn"         # private keys and tokens shipped (default warn)
    setuid = "warn"          # setuid/setgid files (default warn)
    yara = "warn"            # a bundled or repository YARA rule matches (default warn)
    hardening-min = 0        # the package's hardening score must be at least this (0-100; default 0: off)
    yara-rules = []          # more .yar files (relative to repo.toml), compiled with the bundled ones
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from composer.errors import UserError
from composer.package.hardening import hardening_report
from composer.package.linkcheck import AbiBreak, rpath_problems
from composer.package.payloadscan import PackageScan

ACTIONS = ("deny", "warn", "allow")
RULE_KEYS = ("needed", "abi-break", "rpath", "secrets", "setuid", "yara")
DEFAULTS = {"needed": "warn", "abi-break": "warn", "rpath": "warn", "secrets": "warn", "setuid": "warn",
            "yara": "warn"}


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoPolicy:
    actions: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULTS))
    hardening_min: int = 0
    yara_rules: tuple[str, ...] = ()

    def action(self, key: str) -> str:
        return self.actions.get(key, DEFAULTS[key])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in sorted(self.actions.items()) if DEFAULTS.get(k) != v}
        if self.hardening_min:
            out["hardening-min"] = self.hardening_min
        if self.yara_rules:
            out["yara-rules"] = list(self.yara_rules)
        return out

    @classmethod
    def from_dict(cls, raw: Any, origin: str) -> RepoPolicy:
        """Every problem of ``[policy]`` at once, in one error naming the key and the fix."""
        if not isinstance(raw, Mapping):
            raise UserError(f"{origin}: [policy] must be a table", hint="see docs/elf-checks.md")
        problems: list[str] = []
        actions = dict(DEFAULTS)
        for key, value in raw.items():
            if key in RULE_KEYS:
                if value not in ACTIONS:
                    problems.append(f"policy.{key} = {value!r} is not one of {', '.join(ACTIONS)}")
                else:
                    actions[key] = value
            elif key == "hardening-min":
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
                    problems.append(f"policy.hardening-min = {value!r} is not a whole number from 0 to 100")
            elif key == "yara-rules":
                if not isinstance(value, list) or not all(isinstance(v, str) and v.endswith(".yar") for v in value):
                    problems.append("policy.yara-rules must be a list of .yar file paths")
            else:
                known = ", ".join((*RULE_KEYS, "hardening-min", "yara-rules"))
                problems.append(f"policy.{key} is not a policy key ({known})")
        if problems:
            raise UserError(f"{origin}: " + "; ".join(problems),
                            hint="fix [policy] in repo.toml (docs/elf-checks.md)")
        return cls(actions=actions, hardening_min=int(raw.get("hardening-min", 0)),
                   yara_rules=tuple(raw.get("yara-rules", ())))


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def _sort(policy: RepoPolicy, key: str, lines: Sequence[str], errors: list[str], warnings: list[str]) -> None:
    act = policy.action(key)
    if act == "deny":
        errors.extend(lines)
    elif act == "warn":
        warnings.extend(lines)


def judge(policy: RepoPolicy, *, nva: str, scan: PackageScan, setuid: Sequence[str], missing: Sequence[str],
          breaks: Sequence[tuple[AbiBreak, Sequence[str]]]) -> Verdict:
    """What the policy makes of one package's findings: ``missing`` NEEDED lines, ABI ``breaks`` with the
    dependents that need a rebuild, the scan's RPATHs, secrets, YARA matches and hardening score, ``setuid``
    paths."""
    errors: list[str] = []
    warnings: list[str] = []
    _sort(policy, "needed", [f"{nva}: {m}" for m in missing], errors, warnings)
    _sort(policy, "abi-break", [f"{nva}: ABI break: {b.describe()}; dependents to rebuild: "
                                f"{', '.join(deps) or 'none in the repository'}" for b, deps in breaks],
          errors, warnings)
    _sort(policy, "rpath", [f"{nva}: {p}" for info in scan.elves for p in rpath_problems(info)], errors, warnings)
    _sort(policy, "secrets", [f"{nva}: /{m.path} holds a secret ({m.kind} at byte {m.offset})" for m in scan.secrets],
          errors, warnings)
    _sort(policy, "yara", [f"{nva}: /{m.path} matches YARA rule {m.kind.removeprefix('yara:')}" for m in scan.yara],
          errors, warnings)
    _sort(policy, "setuid", [f"{nva}: /{p} is setuid/setgid" for p in setuid], errors, warnings)
    if policy.hardening_min:
        report = hardening_report(scan.elves)
        if report.score < policy.hardening_min:
            worst = ", ".join(f"/{f.path} lacks {'+'.join(f.missing)}" for f in report.findings[:3])
            errors.append(f"{nva}: hardening score {report.score} is below the repository's minimum "
                          f"{policy.hardening_min} ({worst})")
    return Verdict(errors=tuple(errors), warnings=tuple(warnings))
