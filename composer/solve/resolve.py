"""Resolution with libsolv over a verified index: requested packages, drivers, capabilities, features.

The pool (``composer.solve.pool``) carries every version as a letters-only libsolv EVR (libsolv's "newest" is
ours) and every alternative of a relation as its exact candidate set, so every candidate libsolv may pick is
one that the package's relation accepts. On top, apt's preferences (design14 §2.3), as favor jobs appended
weakest first (libsolv: a later favor wins, pinned by tests/unit/test_resolve_prefer.py):

1. packages of Priority standard, important, required (apt's choice among the providers of a virtual name);
2. for a name reached that has a real package and providers, the real package (deepest first);
3. for every ``A | B`` clause reachable from the request (breadth-first over requires, every alternative and
   every provider), its first satisfiable alternative, deepest first (a clause nearer the request wins);

then ``SOLVER_FLAG_FOCUS_BEST`` (newest versions), and a post-solve loop (at most 3 more rounds): a chosen
package's single-alternative requirement that a provider satisfied although a real package of that name would
has the real package added as a weak install (apt's ``lsb-base``), and the weak dependencies the profile turns on
(:class:`WeakDeps`) are added as weak installs. A requested name that is only virtual with several providers is
refused, listing them (apt's behaviour). Failures are explained once, at the boundary, in package terms.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import solv

from composer.errors import UserError
from composer.repo.index import IndexEntry, close_names
from composer.solve.evr import Solvable
from composer.solve.explain import explain
from composer.solve.lockmodel import ESSENTIAL, REQUESTED, Reason
from composer.solve.policy import CONFUSION_HINT, RepoPolicy, confusions, consider, exclusions
from composer.solve.pool import SolvIndex, dependencies
from composer.solve.relations import REQUIRE_KEYS, WEAK_KEYS, clause_names, split_provide

BASE_MODES = ("essential", "required", "none")
MAX_EXTRA_ROUNDS = 3


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


@dataclass(frozen=True, slots=True, kw_only=True)
class WeakDeps:
    """Which weak dependencies become installs (design14 §2.4): every package's recommends (libsolv's own
    recommends handling), every package's suggests, and per package name its recommends and/or suggests."""

    recommends: bool = False
    suggests: bool = False
    packages: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def kinds(self, name: str) -> tuple[str, ...]:
        """The weak dependency kinds of package ``name`` that become weak install jobs."""
        own = self.packages.get(name, ())
        return tuple(k for k in WEAK_KEYS if k in own or (k == "suggests" and self.suggests))


NO_WEAK = WeakDeps()


def required_names(entry: IndexEntry, features: Iterable[str] = ()) -> list[str]:
    """Every name a package requires: its ``[dependencies]`` in force and every alternative of its requires and
    pre-requires clauses (in order, once)."""
    names = [n for n, _ in dependencies(entry, features)]
    names += [n for key in REQUIRE_KEYS for text in entry.relations.get(key, ()) for n in clause_names(text)]
    return list(dict.fromkeys(names))


def base_requests(index: SolvIndex, mode: str) -> list[Request]:
    """The base set (design14 §2.5) as requests with reason ``essential``: ``essential`` = the packages marked
    essential, ``required`` adds Priority required (debootstrap's minbase), ``none`` = nothing."""
    if mode not in BASE_MODES:
        raise UserError(f"unknown base set {mode!r}", hint=f"use one of: {', '.join(BASE_MODES)}")
    if mode == "none":
        return []
    names = {str(index.pool.id2solvable(index.first + k).name)
             for k in index.table.essential_rows(required=mode == "required")}
    return [Request(name=n, reason=ESSENTIAL) for n in sorted(names)]


def _last_of_each(items: list[tuple[int, Any]]) -> list[Any]:
    """Keys ordered deepest first (stable), each kept only at its last place: libsolv's last favor of a
    solvable is the one that counts, so dropping the earlier duplicates changes nothing."""
    ordered = sorted(items, key=lambda t: -t[0])
    last = {key: i for i, (_, key) in enumerate(ordered)}
    return [key for i, (_, key) in enumerate(ordered) if last[key] == i]


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
        """The solvables that satisfy (name, req): versions that match, and providers (any for '*', versioned
        provides that match otherwise)."""
        return [s for s in self.pool.whatprovides(self.index.dep(name, req)) if s.id not in self.excluded]

    # ---- solving
    def solve(self, requests: Sequence[Request], *, keep: Mapping[str, str] = {},
              weak: WeakDeps = NO_WEAK) -> list[Chosen]:
        pool, index = self.pool, self.index
        cands = [self.candidates(r.name, r.requirement) for r in requests]
        errors = [self._unknown(r) for r, c in zip(requests, cands, strict=True) if not c]
        errors += [e for r, c in zip(requests, cands, strict=True) if c and (e := self._virtual(r, c))]
        if errors:
            raise ResolveError("\n".join(errors), hint="check the names and versions in the profile")
        jobs = [index.request_job(r.name, r.requirement) for r in requests]
        for r, c in zip(requests, cands, strict=True):  # features enable optional deps of the newest candidate
            if r.features:
                named = [index.entry(s.id) for s in c if s.name == r.name] or [index.entry(s.id) for s in c]
                best = max(named, key=lambda e: e.order_key())
                for name, req in dependencies(best, r.features):
                    jobs.append(pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE_PROVIDES,
                                         index.dep(name, req)))
        jobs += self.preferences([r.name for r in requests])
        for name, version in sorted(keep.items()):  # prefer the locked versions (--update moves the others)
            for s in index.named(name):
                if version in (index.entry(s.id).version, index.entry(s.id).version_text):
                    jobs.append(pool.Job(solv.Job.SOLVER_FAVOR | solv.Job.SOLVER_SOLVABLE, s.id))
        extra: list[Any] = []
        asked: set[tuple[str, int | str]] = set()
        rounds = 0
        while True:
            solver = pool.Solver()
            solver.set_flag(solv.Solver.SOLVER_FLAG_IGNORE_RECOMMENDED, 0 if weak.recommends else 1)
            solver.set_flag(solv.Solver.SOLVER_FLAG_FOCUS_BEST, 1)
            problems = solver.solve(jobs + extra)
            if problems:
                raise ResolveError(explain(index, problems, [(r.name, r.requirement) for r in requests]),
                                   hint="apply one of the suggested fixes to the profile")
            chosen = [s.id for s in solver.transaction().newsolvables()]
            if self.check_origins(chosen, requests):
                continue
            more = [j for j in self._weak_jobs(chosen, weak, {r.name for r in requests}) if j not in asked]
            if not more or rounds >= MAX_EXTRA_ROUNDS:
                return self._reasons(chosen, requests)
            rounds += 1
            asked.update(more)
            for kind, what in more:
                how = solv.Job.SOLVER_SOLVABLE_NAME if kind == "name" else solv.Job.SOLVER_SOLVABLE_PROVIDES
                dep = pool.str2id(str(what)) if kind == "name" else index.clause_dep(int(what))
                extra.append(pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_WEAK | how, dep))

    def preferences(self, names: Sequence[str]) -> list[Any]:
        """apt's preferences as favor jobs, weakest first (module doc): Priority, real package over providers,
        first alternatives; breadth-first from ``names`` over the clause table."""
        pool, index, table = self.pool, self.index, self.index.table
        jobs = [pool.Job(solv.Job.SOLVER_FAVOR | solv.Job.SOLVER_SOLVABLE, index.first + k)
                for _, k in table.ranked()]
        if not table.choices:   # no clause with alternatives, no name with a real package and providers
            return jobs
        real: list[tuple[int, str]] = []
        first: list[tuple[int, int]] = []
        seen_names: set[str] = set()
        seen: set[int] = set()
        queue = deque((n, 0) for n in names)
        while queue:
            name, depth = queue.popleft()
            if name in seen_names:
                continue
            seen_names.add(name)
            for s in pool.whatprovides(pool.str2id(name)):
                k = index.member_number(s.id)
                if s.id in seen or k is None or not 0 <= k < table.n_rows:
                    continue
                seen.add(s.id)
                for c in table.requires(k):
                    a, alt_names, mixed = table.clause_info(c)
                    if a is not None:
                        first.append((depth, a))
                    queue.extend((n, depth + 1) for n in alt_names if n not in seen_names)
                    real.extend((depth, n) for n in mixed)
        jobs += [pool.Job(solv.Job.SOLVER_FAVOR | solv.Job.SOLVER_SOLVABLE_NAME, pool.str2id(n))
                 for n in _last_of_each(real)]
        jobs += [pool.Job(solv.Job.SOLVER_FAVOR | solv.Job.SOLVER_SOLVABLE_PROVIDES, index.alt_dep(a))
                 for a in _last_of_each(first)]
        return jobs

    def _weak_jobs(self, chosen: Sequence[int], weak: WeakDeps, requested: set[str]) -> list[tuple[str, int | str]]:
        """What the next round adds as weak installs: real packages a provider stood in for (apt installs the
        real one, unless a requested package provides it: apt marks what is asked for before any dependency),
        and the weak dependencies turned on for the chosen packages."""
        index, table = self.index, self.index.table
        names = {sid: str(self.pool.id2solvable(sid).name) for sid in chosen}
        asked = {sid for sid, n in names.items() if n in requested}
        asked_provides = {split_provide(p)[0] for sid in asked for p in index.entry(sid).provides}
        out: list[tuple[str, int | str]] = []
        for sid in chosen:
            row = index.row_clauses(sid)
            if row is None:
                continue
            for c in row.requires:
                alts = table.clause(c)
                if len(alts) == 1:
                    alt = table.alt(alts[0])
                    if (alt.mixed and alt.name not in requested and alt.name not in names.values()
                            and self._real_satisfies(alt.name, alt.cands)
                            and not (alt.name in asked_provides and (alt.cands is None or any(
                                index.first + k in asked for k in alt.cands)))):
                        out.append(("name", alt.name))
            for kind in weak.kinds(names[sid]):
                out += [("clause", c) for c in row.weak(kind)]
        return list(dict.fromkeys(out))

    def _real_satisfies(self, name: str, cands: tuple[int, ...] | None) -> bool:
        return cands is None or any(self.pool.id2solvable(self.index.first + k).name == name for k in cands)

    def _virtual(self, r: Request, cands: Sequence[Solvable]) -> str:
        """apt refuses to install a virtual name that several packages provide: the profile must say which."""
        providers = sorted({str(s.name) for s in cands})
        if r.name.startswith("driver:") or r.name in providers or len(providers) < 2:
            return ""
        return (f"'{r.name}' ({r.reason}) for {self.arch} is a virtual package provided by: {', '.join(providers)}; "
                "request one of them")

    def check_origins(self, chosen: Sequence[int], requests: Sequence[Request]) -> bool:
        """Refuse an answer that took a name two repositories serve without a pin or priority saying which;
        True when a priority excluded more providers (solve again), False when the answer stands."""
        index = self.index
        needed = {r.name: r.reason.text for r in requests}
        features = {r.name: r.features for r in requests}
        for sid in chosen:
            e = index.entry(sid)
            for name in required_names(e, features.get(e.name, ())):
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
            shown = ", ".join(dict.fromkeys(versions))
            return f"no version of '{r.name}' for {self.arch} matches '{r.requirement}' (available: {shown})"
        close = close_names(r.name, sorted(self.index.names()))
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"no package '{r.name}' for {self.arch} in the repositories ({r.reason}){hint}"

    def _reasons(self, chosen: Sequence[int], requests: Sequence[Request]) -> list[Chosen]:
        """Why each package is there: requested / essential / driver for X / dependency of Y (first path, BFS,
        over every alternative of every requires clause), then recommended by / suggested by X."""
        index = self.index
        entries = {index.entry(sid).name: index.entry(sid) for sid in chosen}
        origins = {index.entry(sid).name: index.origin(sid) for sid in chosen}
        provided: dict[str, list[IndexEntry]] = {}
        for e in entries.values():
            for p in (e.name, *(split_provide(x)[0] for x in e.provides)):
                provided.setdefault(p, []).append(e)
        reason: dict[str, Reason] = {}
        order: list[IndexEntry] = []
        queue: deque[IndexEntry] = deque()
        features: dict[str, tuple[str, ...]] = {r.name: r.features for r in requests}

        def mark(names: Iterable[str], why: Reason) -> None:
            for name in names:
                for dep in sorted(provided.get(name, []), key=lambda x: x.name):
                    if dep.name not in reason:
                        reason[dep.name] = why
                        queue.append(dep)
                        order.append(dep)

        for r in requests:
            mark([r.name], r.reason)

        def walk() -> None:
            while queue:
                e = queue.popleft()
                mark(required_names(e, features.get(e.name, ())), Reason.dependency_of(e.name))

        walk()
        done = 0
        while done < len(order):   # then what weak dependencies pulled in, and what that requires
            e = order[done]
            done += 1
            for kind, why in (("recommends", Reason.recommended_by), ("suggests", Reason.suggested_by)):
                mark([n for text in e.relations.get(kind, ()) for n in clause_names(text)], why(e.name))
            walk()
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
