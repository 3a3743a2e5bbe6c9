"""What a build states about itself: an SPDX 2.3 SBOM and an in-toto statement with a SLSA v1 predicate.

Both are deterministic: the document namespace and invocation id derive from the build's seed, the
only time is SOURCE_DATE_EPOCH. Resolved dependencies are exactly the lock's packages.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from composer import __version__
from composer.profile.model import Profile
from composer.solve.lockmodel import LockedPackage

BUILD_TYPE = "https://veridian-composer.dev/vcomp/build/v1"
BUILDER_ID = f"https://veridian-composer.dev/vcomp@{__version__}"


def _time(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
            "creationInfo": {"created": _time(epoch), "creators": [f"Tool: vcomp-{__version__}"]},
            "packages": pkgs, "files": files, "relationships": rels}


def provenance(profile: Profile, arch: str, packages: Sequence[LockedPackage], outputs: Sequence[Mapping[str, Any]], *,
               seed: str, lock_digest: str, epoch: int) -> dict[str, Any]:
    """An in-toto v1 statement: subjects are the output files, the predicate SLSA provenance v1."""
    subjects = [{"name": f["path"], "digest": {"sha256": f["sha256"]}} for o in outputs for f in o["files"]]
    deps = [{"name": p.name, "uri": f"vpk:{p.repository}/{p.name}@{p.version}?arch={p.arch}",
             "digest": {"sha256": p.sha256}} for p in packages]
    return {"_type": "https://in-toto.io/Statement/v1", "subject": subjects,
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": {"profile": profile.path.name, "profileDigest": profile.digest,
                                           "arch": arch, "outputs": [o["name"] for o in outputs]},
                    "internalParameters": {"sourceDateEpoch": epoch, "lockDigest": lock_digest},
                    "resolvedDependencies": deps},
                "runDetails": {"builder": {"id": BUILDER_ID},
                               "metadata": {"invocationId": seed, "startedOn": _time(epoch),
                                            "finishedOn": _time(epoch)}}}}
