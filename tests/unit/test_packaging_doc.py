"""docs/packaging.md's recipes are real: each block marked ``<!-- recipe -->`` is loaded by the recipe loader
(schemas/recipe.schema.json and the package metadata rules) for each architecture it builds for, and its
``[split]`` is read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from composer.limits import load_toml
from composer.package import split
from composer.package.recipe import load_recipe

DOC = Path(__file__).resolve().parents[2] / "docs" / "packaging.md"
_BLOCK = re.compile(r"^<!-- recipe -->\n```toml\n(.*?)^```$", re.MULTILINE | re.DOTALL)
RECIPES = _BLOCK.findall(DOC.read_text())


def test_the_guide_has_its_recipes() -> None:
    assert len(RECIPES) >= 9
    marks = re.findall(r"^<!-- recipe -->$", DOC.read_text(), re.MULTILINE)
    assert len(marks) == len(RECIPES), "a marked block is not a ```toml block"


@pytest.mark.parametrize("text", RECIPES, ids=[re.search(r'name = "([^"]+)"', t).group(1)  # type: ignore[union-attr]
                                               for t in RECIPES])
def test_each_recipe_loads(text: str, tmp_path: Path) -> None:
    (tmp_path / "recipe.toml").write_text(text)
    arches = load_toml(text, "recipe.toml").get("build", {}).get("architectures", ["x86_64", "aarch64", "riscv64"])
    for arch in arches:
        recipe = load_recipe(tmp_path, arch)
        split.SplitRules.from_recipe(recipe.data)
        assert recipe.name and recipe.sources
