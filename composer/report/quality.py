"""A package's quality metrics (pure; ``vcomp pkg info NAME --repo R``, the repository site: docs/quality.md).

:func:`metrics` takes what the edges read (the package's header, its file size, its lint findings, its last
rebuild result) and what other parts compute, as plain values: the hardening score (0-100, the ELF checks of
issue 19 item 4) and the advisories that affect the version (their ids; item 1). Each of those is ``None`` when
it is not known (no ELF file to score, no feed read); composer/report/repoquality.py computes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from composer.package.archive import Header
from composer.package.lint import Finding
from composer.package.rebuild import RebuildResult


@dataclass(frozen=True, slots=True, kw_only=True)
class Quality:
    name: str
    version: str
    arch: str
    size: int                       # bytes of the package file
    installed_size: int             # bytes it installs
    files: int                      # manifest entries
    dependencies: int               # direct dependencies: [dependencies] plus requires/pre-requires clauses
    lint_errors: int
    lint_warnings: int
    lint_codes: tuple[str, ...]     # distinct finding codes, sorted
    hardening: int | None           # 0-100, None until the ELF checks provide it
    reproducible: str               # identical | differs | unknown (never rebuilt)
    rebuild_differences: tuple[str, ...]
    advisories: tuple[str, ...] | None   # advisory ids affecting this version; None until the feed provides them

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "arch": self.arch, "size": self.size,
                "installed_size": self.installed_size, "files": self.files, "dependencies": self.dependencies,
                "lint": {"errors": self.lint_errors, "warnings": self.lint_warnings, "codes": list(self.lint_codes)},
                "hardening": self.hardening,
                "reproducible": self.reproducible, "rebuild_differences": list(self.rebuild_differences),
                "advisories": None if self.advisories is None else list(self.advisories)}

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) for a text listing."""
        lint = f"{self.lint_errors} errors, {self.lint_warnings} warnings" + (
            f" ({', '.join(self.lint_codes)})" if self.lint_codes else "")
        return [("size", f"{self.size} bytes (installs {self.installed_size})"),
                ("dependencies", str(self.dependencies)), ("lint", lint),
                ("hardening", "not checked" if self.hardening is None else f"{self.hardening}/100"),
                ("reproducible", self.reproducible + (f": {'; '.join(self.rebuild_differences[:3])}"
                                                      if self.rebuild_differences else "")),
                ("advisories", "not checked" if self.advisories is None else
                 (", ".join(self.advisories) or "none"))]


def dependency_count(header: Header) -> int:
    m = header.metadata
    relations = m.relations.get("requires", ()) + m.relations.get("pre-requires", ())
    return len(m.dependencies) + len(relations)


def metrics(header: Header, *, size: int, findings: Sequence[Finding], rebuild: RebuildResult | None,
            hardening: int | None = None, advisories: Sequence[str] | None = None) -> Quality:
    """The metrics of one package (pure)."""
    m = header.metadata
    return Quality(name=m.name, version=str(m.full_version), arch=m.arch, size=size,
                   installed_size=header.manifest.installed_size, files=len(header.manifest.entries),
                   dependencies=dependency_count(header),
                   lint_errors=sum(f.level == "error" for f in findings),
                   lint_warnings=sum(f.level != "error" for f in findings),
                   lint_codes=tuple(sorted({f.code for f in findings})), hardening=hardening,
                   reproducible=rebuild.verdict if rebuild else "unknown",
                   rebuild_differences=(*rebuild.metadata, *rebuild.files) if rebuild else (),
                   advisories=None if advisories is None else tuple(sorted(advisories)))
