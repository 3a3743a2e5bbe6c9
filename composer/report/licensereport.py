"""The licence report of an image: every package, its licence and the licence files it ships, grouped by licence
(pure: rows in, a report out; ``vcomp license-report``, docs/licences.md).

A package's licence files are the paths it installs at ``usr/share/doc/*/copyright``, under
``usr/share/licenses/`` or ``usr/share/common-licenses/``, or named ``LICENSE*``/``COPYING*``. A package that
states a licence (not NOASSERTION, not public domain) and ships none of these is listed under ``missing``: most
licences (GPL, LGPL, MIT, BSD, Apache) require their text to accompany the binaries.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from composer import spdx as licenses
from composer.package import globs

LICENCE_FILES = ("usr/share/doc/*/copyright", "usr/share/licenses/**", "usr/share/common-licenses/**",
                 "**/LICENSE*", "**/COPYING*", "LICENSE*", "COPYING*")
NO_TEXT_NEEDED = frozenset({"CC0-1.0", "Unlicense", "0BSD", "LicenseRef-Debian-public-domain",
                            "LicenseRef-public-domain"})
MAX_FILES_SHOWN = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageLicence:
    name: str
    version: str
    license: str              # as the package states it
    normalized: str           # the valid SPDX expression, or "" when it is none
    problem: str              # why it is not valid ("" when it is)
    files: tuple[str, ...]    # the licence files it ships

    @property
    def needs_text(self) -> bool:
        """States a licence whose text must accompany the binaries, and ships no licence file."""
        if self.files or licenses.unstated(self.license):
            return False
        if not self.normalized:
            return True
        return not all(t.license in NO_TEXT_NEEDED for c in licenses.parse(self.normalized).choices for t in c)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "license": self.license, "spdx": self.normalized,
                "problem": self.problem, "files": list(self.files), "needs_text": self.needs_text}


@dataclass(frozen=True, slots=True, kw_only=True)
class LicenceReport:
    target: str               # the profile or image directory
    arch: str
    packages: tuple[PackageLicence, ...]

    @property
    def groups(self) -> dict[str, list[str]]:
        """Licence (its SPDX form, else as stated) -> the package names, both sorted."""
        out: dict[str, list[str]] = {}
        for p in self.packages:
            out.setdefault(p.normalized or p.license or "NOASSERTION", []).append(p.name)
        return {k: sorted(v) for k, v in sorted(out.items())}

    @property
    def missing(self) -> list[str]:
        return [p.name for p in self.packages if p.needs_text]

    @property
    def invalid(self) -> list[str]:
        return [p.name for p in self.packages if p.problem and not licenses.unstated(p.license)]

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "arch": self.arch, "packages": [p.to_dict() for p in self.packages],
                "groups": self.groups, "missing_texts": self.missing, "invalid": self.invalid}


def licence_files(paths: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(p for p in paths if globs.matches(p, LICENCE_FILES)))


def package_licence(name: str, version: str, license_: str, paths: Iterable[str]) -> PackageLicence:
    why = "" if licenses.unstated(license_) else licenses.problem(license_)
    return PackageLicence(name=name, version=version, license=license_,
                          normalized="" if why or licenses.unstated(license_) else licenses.expression(license_) or "",
                          problem=why, files=licence_files(paths))


def report(target: str, arch: str, rows: Iterable[PackageLicence]) -> LicenceReport:
    return LicenceReport(target=target, arch=arch, packages=tuple(sorted(rows, key=lambda p: p.name)))


def lines(r: LicenceReport) -> list[str]:
    """The text form: one block per licence, then what is missing or invalid."""
    by_name = {p.name: p for p in r.packages}
    out = [f"{r.target} ({r.arch}): {len(r.packages)} packages, {len(r.groups)} licences"]
    for licence, names in r.groups.items():
        out.append(f"\n{licence}  ({len(names)})")
        for n in names:
            p = by_name[n]
            files = ", ".join("/" + f for f in p.files[:3]) + (f" (+{len(p.files) - 3})" if len(p.files) > 3 else "")
            out.append(f"  {n} {p.version}: {files or 'no licence file'}")
    if r.invalid:
        out.append("\nnot valid SPDX: " + "; ".join(f"{n}: {by_name[n].problem}" for n in r.invalid))
    if r.missing:
        out.append(f"\nship no licence text although their licence requires it: {', '.join(r.missing)}")
    return out


def to_html(reports: Iterable[LicenceReport]) -> str:
    """One static page (no script, no external resource): a table per architecture, grouped by licence."""
    e = html.escape
    body = []
    for r in reports:
        by_name: Mapping[str, PackageLicence] = {p.name: p for p in r.packages}
        rows = []
        for licence, names in r.groups.items():
            for i, n in enumerate(names):
                p = by_name[n]
                cell = f'<td rowspan="{len(names)}"><code>{e(licence)}</code></td>' if i == 0 else ""
                files = "<br>".join(e("/" + f) for f in p.files[:MAX_FILES_SHOWN])
                flag = ' class="missing"' if p.needs_text else ""
                rows.append(f"<tr{flag}>{cell}<td>{e(n)}</td><td>{e(p.version)}</td>"
                            f"<td>{files or 'no licence file'}</td></tr>")
        body.append(f"<h2>{e(r.target)} ({e(r.arch)})</h2>\n<p>{len(r.packages)} packages, {len(r.groups)} "
                    f"licences; {len(r.missing)} ship no licence text</p>\n<table><tr><th>licence</th>"
                    f"<th>package</th><th>version</th><th>licence files</th></tr>\n" + "\n".join(rows) + "</table>")
    style = ("body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;padding:3px 6px;"
             "vertical-align:top}tr.missing td{background:#fdd}")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Licence report</title>"
            f"<style>{style}</style></head><body><h1>Licence report</h1>\n" + "\n".join(body) + "\n</body></html>\n")
