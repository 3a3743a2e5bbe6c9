"""The SPDX SBOM validated by the real validator (spdx-tools), with licences, purls, checksums, relationships."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from composer.report.purl import purl
from composer.report.sbom import declared_license, spdx
from composer.solve.lockmodel import LockedPackage, Reason

SEED = "ab" * 32


def _pkg(name: str, version: str, *, scheme: str = "semver", arch: str = "x86_64", license_: str = "MIT",
         reason: Reason | None = None) -> LockedPackage:
    return LockedPackage(name=name, version=version, arch=arch, sha256=f"{len(name):x}" * 64, size=10,
                         repository="main", signer="release", reason=reason or Reason(kind="requested"),
                         license=license_, version_scheme=scheme)


PACKAGES = (
    _pkg("hello", "1.2.0", license_="GPL-2.0-only OR MIT"),
    _pkg("libc6", "2.36-9+deb12u4", scheme="deb", license_="LicenseRef-Debian-copyright",
         reason=Reason.dependency_of("hello")),
    _pkg("tzdata", "1:2024a-0+deb12u1", scheme="deb", arch="noarch", license_="public domain, see copyright",
         reason=Reason.dependency_of("libc6")),
    _pkg("busybox", "1.36.1", license_=""),
)
OUTPUTS = ({"name": "disk", "files": [{"path": "disk.raw", "sha256": "1" * 64, "size": 5},
                                      {"path": "disk.qcow2", "sha256": "2" * 64, "size": 4}]},)
SHA1 = {"disk.raw": "a" * 40, "disk.qcow2": "b" * 40}


def _document() -> dict[str, Any]:
    return spdx("server", "x86_64", PACKAGES, OUTPUTS, seed=SEED, epoch=1_700_000_000, sha1=SHA1)


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "sbom.spdx.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


def test_the_validator_reports_nothing(tmp_path: Path) -> None:
    document = parse_file(str(_write(tmp_path, _document())))
    assert validate_full_spdx_document(document) == []
    assert len(document.packages) == 1 + len(PACKAGES)
    assert len(document.files) == 2


def test_licences_from_the_lock() -> None:
    declared = {p["name"]: p["licenseDeclared"] for p in _document()["packages"]}
    assert declared["hello"] == "GPL-2.0-only OR MIT"
    assert declared["libc6"] == "LicenseRef-Debian-copyright"
    assert declared["tzdata"] == "LicenseRef-vcomp-public-domain--see-copyright"
    assert declared["busybox"] == "NOASSERTION"
    infos = {i["licenseId"]: i["extractedText"] for i in _document()["hasExtractedLicensingInfos"]}
    assert infos["LicenseRef-vcomp-public-domain--see-copyright"] == "public domain, see copyright"
    assert set(infos) == {"LicenseRef-Debian-copyright", "LicenseRef-vcomp-public-domain--see-copyright"}


def test_declared_license_cases() -> None:
    assert declared_license("  ") == ("NOASSERTION", {})
    assert declared_license("(MIT OR Apache-2.0) AND BSD-3-Clause")[0] == "(MIT OR Apache-2.0) AND BSD-3-Clause"
    assert declared_license("GPL (v2)")[0].startswith("LicenseRef-vcomp-")
    assert declared_license("(MIT")[0].startswith("LicenseRef-vcomp-")


def test_purls_and_debian_provenance() -> None:
    refs = {p["name"]: p.get("externalRefs", []) for p in _document()["packages"]}
    assert refs["hello"] == [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": "pkg:generic/main/hello@1.2.0?arch=x86_64"}]
    assert refs["libc6"][0]["referenceLocator"] == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"
    assert refs["libc6"][1]["referenceLocator"] == "https://snapshot.debian.org/binary/libc6/"
    assert purl(PACKAGES[2]) == "pkg:deb/debian/tzdata@1%3A2024a-0%2Bdeb12u1?arch=all"


def test_files_carry_sha1_and_sha256() -> None:
    files = {f["fileName"]: {c["algorithm"]: c["checksumValue"] for c in f["checksums"]}
             for f in _document()["files"]}
    assert files == {"./disk.raw": {"SHA1": "a" * 40, "SHA256": "1" * 64},
                     "./disk.qcow2": {"SHA1": "b" * 40, "SHA256": "2" * 64}}


def test_relationships() -> None:
    rels = {(r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]) for r in _document()["relationships"]}
    image = "SPDXRef-Image-server-x86-64"
    assert ("SPDXRef-DOCUMENT", "DESCRIBES", image) in rels
    assert {(image, "CONTAINS", f"SPDXRef-Package-{p.name}") for p in PACKAGES} <= rels
    assert ("SPDXRef-Package-hello", "DEPENDS_ON", "SPDXRef-Package-libc6") in rels
    assert ("SPDXRef-Package-libc6", "DEPENDS_ON", "SPDXRef-Package-tzdata") in rels
    assert ("SPDXRef-File-disk.raw", "GENERATED_FROM", image) in rels


def test_reproducible() -> None:
    a = json.dumps(_document(), sort_keys=True)
    assert a == json.dumps(_document(), sort_keys=True)
    assert _document()["creationInfo"]["created"] == "2023-11-14T22:13:20Z"
    other = spdx("server", "x86_64", PACKAGES, OUTPUTS, seed="cd" * 32, epoch=1_700_000_000, sha1=SHA1)
    assert other["documentNamespace"] != _document()["documentNamespace"]
