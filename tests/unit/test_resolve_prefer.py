"""apt's preferences, weak dependencies, the base set and the profile keys that turn them on (design14 §2.3-2.5).

The favor-order semantics of libsolv the resolver relies on (a later SOLVER_FAVOR job wins, design14 §9.1) are
pinned here on a raw pool, so a libsolv upgrade that changes them fails loudly.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import solv

from composer.errors import UserError
from composer.profile.load import load_profile
from composer.solve.lock import requests_for, weak_deps
from composer.solve.pool import SolvIndex
from composer.solve.resolve import Request, Resolver, WeakDeps, base_requests
from tests.unit.test_resolve import entry


def raw_favor(order: list[str]) -> list[str]:
    """x: aa | bb; y: bb | aa; favor jobs in ``order``: what libsolv installs."""
    pool = solv.Pool()
    pool.setarch("x86_64")
    repo = pool.add_repo("r")
    i = pool.str2id

    def add(name: str, reqs: tuple[int, ...] = ()) -> None:
        s = repo.add_solvable()
        s.name, s.evr, s.arch = name, "1", "x86_64"
        s.add_deparray(solv.SOLVABLE_PROVIDES, pool.rel2id(s.nameid, s.evrid, solv.REL_EQ))
        for r in reqs:
            s.add_deparray(solv.SOLVABLE_REQUIRES, r)

    add("x", (pool.rel2id(i("aa"), i("bb"), solv.REL_OR),))
    add("y", (pool.rel2id(i("bb"), i("aa"), solv.REL_OR),))
    add("aa")
    add("bb")
    repo.internalize()
    pool.createwhatprovides()
    jobs = [pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE_NAME, i(n)) for n in ("x", "y")]
    jobs += [pool.Job(solv.Job.SOLVER_FAVOR | solv.Job.SOLVER_SOLVABLE_NAME, i(n)) for n in order]
    solver = pool.Solver()
    assert not solver.solve(jobs)
    return sorted(s.name for s in solver.transaction().newsolvables())


def test_libsolv_a_later_favor_job_wins() -> None:
    assert raw_favor(["aa", "bb"]) == ["bb", "x", "y"]
    assert raw_favor(["bb", "aa"]) == ["aa", "x", "y"]


def resolver(index: list[dict[str, Any]]) -> Resolver:
    return Resolver.of([entry(e) for e in index], "x86_64")


def answer(r: Resolver, names: list[str], **kw: Any) -> dict[str, str]:
    return {c.entry.name: str(c.reason) for c in r.solve([Request(name=n) for n in names], **kw)}


WEAK = [
    {"name": "nginx", "version": "1.22.1", "relations": {"requires": ["libc"], "recommends": ["nginx-doc | www-docs"],
                                                         "suggests": ["fcgiwrap"]}},
    {"name": "curl", "version": "7.88.1", "relations": {"recommends": ["ca-certificates"]}},
    {"name": "libc", "version": "2.36.0"},
    {"name": "nginx-doc", "version": "1.22.1", "relations": {"requires": ["libjs"]}},
    {"name": "www-docs", "version": "1.0.0"},
    {"name": "libjs", "version": "3.0.0"},
    {"name": "ca-certificates", "version": "2023.0.0"},
    {"name": "fcgiwrap", "version": "1.1.0"},
]


def test_weak_dependencies_are_off_by_default() -> None:
    assert answer(resolver(WEAK), ["nginx", "curl"]) == {
        "nginx": "requested", "curl": "requested", "libc": "dependency of nginx"}


def test_recommends_everywhere() -> None:
    got = answer(resolver(WEAK), ["nginx", "curl"], weak=WeakDeps(recommends=True))
    assert got == {"nginx": "requested", "curl": "requested", "libc": "dependency of nginx",
                   "nginx-doc": "recommended by nginx", "libjs": "dependency of nginx-doc",
                   "ca-certificates": "recommended by curl"}


def test_recommends_and_suggests_of_one_package() -> None:
    got = answer(resolver(WEAK), ["nginx", "curl"], weak=WeakDeps(packages={"nginx": ("recommends", "suggests")}))
    assert got == {"nginx": "requested", "curl": "requested", "libc": "dependency of nginx",
                   "nginx-doc": "recommended by nginx", "libjs": "dependency of nginx-doc",
                   "fcgiwrap": "suggested by nginx"}


def test_suggests_everywhere_and_a_weak_dependency_that_cannot_be_installed_is_skipped() -> None:
    index = [*WEAK, {"name": "fcgiwrap2", "version": "1.0.0", "conflicts": ["nginx"]},
             {"name": "curl-extra", "version": "1.0.0", "relations": {"suggests": ["fcgiwrap2", "nothing-such"]}}]
    got = answer(resolver(index), ["nginx", "curl-extra"], weak=WeakDeps(suggests=True))
    assert got == {"nginx": "requested", "curl-extra": "requested", "libc": "dependency of nginx",
                   "fcgiwrap": "suggested by nginx"}


BASE = [
    {"name": "bash", "version": "5.2.15", "essential": True, "priority": "required",
     "relations": {"pre-requires": ["libc"]}},
    {"name": "coreutils", "version": "9.1.0", "essential": True, "priority": "required"},
    {"name": "mawk", "version": "1.3.4", "priority": "required", "provides": ["awk"]},
    {"name": "nano", "version": "7.2.0", "priority": "important"},
    {"name": "libc", "version": "2.36.0", "priority": "optional"},
]


def test_base_requests_by_mode() -> None:
    index = resolver(BASE).index
    assert [(r.name, str(r.reason)) for r in base_requests(index, "essential")] == [
        ("bash", "essential"), ("coreutils", "essential")]
    assert [r.name for r in base_requests(index, "required")] == ["bash", "coreutils", "mawk"]
    assert base_requests(index, "none") == []
    with pytest.raises(UserError, match="unknown base set 'all'"):
        base_requests(index, "all")


def test_base_set_is_locked_as_essential_and_a_request_outranks_it() -> None:
    r = resolver(BASE)
    reqs = [Request(name="bash"), *[q for q in base_requests(r.index, "essential") if q.name != "bash"]]
    got = {c.entry.name: str(c.reason) for c in r.solve(reqs)}
    assert got == {"bash": "requested", "coreutils": "essential", "libc": "dependency of bash"}


def test_the_clause_table_survives_the_cache(tmp_path: Path) -> None:
    entries = [entry(e) for e in BASE + WEAK]
    SolvIndex.cached(tmp_path, "x86_64", [("main", "d", lambda: entries)])
    loaded = SolvIndex.cached(tmp_path, "x86_64", [("main", "d", lambda: [])])
    assert [r.name for r in base_requests(loaded, "required")] == ["bash", "coreutils", "mawk"]
    got = answer(Resolver(loaded), ["nginx"], weak=WeakDeps(packages={"nginx": ("recommends",)}))
    assert got == {"nginx": "requested", "libc": "dependency of nginx", "nginx-doc": "recommended by nginx",
                   "libjs": "dependency of nginx-doc"}


def test_describe_dep_gives_the_clause_as_written_also_from_the_cache(tmp_path: Path) -> None:
    entries = [entry(e) for e in [
        {"name": "app", "version": "1.0.0", "relations": {"requires": ["lib (>= 2.0.0) | lib-compat", "zz"]}},
        {"name": "lib", "version": "1.0.0"}, {"name": "lib", "version": "2.1.0"},
        {"name": "lib-compat", "version": "1.0.0"}, {"name": "zz", "version": "1.0.0"}]]
    SolvIndex.cached(tmp_path, "x86_64", [("main", "d", lambda: entries)])
    for index in (SolvIndex.build([("main", entries)], "x86_64"),
                  SolvIndex.cached(tmp_path, "x86_64", [("main", "d", lambda: [])])):
        app = index.named("app")[0]
        texts = {index.describe_dep(d.id) for d in app.lookup_deparray(solv.SOLVABLE_REQUIRES)}
        assert texts == {"lib (>= 2.0.0) | lib-compat", "zz"}
        assert index.describe_dep(index.relation_dep("lib (>= 2.0.0)")) == "lib (>= 2.0.0)"


PROFILE = """
name: demo
architectures: [x86_64]
repositories:
  - name: sample
    url: ../repo
    root: root.json
packages: [nginx]
base: required
weak-dependencies:
  recommends: false
  packages:
    nginx: [recommends, suggests]
outputs:
  - type: iso
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "root.json").write_text("{}")
    p = tmp_path / "p.yaml"
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


def test_profile_keys_reach_the_resolution(tmp_path: Path) -> None:
    prof = load_profile(write(tmp_path, PROFILE))
    assert prof.base == "required"
    assert weak_deps(prof) == WeakDeps(packages={"nginx": ("recommends", "suggests")})
    assert prof.to_dict()["base"] == "required"
    assert prof.to_dict()["weak-dependencies"] == {"recommends": False, "packages": {"nginx": ["recommends",
                                                                                              "suggests"]}}
    index = resolver(BASE + WEAK).index
    reqs = [(r.name, str(r.reason)) for r in requests_for(prof, "x86_64", index)]
    assert reqs[0] == ("nginx", "requested")
    assert reqs[-3:] == [("bash", "essential"), ("coreutils", "essential"), ("mawk", "essential")]
    assert [r.name for r in requests_for(prof, "x86_64")] == [n for n, _ in reqs[:-3]]   # no index: no base set
    plain = load_profile(write(tmp_path, PROFILE.replace("base: required\n", "").split("weak-dependencies")[0]
                               + "outputs:\n  - type: iso\n"))
    assert plain.base == "essential" and weak_deps(plain) == WeakDeps()
    assert "base" not in plain.to_dict() and "weak-dependencies" not in plain.to_dict()


def test_profile_key_mistakes_name_the_place(tmp_path: Path) -> None:
    bad = PROFILE.replace("base: required", "base: minimal").replace("[recommends, suggests]", "[enhances]")
    with pytest.raises(UserError) as info:
        load_profile(write(tmp_path, bad))
    msg = info.value.message
    assert f"{tmp_path}/p.yaml:8:1: $.base: 'minimal' is not one of essential, required, none" in msg, msg
    assert f"{tmp_path}/p.yaml:12:13: $.weak-dependencies.packages.nginx[0]: 'enhances'" in msg, msg


def test_a_profile_may_pin_a_debian_package_with_a_debian_relation(tmp_path: Path) -> None:
    pinned = 'packages:\n  - {name: libc6, version: "(= 1:2.36-9+deb12u7)"}'
    prof = load_profile(write(tmp_path, PROFILE.replace("packages: [nginx]", pinned)))
    assert prof.packages[0].requirement == "(= 1:2.36-9+deb12u7)"
    bad = PROFILE.replace("packages: [nginx]", 'packages:\n  - {name: libc6, version: "(= 1:2.36-9+deb12u7"}\n'
                                               '  - {name: nano, version: "(== 7)"}')
    with pytest.raises(UserError) as info:
        load_profile(write(tmp_path, bad))
    assert "$.packages[0].version" in info.value.message and "$.packages[1].version" in info.value.message
