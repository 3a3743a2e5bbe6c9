"""Relations as explicit candidate sets, and the clause table the resolver's preferences read (design14 §2.2-2.3).

Every alternative of a clause is resolved here, in Python, to the exact solvables that satisfy it (design14 §2.2):

* Debian ``NAME (OP V)``: the packages called NAME whose version satisfies it (dpkg's order: the letters-only
  EVRs of :mod:`composer.solve.evr` compare as plain strings exactly as dpkg compares the versions), and the
  packages whose *versioned* provide of NAME satisfies it. An unversioned provide never satisfies a versioned
  relation (dependency or conflict): libsolv's RPM rules would let it, Debian's do not.
* Cargo ``NAME REQ`` (``[dependencies]``, profile requests): ``Requirement.matches`` on the SemVer (the
  projection of a ``deb`` version), providers only through a versioned provide (any provider for ``*``).
* an unversioned name: the bare name (every package called so and every provider; Debian and RPM agree).
* ``NAME:any`` / ``NAME:native``: as NAME (``:any`` needs a real target with ``multi-arch = "allowed"``); any
  other architecture qualifier: no candidate (images are single-architecture).

A candidate set is a tuple of *member numbers* (the row of the index in pool order; a root's installed packages
follow), ``None`` for the bare name, ``()`` for none. :class:`ClauseTable` keeps, per row, its requires,
recommends and suggests clauses as alternative numbers, with every alternative's text, name and candidates:
the favor BFS, the post-solve loop and the weak dependencies read it without parsing an entry, and it is stored
beside the pool cache (``KEY.clauses``) so a cached pool answers the same.
"""

from __future__ import annotations

import bisect
import functools
import json
import struct
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from composer.package.deb822 import Alternative, parse_relations
from composer.solve.evr import deb_evr, native_evr, requirement_interval
from composer.version import FullVersion, PrecedenceKey, Requirement, Version, VersionError, dpkg_compare

STAR = ("*", "")
Candidates = tuple[int, ...] | None   # None: the bare name; (): nothing satisfies it
REQUIRE_KEYS = ("pre-requires", "requires")   # the order clauses are loaded in (pre-requires first, as dpkg)
WEAK_KEYS = ("recommends", "suggests")
CONFLICT_KEYS = ("conflicts", "breaks")
PRIORITY_RANK: Mapping[str, int] = {"standard": 1, "important": 2, "required": 3}   # apt: required is strongest
_REQUIRED = PRIORITY_RANK["required"]
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

    def debian(self, alt: Alternative) -> Candidates:
        text = alt.text()
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
        requirement's interval, exact for releases; pre-releases inside it checked with ``composer.version``)."""
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
        r = parse_requirement(req)
        out = []
        for _, k in keys[lo:hi]:
            v = self.catalog.members[k].semver
            if "-" not in v.partition("+")[0] or r.matches(parse_version(v)):
                out.append(k)
        return sorted(out)


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


# --------------------------------------------------------------------------- the clause table

@dataclass(frozen=True, slots=True)
class Alt:
    """One alternative: its name, its candidates, and whether the name has both a real package and providers
    (its text, and the id text libsolv reports when nothing satisfies it, are in the table)."""

    name: str
    cands: Candidates
    mixed: bool

    @property
    def satisfiable(self) -> bool:
        return self.cands is None or bool(self.cands)


@dataclass(frozen=True, slots=True)
class RowClauses:
    requires: tuple[int, ...]
    recommends: tuple[int, ...]
    suggests: tuple[int, ...]
    priority: int = 0
    essential: bool = False

    def weak(self, kind: str) -> tuple[int, ...]:
        return self.recommends if kind == "recommends" else self.suggests


_MAGIC = b"vcomp-clauses/1\n"
_LEN = struct.Struct("<Q")
_ARRAYS = ("alt_name", "alt_flags", "alt_cands", "cands", "clause_start", "clause_alts", "row_req", "req",
           "row_rec", "rec", "row_sug", "sug", "row_prio")
_BARE, _MIXED = 1, 2


class ClauseTable:
    """Alternatives, clauses (alternative numbers, in clause order) and per index row its clauses.

    Built with :meth:`add_alt`, :meth:`add_clause`, :meth:`add_row`; stored as int arrays plus the names and
    texts (:meth:`to_bytes`), and read back lazily: a loaded table decodes an alternative, clause or row when
    it is asked for, so a cached pool of the whole archive opens in milliseconds."""

    def __init__(self) -> None:
        self._alts: dict[int, Alt] = {}
        self._clauses: dict[int, tuple[int, ...]] = {}
        self._rows: dict[int, RowClauses] = {}
        self._texts: list[str] | None = []
        self._texts_blob = b""
        self._extra_texts: dict[int, str] = {}
        self._nones: dict[int, str] = {}
        self._arrays: dict[str, array[int]] | None = None
        self._names: list[str] = []
        self.n_alts = self.n_clauses = self.n_rows = 0
        self.choices = False   # some clause has alternatives, or some name a real package and providers
        self._info: dict[int, tuple[int | None, tuple[str, ...], tuple[str, ...]]] = {}

    # ---- building
    def add_alt(self, alt: Alt, text: str, none: str) -> int:
        a = self.n_alts
        self._alts[a] = alt
        self.choices = self.choices or alt.mixed
        if self._texts is None:   # a loaded table: keep its texts undecoded
            self._extra_texts[a] = text
        else:
            self._texts.append(text)
        if none != text:
            self._nones[a] = none
        self.n_alts += 1
        return a

    def add_clause(self, alts: tuple[int, ...]) -> int:
        self._clauses[self.n_clauses] = alts
        self.choices = self.choices or len(alts) > 1
        self.n_clauses += 1
        return self.n_clauses - 1

    def add_row(self, row: RowClauses) -> None:
        self._rows[self.n_rows] = row
        self.n_rows += 1

    # ---- reading
    def texts(self) -> list[str]:
        if self._texts is None:
            self._texts = [str(t) for t in json.loads(self._texts_blob)]
        return self._texts

    def text(self, a: int) -> str:
        got = self._extra_texts.get(a)
        return got if got is not None else self.texts()[a]

    def none(self, a: int) -> str:
        """The id text of an alternative nothing satisfies (libsolv says "nothing provides <it>")."""
        return self._nones.get(a) or self.text(a)

    def clause_text(self, c: int) -> str:
        return " | ".join(self.text(a) for a in self.clause(c))

    def alt(self, a: int) -> Alt:
        got = self._alts.get(a)
        if got is None:
            arr = self._loaded()
            flags = arr["alt_flags"][a]
            cands = None if flags & _BARE else tuple(arr["cands"][arr["alt_cands"][a]:arr["alt_cands"][a + 1]])
            got = self._alts[a] = Alt(name=self._names[arr["alt_name"][a]], cands=cands, mixed=bool(flags & _MIXED))
        return got

    def clause(self, c: int) -> tuple[int, ...]:
        got = self._clauses.get(c)
        if got is None:
            arr = self._loaded()
            got = self._clauses[c] = tuple(arr["clause_alts"][arr["clause_start"][c]:arr["clause_start"][c + 1]])
        return got

    def row(self, k: int) -> RowClauses:
        got = self._rows.get(k)
        if got is None:
            arr = self._loaded()

            def part(start: str, items: str) -> tuple[int, ...]:
                return tuple(arr[items][arr[start][k]:arr[start][k + 1]])

            prio = arr["row_prio"][k]
            got = self._rows[k] = RowClauses(requires=part("row_req", "req"), recommends=part("row_rec", "rec"),
                                             suggests=part("row_sug", "sug"), priority=prio & 0x7F,
                                             essential=bool(prio & 0x80))
        return got

    def requires(self, k: int) -> tuple[int, ...]:
        """The requires clauses of row ``k`` (without decoding the rest of the row)."""
        got = self._rows.get(k)
        if got is not None:
            return got.requires
        arr = self._loaded()
        return tuple(arr["req"][arr["row_req"][k]:arr["row_req"][k + 1]])

    def clause_info(self, c: int) -> tuple[int | None, tuple[str, ...], tuple[str, ...]]:
        """What the favor search needs of clause ``c``: its first satisfiable alternative when it has several
        (else None), its alternatives' names, and those names that have a real package and providers."""
        got = self._info.get(c)
        if got is None:
            alts = self.clause(c)
            first = next((a for a in alts if self.alt(a).satisfiable), None) if len(alts) > 1 else None
            names = tuple(self.alt(a).name for a in alts)
            got = self._info[c] = (first, names, tuple(self.alt(a).name for a in alts if self.alt(a).mixed))
        return got

    def ranked(self) -> list[tuple[int, int]]:
        """(priority rank, row) of the rows with a Priority apt prefers, weakest first."""
        if self._arrays is not None:
            prios = self._arrays["row_prio"]
            return sorted((p & 0x7F, k) for k, p in enumerate(prios) if p & 0x7F)
        return sorted((self.row(k).priority, k) for k in range(self.n_rows) if self.row(k).priority)

    def essential_rows(self, *, required: bool) -> list[int]:
        if self._arrays is not None:
            prios = self._arrays["row_prio"]
            return [k for k, p in enumerate(prios) if p & 0x80 or (required and p & 0x7F == _REQUIRED)]
        return [k for k in range(self.n_rows)
                if self.row(k).essential or (required and self.row(k).priority == _REQUIRED)]

    def _loaded(self) -> dict[str, array[int]]:
        if self._arrays is None:
            raise KeyError("not in the clause table")
        return self._arrays

    # ---- storing
    def to_bytes(self) -> bytes:
        names: dict[str, int] = {}
        out: dict[str, array[int]] = {k: array("i") for k in _ARRAYS}
        out["alt_flags"] = array("b")
        out["row_prio"] = array("B")
        out["alt_cands"].append(0)
        for a in range(self.n_alts):
            alt = self.alt(a)
            out["alt_name"].append(names.setdefault(alt.name, len(names)))
            out["alt_flags"].append((_BARE if alt.cands is None else 0) | (_MIXED if alt.mixed else 0))
            out["cands"].extend(alt.cands or ())
            out["alt_cands"].append(len(out["cands"]))
        out["clause_start"].append(0)
        for c in range(self.n_clauses):
            out["clause_alts"].extend(self.clause(c))
            out["clause_start"].append(len(out["clause_alts"]))
        for start in ("row_req", "row_rec", "row_sug"):
            out[start].append(0)
        for k in range(self.n_rows):
            r = self.row(k)
            for start, items, values in (("row_req", "req", r.requires), ("row_rec", "rec", r.recommends),
                                         ("row_sug", "sug", r.suggests)):
                out[items].extend(values)
                out[start].append(len(out[items]))
            out["row_prio"].append(r.priority | (0x80 if r.essential else 0))
        head = json.dumps({"names": list(names), "nones": {str(k): v for k, v in self._nones.items()},
                           "counts": [self.n_alts, self.n_clauses, self.n_rows], "choices": self.choices},
                          separators=(",", ":")).encode()
        texts = json.dumps(self.texts(), separators=(",", ":")).encode()
        parts = [head, texts, *(out[k].tobytes() for k in _ARRAYS)]
        return _MAGIC + b"".join(_LEN.pack(len(p)) + p for p in parts)

    @classmethod
    def from_bytes(cls, blob: bytes) -> ClauseTable:
        if not blob.startswith(_MAGIC):
            raise ValueError("not a clause table")
        parts, at = [], len(_MAGIC)
        while at < len(blob):
            (n,) = _LEN.unpack_from(blob, at)
            parts.append(blob[at + _LEN.size:at + _LEN.size + n])
            at += _LEN.size + n
        if len(parts) != 2 + len(_ARRAYS):
            raise ValueError("truncated clause table")
        head = json.loads(parts[0])
        self = cls()
        self._names = [str(n) for n in head["names"]]
        self._nones = {int(k): str(v) for k, v in head["nones"].items()}
        self.n_alts, self.n_clauses, self.n_rows = (int(x) for x in head["counts"])
        self.choices = bool(head["choices"])
        self._texts, self._texts_blob = None, parts[1]
        arrays: dict[str, array[int]] = {}
        for name, raw in zip(_ARRAYS, parts[2:], strict=True):
            arr = array("b" if name == "alt_flags" else "B" if name == "row_prio" else "i")
            arr.frombytes(raw)
            arrays[name] = arr
        if len(arrays["alt_name"]) != self.n_alts or len(arrays["row_prio"]) != self.n_rows \
                or len(arrays["clause_start"]) != self.n_clauses + 1:
            raise ValueError("inconsistent clause table")
        self._arrays = arrays
        return self


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
            cands = self.selector.debian(a)
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
        requires = [self.clause(t) for key in REQUIRE_KEYS for t in relations.get(key, ())]
        requires += [self.cargo_clause(n, r) for n, r in cargo]
        return RowClauses(requires=tuple(requires),
                          recommends=tuple(self.clause(t) for t in relations.get("recommends", ())),
                          suggests=tuple(self.clause(t) for t in relations.get("suggests", ())),
                          priority=PRIORITY_RANK.get(priority, 0), essential=essential)
