"""Empty requirements are refused where they enter (issue 14 §3): a dependency no version can satisfy
(`>2.39.5, <2.39.5`) in a package's metadata (build, read, `repo add`) or in a profile, with the place and
the rule."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from composer.errors import ComposerError, InvalidPackage
from composer.package.metadata import Dependency, parse_metadata
from composer.package.recipe import load_recipe
from composer.profile.load import load_profile
from composer.repo import edit
from tests import hostile
from tests.repo_fixtures import Pristine, Repo, build_pristine

METADATA = """\
[package]
name = "git"
version = "2.39.5"
description = "the stupid content tracker"
license = "GPL-2.0-only"
type = "application"
arch = "x86_64"

[dependencies]
libc = ">=2.36"
git-man = "{requirement}"

[security]
context = "system_t"
"""


@pytest.mark.parametrize("requirement", [">2.39.5, <2.39.5", ">2, <1", "=1.0.0, =2.0.0", "<0.0.0"])
def test_an_empty_requirement_in_metadata_is_refused_with_its_place(requirement: str) -> None:
    with pytest.raises(InvalidPackage) as info:
        parse_metadata(METADATA.format(requirement=requirement).encode(), origin="git.vpk:metadata.toml")
    message = info.value.message
    assert f"git.vpk:metadata.toml:11:1: $.dependencies.git-man: '{requirement}' matches no version" in message
    assert info.value.hint and "widen the range" in info.value.hint


@pytest.mark.parametrize("requirement", [">=1, <2", "=2.39.5", ">2.39.5, <2.39.7", "<0.0.1", "*"])
def test_a_satisfiable_requirement_is_accepted(requirement: str) -> None:
    meta = parse_metadata(METADATA.format(requirement=requirement).encode(), origin="git.vpk:metadata.toml")
    assert [d.requirement for d in meta.dependencies if d.name == "git-man"] == [requirement]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    return build_pristine(tmp_path_factory.mktemp("pristine"))


def test_repo_add_refuses_a_signed_package_with_an_empty_requirement(pristine: Pristine, tmp_path: Path) -> None:
    repo: Repo = pristine.copy(tmp_path)
    meta = replace(hostile.metadata("hello", "1.3.0"),
                   dependencies=(Dependency(name="libfoo", requirement=">2.39.5, <2.39.5"),))
    bad = hostile.hostile_package(tmp_path / "hello-1.3.0.vpk", [hostile.file("usr/lib/hello/VERSION", b"1.3.0\n")],
                                  key=repo.keys.by_name["alice"], meta=meta)
    before = sorted(p.relative_to(repo.dir) for p in repo.dir.rglob("*") if p.is_file())
    with pytest.raises(ComposerError) as info:
        edit.add(repo.store, [bad], [repo.keys.alice])
    assert "$.dependencies.libfoo: '>2.39.5, <2.39.5' matches no version" in info.value.message
    assert str(bad) in info.value.message
    after = sorted(p.relative_to(repo.dir) for p in repo.dir.rglob("*") if p.is_file() and ".lock" not in p.name)
    assert [p for p in after if p not in before] == [], "nothing of the refused upload is stored"


def test_a_profile_asking_for_an_empty_range_is_refused_with_file_line_column(tmp_path: Path) -> None:
    root = tmp_path / "root.json"
    root.write_text("{}")
    p = tmp_path / "p.yaml"
    p.write_text("name: p\narchitectures: [x86_64]\nrepositories:\n  - {name: r, url: ./repo, root: root.json}\n"
                 "packages:\n  - {name: nano, version: '>7, <6'}\noutputs:\n  - {type: rootfs}\n")
    with pytest.raises(ComposerError) as info:
        load_profile(p)
    assert f"{p}:6:" in info.value.message and "$.packages[0].version: '>7, <6' matches no version" in \
        info.value.message


def test_a_recipe_with_an_empty_requirement_is_refused_before_any_build(tmp_path: Path) -> None:
    recipe = tmp_path / "git"
    (recipe / "files").mkdir(parents=True)
    (recipe / "recipe.toml").write_text(
        '[package]\nname = "git"\nversion = "2.39.5"\ndescription = "git"\nlicense = "GPL-2.0-only"\n'
        'type = "application"\n\n[dependencies]\ngit-man = ">2.39.5, <2.39.5"\n\n[security]\ncontext = "system_t"\n'
        '\n[[source]]\nkind = "tree"\npath = "files"\n')
    with pytest.raises(ComposerError) as info:
        load_recipe(recipe, "x86_64")
    assert f"{recipe / 'recipe.toml'}:9:1: $.dependencies.git-man: '>2.39.5, <2.39.5' matches no version" in \
        info.value.message
