"""Requirements with an epoch or a revision in profiles and package metadata: accepted, bad ones refused with the
place (design14 section 1.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.errors import InvalidPackage
from composer.package.metadata import parse_metadata
from composer.profile.load import load_profile
from tests.unit.test_profile import GOOD, errors_of, write

META = """\
[package]
name = "app"
version = "1.0.0"
description = "an app"
license = "MIT"
type = "application"
arch = "x86_64"
[security]
context = "app_t"
[dependencies]
linux = {req}
"""


@pytest.mark.parametrize("req", ["=6.1.192-r3", ">=1:1.2.3-r4, <2", "^1.2.3-r4", "1:1.*", "<1.2.3-r0~rc1"])
def test_profile_accepts(tmp_path: Path, req: str) -> None:
    prof = load_profile(write(tmp_path, GOOD.replace('version: "^7"', f'version: "{req}"')))
    assert prof.packages[1].requirement == req


@pytest.mark.parametrize(("req", "fragment"), [
    ("=6.1-r3", "needs a full MAJOR.MINOR.PATCH"), (">6.1.192-r3, <6.1.192-r3", "matches no version at all"),
    ("=1.2.3-r1-r2", "only the last '-rN'"), ("=1:1:1.0.0", "unexpected"),
])
def test_profile_refuses_with_the_place(tmp_path: Path, req: str, fragment: str) -> None:
    errs = errors_of(write(tmp_path, GOOD.replace('version: "^7"', f'version: "{req}"')))
    assert len(errs) == 1 and ":10:5: $.packages[1].version:" in errs[0] and fragment in errs[0], errs


@pytest.mark.parametrize("req", ['"=6.1.192-r3"', '">=1:1.2.3-r4, <2"', '{version = "~1.2.3-r4+b1"}'])
def test_metadata_accepts(req: str) -> None:
    m = parse_metadata(META.format(req=req).encode(), origin="app.vpk:metadata.toml")
    assert m.dependencies[0].name == "linux"


@pytest.mark.parametrize(("req", "fragment"), [
    ('"=1.2-r4"', "needs a full MAJOR.MINOR.PATCH"), ('">1:1.0.0, <1:1.0.0"', "matches no version at all"),
    ('"1.*-r4"', "needs a full MAJOR.MINOR.PATCH"),
])
def test_metadata_refuses_with_the_place(req: str, fragment: str) -> None:
    with pytest.raises(InvalidPackage) as info:
        parse_metadata(META.format(req=req).encode(), origin="app.vpk:metadata.toml")
    assert "app.vpk:metadata.toml:11:1: $.dependencies.linux:" in str(info.value) and fragment in str(info.value)
