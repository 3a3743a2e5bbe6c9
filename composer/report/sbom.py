"""The SBOM of a build: SPDX 2.3 JSON, one package per locked package and one file per output file.

Deterministic: the document namespace derives from the build's seed, the only time is SOURCE_DATE_EPOCH.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from composer import __version__
from composer.report.stamps import iso_time
from composer.solve.lockmodel import LockedPackage


def _spdx_id(kind: str, name: str) -> str:
    return f"SPDXRef-{kind}-" + "".join(c if c.isalnum() or c in ".-" else "-" for c in name)


def spdx(profile: str, arch: str, packages: Sequence[LockedPackage], outputs: Sequence[Mapping[str, Any]], *,
         seed: str, epoch: int) -> dict[str, Any]:
    """SPDX 2.3 JSON: one package per locked package, one file per output file; the image contains them."""
    image_id = _spdx_id("Image", f"{profile}-{arch}")
    pkgs = [{"SPDXID": image_id, "name": f"{profile} ({arch})", "versionInfo": seed[:12],
             "downloadLocation": "NOASSERTION", "filesAnalyzed": False, "primaryPackagePurpose": "OPERATING-SYSTEM"}]
    rels = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}]
    for p in packages:
        pid = _spdx_id("Package", p.name)
        pkgs.append({"SPDXID": pid, "name": p.name, "versionInfo": p.version, "downloadLocation": "NOASSERTION",
                     "filesAnalyzed": False, "supplier": "NOASSERTION",
                     "checksums": [{"algorithm": "SHA256", "checksumValue": p.sha256}],
                     "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION",
                     "comment": f"repository {p.repository}; signer {p.signer}; {p.reason}"})
        rels.append({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": pid})
    files = []
    for o in outputs:
        for f in o["files"]:
            fid = _spdx_id("File", f["path"])
            files.append({"SPDXID": fid, "fileName": f"./{f['path']}",
                          "checksums": [{"algorithm": "SHA256", "checksumValue": f["sha256"]}]})
            rels.append({"spdxElementId": fid, "relationshipType": "GENERATED_FROM", "relatedSpdxElement": image_id})
    return {"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
            "name": f"{profile}-{arch}",
            "documentNamespace": f"https://veridian-composer.dev/spdx/{uuid.uuid5(uuid.NAMESPACE_URL, seed)}",
            "creationInfo": {"created": iso_time(epoch), "creators": [f"Tool: vcomp-{__version__}"]},
            "packages": pkgs, "files": files, "relationships": rels}
