"""Cargo requirements that name an epoch (``E:``) and a revision (``-rN``): design14 section 1.2.

The oracle is the definition: a comparator with a revision compares (SemVer, revision) in
``FullVersion.order_key()`` order, one with an epoch compares the epoch first, and a part that is not written
is ignored; the pre-release opt-in rule is Cargo's. ``is_empty`` is checked against brute force on a universe
that holds every witness (revisions between and below the ones the comparators name).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.version import Comparator, FullVersion, Op, Requirement, Version, VersionError

F = FullVersion.parse

# --------------------------------------------------------------------------- tables


@pytest.mark.parametrize(("requirement", "version", "expected"), [
    # the brief's examples
    ("=1.2.3-r4", "1.2.3-r4", True), ("=1.2.3-r4", "1.2.3-r5", False), ("=1.2.3-r4", "1.2.3", False),
    (">=1.2.3-r4", "1.2.3-r5", True), (">=1.2.3-r4", "1.2.4", True), (">=1.2.3-r4", "1.2.3-r3", False),
    ("<1.2.3-r4", "1.2.3-r3", True), ("<1.2.3-r4", "1.2.2", True), ("<1.2.3-r4", "1.2.3-r4", False),
    ("<1.2.3-r4", "1.2.3-r10", False),
    # no revision: today's behaviour, every revision of 1.2.3
    ("=1.2.3", "1.2.3-r4", True), (">1.2.3", "1.2.3-r4", False), ("<=1.2.3", "1.2.3-r99", True),
    # no epoch: the epoch is ignored; with one it is compared first
    ("=1.2.3-r4", "1:1.2.3-r4", True), ("=1:1.2.3-r4", "1.2.3-r4", False), ("=1:1.2.3-r4", "1:1.2.3-r4", True),
    (">=1:1.0.0", "2:0.1.0", True), (">=1:1.0.0", "0:9.0.0", False), ("<1:1.0.0", "0:9.0.0", True),
    ("<1:1.0.0", "2:0.0.1", False), ("^1:1.2.0", "1:1.9.0", True), ("^1:1.2.0", "2:1.9.0", False),
    ("1:1.*", "1:1.5.0-r2", True), ("1:1.*", "1.5.0", False), (">=1:1.2.3-r4, <2", "1:1.2.3-r4", True),
    # caret and tilde with a revision: the revision is the lower bound, the upper bound is Cargo's
    ("^1.2.3-r4", "1.2.3-r4", True), ("^1.2.3-r4", "1.2.3-r3", False), ("^1.2.3-r4", "1.9.0", True),
    ("^1.2.3-r4", "2.0.0", False), ("~1.2.3-r4", "1.2.9", True), ("~1.2.3-r4", "1.3.0", False),
    ("1.2.3-r4", "1.2.3-r4.1", True),
    # dpkg order on revisions: 1 < 1+b1 < 1.1 < 2 < 10, '~' first, none = 0
    (">1.0.0-r1", "1.0.0-r1+b1", True), ("<1.0.0-r1.1", "1.0.0-r1+b1", True), (">1.0.0-r2", "1.0.0-r10", True),
    ("<1.0.0-r1", "1.0.0-r1~rc1", True), ("=1.0.0-r0", "1.0.0", True), (">=1.0.0-r0", "1.0.0-r0~1", False),
    # pre-releases keep Cargo's opt-in rule
    ("=1.0.0-rc.1-r2", "1.0.0-rc.1-r2", True), (">=1.0.0-r2", "1.0.1-rc.1", False),
    (">=1.0.0-rc.1-r2", "1.0.0-rc.2", True), (">=1.0.0-rc.1-r2", "1.0.0-rc.1-r1", False),
])
def test_matches_full(requirement: str, version: str, expected: bool) -> None:
    assert Requirement.parse(requirement).matches_full(F(version)) is expected


def test_deb_versions_are_seen_as_epoch_projection_revision() -> None:
    glibc = F("1:2.36-9+deb12u7", "deb")   # (1, 2.36.0, 9+deb12u7)
    assert Requirement.parse(">=1:2.36.0-r9").matches_full(glibc)
    assert not Requirement.parse(">=1:2.36.0-r10").matches_full(glibc)
    assert Requirement.parse("=2.36.0-r9+deb12u7").matches_full(glibc)
    assert not Requirement.parse("=0:2.36.0").matches_full(glibc)


def test_plain_version_has_epoch_zero_and_no_revision() -> None:
    v = Version.parse("1.2.3")
    assert Requirement.parse("=1.2.3-r0").matches(v)   # no revision = 0
    assert not Requirement.parse("=1.2.3-r1").matches(v)
    assert not Requirement.parse(">=1:1.0.0").matches(v)
    assert Requirement.parse("<=0:1.2.3-r0").matches(v)


@pytest.mark.parametrize(("text", "fragment"), [
    ("=1.2-r4", "needs a full MAJOR.MINOR.PATCH"), ("1-r4", "needs a full MAJOR.MINOR.PATCH"),
    ("1.*-r4", "needs a full MAJOR.MINOR.PATCH"), (">=1.2.3-r1-r2", "only the last '-rN' is the revision"),
    ("=99999999999:1.0.0", "larger than"), ("=1:", "needs a version after it"), ("=x:1.0.0", "'x'"),
    ("=1.2.3-r4 5", "separate comparators"),
])
def test_bad_requirements_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(VersionError) as info:
        Requirement.parse(text)
    assert fragment in str(info.value), str(info.value)
    assert repr(text) in str(info.value)


def test_comparator_fields_are_checked() -> None:
    with pytest.raises(VersionError, match="needs a full"):
        Comparator(op=Op.EXACT, major=1, minor=2, revision="4")
    with pytest.raises(VersionError, match="start with a digit"):
        Comparator(op=Op.EXACT, major=1, minor=2, patch=3, revision="r4")
    with pytest.raises(VersionError, match="negative"):
        Comparator(op=Op.EXACT, major=1, epoch=-1)
    c = Comparator(op=Op.GREATER_EQ, major=1, minor=2, patch=3, epoch=1, revision="4+b1")
    assert str(c) == ">=1:1.2.3-r4+b1" and Comparator.parse(str(c)) == c and not c.plain


def test_a_pre_release_like_rc_is_not_a_revision() -> None:
    r = Requirement.parse("=1.2.3-rc1")
    assert r.comparators[0].pre == ("rc1",) and r.comparators[0].revision is None and r.plain


@pytest.mark.parametrize(("text", "lower", "upper"), [
    (">1.2.3-r4", ("1.2.3", True), None), ("<1.2.3-r4", None, ("1.2.3", True)),
    ("=1.2.3-r4", ("1.2.3", True), ("1.2.3", True)), (">=1:1.0.0", None, None), ("=1:1.0.0", ("1.0.0", True),
                                                                                 ("1.0.0", True)),
])
def test_bounds_are_the_semver_hull(text: str, lower: tuple[str, bool] | None,
                                    upper: tuple[str, bool] | None) -> None:
    lo, lo_in, hi, hi_in = Comparator.parse(text).bounds()
    assert (None if lo is None else (str(lo), lo_in)) == lower
    assert (None if hi is None else (str(hi), hi_in)) == upper


@pytest.mark.parametrize(("text", "empty"), [
    (">1.2.3-r4, <1.2.3-r4", True), (">=1.2.3-r4, <=1.2.3-r4", False), (">1.2.3-r4, <1.2.3-r5", False),
    ("=1.2.3-r4, =1.2.3-r5", True), ("=1.2.3-r4, =1.2.3", False), (">1.2.3-r4, <=1.2.3", False),
    (">1.2.3-r4, <1.2.4", False), (">1.2.3-r4, <1.2.3", True), ("<1.2.3-r0", False), ("<0.0.0-r0", False),
    (">1:1.0.0, <1:1.0.0", True), (">1:1.0.0, <2:0.0.0", False), (">=2:1.0.0, <1:9.0.0", True),
    ("=1:1.0.0, =1.0.0", False), ("=1:1.0.0, =2:1.0.0", True), (">1:1.2, <1:5.0.0", False),
    ("^1.2.3-r4, <1.2.3-r4", True), ("^1.2.3-r4, <=1.2.3-r4", False),
])
def test_is_empty_table(text: str, empty: bool) -> None:
    assert Requirement.parse(text).is_empty() is empty


# --------------------------------------------------------------------------- hypothesis oracle

_EPOCHS = st.integers(min_value=0, max_value=2)
_SEMVERS = st.sampled_from(["0.1.0", "1.0.0", "1.0.1", "1.0.0-alpha", "1.0.0-alpha.1", "2.0.0"])
_REVISIONS = st.sampled_from(["", "0", "0~", "1", "1+b1", "1.1", "2", "10"])
_OPS = st.sampled_from(["=", ">", ">=", "<", "<=", "^", "~"])


def _key(version: FullVersion, *, epoch: bool, revision: bool) -> tuple[object, ...]:
    """The parts of ``FullVersion.order_key()`` that a comparator writes (epoch / revision when given)."""
    e, upstream, r = version.order_key()
    return (*((e,) if epoch else ()), upstream, *((r,) if revision else ()))


def _oracle(op: str, epoch: int | None, semver: str, revision: str | None, target: FullVersion) -> bool:
    c_version, v = Version.parse(semver), target.upstream
    assert isinstance(v, Version)
    if v.pre and (not c_version.pre or (v.major, v.minor, v.patch) != (c_version.major, c_version.minor,
                                                                         c_version.patch)):
        return False                                  # Cargo's opt-in: only a comparator on the same triple
    mine = FullVersion(epoch=epoch or 0, upstream=c_version, revision=revision or "")
    parts = {"epoch": epoch is not None, "revision": revision is not None}
    a, b = _key(target, **parts), _key(mine, **parts)
    sign = (a > b) - (a < b)
    if op in ("^", "~"):                              # lower bound in full order, Cargo's upper bound, same epoch
        same_epoch = epoch is None or target.epoch == epoch
        return same_epoch and sign >= 0 and Requirement.parse(op + semver).matches(v)
    return {"=": sign == 0, ">": sign > 0, ">=": sign >= 0, "<": sign < 0, "<=": sign <= 0}[op]


def _text(op: str, epoch: int | None, semver: str, revision: str | None) -> str:
    return f"{op}{'' if epoch is None else f'{epoch}:'}{semver}{'' if revision is None else f'-r{revision}'}"


@settings(max_examples=600, deadline=None)
@given(op=_OPS, epoch=st.none() | _EPOCHS, semver=_SEMVERS, revision=st.none() | _REVISIONS.filter(bool),
       t_epoch=_EPOCHS, t_semver=_SEMVERS, t_revision=_REVISIONS)
def test_matches_full_is_the_definition(op: str, epoch: int | None, semver: str, revision: str | None,
                                        t_epoch: int, t_semver: str, t_revision: str) -> None:
    text = _text(op, epoch, semver, revision)
    requirement = Requirement.parse(text)
    assert Requirement.parse(str(requirement)) == requirement
    target = FullVersion(epoch=t_epoch, upstream=Version.parse(t_semver), revision=t_revision)
    assert requirement.matches_full(target) is _oracle(op, epoch, semver, revision, target), (text, str(target))
    if requirement.plain:                             # epoch and revision of the target do not matter
        assert requirement.matches_full(target) is requirement.matches(Version.parse(t_semver))


# is_empty: comparators over a few values; the universe holds every witness is_empty can need (revisions
# below, between and above the named ones: 0~ < 1 < 1.0 < 1+b1 < 1.1 < 1.1.0 < 1.2 < 2 < 2.0 < 3).
_C_VERSIONS = ["0.1.0", "1.0.0", "1.0.1", "1.0.0-alpha", "1.0", "1"]
_C_REVISIONS = ["1", "1.1", "2"]
_U_EPOCHS = range(4)
_U_SEMVERS = [Version.parse(t) for t in (
    "0.0.0", "0.1.0", "0.1.1", "0.2.0", "1.0.0-0", "1.0.0-alpha", "1.0.0-alpha.0", "1.0.0-beta", "1.0.0",
    "1.0.1", "1.0.2", "1.1.0", "2.0.0-0", "2.0.0", "3.0.0")]
_U_REVISIONS = ["", "0~", "1", "1.0", "1+b1", "1.1", "1.1.0", "1.2", "2", "2.0", "3"]
_UNIVERSE = [FullVersion(epoch=e, upstream=v, revision=r)
             for e, v, r in itertools.product(_U_EPOCHS, _U_SEMVERS, _U_REVISIONS)]


@st.composite
def _comparator_texts(draw: st.DrawFn) -> str:
    op = draw(st.sampled_from(["=", ">", ">=", "<", "<=", "^", "~", ""]))
    semver = draw(st.sampled_from(_C_VERSIONS))
    full = semver.count(".") == 2
    epoch = draw(st.none() | st.integers(min_value=0, max_value=2))
    revision = draw(st.none() | st.sampled_from(_C_REVISIONS)) if full else None
    return _text(op, epoch, semver, revision)


@settings(max_examples=400, deadline=None)
@given(texts=st.lists(_comparator_texts(), min_size=1, max_size=3))
def test_is_empty_is_exact(texts: list[str]) -> None:
    requirement = Requirement.parse(", ".join(texts))
    satisfiable = any(requirement.matches_full(v) for v in _UNIVERSE)
    assert requirement.is_empty() is not satisfiable, str(requirement)
