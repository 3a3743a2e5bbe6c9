"""The git commit of the work tree a profile lives in, for the provenance (I/O at the edge: git through
composer.run). Nothing when the profile is not in a git work tree or git is not installed."""

from __future__ import annotations

import shutil
from pathlib import Path

from composer.run import run


def profile_source(profile: Path) -> dict[str, object] | None:
    """A SLSA resource descriptor of the profile's repository: ``git+REMOTE`` (or ``git+file:`` when it has no
    ``origin``), the commit, the profile's path in the tree and whether the tree had changes."""
    if shutil.which("git") is None:
        return None
    where = profile.resolve().parent

    def git(*args: str) -> str | None:
        r = run(["git", "-C", str(where), *args], check=False)
        return r.stdout.decode(errors="replace").strip() if r.returncode == 0 else None

    commit = git("rev-parse", "--verify", "HEAD")
    top = git("rev-parse", "--show-toplevel")
    if not commit or not top:
        return None
    remote = git("remote", "get-url", "origin")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"name": "profile-repository", "uri": f"git+{remote}" if remote else "git+file:",
            "digest": {"gitCommit": commit},
            "annotations": {"path": profile.resolve().relative_to(Path(top).resolve()).as_posix(), "dirty": dirty}}
