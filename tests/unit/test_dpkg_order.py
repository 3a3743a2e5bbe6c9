"""dpkg's version order: the Python port against the ``dpkg`` CLI, and the letters-only EVRs against libsolv.

Three oracles (design14 sections 1.1-1.3):

* ``dpkg --compare-versions`` (the real tool, batched: one ``sh`` through ``composer.run`` per few hundred
  pairs) for :func:`dpkg_compare` on hypothesis pairs (30 % near-equal, as measured for the design) and on
  real Debian versions (``tests/data/debian-versions.txt``, 3,000 distinct bookworm versions);
* libsolv's own ``evrcmp`` for :func:`deb_evr` against :func:`dpkg_compare` on every pair of the sample;
* libsolv's ``evrcmp`` for :func:`native_evr` against the :class:`FullVersion` order (epoch, SemVer, revision).
"""

from __future__ import annotations

import random
import shlex
import shutil
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import cmp_to_key
from itertools import combinations, pairwise

import pytest
import solv
from hypothesis import Phase, assume, given, settings
from hypothesis import strategies as st

from composer import run
from composer.solve.evr import deb_evr, native_evr
from composer.version import DebVersion, FullVersion, Version, VersionError, dpkg_compare
from tests.conftest import REPO

SAMPLE = REPO / "tests" / "data" / "debian-versions.txt"
needs_dpkg = pytest.mark.skipif(shutil.which("dpkg") is None, reason="the dpkg CLI (the oracle) is not installed")

_SH_COMPARE = (
    'c() { if dpkg --compare-versions "$1" lt "$2"; then echo lt; '
    'elif dpkg --compare-versions "$1" eq "$2"; then echo eq; else echo gt; fi; }\n'
)
_SIGNS = {"lt": -1, "eq": 0, "gt": 1}


def dpkg_cli(pairs: Sequence[tuple[str, str]]) -> list[int]:
    """``dpkg --compare-versions`` on every pair, in one shell (2 dpkg runs per pair at most)."""
    script = _SH_COMPARE + "".join(f"c {shlex.quote(a)} {shlex.quote(b)}\n" for a, b in pairs)
    out = run.run(["sh"], stdin=script.encode(), timeout=120).stdout.decode().split()
    assert len(out) == len(pairs)
    return [_SIGNS[word] for word in out]


class _Solv:
    """Two solvables of a throw-away pool, reused to compare many EVR pairs in libsolv."""

    def __init__(self) -> None:
        self.pool = solv.Pool()
        repo = self.pool.add_repo("evrcmp")
        self.first, self.second = repo.add_solvable(), repo.add_solvable()

    def __call__(self, evr_a: str, evr_b: str) -> int:
        self.first.evr, self.second.evr = evr_a, evr_b
        result = int(self.first.evrcmp(self.second))
        return (result > 0) - (result < 0)


def _ranks(items: Sequence[str], cmp: Callable[[str, str], int]) -> dict[str, int]:
    """Each item's rank in ``cmp``'s order (equal items share a rank)."""
    ordered = sorted(items, key=cmp_to_key(cmp))
    ranks, rank = {ordered[0]: 0}, 0
    for before, after in pairwise(ordered):
        rank += cmp(before, after) != 0
        ranks[after] = rank
    return ranks


# --------------------------------------------------------------------------- hypothesis pairs

_UPSTREAM_CHARS = "0123456789~+.ab:AZ-"
_REVISION_CHARS = "0129~+.ab"
_NEAR = ["", "0", "~", "+", ".0", "a", "-0", "~~", "0~", ".", "+b1"]


@st.composite
def deb_versions(draw: st.DrawFn) -> str:
    upstream = draw(st.sampled_from("0123456789")) + draw(st.text(_UPSTREAM_CHARS, max_size=6))
    revision = draw(st.one_of(st.just(""), st.text(_REVISION_CHARS, min_size=1, max_size=4)))
    if "-" in upstream and not revision:
        revision = "1"
    epoch = draw(st.sampled_from(["", "", "", "0:", "1:", "2:", "10:"]))
    if ":" in upstream and not epoch:
        epoch = "0:"
    return epoch + upstream + ("-" + revision if revision else "")


@st.composite
def deb_pairs(draw: st.DrawFn) -> tuple[str, str]:
    a = draw(deb_versions())
    b = a + draw(st.sampled_from(_NEAR)) if draw(st.integers(0, 9)) < 3 else draw(deb_versions())
    try:
        DebVersion(text=b)
    except VersionError:
        b = a
    return (a, b) if draw(st.booleans()) else (b, a)


@needs_dpkg
@settings(max_examples=10, phases=[Phase.explicit, Phase.reuse, Phase.generate])  # no shrinking: the CLI is slow
@given(st.lists(deb_pairs(), min_size=200, max_size=200))
def test_port_and_evr_agree_with_dpkg_cli_on_random_pairs(pairs: list[tuple[str, str]]) -> None:
    """10 examples x 200 pairs = 2,000 pairs through the real dpkg; libsolv on the EVRs agrees too."""
    for a, b in pairs:
        assert DebVersion(text=a).text == a
        assert DebVersion(text=b).text == b
    libsolv = _Solv()
    expected = dpkg_cli(pairs)
    for (a, b), want in zip(pairs, expected, strict=True):
        assert dpkg_compare(a, b) == want, (a, b)
        assert libsolv(deb_evr(a), deb_evr(b)) == want, (a, b, deb_evr(a), deb_evr(b))


@settings(max_examples=1000)
@given(deb_pairs())
def test_evr_order_is_the_port_order(pair: tuple[str, str]) -> None:
    """In-process, 1,000 more examples: libsolv's order of the letters-only EVRs is dpkg_compare."""
    a, b = pair
    assert _Solv()(deb_evr(a), deb_evr(b)) == dpkg_compare(a, b), (a, b)


# --------------------------------------------------------------------------- real Debian versions


def _sample() -> tuple[dict[str, list[str]], list[str]]:
    names: dict[str, list[str]] = defaultdict(list)
    for line in SAMPLE.read_text().splitlines():
        name, version = line.split()
        names[name].append(version)
    return names, sorted({v for vs in names.values() for v in vs})


def test_sample_is_valid_and_sized() -> None:
    names, versions = _sample()
    assert len(versions) == 3000
    assert sum(len(vs) > 1 for vs in names.values()) >= 200  # names with several versions (provides)
    for version in versions:
        DebVersion(text=version)


@needs_dpkg
def test_port_agrees_with_dpkg_cli_on_real_versions() -> None:
    """Adjacent pairs of the port's sort (so the CLI confirms the whole order), same-name pairs, random pairs."""
    names, versions = _sample()
    ordered = sorted(versions, key=cmp_to_key(dpkg_compare))
    pairs = list(pairwise(ordered))
    pairs += [pair for vs in names.values() for pair in combinations(sorted(vs), 2)]
    rng = random.Random(14)
    pairs += [(rng.choice(versions), rng.choice(versions)) for _ in range(300)]
    expected = dpkg_cli(pairs)
    mismatches = [(a, b, want) for (a, b), want in zip(pairs, expected, strict=True) if dpkg_compare(a, b) != want]
    assert not mismatches


def test_libsolv_order_of_deb_evrs_is_dpkg_order_on_all_pairs() -> None:
    """All ~4.5 M pairs of the sample, through ranks.

    Every EVR is letters only, one alphabetic segment for rpmvercmp, which compares it with ``strcmp``: a
    total order. So libsolv's ranks (a sort with libsolv's comparison) equal to dpkg_compare's ranks means
    the two agree on every pair; 20,000 random pairs are checked directly as well.
    """
    _, versions = _sample()
    evrs = {v: deb_evr(v) for v in versions}
    assert all(e.isascii() and e.isalpha() for e in evrs.values())
    libsolv = _Solv()
    dpkg_ranks = _ranks(versions, dpkg_compare)
    solv_ranks = _ranks(versions, lambda a, b: libsolv(evrs[a], evrs[b]))
    assert solv_ranks == dpkg_ranks
    rng = random.Random(1)
    for _ in range(20_000):
        a, b = rng.choice(versions), rng.choice(versions)
        assert libsolv(evrs[a], evrs[b]) == dpkg_compare(a, b), (a, b)


def test_dpkg_equal_versions_get_one_evr() -> None:
    _, versions = _sample()
    ordered = sorted(versions, key=cmp_to_key(dpkg_compare))
    equal = [(a, b) for a, b in pairwise(ordered) if dpkg_compare(a, b) == 0]
    assert len(equal) >= 100  # 1.0 / 1.0-0, 0.1 / 0.01 ... are in the sample
    assert all(deb_evr(a) == deb_evr(b) for a, b in equal)
    assert deb_evr("1.0") == deb_evr("1.0-0") == deb_evr("1.00") == deb_evr("0:1.0")


# --------------------------------------------------------------------------- native versions

_IDENTS = ["alpha", "beta", "rc", "a", "A", "Z", "x-y", "-", "a1", "1a", "0a", "alpha-", "b"]


@st.composite
def native_versions(draw: st.DrawFn) -> FullVersion:
    core = [draw(st.sampled_from([0, 1, 2, 9, 10, 100])) for _ in range(3)]
    pre = draw(st.lists(st.one_of(st.sampled_from(_IDENTS), st.sampled_from([0, 1, 2, 10, 11])), max_size=3))
    build = draw(st.sampled_from([(), ("b1",), ("x", "2")]))
    revision = draw(st.sampled_from(["", "", "1", "2", "1+b1", "1~", "10", "1.1", "0", "1+deb12u2", "1+deb12u5"]))
    upstream = Version(major=core[0], minor=core[1], patch=core[2], pre=tuple(pre), build=build)
    assume("-r" not in str(upstream))
    return FullVersion(epoch=draw(st.sampled_from([0, 0, 0, 1, 12])), upstream=upstream, revision=revision)


def _order(a: FullVersion, b: FullVersion) -> int:
    return (a > b) - (a < b)


@settings(max_examples=1000)
@given(native_versions(), native_versions())
def test_native_evr_order_is_full_version_order(a: FullVersion, b: FullVersion) -> None:
    assert _Solv()(native_evr(a), native_evr(b)) == _order(a, b), (str(a), str(b))


@settings(max_examples=500)
@given(native_versions())
def test_native_text_form_round_trips(version: FullVersion) -> None:
    assert FullVersion.parse(str(version)) == version
