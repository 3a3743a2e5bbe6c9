"""SemVer versions and Cargo requirements as libsolv EVRs and version relations.

The PyPI ``solv`` wheel only knows RPM version semantics (``rpmvercmp``), which disagree with
SemVer precedence in several places: ``1.0.0-alpha`` would be version ``1.0.0`` with *release*
``alpha`` (newer than ``1.0.0``); with ``-`` replaced by ``~``, ``alpha.1`` would sort above
``alpha.beta`` (rpm: digit segments beat letter segments; SemVer 11.4.3: numeric identifiers
sort *below* alphanumeric ones) and ``alpha1`` would equal ``alpha.1`` (rpm skips separators
and splits digit/letter runs). :func:`to_evr` therefore encodes a version so that libsolv's
own comparison gives exactly SemVer precedence.

EVR format (see :func:`to_evr`)
    ``MAJOR.MINOR.PATCH`` for a release, ``MAJOR.MINOR.PATCH~ID.ID...`` for a pre-release,
    where every pre-release identifier becomes one *letters-only* segment:

    * numeric ``n``: ``"A"`` + ``"z" * (len(str(L)) - 1)`` + ``letters(str(L))`` +
      ``letters(str(n))`` where ``L = len(str(n))`` and ``letters`` maps the digits
      ``0-9`` to ``a-j`` (``0 -> "Aba"``, ``7 -> "Abh"``, ``92 -> "Acjc"``,
      ``1234567890 -> "Azbabcdefghija"``). A longer number has a longer length field, and a
      longer length field starts with more ``z`` (``z`` sorts above every digit letter), so
      ``strcmp`` order is numeric order for numbers of any size;
    * alphanumeric: each character through an order-preserving prefix code into letters:
      ``-`` -> ``B``, digit ``d`` -> ``C`` + ``letters(d)``, ``A-Z`` -> ``D`` + itself,
      ``a-z`` -> itself (``alpha -> "alpha"``, ``rc-2 -> "rcBCc"``, ``Beta1 -> "DBetaCb"``).
      ASCII order is ``-`` < digits < upper case < lower case and the code words keep it
      (``B`` < ``C?`` < ``D?`` < ``a``-``z``); being a prefix code, lexicographic order of
      the identifier (a proper prefix sorts first) carries over to its encoding.

    Every numeric encoding starts with ``A`` and every alphanumeric one with ``B``, ``C``,
    ``D`` or a lower-case letter, so numeric identifiers sort below alphanumeric ones.

Why this works with ``rpmvercmp`` (libsolv ``solv_vercmp_rpm``): the three core numbers are
digit segments, compared numerically at any size; ``~`` sorts before everything, including
the end of the string, so ``1.0.0~x < 1.0.0`` and ``1.0.0~x < 1.0.1``; after the ``~`` each
identifier is a single maximal letter run (separated by ``.``), compared with ``strcmp``
(case-sensitive, a proper prefix first), and when all segments tie the string with segments
left over is newer -- exactly "a larger set of pre-release fields has higher precedence". The
EVR contains no ``:`` (no epoch) and no ``-`` (no release), so libsolv's "missing release
matches any release" rule for relations never applies. Build metadata is dropped: versions of
equal precedence get identical EVRs (keep the original version text next to the solvable;
nothing here decodes an EVR).

Requirements (see :func:`requirement_to_relations`)
    A Cargo requirement becomes relations on the package name: a list of alternatives (OR),
    each a list of :class:`Rel` that must all hold (AND). For release versions the relations
    select exactly what :meth:`Requirement.matches` accepts.

    Pre-releases cannot be expressed exactly: the ``semver`` crate's opt-in rule (a
    pre-release matches only if some comparator carries a pre-release tag on the same
    MAJOR.MINOR.PATCH) and its partial-version rule make the matching pre-releases a
    non-interval set. The relations are therefore the conservative interval hull: every
    comparator contributes the smallest interval containing all versions it admits (including
    pre-releases it admits ignoring opt-in, e.g. ``>1.2`` admits ``1.3.0-alpha``, below its
    release bound ``1.3.0``; an unbounded side stays unbounded), and the requirement the
    intersection of these, so the selected set is a *superset* of the matching versions
    that differs from them only in pre-release versions. **The solver layer must exclude the
    pre-release versions that a requirement does not match** -- pre-filter the candidate
    versions per dependency with :func:`candidates` (or post-check with
    :func:`admits_prerelease`) before relying on the relations alone.

The libsolv helpers at the end (:func:`evrcmp`, :func:`make_pool`, :func:`select`) build tiny
in-memory pools to check the mapping end to end; they do no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, get_args

import solv

from composer.debversion import num_key, split_deb
from composer.version import (
    Comparator,
    FullVersion,
    Op,
    PreReleaseId,
    Requirement,
    Version,
    dpkg_key,
)

__all__ = [
    "DEFAULT_NAME",
    "Rel",
    "RelOp",
    "Relations",
    "admits_prerelease",
    "candidates",
    "deb_evr",
    "evrcmp",
    "make_pool",
    "native_evr",
    "relation_dep",
    "requirement_interval",
    "requirement_to_relations",
    "select",
    "to_evr",
    "version_text",
]

RelOp: TypeAlias = Literal[">=", ">", "<", "<=", "="]
"""The operator of one libsolv version relation."""

SolvPool: TypeAlias = Any  # solv.Pool -- the bindings carry no type information
SolvRepo: TypeAlias = Any  # solv.XRepo
Solvable: TypeAlias = Any  # solv.XSolvable
SolvProblem: TypeAlias = Any  # solv.Problem

DEFAULT_NAME: Final = "p"
"""Package name used by :func:`make_pool` and :func:`select` unless told otherwise."""

_REL_OPS: Final = frozenset(get_args(RelOp))
_FLAGS: Final[Mapping[str, int]] = {
    ">=": solv.REL_GT | solv.REL_EQ,
    ">": solv.REL_GT,
    "<": solv.REL_LT,
    "<=": solv.REL_LT | solv.REL_EQ,
    "=": solv.REL_EQ,
}

# --------------------------------------------------------------------------- EVR encoding

_DIGIT_LETTERS: Final = str.maketrans("0123456789", "abcdefghij")
_NUMERIC_TAG: Final = "A"
_LENGTH_MARK: Final = "z"  # sorts above every digit letter a-j
_CHAR_CODES: Final[Mapping[str, str]] = {
    "-": "B",
    **{d: "C" + d.translate(_DIGIT_LETTERS) for d in "0123456789"},
    **{u: "D" + u for u in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
    **{lo: lo for lo in "abcdefghijklmnopqrstuvwxyz"},
}


def _encode_numeric(number: int) -> str:
    digits = str(number)
    length = str(len(digits))
    return (
        _NUMERIC_TAG
        + _LENGTH_MARK * (len(length) - 1)
        + length.translate(_DIGIT_LETTERS)
        + digits.translate(_DIGIT_LETTERS)
    )


def _encode_identifier(ident: PreReleaseId) -> str:
    if isinstance(ident, int):
        return _encode_numeric(ident)
    return "".join(_CHAR_CODES[ch] for ch in ident)


def to_evr(version: Version) -> str:
    """The libsolv EVR of ``version``: ``1.2.3`` or ``1.2.3~ID.ID...`` (module doc).

    libsolv's comparison of two such EVRs has the sign of the SemVer precedence comparison of
    the versions; build metadata is ignored, so versions of equal precedence give equal EVRs.
    """
    core = f"{version.major}.{version.minor}.{version.patch}"
    if not version.pre:
        return core
    return core + "~" + ".".join(_encode_identifier(ident) for ident in version.pre)


# --------------------------------------------------------------------------- letters-only EVRs (design14 1.3)
#
# One EVR per version made of letters only: rpmvercmp compares a single alphabetic segment with strcmp, so
# libsolv's order of these EVRs is the plain string order of the codes, built to equal the version order.
# ``num_key``/``dpkg_key`` live in composer.debversion (rank 0) because FullVersion.order_key uses them too.

_PRE_RELEASE_END: Final = "A"
_RELEASE: Final = "Z"
_PRE_RELEASE: Final = "P"
_NATIVE_CHAR_CODES: Final[Mapping[str, str]] = {
    "-": "B",
    **{d: "C" + d.translate(_DIGIT_LETTERS) for d in "0123456789"},
    **{u: "D" + u for u in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
    **{lo: "E" + lo for lo in "abcdefghijklmnopqrstuvwxyz"},
}


def deb_evr(text: str) -> str:
    """The letters-only EVR of a Debian version string: ``num(epoch) + key(upstream) + key(revision)``.

    libsolv's ``evrcmp`` of two such EVRs has the sign of ``dpkg --compare-versions`` (dpkg-equal versions
    such as ``1.0``/``1.0-0``/``1.00`` get the same EVR). ``text`` must be a valid Debian version
    (:class:`composer.version.DebVersion`); a character dpkg refuses raises ``KeyError``.
    """
    epoch, upstream, revision = split_deb(text)
    return num_key(epoch) + dpkg_key(upstream) + dpkg_key(revision)


def _native_identifier(ident: PreReleaseId) -> str:
    if isinstance(ident, int):
        return "B" + num_key(ident)
    return "C" + "".join(_NATIVE_CHAR_CODES[c] for c in ident) + "A"


def native_evr(version: FullVersion) -> str:
    """The letters-only EVR of a version: epoch, MAJOR, MINOR, PATCH, pre-release, revision (design14 1.3).

    ``PRE`` is ``Z`` for a release and ``P`` + ``B<ident>``... + ``A`` for a pre-release (a numeric ident
    ``B`` + number, an alphanumeric one ``C`` + its characters + ``A``): end of pre-release ``A`` sorts below
    a next identifier ``B``, numeric below alphanumeric, a proper prefix first (SemVer 11.4). libsolv's
    ``evrcmp`` of two such EVRs has the sign of the :class:`FullVersion` order; build metadata is ignored.
    A ``deb`` version gets :func:`deb_evr` of its text.
    """
    if version.scheme == "deb":
        return deb_evr(str(version))
    upstream = version.upstream
    if not isinstance(upstream, Version):
        raise TypeError(f"native_evr needs a SemVer upstream, got {type(upstream).__name__}")
    pre = _RELEASE
    if upstream.pre:
        pre = _PRE_RELEASE + "".join("B" + _native_identifier(i) for i in upstream.pre) + _PRE_RELEASE_END
    numbers = num_key(version.epoch) + num_key(upstream.major) + num_key(upstream.minor) + num_key(upstream.patch)
    return numbers + pre + dpkg_key(version.revision)


# --------------------------------------------------------------------------- requirements


@dataclass(frozen=True, slots=True)
class Rel:
    """One libsolv version relation ``NAME op evr`` (the name is supplied when used)."""

    op: RelOp
    evr: str

    def __post_init__(self) -> None:
        if self.op not in _REL_OPS:
            raise ValueError(f"invalid relation operator {self.op!r}; expected one of {sorted(_REL_OPS)}")

    @property
    def flags(self) -> int:
        """The libsolv ``REL_*`` flag combination of :attr:`op`."""
        return _FLAGS[self.op]

    def __str__(self) -> str:
        return f"{self.op} {self.evr}"


Relations: TypeAlias = list[list[Rel]]
"""Alternatives (OR) of conjunctions (AND); ``[]`` selects nothing, ``[[]]`` everything."""

_Bound: TypeAlias = tuple[Version, bool]  # (version, inclusive)


def _first_prerelease(version: Version) -> Version:
    """``MAJOR.MINOR.PATCH-0``: the lowest version with the release triple of ``version``."""
    return Version(major=version.major, minor=version.minor, patch=version.patch, pre=(0,))


def _admits(comparator: Comparator, version: Version) -> bool:
    """Whether ``comparator`` accepts the pre-release ``version``, opt-in rule aside.

    Asked through the public API: pairing the comparator with ``=version`` supplies the
    opt-in (and ``=version`` accepts ``version``), so only ``comparator`` can reject it.
    """
    pin = Comparator(
        op=Op.EXACT, major=version.major, minor=version.minor, patch=version.patch, pre=version.pre
    )
    return Requirement(comparators=(comparator, pin)).matches(version)


def _hull(comparator: Comparator) -> tuple[_Bound | None, _Bound | None]:
    """The smallest interval holding every version ``comparator`` admits (opt-in aside).

    An unbounded side stays unbounded (``<=0.0`` admits no ``0.0.0-*`` but has no lower end).

    :meth:`Comparator.bounds` is exact for releases. A pre-release is judged by its release
    triple against every comparator not written on that very triple, so all pre-releases of
    a release bound's triple are admitted or none is, and ``X.Y.Z-0`` (the lowest version
    with triple ``X.Y.Z``) decides: an inclusive release lower bound drops to ``X.Y.Z-0``
    when that is admitted (``>1.2``, ``^1.2``: ``1.3.0-alpha``, ``1.2.0-alpha``); an
    exclusive release upper bound drops to ``X.Y.Z-0`` when it is not (``^1.2.3`` excludes
    ``2.0.0-alpha``, while ``<2.0.0`` keeps it). Neither change adds or removes a release.
    """
    lower, lower_inclusive, upper, upper_inclusive = comparator.bounds()
    low: _Bound | None = None
    high: _Bound | None = None
    if lower is not None:
        if lower_inclusive and not lower.pre and _admits(comparator, _first_prerelease(lower)):
            lower = _first_prerelease(lower)
        low = (lower, lower_inclusive)
    if upper is not None:
        if not upper_inclusive and not upper.pre and not _admits(comparator, _first_prerelease(upper)):
            upper = _first_prerelease(upper)
        high = (upper, upper_inclusive)
    return low, high


def _higher_lower(a: _Bound | None, b: _Bound | None) -> _Bound | None:
    """The tighter of two lower bounds (at equal versions an exclusive bound is tighter)."""
    if a is None or b is None:
        return a or b
    if a[0].same_precedence(b[0]):
        return (a[0], a[1] and b[1])
    return a if a[0] > b[0] else b


def _lower_upper(a: _Bound | None, b: _Bound | None) -> _Bound | None:
    """The tighter of two upper bounds (at equal versions an exclusive bound is tighter)."""
    if a is None or b is None:
        return a or b
    if a[0].same_precedence(b[0]):
        return (a[0], a[1] and b[1])
    return a if a[0] < b[0] else b


Interval: TypeAlias = tuple["_Bound | None", "_Bound | None"]
"""(lower, upper) bounds, each ``(version, inclusive)`` or None for an unbounded side."""


def requirement_interval(req: Requirement) -> Interval | None:
    """The interval hull of ``req`` (see :func:`_hull`): exact for releases, a superset for
    pre-releases; None when no version can match (``>2, <1``)."""
    low: _Bound | None = None
    high: _Bound | None = None
    for comparator in req.comparators:
        c_low, c_high = _hull(comparator)
        low, high = _higher_lower(low, c_low), _lower_upper(high, c_high)
    if low is not None and high is not None:
        (lo, lo_inclusive), (hi, hi_inclusive) = low, high
        if lo > hi or (lo.same_precedence(hi) and not (lo_inclusive and hi_inclusive)):
            return None
    return low, high


def requirement_to_relations(req: Requirement) -> Relations:
    """libsolv relations selecting ``req``: exact for releases, a superset for pre-releases.

    The result has one alternative -- the intersection of the comparators' intervals (see
    :func:`_hull`) as at most two relations (``=`` for a single version) -- or none when the
    interval is empty (``>2, <1``); ``*`` gives ``[[]]`` (no constraint). Pre-release versions
    that ``req`` does not opt into may be selected: exclude them with :func:`candidates` or
    :func:`admits_prerelease` (module doc).
    """
    interval = requirement_interval(req)
    if interval is None:
        return []
    low, high = interval
    if low is not None and high is not None and low[0].same_precedence(high[0]):
        return [[Rel("=", to_evr(low[0]))]]
    conjunction: list[Rel] = []
    if low is not None:
        conjunction.append(Rel(">=" if low[1] else ">", to_evr(low[0])))
    if high is not None:
        conjunction.append(Rel("<=" if high[1] else "<", to_evr(high[0])))
    return [conjunction]


def admits_prerelease(req: Requirement, version: Version) -> bool:
    """The post-check to apply to versions selected by :func:`requirement_to_relations`.

    False exactly for a pre-release version that ``req`` does not match (for a pre-release
    this is ``req.matches(version)``); True for every release, which the relations already
    decide exactly.
    """
    return not version.is_prerelease or req.matches(version)


def candidates(req: Requirement, versions: Iterable[Version]) -> list[Version]:
    """The versions ``req`` matches, in input order (the oracle the relations are checked with)."""
    return [v for v in versions if req.matches(v)]


# --------------------------------------------------------------------------- libsolv helpers


def evrcmp(evr1: str, evr2: str) -> int:
    """libsolv's own comparison of two EVRs: -1, 0 or 1.

    The Python bindings have no pool-level ``evrcmp``; ``XSolvable.evrcmp`` compares the
    EVRs of two solvables with ``pool_evrcmp(..., EVRCMP_COMPARE)``, so this builds a
    throw-away pool with two solvables.
    """
    pool = solv.Pool()
    repo = pool.add_repo("evrcmp")
    first, second = repo.add_solvable(), repo.add_solvable()
    first.evr, second.evr = evr1, evr2
    result = int(first.evrcmp(second))
    return (result > 0) - (result < 0)


def relation_dep(pool: SolvPool, name: str, rel: Rel) -> int:
    """The dependency id of ``name <op> <evr>`` in ``pool``."""
    return int(pool.rel2id(pool.str2id(name), pool.str2id(rel.evr), rel.flags))


def make_pool(
    versions: Iterable[Version], name: str = DEFAULT_NAME
) -> tuple[SolvPool, SolvRepo, dict[str, Solvable]]:
    """A pool with one repository holding one ``noarch`` solvable per version of ``name``.

    Each solvable has EVR :func:`to_evr` of its version, provides ``name = evr`` and keeps
    the original version text (build metadata included) as its summary, see
    :func:`version_text`. Returns ``(pool, repo, {str(version): solvable})``; duplicate
    version texts are added once. ``whatprovides`` is ready to use.
    """
    pool = solv.Pool()
    repo = pool.add_repo(name)
    data = repo.add_repodata()
    name_id = pool.str2id(name)
    solvables: dict[str, Solvable] = {}
    for version in versions:
        text = str(version)
        if text in solvables:
            continue
        solvable = repo.add_solvable()
        solvable.name = name
        solvable.evr = to_evr(version)
        solvable.arch = "noarch"
        solvable.add_provides(pool.rel2id(name_id, solvable.evrid, solv.REL_EQ))
        data.set_str(solvable.id, solv.SOLVABLE_SUMMARY, text)
        solvables[text] = solvable
    repo.internalize()
    pool.createwhatprovides()
    return pool, repo, solvables


def version_text(solvable: Solvable) -> str:
    """The original version text :func:`make_pool` stored on ``solvable``."""
    return str(solvable.lookup_str(solv.SOLVABLE_SUMMARY))


def select(pool: SolvPool, req: Requirement, name: str = DEFAULT_NAME) -> set[str]:
    """Version texts of the ``name`` solvables that libsolv selects for ``req``.

    Evaluates :func:`requirement_to_relations` with ``pool.whatprovides``: the relations of
    an alternative are intersected, the alternatives united. No pre-release filtering is
    applied (see :func:`admits_prerelease`).
    """
    chosen: set[int] = set()
    for conjunction in requirement_to_relations(req):
        ids = {s.id for s in pool.whatprovides(pool.str2id(name))}
        for rel in conjunction:
            ids &= {s.id for s in pool.whatprovides(relation_dep(pool, name, rel))}
        chosen |= ids
    return {version_text(pool.id2solvable(solvid)) for solvid in chosen}
