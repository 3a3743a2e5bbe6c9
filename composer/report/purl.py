"""Package URLs (purl) of locked packages, and the Debian provenance of imported ones (pure).

Debian-imported packages (version scheme ``deb``) are ``pkg:deb/debian/NAME@VERSION?arch=DEBARCH``: the Debian
binary package they were imported from, unchanged. Native packages are
``pkg:generic/REPOSITORY/NAME@VERSION?arch=ARCH``: the repository's name as the namespace (there is no registered
purl type for vcomp repositories).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import quote

from composer.arch import ARCHES, NOARCH
from composer.solve.lockmodel import LockedPackage

SNAPSHOT = "https://snapshot.debian.org/binary"


def _enc(text: str) -> str:
    return quote(text, safe="")


def deb_arch(arch: str) -> str:
    """Our architecture name as Debian spells it (``noarch`` is ``all``)."""
    if arch == NOARCH:
        return "all"
    known = ARCHES.get(arch)
    return known.deb if known else arch


def _deb_purl(p: LockedPackage) -> str:
    return f"pkg:deb/debian/{_enc(p.name)}@{_enc(p.version)}?arch={_enc(deb_arch(p.arch))}"


def _generic_purl(p: LockedPackage) -> str:
    return f"pkg:generic/{_enc(p.repository)}/{_enc(p.name)}@{_enc(p.version)}?arch={_enc(p.arch)}"


PURLS: Mapping[str, Callable[[LockedPackage], str]] = {"deb": _deb_purl, "semver": _generic_purl}
"""Version scheme -> the purl of a locked package of that scheme (a scheme not listed is ``generic``)."""


def purl(p: LockedPackage) -> str:
    return PURLS.get(p.version_scheme, _generic_purl)(p)


def debian_origin(p: LockedPackage) -> str | None:
    """Where the Debian binary package of an imported package is archived (snapshot.debian.org), else None."""
    return f"{SNAPSHOT}/{_enc(p.name)}/" if p.version_scheme == "deb" else None
