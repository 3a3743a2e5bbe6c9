"""A failed solve explained in the packages' own terms (design14 §2.7).

libsolv reports each problem as a set of rules and a set of solutions. The explanation is built from
their structured form (``rule.info()``: type, solvable, other solvable, dependency id; a solution
element's type, solvable, replacement and job index), never by rewriting libsolv's text:

- a solvable prints as ``name <version as the package wrote it>`` (``IndexEntry.version_text``:
  ``1:2.36-9+deb12u7``, ``1.2.3-r4``), never as an EVR; a dependency id prints as the requirement it
  was made for (``SolvIndex.describe_dep``);
- every rule is printed once (deduplicated on its text across all problems); the **causes** (nothing
  provides, conflicts, one version per name, ...) come first, shallowest first (breadth-first distance
  from the request), each with its chain of "requires" rules printed once as ``X → Y → Z``;
- the fixes are libsolv's solutions in profile terms (``remove N from packages``, ``pin N to V``,
  ``allow the older N V``); "remove the request" is dropped when another fix exists; at most four.

libsolv's own text (``problemstr()``, ``str()``) is used only for rule and solution kinds this module does
not know.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import solv

from composer.solve.evr import Solvable, SolvProblem
from composer.solve.pool import STAR, SolvIndex, dependencies
from composer.solve.relations import CONFLICT_KEYS, REQUIRE_KEYS

MAX_FIXES = 4
MAX_SHOWN = 5  # versions listed after "nothing provides"
MAX_PIN_TRIES = 3  # other versions of a pinned request tried for "pin N to V" (one solve each)
ARROW = " → "
UNREACHED = 1 << 30  # the depth of a rule no request leads to (printed after the others)

_S = solv.Solver


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One problem rule as ids: ``solvable``/``other`` are solvable ids (0: none), ``dep`` a dependency id."""

    kind: int
    solvable: int
    other: int
    dep: int
    raw: str  # libsolv's text: the fallback for kinds without a formatter

    @classmethod
    def of(cls, info: solv.Ruleinfo) -> Rule:
        return cls(kind=int(info.type), solvable=info.solvable.id if info.solvable is not None else 0,
                   other=info.othersolvable.id if info.othersolvable is not None else 0,
                   dep=int(info.dep_id), raw=str(info.problemstr()))


@dataclass(frozen=True, slots=True, kw_only=True)
class Fix:
    """One suggested change in profile terms."""

    text: str
    dropped: tuple[str, ...] = ()  # the requested names it stops asking for (the last resort)


class Words:
    """Names of solvables and dependencies in the packages' own terms."""

    def __init__(self, index: SolvIndex) -> None:
        self.index = index
        self.pool = index.pool
        self._deps: dict[int, str] = {}
        self._written: dict[tuple[int, int, bool], str] = {}

    def ours(self, s: Solvable) -> bool:
        """A solvable of the index or of the installed packages (not libsolv's own system solvable)."""
        return s is not None and s.repo is not None and any(
            s.repo == r for r in (self.index.repo, self.index.installed) if r is not None)

    def name(self, sid: int) -> str:
        return str(self.pool.id2solvable(sid).name)

    def version(self, sid: int) -> str:
        s = self.pool.id2solvable(sid)
        return self.index.entry(sid).version_text if self.ours(s) else str(s.evr)

    def installed(self, sid: int) -> bool:
        return self.index.installed is not None and self.pool.id2solvable(sid).repo == self.index.installed

    def solvable(self, sid: int) -> str:
        s = self.pool.id2solvable(sid)
        if not self.ours(s):
            return "the system" if sid == solv.SYSTEMSOLVABLE else str(s)
        return f"{s.name} {self._version(sid)}"

    def _version(self, sid: int) -> str:
        return self.version(sid) + (" (installed)" if self.installed(sid) else "")

    def group(self, sids: Sequence[int]) -> str:
        """'name v1, v2' for solvables of one name (any other solvable on its own)."""
        if len(sids) == 1 or not all(self.ours(self.pool.id2solvable(s)) for s in sids):
            return ", ".join(dict.fromkeys(self.solvable(s) for s in sids))
        return f"{self.name(sids[0])} {', '.join(dict.fromkeys(self._version(s) for s in sids))}"

    def dep(self, dep: int) -> str:
        """The requirement ``dep`` was made for; a candidate set made elsewhere as its candidates
        (never as EVRs); a plain string id as itself."""
        if dep == 0:
            return "?"
        text = self._deps.get(dep)
        if text is None:
            text = self.index.describe_dep(dep)
            if text is None:
                text = self._candidates(dep) if dep < 0 else str(self.pool.id2str(dep))
            self._deps[dep] = text
        return text

    def written(self, sid: int, dep: int, *, conflict: bool = False) -> str:
        """The clause package ``sid`` wrote that made ``dep`` (a requirement, or with ``conflict`` a
        conflict or break), in its own words: several texts may share one id ('libmid ^1' and 'libmid'
        when every libmid satisfies both), and the package's own is the one to show."""
        key = (sid, dep, conflict)
        text = self._written.get(key)
        if text is None:
            text = self._written[key] = self._own(sid, dep, conflict) or self.dep(dep)
        return text

    def _own(self, sid: int, dep: int, conflict: bool) -> str | None:
        if not (sid and self.ours(self.pool.id2solvable(sid))):
            return None
        entry = self.index.entry(sid)
        keys = CONFLICT_KEYS if conflict else REQUIRE_KEYS
        for key in keys:
            for text in entry.relations.get(key, ()):
                if self.index.relation_dep(text) == dep:
                    return text
        if conflict:
            return next((c for c in entry.conflicts if self.pool.str2id(c, False) == dep), None)
        for name, requirement in dependencies(entry):
            if self.index.dep(name, requirement) == dep:
                return name if requirement.strip() in STAR else f"{name} {requirement}"
        return None

    def _candidates(self, dep: int) -> str:
        """'name (= V1 | = V2)' or 'n1 V1 | n2 V2': a relation's providers in their own terms."""
        found = [s for s in self.pool.whatprovides(dep) if self.ours(s)]
        if not found:
            return str(self.pool.dep2str(dep))  # libsolv's own form: no solvable of ours behind it
        names = {s.name for s in found}
        if len(names) == 1:
            return f"{found[0].name} (= {' | = '.join(dict.fromkeys(self.version(s.id) for s in found))})"
        return " | ".join(dict.fromkeys(self.solvable(s.id) for s in found))

    def available(self, sid: int, dep: int) -> str:
        """' (available: V1, V2)': the versions of the one name a requirement names, newest first."""
        text = self.written(sid, dep)
        if "|" in text:
            return ""
        name = text.partition(" ")[0].partition("(")[0].partition(":")[0]
        if not name or not self.pool.str2id(name, False):  # never intern a new name (whatprovides is built)
            return ""
        named = sorted((s for s in self.index.named(name) if self.ours(s) and not self.installed(s.id)),
                       key=lambda s: self.index.entry(s.id).order_key(), reverse=True)
        shown = list(dict.fromkeys(self.version(s.id) for s in named))
        if not shown:
            return ""
        more = f", … ({len(shown)} versions)" if len(shown) > MAX_SHOWN else ""
        return f" (available: {', '.join(shown[:MAX_SHOWN])}{more})"

    def providers(self, dep: int) -> list[int]:
        return [s.id for s in self.pool.whatprovides(dep)] if dep else []


# ---------------------------------------------------------------- rules

RuleText = Callable[[Words, Sequence[int], int, int], str]  # (words, solvables of one name, other, dep)


def _requires(w: Words, ss: Sequence[int], other: int, dep: int) -> str:
    return f"{w.group(ss)} requires {w.written(ss[0], dep)}, but none of the providers can be installed"


def _nothing(w: Words, ss: Sequence[int], other: int, dep: int) -> str:
    return f"nothing provides {w.written(ss[0], dep)} needed by {w.group(ss)}{w.available(ss[0], dep)}"


def _conflicts(w: Words, ss: Sequence[int], other: int, dep: int) -> str:
    return f"{w.group(ss)} conflicts with {w.written(ss[0], dep, conflict=True)} provided by {w.solvable(other)}"


def _self_conflict(w: Words, ss: Sequence[int], other: int, dep: int) -> str:
    return f"{w.group(ss)} conflicts with {w.written(ss[0], dep, conflict=True)}, which it provides itself"


def _same_name(w: Words, ss: Sequence[int], other: int, dep: int) -> str:
    a, b = sorted((ss[0], other))
    return f"cannot install both {w.solvable(a)} and {w.solvable(b)} (one version of a name)"


def _obsoletes(w: Words, ss: Sequence[int], other: int, dep: int) -> str:
    return f"{w.group(ss)} replaces {w.dep(dep)} provided by {w.solvable(other)}"


def _not_installable(w: Words, ss: Sequence[int], other: int, dep: int) -> str:
    return f"{w.group(ss)} cannot be installed (excluded by the repositories' pins or priorities, or its arch)"


def _job_nothing(w: Words, ss: Sequence[int], other: int, dep: int) -> str:
    return f"nothing provides the requested {w.dep(dep)}"


def _job_unknown(w: Words, ss: Sequence[int], other: int, dep: int) -> str:
    return f"no package {w.dep(dep)}"


def _job(w: Words, ss: Sequence[int], other: int, dep: int) -> str:
    return "the requests contradict each other"


def _update(w: Words, ss: Sequence[int], other: int, dep: int) -> str:
    return f"{w.group(ss)} can be neither kept nor replaced by a newer version"


def _best(w: Words, ss: Sequence[int], other: int, dep: int) -> str:
    s = ss[0] or other
    return f"the newest version of {w.name(s)} cannot be installed" if s else "the newest version cannot be installed"


RULES: Mapping[int, RuleText] = {
    _S.SOLVER_RULE_PKG_REQUIRES: _requires,
    _S.SOLVER_RULE_PKG_NOTHING_PROVIDES_DEP: _nothing,
    _S.SOLVER_RULE_PKG_CONFLICTS: _conflicts,
    _S.SOLVER_RULE_PKG_SELF_CONFLICT: _self_conflict,
    _S.SOLVER_RULE_PKG_SAME_NAME: _same_name,
    _S.SOLVER_RULE_PKG_OBSOLETES: _obsoletes,
    _S.SOLVER_RULE_PKG_INSTALLED_OBSOLETES: _obsoletes,
    _S.SOLVER_RULE_PKG_IMPLICIT_OBSOLETES: _obsoletes,
    _S.SOLVER_RULE_PKG_NOT_INSTALLABLE: _not_installable,
    _S.SOLVER_RULE_JOB_NOTHING_PROVIDES_DEP: _job_nothing,
    _S.SOLVER_RULE_JOB_UNKNOWN_PACKAGE: _job_unknown,
    _S.SOLVER_RULE_JOB: _job,
    _S.SOLVER_RULE_UPDATE: _update,
    _S.SOLVER_RULE_BEST: _best,
}
CHAIN = frozenset({_S.SOLVER_RULE_PKG_REQUIRES})  # links between the request and a cause, not causes
NEEDS_SOLVABLE = frozenset({_S.SOLVER_RULE_PKG_REQUIRES, _S.SOLVER_RULE_PKG_NOTHING_PROVIDES_DEP,
                            _S.SOLVER_RULE_PKG_CONFLICTS, _S.SOLVER_RULE_PKG_SELF_CONFLICT,
                            _S.SOLVER_RULE_PKG_SAME_NAME, _S.SOLVER_RULE_PKG_OBSOLETES,
                            _S.SOLVER_RULE_PKG_INSTALLED_OBSOLETES, _S.SOLVER_RULE_PKG_IMPLICIT_OBSOLETES,
                            _S.SOLVER_RULE_PKG_NOT_INSTALLABLE, _S.SOLVER_RULE_UPDATE})
NEEDS_OTHER = frozenset({_S.SOLVER_RULE_PKG_CONFLICTS, _S.SOLVER_RULE_PKG_SAME_NAME, _S.SOLVER_RULE_PKG_OBSOLETES,
                         _S.SOLVER_RULE_PKG_INSTALLED_OBSOLETES, _S.SOLVER_RULE_PKG_IMPLICIT_OBSOLETES})


def _fallback(w: Words, rule: Rule) -> str:
    """libsolv's own text, with the rule's own solvables named our way (plain replacement, no pattern)."""
    text = rule.raw
    for sid in (rule.solvable, rule.other):
        if sid:
            text = text.replace(str(w.pool.id2solvable(sid)), w.solvable(sid))
    return text


def _known(rule: Rule, w: Words) -> bool:
    """A formatter exists and the ids it needs are there and ours."""
    if rule.kind not in RULES:
        return False
    if rule.kind in NEEDS_SOLVABLE and not (rule.solvable and w.ours(w.pool.id2solvable(rule.solvable))):
        return False
    return not (rule.kind in NEEDS_OTHER and not (rule.other and w.ours(w.pool.id2solvable(rule.other))))


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """Rules of one kind, name, other solvable and dependency, printed as one line."""

    kind: int
    solvables: tuple[int, ...]
    other: int
    dep: int
    text: str


def _lines(w: Words, rules: Iterable[Rule]) -> list[Line]:
    groups: dict[tuple[int, str, int, int], list[int]] = {}
    unknown: dict[str, Rule] = {}
    for r in rules:
        if not _known(r, w):
            unknown.setdefault(_fallback(w, r), r)
            continue
        name = w.name(r.solvable) if r.solvable else ""
        ss = groups.setdefault((r.kind, name, r.other, r.dep), [])
        if r.solvable not in ss:
            ss.append(r.solvable)
    out = [Line(kind=kind, solvables=tuple(sorted(ss)), other=other, dep=dep,
                text=RULES[kind](w, sorted(ss), other, dep)) for (kind, _, other, dep), ss in groups.items()]
    out += [Line(kind=r.kind, solvables=(r.solvable,) if r.solvable else (), other=r.other, dep=r.dep, text=t)
            for t, r in unknown.items()]
    return out


# ---------------------------------------------------------------- depth and chains

@dataclass(slots=True)
class Graph:
    """Breadth-first distances from the requests over the problems' "requires" rules."""

    depth: dict[int, int]
    parent: dict[int, tuple[int, int]]  # solvable -> (the solvable that requires it, the dependency id)

    @classmethod
    def of(cls, w: Words, roots: Sequence[int], rules: Iterable[Rule]) -> Graph:
        requires: dict[int, list[int]] = {}
        for r in rules:
            if r.kind in CHAIN and r.solvable and r.dep not in requires.get(r.solvable, []):
                requires.setdefault(r.solvable, []).append(r.dep)
        depth = dict.fromkeys(roots, 0)
        parent: dict[int, tuple[int, int]] = {}
        queue = deque(depth)
        while queue:
            s = queue.popleft()
            for dep in requires.get(s, []):
                for t in w.providers(dep):
                    if t not in depth:
                        depth[t] = depth[s] + 1
                        parent[t] = (s, dep)
                        queue.append(t)
        return cls(depth=depth, parent=parent)

    def of_line(self, line: Line) -> int:
        return min((self.depth.get(s, UNREACHED) for s in (*line.solvables, line.other) if s), default=UNREACHED)

    def chain(self, w: Words, sid: int) -> list[str]:
        """'request version', then the dependencies that lead to ``sid`` (empty when it is a request)."""
        deps: list[str] = []
        seen = {sid}
        while sid in self.parent:
            sid, dep = self.parent[sid]
            if sid in seen:
                break
            seen.add(sid)
            deps.append(w.written(sid, dep))
        return [w.solvable(sid), *reversed(deps)] if deps else []


def _roots(w: Words, requests: Sequence[tuple[str, str]], rules: Iterable[Rule]) -> list[int]:
    """The candidates of the requests (newest first), then installed packages the rules name."""
    roots: list[int] = []
    for name, requirement in requests:
        roots += reversed(w.providers(w.index.dep(name, requirement)))
    installed = w.index.installed
    if installed is not None:
        for r in rules:
            for sid in (r.solvable, r.other):
                if sid and w.pool.id2solvable(sid).repo == installed:
                    roots.append(sid)
    return list(dict.fromkeys(roots))


def _chains(w: Words, graph: Graph, line: Line) -> list[str]:
    out = []
    ends = (*line.solvables, line.other)
    for sid in sorted(ends) if line.kind == _S.SOLVER_RULE_PKG_SAME_NAME else ends:
        if not sid or graph.depth.get(sid, 0) == 0:
            continue
        chain = graph.chain(w, sid)
        if line.kind == _S.SOLVER_RULE_PKG_NOTHING_PROVIDES_DEP:
            chain.append(w.written(sid, line.dep))
        if chain:
            out.append(ARROW.join(chain))
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------- fixes

FixText = Callable[[Words, solv.Solutionelement, Sequence[tuple[str, str]]], Fix]


def _job_fix(w: Words, e: solv.Solutionelement, requests: Sequence[tuple[str, str]]) -> Fix:
    """Dropping a job: the request it was made for, else libsolv's words. libsolv names the job by its
    dependency ('... providing DEP'): the request at the job's index when its dependency is that one
    (both callers put the requests' install jobs first, in order), else the request whose dependency it is."""
    said = str(e.str())
    i = int(e.jobidx)
    order = [requests[i]] if 0 <= i < len(requests) else []
    for name, requirement in [*order, *requests]:
        if said.endswith(" " + str(w.pool.dep2str(w.index.dep(name, requirement)))) or (
                order and (name, requirement) == order[0] and " one of " in f" {said} "):  # a request_job of solvables
            return Fix(text=f"remove {name} from packages", dropped=(name,))
    return Fix(text=said)


def _replace_fix(w: Words, e: solv.Solutionelement, requests: Sequence[tuple[str, str]]) -> Fix:
    old, new = e.solvable, e.replacement
    if old is None or new is None or not (w.ours(old) and w.ours(new)):
        return Fix(text=str(e.str()))
    if old.name != new.name:
        return Fix(text=f"replace {w.solvable(old.id)} with {w.solvable(new.id)}")
    if w.index.entry(new.id).order_key() < w.index.entry(old.id).order_key():
        return Fix(text=f"allow the older {new.name} {w.version(new.id)} (instead of {w.version(old.id)})")
    return Fix(text=f"pin {new.name} to {w.version(new.id)}")


def _erase_fix(w: Words, e: solv.Solutionelement, requests: Sequence[tuple[str, str]]) -> Fix:
    s = e.solvable
    return Fix(text=f"allow removing {w.solvable(s.id)}") if w.ours(s) else Fix(text=str(e.str()))


def _best_fix(w: Words, e: solv.Solutionelement, requests: Sequence[tuple[str, str]]) -> Fix:
    s = e.solvable
    return Fix(text=f"allow an older version of {s.name}") if w.ours(s) else Fix(text=str(e.str()))


FIXES: Mapping[int, FixText] = {
    _S.SOLVER_SOLUTION_JOB: _job_fix,
    _S.SOLVER_SOLUTION_POOLJOB: _job_fix,
    _S.SOLVER_SOLUTION_REPLACE: _replace_fix,
    _S.SOLVER_SOLUTION_REPLACE_DOWNGRADE: _replace_fix,
    _S.SOLVER_SOLUTION_REPLACE_ARCHCHANGE: _replace_fix,
    _S.SOLVER_SOLUTION_REPLACE_VENDORCHANGE: _replace_fix,
    _S.SOLVER_SOLUTION_REPLACE_NAMECHANGE: _replace_fix,
    _S.SOLVER_SOLUTION_ERASE: _erase_fix,
    _S.SOLVER_SOLUTION_BEST: _best_fix,
}


def _solution(w: Words, sol: solv.Solution, requests: Sequence[tuple[str, str]]) -> Fix:
    parts: list[Fix] = []
    for e in sol.elements(True):
        translate = FIXES.get(int(e.type))
        fix = translate(w, e, requests) if translate is not None else Fix(text=str(e.str()))
        if fix.text not in (p.text for p in parts):
            parts.append(fix)
    return Fix(text=" and ".join(p.text for p in parts), dropped=tuple(n for p in parts for n in p.dropped))


def _pins(w: Words, requests: Sequence[tuple[str, str]], dropped: Iterable[str]) -> list[Fix]:
    """'pin N to V' for a request with a version that cannot be met: the newest other version of N
    that resolves together with the other requests (a few solves, on the failure path only)."""
    out = []
    wanted = dict(requests)
    for name in dropped:
        requirement = wanted.get(name, "*")
        if requirement.strip() in STAR:
            continue
        asked = set(w.providers(w.index.dep(name, requirement)))
        others = [w.pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE_PROVIDES, w.index.dep(n, r))
                  for n, r in requests if n != name]
        tried = sorted((s for s in w.index.named(name) if s.id not in asked and w.ours(s)
                        and s.repo != w.index.installed),
                       key=lambda s: w.index.entry(s.id).order_key(), reverse=True)
        for s in tried[:MAX_PIN_TRIES]:
            job = w.pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE, s.id)
            solver = w.pool.Solver()  # alive while its problems are (they point into it)
            if not solver.solve([*others, job]):
                out.append(Fix(text=f"pin {name} to {w.version(s.id)}"))
                break
    return out


def _fixes(w: Words, problem: SolvProblem, requests: Sequence[tuple[str, str]]) -> list[str]:
    found = [_solution(w, sol, requests) for sol in problem.solutions()]
    found = [f for f in found if f.text]
    dropped = dict.fromkeys(n for f in found for n in f.dropped)
    found = _pins(w, requests, dropped) + found
    if any(not f.dropped for f in found):
        found = [f for f in found if not f.dropped]
    return list(dict.fromkeys(f.text for f in found))[:MAX_FIXES]


# ---------------------------------------------------------------- the explanation

@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One libsolv problem: its causes in print order, the graph that orders them, its fixes."""

    causes: tuple[Line, ...]
    graph: Graph
    fixes: tuple[str, ...]

    @classmethod
    def of(cls, w: Words, problem: SolvProblem, requests: Sequence[tuple[str, str]]) -> Problem:
        rules = [Rule.of(r.info()) for r in problem.findallproblemrules()]
        graph = Graph.of(w, _roots(w, requests, rules), rules)
        lines = sorted(_lines(w, rules), key=lambda ln: (graph.of_line(ln), ln.text))
        causes = [ln for ln in lines if ln.kind not in CHAIN]
        # "requires" rules are the chain; one is printed on its own only when no request leads to it,
        # or when nothing else explains the problem
        causes += [ln for ln in lines if ln.kind in CHAIN and (not causes or graph.of_line(ln) == UNREACHED)]
        return cls(causes=tuple(causes), graph=graph, fixes=tuple(_fixes(w, problem, requests)))

    @property
    def depth(self) -> int:
        return min((self.graph.of_line(ln) for ln in self.causes), default=UNREACHED)


def explain(index: SolvIndex, problems: Sequence[SolvProblem], requests: Sequence[tuple[str, str]]) -> str:
    """'cannot resolve the profile for ARCH:' and, per problem (shallowest first), its causes (shallowest
    first, each rule once, with the chain that leads to it) and the fixes that help. ``requests``:
    (name, requirement) of the requested packages, in the order of their install jobs (the first jobs of
    the solve: a fix that drops job i < len(requests) is "remove requests[i] from packages")."""
    w = Words(index)
    found = sorted((Problem.of(w, p, requests) for p in problems), key=lambda p: p.depth)
    printed: dict[str, int] = {}  # line -> the problem that printed it
    sections: list[list[str]] = []
    for number, problem in enumerate(found, 1):
        out: list[str] = []
        for ln in problem.causes:
            if ln.text not in printed:
                printed[ln.text] = number
                out.append(f"- {ln.text}")
            elif f"- the same cause as problem {printed[ln.text]}" not in out:
                out.append(f"- the same cause as problem {printed[ln.text]}")
            for chain in _chains(w, problem.graph, ln):
                if chain not in printed:
                    printed[chain] = number
                    out.append(f"    chain: {chain}")
        if problem.fixes:
            out.append("possible fixes: " + " | ".join(problem.fixes))
        sections.append(out)
    head = [f"cannot resolve the profile for {index.arch}:"]
    if len(sections) == 1:
        return "\n".join(head + [f"  {t}" for t in sections[0]])
    for number, out in enumerate(sections, 1):
        head.append(f"  problem {number}:")
        head += [f"    {t}" for t in out]
    return "\n".join(head)
