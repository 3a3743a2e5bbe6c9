"""The CycloneDX SBOM validated by CycloneDX's own JSON schema (cyclonedx-python-lib), matching the SPDX one."""

from __future__ import annotations

import json
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from composer.report.cyclonedx import cyclonedx
from composer.report.sbom import spdx
from tests.unit.test_sbom_spdx import OUTPUTS, PACKAGES, SEED, SHA1


def _document(seed: str = SEED) -> dict[str, Any]:
    return cyclonedx("server", "x86_64", PACKAGES, OUTPUTS, seed=seed, epoch=1_700_000_000, sha1=SHA1)


def test_the_schema_validator_reports_nothing() -> None:
    text = json.dumps(_document(), indent=2, sort_keys=True)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text, all_errors=True) is None


def test_an_invalid_document_is_caught() -> None:  # the validator really runs
    doc = _document()
    doc["components"][0]["hashes"][0]["alg"] = "SHA-7"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc)) is not None


def test_same_packages_purls_licences_and_hashes_as_spdx() -> None:
    cdx = {c["name"]: c for c in _document()["components"] if c["type"] != "file"}
    doc = spdx("server", "x86_64", PACKAGES, OUTPUTS, seed=SEED, epoch=1_700_000_000, sha1=SHA1)
    for p in doc["packages"][1:]:
        c = cdx[p["name"]]
        assert c["version"] == p["versionInfo"]
        assert c["purl"] == p["externalRefs"][0]["referenceLocator"]
        assert c["hashes"] == [{"alg": "SHA-256", "content": p["checksums"][0]["checksumValue"]}]
    assert cdx["hello"]["licenses"] == [{"expression": "GPL-2.0-only OR MIT"}]
    assert cdx["tzdata"]["licenses"] == [{"license": {"name": "public domain, see copyright"}}]
    assert "licenses" not in cdx["busybox"]
    assert cdx["libc6"]["externalReferences"][0]["url"] == "https://snapshot.debian.org/binary/libc6/"
    files = {c["name"]: c["hashes"] for c in _document()["components"] if c["type"] == "file"}
    assert files["disk.raw"] == [{"alg": "SHA-1", "content": "a" * 40}, {"alg": "SHA-256", "content": "1" * 64}]


def test_dependencies() -> None:
    deps = {d["ref"]: d["dependsOn"] for d in _document()["dependencies"]}
    assert len(deps["image"]) == len(PACKAGES)
    assert deps["pkg:generic/main/hello@1.2.0?arch=x86_64"] == ["pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"]


def test_reproducible_from_the_seed_and_epoch() -> None:
    assert json.dumps(_document()) == json.dumps(_document())
    assert _document()["metadata"]["timestamp"] == "2023-11-14T22:13:20Z"
    assert _document()["serialNumber"] != _document("cd" * 32)["serialNumber"]
