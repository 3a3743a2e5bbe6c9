"""The one check for a path handed to the confined layer or read from a root's state files.

A root-relative path is a non-empty string of ``/``-separated names: no leading ``/``, no empty, ``.``
or ``..`` component, no NUL, no backslash, valid UTF-8, each name at most NAME_MAX bytes and the whole at
most PATH_MAX bytes. Such a path can only name something inside the directory it is resolved from.
"""

from __future__ import annotations

from composer.reserved import is_ancestor_of_reserved, reserved_prefix

NAME_MAX = 255
PATH_MAX = 4095
# Inside the reserved etc/veridian, the one drop-in directory packages may add to: boot checks (the init
# package ships etc/veridian/checks.d/10-rootfs). Everything else there and under var/lib/vpk is vcomp's.
DROP_IN = "etc/veridian/checks.d"


def path_problem(path: object) -> str | None:
    """Why ``path`` is not a relative, normalised path inside a root, or None when it is."""
    if not isinstance(path, str):
        return f"is a {type(path).__name__}, not a string"
    if not path:
        return "is empty"
    if "\x00" in path:
        return "contains a NUL byte"
    if "\\" in path:
        return "contains a backslash"
    if path.startswith("/"):
        return "is absolute"
    parts = path.split("/")
    if "" in parts:
        return "has an empty component"
    if ".." in parts:
        return "has a '..' component"
    if "." in parts:
        return "has a '.' component"
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if len(encoded) > PATH_MAX:
        return f"is too long (over {PATH_MAX} bytes)"
    if any(len(p.encode()) > NAME_MAX for p in parts):
        return f"is too long (a name over {NAME_MAX} bytes)"
    return None


def show(path: object) -> str:
    """``path`` quoted for a message, control characters escaped."""
    text = path if isinstance(path, str) else repr(path)
    return "'" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in text) + "'"


def split(path: str) -> tuple[str, ...]:
    return tuple(path.split("/"))


def reserved_problem(path: str, kind: str) -> str | None:
    """Why a package may not ship ``path`` (a ``kind`` entry): it belongs to vcomp (``composer.reserved``)."""
    if path.startswith(DROP_IN + "/") and "/" not in path[len(DROP_IN) + 1:] and kind in ("file", "symlink"):
        return None
    if kind == "dir" and (path == DROP_IN or DROP_IN.startswith(path + "/")):
        return None
    prefix = reserved_prefix(path)
    if prefix:
        return f"is at or below /{prefix}, which belongs to vcomp (database, trust roots, profile settings)"
    if kind != "dir" and is_ancestor_of_reserved(path):
        return f"is a {kind} where vcomp needs the directory /{path}"
    return None
