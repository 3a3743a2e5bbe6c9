"""Which repository a name may come from: pins and priorities (dependency confusion is an error).

The rules, applied to the pool before libsolv chooses (excluded solvables are outside libsolv's
*considered* map) and checked again on its answer:

1. **Pins** (``repositories[].packages``: names or fnmatch globs). A solvable whose name, or any of
   whose provides, is pinned to another repository is excluded: a pinned name comes only from its
   repository, whether it is requested, a dependency or a provide.
2. **Priorities** (``repositories[].priority``, default 0). Of the packages *called* N, only those of
   the repositories with the highest priority among the ones serving N stay (conda's strict channel
   priority; apt's pin priority without the version race).
3. **No silent choice.** After solving, every name the answer needed (requested names and the
   dependencies of the chosen packages) must be served by one repository, or by several of which
   exactly one has the highest priority and provided it. Otherwise it is an error naming the name and
   the repositories, with the fix (a pin or a priority).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import solv

from composer.profile.model import RepositoryRef
from composer.solve.evr import Solvable
from composer.solve.pool import SolvIndex


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoPolicy:
    priorities: Mapping[str, int] = field(default_factory=dict)      # repository -> priority (default 0)
    pins: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # repository -> names and globs

    @classmethod
    def of(cls, repositories: Iterable[RepositoryRef]) -> RepoPolicy:
        """From a profile's repositories."""
        repos = list(repositories)
        return cls(priorities={r.name: r.priority for r in repos},
                   pins={r.name: tuple(r.packages) for r in repos if r.packages})

    @classmethod
    def of_records(cls, records: Iterable[Mapping[str, object]]) -> RepoPolicy:
        """From a root's ``repositories.json`` (as ``vcomp build`` records a profile's repositories);
        values of the wrong type count as absent (the database reader validates the file)."""
        prios: dict[str, int] = {}
        pins: dict[str, tuple[str, ...]] = {}
        for r in records:
            name, prio, pats = r.get("name"), r.get("priority", 0), r.get("packages", [])
            if not isinstance(name, str):
                continue
            prios[name] = prio if isinstance(prio, int) and not isinstance(prio, bool) else 0
            if isinstance(pats, list) and pats:
                pins[name] = tuple(p for p in pats if isinstance(p, str))
        return cls(priorities=prios, pins=pins)

    def pinned(self, name: str) -> list[str]:
        """The repositories ``name`` is pinned to (one, normally; none when it is not pinned)."""
        return sorted(repo for repo, patterns in self.pins.items()
                      if any(fnmatch.fnmatchcase(name, p) for p in patterns))

    def priority(self, repo: str) -> int:
        return self.priorities.get(repo, 0)

    def top(self, repos: Iterable[str]) -> list[str]:
        """The repositories among ``repos`` that have the highest priority."""
        repos = sorted(set(repos))
        best = max((self.priority(r) for r in repos), default=0)
        return [r for r in repos if self.priority(r) == best]


def bare_provides(s: Solvable) -> list[str]:
    return [str(d) for d in s.lookup_deparray(solv.SOLVABLE_PROVIDES) if " " not in str(d)]


def exclusions(index: SolvIndex, policy: RepoPolicy) -> dict[int, str]:
    """Solvables the policy forbids, with why (empty when one repository serves everything)."""
    if len(index.origin_names()) < 2:
        return {}
    origins = index.origins()
    pool = index.pool
    out: dict[int, str] = {}
    serving: dict[str, set[str]] = {}
    for sid, origin in origins.items():
        s = pool.id2solvable(sid)
        for n in (s.name, *bare_provides(s)):
            pinned = policy.pinned(n)
            if pinned and origin not in pinned:
                out[sid] = f"'{n}' is pinned to repository '{pinned[0]}'"
                break
        else:
            serving.setdefault(s.name, set()).add(origin)
    for sid, origin in origins.items():
        if sid in out:
            continue
        name = pool.id2solvable(sid).name
        top = policy.top(serving[name])
        if origin not in top:
            out[sid] = (f"'{name}' comes from repository '{top[0]}' (priority {policy.priority(top[0])} over "
                        f"'{origin}' {policy.priority(origin)})")
    return out


def consider(index: SolvIndex, excluded: Mapping[int, str]) -> None:
    """Make libsolv ignore the excluded solvables (its *considered* map)."""
    if excluded:
        ids = [s.id for s in index.pool.solvables_iter() if s.id not in excluded]
        index.pool.set_considered_list(ids)


def confusions(index: SolvIndex, policy: RepoPolicy, excluded: Mapping[int, str], chosen: Sequence[int],
               needed: Mapping[str, str]) -> tuple[list[str], dict[int, str]]:
    """Names the answer needed (name -> why) that it could have taken from more than one repository:
    the errors (no priority decides), and the providers to exclude when a priority decides but the
    answer took a lower-priority provider (solve again without them)."""
    if len(index.origin_names()) < 2:
        return [], {}
    origins = index.origins()
    picked = set(chosen)
    problems: list[str] = []
    more: dict[int, str] = {}
    for name, why in sorted(needed.items()):
        providers = [s.id for s in index.providers(name) if s.id in origins and s.id not in excluded]
        repos = sorted({origins[sid] for sid in providers})
        if len(repos) < 2:
            continue
        top = policy.top(repos)
        if len(top) > 1:
            both = " and ".join(f"'{r}'" for r in repos)
            problems.append(f"'{name}' ({why}) is served by repositories {both}; vcomp does not choose between "
                            f"them silently")
        elif any(origins[sid] not in top for sid in providers if sid in picked):
            for sid in providers:
                if origins[sid] not in top:
                    more[sid] = (f"'{name}' comes from repository '{top[0]}' (priority {policy.priority(top[0])} "
                                 f"over '{origins[sid]}' {policy.priority(origins[sid])})")
    return problems, more


CONFUSION_HINT = ("pin the name to the repository it must come from (repositories[].packages: ['NAME'] or a glob), "
                  "or give that repository a higher 'priority'; see docs/security/profile.md")
