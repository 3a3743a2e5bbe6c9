"""Resolution with libsolv over a verified index: requested packages, drivers, capabilities, features.

Requirement semantics stay ours: each dependency becomes the exact set of candidate solvables whose
version satisfies it under ``composer.version`` (SemVer precedence, Cargo requirements and their
pre-release rules), expressed to libsolv as an OR of exact versions. libsolv orders candidates by an
EVR that is the zero-padded rank of the version among that name's versions, so "newest" is SemVer's
newest. Failures are explained once, at the boundary, in package terms.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import solv

from composer.errors import UserError
from composer.repo.index import IndexEntry, close_names
from composer.version import Requirement, Version


@functools.lru_cache(maxsize=1 << 16)
def _version(text: str) -> Version:
    return Version.parse(text)


@functools.lru_cache(maxsize=1 << 14)
def _requirement(text: str) -> Requirement:
    return Requirement.parse(text)


class ResolveError(UserError):
    """The request cannot be satisfied; the message explains why and how to fix it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    name: str
    requirement: str = "*"
    features: tuple[str, ...] = ()
    reason: str = "requested"


@dataclass(frozen=True, slots=True, kw_only=True)
class Chosen:
    entry: IndexEntry
    reason: str
    optional_capabilities: tuple[str, ...] = ()


def _deps(entry: IndexEntry, features: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(name, requirement) of the dependencies in force: required ones, plus optional ones a feature enables."""
    enabled: set[str] = set()
    todo = list(features)
    while todo:
        f = todo.pop()
        for item in entry.features.get(f, []):
            dep = str(item).split("/", 1)[0]
            if dep in entry.features and dep not in enabled:
                todo.append(dep)
            enabled.add(dep)
    out = []
    for name, value in sorted(entry.dependencies.items()):
        req = value if isinstance(value, str) else value.get("version", "*")
        optional = isinstance(value, Mapping) and value.get("optional", False)
        if not optional or name in enabled:
            out.append((name, req))
    return out


class Resolver:
    def __init__(self, entries: Sequence[IndexEntry], arch: str) -> None:
        self.arch = arch
        self.entries = [e for e in entries if e.arch in (arch, "noarch")]
        self.by_name: dict[str, list[IndexEntry]] = {}
        self.providers: dict[str, list[IndexEntry]] = {}
        for e in self.entries:
            self.by_name.setdefault(e.name, []).append(e)
            for p in e.provides:
                self.providers.setdefault(p, []).append(e)
        self.pool = solv.Pool()
        self.pool.setarch(arch)
        self.repo = self.pool.add_repo("index")
        self.solvable: dict[int, IndexEntry] = {}
        self.nice: dict[str, str] = {}
        self._candidates: dict[tuple[str, str], list[IndexEntry]] = {}
        self._deps: dict[tuple[str, str], int] = {}
        self._build()

    # ---- pool
    def _build(self) -> None:
        pool = self.pool
        ranks: dict[tuple[str, str], int] = {}
        for name, items in self.by_name.items():
            ordered = sorted({e.version for e in items}, key=lambda v: _version(v).precedence_key())
            for i, v in enumerate(ordered):
                ranks[(name, v)] = i + 1
        self.evr = {(e.name, e.version): f"{ranks[(e.name, e.version)]:08d}" for e in self.entries}
        made: list[tuple[Any, IndexEntry]] = []
        for e in sorted(self.entries, key=lambda e: (e.name, ranks[(e.name, e.version)], e.arch)):
            s = self.repo.add_solvable()
            s.name, s.evr, s.arch = e.name, self.evr[(e.name, e.version)], e.arch
            s.add_deparray(solv.SOLVABLE_PROVIDES, pool.rel2id(s.nameid, s.evrid, solv.REL_EQ))
            for p in e.provides:
                s.add_deparray(solv.SOLVABLE_PROVIDES, pool.str2id(p))
            made.append((s, e))
            self.nice[str(s)] = f"{e.name} {e.version}"
        for s, e in made:
            for name, req in _deps(e):
                s.add_deparray(solv.SOLVABLE_REQUIRES, self.dep(name, req))
            for c in e.conflicts:
                s.add_deparray(solv.SOLVABLE_CONFLICTS, pool.str2id(c))
            self.solvable[s.id] = e
        self.repo.internalize()
        pool.createwhatprovides()

    def candidates(self, name: str, req: str) -> list[IndexEntry]:
        key = (name, req)
        if key not in self._candidates:
            r = _requirement(req)
            exact = [e for e in self.by_name.get(name, []) if r.matches(_version(e.version))]
            virtual = self.providers.get(name, []) if req.strip() in ("*", "") else []
            self._candidates[key] = exact + [e for e in virtual if e not in exact]
        return self._candidates[key]

    def dep(self, name: str, req: str) -> int:
        """A libsolv dependency satisfied exactly by the candidates of (name, req)."""
        key = (name, req)
        if key not in self._deps:
            self._deps[key] = self._make_dep(name, req)
        return self._deps[key]

    def _make_dep(self, name: str, req: str) -> int:
        pool = self.pool
        cands = self.candidates(name, req)
        if not cands:  # an unknown id: libsolv reports "nothing provides NAME REQ needed by ..."
            return int(pool.str2id(f"{name} {req}" if req.strip() not in ("*", "") else name))
        dep = 0
        for e in cands:
            one = pool.rel2id(pool.str2id(e.name), pool.str2id(self.evr[(e.name, e.version)]), solv.REL_EQ)
            dep = one if dep == 0 else pool.rel2id(dep, one, solv.REL_OR)
        return int(dep)

    # ---- solving
    def solve(self, requests: Sequence[Request], *, keep: Mapping[str, str] = {}) -> list[Chosen]:
        pool = self.pool
        errors = [self._unknown(r) for r in requests if not self.candidates(r.name, r.requirement)]
        if any(errors):
            raise ResolveError("\n".join(e for e in errors if e), hint="check the names and versions in the profile")
        jobs = [pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE_PROVIDES,
                         self.dep(r.name, r.requirement)) for r in requests]
        for r in requests:  # features enable optional dependencies of the newest matching candidate
            if r.features:
                best = max(self.candidates(r.name, r.requirement),
                           key=lambda e: Version.parse(e.version).precedence_key())
                for name, req in _deps(best, r.features):
                    jobs.append(pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE_PROVIDES,
                                         self.dep(name, req)))
        for name, version in sorted(keep.items()):  # prefer the locked versions (--update moves the others)
            if (name, version) in self.evr:
                d = pool.rel2id(pool.str2id(name), pool.str2id(self.evr[(name, version)]), solv.REL_EQ)
                jobs.append(pool.Job(solv.Job.SOLVER_FAVOR | solv.Job.SOLVER_SOLVABLE_PROVIDES, d))
        solver = pool.Solver()
        problems = solver.solve(jobs)
        if problems:
            raise ResolveError(self._explain(problems), hint="apply one of the suggested fixes to the profile")
        chosen = [self.solvable[s.id] for s in solver.transaction().newsolvables()]
        return self._reasons(chosen, requests)

    def _unknown(self, r: Request) -> str:
        if r.name.startswith("driver:"):
            drivers = sorted(p.removeprefix("driver:") for p in self.providers if p.startswith("driver:"))
            return (f"no package provides driver '{r.name.removeprefix('driver:')}' for {self.arch} "
                    f"(available: {', '.join(drivers) or 'none'})")
        if r.name in self.by_name:
            versions = ", ".join(sorted({e.version for e in self.by_name[r.name]},
                                        key=lambda v: Version.parse(v).precedence_key()))
            return f"no version of '{r.name}' for {self.arch} matches '{r.requirement}' (available: {versions})"
        close = close_names(r.name, [*self.by_name, *self.providers])
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"no package '{r.name}' for {self.arch} in the repositories ({r.reason}){hint}"

    def _pretty(self, text: str) -> str:
        """Replace libsolv's names (with our internal version ranks) by 'name version'."""
        text = re.sub(r"[A-Za-z0-9._+:-]+-\d{8}\.(?:x86_64|aarch64|riscv64|noarch)",
                      lambda m: self.nice.get(m.group(0), m.group(0)), text)
        by_rank = {(n, r): v for (n, v), r in self.evr.items()}
        return re.sub(r"([A-Za-z0-9._+:-]+) = (\d{8})",
                      lambda m: f"{m.group(1)} {by_rank.get((m.group(1), m.group(2)), m.group(2))}", text)

    def _explain(self, problems: Sequence[Any]) -> str:
        lines = [f"cannot resolve the profile for {self.arch}:"]
        for i, p in enumerate(problems, 1):
            lines.append(f"  problem {i}:")
            for rule in p.findallproblemrules():
                lines.append(f"    - {self._pretty(rule.info().problemstr())}")
            fixes = [", ".join(self._pretty(str(e)) for e in sol.elements(True)) for sol in p.solutions()]
            if fixes:
                lines.append("    possible fixes: " + " | ".join(fixes[:4]))
        return "\n".join(lines)

    def _reasons(self, chosen: Sequence[IndexEntry], requests: Sequence[Request]) -> list[Chosen]:
        """Why each package is there: requested / driver for X / dependency of Y (first path, BFS)."""
        by_name = {e.name: e for e in chosen}
        provided: dict[str, list[IndexEntry]] = {}
        for e in chosen:
            for p in (e.name, *e.provides):
                provided.setdefault(p, []).append(e)
        reason: dict[str, str] = {}
        queue: deque[IndexEntry] = deque()
        features: dict[str, tuple[str, ...]] = {r.name: r.features for r in requests}
        for r in requests:
            for e in provided.get(r.name, []):
                if e.name not in reason:
                    reason[e.name] = r.reason
                    queue.append(e)
        while queue:
            e = queue.popleft()
            for name, _req in _deps(e, features.get(e.name, ())):
                for dep in sorted(provided.get(name, []), key=lambda x: x.name):
                    if dep.name not in reason:
                        reason[dep.name] = f"dependency of {e.name}"
                        queue.append(dep)
        return [Chosen(entry=by_name[n], reason=reason.get(n, "dependency"),
                       optional_capabilities=tuple(by_name[n].capabilities.get("optional", [])))
                for n in sorted(by_name)]


def check_capabilities(chosen: Sequence[Chosen], granted: Iterable[str], arch: str) -> None:
    """Every package's required capabilities must be granted; the error says who pulled it in."""
    allowed = set(granted)
    reasons = {c.entry.name: c.reason for c in chosen}
    problems = []
    for c in chosen:
        for cap in c.entry.capabilities.get("required", []):
            if cap not in allowed:
                chain = [c.entry.name]
                while reasons.get(chain[-1], "").startswith("dependency of "):
                    chain.append(reasons[chain[-1]].removeprefix("dependency of "))
                why = " <- ".join(chain) + f" ({reasons.get(chain[-1], 'requested')})"
                problems.append(f"package '{c.entry.name}' ({arch}) requires capability '{cap}', which the profile "
                                f"does not grant; it is pulled in by: {why}")
    if problems:
        raise ResolveError("\n".join(problems),
                           hint="grant the capability under 'capabilities:' or remove what pulls the package in")
