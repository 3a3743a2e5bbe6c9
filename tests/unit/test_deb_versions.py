"""The sample set on the new order (design14 section 7): ``{deb_version}`` fills the full version of a package built
from a .deb, ``{deb_release}`` stays the SemVer projection, driver recipes require the exact kernel build."""

from __future__ import annotations

from typing import Any

import pytest

from composer.errors import UserError
from composer.package.build import _fill_deb_versions, assemble_metadata
from composer.package.recipe import load_recipe
from composer.package.sources import SourceResult
from composer.version import FullVersion
from tests.conftest import REPO


def _deb(version: str) -> list[SourceResult]:
    return [SourceResult(provenance=[{"kind": "deb", "name": "x", "version": version, "arch": "amd64",
                                      "sha256": "0" * 64}])]


def _filled(version: str, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    recipe = load_recipe(REPO / "recipes" / "driver-ahci", "x86_64")
    doc = meta or {"package": {"name": "p", "version": "{deb_version}"},
                   "dependencies": {"linux": "={deb_release}"},
                   "relations": {"requires": ["linux (= {deb_version})"]}}
    return _fill_deb_versions(doc, _deb(version), recipe)


@pytest.mark.parametrize(("deb", "version", "extra"), [
    ("6.1.192-3", "6.1.192", {"revision": "3"}),
    ("1:2.36-9+deb12u7", "2.36.0", {"epoch": 1, "revision": "9+deb12u7"}),
    ("3:6.04~git20190206.bf6db5b4+dfsg1-3", "6.4.0+deb.-7egit20190206.bf6db5b4-2bdfsg1", {"epoch": 3, "revision": "3"}),
    ("1.35.0-4+deb12u1+b1", "1.35.0", {"revision": "4+deb12u1+b1"}),
    ("252.39", "252.39.0", {}),
])
def test_deb_version_fills_the_full_version(deb: str, version: str, extra: dict[str, Any]) -> None:
    filled = _filled(deb)
    assert filled["package"] == {"name": "p", "version": version, "upstream-version": deb,
                                 "version-scheme": "deb", **extra}
    release = version.split("+")[0]
    assert filled["dependencies"] == {"linux": f"={release}"}           # {deb_release}: the projection
    assert filled["relations"] == {"requires": [f"linux (= {deb})"]}    # elsewhere: the original text


def test_revisions_of_one_kernel_order() -> None:
    two, three = (FullVersion.parse(_filled(v)["package"]["upstream-version"], "deb") for v in ("6.1.192-2",
                                                                                                "6.1.192-3"))
    assert two < three


def test_deb_version_needs_a_debian_source() -> None:
    recipe = load_recipe(REPO / "recipes" / "driver-ahci", "x86_64")
    with pytest.raises(UserError, match="needs a Debian source"):
        _fill_deb_versions({"package": {"version": "{deb_version}"}}, [], recipe)


def test_the_driver_recipes_require_the_exact_kernel_build() -> None:
    recipe = load_recipe(REPO / "recipes" / "driver-virtio-scsi", "x86_64")
    meta = assemble_metadata(recipe, _deb("6.1.192-3"), 0)
    assert meta.full_version == FullVersion.parse("6.1.192-3", "deb")
    assert meta.relations["requires"] == ("linux (= 6.1.192-3)", "driver-virtio (= 6.1.192-3)",
                                          "driver-scsi (= 6.1.192-3)")


def test_base_files_is_essential() -> None:
    recipe = load_recipe(REPO / "recipes" / "base-files", "x86_64")
    assert recipe.data["package"]["essential"] is True
