"""The SBOM of a build as CycloneDX 1.6 JSON (``sbom.cdx.json``), beside the SPDX one: the same packages, purls,
licences and hashes, the output files as ``file`` components, the dependency graph of the lock.

Valid for CycloneDX's own JSON schema (cyclonedx-python-lib's ``JsonStrictValidator``). Deterministic: the
serial number is a UUID derived from the build's seed, the only time is SOURCE_DATE_EPOCH.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from composer import __version__
from composer import spdx as licenses
from composer.report.purl import debian_origin, purl
from composer.report.sbom import PULLED_IN
from composer.report.stamps import iso_time
from composer.solve.lockmodel import LockedPackage

SPEC_VERSION = "1.6"
IMAGE_REF = "image"


def _licenses(text: str) -> list[dict[str, Any]]:
    """A CycloneDX licence choice: an SPDX expression, else the text as a licence name, else none."""
    if licenses.unstated(text):
        return []
    known = licenses.expression(text)
    return [{"expression": known}] if known else [{"license": {"name": text.strip()}}]


def _component(p: LockedPackage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "library" if p.name.startswith("lib") else "application", "bom-ref": purl(p), "name": p.name,
        "version": p.version, "purl": purl(p), "hashes": [{"alg": "SHA-256", "content": p.sha256}],
        "properties": [{"name": "vcomp:arch", "value": p.arch}, {"name": "vcomp:reason", "value": p.reason.text},
                       {"name": "vcomp:repository", "value": p.repository},
                       {"name": "vcomp:signer", "value": p.signer}]}
    chosen = _licenses(p.license)
    if chosen:
        out["licenses"] = chosen
    origin = debian_origin(p)
    if origin:
        out["externalReferences"] = [{"type": "distribution", "url": origin,
                                      "comment": f"imported from the Debian binary package {p.name} {p.version}"}]
    return out


def _file(f: Mapping[str, Any], sha1: str) -> dict[str, Any]:
    return {"type": "file", "bom-ref": f"file:{f['path']}", "name": f["path"],
            "hashes": [{"alg": "SHA-1", "content": sha1}, {"alg": "SHA-256", "content": f["sha256"]}]}


def _dependencies(packages: Sequence[LockedPackage]) -> list[dict[str, Any]]:
    refs = {p.name: purl(p) for p in packages}
    needs: dict[str, list[str]] = {refs[p.name]: [] for p in packages}
    for p in packages:
        if p.reason.kind in PULLED_IN and p.reason.subject in refs:
            needs[refs[p.reason.subject]].append(refs[p.name])
    return [{"ref": IMAGE_REF, "dependsOn": [refs[p.name] for p in packages]},
            *({"ref": ref, "dependsOn": sorted(set(on))} for ref, on in needs.items())]


def cyclonedx(profile: str, arch: str, packages: Sequence[LockedPackage], outputs: Sequence[Mapping[str, Any]], *,
              seed: str, epoch: int, sha1: Mapping[str, str]) -> dict[str, Any]:
    """CycloneDX 1.6 JSON: the image as the described component, one component per locked package and per output
    file (``sha1``: file path -> its SHA1)."""
    files = [_file(f, sha1[f["path"]]) for o in outputs for f in o["files"]]
    return {
        "$schema": f"http://cyclonedx.org/schema/bom-{SPEC_VERSION}.schema.json",
        "bomFormat": "CycloneDX", "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'cyclonedx:{seed}')}", "version": 1,
        "metadata": {
            "timestamp": iso_time(epoch),
            "tools": {"components": [{"type": "application", "name": "vcomp", "version": __version__}]},
            "component": {"type": "operating-system", "bom-ref": IMAGE_REF, "name": profile,
                          "version": seed[:12], "properties": [{"name": "vcomp:arch", "value": arch}]}},
        "components": [*(_component(p) for p in packages), *files],
        "dependencies": _dependencies(packages)}
