"""The SBOM of a build: SPDX 2.3 JSON, one package per locked package and one file per output file.

Valid for spdx-tools (``pyspdxtools -i sbom.spdx.json``): output files carry SHA1 and SHA256, packages their
licence from the lock (``licenseDeclared``; a text that is not an SPDX expression becomes a ``LicenseRef-``
with the text as extracted licensing information), a purl (composer.report.purl) and, for Debian-imported
packages, where Debian archives them. Relationships: the document DESCRIBES the image, the image CONTAINS every
package, a package DEPENDS_ON what the lock says it pulled in, each output file is GENERATED_FROM the image.

Deterministic: the document namespace derives from the build's seed, the only time is SOURCE_DATE_EPOCH.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from composer import __version__
from composer import spdx as licenses
from composer.report.purl import debian_origin, purl
from composer.report.stamps import iso_time
from composer.solve.lockmodel import LockedPackage

PULLED_IN = frozenset({"dependency", "recommended", "suggested"})  # reason kinds naming who pulled a package in


def _spdx_id(kind: str, name: str) -> str:
    return f"SPDXRef-{kind}-" + "".join(c if c.isalnum() or c in ".-" else "-" for c in name)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in text).strip("-") or "unknown"


def declared_license(text: str) -> tuple[str, dict[str, str]]:
    """The ``licenseDeclared`` of a lock's licence text and the ``LicenseRef-`` ids it needs extracted
    (id -> the text to record): an SPDX expression as is, an empty text NOASSERTION, any other text a
    ``LicenseRef-`` of its own."""
    if licenses.unstated(text):
        return "NOASSERTION", {}
    known = licenses.expression(text)
    if known:
        return known, {ref: f"{ref}: see the package's own licence files" for ref in licenses.refs(known)}
    ref = f"LicenseRef-vcomp-{_safe(text.strip())}"
    return ref, {ref: text.strip()}


def _package(p: LockedPackage, license_: str) -> dict[str, Any]:
    refs = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl(p)}]
    origin = debian_origin(p)
    if origin:
        refs.append({"referenceCategory": "OTHER", "referenceType": "debian-snapshot", "referenceLocator": origin,
                     "comment": f"imported from the Debian binary package {p.name} {p.version}"})
    return {"SPDXID": _spdx_id("Package", p.name), "name": p.name, "versionInfo": p.version,
            "downloadLocation": "NOASSERTION", "filesAnalyzed": False, "supplier": "NOASSERTION",
            "checksums": [{"algorithm": "SHA256", "checksumValue": p.sha256}],
            "licenseConcluded": "NOASSERTION", "licenseDeclared": license_, "copyrightText": "NOASSERTION",
            "externalRefs": refs, "primaryPackagePurpose": "LIBRARY" if p.name.startswith("lib") else "APPLICATION",
            "comment": f"repository {p.repository}; signer {p.signer}; {p.reason.text}"}


def _relationships(image_id: str, packages: Sequence[LockedPackage]) -> list[dict[str, str]]:
    names = {p.name for p in packages}
    rels = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}]
    for p in packages:
        pid = _spdx_id("Package", p.name)
        rels.append({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": pid})
        if p.reason.kind in PULLED_IN and p.reason.subject in names:
            rels.append({"spdxElementId": _spdx_id("Package", p.reason.subject), "relationshipType": "DEPENDS_ON",
                         "relatedSpdxElement": pid})
    return rels


def spdx(profile: str, arch: str, packages: Sequence[LockedPackage], outputs: Sequence[Mapping[str, Any]], *,
         seed: str, epoch: int, sha1: Mapping[str, str]) -> dict[str, Any]:
    """SPDX 2.3 JSON: one package per locked package, one file per output file (``sha1``: file path -> its
    SHA1, which SPDX requires beside the SHA256 the manifest records); the image contains the packages."""
    image_id = _spdx_id("Image", f"{profile}-{arch}")
    pkgs: list[dict[str, Any]] = [{
        "SPDXID": image_id, "name": f"{profile} ({arch})", "versionInfo": seed[:12], "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False, "primaryPackagePurpose": "OPERATING-SYSTEM", "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION", "copyrightText": "NOASSERTION", "supplier": "NOASSERTION"}]
    extracted: dict[str, str] = {}
    for p in packages:
        license_, refs = declared_license(p.license)
        extracted.update(refs)
        pkgs.append(_package(p, license_))
    rels = _relationships(image_id, packages)
    files = []
    for o in outputs:
        for f in o["files"]:
            fid = _spdx_id("File", f["path"])
            files.append({"SPDXID": fid, "fileName": f"./{f['path']}", "licenseConcluded": "NOASSERTION",
                          "copyrightText": "NOASSERTION",
                          "checksums": [{"algorithm": "SHA1", "checksumValue": sha1[f["path"]]},
                                        {"algorithm": "SHA256", "checksumValue": f["sha256"]}]})
            rels.append({"spdxElementId": fid, "relationshipType": "GENERATED_FROM", "relatedSpdxElement": image_id})
    doc: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": f"{profile}-{arch}",
        "documentNamespace": f"https://veridian-composer.dev/spdx/{uuid.uuid5(uuid.NAMESPACE_URL, seed)}",
        "creationInfo": {"created": iso_time(epoch), "creators": [f"Tool: vcomp-{__version__}"]},
        "packages": pkgs, "files": files, "relationships": rels}
    if extracted:
        doc["hasExtractedLicensingInfos"] = [{"licenseId": ref, "extractedText": text, "name": ref}
                                             for ref, text in sorted(extracted.items())]
    return doc
