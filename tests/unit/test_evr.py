"""Tests for composer.solve.evr: SemVer precedence through libsolv's own version comparison.

Every ordering claim is checked with the real ``solv`` bindings (``evrcmp`` compares two
solvables' EVRs inside libsolv; ``select`` evaluates relations with ``pool.whatprovides``),
against SemVer precedence (``Version.precedence_key``) and the requirement oracle
``Requirement.matches``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.solve.evr import (
    Rel,
    admits_prerelease,
    candidates,
    deb_evr,
    evrcmp,
    make_pool,
    native_evr,
    relation_dep,
    requirement_to_relations,
    select,
    to_evr,
    version_text,
)
from composer.version import Comparator, FullVersion, Op, PreReleaseId, Requirement, Version

V = Version.parse
R = Requirement.parse


def semver_cmp(a: Version, b: Version) -> int:
    ka, kb = a.precedence_key(), b.precedence_key()
    return (ka > kb) - (ka < kb)


def solv_cmp(a: Version, b: Version) -> int:
    return evrcmp(to_evr(a), to_evr(b))


# --------------------------------------------------------------------------- tables

SEMVER_ORG_CHAIN = [
    "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
    "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0", "10.0.0",
]


def test_semver_org_chain_in_libsolv() -> None:
    chain = [V(t) for t in SEMVER_ORG_CHAIN]
    for (i, a), (j, b) in itertools.product(enumerate(chain), repeat=2):
        expected = (i > j) - (i < j)
        assert semver_cmp(a, b) == expected
        assert solv_cmp(a, b) == expected, (str(a), str(b), to_evr(a), to_evr(b))


# (lower, higher) in SemVer precedence.
TRICKY_ORDERED = [
    ("1.0.0-0", "1.0.0-00a"),            # numeric below alphanumeric (11.4.3)
    ("1.0.0-0", "1.0.0--"),
    ("1.0.0-0", "1.0.0-0.0"),            # more fields win (11.4.4)
    ("1.0.0-0.0", "1.0.0-1"),
    ("1.0.0-9", "1.0.0-10"),             # numeric, not lexical
    ("1.0.0-999999999", "1.0.0-1000000000"),  # 9 -> 10 digits: the length field grows a 'z'
    ("1.0.0-" + "9" * 99, "1.0.0-1" + "0" * 99),
    ("1.0.0-9999999999999999999", "1.0.0-99999999999999999999"),
    ("1.0.0-99999999999999999999", "1.0.0-a"),
    ("1.0.0--", "1.0.0---"),
    ("1.0.0--", "1.0.0-0a"),             # ASCII: '-' < '0'
    ("1.0.0-00a", "1.0.0-0a"),
    ("1.0.0-0a", "1.0.0-A"),             # digits < upper case
    ("1.0.0-A", "1.0.0-Z"),
    ("1.0.0-Z", "1.0.0-a"),              # upper case < lower case
    ("1.0.0-Beta", "1.0.0-alpha"),
    ("1.0.0-a", "1.0.0-a-b"),            # a proper prefix sorts first
    ("1.0.0-a.b", "1.0.0-a-b"),          # ("a", "b") < ("a-b",) because "a" < "a-b"
    ("1.0.0-a-b", "1.0.0-a0"),
    ("1.0.0-alpha.1", "1.0.0-alpha1"),   # rpm would call these equal
    ("1.0.0-alpha1", "1.0.0-alpha2"),
    ("1.0.0-alpha9", "1.0.0-alphaA"),
    ("1.0.0-rc.2", "1.0.0-rc-2"),
    ("1.0.0-rc-2", "1.0.0-rc2"),
    ("1.0.0-x.7.z.92", "1.0.0-x.7.z.93"),
    ("1.0.0-x.7.z.92", "1.0.0-x.7.z.92.0"),
    ("1.0.0-x.7.z.92", "1.0.0-x.7.za"),
    ("1.0.0-x.7.z.92", "1.0.0-x.8"),
    ("1.0.0-x.7.z.92", "1.0.0-x.a"),
    ("1.0.0-alpha.beta", "1.0.0-alpha.beta.1"),
    ("1.0.0-rc.1", "1.0.0"),
    ("1.0.0", "1.0.1-0"),
    ("0.0.0-0", "0.0.0"),
    ("1.9.0", "1.10.0-alpha"),
    ("9999999999999999999.0.0", "99999999999999999999.0.0"),
    ("99999999999999999999.0.0-rc.1", "99999999999999999999.0.0"),
    ("99999999999999999999.0.0", "100000000000000000000.0.0-0"),
]


@pytest.mark.parametrize(("low", "high"), TRICKY_ORDERED)
def test_tricky_identifiers_in_libsolv(low: str, high: str) -> None:
    a, b = V(low), V(high)
    assert semver_cmp(a, b) == -1  # the table itself is right
    assert solv_cmp(a, b) == -1, (to_evr(a), to_evr(b))
    assert solv_cmp(b, a) == 1
    assert solv_cmp(a, a) == 0


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("1.0.0+build.1", "1.0.0"),
        ("1.0.0+build.1", "1.0.0+build.2"),
        ("1.0.0-rc.1+exp.sha.5114f85", "1.0.0-rc.1"),
        ("1.0.0-alpha-1+0--0", "1.0.0-alpha-1+x"),
    ],
)
def test_build_metadata_gives_equal_evr(left: str, right: str) -> None:
    a, b = V(left), V(right)
    assert a != b and a.same_precedence(b)
    assert to_evr(a) == to_evr(b)
    assert solv_cmp(a, b) == 0


@pytest.mark.parametrize(
    ("version", "evr"),
    [
        ("1.2.3", "1.2.3"),
        ("1.2.3+b.7", "1.2.3"),
        ("1.0.0-alpha", "1.0.0~alpha"),
        ("1.0.0-alpha.1", "1.0.0~alpha.Abb"),
        ("1.0.0-0", "1.0.0~Aba"),
        ("1.0.0-beta.11", "1.0.0~beta.Acbb"),
        ("1.0.0-1234567890", "1.0.0~Azbabcdefghija"),
        ("1.0.0-rc-2", "1.0.0~rcBCc"),
        ("1.0.0-Beta1", "1.0.0~DBetaCb"),
        ("1.0.0--", "1.0.0~B"),
        ("1.0.0-00a", "1.0.0~CaCaa"),
    ],
)
def test_evr_format(version: str, evr: str) -> None:
    assert to_evr(V(version)) == evr


def _naive_text(v: Version) -> str:
    """The SemVer text as the EVR: "-pre" becomes an rpm *release*, newer than no release."""
    return str(replace(v, build=()))


def _naive_tilde(v: Version) -> str:
    """'-' -> '~': a pre-release now sorts first, but rpm's segment rules still differ."""
    return _naive_text(v).replace("-", "~")


NAIVE_MAPPINGS: dict[str, Callable[[Version], str]] = {"semver text": _naive_text, "dash to tilde": _naive_tilde}


@pytest.mark.parametrize("name", sorted(NAIVE_MAPPINGS))
def test_naive_mappings_disagree_with_semver(name: str) -> None:
    """Why the encoding exists: the obvious mappings order some versions wrongly in libsolv."""
    naive = NAIVE_MAPPINGS[name]
    pairs = [(V(a), V(b)) for a, b in [*itertools.pairwise(SEMVER_ORG_CHAIN), *TRICKY_ORDERED]]
    wrong = [(str(a), str(b)) for a, b in pairs if evrcmp(naive(a), naive(b)) != semver_cmp(a, b)]
    assert wrong
    assert all(solv_cmp(a, b) == semver_cmp(a, b) for a, b in pairs)


def test_naive_mapping_examples() -> None:
    # rpm release "alpha" on 1.0.0 is newer than 1.0.0 itself.
    assert evrcmp("1.0.0-alpha", "1.0.0") == 1
    # rpm: digit segments beat letter segments; SemVer 11.4.3 says the opposite.
    assert evrcmp("1.0.0~alpha.1", "1.0.0~alpha.beta") == 1
    # rpm skips separators and splits digit/letter runs: alpha1 == alpha.1.
    assert evrcmp("1.0.0~alpha1", "1.0.0~alpha.1") == 0
    # and the encoding gets all three right
    assert solv_cmp(V("1.0.0-alpha"), V("1.0.0")) == -1
    assert solv_cmp(V("1.0.0-alpha.1"), V("1.0.0-alpha.beta")) == -1
    assert solv_cmp(V("1.0.0-alpha.1"), V("1.0.0-alpha1")) == -1


# --------------------------------------------------------------------------- relations


@pytest.mark.parametrize(
    ("requirement", "relations"),
    [
        ("*", [[]]),
        ("^1.2.3", [[">= 1.2.3", "< 2.0.0~Aba"]]),
        ("~1.2.3-beta", [[">= 1.2.3~beta", "< 1.3.0~Aba"]]),
        ("=1.2.3+build", [["= 1.2.3"]]),
        ("=1.2", [[">= 1.2.0", "< 1.3.0~Aba"]]),
        (">1.2", [[">= 1.3.0~Aba"]]),
        ("^1.2", [[">= 1.2.0~Aba", "< 2.0.0~Aba"]]),
        (">=1.2.3", [[">= 1.2.3"]]),
        (">1.2.3", [["> 1.2.3"]]),
        ("<2.0.0", [["< 2.0.0"]]),
        ("<=1.2", [["< 1.3.0~Aba"]]),
        ("<=1.2.3-rc.1", [["<= 1.2.3~rc.Abb"]]),
        (">=1.0, <2.0", [[">= 1.0.0", "< 2.0.0~Aba"]]),
        (">=1.2, >1.2.0, <=1.5", [["> 1.2.0", "< 1.6.0~Aba"]]),
        (">=1.2.3, <=1.2.3", [["= 1.2.3"]]),
        (">2, <1", []),
        (">=1.2.3, <1.2.3", []),
    ],
)
def test_relations_table(requirement: str, relations: list[list[str]]) -> None:
    assert [[str(rel) for rel in conj] for conj in requirement_to_relations(R(requirement))] == relations


PRE_POOL = [
    "1.1.0", "1.2.0-alpha", "1.2.0", "1.2.3-beta", "1.2.3", "1.2.4-rc.1", "1.2.4",
    "1.3.0-alpha", "1.3.0-beta", "1.3.0", "2.0.0-alpha", "2.0.0", "2.0.0+b",
]


@pytest.mark.parametrize(
    ("requirement", "selected", "matching"),
    [
        # Bounds widened below a release: the crate judges 1.3.0-alpha by 1.3.0 against '>1.2',
        # so the release bound 1.3.0 alone would lose it.
        (">1.2, <=1.3.0-beta", {"1.3.0-alpha", "1.3.0-beta"}, {"1.3.0-alpha", "1.3.0-beta"}),
        ("^1.2, <=1.2.0-beta", {"1.2.0-alpha"}, {"1.2.0-alpha"}),
        # Narrowed: ^1.2.3 never admits 2.0.0-alpha, so it is not even selected ...
        ("^1.2.3", {"1.2.3", "1.2.4-rc.1", "1.2.4", "1.3.0-alpha", "1.3.0-beta", "1.3.0"},
         {"1.2.3", "1.2.4", "1.3.0"}),
        # ... while <2.0.0 admits it and only the opt-in rule rejects it (the post-filter).
        ("<2.0.0, >=1.3.0", {"1.3.0", "2.0.0-alpha"}, {"1.3.0"}),
        ("<2.0.0, >=1.3.0, >=2.0.0-alpha", {"2.0.0-alpha"}, {"2.0.0-alpha"}),
        ("=2.0.0", {"2.0.0", "2.0.0+b"}, {"2.0.0", "2.0.0+b"}),
        ("*", set(PRE_POOL), {t for t in PRE_POOL if "-" not in t}),
    ],
)
def test_select_in_real_pool(requirement: str, selected: set[str], matching: set[str]) -> None:
    versions = [V(t) for t in PRE_POOL]
    req = R(requirement)
    pool, _repo, solvables = make_pool(versions)
    assert set(solvables) == set(PRE_POOL)
    got = select(pool, req)
    assert got == selected
    assert {t for t in got if admits_prerelease(req, V(t))} == matching
    assert {str(v) for v in candidates(req, versions)} == matching


def test_release_bounds_alone_would_miss_a_matching_prerelease() -> None:
    req = R(">1.2, <=1.3.0-beta")
    lower = req.comparators[0].bounds()[0]
    assert lower == V("1.3.0")
    assert req.matches(V("1.3.0-alpha")) and V("1.3.0-alpha") < lower


def test_make_pool_and_relation_dep() -> None:
    pool, repo, solvables = make_pool([V("1.0.0-rc.1+x"), V("1.0.0"), V("1.0.0")], name="pkg")
    assert list(solvables) == ["1.0.0-rc.1+x", "1.0.0"]
    assert repo.nsolvables == 2
    rc = solvables["1.0.0-rc.1+x"]
    assert (rc.name, rc.evr, rc.arch) == ("pkg", "1.0.0~rc.Abb", "noarch")
    assert version_text(rc) == "1.0.0-rc.1+x"
    dep = relation_dep(pool, "pkg", Rel("<", "1.0.0"))
    assert pool.dep2str(dep) == "pkg < 1.0.0"
    assert [version_text(s) for s in pool.whatprovides(dep)] == ["1.0.0-rc.1+x"]


def test_rel_checks_its_operator() -> None:
    with pytest.raises(ValueError, match="invalid relation operator"):
        Rel("!=", "1.0.0")  # type: ignore[arg-type]
    assert {Rel(op, "1").flags for op in (">=", ">", "<", "<=", "=")} == {1, 2, 3, 4, 6}


GRID_TRIPLES = list(itertools.product(range(3), repeat=3))
GRID_PRES: list[tuple[PreReleaseId, ...]] = [(), (0,), ("alpha",), ("alpha", 1), ("beta",)]
GRID = [
    Version(major=major, minor=minor, patch=patch, pre=pre)
    for major, minor, patch in GRID_TRIPLES
    for pre in GRID_PRES
]


def grid_comparators() -> list[Comparator]:
    found: list[Comparator] = []
    for op, (major, minor, patch) in itertools.product(Op, GRID_TRIPLES):
        found.append(Comparator(op=op, major=major, minor=minor))
        if minor == 0:
            found.append(Comparator(op=op, major=major))
        if op is not Op.WILDCARD:
            found += [Comparator(op=op, major=major, minor=minor, patch=patch, pre=pre)
                      for pre in GRID_PRES if len(pre) < 2]
    return list(dict.fromkeys(found))


def admitted(comparator: Comparator, version: Version) -> bool:
    """Whether ``comparator`` accepts ``version``, the pre-release opt-in rule aside.

    The crate: a version matches iff every comparator accepts it and, for a pre-release, some
    comparator opts in. ``=version`` accepts ``version`` and opts in, so adding it leaves
    ``comparator`` as the only judge.
    """
    pin = Comparator(op=Op.EXACT, major=version.major, minor=version.minor, patch=version.patch, pre=version.pre)
    return Requirement(comparators=(comparator, pin)).matches(version)


def test_every_comparator_selects_the_hull_of_what_it_admits() -> None:
    """Exhaustive over a grid: one comparator's relations select every version it admits
    (pre-releases included, opt-in aside), exactly its releases, and nothing outside the
    smallest interval holding what it admits (an unbounded side stays unbounded: ``<=0.0``
    selects ``0.0.0-alpha``, below everything it admits)."""
    pool, _repo, _ = make_pool(GRID)
    comparators = grid_comparators()
    assert len(comparators) > 600
    for comparator in comparators:
        req = Requirement(comparators=(comparator,))
        texts = select(pool, req)
        selected = {v for v in GRID if str(v) in texts}
        admits = {v for v in GRID if admitted(comparator, v)}
        assert set(candidates(req, GRID)) <= admits  # the definition is sound
        assert admits <= selected, (str(comparator), sorted(map(str, admits - selected)))
        assert {v for v in selected if not v.pre} == {v for v in admits if not v.pre}, str(comparator)
        lower, _, upper, _ = comparator.bounds()
        unbounded_below, unbounded_above = lower is None, upper is None
        for extra in selected - admits:
            assert unbounded_below or any(a < extra for a in admits), (str(comparator), str(extra))
            assert unbounded_above or any(extra < a for a in admits), (str(comparator), str(extra))


# --------------------------------------------------------------------------- properties

_ID_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-"
# Numbers of 1 to 30 digits, so that digit counts on both sides of 9/10 meet often.
_numbers = st.one_of(
    st.integers(0, 12),
    st.integers(1, 30).flatmap(lambda d: st.integers(10 ** (d - 1), 10**d - 1)),
)
_alnum = st.one_of(
    st.sampled_from(["alpha", "beta", "rc", "a", "a-b", "rc-1", "alpha1", "0a", "00a", "-", "--", "A", "Z", "x-"]),
    st.text(alphabet=_ID_CHARS, min_size=1, max_size=6).filter(lambda s: not s.isdigit()),
    st.text(alphabet="0a-", min_size=1, max_size=4).filter(lambda s: not s.isdigit()),
)
_identifiers = st.one_of(_numbers, _alnum)
_builds = st.lists(st.text(alphabet=_ID_CHARS, min_size=1, max_size=4), max_size=2).map(tuple)
_cores = st.one_of(st.integers(0, 3), st.integers(0, 10**21))


@st.composite
def versions(draw: st.DrawFn) -> Version:
    pre = draw(st.one_of(st.just(()), st.lists(_identifiers, min_size=1, max_size=4).map(tuple)))
    return Version(major=draw(_cores), minor=draw(_cores), patch=draw(_cores), pre=pre, build=draw(_builds))


_close_alnum = st.text(alphabet="-09AZaz", min_size=1, max_size=3).filter(lambda s: not s.isdigit())


@st.composite
def version_pairs(draw: st.DrawFn) -> tuple[Version, Version]:
    """Independent pairs, plus pairs that tie on everything up to one field."""
    a = draw(versions())
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return a, draw(versions())
    if kind == 1:
        return a, replace(a, build=draw(_builds))
    if kind == 2:
        return a, replace(a, pre=a.pre + tuple(draw(st.lists(_identifiers, min_size=1, max_size=2))))
    if kind == 3:
        return a, replace(a, pre=(*a.pre[:-1], draw(_identifiers)), build=draw(_builds))
    if kind == 4:
        return a, replace(a, patch=draw(_cores), pre=a.pre[:1])
    # Same leading identifiers, then two numbers (kind 5) or two short alphanumerics (kind 6).
    last: st.SearchStrategy[PreReleaseId] = _numbers if kind == 5 else _close_alnum
    return replace(a, pre=(*a.pre, draw(last))), replace(a, pre=(*a.pre, draw(last)))


@settings(max_examples=500, deadline=None)
@given(version_pairs())
def test_libsolv_order_is_semver_precedence(pair: tuple[Version, Version]) -> None:
    a, b = pair
    ea, eb = to_evr(a), to_evr(b)
    assert evrcmp(ea, eb) == semver_cmp(a, b), (str(a), str(b), ea, eb)
    assert evrcmp(eb, ea) == semver_cmp(b, a)
    assert (ea == eb) == a.same_precedence(b)
    assert "-" not in ea and ":" not in ea


@settings(max_examples=500, deadline=None)
@given(st.lists(versions(), min_size=3, max_size=6))
def test_libsolv_sorts_like_semver(vs: list[Version]) -> None:
    """Sorting with libsolv's comparison (a total order on triples and beyond) is SemVer order."""
    by_solv = sorted(vs, key=functools.cmp_to_key(solv_cmp))
    keys = [v.precedence_key() for v in by_solv]
    assert keys == sorted(keys)
    for a, b, c in itertools.combinations(vs, 3):
        if solv_cmp(a, b) <= 0 and solv_cmp(b, c) <= 0:
            assert solv_cmp(a, c) <= 0


_small_pre = st.sampled_from([(), (), (), ("alpha",), ("alpha", 1), ("beta",), (0,), ("rc", 1)])
_some_pre = st.sampled_from([("alpha",), ("alpha", 1), ("beta",), (0,), ("rc", 1)])
_small = st.integers(0, 3)
_builds_small = st.sampled_from([(), (), (), ("b",)])
_Triple = tuple[int, int, int]


@st.composite
def small_versions(draw: st.DrawFn, triples: tuple[_Triple, ...] = ()) -> Version:
    """Small versions; with ``triples``, often on one of them (where the pre-release rules bite)."""
    anchored = draw(st.booleans())
    if triples and anchored:
        major, minor, patch = draw(st.sampled_from(triples))
    else:
        major, minor, patch = draw(_small), draw(_small), draw(_small)
    return Version(major=major, minor=minor, patch=patch, pre=draw(_small_pre), build=draw(_builds_small))


@st.composite
def comparators(draw: st.DrawFn, triples: tuple[_Triple, ...] = ()) -> Comparator:
    op = draw(st.sampled_from(list(Op)))
    anchored = draw(st.booleans())
    if triples and anchored:
        major, full_minor, full_patch = draw(st.sampled_from(triples))
    else:
        major, full_minor, full_patch = draw(_small), draw(_small), draw(_small)
    given_parts = draw(st.integers(1, 2 if op is Op.WILDCARD else 3))
    minor = full_minor if given_parts >= 2 else None
    patch = full_patch if given_parts == 3 else None
    pre = draw(_small_pre) if patch is not None else ()
    return Comparator(op=op, major=major, minor=minor, patch=patch, pre=pre)


def _anchor_triples(comparator: Comparator) -> set[_Triple]:
    """The comparator's own triple and the triples of its interval ends."""
    lower, _, upper, _ = comparator.bounds()
    ends = [v for v in (lower, upper) if v is not None]
    own = (comparator.major, comparator.minor or 0, comparator.patch or 0)
    return {own} | {(v.major, v.minor, v.patch) for v in ends}


@st.composite
def requirement_cases(draw: st.DrawFn, releases_only: bool = False) -> tuple[Requirement, list[Version]]:
    """A requirement of 0-3 comparators that tend to share triples (ties, opt-ins, empty
    intervals), and up to 15 versions that tend to sit on those triples."""
    comps: list[Comparator] = []
    anchors: set[_Triple] = set()
    for _ in range(draw(st.integers(0, 3))):
        comps.append(draw(comparators(tuple(sorted(anchors)))))
        anchors |= _anchor_triples(comps[-1])
    extra: list[Version] = []
    opt_in = draw(st.integers(0, 3)) > 0
    if comps and opt_in:
        # An opt-in: a full comparator with a pre-release tag on a triple already in play,
        # and some pre-releases on that triple.
        major, minor, patch = draw(st.sampled_from(sorted(anchors)))
        op = draw(st.sampled_from([o for o in Op if o is not Op.WILDCARD]))
        comps.append(Comparator(op=op, major=major, minor=minor, patch=patch, pre=draw(_some_pre)))
        extra = [
            Version(major=major, minor=minor, patch=patch, pre=pre)
            for pre in draw(st.lists(_some_pre, min_size=1, max_size=4, unique=True))
        ]
    comps = list(draw(st.permutations(comps)))
    vs = draw(st.lists(small_versions(tuple(sorted(anchors))), min_size=1, max_size=15 - len(extra)))
    vs = draw(st.permutations(vs + extra))
    if releases_only:
        vs = [replace(v, pre=()) for v in vs]
    return Requirement(comparators=tuple(comps)), vs


@settings(max_examples=400, deadline=None)
@given(requirement_cases())
def test_libsolv_selection_then_prerelease_filter_is_the_oracle(case: tuple[Requirement, list[Version]]) -> None:
    req, vs = case
    assert Requirement.parse(str(req)) == req
    pool, _repo, solvables = make_pool(vs)
    by_text = {str(v): v for v in vs}
    assert set(solvables) == set(by_text)
    selected = select(pool, req)
    oracle = {str(v) for v in candidates(req, vs)}
    assert oracle <= selected, (str(req), requirement_to_relations(req))
    assert {t for t in selected if admits_prerelease(req, by_text[t])} == oracle
    # Whatever the relations select beyond the oracle is a pre-release.
    assert all(by_text[t].is_prerelease for t in selected - oracle)


@settings(max_examples=300, deadline=None)
@given(requirement_cases(releases_only=True))
def test_libsolv_selection_of_releases_is_the_oracle(case: tuple[Requirement, list[Version]]) -> None:
    req, vs = case
    pool, _repo, _ = make_pool(vs)
    assert select(pool, req) == {str(v) for v in candidates(req, vs)}


# --------------------------------------------------------------------------- letters-only EVRs (design14 1.3)
# The big oracles (dpkg CLI, real Debian versions, hypothesis) are in test_dpkg_order.py.


def test_deb_evr_pinned_form() -> None:
    """The exact bytes: num(epoch) + part(upstream) + part(revision); a change means POOL_REVISION must move."""
    assert deb_evr("1:2.36-9+deb12u7") == "bb" + "BbcEcBcdgBbaB" + "BbjEaDdDeDbBcbcDuBbhBbaB"
    assert deb_evr("1.0~rc1-1") == "ba" + "BbbEcBbaADrDcBbbBbaB" + "BbbBbaB"
    assert deb_evr("1.0") == deb_evr("1.0-0") == deb_evr("1.00") == deb_evr("0:1.0")


@pytest.mark.parametrize("chain", [
    ["1.0~~", "1.0~", "1.0~rc1", "1.0", "1.0-0.1", "1.0-1", "1.0-1+b1", "1.0a", "1.0+", "1.0.1", "1:0"],
    ["2.36-9", "2.36-9+deb12u2", "2.36-9+deb12u5", "2.36-10", "2.36.1-1", "2.37~rc1"],
    ["183-0~", "183-0", "183-0+", "183-0.0.1"],
])
def test_deb_evr_chains_in_libsolv(chain: list[str]) -> None:
    evrs = [deb_evr(v) for v in chain]
    assert all(e.isascii() and e.isalpha() for e in evrs)  # no ':' or '-': no rpm epoch/release rules
    for (i, a), (j, b) in itertools.product(enumerate(evrs), repeat=2):
        assert evrcmp(a, b) == (i > j) - (i < j), (chain[i], chain[j])


def test_native_evr_pinned_form_and_order() -> None:
    assert native_evr(FullVersion.parse("1:1.2.3-rc.1-r4")) == "bb" + "bbbcbd" + "PBCErEcABBbbA" + "BbeBbaB"
    chain = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
             "1.0.0-rc.1", "1.0.0", "1.0.0-r0.1", "1.0.0-r1", "1.0.0-r1+b1", "1.0.0-r2", "1.0.1", "1:0.0.0"]
    evrs = [native_evr(FullVersion.parse(t)) for t in chain]
    for (i, a), (j, b) in itertools.product(enumerate(evrs), repeat=2):
        assert evrcmp(a, b) == (i > j) - (i < j), (chain[i], chain[j])
    assert native_evr(FullVersion.parse("1.0.0+a")) == native_evr(FullVersion.parse("1.0.0+b"))
    assert native_evr(FullVersion.parse("1:2.36-9", "deb")) == deb_evr("1:2.36-9")


def test_to_evr_is_unchanged() -> None:
    assert to_evr(V("1.2.3")) == "1.2.3"
    assert to_evr(V("1.0.0-alpha.7")) == "1.0.0~alpha.Abh"
