"""Resolver: data-file cases, and hypothesis against a brute-force oracle on small random repositories."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.repo.index import IndexEntry
from composer.solve.resolve import Request, ResolveError, Resolver
from composer.version import Requirement, Version

CASES = sorted((Path(__file__).parent / "resolve_cases").glob("*.json"))


def entry(d: dict[str, Any], arch: str = "x86_64") -> IndexEntry:
    return IndexEntry(name=d["name"], version=d["version"], arch=d.get("arch", arch), type="application",
                      description=d["name"], license="MIT", dependencies=d.get("deps", {}),
                      provides=tuple(d.get("provides", ())), conflicts=tuple(d.get("conflicts", ())),
                      features=d.get("features", {}), capabilities=d.get("capabilities", {}), driver={}, size=1,
                      installed_size=1, sha256="0" * 64, path=f"packages/{d['name']}/x.vpk", signer="k")


def request(r: str | dict[str, Any]) -> Request:
    if isinstance(r, str):
        return Request(name=r)
    return Request(name=r["name"], requirement=r.get("version", "*"), features=tuple(r.get("features", ())))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_case(case: Path) -> None:
    data = json.loads(case.read_text())
    resolver = Resolver([entry(e) for e in data["index"]], "x86_64")
    reqs = [request(r) for r in data["requested"]]
    reqs += [Request(name=f"driver:{d}", reason=f"driver for {d}") for d in data.get("drivers", [])]
    if "error" in data:
        with pytest.raises(ResolveError) as info:
            resolver.solve(reqs)
        assert data["error"] in info.value.message, info.value.message
        return
    chosen = resolver.solve(reqs)
    assert {c.entry.name: c.entry.version for c in chosen} == data["resolved"]
    for name, reason in data.get("reasons", {}).items():
        assert next(c.reason for c in chosen if c.entry.name == name) == reason


def test_unsatisfiable_pair_is_explained_with_the_chain_and_fixes() -> None:
    data = json.loads((Path(__file__).parent / "resolve_cases" / "unsatisfiable-pair.json").read_text())
    with pytest.raises(ResolveError) as info:
        Resolver([entry(e) for e in data["index"]], "x86_64").solve([Request(name="a"), Request(name="b")])
    msg = info.value.message
    assert "lib" in msg and "a 1.0.0" in msg and "b 1.0.0" in msg and "possible fixes:" in msg
    assert "0000" not in msg  # internal version ranks never leak into messages


def test_capability_not_granted_names_package_capability_and_who_pulled_it() -> None:
    from composer.solve.resolve import check_capabilities
    index = [entry({"name": "app", "version": "1.0.0", "deps": {"net": "1"}}),
             entry({"name": "net", "version": "1.0.0", "capabilities": {"required": ["network"]}})]
    chosen = Resolver(index, "x86_64").solve([Request(name="app")])
    with pytest.raises(ResolveError, match=r"'net' \(x86_64\) requires capability 'network'.*net <- app \(requested\)"):
        check_capabilities(chosen, [], "x86_64")
    check_capabilities(chosen, ["network"], "x86_64")


# ---------------------------------------------------------------- property test against brute force

NAMES = ["a", "b", "c", "d"]
VERSIONS = ["1.0.0", "1.1.0", "2.0.0", "2.1.0-rc.1"]
REQS = ["*", "1", "^1.1", "2", ">=1.1.0", "<2.0.0", "=1.0.0", ">=2.1.0-rc.1"]


@st.composite
def repos(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    index = []
    for name in NAMES:
        for v in draw(st.lists(st.sampled_from(VERSIONS), min_size=0, max_size=3, unique=True)):
            others = [n for n in NAMES if n != name]
            deps = draw(st.dictionaries(st.sampled_from(others), st.sampled_from(REQS), max_size=2))
            conflicts = draw(st.lists(st.sampled_from(others), max_size=1))
            index.append({"name": name, "version": v, "deps": deps, "conflicts": conflicts})
    requested = draw(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(REQS)), min_size=1, max_size=2,
                              unique_by=lambda t: t[0]))
    return index, requested


def _ok(choice: dict[str, str], index: list[dict[str, Any]], requested: list[tuple[str, str]]) -> bool:
    def sat(name: str, req: str) -> bool:
        return name in choice and Requirement.parse(req).matches(Version.parse(choice[name]))
    by = {(e["name"], e["version"]): e for e in index}
    if not all(sat(n, r) for n, r in requested):
        return False
    for n, v in choice.items():
        e = by[(n, v)]
        if not all(sat(d, r) for d, r in e["deps"].items()) or any(c in choice for c in e["conflicts"]):
            return False
    return True


def brute_force(index: list[dict[str, Any]], requested: list[tuple[str, str]]) -> bool:
    options: dict[str, list[str | None]] = {}
    for e in index:
        options.setdefault(e["name"], [None]).append(e["version"])
    names = sorted(options)
    for combo in itertools.product(*(options[n] for n in names)):
        choice = {n: v for n, v in zip(names, combo, strict=True) if v is not None}
        if _ok(choice, index, requested):
            return True
    return False


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(repos())
def test_solutions_are_valid_and_no_solution_only_when_none_exists(case: tuple[list[dict[str, Any]],
                                                                                 list[tuple[str, str]]]) -> None:
    index, requested = case
    resolver = Resolver([entry(e) for e in index], "x86_64")
    try:
        chosen = resolver.solve([Request(name=n, requirement=r) for n, r in requested])
    except ResolveError:
        assert not brute_force(index, requested), "the resolver said no, but a solution exists"
        return
    choice = {c.entry.name: c.entry.version for c in chosen}
    assert len(choice) == len(chosen), "two versions of one name"
    assert _ok(choice, index, requested), f"invalid solution {choice}"
