"""Tests for composer.version: SemVer 2.0.0 versions and Cargo version requirements.

The property tests compare the module against independent references written here straight
from the specification texts: the official semver.org regular expression, a precedence
``cmp`` that walks identifiers (semver.org section 11), and an interval oracle for Cargo
requirements built from the tables in Cargo's "Specifying Dependencies" chapter plus the
pre-release rules of the ``semver`` crate.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.version import (
    Comparator,
    DebRange,
    DebRelation,
    DebVersion,
    FullVersion,
    Op,
    RelationOp,
    Requirement,
    Version,
    VersionError,
    dpkg_compare,
    semver_projection,
)

# --------------------------------------------------------------------------- references

# The regular expression published on semver.org ("Is there a suggested regular expression
# (RegEx) to check a SemVer string?"), with \d spelled [0-9] so that only ASCII digits count.
SEMVER_RE = re.compile(
    r"(?P<major>0|[1-9][0-9]*)\.(?P<minor>0|[1-9][0-9]*)\.(?P<patch>0|[1-9][0-9]*)"
    r"(?:-(?P<pre>(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)


def _is_numeric(ident: str) -> bool:
    return re.fullmatch(r"[0-9]+", ident) is not None


def ref_cmp(a: str, b: str) -> int:
    """semver.org section 11, transcribed: -1, 0 or 1 for the precedence of a vs b."""
    ma, mb = SEMVER_RE.fullmatch(a), SEMVER_RE.fullmatch(b)
    assert ma is not None and mb is not None, (a, b)
    for part in ("major", "minor", "patch"):  # 11.2: numerically, left to right
        x, y = int(ma[part]), int(mb[part])
        if x != y:
            return -1 if x < y else 1
    pa, pb = ma["pre"], mb["pre"]
    if pa is None or pb is None:  # 11.3: a pre-release is lower than the release
        return (pa is None) - (pb is None)
    ids_a, ids_b = pa.split("."), pb.split(".")
    index = 0
    while True:  # 11.4: identifier by identifier
        if index == len(ids_a) or index == len(ids_b):  # 11.4.4: the longer set is higher
            return (index < len(ids_a)) - (index < len(ids_b))
        id_a, id_b = ids_a[index], ids_b[index]
        if _is_numeric(id_a) and _is_numeric(id_b):  # 11.4.1
            if int(id_a) != int(id_b):
                return -1 if int(id_a) < int(id_b) else 1
        elif _is_numeric(id_a) != _is_numeric(id_b):  # 11.4.3: numeric is lower
            return -1 if _is_numeric(id_a) else 1
        elif id_a != id_b:  # 11.4.2: lexically in ASCII sort order
            return -1 if id_a.encode("ascii") < id_b.encode("ascii") else 1
        index += 1


@dataclass(frozen=True)
class Cmp:
    """A comparator as the tests see it: op in ^ ~ = > >= < <= * and a partial version."""

    op: str
    major: int
    minor: int | None = None
    patch: int | None = None
    pre: str | None = None

    @property
    def given(self) -> list[int]:
        return [x for x in (self.major, self.minor, self.patch) if x is not None]

    @property
    def floor(self) -> str:
        """The partial version padded with zeros, pre-release included."""
        text = ".".join(str(x) for x in self.given + [0] * (3 - len(self.given)))
        return text + (f"-{self.pre}" if self.pre else "")


def _bump(given: list[int], index: int) -> str:
    """Increment part ``index`` of the given parts and zero everything after it."""
    parts = [*given[:index], given[index] + 1]
    return ".".join(str(x) for x in parts + [0] * (3 - len(parts)))


Interval = tuple[str | None, bool, str | None, bool]


def interval(c: Cmp) -> Interval:
    """(lower, lower_inclusive, upper, upper_inclusive) from Cargo's documentation tables."""
    full = c.patch is not None
    span_end = _bump(c.given, len(c.given) - 1)  # 1.2 covers [1.2.0, 1.3.0)
    if c.op in ("=", "*"):
        return (c.floor, True, c.floor, True) if full else (c.floor, True, span_end, False)
    if c.op == ">":
        return (c.floor, False, None, False) if full else (span_end, True, None, False)
    if c.op == ">=":
        return (c.floor, True, None, False)
    if c.op == "<":
        return (None, False, c.floor, False)
    if c.op == "<=":
        return (None, False, c.floor, True) if full else (None, False, span_end, False)
    if c.op == "~":
        # "~1.2.3" and "~1.2": patch-level changes only; "~1": minor and patch changes.
        return (c.floor, True, _bump(c.given, min(1, len(c.given) - 1)), False)
    assert c.op == "^"
    # "an update is allowed if it does not modify the left-most non-zero digit" (or the last
    # given digit when all of them are zero: ^0.0 -> <0.1.0, ^0 -> <1.0.0).
    first_nonzero = next((i for i, x in enumerate(c.given) if x != 0), len(c.given) - 1)
    return (c.floor, True, _bump(c.given, first_nonzero), False)


def in_interval(version: str, iv: Interval) -> bool:
    lower, lower_inclusive, upper, upper_inclusive = iv
    if lower is not None:
        order = ref_cmp(version, lower)
        if order < 0 or (order == 0 and not lower_inclusive):
            return False
    if upper is not None:
        order = ref_cmp(version, upper)
        if order > 0 or (order == 0 and not upper_inclusive):
            return False
    return True


def oracle_matches(cmps: list[Cmp], version: str) -> bool:
    """The requirement semantics, by interval arithmetic plus the semver crate's pre rules."""
    m = SEMVER_RE.fullmatch(version)
    assert m is not None
    triple = (int(m["major"]), int(m["minor"]), int(m["patch"]))
    release = "{}.{}.{}".format(*triple)
    pre = m["pre"]

    def satisfies(c: Cmp) -> bool:
        iv = interval(c)
        if pre is None:
            return in_interval(version, iv)
        if c.patch is not None:
            # Compared exactly against a comparator on the same triple, else by its release.
            same_triple = (c.major, c.minor, c.patch) == triple
            return in_interval(version if same_triple else release, iv)
        # Partials other than caret never admit a pre-release inside the partial version.
        inside = c.major == triple[0] and (c.minor is None or c.minor == triple[1])
        return in_interval(release, iv) and (c.op == "^" or not inside)

    if not all(satisfies(c) for c in cmps):
        return False
    if pre is None:
        return True
    # Opt-in: some comparator carries a pre-release on the same MAJOR.MINOR.PATCH.
    return any(c.pre is not None and (c.major, c.minor, c.patch) == triple for c in cmps)


def V(text: str) -> Version:
    return Version.parse(text)


# --------------------------------------------------------------------------- parsing versions

VALID_VERSIONS: list[tuple[str, tuple[int, int, int], tuple[str | int, ...], tuple[str, ...]]] = [
    ("0.0.0", (0, 0, 0), (), ()),
    ("1.2.3", (1, 2, 3), (), ()),
    ("10.20.30", (10, 20, 30), (), ()),
    ("1.9.0", (1, 9, 0), (), ()),
    ("1.10.0", (1, 10, 0), (), ()),
    ("99999999999999999999999.999999999999999999.99999999999999999", (
        99999999999999999999999, 999999999999999999, 99999999999999999), (), ()),
    # semver.org section 9 and 10 examples
    ("1.0.0-alpha", (1, 0, 0), ("alpha",), ()),
    ("1.0.0-alpha.1", (1, 0, 0), ("alpha", 1), ()),
    ("1.0.0-0.3.7", (1, 0, 0), (0, 3, 7), ()),
    ("1.0.0-x.7.z.92", (1, 0, 0), ("x", 7, "z", 92), ()),
    ("1.0.0-x-y-z.--", (1, 0, 0), ("x-y-z", "--"), ()),
    ("1.0.0-alpha+001", (1, 0, 0), ("alpha",), ("001",)),
    ("1.0.0+20130313144700", (1, 0, 0), (), ("20130313144700",)),
    ("1.0.0-beta+exp.sha.5114f85", (1, 0, 0), ("beta",), ("exp", "sha", "5114f85")),
    ("1.0.0+21AF26D3----117B344092BD", (1, 0, 0), (), ("21AF26D3----117B344092BD",)),
    # from the semver.org regex test suite
    ("1.1.2-prerelease+meta", (1, 1, 2), ("prerelease",), ("meta",)),
    ("1.1.2+meta-valid", (1, 1, 2), (), ("meta-valid",)),
    ("1.0.0-rc.1+build.1", (1, 0, 0), ("rc", 1), ("build", "1")),
    ("1.2.3----RC-SNAPSHOT.12.9.1--.12+788", (1, 2, 3), ("---RC-SNAPSHOT", 12, 9, "1--", 12), ("788",)),
    ("1.2.3----R-S.12.9.1--.12+meta", (1, 2, 3), ("---R-S", 12, 9, "1--", 12), ("meta",)),
    ("1.0.0-0A.is.legal", (1, 0, 0), ("0A", "is", "legal"), ()),
    ("1.0.0-00a", (1, 0, 0), ("00a",), ()),
    ("1.0.0--", (1, 0, 0), ("-",), ()),
    ("1.0.0+0.01.001", (1, 0, 0), (), ("0", "01", "001")),
]


@pytest.mark.parametrize(("text", "core", "pre", "build"), VALID_VERSIONS)
def test_parse_valid(
    text: str, core: tuple[int, int, int], pre: tuple[str | int, ...], build: tuple[str, ...]
) -> None:
    v = Version.parse(text)
    assert (v.major, v.minor, v.patch) == core
    assert v.pre == pre
    assert v.build == build
    assert str(v) == text
    assert v.is_prerelease == bool(pre)
    assert SEMVER_RE.fullmatch(text)


INVALID_VERSIONS: list[tuple[str, str]] = [
    ("", "empty"),
    ("1", "'minor' and 'patch' are missing"),
    ("1.2", "'patch' is missing"),
    ("1.2.3.4", "exactly three"),
    ("v1.2.3", "starts with 'v'"),
    ("V1.2.3", "starts with 'V'"),
    ("=1.2.3", "belong in a version requirement"),
    ("^1.2.3", "belong in a version requirement"),
    (" 1.2.3", "whitespace"),
    ("1.2.3 ", "whitespace"),
    ("1.2.3\n", "whitespace"),
    ("01.1.1", "'major' has a leading zero"),
    ("1.01.1", "'minor' has a leading zero"),
    ("1.1.01", "'patch' has a leading zero"),
    ("00.0.0", "'major' has a leading zero"),
    ("1..3", "'minor' is empty"),
    ("1.2.", "'patch' is empty"),
    ("1.x.3", "'minor' is 'x'"),
    ("1.2.3a", "'patch' is '3a'"),
    ("1.2.٣", "'patch'"),  # ARABIC-INDIC DIGIT THREE is a digit to str.isdigit, not to SemVer
    ("1.2.²", "'patch'"),
    ("-1.2.3", "must start with the numeric 'major' part"),
    ("alpha", "must start with the numeric 'major' part"),
    ("1.2.3-", "pre-release part is empty"),
    ("1.2.3+", "build part is empty"),
    ("1.2.3-+", "pre-release part is empty"),
    ("1.2.3-a..b", "pre-release identifier #2 is empty"),
    ("1.2.3-.a", "pre-release identifier #1 is empty"),
    ("1.2.3-a.", "pre-release identifier #2 is empty"),
    ("1.2.3+a..b", "build identifier #2 is empty"),
    ("1.1.2+.123", "build identifier #1 is empty"),
    ("1.2.3-0123", "'0123' has a leading zero"),
    ("1.2.3-0123.0123", "'0123' has a leading zero"),
    ("1.0.0-alpha.01", "'01' has a leading zero"),
    ("1.2.3-a_b", "contains '_'"),
    ("1.2.3-é", "contains 'é'"),
    ("1.2.3+a b", "contains ' '"),
    ("1.2.3+a+b", "contains '+'"),
    ("1.2-SNAPSHOT", "'patch' is missing"),
    ("1.2.3.DEV", "exactly three"),
    ("1.2.31.2.3----RC-SNAPSHOT.12.09.1--..12+788", "exactly three"),
    ("+invalid", "must start"),
    ("-invalid", "must start"),
    ("9.8.7+meta+meta", "contains '+'"),
]


@pytest.mark.parametrize(("text", "fragment"), INVALID_VERSIONS)
def test_parse_invalid(text: str, fragment: str) -> None:
    with pytest.raises(VersionError) as info:
        Version.parse(text)
    message = str(info.value)
    assert message.startswith(f"invalid version {text!r}: ")
    assert fragment in message
    assert "expected MAJOR.MINOR.PATCH" in message
    assert SEMVER_RE.fullmatch(text) is None


def test_parse_error_message_exact_form() -> None:
    with pytest.raises(VersionError) as info:
        Version.parse("1.02.3")
    assert str(info.value) == (
        "invalid version '1.02.3': numeric part 'minor' has a leading zero; "
        "expected MAJOR.MINOR.PATCH like '1.2.3'"
    )
    assert info.value.hint == "write '1.2.3'"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("text", "hint"),
    [("v1.2.3", "write '1.2.3'"), ("1.2", "write '1.2.0'"), ("1", "write '1.0.0'"),
     ("1.2-rc.1", "write '1.2.0-rc.1'"), ("01.002.3+b", "write '1.2.3+b'"), ("1.2.3-", "")],
)
def test_parse_error_hints(text: str, hint: str) -> None:
    with pytest.raises(VersionError) as info:
        Version.parse(text)
    assert info.value.hint == hint


def test_version_error_defaults() -> None:
    error = VersionError("boom")
    assert error.hint == ""
    assert str(error) == "boom"
    assert isinstance(error, ValueError)


def test_parse_rejects_non_str() -> None:
    with pytest.raises(TypeError):
        Version.parse(b"1.2.3")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"major": -1, "minor": 0, "patch": 0},
        {"major": 1, "minor": 0, "patch": 0, "pre": ("01",)},
        {"major": 1, "minor": 0, "patch": 0, "pre": ("1",)},
        {"major": 1, "minor": 0, "patch": 0, "pre": ("",)},
        {"major": 1, "minor": 0, "patch": 0, "pre": ("a.b",)},
        {"major": 1, "minor": 0, "patch": 0, "pre": (-1,)},
        {"major": 1, "minor": 0, "patch": 0, "build": ("",)},
        {"major": 1, "minor": 0, "patch": 0, "build": ("a_b",)},
    ],
)
def test_constructor_rejects_invalid_fields(kwargs: dict[str, object]) -> None:
    with pytest.raises(VersionError):
        Version(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"major": True, "minor": 0, "patch": 0},
        {"major": "1", "minor": 0, "patch": 0},
        {"major": 1, "minor": 0, "patch": 0, "pre": ["alpha"]},
        {"major": 1, "minor": 0, "patch": 0, "pre": (1.5,)},
        {"major": 1, "minor": 0, "patch": 0, "build": (1,)},
    ],
)
def test_constructor_rejects_wrong_types(kwargs: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        Version(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- precedence

SEMVER_ORG_CHAIN = [
    "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
    "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1",
]


def test_semver_org_precedence_chain() -> None:
    chain = [V(t) for t in SEMVER_ORG_CHAIN]
    for i, a in enumerate(chain):
        for j, b in enumerate(chain):
            assert (a < b) == (i < j), (a, b)
            assert (a <= b) == (i <= j), (a, b)
            assert (a > b) == (i > j), (a, b)
            assert (a >= b) == (i >= j), (a, b)
            assert a.same_precedence(b) == (i == j)
    assert sorted(reversed(chain)) == chain


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.9.0", "1.10.0"),
        ("1.10.0", "1.11.0"),
        ("1.0.0-2", "1.0.0-10"),  # numeric identifiers compare numerically
        ("1.0.0-99", "1.0.0-a"),  # numeric identifiers are lower than alphanumeric ones
        ("1.0.0-999999999999999999999", "1.0.0-0a"),
        ("1.0.0-Z", "1.0.0-a"),  # ASCII order: uppercase before lowercase
        ("1.0.0--", "1.0.0-0a"),  # '-' (0x2d) sorts before '0' (0x30)
        ("1.0.0-a.b", "1.0.0-a-b"),  # first identifiers: 'a' < 'a-b' in ASCII order
        ("1.0.0-a", "1.0.0-a.0"),  # a larger set of fields is higher
        ("1.0.0-alpha.9", "1.0.0-alpha.10"),
        ("0.0.0", "0.0.1"),
        ("1.0.0-rc.1", "1.0.0"),
    ],
)
def test_precedence_pairs(lower: str, higher: str) -> None:
    lo, hi = V(lower), V(higher)
    assert ref_cmp(lower, higher) == -1
    assert lo < hi and lo <= hi and hi > lo and hi >= lo
    assert not (hi < lo or hi <= lo or lo > hi or lo >= hi)
    assert not lo.same_precedence(hi)


def test_build_metadata_ignored_for_ordering_but_not_for_equality() -> None:
    a, b, c = V("1.0.0+a"), V("1.0.0+b"), V("1.0.0")
    assert a != b and a != c
    assert len({a, b, c}) == 3
    for x, y in itertools.permutations([a, b, c], 2):
        assert x.same_precedence(y)
        assert not x < y and not x > y
        assert x <= y and x >= y
    assert V("1.0.0-rc.1+zzz") < V("1.0.0+aaa")
    assert V("1.0.0+b") == V("1.0.0+b")
    assert hash(V("1.0.0+b")) == hash(V("1.0.0+b"))
    assert sorted([b, c, a]) == [b, c, a]  # stable: equal precedence keeps input order


def test_comparison_with_other_types() -> None:
    text: object = "1.0.0"
    assert V("1.0.0") != text
    with pytest.raises(TypeError):
        _ = V("1.0.0") < "1.0.0"  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = V("1.0.0") >= 1  # type: ignore[operator]


def test_precedence_key_orders_like_the_operators() -> None:
    chain = [V(t) for t in SEMVER_ORG_CHAIN]
    keys = [v.precedence_key() for v in chain]
    assert keys == sorted(keys)
    assert V("1.0.0+x").precedence_key() == V("1.0.0").precedence_key()


# --------------------------------------------------------------------------- requirements: tables

CARGO_MATCHES: list[tuple[str, list[str], list[str]]] = [
    # Caret (the default operator)
    ("^1.2.3", ["1.2.3", "1.2.4", "1.3.0", "1.99.99", "1.2.3+build"],
     ["1.2.2", "1.0.0", "2.0.0", "0.9.9", "2.0.0-alpha", "1.3.0-beta", "1.2.3-alpha", "1.2.4-rc.1"]),
    ("1.2.3", ["1.2.3", "1.9.0"], ["1.2.2", "2.0.0", "2.0.0-alpha", "1.3.0-beta"]),
    ("^1.2", ["1.2.0", "1.9.9"], ["1.1.9", "2.0.0", "1.2.0-alpha"]),
    ("1.2", ["1.2.0", "1.9.9"], ["1.1.9", "2.0.0"]),
    ("^1", ["1.0.0", "1.99.99"], ["0.9.9", "2.0.0", "1.5.0-alpha"]),
    ("1", ["1.0.0", "1.99.99"], ["0.9.9", "2.0.0"]),
    ("^0.2.3", ["0.2.3", "0.2.99"], ["0.2.2", "0.3.0", "1.0.0"]),
    ("^0.2", ["0.2.0", "0.2.99"], ["0.1.99", "0.3.0"]),
    ("^0.0.3", ["0.0.3"], ["0.0.2", "0.0.4", "0.1.0"]),
    ("^0.0", ["0.0.0", "0.0.99"], ["0.1.0", "1.0.0"]),
    ("^0", ["0.0.0", "0.99.99"], ["1.0.0"]),
    ("^0.0.0", ["0.0.0"], ["0.0.1"]),
    # Tilde
    ("~1.2.3", ["1.2.3", "1.2.99"], ["1.2.2", "1.3.0", "1.3.0-alpha"]),
    ("~1.2", ["1.2.0", "1.2.99"], ["1.1.99", "1.3.0"]),
    ("~1", ["1.0.0", "1.99.99"], ["0.99.99", "2.0.0"]),
    ("~0.0.3", ["0.0.3", "0.0.9"], ["0.0.2", "0.1.0"]),
    # Wildcards
    ("*", ["0.0.0", "1.2.3", "99.0.0+b"], ["1.0.0-alpha", "0.0.0-0"]),
    ("1.*", ["1.0.0", "1.99.99"], ["0.99.99", "2.0.0", "1.2.0-alpha"]),
    ("1.2.*", ["1.2.0", "1.2.99"], ["1.1.99", "1.3.0"]),
    ("1.x", ["1.0.0"], ["2.0.0"]),
    # Comparison
    ("=1.2.3", ["1.2.3", "1.2.3+build"], ["1.2.2", "1.2.4", "1.2.3-alpha"]),
    ("=1.2", ["1.2.0", "1.2.99"], ["1.1.99", "1.3.0"]),
    ("=1", ["1.0.0", "1.99.0"], ["0.9.0", "2.0.0"]),
    (">1.2.3", ["1.2.4", "2.0.0"], ["1.2.3", "1.2.3+b", "1.2.4-alpha"]),
    (">1.2", ["1.3.0", "2.0.0"], ["1.2.99", "1.2.0"]),
    (">1", ["2.0.0"], ["1.99.99"]),
    (">=1.2.3", ["1.2.3", "5.0.0"], ["1.2.2", "1.2.3-rc.1"]),
    (">=1.2", ["1.2.0", "5.0.0"], ["1.1.99"]),
    (">=1", ["1.0.0"], ["0.99.99"]),
    ("<1.2.3", ["1.2.2", "0.0.0"], ["1.2.3", "1.2.3-alpha"]),
    ("<1.2", ["1.1.99"], ["1.2.0"]),
    ("<1", ["0.99.99"], ["1.0.0"]),
    ("<=1.2.3", ["1.2.3", "1.2.3+b"], ["1.2.4"]),
    ("<=1.2", ["1.2.99"], ["1.3.0"]),
    ("<=1", ["1.99.99"], ["2.0.0"]),
    # Multiple requirements
    (">=1.2, <1.5", ["1.2.0", "1.4.99"], ["1.1.99", "1.5.0"]),
    (">= 1.2.0 , < 1.5.0", ["1.2.0"], ["1.5.0"]),
    ("~1.2, >1.2.4", ["1.2.5"], ["1.2.4", "1.3.0"]),
    # Pre-releases: opt-in on the same MAJOR.MINOR.PATCH
    (">=1.0.0-alpha", ["1.0.0-alpha", "1.0.0-beta", "1.0.0", "1.1.0"], ["1.1.0-alpha", "0.9.0"]),
    ("^1.2.3-beta.2", ["1.2.3-beta.2", "1.2.3-beta.11", "1.2.3-rc", "1.2.3", "1.5.0"],
     ["1.2.3-beta.1", "1.2.3-alpha", "1.2.4-beta", "2.0.0-alpha"]),
    ("~1.2.3-beta", ["1.2.3-beta", "1.2.3-beta.1", "1.2.3", "1.2.9"], ["1.2.3-alpha", "1.2.4-beta", "1.3.0"]),
    ("=1.2.3-rc.1", ["1.2.3-rc.1", "1.2.3-rc.1+b"], ["1.2.3-rc.2", "1.2.3", "1.2.3-rc"]),
    (">1.2.3-rc.1", ["1.2.3-rc.2", "1.2.3", "2.0.0"], ["1.2.3-rc.1", "1.2.3-rc", "2.0.0-rc.2"]),
    ("<1.2.3-rc.1", ["1.2.3-beta", "1.2.2"], ["1.2.3-rc.1", "1.2.3", "1.2.2-rc.2"]),
    ("<=1.2.3-rc.1", ["1.2.3-rc.1", "1.2.3-beta"], ["1.2.3-rc.2"]),
    (">=1.2.3-alpha, <1.2.3", ["1.2.3-alpha", "1.2.3-rc.1"], ["1.2.3", "1.2.2", "1.2.3-0"]),
    # ... judged by the release triple against other comparators (the semver crate)
    ("^1.2.3, <=2.0.0-rc.1", ["1.5.0"], ["2.0.0-alpha", "2.0.0-rc.1"]),
    ("<2.0.0, >=2.0.0-alpha", ["2.0.0-alpha", "2.0.0-beta"], ["2.0.0", "1.9.0", "2.0.0-0"]),
    # ... and partial comparators other than caret never admit a pre-release inside them
    (">=1.2, <1.2.5-rc.1", ["1.2.0", "1.2.4"], ["1.2.5-beta", "1.2.5"]),
    ("~1.2, >=1.2.5-alpha", ["1.2.5", "1.2.9"], ["1.2.5-beta"]),
    ("=1.2, >=1.2.5-alpha", ["1.2.5"], ["1.2.5-beta"]),
    ("^1.2, <=1.2.5-rc.1", ["1.2.5-beta", "1.2.0"], ["1.2.5", "1.2.5-rc.2"]),
    (">1.2, <=1.3.0-beta", ["1.3.0-alpha", "1.3.0-beta"], ["1.3.0", "1.2.9"]),
]


def _cmps_of(text: str) -> list[Cmp]:
    """Test-side reading of a requirement from the table (trusted, simple forms only)."""
    if text.strip() in ("*", "x", "X"):
        return []
    out = []
    for part in text.split(","):
        m = re.fullmatch(
            r"\s*(\^|~|=|>=|>|<=|<)?\s*(\d+)(?:\.(\d+|[*xX]))?(?:\.(\d+|[*xX]))?(?:-([0-9A-Za-z.-]+))?\s*",
            part,
        )
        assert m is not None, part
        op, major, minor, patch, pre = m.groups()
        wildcard = minor in ("*", "x", "X") or patch in ("*", "x", "X")
        out.append(Cmp(
            op=op or ("*" if wildcard else "^"),
            major=int(major),
            minor=int(minor) if minor and minor.isdigit() else None,
            patch=int(patch) if patch and patch.isdigit() else None,
            pre=pre,
        ))
    return out


@pytest.mark.parametrize(("requirement", "good", "bad"), CARGO_MATCHES)
def test_cargo_requirement_table(requirement: str, good: list[str], bad: list[str]) -> None:
    req = Requirement.parse(requirement)
    cmps = _cmps_of(requirement)
    for text in good:
        assert req.matches(V(text)), f"{requirement!r} should match {text}"
        assert oracle_matches(cmps, text), f"oracle disagrees: {requirement!r} / {text}"
    for text in bad:
        assert not req.matches(V(text)), f"{requirement!r} should not match {text}"
        assert not oracle_matches(cmps, text), f"oracle disagrees: {requirement!r} / {text}"


BOUNDS_TABLE: list[tuple[str, str | None, str | None]] = [
    ("^1.2.3", ">=1.2.3", "<2.0.0"),
    ("1.2.3", ">=1.2.3", "<2.0.0"),
    ("^1.2", ">=1.2.0", "<2.0.0"),
    ("^1", ">=1.0.0", "<2.0.0"),
    ("^0.2.3", ">=0.2.3", "<0.3.0"),
    ("^0.2", ">=0.2.0", "<0.3.0"),
    ("^0.0.3", ">=0.0.3", "<0.0.4"),
    ("^0.0", ">=0.0.0", "<0.1.0"),
    ("^0", ">=0.0.0", "<1.0.0"),
    ("^1.2.3-rc.1", ">=1.2.3-rc.1", "<2.0.0"),
    ("~1.2.3", ">=1.2.3", "<1.3.0"),
    ("~1.2", ">=1.2.0", "<1.3.0"),
    ("~1", ">=1.0.0", "<2.0.0"),
    ("~0.0.3", ">=0.0.3", "<0.1.0"),
    ("1.*", ">=1.0.0", "<2.0.0"),
    ("1.2.*", ">=1.2.0", "<1.3.0"),
    ("=1.2.3", ">=1.2.3", "<=1.2.3"),
    ("=1.2.3-alpha", ">=1.2.3-alpha", "<=1.2.3-alpha"),
    ("=1.2", ">=1.2.0", "<1.3.0"),
    ("=1", ">=1.0.0", "<2.0.0"),
    (">1.2.3", ">1.2.3", None),
    (">1.2", ">=1.3.0", None),
    (">1", ">=2.0.0", None),
    (">=1.2.3", ">=1.2.3", None),
    (">=1.2", ">=1.2.0", None),
    (">=1", ">=1.0.0", None),
    ("<1.2.3", None, "<1.2.3"),
    ("<1.2", None, "<1.2.0"),
    ("<1", None, "<1.0.0"),
    ("<=1.2.3", None, "<=1.2.3"),
    ("<=1.2", None, "<1.3.0"),
    ("<=1", None, "<2.0.0"),
]


def _bound_texts(c: Comparator) -> tuple[str | None, str | None]:
    lower, lower_inclusive, upper, upper_inclusive = c.bounds()
    lo = None if lower is None else (">=" if lower_inclusive else ">") + str(lower)
    hi = None if upper is None else ("<=" if upper_inclusive else "<") + str(upper)
    if lower is None:
        assert not lower_inclusive
    if upper is None:
        assert not upper_inclusive
    return lo, hi


@pytest.mark.parametrize(("comparator", "lower", "upper"), BOUNDS_TABLE)
def test_comparator_bounds_table(comparator: str, lower: str | None, upper: str | None) -> None:
    (c,) = Requirement.parse(comparator).comparators
    assert _bound_texts(c) == (lower, upper)
    assert Comparator.parse(comparator) == c


NORMALISED: list[tuple[str, str]] = [
    ("1.2.3", "^1.2.3"),
    ("^1.2.3", "^1.2.3"),
    ("  ~ 1.2 ", "~1.2"),
    (" >= 1.2 ,< 2 ", ">=1.2, <2"),
    (">=1.2.0,<1.5.0", ">=1.2.0, <1.5.0"),
    ("1.*", "1.*"),
    ("1.x", "1.*"),
    ("1.2.X", "1.2.*"),
    ("1.*.*", "1.*"),
    ("*", "*"),
    ("  x  ", "*"),
    ("=1.2.3-alpha.1+build.7", "=1.2.3-alpha.1"),
    (">=1.*", ">=1"),
    ("=1.2.*", "=1.2"),
    ("<=0.0.0-0", "<=0.0.0-0"),
    ("\t>1.2.3-rc.1 ,\n<2", ">1.2.3-rc.1, <2"),
]


@pytest.mark.parametrize(("text", "normalised"), NORMALISED)
def test_requirement_normalisation(text: str, normalised: str) -> None:
    req = Requirement.parse(text)
    assert str(req) == normalised
    assert Requirement.parse(str(req)) == req


def test_requirement_structure() -> None:
    assert Requirement.parse("*") == Requirement(comparators=())
    assert Requirement.parse("1.2.*").comparators == (Comparator(op=Op.WILDCARD, major=1, minor=2),)
    assert Requirement.parse(">=1.0.0-rc.1, <2").comparators == (
        Comparator(op=Op.GREATER_EQ, major=1, minor=0, patch=0, pre=("rc", 1)),
        Comparator(op=Op.LESS, major=2),
    )
    assert Requirement.parse("1.2").comparators == (Comparator(op=Op.CARET, major=1, minor=2),)


INVALID_REQUIREMENTS: list[tuple[str, str | None, str]] = [
    # (requirement, bad comparator named in the message or None, fragment)
    ("", None, "it is empty"),
    ("   ", None, "it is empty"),
    (",", "#1", "empty"),
    ("1.2,", "#2", "empty"),
    (">=1.2,,<2", "#2", "empty"),
    (">=", ">=", "needs a version"),
    ("^01.2", "^01.2", "leading zero"),
    ("1.02", "1.02", "leading zero"),
    ("1.2.3.4", "1.2.3.4", "unexpected '.4'"),
    ("1.*.3", "1.*.3", "cannot follow a wildcard"),
    (">=1.*.3", ">=1.*.3", "cannot follow a wildcard"),
    ("*, >=1", "*", "must be the only comparator"),
    (">=1, *", "*", "must be the only comparator"),
    (">=*", ">=*", "cannot be the major part"),
    ("*.1", "*.1", "cannot be the major part"),
    ("1.2-alpha", "1.2-alpha", "needs a full MAJOR.MINOR.PATCH"),
    ("1.2.*-alpha", "1.2.*-alpha", "needs a full MAJOR.MINOR.PATCH"),
    ("1.2.3 2.0", "1.2.3 2.0", "separate comparators with ','"),
    ("~>1.2", "~>1.2", "expected the numeric 'major' part"),
    ("== 1", "== 1", "expected the numeric 'major' part"),
    ("foo", "foo", "expected the numeric 'major' part"),
    ("xyz", "xyz", "expected the numeric 'major' part"),
    ("1.xyz", "1.xyz", "expected the numeric 'minor' part"),
    ("v1.2.3", "v1.2.3", "expected the numeric 'major' part"),
    ("1.2.3-", "1.2.3-", "pre-release part is empty"),
    ("1.2.3-01", "1.2.3-01", "leading zero"),
    ("1.2.3-a..b", "1.2.3-a..b", "identifier #2 is empty"),
    ("1.2.3+", "1.2.3+", "build part is empty"),
    ("1.2.3-a_b", "1.2.3-a_b", "unexpected '_b'"),
    ("1.", "1.", "expected the numeric 'minor' part, found nothing"),
    (">=1.2 <2", ">=1.2 <2", "separate comparators with ','"),
]


@pytest.mark.parametrize(("text", "comparator", "fragment"), INVALID_REQUIREMENTS)
def test_requirement_invalid(text: str, comparator: str | None, fragment: str) -> None:
    with pytest.raises(VersionError) as info:
        Requirement.parse(text)
    message = str(info.value)
    assert message.startswith(f"invalid version requirement {text!r}: ")
    if comparator is not None:
        assert f"comparator {comparator!r}" in message or f"comparator {comparator}" in message
    assert fragment in message
    assert "expected comma-separated comparators like '^1.2.3'" in message


def test_comparator_parse_and_construction_errors() -> None:
    expected = Comparator(op=Op.TILDE, major=1, minor=2, patch=3, pre=("beta",))
    assert Comparator.parse(" ~1.2.3-beta ") == expected
    for text in ["*", "1, 2", "", ">"]:
        with pytest.raises(VersionError, match="invalid comparator"):
            Comparator.parse(text)
    with pytest.raises(VersionError):
        Comparator(op=Op.CARET, major=1, patch=2)
    with pytest.raises(VersionError):
        Comparator(op=Op.CARET, major=1, minor=2, pre=("a",))
    with pytest.raises(VersionError):
        Comparator(op=Op.WILDCARD, major=1, minor=2, patch=3)
    with pytest.raises(TypeError):
        Comparator(op="^", major=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Requirement(comparators=[Comparator(op=Op.CARET, major=1)])  # type: ignore[arg-type]


def test_single_comparator_matches_applies_pre_release_rule() -> None:
    c = Comparator.parse(">=1.0.0-alpha")
    assert c.matches(V("1.0.0-beta"))
    assert not c.matches(V("1.1.0-alpha"))
    assert Comparator.parse("<2.0.0").matches(V("1.0.0"))
    assert not Comparator.parse("<2.0.0").matches(V("2.0.0-alpha"))


# --------------------------------------------------------------------------- hypothesis

SMALL = st.integers(0, 3)
NUMBERS = st.one_of(SMALL, st.integers(0, 2**70))
ALNUM_IDS = st.one_of(
    st.sampled_from(["alpha", "beta", "rc", "a", "A", "Z", "z", "-", "--", "0a", "a0", "00a", "x-y", "1-"]),
    st.from_regex(r"[0-9A-Za-z-]{0,6}[A-Za-z-][0-9A-Za-z-]{0,6}", fullmatch=True),
)
PRE_IDS: st.SearchStrategy[str | int] = st.one_of(SMALL, st.integers(0, 2**70), ALNUM_IDS)
PRES = st.lists(PRE_IDS, max_size=4).map(tuple)
BUILDS = st.lists(st.from_regex(r"[0-9A-Za-z-]{1,8}", fullmatch=True), max_size=3).map(tuple)


@st.composite
def versions(draw: st.DrawFn, numbers: st.SearchStrategy[int] = NUMBERS) -> Version:
    return Version(
        major=draw(numbers), minor=draw(numbers), patch=draw(numbers), pre=draw(PRES), build=draw(BUILDS)
    )


# Tie-prone versions: few distinct precedences, many build variants.
TIE_PRONE = st.builds(
    Version,
    major=st.integers(0, 1), minor=st.integers(0, 1), patch=st.integers(0, 1),
    pre=st.sampled_from([(), ("alpha",), ("alpha", 1), (1,), ("beta",), ("alpha", "beta")]),
    build=st.sampled_from([(), ("a",), ("b",), ("1",), ("x", "y")]),
)
ANY_VERSION = st.one_of(versions(), TIE_PRONE, versions(SMALL))


@settings(max_examples=300, deadline=None)
@given(ANY_VERSION)
def test_prop_roundtrip(v: Version) -> None:
    text = str(v)
    assert SEMVER_RE.fullmatch(text), text
    parsed = Version.parse(text)
    assert parsed == v
    assert hash(parsed) == hash(v)
    assert str(parsed) == text


SEMVERISH = st.text(alphabet="0123456789.-+aZv_", max_size=18)


@st.composite
def mutated_versions(draw: st.DrawFn) -> str:
    text = str(draw(ANY_VERSION))
    position = draw(st.integers(0, len(text)))
    action = draw(st.sampled_from(["insert", "delete", "replace", "none"]))
    char = draw(st.sampled_from(list("0123456789.-+aZ_ ")))
    if action == "insert":
        return text[:position] + char + text[position:]
    if action == "delete":
        return text[:position] + text[position + 1:]
    if action == "replace":
        return text[:position] + char + text[position + 1:]
    return text


@settings(max_examples=300, deadline=None)
@given(st.one_of(SEMVERISH, mutated_versions()))
def test_prop_parse_accepts_exactly_the_official_grammar(text: str) -> None:
    valid = SEMVER_RE.fullmatch(text) is not None
    try:
        v = Version.parse(text)
    except VersionError as error:
        assert not valid, f"rejected valid {text!r}: {error}"
        assert repr(text) in str(error)
    else:
        assert valid, f"accepted invalid {text!r}"
        assert str(v) == text


@settings(max_examples=300, deadline=None)
@given(ANY_VERSION, ANY_VERSION)
def test_prop_ordering_agrees_with_reference(a: Version, b: Version) -> None:
    expected = ref_cmp(str(a), str(b))
    outcomes = [a < b, a.same_precedence(b), a > b]
    assert outcomes.count(True) == 1  # total preorder: exactly one holds
    assert outcomes == [expected < 0, expected == 0, expected > 0]
    assert (a <= b) == (expected <= 0)
    assert (a >= b) == (expected >= 0)
    assert (a < b) == (b > a) and (a <= b) == (b >= a)
    assert (a.precedence_key() < b.precedence_key()) == (expected < 0)
    if a <= b and b <= a:  # antisymmetric up to precedence
        assert a.same_precedence(b)
    # equality is field equality (build metadata included), hashing agrees with it
    assert (a == b) == (str(a) == str(b))
    if a == b:
        assert hash(a) == hash(b)


@settings(max_examples=300, deadline=None)
@given(ANY_VERSION, ANY_VERSION, ANY_VERSION)
def test_prop_transitive(a: Version, b: Version, c: Version) -> None:
    for x, y, z in itertools.permutations([a, b, c]):
        if x <= y and y <= z:
            assert x <= z
        if x < y and y <= z:
            assert x < z
        if x.same_precedence(y) and y.same_precedence(z):
            assert x.same_precedence(z)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(TIE_PRONE, versions(SMALL)), max_size=12))
def test_prop_sorting_is_stable_with_respect_to_build_metadata(vs: list[Version]) -> None:
    by_reference = sorted(vs, key=functools.cmp_to_key(lambda x, y: ref_cmp(str(x), str(y))))
    assert sorted(vs) == by_reference  # both stable: identical order, ties included
    assert sorted(vs, key=Version.precedence_key) == by_reference
    for i, j in itertools.combinations(range(len(vs)), 2):
        if vs[i].same_precedence(vs[j]):  # ties keep input order
            assert _index_of(sorted(vs), vs, i) < _index_of(sorted(vs), vs, j)


def _index_of(result: list[Version], source: list[Version], index: int) -> int:
    """Position in ``result`` of the object at ``source[index]`` (by identity)."""
    return next(k for k, v in enumerate(result) if v is source[index])


# --------------------------------------------------------------------------- hypothesis: requirements

OPS = ["^", "~", "=", ">", ">=", "<", "<=", "*"]
OP_OF = {"^": Op.CARET, "~": Op.TILDE, "=": Op.EXACT, ">": Op.GREATER, ">=": Op.GREATER_EQ,
         "<": Op.LESS, "<=": Op.LESS_EQ, "*": Op.WILDCARD}
REQ_PRES = ["alpha", "alpha.1", "beta", "0", "rc.1", "beta.11"]
SPACE = st.sampled_from(["", "", " ", "  ", "\t"])


@st.composite
def cmps(draw: st.DrawFn, anchor: tuple[int, int, int] | None = None) -> Cmp:
    """A random comparator; with an anchor, often on (a prefix of) the anchor's version."""
    op = draw(st.sampled_from(OPS))
    if anchor is not None and draw(st.booleans()):
        major, minor_, patch_ = anchor
    else:
        major, minor_, patch_ = draw(SMALL), draw(SMALL), draw(SMALL)
    minor = draw(st.sampled_from([None, minor_, minor_]))
    patch = None if minor is None or op == "*" else draw(st.sampled_from([None, patch_, patch_]))
    pre = None if patch is None else draw(st.one_of(st.none(), st.none(), st.sampled_from(REQ_PRES)))
    return Cmp(op=op, major=major, minor=minor, patch=patch, pre=pre)


@st.composite
def render(draw: st.DrawFn, c: Cmp) -> str:
    """Write a comparator in one of its accepted spellings."""
    version = ".".join(str(x) for x in c.given)
    if c.pre:
        version += f"-{c.pre}"
    if c.patch is not None and draw(st.booleans()):
        version += draw(st.sampled_from(["+build", "+b.1", "+0.0"]))  # ignored by requirements
    if c.op == "*":
        wildcard = draw(st.sampled_from(["*", "x", "X"]))
        return f"{version}.{wildcard}"
    if c.op == "^" and draw(st.booleans()):
        return version  # caret is the default operator
    return c.op + draw(SPACE) + version


@st.composite
def requirements(draw: st.DrawFn, force_pre: bool = False) -> tuple[str, list[Cmp]]:
    """(text, comparators); with force_pre, one comparator carries a pre-release."""
    if not force_pre and draw(st.integers(0, 9)) == 0:
        return draw(SPACE) + draw(st.sampled_from(["*", "x", "X"])) + draw(SPACE), []
    anchor = (draw(SMALL), draw(SMALL), draw(SMALL))
    parts = draw(st.lists(cmps(anchor), min_size=0 if force_pre else 1, max_size=2 if force_pre else 3))
    if force_pre:
        op = draw(st.sampled_from([o for o in OPS if o != "*"]))
        forced = Cmp(op, *anchor, pre=draw(st.sampled_from(REQ_PRES)))
        parts.insert(draw(st.integers(0, len(parts))), forced)
    texts = [draw(SPACE) + draw(render(c)) + draw(SPACE) for c in parts]
    return ",".join(texts), parts


@st.composite
def near_versions(draw: st.DrawFn, parts: list[Cmp]) -> str:
    """Versions around the comparators' boundaries, often with a pre-release."""
    with_pre = [c for c in parts if c.pre]
    opt_in = draw(st.booleans()) if with_pre else False
    if opt_in:  # the triple of a comparator with a pre-release: exercises the opt-in rule
        c = draw(st.sampled_from(with_pre))
        base = c.given
    elif len(parts) > 0 and draw(st.booleans()):
        c = draw(st.sampled_from(parts))
        base = [x + draw(st.sampled_from([0, 0, 0, 1, -1])) for x in c.given]
        base = [max(0, x) for x in base] + [draw(SMALL) for _ in range(3 - len(base))]
    else:
        base = [draw(SMALL) for _ in range(3)]
    text = ".".join(str(x) for x in base)
    pres = st.sampled_from([*REQ_PRES, "alpha.0", "rc", "0.0", "zeta"])
    pre = draw(pres if opt_in else st.one_of(st.none(), pres))
    if pre:
        text += f"-{pre}"
    if draw(st.integers(0, 4)) == 0:
        text += "+meta"
    return text


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_prop_requirement_matches_interval_oracle(data: st.DataObject) -> None:
    text, parts = data.draw(requirements(force_pre=data.draw(st.booleans())))
    req = Requirement.parse(text)
    assert req.comparators == tuple(
        Comparator(op=OP_OF[c.op], major=c.major, minor=c.minor, patch=c.patch,
                   pre=Version.parse(f"0.0.0-{c.pre}").pre if c.pre else ())
        for c in parts
    )
    for _ in range(8):
        version = data.draw(near_versions(parts))
        expected = oracle_matches(parts, version)
        assert req.matches(V(version)) == expected, (text, version, expected)
    single = data.draw(st.sampled_from(parts)) if parts else None
    if single is not None:
        version = data.draw(near_versions([single]))
        (comparator,) = Requirement.parse(data.draw(render(single))).comparators
        assert comparator.matches(V(version)) == oracle_matches([single], version), (single, version)


@settings(max_examples=300, deadline=None)
@given(requirements())
def test_prop_requirement_roundtrip(generated: tuple[str, list[Cmp]]) -> None:
    text, _ = generated
    req = Requirement.parse(text)
    normalised = str(req)
    assert Requirement.parse(normalised) == req
    assert str(Requirement.parse(normalised)) == normalised
    assert ", ".join(str(c) for c in req.comparators) == (normalised if req.comparators else "")


def plain(c: Cmp) -> str:
    """The simplest spelling of a test comparator."""
    version = ".".join(str(x) for x in c.given)
    if c.op == "*":
        return version + ".*"
    return c.op + version + (f"-{c.pre}" if c.pre else "")


@settings(max_examples=300, deadline=None)
@given(cmps())
def test_prop_bounds_agree_with_documented_intervals(c: Cmp) -> None:
    comparator = Comparator.parse(plain(c))
    assert str(comparator) == plain(c)
    lower, lower_inclusive, upper, upper_inclusive = comparator.bounds()
    expected = interval(c)
    assert (None if lower is None else str(lower), lower_inclusive) == expected[:2]
    assert (None if upper is None else str(upper), upper_inclusive) == expected[2:]


@settings(max_examples=300, deadline=None)
@given(cmps(), st.builds(lambda *xs: ".".join(map(str, xs)), SMALL, SMALL, SMALL))
def test_prop_release_versions_match_exactly_their_bounds(c: Cmp, version: str) -> None:
    """For releases a comparator is its interval; pre-releases additionally need opt-in."""
    comparator = Comparator.parse(plain(c))
    assert comparator.matches(V(version)) == in_interval(version, interval(c))


def test_overlong_text_is_a_version_error() -> None:
    with pytest.raises(VersionError, match="longer than 256"):
        Version.parse("1" * 5000 + ".0.0")
    with pytest.raises(VersionError, match="longer than 256"):
        Requirement.parse(">=" + "9" * 5000)


# --------------------------------------------------------------------------- empty requirements (design14 3)


@pytest.mark.parametrize("text", [">2.39.5, <2.39.5", ">2, <1", "=1.0.0, =2.0.0", ">1.0.0, <1.0.1",
                                  ">=1.0.0-rc.1, <1.0.0-rc.1", ">1.0.0-alpha, <1.0.0-alpha.0", "<0.0.0",
                                  "^1.2, ^2", "~1.2.3, >=1.3", ">2.39.4, <2.39.5"])
def test_empty_requirements(text: str) -> None:
    assert Requirement.parse(text).is_empty()


@pytest.mark.parametrize("text", [">=1, <2", "*", "=1.0.0", ">1.0.0-alpha, <1.0.0-beta", "<=0.0.0-0",
                                  ">=1.0.0, <1.0.1-rc.1", ">2.39.4, <2.39.5-rc.1", "^0.0.3, >=0.0.3"])
def test_non_empty_requirements(text: str) -> None:
    assert not Requirement.parse(text).is_empty()


_EMPTY_PRES: list[tuple[str | int, ...]] = [(), (0,), ("alpha",), ("alpha", 0), ("alpha", 1), ("alpha", 1, 0),
                                            ("beta",), ("beta", 0)]
_UNIVERSE = [Version(major=a, minor=b, patch=c, pre=p)
             for a in range(5) for b in range(5) for c in range(5) for p in _EMPTY_PRES]
_EMPTY_COMPARATORS = st.builds(
    lambda op, core, pre: f"{op}{core}{'-' + pre if pre and core.count('.') == 2 else ''}",
    st.sampled_from(["", "=", ">", ">=", "<", "<=", "~", "^"]),
    st.sampled_from(["0", "1", "0.0", "1.2", "0.0.0", "0.0.3", "1.2.3", "2.0.0", "3.3.3"]),
    st.sampled_from(["", "", "alpha", "alpha.1", "beta"]),
)


@settings(max_examples=300)
@given(st.lists(_EMPTY_COMPARATORS, min_size=1, max_size=3))
def test_prop_is_empty_means_nothing_matches(comparators: list[str]) -> None:
    """Every witness lies in the finite universe (numbers <= 4, the pre-releases the comparators use, .0)."""
    req = Requirement.parse(", ".join(comparators))
    assert req.is_empty() == (not any(req.matches(v) for v in _UNIVERSE))


# --------------------------------------------------------------------------- Debian versions and relations


@pytest.mark.parametrize(("lower", "higher"), [
    ("2.36-9+deb12u2", "2.36-9+deb12u5"), ("1", "1+b1"), ("1+b1", "1+deb12u2"), ("1+deb12u5", "2"),
    ("1.0~rc1", "1.0"), ("1.0~~", "1.0~"), ("2.36", "2.36-9"), ("9.9", "1:0.1"), ("1:2.36-9", "2:0"),
    ("1.0", "1.0a"), ("1.0a", "1.0+"), ("1.0+", "1.0."), ("0.9", "0.10"), ("1.0-1", "1.0-1.1"),
])
def test_dpkg_order_pairs(lower: str, higher: str) -> None:
    assert dpkg_compare(lower, higher) == -1
    assert dpkg_compare(higher, lower) == 1
    assert DebVersion(text=lower) < DebVersion(text=higher)


@pytest.mark.parametrize(("a", "b"), [("1.0", "1.0-0"), ("0.1-2", "0.01-2"), ("1a", "1a0"), ("0:1", "1")])
def test_dpkg_equal_but_different_text(a: str, b: str) -> None:
    assert dpkg_compare(a, b) == 0
    assert DebVersion(text=a) != DebVersion(text=b)
    assert not DebVersion(text=a) < DebVersion(text=b)


@pytest.mark.parametrize(("text", "rule"), [
    ("", "version string is empty"), ("1.0-", "revision number is empty"), ("a1", "does not start with digit"),
    ("1.0_1", "invalid character in version number"), ("1-a_b", "invalid character in revision number"),
    (":1", "epoch in version is empty"), ("x:1", "epoch in version is empty"), ("1x:1", "epoch in version is not"),
    ("1:", "nothing after colon"), ("1 2", "embedded spaces"), ("99999999999:1", "epoch in version is too big"),
    (" 1", "leading or trailing blanks"), ("1:-1", "version number is empty"),
])
def test_deb_version_validity_names_the_dpkg_rule(text: str, rule: str) -> None:
    with pytest.raises(VersionError, match=rule) as info:
        DebVersion(text=text)
    assert info.value.hint


def test_deb_version_parts() -> None:
    v = DebVersion.parse("1:2.36-9+deb12u7")
    assert (v.epoch, v.upstream, v.revision, str(v)) == (1, "2.36", "9+deb12u7", "1:2.36-9+deb12u7")
    w = DebVersion.parse("0:1.2-3:4-5")  # ':' and '-' inside the upstream, as dpkg allows
    assert (w.epoch, w.upstream, w.revision) == (0, "1.2-3:4", "5")


@pytest.mark.parametrize(("relation", "good", "bad"), [
    ("(>> 2.36)", ["2.36-9", "2.36.1", "1:0"], ["2.36", "2.36-0", "2.36~rc1-1"]),
    ("(>= 2.36-9+deb12u5)", ["2.36-9+deb12u5", "2.36-9+deb12u7", "2.37"], ["2.36-9+deb12u2", "2.36-9"]),
    ("(= 2.39.5-0+deb12u1)", ["2.39.5-0+deb12u1", "0:2.39.5-0+deb12u1"], ["2.39.5-0", "2.39.5-0+deb12u2"]),
    ("(<< 5.36.0~)", ["5.34.0-1", "5.36.0~~"], ["5.36.0", "5.36.0~", "5.36.0~rc1", "1:1.0"]),
    ("(<= 1:1.0)", ["1:1.0", "1:0.9", "9.9"], ["1:1.0-1", "2:0"]),
    ("(< 1.0)", ["1.0", "0.9"], ["1.0-1"]),
    ("(> 1.0)", ["1.0", "1.0-1"], ["0.9"]),
])
def test_deb_relation_matches(relation: str, good: list[str], bad: list[str]) -> None:
    rel = DebRelation.parse(relation)
    assert all(rel.matches(v) for v in good), relation
    assert not any(rel.matches(v) for v in bad), relation
    assert all(rel.as_range().contains(v) for v in good)
    assert not any(rel.as_range().contains(DebVersion(text=v)) for v in bad)


def test_deb_relation_parse_and_print() -> None:
    assert DebRelation.parse("(>>2.36)") == DebRelation(op=RelationOp.LATER, version=DebVersion(text="2.36"))
    assert str(DebRelation.parse("( >=  1:2.0-1 )")) == "(>= 1:2.0-1)"
    old = DebRelation.parse("(< 1.0)")
    assert (old.op, old.deprecated, str(old)) == (RelationOp.EARLIER_EQ, True, "(<= 1.0)")
    for text in ["(>>> 1)", ">= 1", "(>= )", "(>= a1)", "(== 1)"]:
        with pytest.raises(VersionError):
            DebRelation.parse(text)


@pytest.mark.parametrize(("relations", "empty"), [
    (["(>> 2.39.5)", "(<< 2.39.5)"], True),
    (["(>= 2)", "(<< 1)"], True),
    (["(= 1.0)", "(= 1.0-0)"], False),  # dpkg-equal
    (["(= 1.0)", "(>> 1.0)"], True),
    (["(>= 1.0)", "(<= 1.0)"], False),
    (["(>> 1.0)", "(<< 1.0+)"], False),  # 1.0+~ lies between
    (["(>= 1:0)", "(<< 9.9)"], True),
    (["(<< 0~)"], False),
    ([], False),
])
def test_deb_relation_intersection(relations: list[str], empty: bool) -> None:
    assert DebRelation.intersect(DebRelation.parse(r) for r in relations).is_empty() is empty


def test_deb_range_keeps_the_tighter_bound() -> None:
    both = DebRelation.intersect([DebRelation.parse("(>= 1.0)"), DebRelation.parse("(>> 1.0-0)")])
    assert both == DebRange(lower=DebVersion(text="1.0"), lower_inclusive=False)
    assert not both.contains("1.0") and both.contains("1.0-1")


# --------------------------------------------------------------------------- full versions (design14 1.1)


@pytest.mark.parametrize(("text", "scheme", "epoch", "upstream", "revision"), [
    ("1:1.2.3-r4", "semver", 1, "1.2.3", "4"),
    ("1.2.3-rc.1+b5-r2", "semver", 0, "1.2.3-rc.1+b5", "2"),
    ("1.2.3-rc.1", "semver", 0, "1.2.3-rc.1", ""),
    ("6.1.192-r2", "semver", 0, "6.1.192", "2"),
    ("1:2.36-9+deb12u7", "deb", 1, "2.36", "9+deb12u7"),
    ("1.0~rc1-1", "deb", 0, "1.0~rc1", "1"),
    ("0:1.2-3:4-5", "deb", 0, "1.2-3:4", "5"),
])
def test_full_version_parse_and_text(text: str, scheme: str, epoch: int, upstream: str, revision: str) -> None:
    v = FullVersion.parse(text, scheme)
    assert (v.epoch, str(v.upstream), v.revision, v.scheme) == (epoch, upstream, revision, scheme)
    assert str(v) == text
    assert FullVersion.parse(str(v), scheme) == v


def test_full_version_order() -> None:
    chain = ["1.0.0-alpha", "1.0.0", "1.0.0-r1", "1.0.0-r1+b1", "1.0.0-r2", "1.0.1-rc.1", "1.0.1", "1:0.0.1"]
    parsed = [FullVersion.parse(t) for t in chain]
    assert sorted(reversed(parsed)) == parsed
    assert [a < b for a, b in itertools.pairwise(parsed)] == [True] * (len(chain) - 1)
    assert FullVersion.parse("6.1.192-r3") > FullVersion.parse("6.1.192-r2")  # an upgrade, not a rebuild
    a, b = FullVersion.parse("1.0.0+a"), FullVersion.parse("1.0.0+b")
    assert a != b and a.order_key() == b.order_key() and not a < b
    deb = [FullVersion.parse(t, "deb") for t in ["2.36-9", "2.36-9+deb12u2", "2.36-9+deb12u5", "1:2.0"]]
    assert sorted(reversed(deb)) == deb
    assert FullVersion.parse("1.0", "deb").order_key() == FullVersion.parse("1.0-0", "deb").order_key()
    with pytest.raises(TypeError):
        _ = FullVersion.parse("1.0.0") < FullVersion.parse("1.0", "deb")


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"upstream": V("1.0.0-r2")}, "reads as a revision"),
    ({"upstream": V("1.0.0"), "revision": "a1"}, "starts with a digit"),
    ({"upstream": V("1.0.0"), "revision": "1-2"}, "contains '-'"),
    ({"upstream": "1.0", "scheme": "rpm"}, "unknown version scheme"),
    ({"upstream": "1-0", "scheme": "deb"}, "no revision"),
    ({"upstream": "a1", "scheme": "deb"}, "does not start with digit"),
    ({"upstream": V("1.0.0"), "epoch": 2**31}, "larger than"),
])
def test_full_version_refusals(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(VersionError, match=fragment):
        FullVersion(**kwargs)  # type: ignore[arg-type]


def test_full_version_parse_refusals() -> None:
    for text, fragment in [("x:1.0.0", "epoch"), ("1.0", "missing"), ("1.0.0-r2-x", "reads as a revision")]:
        with pytest.raises(VersionError, match=fragment):
            FullVersion.parse(text)
    with pytest.raises(VersionError, match="unknown version scheme"):
        FullVersion.parse("1.0", "apk")
    with pytest.raises(TypeError):
        FullVersion(upstream="1.0.0")


@pytest.mark.parametrize(("upstream", "projection"), [
    ("2.36", "2.36.0"), ("1.0~rc1", "1.0.0+deb.-7erc1"), ("0.11.dfsg1", "0.11.0+deb.-.dfsg1"),
    ("1.2.3.4+ds-x", "1.2.3+deb.-.4-2bds-2dx"), ("1:2", "1.0.0+deb.-3a2"), ("007", "7.0.0"),
    ("1.2.3", "1.2.3"), ("1.2.", "1.2.0+deb.-.-"),
])
def test_semver_projection(upstream: str, projection: str) -> None:
    assert str(semver_projection(upstream)) == projection
    assert Requirement.parse("*").matches(semver_projection(upstream))


def _unescape(build: tuple[str, ...]) -> str:
    pieces = ["" if p == "-" else re.sub("-(7e|2b|2d|3a)", lambda m: bytes.fromhex(m[1]).decode(), p)
              for p in build[1:]]
    return ".".join(pieces)


@settings(max_examples=300)
@given(st.text("0123456789.ab~+-:", min_size=1, max_size=10))
def test_prop_projection_escape_is_injective(rest: str) -> None:
    """The rest after the leading numbers comes back from the build metadata (so the escape is injective)."""
    projected = semver_projection("1.2.3x" + rest)
    assert _unescape(projected.build) == "x" + rest


def _deb_witnesses(*bounds: DebVersion | None) -> list[str]:
    """Versions at and just around the bounds (``v+~`` lies just above ``v``, ``v~`` just below)."""
    out: list[str] = []
    for bound in bounds:
        if bound is None:
            continue
        text = bound.text
        out += [text, *(text + s for s in ["+~", ".~", "~", "0~", "+~~", "+~~~", ".~~", "a~", "~~"])]
        if "-" not in text.partition(":")[2]:
            out += [text + "-~", text + "-0~", text + "-~~"]
    return out


_DEB_TEXTS = st.builds(
    lambda up, rev, epoch: epoch + up + ("-" + rev if rev else ""),
    st.from_regex(r"[0-9][019.~+a]{0,4}", fullmatch=True),
    st.one_of(st.just(""), st.from_regex(r"[019~+.a]{1,3}", fullmatch=True)),
    st.sampled_from(["", "", "", "1:"]),
)


@settings(max_examples=500)
@given(_DEB_TEXTS, st.one_of(_DEB_TEXTS, st.sampled_from(["", "0", "~", "+", ".0", "a", "~~", "0~"])),
       st.sampled_from([">>", ">=", "="]), st.sampled_from(["<<", "<=", "="]))
def test_prop_deb_range_emptiness_is_exact(low: str, high: str, low_op: str, high_op: str) -> None:
    """is_empty() exactly when no version satisfies both: a witness near the bounds exists otherwise (density)."""
    if len(high) < 3 and not high[:1].isdigit():
        high = low + high
    relations = [DebRelation.parse(f"({low_op} {low})"), DebRelation.parse(f"({high_op} {high})")]
    both = DebRelation.intersect(relations)
    candidates = _deb_witnesses(both.lower, both.upper)
    valid = [c for c in candidates if _valid_deb(c)]
    assert both.is_empty() == (not any(all(r.matches(c) for r in relations) for c in valid))


def _valid_deb(text: str) -> bool:
    try:
        DebVersion(text=text)
    except VersionError:
        return False
    return True


@pytest.mark.parametrize(("requirement", "version", "scheme", "expected"), [
    ("=1.2.3", "1.2.3-r4", "semver", True), (">1.2.3", "1.2.3-r4", "semver", False),
    ("<=1.2.3", "1:1.2.3-r4", "semver", True), ("^2.36", "1:2.36-9+deb12u7", "deb", True),
    ("*", "1.0~rc1-1", "deb", True), ("<2.36", "2.36~rc1-1", "deb", False), (">=2", "1.9.9-1", "deb", False),
])
def test_cargo_requirement_on_full_versions(requirement: str, version: str, scheme: str, expected: bool) -> None:
    assert Requirement.parse(requirement).matches_full(FullVersion.parse(version, scheme)) is expected


def test_new_version_types_refuse_foreign_comparisons() -> None:
    for value in (DebVersion(text="1.0"), FullVersion.parse("1.0.0")):
        with pytest.raises(TypeError):
            _ = value < "1.0"  # type: ignore[operator]
