"""Resolution with libsolv over a verified index: requested packages, drivers, capabilities, features.

The pool (``composer.solve.pool``) carries SemVer versions as native libsolv EVRs and Cargo
requirements as native relations (exact candidate sets where Cargo's pre-release rule is not an
interval), so libsolv's "newest" is SemVer's newest and every candidate it may pick is one that
``composer.version`` accepts. Failures are explained once, at the boundary, in package terms.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import solv

from composer.errors import UserError
from composer.repo.index import IndexEntry, close_names
from composer.solve.evr import Solvable
from composer.solve.explain import explain
from composer.solve.lockmodel import REQUESTED, Reason
from composer.solve.policy import CONFUSION_HINT, RepoPolicy, confusions, consider, exclusions
from composer.solve.pool import STAR, SolvIndex, dependencies, parse_requirement, parse_version


class ResolveError(UserError):
    """The request cannot be satisfied; the message explains why and how to fix it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    name: str
    requirement: str = "*"
    features: tuple[str, ...] = ()
    reason: Reason = REQUESTED


@dataclass(frozen=True, slots=True, kw_only=True)
class Chosen:
    entry: IndexEntry
    reason: Reason
    origin: str = ""
    optional_capabilities: tuple[str, ...] = ()


class Resolver:
    def __init__(self, index: SolvIndex, policy: RepoPolicy | None = None) -> None:
        """``policy``: pins and priorities of several repositories (none: every repository is equal,
        and a name two of them serve is still an error when the answer needs it)."""
        self.index = index
        self.pool = index.pool
        self.arch = index.arch
        self.policy = policy or RepoPolicy()
        self.excluded = exclusions(index, self.policy)
        consider(index, self.excluded)

    @classmethod
    def of(cls, entries: Sequence[IndexEntry], arch: str, origin: str = "index") -> Resolver:
        """A resolver over in-memory entries (no cache)."""
        return cls(SolvIndex.build([(origin, entries)], arch))

    def candidates(self, name: str, req: str) -> list[Solvable]:
        """The solvables that satisfy (name, req): versions that match, and virtual providers for '*'."""
        r = parse_requirement(req.strip() or "*")
        star = req.strip() in STAR
        return [s for s in self.index.providers(name) if s.id not in self.excluded
                and (r.matches(parse_version(self.index.entry(s.id).version)) if s.name == name else star)]

    # ---- solving
    def solve(self, requests: Sequence[Request], *, keep: Mapping[str, str] = {}) -> list[Chosen]:
        pool, index = self.pool, self.index
        cands = [self.candidates(r.name, r.requirement) for r in requests]
        errors = [self._unknown(r) for r, c in zip(requests, cands, strict=True) if not c]
        if errors:
            raise ResolveError("\n".join(errors), hint="check the names and versions in the profile")
        jobs = [pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE_PROVIDES,
                         index.dep(r.name, r.requirement)) for r in requests]
        for r, c in zip(requests, cands, strict=True):  # features enable optional deps of the newest candidate
            if r.features:
                named = [index.entry(s.id) for s in c if s.name == r.name] or [index.entry(s.id) for s in c]
                best = max(named, key=lambda e: parse_version(e.version).precedence_key())
                for name, req in dependencies(best, r.features):
                    jobs.append(pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE_PROVIDES,
                                         index.dep(name, req)))
        for name, version in sorted(keep.items()):  # prefer the locked versions (--update moves the others)
            for s in index.named(name):
                if index.entry(s.id).version_text == version:  # a lock row's version is the text form
                    jobs.append(pool.Job(solv.Job.SOLVER_FAVOR | solv.Job.SOLVER_SOLVABLE, s.id))
        while True:
            solver = pool.Solver()
            problems = solver.solve(jobs)
            if problems:
                raise ResolveError(explain(index, problems, [(r.name, r.requirement) for r in requests]),
                                   hint="apply one of the suggested fixes to the profile")
            chosen = [s.id for s in solver.transaction().newsolvables()]
            if not self.check_origins(chosen, requests):
                return self._reasons(chosen, requests)

    def check_origins(self, chosen: Sequence[int], requests: Sequence[Request]) -> bool:
        """Refuse an answer that took a name two repositories serve without a pin or priority saying which;
        True when a priority excluded more providers (solve again), False when the answer stands."""
        index = self.index
        needed = {r.name: r.reason.text for r in requests}
        features = {r.name: r.features for r in requests}
        for sid in chosen:
            e = index.entry(sid)
            for name, _ in dependencies(e, features.get(e.name, ())):
                needed.setdefault(name, Reason.dependency_of(e.name).text)
        problems, more = confusions(index, self.policy, self.excluded, chosen, needed)
        if problems:
            raise ResolveError("\n".join(f"{self.arch}: {p}" for p in problems), hint=CONFUSION_HINT)
        if more:  # finite: every round excludes solvables that were not excluded before
            self.excluded.update(more)
            consider(index, self.excluded)
        return bool(more)

    def _unknown(self, r: Request) -> str:
        hidden = sorted({why for s in self.index.providers(r.name) if (why := self.excluded.get(s.id))})
        if hidden and not self.candidates(r.name, r.requirement):
            return (f"'{r.name}' ({r.reason}) for {self.arch} is only served by repositories the profile excludes "
                    f"for it: {'; '.join(hidden)}")
        if r.name.startswith("driver:"):
            drivers = sorted(p.removeprefix("driver:") for p in self.index.names() if p.startswith("driver:"))
            return (f"no package provides driver '{r.name.removeprefix('driver:')}' for {self.arch} "
                    f"(available: {', '.join(drivers) or 'none'})")
        versions = self.index.versions_of(r.name)
        if versions:
            shown = ", ".join(sorted(set(versions), key=lambda v: parse_version(v).precedence_key()))
            return f"no version of '{r.name}' for {self.arch} matches '{r.requirement}' (available: {shown})"
        close = close_names(r.name, sorted(self.index.names()))
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"no package '{r.name}' for {self.arch} in the repositories ({r.reason}){hint}"

    def _reasons(self, chosen: Sequence[int], requests: Sequence[Request]) -> list[Chosen]:
        """Why each package is there: requested / driver for X / dependency of Y (first path, BFS)."""
        index = self.index
        entries = {index.entry(sid).name: index.entry(sid) for sid in chosen}
        origins = {index.entry(sid).name: index.origin(sid) for sid in chosen}
        provided: dict[str, list[IndexEntry]] = {}
        for e in entries.values():
            for p in (e.name, *e.provides):
                provided.setdefault(p, []).append(e)
        reason: dict[str, Reason] = {}
        queue: deque[IndexEntry] = deque()
        features: dict[str, tuple[str, ...]] = {r.name: r.features for r in requests}
        for r in requests:
            for e in provided.get(r.name, []):
                if e.name not in reason:
                    reason[e.name] = r.reason
                    queue.append(e)
        while queue:
            e = queue.popleft()
            for name, _req in dependencies(e, features.get(e.name, ())):
                for dep in sorted(provided.get(name, []), key=lambda x: x.name):
                    if dep.name not in reason:
                        reason[dep.name] = Reason.dependency_of(e.name)
                        queue.append(dep)
        return [Chosen(entry=entries[n], reason=reason.get(n, Reason(kind="dependency")), origin=origins[n],
                       optional_capabilities=tuple(entries[n].capabilities.get("optional", [])))
                for n in sorted(entries)]


def check_capabilities(chosen: Sequence[Chosen], granted: Iterable[str], arch: str) -> None:
    """Every package's required capabilities must be granted; the error says who pulled it in."""
    allowed = set(granted)
    reasons = {c.entry.name: c.reason for c in chosen}
    problems = []
    for c in chosen:
        for cap in c.entry.capabilities.get("required", []):
            if cap not in allowed:
                chain = [c.entry.name]
                parent = reasons[chain[-1]].parent if chain[-1] in reasons else None
                while parent is not None:
                    chain.append(parent)
                    parent = reasons[parent].parent if parent in reasons else None
                why = " <- ".join(chain) + f" ({reasons.get(chain[-1], REQUESTED)})"
                problems.append(f"package '{c.entry.name}' ({arch}) requires capability '{cap}', which the profile "
                                f"does not grant; it is pulled in by: {why}")
    if problems:
        raise ResolveError("\n".join(problems),
                           hint="grant the capability under 'capabilities:' or remove what pulls the package in")
