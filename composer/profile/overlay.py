"""Where a profile may take files from: inside the git work tree that holds it, and what its overlay holds.

A profile names two host paths: each repository's pinned ``root`` and the overlay directory ``files``.
Both must lie inside the *boundary*: the git work tree that holds the profile (the nearest directory
upwards with a ``.git`` entry), or, when the profile is not in a work tree, the profile's own
directory. Absolute paths, ``..`` that climbs out and symlinks whose target is outside are refused.

The overlay's digest covers the tree walked without following any symlink: every entry's relative
path, type, permission bits, and a file's contents or a link's target. It is part of the profile digest
recorded in the lock, so changing, adding or re-linking an overlay file makes the lock stale.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from composer.errors import UserError


def work_tree(base: Path) -> Path:
    """The boundary for paths named by a profile in ``base``: its git work tree, else ``base`` itself."""
    here = Path(os.path.realpath(base))
    for d in (here, *here.parents):
        if os.path.lexists(d / ".git"):
            return d
    return here


def confined(boundary: Path, base: Path, rel: str) -> tuple[Path, str]:
    """``base / rel`` resolved, and why it is refused ('' when it lies inside ``boundary``)."""
    if rel.startswith("/") or Path(rel).is_absolute():
        return Path(rel), "is an absolute path (host paths are not allowed)"
    lexical = Path(os.path.normpath(Path(os.path.realpath(base)) / rel))
    if not lexical.is_relative_to(boundary):
        return lexical, f"leads outside {boundary} ('..')"
    real = Path(os.path.realpath(lexical))
    if not real.is_relative_to(boundary):
        return real, f"passes through a symlink that leads outside {boundary} (to {real})"
    return real, ""


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


_KINDS = ((stat.S_ISDIR, "dir"), (stat.S_ISREG, "file"), (stat.S_ISLNK, "symlink"))


def overlay_digest(top: Path) -> str:
    """sha256 over the overlay tree (no symlink followed): path, type, mode, contents or link target."""
    h = hashlib.sha256(b"vcomp-overlay-1\0")
    todo = [""]
    while todo:
        rel = todo.pop()
        with os.scandir(top / rel if rel else top) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            path = f"{rel}/{e.name}" if rel else e.name
            st = e.stat(follow_symlinks=False)
            kind = next((k for test, k in _KINDS if test(st.st_mode)), None)
            if kind is None:
                raise UserError(f"overlay {top}: {path} is a device, fifo or socket",
                                hint="an overlay holds only directories, regular files and symlinks")
            if kind == "dir":
                body = b""
                todo.append(path)
            elif kind == "symlink":
                body = os.readlink(e.path).encode()
            else:
                with open(e.path, "rb", opener=_nofollow) as f:  # streamed: an overlay file may be large
                    body = hashlib.file_digest(f, "sha256").digest()
            h.update(f"{path}\0{kind}\0{stat.S_IMODE(st.st_mode):o}\0{len(body)}\0".encode() + body)
    return h.hexdigest()
