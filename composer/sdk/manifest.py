"""What an SDK contains: its .debs (name, version, sha256), a digest of every file, and an SPDX 2.3 SBOM.

The tree digest is the sha256 of canonical JSON of (path, kind, mode, content sha256 or link target) for every
entry, sorted: two builds of one SDK have the same manifest bytes exactly when their trees are the same.
"""

from __future__ import annotations

import hashlib
import os
import stat
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer import __version__
from composer.fsutil import canonical_json, sha256_file, source_date_epoch
from composer.package.debian import DebRef
from composer.report.stamps import iso_time
from composer.sdk.toolchain import GO_SUITE, RUST_SUITE

FORMAT = 1
GENERATED_DIRS = ("share/cmake/", "share/meson/", "share/cargo/", "environment-setup-")
GENERATED_FILES = frozenset({"bin/pkg-config", "bin/rustc", "bin/cargo"})
SKIP = frozenset({"sdk-manifest.json", "sdk.spdx.json"})    # written after the digest (composer.sdk.assemble)


@dataclass(frozen=True, slots=True, kw_only=True)
class SdkManifest:
    profile: str
    arch: str
    host: str
    suite: str
    host_suite: str
    sysroot: tuple[DebRef, ...]
    toolchain: tuple[DebRef, ...]
    rust: tuple[DebRef, ...]                    # rustc's closure (host) and the target's standard library
    go: tuple[DebRef, ...]
    files: int
    tree_sha256: str
    generated: tuple[tuple[str, str], ...]      # (relative path, sha256) of the files composer.sdk.files wrote

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SdkManifest:
        def debs(rows: Sequence[dict[str, str]]) -> tuple[DebRef, ...]:
            return tuple(DebRef(name=r["name"], version=r["version"], arch=r["arch"], sha256=r["sha256"])
                         for r in rows)
        return cls(profile=d["profile"], arch=d["arch"], host=d["host"]["arch"], suite=d["suite"],
                   host_suite=d["host"]["suite"], sysroot=debs(d["sysroot"]), toolchain=debs(d["toolchain"]),
                   rust=debs(d.get("rust", [])), go=debs(d.get("go", [])), files=int(d["files"]),
                   tree_sha256=d["tree-sha256"],
                   generated=tuple((g["path"], g["sha256"]) for g in d["generated"]))

    def to_dict(self) -> dict[str, Any]:
        def debs(refs: Sequence[DebRef]) -> list[dict[str, str]]:
            return [{"name": r.name, "version": r.version, "arch": r.arch, "sha256": r.sha256} for r in refs]
        return {"format": FORMAT, "profile": self.profile, "arch": self.arch,
                "host": {"arch": self.host, "suite": self.host_suite}, "suite": self.suite,
                "sysroot": debs(self.sysroot), "toolchain": debs(self.toolchain),
                "rust": debs(self.rust), "go": debs(self.go),
                "files": self.files, "tree-sha256": self.tree_sha256,
                "generated": [{"path": p, "sha256": s} for p, s in self.generated]}


def tree_entries(root: Path) -> list[list[Any]]:
    out: list[list[Any]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = Path(dirpath) / name
            rel = str(full.relative_to(root))
            if rel in SKIP:
                continue
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                out.append([rel, "link", os.readlink(full)])
            elif stat.S_ISDIR(st.st_mode):
                out.append([rel, "dir", oct(st.st_mode & 0o7777)])
            else:
                out.append([rel, "file", oct(st.st_mode & 0o7777), sha256_file(full)])
    return sorted(out)


def make(*, profile: str, arch: str, host: str, suite: str, host_suite: str, sysroot: Sequence[DebRef],
         toolchain: Sequence[DebRef], root: Path, rust: Sequence[DebRef] = (),
         go: Sequence[DebRef] = ()) -> SdkManifest:
    entries = tree_entries(root)
    gen = tuple((e[0], e[3]) for e in entries
                if e[1] == "file" and (e[0].startswith(GENERATED_DIRS) or e[0] in GENERATED_FILES))
    return SdkManifest(profile=profile, arch=arch, host=host, suite=suite, host_suite=host_suite,
                       sysroot=tuple(sysroot), toolchain=tuple(toolchain), rust=tuple(rust), go=tuple(go),
                       files=len(entries),
                       tree_sha256=hashlib.sha256(canonical_json(entries)).hexdigest(), generated=gen)


def _sid(kind: str, name: str) -> str:
    return f"SPDXRef-{kind}-" + "".join(c if c.isalnum() or c in ".-" else "-" for c in name)


def spdx(m: SdkManifest) -> dict[str, Any]:
    """SPDX 2.3 JSON: the SDK contains each .deb (purl pkg:deb/debian/NAME@VERSION?arch=A, sha256 of the .deb)."""
    sdk_id = _sid("SDK", f"{m.profile}-{m.arch}")
    pkgs: list[dict[str, Any]] = [{
        "SPDXID": sdk_id, "name": f"{m.profile} SDK ({m.arch})", "versionInfo": m.tree_sha256[:12],
        "downloadLocation": "NOASSERTION", "filesAnalyzed": False, "primaryPackagePurpose": "INSTALL",
        "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION", "copyrightText": "NOASSERTION",
        "supplier": "NOASSERTION"}]
    rels = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": sdk_id}]
    suites = {"sysroot": m.suite, "toolchain": m.host_suite, "rust": RUST_SUITE, "go": GO_SUITE}
    for part, refs in (("sysroot", m.sysroot), ("toolchain", m.toolchain), ("rust", m.rust), ("go", m.go)):
        for r in refs:
            pid = _sid("Package", f"{part}-{r.name}")
            pkgs.append({"SPDXID": pid, "name": r.name, "versionInfo": r.version, "downloadLocation": "NOASSERTION",
                         "filesAnalyzed": False, "supplier": "Organization: Debian",
                         "checksums": [{"algorithm": "SHA256", "checksumValue": r.sha256}],
                         "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION",
                         "copyrightText": "NOASSERTION",
                         "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                           "referenceLocator": f"pkg:deb/debian/{r.name}@{r.version}?arch={r.arch}"}],
                         "comment": f"{part} ({suites[part]})"})
            rels.append({"spdxElementId": sdk_id, "relationshipType": "CONTAINS", "relatedSpdxElement": pid})
    return {"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
            "name": f"{m.profile}-sdk-{m.arch}",
            "documentNamespace": "https://veridian-composer.dev/spdx/sdk/"
                                 f"{uuid.uuid5(uuid.NAMESPACE_URL, m.tree_sha256)}",
            "creationInfo": {"created": iso_time(source_date_epoch()), "creators": [f"Tool: vcomp-{__version__}"]},
            "packages": pkgs, "relationships": rels}
