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
from composer.solve.lockmodel import Reason
from composer.solve.resolve import Request, ResolveError, Resolver
from composer.version import FullVersion, Requirement, Version, semver_projection

CASES = sorted((Path(__file__).parent / "resolve_cases").glob("*.json"))


def entry(d: dict[str, Any], arch: str = "x86_64") -> IndexEntry:
    """An index entry of a case: ``version`` (SemVer, with optional ``epoch``/``revision``) or ``deb`` (a Debian
    version: the entry is a ``deb``-scheme one with its projection), ``deps`` (Cargo), ``relations``, ``provides``
    (``NAME`` or ``NAME = VERSION``), ``priority``, ``essential``, ``multi_arch``."""
    version, scheme, epoch, revision, upstream = d.get("version", ""), "semver", d.get("epoch", 0), \
        d.get("revision", ""), ""
    if "deb" in d:
        full = FullVersion.parse(d["deb"], "deb")
        version, scheme, epoch, revision, upstream = str(semver_projection(str(full.upstream))), "deb", full.epoch, \
            full.revision, d["deb"]
    return IndexEntry(name=d["name"], version=version, arch=d.get("arch", arch), type="application",
                      description=d["name"], license="MIT", dependencies=d.get("deps", {}),
                      provides=tuple(d.get("provides", ())), conflicts=tuple(d.get("conflicts", ())),
                      features=d.get("features", {}), capabilities=d.get("capabilities", {}), driver={}, size=1,
                      installed_size=1, sha256="0" * 64, path=f"packages/{d['name']}/x.vpk", signer="k",
                      epoch=epoch, revision=revision, upstream_version=upstream, version_scheme=scheme,
                      essential=d.get("essential", False), priority=d.get("priority", ""),
                      multi_arch=d.get("multi_arch", ""),
                      relations={k: tuple(v) for k, v in d.get("relations", {}).items()})


def request(r: str | dict[str, Any]) -> Request:
    if isinstance(r, str):
        return Request(name=r)
    return Request(name=r["name"], requirement=r.get("version", "*"), features=tuple(r.get("features", ())),
                   reason=Reason.parse(r.get("reason", "requested")))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_case(case: Path) -> None:
    data = json.loads(case.read_text())
    resolver = Resolver.of([entry(e) for e in data["index"]], "x86_64")
    reqs = [request(r) for r in data["requested"]]
    reqs += [Request(name=f"driver:{d}", reason=Reason.driver_for(d)) for d in data.get("drivers", [])]
    if "error" in data:
        with pytest.raises(ResolveError) as info:
            resolver.solve(reqs)
        assert data["error"] in info.value.message, info.value.message
        return
    chosen = resolver.solve(reqs)
    assert {c.entry.name: c.entry.version_text for c in chosen} == data["resolved"]
    for name, reason in data.get("reasons", {}).items():
        assert next(c.reason.text for c in chosen if c.entry.name == name) == reason


def test_unsatisfiable_pair_is_explained_with_the_chain_and_fixes() -> None:
    data = json.loads((Path(__file__).parent / "resolve_cases" / "unsatisfiable-pair.json").read_text())
    with pytest.raises(ResolveError) as info:
        Resolver.of([entry(e) for e in data["index"]], "x86_64").solve([Request(name="a"), Request(name="b")])
    msg = info.value.message
    assert "lib" in msg and "a 1.0.0" in msg and "b 1.0.0" in msg and "possible fixes:" in msg
    assert "0000" not in msg  # internal version ranks never leak into messages


def test_capability_not_granted_names_package_capability_and_who_pulled_it() -> None:
    from composer.solve.resolve import check_capabilities
    index = [entry({"name": "app", "version": "1.0.0", "deps": {"net": "1"}}),
             entry({"name": "net", "version": "1.0.0", "capabilities": {"required": ["network"]}})]
    chosen = Resolver.of(index, "x86_64").solve([Request(name="app")])
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
    resolver = Resolver.of([entry(e) for e in index], "x86_64")
    try:
        chosen = resolver.solve([Request(name=n, requirement=r) for n, r in requested])
    except ResolveError:
        assert not brute_force(index, requested), "the resolver said no, but a solution exists"
        return
    choice = {c.entry.name: c.entry.version for c in chosen}
    assert len(choice) == len(chosen), "two versions of one name"
    assert _ok(choice, index, requested), f"invalid solution {choice}"


# ---------------------------------------------------------------- the pool cache

def _sources(index: list[IndexEntry]) -> list[Any]:
    return [("main", "digest-1", lambda: index)]


def test_pool_cache_round_trip_gives_the_same_answer_and_a_tampered_cache_is_rebuilt(tmp_path: Path) -> None:
    from composer.solve.pool import SolvIndex
    index = [entry({"name": "app", "version": "1.0.0", "deps": {"lib": "^1.2"}, "capabilities": {"optional": ["x"]}}),
             entry({"name": "lib", "version": "1.2.0"}), entry({"name": "lib", "version": "1.3.0-rc.1"}),
             entry({"name": "lib", "version": "1.4.0+build.7"}), entry({"name": "lib", "version": "2.0.0"})]
    built = Resolver(SolvIndex.cached(tmp_path, "x86_64", _sources(index))).solve([Request(name="app")])
    (cached,) = tmp_path.glob("*.solv")

    def boom() -> list[IndexEntry]:
        raise AssertionError("the index was parsed although the pool is cached")

    loaded = Resolver(SolvIndex.cached(tmp_path, "x86_64", [("main", "digest-1", boom)])).solve([Request(name="app")])
    assert loaded == built
    assert {c.entry.name: c.entry.version for c in loaded} == {"app": "1.0.0", "lib": "1.4.0+build.7"}
    assert loaded[0].origin == "main" and loaded[0].optional_capabilities == ("x",)
    blob = bytearray(cached.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    cached.write_bytes(bytes(blob))
    again = Resolver(SolvIndex.cached(tmp_path, "x86_64", _sources(index))).solve([Request(name="app")])
    assert again == built
    assert cached.read_bytes() != bytes(blob), "the tampered cache file was not replaced"
    other = Resolver(SolvIndex.cached(tmp_path, "x86_64", [("main", "digest-2", lambda: index[:2])]))
    assert {c.entry.version for c in other.solve([Request(name="app")])} == {"1.0.0", "1.2.0"}
    assert len(list(tmp_path.glob("*.solv"))) == 2, "a new index digest must not reuse the old pool"


def test_explanations_use_our_versions_and_requirements_never_libsolv_encodings() -> None:
    index = [entry({"name": "app", "version": "1.0.0-beta.2", "deps": {"lib": ">=2.0.0-rc.1, <3"}}),
             entry({"name": "lib", "version": "1.0.0"}), entry({"name": "lib", "version": "2.0.0-alpha.1"})]
    with pytest.raises(ResolveError) as info:
        Resolver.of(index, "x86_64").solve([Request(name="app", requirement="=1.0.0-beta.2")])
    msg = info.value.message
    assert "nothing provides lib >=2.0.0-rc.1, <3 needed by app 1.0.0-beta.2" in msg, msg
    assert "~" not in msg and "Ab" not in msg, msg


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(repos())
def test_a_pool_loaded_from_the_cache_answers_like_the_one_built(case: tuple[list[dict[str, Any]],
                                                                             list[tuple[str, str]]]) -> None:
    import tempfile

    from composer.solve.pool import SolvIndex
    index, requested = case
    entries = [entry(e) for e in index]
    reqs = [Request(name=n, requirement=r) for n, r in requested]

    def outcome(resolver: Resolver) -> Any:
        try:
            return [(c.entry, c.reason, c.origin) for c in resolver.solve(reqs)]
        except ResolveError:  # which unsatisfiable rule libsolv reports first depends on its id order
            return "no solution"

    with tempfile.TemporaryDirectory() as tmp:
        built = outcome(Resolver(SolvIndex.build([("main", entries)], "x86_64")))
        SolvIndex.cached(Path(tmp), "x86_64", [("main", "d", lambda: entries)])
        loaded = outcome(Resolver(SolvIndex.cached(Path(tmp), "x86_64", [("main", "d", lambda: [])])))
    assert loaded == built


def test_a_requested_real_package_is_never_replaced_by_a_provider_even_when_it_fails() -> None:
    """apt installs the package a user names: when it cannot be installed the request fails (and the fix is to
    drop it), libsolv does not quietly take a package that merely provides the name."""
    index = [entry({"name": "aa-compat", "version": "1.0.0", "provides": ["imagemagick"]}),
             entry({"name": "imagemagick", "version": "6.9.11", "relations": {"requires": ["libmissing"]}}),
             entry({"name": "other", "version": "1.0.0"})]
    with pytest.raises(ResolveError) as info:
        Resolver.of(index, "x86_64").solve([request("imagemagick"), request("other")])
    assert info.value.message.splitlines()[1:] == ["  - nothing provides libmissing needed by imagemagick 6.9.11",
                                                   "  possible fixes: remove imagemagick from packages"]
