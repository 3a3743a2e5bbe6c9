"""Package metadata carries the version beyond SemVer and Debian-style relations (issue 14, §1.1 and §2.1 of
the design): epoch, revision, the original version of an imported package and its scheme, essential,
priority, multi-arch and [relations]. Optional: a package without them reads and writes as before."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from composer.errors import InvalidPackage
from composer.package.archive import read_header, verify_package
from composer.package.metadata import Metadata, parse_metadata
from tests import hostile

HEAD = """\
[package]
name = "libc6"
version = "2.36.0"
description = "GNU C Library: Shared libraries"
license = "LicenseRef-Debian-copyright"
type = "library"
arch = "x86_64"
{extra}
[security]
context = "libc6_t"
"""

DEB = """epoch = {epoch}
revision = "{revision}"
upstream-version = "{upstream}"
version-scheme = "deb"
essential = true
priority = "required"
multi-arch = "same"

[relations]
requires = ["libgcc-s1"]
breaks = ["hurd (<< 1:0.9.git20220301-2)", "nscd (<< 2.36)"]
recommends = ["libidn2-0 (>= 2.0.5~)"]
"""


def meta(extra: str = "") -> Metadata:
    return parse_metadata(HEAD.format(extra=extra).encode(), origin="libc6.vpk:metadata.toml")


def deb(upstream: str, epoch: int = 0, revision: str = "") -> Metadata:
    return meta(DEB.format(upstream=upstream, epoch=epoch, revision=revision))


def test_an_imported_version_round_trips_and_orders_as_dpkg() -> None:
    m = deb("2.36-9+deb12u7", revision="9+deb12u7")
    again = parse_metadata(m.to_toml(), origin="again")
    assert again == m and again.to_dict()["relations"]["breaks"] == ["hurd (<< 1:0.9.git20220301-2)",
                                                                     "nscd (<< 2.36)"]
    assert (m.essential, m.priority, m.multi_arch, m.version_scheme) == (True, "required", "same", "deb")
    assert deb("2.36-9+deb12u2", revision="9+deb12u2").full_version < m.full_version   # the security update wins
    assert deb("1:2.0-1", epoch=1, revision="1").full_version > m.full_version          # the epoch first


def test_a_package_without_the_new_keys_writes_what_it_wrote_before() -> None:
    plain = hostile.metadata("hello", "1.2.0")
    assert set(plain.to_dict()["package"]) == {"name", "version", "description", "license", "type", "arch"}
    assert "relations" not in plain.to_dict()
    assert plain.full_version < replace(plain, revision="1").full_version < replace(plain, epoch=1).full_version


@pytest.mark.parametrize(("extra", "wanted"), [
    ('upstream-version = "2.36-9"\n', "$.package.upstream-version: only a package of version-scheme 'deb'"),
    ('version-scheme = "deb"\n', "$.package.version-scheme: a 'deb' version needs upstream-version"),
    ('version-scheme = "deb"\nupstream-version = "2.36-9"\n', "has epoch 0 and revision '9', the package says"),
    ('version-scheme = "deb"\nupstream-version = "a2.36"\n', "$.package.upstream-version:"),
    ('revision = "-1"\n', "$.package.revision"),
    ('[relations]\nrequires = ["libgcc-s1 (>= 12"]\n', "$.relations.requires[0]"),
    ('[relations]\nrequires = ["a, b"]\n', "$.relations.requires[0]: 'a, b': holds 2 clauses"),
    ('[relations]\nrequires = ["git-man (>> 2.39.5)", "git-man (<< 2.39.5)"]\n',
     "$.relations.requires[1]: 'git-man (>> 2.39.5)', 'git-man (<< 2.39.5)': no version of git-man can satisfy"),
    ('[relations]\nrequires = ["foo (>= 2)", "foo (<< 1)"]\n', "no version of foo can satisfy all of them"),
    ('[relations]\nwants = ["foo"]\n', "$.relations"),
    ('provides = ["zz = 1:"]\n', "$.package.provides[0]: 'zz = 1:': the version of 'zz' is not a valid semver"),
    ('provides = ["zz = 1.0.0", "yy = banana"]\n', "$.package.provides[1]: 'yy = banana'"),
])
def test_a_bad_version_or_relation_is_one_line_with_its_place(extra: str, wanted: str) -> None:
    with pytest.raises(InvalidPackage) as info:
        meta(extra)
    assert "libc6.vpk:metadata.toml:" in info.value.message and wanted in info.value.message, info.value.message


def test_alternatives_and_satisfiable_ranges_are_accepted() -> None:
    m = meta('[relations]\nrequires = ["debconf (>= 0.5) | debconf-2.0", "foo (>= 1)", "foo (<< 2)", '
             '"perl:any"]\nconflicts = ["postfix-tls (<< 3.0)"]\n')
    assert m.relations["requires"][0] == "debconf (>= 0.5) | debconf-2.0"


def test_the_signature_covers_the_new_keys(tmp_path: Path) -> None:
    m = deb("2.36-9+deb12u7", revision="9+deb12u7")
    path = hostile.hostile_package(tmp_path / "libc6.vpk", [hostile.file("usr/lib/libc6/VERSION", b"2.36\n")],
                                   meta=replace(m, security=replace(m.security, context="system_t")))
    header = read_header(path)
    assert header.metadata.upstream_version == "2.36-9+deb12u7" and header.metadata.relations["recommends"] == (
        "libidn2-0 (>= 2.0.5~)",)
    data = bytearray(path.read_bytes())
    at = data.index(b"deb12u7")
    data[at:at + 7] = b"deb12u8"   # a different version under the same signature
    (tmp_path / "forged.vpk").write_bytes(bytes(data))
    with pytest.raises(InvalidPackage):
        verify_package(tmp_path / "forged.vpk")
