"""Paths inside a root that vcomp itself owns: no package may ship them.

``var/lib/vpk`` holds the root's package database, journal, history, repository list and pinned trust
roots; ``etc/veridian`` holds what the profile decides (granted capabilities, capability policy, module
order). A package that shipped those could rewrite the root's trust or grant itself capabilities, so a
path equal to or below one of these is refused at build, lint, ``repo add``, extraction and install.

``etc/veridian/checks.d`` (boot checks: executables init runs at boot) is open to packages as well as
the profile: the sample ``init`` package ships its own ``10-rootfs`` check there, and a boot check can
do nothing a package's other files could not.

The directories above a reserved path (``var``, ``var/lib``, ``etc``) and the reserved directories
that hold an open one (``etc/veridian``, ``etc/veridian/checks.d``) may be shipped, but only as
directories: a symlink or file there would redirect or hide vcomp's own paths.
"""

from __future__ import annotations

RESERVED: tuple[str, ...] = ("var/lib/vpk", "etc/veridian")
# Directories below a reserved one that packages may fill (they may not replace the directory itself).
SHARED: tuple[str, ...] = ("etc/veridian/checks.d",)
RESERVED_HINT = ("these paths belong to vcomp itself (package database, trust roots, profile settings); "
                 "remove them from the package and let the profile set them")


def _below(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path.startswith(p + "/") for p in prefixes)


def _above(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(p.startswith(path + "/") for p in prefixes)


def reserved_prefix(path: str) -> str | None:
    """The reserved directory ``path`` (relative, normalised, no leading '/') falls in, or None."""
    clean = path.strip("/")
    if clean in SHARED or _below(clean, SHARED) or _above(clean, SHARED):
        return None
    for prefix in RESERVED:
        if clean == prefix or clean.startswith(prefix + "/"):
            return prefix
    return None


def is_ancestor_of_reserved(path: str) -> bool:
    """True for ``var``, ``var/lib``, ``etc``, ``etc/veridian``, ``etc/veridian/checks.d``: paths a
    package may ship, but only as directories."""
    clean = path.strip("/")
    return _above(clean, RESERVED) or clean in SHARED or _above(clean, SHARED)
