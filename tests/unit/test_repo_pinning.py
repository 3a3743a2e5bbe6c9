"""Dependency confusion: two real repositories serving the same names; pins and priorities decide, never order.

The repositories are real (``tests/repo_fixtures.py``): 'internal' is the repository after its first
publish (hello 1.0.0, libfoo 1.0.0), 'public' the same repository after its second (hello 1.1.0: a
higher version, what an attacker publishes under an internal name). Both are read by the real client.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.errors import UserError
from composer.profile.load import load_profile
from composer.solve.lock import open_sources, resolve_profile
from composer.solve.policy import RepoPolicy
from composer.solve.resolve import Request, ResolveError, Resolver
from tests.repo_fixtures import Repo


def profile(tmp_path: Path, repo: Repo, repos: str, packages: str = "[hello]") -> Path:
    d = tmp_path / "profile"
    d.mkdir(exist_ok=True)
    (d / "root.json").write_bytes(repo.root_bytes)
    text = ("name: pinned\narchitectures: [x86_64]\nrepositories:\n" + repos.strip("\n") + "\n"
            f"packages: {packages}\noutputs:\n  - type: rootfs\n")
    p = d / "p.yaml"
    p.write_text(text.replace("{internal}", repo.old().as_uri()).replace("{public}", repo.url))
    return p


TWO = """
  - {{name: internal, url: '{internal}', root: root.json{a}}}
  - {{name: public, url: '{public}', root: root.json{b}}}
"""


def two(a: str = "", b: str = "") -> str:
    return TWO.format(a=a, b=b, internal="{internal}", public="{public}")


def lock_of(path: Path, tmp_path: Path) -> dict[str, dict[str, str]]:
    prof = load_profile(path)
    doc = resolve_profile(prof, open_sources(prof, tmp_path / "cache"))
    return {p.name: {"version": p.version, "repository": p.repository} for p in doc.packages("x86_64")}


def test_a_name_served_by_two_repositories_is_an_error_naming_both(repo: Repo, tmp_path: Path) -> None:
    with pytest.raises(ResolveError) as info:
        lock_of(profile(tmp_path, repo, two()), tmp_path)
    msg = info.value.message
    assert "'hello' (requested) is served by repositories 'internal' and 'public'" in msg, msg
    assert "pin the name" in info.value.hint


def test_the_order_of_the_repositories_decides_nothing(repo: Repo, tmp_path: Path) -> None:
    swapped = two().splitlines()
    swapped[1], swapped[2] = swapped[2], swapped[1]
    with pytest.raises(ResolveError, match="'hello' \\(requested\\) is served by repositories 'internal' and"):
        lock_of(profile(tmp_path, repo, "\n".join(swapped)), tmp_path)


def test_a_pin_takes_the_name_only_from_its_repository_even_when_the_other_is_newer(repo: Repo,
                                                                                   tmp_path: Path) -> None:
    got = lock_of(profile(tmp_path, repo, two(a=", packages: [hello]")), tmp_path)
    assert got == {"hello": {"version": "1.0.0", "repository": "internal"}}
    got = lock_of(profile(tmp_path, repo, two(b=", packages: ['hel*']")), tmp_path)
    assert got == {"hello": {"version": "1.1.0", "repository": "public"}}


def test_a_pin_covers_every_name_it_matches_and_others_stay_errors(repo: Repo, tmp_path: Path) -> None:
    path = profile(tmp_path, repo, two(a=", packages: ['lib*']"), packages="[hello, libfoo]")
    with pytest.raises(ResolveError) as info:
        lock_of(path, tmp_path)
    assert "'hello'" in info.value.message and "'libfoo'" not in info.value.message, info.value.message
    path = profile(tmp_path, repo, two(a=", packages: ['lib*', hello]"), packages="[hello, libfoo]")
    assert {p["repository"] for p in lock_of(path, tmp_path).values()} == {"internal"}


def test_a_higher_priority_decides_and_equal_priorities_do_not(repo: Repo, tmp_path: Path) -> None:
    got = lock_of(profile(tmp_path, repo, two(a=", priority: 10")), tmp_path)
    assert got == {"hello": {"version": "1.0.0", "repository": "internal"}}
    got = lock_of(profile(tmp_path, repo, two(b=", priority: 1")), tmp_path)
    assert got == {"hello": {"version": "1.1.0", "repository": "public"}}
    with pytest.raises(ResolveError, match="served by repositories 'internal' and 'public'"):
        lock_of(profile(tmp_path, repo, two(a=", priority: 5", b=", priority: 5")), tmp_path)


def test_pinned_names_outside_the_pinned_repository_are_explained(tmp_path: Path) -> None:
    from composer.repo.index import IndexEntry
    from composer.solve.pool import SolvIndex

    def e(name: str, version: str, provides: tuple[str, ...] = (), deps: dict[str, str] | None = None) -> IndexEntry:
        return IndexEntry.from_dict({
            "name": name, "version": version, "arch": "x86_64", "type": "application", "description": "",
            "license": "MIT", "dependencies": deps or {}, "provides": list(provides), "conflicts": [],
            "features": {}, "capabilities": {}, "driver": {}, "size": 1, "installed_size": 1,
            "sha256": "0" * 64, "path": f"packages/{name}", "signer": "k"})

    internal = [e("app", "1.0.0", deps={"libcorp": "*"}), e("libcorp", "1.0.0")]
    public = [e("libcorp", "9.9.9"), e("evil", "1.0.0", provides=("libcorp",)), e("only-public", "1.0.0")]
    index = SolvIndex.build([("internal", internal), ("public", public)], "x86_64")
    policy = RepoPolicy(pins={"internal": ("libcorp", "app")})
    chosen = Resolver(index, policy).solve([Request(name="app")])
    assert {(c.entry.name, c.entry.version, c.origin) for c in chosen} == {("app", "1.0.0", "internal"),
                                                                          ("libcorp", "1.0.0", "internal")}
    # a provide of a pinned name from the other repository is excluded too
    with pytest.raises(ResolveError, match="only served by repositories the profile excludes"):
        Resolver(SolvIndex.build([("internal", internal), ("public", public)], "x86_64"), policy).solve(
            [Request(name="evil")])
    # without the pin: libcorp (a dependency) is served by both: an error, not libsolv's choice
    with pytest.raises(ResolveError, match="'libcorp' \\(dependency of app\\) is served by repositories"):
        Resolver(SolvIndex.build([("internal", internal), ("public", public)], "x86_64")).solve(
            [Request(name="app")])
    # a priority decides for the package name; the provide of 'evil' is then not used either
    low = RepoPolicy(priorities={"internal": 10})
    chosen = Resolver(SolvIndex.build([("internal", internal), ("public", public)], "x86_64"), low).solve(
        [Request(name="app")])
    assert {c.origin for c in chosen} == {"internal"}
    # one repository: no policy needed, nothing excluded
    solo = Resolver(SolvIndex.build([("public", public)], "x86_64"))
    assert solo.excluded == {} and solo.solve([Request(name="only-public")])[0].origin == "public"


def test_the_same_glob_pinned_to_two_repositories_is_a_profile_error(repo: Repo, tmp_path: Path) -> None:
    path = profile(tmp_path, repo, two(a=", packages: ['hel*']", b=", packages: ['hel*']"))
    with pytest.raises(UserError, match=r"'hel\*' is pinned to both 'internal' and 'public'"):
        load_profile(path)
    path = profile(tmp_path, repo, two(a=", packages: ['hel*']", b=", packages: [hello]"))
    with pytest.raises(UserError, match="'hello' \\(pinned to 'public'\\) also matches a pattern of 'internal'"):
        load_profile(path)


def test_a_roots_recorded_policy_is_read_defensively() -> None:
    """repositories.json comes from a root (attacker-controlled bytes): wrong types count as absent."""
    policy = RepoPolicy.of_records([
        {"name": "internal", "priority": 10, "packages": ["myapp", 7, "lib*"]},
        {"name": "public", "priority": "999", "packages": "myapp"},
        {"name": 3, "priority": 1000}, {"name": "flag", "priority": True}])
    assert policy.priorities == {"internal": 10, "public": 0, "flag": 0}
    assert policy.pins == {"internal": ("myapp", "lib*")}
    assert policy.pinned("libx") == ["internal"] and policy.top(["public", "internal"]) == ["internal"]


def test_the_package_manager_on_a_root_applies_the_same_rules(repo: Repo, tmp_path: Path) -> None:
    """pkgmgr/ops.py resolves an install against the root's repositories with the recorded policy."""
    from composer.pkgmgr.db import Database
    from composer.pkgmgr.ops import RootSources, solve
    from composer.repo.client import RepositoryClient

    clients = {"internal": RepositoryClient(repo.old().as_uri(), repo.root_bytes, tmp_path / "c1"),
               "public": RepositoryClient(repo.url, repo.root_bytes, tmp_path / "c2")}

    def install(records: list[dict[str, object]]) -> dict[str, str]:
        database = Database(packages={}, history=[], transaction=0, repositories=records)
        sources = RootSources(repositories=records, cache=tmp_path / "unused", arch="x86_64", installed=[],
                              granted=(), _pool=[], policy=RepoPolicy.of_records(records),
                              _clients={r["name"]: clients[str(r["name"])] for r in records})
        return {c.name: f"{c.pending.version}@{c.pending.origin}"
                for c in solve(sources, database, install=[("hello", "*")])}

    with pytest.raises(ResolveError, match="'hello' \\(requested\\) is served by repositories 'internal' and"):
        install([{"name": "internal"}, {"name": "public"}])
    assert install([{"name": "internal", "packages": ["hello"]}, {"name": "public"}]) == {
        "hello": "1.0.0@internal"}
    assert install([{"name": "internal"}, {"name": "public", "priority": 5}]) == {"hello": "1.1.0@public"}
