"""Relations as explicit candidate sets, and the clause table the resolver's preferences read (design14 §2.2-2.3).

Every alternative of a clause is resolved here, in Python, to the exact solvables that satisfy it (design14 §2.2):

* Debian ``NAME (OP V)``: the packages called NAME whose version satisfies it (dpkg's order: the letters-only
  EVRs of :mod:`composer.solve.evr` compare as plain strings exactly as dpkg compares the versions), and the
  packages whose *versioned* provide of NAME satisfies it. An unversioned provide never satisfies a versioned
  relation (dependency or conflict): libsolv's RPM rules would let it, Debian's do not.
* Cargo ``NAME REQ`` (``[dependencies]``, profile requests): ``Requirement.matches`` on the SemVer (the
  projection of a ``deb`` version); a requirement naming an epoch or a revision (``=6.1.192-r3``, ``>=1:1.2.3``)
  uses ``Requirement.matches_full`` on the full version. Providers only through a versioned provide (any provider
  for ``*``).
* an unversioned name: the bare name (every package called so and every provider; Debian and RPM agree).
* ``NAME:any`` / ``NAME:native``: as NAME (``:any`` needs a real target with ``multi-arch = "allowed"``); any
  other architecture qualifier: no candidate (images are single-architecture).

A candidate set is a tuple of *member numbers* (the row of the index in pool order; a root's installed packages
follow), ``None`` for the bare name, ``()`` for none. :class:`TableMaker` fills the clause table
(:mod:`composer.solve.clausetable`): per row its requires, recommends and suggests clauses as alternative
numbers, with every alternative's text, name and candidates.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from composer.package.deb822 import Alternative, parse_relations
from composer.solve.clausetable import REQUIRED_RANK, Alt, Candidates, ClauseTable, RowClauses
from composer.solve.evr import deb_evr, native_evr, requirement_interval
from composer.version import FullVersion, PrecedenceKey, Requirement, Version, VersionError, dpkg_compare

STAR = ("*", "")
REQUIRE_KEYS = ("pre-requires", "requires")   # the order clauses are loaded in (pre-requires first, as dpkg)
WEAK_KEYS = ("recommends", "suggests")
CONFLICT_KEYS = ("conflicts", "breaks")
PRIORITY_RANK: Mapping[str, int] = {"standard": 1, "important": 2, "required": REQUIRED_RANK}   # required: strongest
_OPS: Mapping[str, Callable[[int], bool]] = {
    "<<": lambda c: c < 0, "<=": lambda c: c <= 0, "<": lambda c: c <= 0, "=": lambda c: c == 0,
    ">=": lambda c: c >= 0, ">": lambda c: c >= 0, ">>": lambda c: c > 0}


@functools.lru_cache(maxsize=1 << 16)
def parse_version(text: str) -> Version:
    return Version.parse(text)


@functools.lru_cache(maxsize=1 << 14)
def parse_requirement(text: str) -> Requirement:
    return Requirement.parse(text)


@functools.lru_cache(maxsize=1 << 17)
def evr_in(scheme: str, text: str) -> str | None:
    """The letters-only EVR of a version text of ``scheme`` (None when it does not parse there)."""
    try:
        if scheme == "deb":
            return deb_evr(text)
        return native_evr(FullVersion.parse(text, scheme))
    except (VersionError, KeyError, ValueError, TypeError):
        return None


@functools.lru_cache(maxsize=1 << 17)
def _native_evr(version: str, epoch: int, revision: str) -> str:
    return native_evr(FullVersion(epoch=epoch, upstream=parse_version(version), revision=revision))


def doc_evr(d: Mapping[str, Any]) -> str:
    """The EVR of an index entry (as the index carries it): deb_evr of the original for ``deb`` entries,
    native_evr of (epoch, SemVer, revision) otherwise (design14 §1.3)."""
    if d.get("version_scheme", "semver") == "deb":
        evr = evr_in("deb", d["upstream_version"])
        if evr is None:
            raise ValueError(f"{d['name']}: '{d['upstream_version']}' is not a Debian version")
        return evr
    return _native_evr(d["version"], int(d.get("epoch", 0)), str(d.get("revision", "")))


@functools.lru_cache(maxsize=1 << 16)
def split_provide(text: str) -> tuple[str, str | None]:
    """``NAME`` -> (NAME, None); ``NAME = VERSION`` -> (NAME, VERSION)."""
    name, eq, version = text.partition("=")
    return (name.strip(), version.strip() or None) if eq else (text.strip(), None)


@functools.lru_cache(maxsize=1 << 17)
def parse_clause(text: str) -> tuple[Alternative, ...]:
    """The alternatives of one relation clause (several clauses in one text are read as one list of alternatives
    per clause, flattened: metadata validation refuses them before an index carries them)."""
    return tuple(a for clause in parse_relations(text, f"relation '{text[:80]}'") for a in clause)


def clause_names(text: str) -> tuple[str, ...]:
    return tuple(a.name for a in parse_clause(text))


@dataclass(frozen=True, slots=True)
class Member:
    """One package of the pool, as the candidate sets see it."""

    name: str
    evr: str
    scheme: str
    multi_arch: str
    semver: str        # the SemVer ``version`` (a deb version's projection): what Cargo requirements match
    text: str          # the version's text form (what a Debian relation on a native package is compared with)


@dataclass(frozen=True, slots=True)
class Provide:
    member: int
    evr: str | None    # of the provided version in the provider's scheme; None: unversioned
    text: str | None


def member_of(d: Mapping[str, Any]) -> Member:
    scheme = str(d.get("version_scheme", "semver"))
    return Member(name=d["name"], evr=doc_evr(d), scheme=scheme, multi_arch=str(d.get("multi_arch", "")),
                  semver=d["version"], text=_text_of(d, scheme))


def _text_of(d: Mapping[str, Any], scheme: str) -> str:
    if scheme == "deb":
        return str(d["upstream_version"])
    epoch, revision = int(d.get("epoch", 0)), str(d.get("revision", ""))
    return str(FullVersion(epoch=epoch, upstream=parse_version(d["version"]), revision=revision)) \
        if epoch or revision else str(d["version"])


class Catalog:
    """Members by number, the members called NAME (pool order) and the providers of NAME.

    Built from every entry at pool-build time; for a pool loaded from the cache, ``fill(name)`` adds the
    members that call or provide a name on first use (from libsolv and their entries)."""

    def __init__(self, fill: Callable[[Catalog, str], None] | None = None) -> None:
        self.members: dict[int, Member] = {}
        self.real: dict[str, list[int]] = {}
        self.provided: dict[str, list[Provide]] = {}
        self._fill = fill
        self._filled: set[str] = set()
        self._pre: dict[str, bool] = {}

    def add(self, k: int, member: Member, provides: Iterable[str]) -> None:
        if k in self.members:
            return
        self.members[k] = member
        self.real.setdefault(member.name, []).append(k)
        for p in provides:
            name, version = split_provide(p)
            evr = evr_in(member.scheme, version) if version is not None else None
            self.provided.setdefault(name, []).append(Provide(member=k, evr=evr, text=version))

    def _ensure(self, name: str) -> None:
        if self._fill is not None and name not in self._filled:
            self._filled.add(name)
            self._fill(self, name)
            self.real.get(name, []).sort()
            self.provided.get(name, []).sort(key=lambda p: p.member)

    def reals(self, name: str) -> Sequence[int]:
        self._ensure(name)
        return self.real.get(name, ())

    def provs(self, name: str) -> Sequence[Provide]:
        self._ensure(name)
        return self.provided.get(name, ())

    def mixed(self, name: str) -> bool:
        """A package called ``name`` and another package providing it (apt installs the real one)."""
        provs = self.provs(name)
        return bool(provs) and bool(self.reals(name)) and any(self.members[p.member].name != name for p in provs)

    def prerelease(self, name: str) -> bool:
        """Some package called ``name`` has a pre-release SemVer (Cargo's ``*`` does not match it)."""
        got = self._pre.get(name)
        if got is None:
            got = self._pre[name] = any("-" in self.members[k].semver.partition("+")[0] for k in self.reals(name))
        return got


def _cmp(a: str, b: str) -> int:
    return (a > b) - (a < b)


class Selector:
    """Candidate sets of alternatives (design14 §2.2), memoized by their text."""

    def __init__(self, catalog: Catalog, deb_arch: str) -> None:
        self.catalog = catalog
        self.native = frozenset({"any", "native", deb_arch})
        self.deb: dict[str, Candidates] = {}
        self.cargo: dict[tuple[str, str], Candidates] = {}
        self._keys: dict[str, list[tuple[Any, int]]] = {}

    def debian(self, alt: Alternative, text: str | None = None) -> Candidates:
        """``text``: ``alt.text()`` when the caller has it already."""
        text = alt.text() if text is None else text
        got = self.deb.get(text, False)
        if got is False:
            got = self.deb[text] = self._debian(alt)
        return got  # type: ignore[return-value]

    def _debian(self, alt: Alternative) -> Candidates:
        cat = self.catalog
        if alt.arch and alt.arch not in self.native:
            return ()
        reals, provs = cat.reals(alt.name), cat.provs(alt.name)
        any_arch = alt.arch == "any"
        if not alt.op and not (any_arch and any(cat.members[k].multi_arch != "allowed" for k in reals)):
            return None if reals or provs else ()
        chosen = [k for k in reals if (not any_arch or cat.members[k].multi_arch == "allowed")
                  and (not alt.op or self._holds(cat.members[k], cat.members[k].evr, alt.op, alt.version))]
        if not alt.op:
            return tuple(chosen + [p.member for p in provs])
        if len(chosen) == len(reals) and not provs and chosen:
            return None   # every package called NAME and no provider: the bare name
        chosen += [p.member for p in provs if p.evr is not None
                   and self._holds(cat.members[p.member], p.evr, alt.op, alt.version, p.text)]
        return tuple(sorted(set(chosen)))

    @staticmethod
    def _holds(member: Member, evr: str, op: str, version: str | None, text: str | None = None) -> bool:
        """Whether ``evr`` (of ``member``'s scheme) satisfies ``(op version)``: EVR order is the version order; a
        version that does not parse in the member's scheme is compared by dpkg's rules on the texts."""
        wanted = evr_in(member.scheme, version or "")
        if wanted is None:
            return _OPS[op](dpkg_compare(text if text is not None else member.text, version or ""))
        return _OPS[op](_cmp(evr, wanted))

    def cargo_set(self, name: str, req: str) -> Candidates:
        key = (name, req.strip() or "*")
        got = self.cargo.get(key, False)
        if got is False:
            got = self.cargo[key] = self._cargo(*key)
        return got  # type: ignore[return-value]

    def _cargo(self, name: str, req: str) -> Candidates:
        cat = self.catalog
        reals, provs = cat.reals(name), cat.provs(name)
        if req == "*" and not cat.prerelease(name):
            return None if reals or provs else ()
        exact = self.matching(name, req)
        if req == "*":
            virtual = [p.member for p in provs]
        else:
            r = parse_requirement(req)
            virtual = [p.member for p in provs if p.text is not None and _cargo_provide(r, p.text,
                                                                                        cat.members[p.member].scheme)]
        if len(exact) == len(reals) and (req == "*" or not provs) and (exact or virtual):
            return None
        return tuple(sorted({*exact, *virtual}))

    def matching(self, name: str, req: str) -> list[int]:
        """The members called ``name`` that the Cargo requirement matches (bisecting their SemVer order with the
        requirement's interval, exact for releases; pre-releases inside it checked with ``composer.version``).
        A requirement with an epoch or a revision is checked on every member's full version."""
        r = parse_requirement(req)
        if not r.plain:
            members = self.catalog.members
            return sorted(k for k in self.catalog.reals(name)
                          if r.matches_full(full_version(members[k].text, members[k].scheme)))
        keys = self._keys.get(name)
        if keys is None:
            keys = self._keys[name] = sorted((precedence(self.catalog.members[k].semver), k)
                                             for k in self.catalog.reals(name))
        bounds = interval(req)
        if bounds is None or not keys:
            return []
        (low, low_in), (high, high_in) = bounds
        only = [key for key, _ in keys]
        lo = 0 if low is None else (bisect.bisect_left if low_in else bisect.bisect_right)(only, low)
        hi = len(only) if high is None else (bisect.bisect_right if high_in else bisect.bisect_left)(only, high)
        out = []
        for _, k in keys[lo:hi]:
            v = self.catalog.members[k].semver
            if "-" not in v.partition("+")[0] or r.matches(parse_version(v)):
                out.append(k)
        return sorted(out)


@functools.lru_cache(maxsize=1 << 16)
def full_version(text: str, scheme: str) -> FullVersion:
    return FullVersion.parse(text, scheme)


@functools.lru_cache(maxsize=1 << 16)
def precedence(text: str) -> PrecedenceKey:
    return parse_version(text).precedence_key()


@functools.lru_cache(maxsize=1 << 14)
def interval(text: str) -> tuple[tuple[PrecedenceKey | None, bool], tuple[PrecedenceKey | None, bool]] | None:
    """The requirement's interval hull as (precedence key or None, inclusive) pairs; None when empty."""
    hull = requirement_interval(parse_requirement(text))
    if hull is None:
        return None
    low, high = hull
    return ((None, True) if low is None else (low[0].precedence_key(), low[1]),
            (None, True) if high is None else (high[0].precedence_key(), high[1]))


def _cargo_provide(r: Requirement, text: str, scheme: str) -> bool:
    try:
        return r.matches_full(FullVersion.parse(text, scheme))
    except VersionError:
        return False


class TableMaker:
    """Fills a :class:`ClauseTable` from entries: clause texts parsed once, alternatives resolved once."""

    def __init__(self, selector: Selector, table: ClauseTable | None = None) -> None:
        self.selector = selector
        self.table = table if table is not None else ClauseTable()
        self._alt_deb: dict[str, int] = {}
        self._alt_cargo: dict[tuple[str, str], int] = {}
        self._clause: dict[str, int] = {}
        self._cargo_clause: dict[tuple[str, str], int] = {}


    def deb_alt(self, a: Alternative) -> int:
        text = a.text()
        got = self._alt_deb.get(text)
        if got is None:
            cands = self.selector.debian(a, text)
            got = self._alt_deb[text] = self.table.add_alt(
                Alt(name=a.name, cands=cands, mixed=self.selector.catalog.mixed(a.name)),
                text, a.name if not a.op and not a.arch else text)
        return got

    def cargo_alt(self, name: str, req: str) -> int:
        key = (name, req.strip() or "*")
        got = self._alt_cargo.get(key)
        if got is None:
            cands = self.selector.cargo_set(*key)
            star = key[1] == "*"
            reals = self.selector.catalog.reals(name)
            none = f"{name} {key[1]}" if reals or not star else name
            got = self._alt_cargo[key] = self.table.add_alt(
                Alt(name=name, cands=cands, mixed=self.selector.catalog.mixed(name)),
                name if star else f"{name} {key[1]}", none)
        return got

    def clause(self, text: str) -> int:
        got = self._clause.get(text)
        if got is None:
            got = self._clause[text] = self.table.add_clause(tuple(self.deb_alt(a) for a in parse_clause(text)))
        return got

    def cargo_clause(self, name: str, req: str) -> int:
        key = (name, req)
        got = self._cargo_clause.get(key)
        if got is None:
            got = self._cargo_clause[key] = self.table.add_clause((self.cargo_alt(name, req),))
        return got

    def row(self, relations: Mapping[str, Sequence[str]], cargo: Sequence[tuple[str, str]], *,
            priority: str = "", essential: bool = False) -> RowClauses:
        if not relations:   # a native entry: its [dependencies] only
            return RowClauses(requires=tuple([self.cargo_clause(n, r) for n, r in cargo]), recommends=(),
                              suggests=(), priority=PRIORITY_RANK.get(priority, 0), essential=essential)
        known, clause = self._clause, self.clause   # most texts were seen before: one dict lookup each

        def clauses(key: str) -> list[int]:
            return [c if (c := known.get(t)) is not None else clause(t) for t in relations.get(key, ())]

        requires = [c for key in REQUIRE_KEYS for c in clauses(key)]
        requires += [self.cargo_clause(n, r) for n, r in cargo]
        return RowClauses(requires=tuple(requires), recommends=tuple(clauses("recommends")),
                          suggests=tuple(clauses("suggests")), priority=PRIORITY_RANK.get(priority, 0),
                          essential=essential)
