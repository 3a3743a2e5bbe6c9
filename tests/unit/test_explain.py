"""The failure explanation (design14 §2.7) on real libsolv failures of in-memory indexes: causes first and
shallowest first, each rule once, chains printed once, names with their own version text, fixes in
profile terms; the lock path (Resolver.solve) and the package-manager path (pkgmgr.ops.solve)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import solv

from composer.package import deb822
from composer.package import debfixture as fx
from composer.package.debimport import map_stanza
from composer.pkgmgr import db, ops
from composer.repo.index import IndexEntry
from composer.solve import explain as explain_mod
from composer.solve.explain import MAX_FIXES, explain
from composer.solve.policy import RepoPolicy
from composer.solve.pool import SolvIndex
from composer.solve.resolve import Request, ResolveError, Resolver
from composer.version import FullVersion, semver_projection

ARCH = "x86_64"


def entry(name: str, version: str, *, deps: Mapping[str, str] | None = None, provides: Sequence[str] = (),
          conflicts: Sequence[str] = (), deb: bool = False,
          relations: Mapping[str, Sequence[str]] | None = None, **more: Any) -> IndexEntry:
    """A native entry, or with ``deb`` one with a Debian version (``version`` is then the Debian text);
    ``more``: other IndexEntry fields (multi_arch, priority, essential)."""
    scheme: dict[str, Any] = dict(more)
    if deb:
        full = FullVersion.parse(version, "deb")
        scheme |= {"epoch": full.epoch, "revision": full.revision, "upstream_version": version,
                   "version_scheme": "deb"}
        version = str(semver_projection(str(full.upstream)))
    return IndexEntry(name=name, version=version, arch=ARCH, type="application", description=name, license="MIT",
                      dependencies=dict(deps or {}), provides=tuple(provides), conflicts=tuple(conflicts),
                      features={}, capabilities={}, driver={}, size=1, installed_size=1, sha256="0" * 64,
                      path=f"packages/{name}/x.vpk", signer="k",
                      relations={k: tuple(v) for k, v in (relations or {}).items()}, **scheme)


def failure(entries: Sequence[IndexEntry], *requests: Request) -> str:
    with pytest.raises(ResolveError) as info:
        Resolver.of(entries, ARCH).solve(list(requests))
    return info.value.message


def body(message: str) -> list[str]:
    lines = message.splitlines()
    assert lines[0] == f"cannot resolve the profile for {ARCH}:", message
    return [ln.strip() for ln in lines[1:]]


def no_line_twice(message: str) -> None:
    lines = [ln.strip() for ln in message.splitlines() if not ln.strip().startswith(("problem ", "possible fixes"))]
    assert len(lines) == len(set(lines)), message


def fixes(message: str) -> list[str]:
    found = [ln.strip().removeprefix("possible fixes: ") for ln in message.splitlines()
             if ln.strip().startswith("possible fixes: ")]
    return [f for line in found for f in line.split(" | ")]


def relations_supported() -> bool:
    """Whether the pool reads [relations] (the resolver slice of issue 14): a relation-only dependency
    is then installed."""
    index = [entry("a", "1.0-1", deb=True, relations={"requires": ["b"]}), entry("b", "1.0-1", deb=True)]
    try:
        chosen = Resolver.of(index, ARCH).solve([Request(name="a")])
    except ResolveError:
        return True  # it read the relation (and something else failed): supported
    return {c.entry.name for c in chosen} == {"a", "b"}


RELATIONS = relations_supported()
needs_relations = pytest.mark.skipif(not RELATIONS, reason="the pool does not read [relations] yet")


# ---------------------------------------------------------------- causes, depth, chains

def test_a_deep_missing_library_is_the_first_line_and_its_chain_is_printed_once() -> None:
    index = [entry("app", "1.0.0", deps={"libmid": "^1"}),
             entry("libmid", "1.0.0", deps={"libdeep": "^1"}), entry("libmid", "1.1.0", deps={"libdeep": "^1"}),
             entry("libdeep", "1.0.0", deps={"libgone": "^3"}), entry("libdeep", "1.2.0", deps={"libgone": "^3"}),
             entry("libgone", "2.0.0")]
    msg = failure(index, Request(name="app"))
    lines = body(msg)
    assert lines[0] == "- nothing provides libgone ^3 needed by libdeep 1.0.0, 1.2.0 (available: 2.0.0)", msg
    assert lines[1] == "chain: app 1.0.0 → libmid ^1 → libdeep ^1 → libgone ^3", msg
    assert "none of the providers" not in msg  # the requires rules are the chain, not lines of their own
    assert fixes(msg) == ["remove app from packages"]
    no_line_twice(msg)


def test_the_shallowest_cause_comes_first() -> None:
    index = [entry("app", "1.0.0", deps={"libmid": "^1"}), entry("libmid", "1.0.0", deps={"libgone": "^3"}),
             entry("tool", "1.0.0", deps={"nowhere": "^1"})]
    msg = failure(index, Request(name="app"), Request(name="tool"))
    causes = [ln for ln in body(msg) if ln.startswith("- ")]
    assert causes == ["- nothing provides nowhere ^1 needed by tool 1.0.0",
                      "- nothing provides libgone ^3 needed by libmid 1.0.0"], msg
    assert msg.index("problem 1:") < msg.index("tool 1.0.0") < msg.index("problem 2:") < msg.index("libmid 1.0.0")


def test_a_rule_shared_by_two_problems_is_printed_once_each_with_its_own_chain() -> None:
    index = [entry("app1", "1.0.0", deps={"libmid": "^1"}), entry("app2", "1.0.0", deps={"libmid": "^1"}),
             entry("libmid", "1.0.0", deps={"libgone": "^3"})]
    msg = failure(index, Request(name="app1"), Request(name="app2"))
    assert msg.count("nothing provides libgone ^3 needed by libmid 1.0.0") == 1, msg
    assert "- the same cause as problem 1" in msg
    assert "chain: app1 1.0.0 → libmid ^1 → libgone ^3" in msg and "chain: app2 1.0.0 → libmid ^1 → libgone ^3" in msg
    assert sorted(fixes(msg)) == ["remove app1 from packages", "remove app2 from packages"]
    no_line_twice(msg)


def test_two_versions_of_one_library_show_who_needs_which() -> None:
    index = [entry("a", "1.0.0", deps={"lib": "^1"}), entry("b", "1.0.0", deps={"lib": "^2"}),
             entry("lib", "1.4.0"), entry("lib", "2.1.0")]
    lines = body(failure(index, Request(name="a"), Request(name="b")))
    assert lines[:3] == ["- cannot install both lib 1.4.0 and lib 2.1.0 (one version of a name)",
                         "chain: a 1.0.0 → lib ^1", "chain: b 1.0.0 → lib ^2"]


def test_a_dependency_the_repository_pins_exclude_is_the_cause() -> None:
    index = SolvIndex.build([("internal", [entry("app", "1.0.0", deps={"libcorp": "^1"})]),
                             ("public", [entry("libcorp", "1.0.0")])], ARCH)
    with pytest.raises(ResolveError) as info:
        Resolver(index, RepoPolicy(pins={"internal": ("app", "libcorp")})).solve([Request(name="app")])
    assert body(info.value.message)[:2] == [
        "- libcorp 1.0.0 cannot be installed (excluded by the repositories' pins or priorities, or its arch)",
        "chain: app 1.0.0 → libcorp ^1"], info.value.message


# ---------------------------------------------------------------- the two MTAs, Debian versions

def mtas() -> list[IndexEntry]:
    return [entry(n, v, deb=True, provides=["mail-transport-agent"], conflicts=["mail-transport-agent"])
            for n, v in (("postfix", "3.7.11-0+deb12u1"), ("exim4-daemon-light", "4.96-15+deb12u6"))]


def test_two_mtas_conflict_in_their_own_version_text() -> None:
    msg = failure(mtas(), Request(name="postfix"), Request(name="exim4-daemon-light"))
    assert body(msg)[0] == ("- postfix 3.7.11-0+deb12u1 conflicts with mail-transport-agent provided by "
                            "exim4-daemon-light 4.96-15+deb12u6"), msg
    assert sorted(fixes(msg)) == ["remove exim4-daemon-light from packages", "remove postfix from packages"]
    index = Resolver.of(mtas(), ARCH).index
    for s in index.repo.solvables_iter():  # the pool's EVRs never show
        assert str(s.evr) not in msg.replace(index.entry(s.id).version_text, "")


@needs_relations
def test_a_version_nothing_satisfies_is_shown_with_the_original_text() -> None:
    index = [entry("git", "1:2.39.5-0+deb12u1", deb=True, relations={"requires": ["git-man (= 1:2.39.5-0+deb12u1)"]}),
             entry("git-man", "1:2.39.2-1.1", deb=True)]
    msg = failure(index, Request(name="git"))
    assert "git-man (= 1:2.39.5-0+deb12u1)" in msg and "git 1:2.39.5-0+deb12u1" in msg, msg
    assert "available: 1:2.39.2-1.1" in msg


@needs_relations
def test_a_deep_missing_debian_library() -> None:
    index = [entry("app", "1.0-1", deb=True, relations={"requires": ["libmid1 (>= 1.0)"]}),
             entry("libmid1", "1.2-3", deb=True, relations={"requires": ["libdeep2 | libdeep3"]}),
             entry("libdeep3", "3.0-1", deb=True, relations={"requires": ["libgone0 (>= 0.9~)"]})]
    lines = body(failure(index, Request(name="app")))
    assert lines[0].startswith("- nothing provides libgone0 (>= 0.9~) needed by libdeep3 3.0-1"), lines
    assert lines[1] == "chain: app 1.0-1 → libmid1 (>= 1.0) → libdeep2 | libdeep3 → libgone0 (>= 0.9~)", lines


# ---------------------------------------------------------------- the real bookworm fixture (3,692 packages)

FIXTURE = Path(__file__).parents[1] / "data" / "debian-bookworm-amd64" / "Packages.zst"


@functools.cache
def bookworm() -> tuple[IndexEntry, ...]:
    """The trimmed real index as entries (relations, provides, Debian versions), as the importer maps it."""
    text = fx.decompress(FIXTURE.read_bytes(), limit=1 << 26)
    out = []
    for stanza in deb822.parse_stanzas(text.encode(), FIXTURE.name):
        m, _ = map_stanza(stanza)
        if m is not None:
            out.append(entry(m.name, m.upstream_version, deb=True, provides=m.provides,
                             relations=m.relations.to_dict(), multi_arch=m.multi_arch, priority=m.priority or "",
                             essential=m.essential))
    return tuple(out)


def bookworm_failure(*names: str, without: str = "", add: Sequence[IndexEntry] = ()) -> str:
    entries = [e for e in bookworm() if e.name != without] + list(add)
    return failure(entries, *(Request(name=n) for n in names))


@needs_relations
def test_bookworm_two_mtas() -> None:
    msg = bookworm_failure("postfix", "exim4-daemon-light")
    assert body(msg) == [
        "- postfix 3.7.11-0+deb12u1 conflicts with mail-transport-agent provided by exim4-daemon-light "
        "4.96-15+deb12u10",
        "possible fixes: remove exim4-daemon-light from packages | remove postfix from packages"], msg


@needs_relations
def test_bookworm_git_with_an_older_git_man_shows_the_original_versions() -> None:
    old = entry("git-man", "1:2.39.2-1.1", deb=True)
    msg = bookworm_failure("git", without="git-man", add=[old])
    assert body(msg)[0] == ("- nothing provides git-man (>> 1:2.39.5) needed by git 1:2.39.5-0+deb12u3 "
                            "(available: 1:2.39.2-1.1)"), msg


@needs_relations
def test_bookworm_a_library_missing_three_levels_down() -> None:
    msg = bookworm_failure("git", without="libgmp10")
    lines = body(msg)
    assert lines[0].startswith("- nothing provides libgmp10 needed by "), msg
    chains = [ln for ln in lines if ln.startswith("chain: ")]
    assert chains and all(c.startswith("chain: git 1:2.39.5-0+deb12u3 → ") and c.endswith(" → libgmp10")
                          for c in chains), msg
    assert min(c.count("→") for c in chains) == 3, msg  # git → libcurl3-gnutls → librtmp1 → libgmp10
    assert "none of the providers" not in msg
    no_line_twice(msg)


# ---------------------------------------------------------------- fixes

def test_an_impossible_pin_suggests_the_version_that_works_not_removing_the_package() -> None:
    index = [entry("app", "1.0.0", deps={"lib": "^1"}), entry("app", "2.0.0", deps={"lib": "^2"}),
             entry("app", "3.0.0", deps={"lib": "^3"}), entry("lib", "2.1.0")]
    msg = failure(index, Request(name="app", requirement="=1.0.0"))
    assert body(msg)[0] == "- nothing provides lib ^1 needed by app 1.0.0 (available: 2.1.0)"
    assert fixes(msg) == ["pin app to 2.0.0"], msg  # the newest version that resolves, not 3.0.0


def test_a_pin_no_version_rescues_keeps_the_removal() -> None:
    index = [entry("app", "1.0.0", deps={"lib": "^1"}), entry("app", "2.0.0", deps={"lib": "^2"})]
    msg = failure(index, Request(name="app", requirement="=1.0.0"))
    assert fixes(msg) == ["remove app from packages"], msg


def test_at_most_max_fixes_per_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    names = [f"p{i}" for i in range(6)]
    index = [entry(n, "1.0.0", conflicts=[m for m in names if m != n]) for n in names]
    msg = failure(index, *(Request(name=n) for n in names))
    assert all(line.count("|") <= MAX_FIXES - 1 for line in msg.splitlines())
    monkeypatch.setattr(explain_mod, "MAX_FIXES", 1)
    msg = failure(mtas(), Request(name="postfix"), Request(name="exim4-daemon-light"))
    assert len(fixes(msg)) == 1, msg


def test_unknown_rule_kinds_fall_back_to_libsolvs_text_with_our_names(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = {k: v for k, v in explain_mod.RULES.items() if k != solv.Solver.SOLVER_RULE_PKG_CONFLICTS}
    monkeypatch.setattr(explain_mod, "RULES", rules)
    msg = failure(mtas(), Request(name="postfix"), Request(name="exim4-daemon-light"))
    assert "package postfix 3.7.11-0+deb12u1 conflicts with mail-transport-agent provided by " \
           "exim4-daemon-light 4.96-15+deb12u6" in msg, msg


# ---------------------------------------------------------------- the package manager's path

def installed_record(e: IndexEntry) -> dict[str, Any]:
    return {"name": e.name, "version": e.version, "arch": e.arch, "size": 1, "sha256": e.sha256, "signer": "k",
            "reason": "requested", "manual": True,
            "metadata": {"package": {"type": e.type, "description": e.description, "license": e.license},
                         "dependencies": dict(e.dependencies)}}


def pkg_solve(tmp_path: Path, available: Sequence[IndexEntry], installed: Sequence[IndexEntry],
              **jobs: Any) -> str:
    records = [installed_record(e) for e in installed]
    index = SolvIndex.build([("main", available)], ARCH, installed=[ops.installed_doc(r) for r in records])
    sources = ops.RootSources(repositories=[], cache=tmp_path, arch=ARCH, installed=records, granted=(),
                              _pool=[index], offline=True)
    database = db.Database(packages={r["name"]: r for r in records}, history=[], transaction=0)
    with pytest.raises(ResolveError) as info:
        ops.solve(sources, database, **jobs)
    return info.value.message


def test_pkg_install_that_needs_a_downgrade_offers_the_older_version(tmp_path: Path) -> None:
    lib2 = entry("lib", "2.0.0")
    available = [entry("app", "1.0.0", deps={"lib": "^1"}), entry("lib", "1.0.0"), lib2]
    msg = pkg_solve(tmp_path, available, [lib2], install=[("app", "*")])
    assert body(msg)[0] == "- cannot install both lib 1.0.0 and lib 2.0.0 (one version of a name)", msg
    assert fixes(msg) == ["allow the older lib 1.0.0 (instead of 2.0.0)"], msg


def test_pkg_install_of_a_package_with_a_missing_dependency(tmp_path: Path) -> None:
    available = [entry("app", "1.0.0", deps={"libmid": "^1"}), entry("libmid", "1.0.0", deps={"libgone": "^3"})]
    msg = pkg_solve(tmp_path, available, [], install=[("app", "*")])
    assert body(msg)[:2] == ["- nothing provides libgone ^3 needed by libmid 1.0.0",
                             "chain: app 1.0.0 → libmid ^1 → libgone ^3"], msg


def test_explain_takes_any_problems_and_requests() -> None:
    """The function itself, as both callers use it (the solver alive while its problems are read)."""
    index = Resolver.of(mtas(), ARCH).index
    pool = index.pool
    requests = [("postfix", "*"), ("exim4-daemon-light", "*")]
    jobs = [pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE_PROVIDES, index.dep(n, r)) for n, r in requests]
    solver = pool.Solver()
    problems = solver.solve(jobs)
    assert explain(index, problems, requests) == explain(index, problems, requests)  # deterministic
    assert explain(index, problems, []).count("- ") == 1  # without requests: the same cause, libsolv's fixes


def test_a_dropped_job_is_named_by_its_request_whatever_the_job_order() -> None:
    index = Resolver.of(mtas(), ARCH).index
    pool = index.pool
    requests = [("postfix", "*"), ("exim4-daemon-light", "*")]
    jobs = [pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE_PROVIDES, index.dep(n, r)) for n, r in requests]
    solver = pool.Solver()
    problems = solver.solve(jobs)
    assert sorted(fixes(explain(index, problems, requests[::-1]))) == [
        "remove exim4-daemon-light from packages", "remove postfix from packages"]


def test_a_candidate_set_made_elsewhere_prints_as_its_candidates_never_as_evrs() -> None:
    index = Resolver.of([*mtas(), entry("postfix", "3.7.10-0+deb12u1", deb=True)], ARCH).index
    pool = index.pool
    sets: dict[str, int] = {}
    for s in index.repo.solvables_iter():
        one = pool.rel2id(pool.str2id(s.name), s.evrid, solv.REL_EQ)
        sets[s.name] = one if s.name not in sets else pool.rel2id(sets[s.name], one, solv.REL_OR)
    words = explain_mod.Words(index)
    assert words.dep(sets["postfix"]) == "postfix (= 3.7.10-0+deb12u1 | = 3.7.11-0+deb12u1)"
    both = pool.rel2id(sets["postfix"], sets["exim4-daemon-light"], solv.REL_OR)
    assert words.dep(both) == ("exim4-daemon-light 4.96-15+deb12u6 | postfix 3.7.10-0+deb12u1 | "
                               "postfix 3.7.11-0+deb12u1")  # pool order
    assert words.available(0, pool.str2id("nothing-called-so")) == ""


@needs_relations
def test_the_examples_in_the_documentation_are_what_the_code_prints(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "packages" / "errors.md").read_text()
    blocks = [b.split("```", 1)[0].strip("\n") for b in doc.split("```\ncannot resolve")[1:]]
    shown = ["cannot resolve" + b for b in blocks if not b.startswith(" the profile for ARCH")]
    lib2 = entry("lib", "2.0.0")
    made = [
        bookworm_failure("git", without="libgmp10"),
        bookworm_failure("postfix", "exim4-daemon-light"),
        bookworm_failure("git", without="git-man", add=[entry("git-man", "1:2.39.2-1.1", deb=True)]),
        failure([entry("app", "1.0.0", deps={"lib": "^1"}), entry("app", "2.0.0", deps={"lib": "^2"}),
                 entry("app", "3.0.0", deps={"lib": "^3"}), entry("lib", "2.1.0")],
                Request(name="app", requirement="=1.0.0")),
        pkg_solve(tmp_path, [entry("app", "1.0.0", deps={"lib": "^1"}), entry("lib", "1.0.0"), lib2], [lib2],
                  install=[("app", "*")]),
    ]
    assert shown == made


def test_a_pool_loaded_from_the_cache_explains_the_same(tmp_path: Path) -> None:
    entries = [entry("app", "1.0.0", deps={"libmid": "^1"}), entry("libmid", "1.0.0", deps={"libgone": "^3"}),
               *mtas(), entry("git", "1:2.39.5-0+deb12u1", deb=True,
                              relations={"requires": ["git-man (= 1:2.39.5-0+deb12u1)"]}),
               entry("git-man", "1:2.39.2-1.1", deb=True)]
    requests = [Request(name="app"), Request(name="postfix"), Request(name="exim4-daemon-light"), Request(name="git")]
    fresh = failure(entries, *requests)
    SolvIndex.cached(tmp_path, ARCH, [("index", "d1", lambda: entries)])
    loaded = SolvIndex.cached(tmp_path, ARCH, [("index", "d1", lambda: pytest.fail("not from the cache"))])
    with pytest.raises(ResolveError) as info:
        Resolver(loaded).solve(requests)
    assert info.value.message == fresh
    assert "git-man (= 1:2.39.5-0+deb12u1)" in fresh and "libmid ^1" in fresh, fresh
