"""What the repositories serve that is newer than a lock (``vcomp outdated``, ``vcomp lock --check``).

Pure: takes the lock, a fresh resolution of its profile (the newest versions the profile's requirements and
repository policy allow) and the versions served per architecture; :func:`composer.solve.relock.outdated`
opens the repositories. Like ``cargo outdated``: *allowed* is what ``vcomp lock --update NAME PROFILE``
moves to; a *newest* above it needs a change of the profile's requirement first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from composer.solve.lock import version_change
from composer.solve.lockmodel import Lock

Served = Mapping[str, Mapping[str, Sequence[tuple[str, str]]]]  # arch -> name -> (version text, scheme) served


@dataclass(frozen=True, slots=True, kw_only=True)
class OutdatedPackage:
    """One locked package the repositories serve a newer version of."""

    arch: str
    name: str
    locked: str
    allowed: str    # the newest version the profile allows (``locked`` when it allows nothing newer)
    newest: str     # the newest version served at all
    fixes: tuple[str, ...] = ()   # advisories covering ``locked`` and not ``allowed``: what the upgrade fixes

    @property
    def upgradable(self) -> bool:
        """``vcomp lock --update NAME`` moves it (else only a change of the profile's requirement does)."""
        return self.allowed != self.locked

    def to_dict(self, profile: str) -> dict[str, object]:
        return {"arch": self.arch, "name": self.name, "locked": self.locked, "allowed": self.allowed,
                "newest": self.newest, "upgradable": self.upgradable, "fixes": list(self.fixes),
                "command": upgrade_command([self.name], profile) if self.upgradable else None}


def upgrade_command(names: Iterable[str], profile: str) -> str:
    return f"vcomp lock --update {' '.join(sorted(dict.fromkeys(names)))} {profile}"


def _newer(a: str, b: str, scheme: str, b_scheme: str) -> bool:
    """``b`` is newer than ``a``."""
    return version_change(a, b, b_scheme, scheme) == "upgrade"


def outdated_packages(lock: Lock, fresh: Lock, served: Served) -> list[OutdatedPackage]:
    """Every locked row (by architecture, then name) with a newer version allowed or served."""
    out = []
    for arch in sorted(lock.architectures):
        for p in sorted(lock.architectures[arch], key=lambda r: r.name):
            newest, newest_scheme = p.version, p.version_scheme
            for version, scheme in served.get(arch, {}).get(p.name, ()):
                if _newer(newest, version, newest_scheme, scheme):
                    newest, newest_scheme = version, scheme
            now = fresh.package(arch, p.name)
            allowed = now.version if now is not None and _newer(p.version, now.version, p.version_scheme,
                                                                   now.version_scheme) else p.version
            if newest != p.version or allowed != p.version:
                out.append(OutdatedPackage(arch=arch, name=p.name, locked=p.version, allowed=allowed,
                                           newest=newest if newest != p.version else allowed))
    return out
