"""``vcomp license-report PROFILE|IMAGE_DIR``: every package of an image, its licence and licence files, grouped
by licence (composer.report.licensereport; docs/licences.md). The edges: a built image directory is read from
its contents.json (each package's files), license-texts.json (the texts ``licenses: {texts: true}`` added) and
sbom.spdx.json (each package's declared licence); a profile from
its lock, each locked package fetched and verified through its repository (the headers: files and licence)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from composer.cli import jsonout
from composer.cli.common import EXIT_OK, Subparsers
from composer.cli.common import out as _out
from composer.compose.layout import LICENSE_TEXTS
from composer.errors import UserError
from composer.fsutil import atomic_write
from composer.report.licensereport import LicenceReport, lines, package_licence, report, to_html

MAX_DOC = 256 << 20   # bytes of contents.json or sbom.spdx.json


def _json(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_DOC + 1)
    except FileNotFoundError:
        raise UserError(f"{path.parent} has no {path.name}: not a built image directory",
                        hint="pass a profile or an images/PROFILE/ARCH directory made by vcomp build") from None
    if len(data) > MAX_DOC:
        raise UserError(f"{path}: larger than {MAX_DOC} bytes", hint="the file is hostile or corrupt")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise UserError(f"{path}: corrupt JSON ({exc})", hint="rebuild the image: vcomp build PROFILE") from None


def image_reports(directory: Path) -> list[LicenceReport]:
    """The report of a built image directory (one architecture)."""
    manifest = _json(directory / "manifest.json")
    contents = _json(directory / "contents.json")
    sbom = _json(directory / "sbom.spdx.json")
    declared = {p.get("name"): str(p.get("licenseDeclared", "NOASSERTION")) for p in sbom.get("packages", [])
                if isinstance(p, dict)}
    if not isinstance(contents, dict):
        raise UserError(f"{directory / 'contents.json'}: not an object", hint="rebuild the image")
    listed = _json(directory / LICENSE_TEXTS) if (directory / LICENSE_TEXTS).is_file() else []
    added = [p for p in listed if isinstance(p, str)] if isinstance(listed, list) else []
    rows = [package_licence(name, str(c.get("version", "")), declared.get(name, "NOASSERTION"),
                            [*c.get("files", {}), *(p for p in added if p.startswith(f"usr/share/licenses/{name}/"))])
            for name, c in sorted(contents.items()) if isinstance(c, dict)]
    return [report(str(directory), str(manifest.get("arch", "")), rows)]


def profile_reports(profile: Path) -> Iterator[LicenceReport]:
    """The report of each architecture of a locked profile (its packages fetched and verified)."""
    from composer.package.archive import read_header
    from composer.pkgmgr.install import fetch_locked, locked_packages
    from composer.solve.relock import load_locked
    _profile, lock, _digest, sources = load_locked(profile)
    for arch in sorted(lock.architectures):
        rows = []
        for f in fetch_locked(sources, locked_packages(lock, arch), arch):
            header = read_header(f.path)
            rows.append(package_licence(f.locked.name, f.locked.version, f.locked.license or header.metadata.license,
                                        [e.path for e in header.manifest.entries if e.type != "dir"]))
        yield report(str(profile), arch, rows)


def cmd_license_report(args: argparse.Namespace) -> int:
    target = Path(args.target)
    reports = image_reports(target) if target.is_dir() else list(profile_reports(target))
    if args.html:
        atomic_write(Path(args.html), to_html(reports).encode())
    if jsonout.wanted(args):
        jsonout.emit({"reports": [r.to_dict() for r in reports]})
        return EXIT_OK
    for i, r in enumerate(reports):
        for line in ([""] if i else []) + lines(r):
            _out(line)
    if args.html:
        _out(f"\nwritten: {args.html}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    p = sub.add_parser("license-report", help="every package of an image with its licence and licence files, "
                                              "grouped by licence")
    p.add_argument("target", metavar="PROFILE|IMAGE_DIR",
                   help="a locked profile (its packages are fetched) or a built image directory (images/NAME/ARCH)")
    p.add_argument("--html", metavar="FILE", help="also write the report as one static HTML page")
    jsonout.add_json(p, "license-report")
    p.set_defaults(func=cmd_license_report)
