"""The resolver's Cargo candidate sets for requirements with an epoch or a revision (composer/solve/relations.py)."""

from __future__ import annotations

import pytest

from composer.solve.relations import Catalog, Member, Selector
from composer.version import FullVersion, Requirement, semver_projection

BUILDS = [("6.1.192", "semver"), ("6.1.192-r2", "semver"), ("6.1.192-r3", "semver"), ("6.1.192-r10", "semver"),
          ("1:6.1.0", "semver"), ("6.1.193", "semver"), ("6.1.192-3", "deb"), ("1:6.1.192-4+b1", "deb")]


def selector() -> Selector:
    catalog = Catalog()
    for k, (text, scheme) in enumerate(BUILDS):
        full = FullVersion.parse(text, scheme)
        upstream = full.upstream
        semver = str(upstream) if scheme == "semver" else str(semver_projection(str(upstream)))
        catalog.add(k, Member(name="linux", evr=str(k), scheme=scheme, multi_arch="", semver=semver, text=text), ())
    return Selector(catalog, "amd64")


@pytest.mark.parametrize("req", ["=6.1.192-r3", ">=6.1.192-r3", "<6.1.192-r3", "^6.1.192-r3", ">1:6.0.0",
                                 "=1:6.1.192-r4+b1", "=6.1.192", ">6.1.192", "<=6.1.192", "~6.1", "*", "6.1.192-r2"])
def test_candidates_are_what_matches_full_admits(req: str) -> None:
    expected = [k for k, (text, scheme) in enumerate(BUILDS)
                if Requirement.parse(req).matches_full(FullVersion.parse(text, scheme))]
    got = selector().cargo_set("linux", req)
    assert (list(range(len(BUILDS))) if got is None else list(got)) == expected


def test_exact_build() -> None:
    s = selector()
    # the deb build 6.1.192-3 is seen as (0, 6.1.192, "3"): the same build for a Cargo requirement
    assert s.cargo_set("linux", "=6.1.192-r3") == (2, 6)
    assert s.cargo_set("linux", "=6.1.192-r4") == ()
    assert s.cargo_set("linux", "=1:6.1.192-r4+b1") == (7,)
    assert s.cargo_set("linux", "=6.1.192-r3") == (2, 6)   # memoized
