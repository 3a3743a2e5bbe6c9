"""``licenses: {texts: true}``: licence texts shipped in the built root where a licence requires them
(docs/licences.md).

A package that states a licence needing its text (composer.report.licensereport: most do) but installs no licence
file gets the ``copyright`` file of the Debian package it was made from, at ``usr/share/licenses/NAME/copyright``.
Which ``.deb`` is pinned by the package's provenance (name, version and sha256): the unpacked tree of the Debian
cache when it is there, else the ``.deb`` downloaded and its sha256 checked against the provenance. So the same
lock gives the same bytes. A package made from no ``.deb`` (a recipe's own files) that ships no text is left to
its recipe: the licence report lists it (``vcomp license-report``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.arch import Arch
from composer.errors import VerificationError
from composer.package.debian import DebianArchive, DebRef
from composer.report.licensereport import package_licence
from composer.rootfs import Root

TARGET = "usr/share/licenses/{name}/copyright"
MAX_TEXT = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Wanted:
    """A package that needs its licence text, and the .deb it was made from."""

    package: str
    deb: Mapping[str, Any]       # its provenance source: kind deb, name, version, arch, sha256


def wanted(records: Mapping[str, Mapping[str, Any]]) -> list[Wanted]:
    """The installed packages that need a licence text and were made from a .deb (pure; by name)."""
    out = []
    for name, r in sorted(records.items()):
        meta = r.get("metadata", {})
        lic = package_licence(name, str(r.get("version", "")), str(meta.get("package", {}).get("license", "")),
                              [str(f["path"]) for f in r.get("files", []) if f.get("type") != "dir"])
        debs = [s for s in meta.get("provenance", {}).get("sources", []) if s.get("kind") == "deb"]
        if lic.needs_text and debs:
            out.append(Wanted(package=name, deb=debs[0]))
    return out


def _tree(archive: DebianArchive, arch: Arch, deb: Mapping[str, Any]) -> Path:
    sha = str(deb["sha256"])
    cached = archive.cache / "unpacked" / sha
    if cached.is_dir():
        return cached
    ref, path = archive.download(arch, DebRef(name=str(deb["name"]), version=str(deb["version"]),
                                              arch=str(deb["arch"])))
    if ref.sha256 != sha:
        raise VerificationError(f"{path}: sha256 {ref.sha256[:16]}... differs from the provenance's {sha[:16]}...",
                                hint="the Debian archive now serves another build of that version; rebuild the "
                                     "package from its recipe")
    return archive.unpack(path, sha)


def ship(root: Path, records: Mapping[str, Mapping[str, Any]], archive: DebianArchive, arch: Arch) -> Sequence[str]:
    """Write the licence texts into ``root``; the paths written."""
    written: list[str] = []
    for w in wanted(records):
        tree = _tree(archive, arch, w.deb)
        source = f"usr/share/doc/{w.deb['name']}/copyright"
        with Root.open(tree) as t:
            if not t.is_file(source):
                continue          # the .deb has none of its own (a doc directory linked to another package's)
            with t.open_read(source) as f:
                text = f.read(MAX_TEXT)
        rel = TARGET.format(name=w.package)
        with Root.open(root) as r:
            written += r.makedirs(rel.rpartition("/")[0])
            r.write_bytes(rel, text, mode=0o644, durable=False)
        written.append(rel)
    return written
