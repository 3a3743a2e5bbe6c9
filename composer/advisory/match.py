"""Which advisories cover which package versions (pure): OSV ranges evaluated in the package's own version
order (dpkg's for Debian versions, SemVer precedence for ours: composer.version.FullVersion).

An advisory's ``affected`` entry applies to a package of the same name when its ecosystem is one this table
maps to the package's version scheme: ``Debian`` / ``Debian:13`` to Debian-versioned packages, ``Veridian``
(the project's own ecosystem) to every package. Other ecosystems (PyPI, npm, ...) are not matched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from composer.advisory.osv import Advisory, Affected, Event, severity_rank
from composer.version import FullVersion, OrderKey, VersionError

OWN_ECOSYSTEM = "Veridian"
# ecosystem family -> the version schemes of the packages it applies to (None: every scheme)
ECOSYSTEMS: Mapping[str, frozenset[str] | None] = {"Debian": frozenset({"deb"}), OWN_ECOSYSTEM: None}


@dataclass(frozen=True, slots=True, kw_only=True)
class Package:
    """A package version as a lock, an image or a root records it."""

    name: str
    version: str
    scheme: str = "semver"
    arch: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """``package`` is affected by ``advisory``; ``fixed`` lists the versions that fix it (may be empty)."""

    package: Package
    advisory: Advisory
    fixed: tuple[str, ...]

    @property
    def severity(self) -> str:
        return self.advisory.severity

    @property
    def id(self) -> str:
        return self.advisory.id

    @property
    def aliases(self) -> tuple[str, ...]:
        return self.advisory.aliases

    def to_dict(self) -> dict[str, object]:
        a = self.advisory
        return {"name": self.package.name, "version": self.package.version, "arch": self.package.arch,
                "id": a.id, "aliases": list(a.aliases), "severity": a.severity, "summary": a.title,
                "fixed": list(self.fixed), "modified": a.modified}


class _Row(Protocol):
    """A locked package (composer.solve.lockmodel.LockedPackage): what an audit reads of it."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def version_scheme(self) -> str: ...


class _Lock(Protocol):
    """A lock (composer.solve.lockmodel.Lock): its rows per architecture."""

    @property
    def architectures(self) -> Mapping[str, Sequence[_Row]]: ...


def lock_packages(lock: _Lock | None) -> list[Package]:
    """Every locked package of every architecture (one per name, version and arch)."""
    if lock is None:
        return []
    return sorted({Package(name=p.name, version=p.version, scheme=p.version_scheme, arch=arch)
                   for arch, rows in lock.architectures.items() for p in rows},
                  key=lambda p: (p.name, p.arch, p.version))


def applies(affected: Affected, package: Package) -> bool:
    """Same name, and an ecosystem whose family covers the package's version scheme."""
    if affected.name != package.name:
        return False
    schemes = ECOSYSTEMS.get(affected.ecosystem.split(":", 1)[0], frozenset())
    return schemes is None or package.scheme in schemes


def _key(text: str, scheme: str) -> OrderKey | None:
    try:
        return FullVersion.parse(text, scheme).order_key()
    except (VersionError, TypeError, ValueError):
        return None


def in_range(events: Sequence[Event], version: str, scheme: str) -> bool:
    """OSV's evaluation: walk the events in version order; an ``introduced`` at or below the version opens
    the range, a ``fixed`` at or below it (or a ``last_affected`` below it) closes it. ``introduced: "0"`` is
    the beginning of time. An event whose version does not parse in the package's scheme is ignored."""
    target = _key(version, scheme)
    if target is None:
        return False
    keyed: list[tuple[tuple[int], Event, OrderKey | None]] = []
    for e in events:
        text = e.introduced or e.fixed or e.last_affected
        if e.introduced == "0":
            keyed.append(((0,), e, None))
            continue
        key = _key(text, scheme)
        if key is not None:
            keyed.append(((1,), e, key))
    keyed.sort(key=lambda k: (k[0], k[2] or ()))
    affected = False
    for _, e, key in keyed:
        if e.introduced and (key is None or key <= target):
            affected = True
        elif (e.fixed and key is not None and key <= target) or (e.last_affected and key is not None and key < target):
            affected = False
    return affected


def affects(affected: Affected, package: Package) -> bool:
    if not applies(affected, package):
        return False
    if package.version in affected.versions:
        return True
    return any(in_range(r, package.version, package.scheme) for r in affected.ranges)


def fixed_versions(affected: Affected, package: Package) -> tuple[str, ...]:
    """The fixing versions above the package's version, lowest first."""
    here = _key(package.version, package.scheme)
    keyed = [(k, f) for f in set(affected.fixed) if (k := _key(f, package.scheme)) is not None
             and (here is None or k > here)]
    return tuple(f for _, f in sorted(keyed))


def audit(packages: Iterable[Package], advisories: Iterable[Advisory]) -> list[Finding]:
    """Every (package, advisory) pair where the advisory covers the package's version; withdrawn advisories
    are skipped. Sorted by severity (highest first), then package name, then advisory id."""
    by_name: dict[str, list[tuple[Advisory, Affected]]] = {}
    for a in advisories:
        if a.withdrawn:
            continue
        for entry in a.affected:
            by_name.setdefault(entry.name, []).append((a, entry))
    findings: dict[tuple[Package, str], Finding] = {}
    for p in packages:
        for a, entry in by_name.get(p.name, ()):
            if (p, a.id) not in findings and affects(entry, p):
                findings[(p, a.id)] = Finding(package=p, advisory=a, fixed=fixed_versions(entry, p))
    return sorted(findings.values(), key=lambda f: (-severity_rank(f.severity), f.package.name, f.package.arch,
                                                    f.advisory.id))


def at_or_above(findings: Iterable[Finding], level: str) -> list[Finding]:
    """The findings whose severity is ``level`` or higher (``unknown`` counts only when ``level`` is unknown)."""
    floor = severity_rank(level)
    return [f for f in findings if severity_rank(f.severity) >= floor]


def upgrade_fixes(name: str, scheme: str, locked: str, allowed: str, advisories: Iterable[Advisory]) -> tuple[str, ...]:
    """The ids of the advisories that cover ``locked`` and not ``allowed`` (what moving to it fixes), sorted."""
    if locked == allowed:
        return ()
    listed = list(advisories)
    before = {f.id for f in audit([Package(name=name, version=locked, scheme=scheme)], listed)}
    after = {f.id for f in audit([Package(name=name, version=allowed, scheme=scheme)], listed)}
    return tuple(sorted(before - after))
