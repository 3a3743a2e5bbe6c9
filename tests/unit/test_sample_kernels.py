"""The sample repository's previous kernel build (composer/repo/sample.py): the kernel and driver recipes pinned to
the Debian kernel package before the one the metapackage follows."""

from __future__ import annotations

from pathlib import Path

from composer.package.recipe import load_recipe
from composer.repo.sample import KERNEL_FOLLOW, previous_kernel_recipes
from tests.conftest import REPO


def test_the_kernel_recipes_are_copied_pinned_to_the_previous_build(tmp_path: Path) -> None:
    copies = previous_kernel_recipes(REPO / "recipes", tmp_path, "linux-image-6.12.117+deb13-{deb_arch}")
    names = {p.name for p in copies}
    assert {"linux", "driver-virtio", "driver-virtio-blk", "driver-ahci"} <= names
    assert not {"busybox", "nano", "base-files", "init"} & names
    for copy in copies:
        text = (copy / "recipe.toml").read_text()
        assert KERNEL_FOLLOW not in text and 'package = "linux-image-6.12.117+deb13-{deb_arch}"' in text
        recipe = load_recipe(copy, "x86_64")
        assert [s["package"] for s in recipe.sources] == ["linux-image-6.12.117+deb13-amd64"]
        assert text.replace('package = "linux-image-6.12.117+deb13-{deb_arch}"\n', "") == \
            (REPO / "recipes" / copy.name / "recipe.toml").read_text().replace(
                'package = "linux-image-{deb_arch}"\nfollow = "linux-image-*"\n', "")
