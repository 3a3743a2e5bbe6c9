"""A package's hardening score from its ELF files' flags: a pure function (the quality metrics show it).

Each linked ELF file scores five checks, as ``checksec`` reports them: PIE (a shared library passes: it is
position-independent by nature), RELRO (full 1, partial 1/2, none 0), a non-executable stack, the stack
protector (``__stack_chk_fail`` imported, or defined: the C library) and FORTIFY_SOURCE (a ``__*_chk`` function);
a static program without dynamic symbols scores the first three only. The package's
score is the mean over its files, 0-100 (rounded down); a package without ELF files scores 100.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from composer.package.elfinfo import ElfInfo, Hardening

CHECKS = ("pie", "relro", "nx", "canary", "fortify")


@dataclass(frozen=True, slots=True, kw_only=True)
class HardeningFinding:
    path: str
    missing: tuple[str, ...]      # of CHECKS ("relro" also when only partial)
    score: int                    # 0-100 for this file


@dataclass(frozen=True, slots=True, kw_only=True)
class HardeningReport:
    score: int                    # 0-100 for the package
    files: int                    # ELF files scored
    findings: tuple[HardeningFinding, ...]   # files missing a check, by path


def file_points(h: Hardening) -> dict[str, float]:
    """Each applicable check's points (0..1) for one file (a static program's canary and FORTIFY are not
    visible without symbols: not scored)."""
    points = {"pie": 1.0 if h.pie or h.shared else 0.0, "relro": {"full": 1.0, "partial": 0.5}.get(h.relro, 0.0),
              "nx": 1.0 if h.nx else 0.0}
    if not h.static:
        points.update(canary=1.0 if h.canary else 0.0, fortify=1.0 if h.fortify else 0.0)
    return points


def hardening_report(infos: Iterable[ElfInfo]) -> HardeningReport:
    """The per-package score and the files that miss a check (pure; ``infos`` from :func:`read_elf`)."""
    scores: list[float] = []
    findings: list[HardeningFinding] = []
    for info in sorted(infos, key=lambda i: i.path):
        if info.hardening is None:
            continue
        points = file_points(info.hardening)
        score = sum(points.values()) / len(points)
        scores.append(score)
        missing = tuple(c for c in CHECKS if points.get(c, 1.0) < 1.0)
        if missing:
            findings.append(HardeningFinding(path=info.path, missing=missing, score=int(score * 100)))
    total = int(100 * sum(scores) / len(scores)) if scores else 100
    return HardeningReport(score=total, files=len(scores), findings=tuple(findings))
