"""A failed solve explained in the packages' own terms: libsolv's problem rules and solutions, with
solvables shown as 'name version' and dependency ids as 'name requirement'."""

from __future__ import annotations

import re
from collections.abc import Sequence

import solv

from composer.solve.evr import Solvable, SolvProblem
from composer.solve.pool import STAR, SolvIndex, dependencies

_EDGE_BEFORE = r"(?<![A-Za-z0-9._+:~-])"  # a replaced name or solvable is a whole token
_EDGE_AFTER = r"(?![A-Za-z0-9_+:~-]|\.[A-Za-z0-9])"


def _ours(index: SolvIndex, s: Solvable) -> bool:
    """A solvable of the index or of the installed packages (not libsolv's own system solvable)."""
    return s.repo is not None and any(s.repo == r for r in (index.repo, index.installed) if r is not None)


def _nice(index: SolvIndex, s: Solvable) -> str:
    return f"{s.name} {index.entry(s.id).version_text}"


def explain(index: SolvIndex, problems: Sequence[SolvProblem], requests: Sequence[tuple[str, str]]) -> str:
    """libsolv's problem rules and solutions, with our names: 'name version', 'name requirement'."""
    names: dict[str, str] = {}
    for name, requirement in requests:
        if requirement.strip() not in STAR:
            names[str(solv.Dep(index.pool, index.dep(name, requirement)))] = f"{name} {requirement}"
    raw: list[tuple[list[str], list[str]]] = []
    for p in problems:
        rules = []
        for rule in p.findallproblemrules():
            info = rule.info()
            for s in (info.solvable, info.othersolvable):
                if s is not None and _ours(index, s):
                    names[str(s)] = _nice(index, s)
            if info.solvable is not None and _ours(index, info.solvable) and info.dep is not None:
                for n, req in dependencies(index.entry(info.solvable.id)):
                    if index.dep(n, req) == info.dep.id and req.strip() not in STAR:
                        names[str(info.dep)] = f"{n} {req}"
            rules.append(info.problemstr())
        fixes = []
        for sol in p.solutions():
            for e in sol.elements(True):
                for s in (e.solvable, e.replacement):
                    if s is not None and _ours(index, s):
                        names[str(s)] = _nice(index, s)
            fixes.append(", ".join(str(e) for e in sol.elements(True)))
        raw.append((rules, fixes))
    keys = "|".join(re.escape(k) for k in sorted(names, key=len, reverse=True))
    pattern = re.compile(f"{_EDGE_BEFORE}({keys}){_EDGE_AFTER}")

    def pretty(text: str) -> str:
        return pattern.sub(lambda m: names[m.group(1)], text) if names else text

    lines = [f"cannot resolve the profile for {index.arch}:"]
    for i, (rules, fixes) in enumerate(raw, 1):
        lines.append(f"  problem {i}:")
        lines += [f"    - {pretty(t)}" for t in rules]
        if fixes:
            lines.append("    possible fixes: " + " | ".join(pretty(f) for f in fixes[:4]))
    return "\n".join(lines)
