"""Paths inside a root that vcomp itself owns: no package may ship them.

``var/lib/vpk`` holds the root's package database, journal, history, repository list and pinned trust
roots; ``etc/veridian`` holds what the profile decides (granted capabilities, module order, boot checks).
A package that shipped either could rewrite the root's trust or grant itself capabilities, so a path
equal to or below one of these (or a directory above them, which a package may share but not replace
by a non-directory) is refused at build, lint, ``repo add``, extraction and install.
"""

from __future__ import annotations

RESERVED: tuple[str, ...] = ("var/lib/vpk", "etc/veridian")
RESERVED_HINT = ("these paths belong to vcomp itself (package database, trust roots, profile settings); "
                 "remove them from the package and let the profile set them")


def reserved_prefix(path: str) -> str | None:
    """The reserved directory ``path`` (relative, normalised, no leading '/') falls in, or None."""
    clean = path.strip("/")
    for prefix in RESERVED:
        if clean == prefix or clean.startswith(prefix + "/"):
            return prefix
    return None


def is_ancestor_of_reserved(path: str) -> bool:
    """True for ``var``, ``var/lib``, ``etc``: directories a package may ship, but only as directories."""
    clean = path.strip("/")
    return any(prefix.startswith(clean + "/") for prefix in RESERVED)
