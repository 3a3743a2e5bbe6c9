"""``vcomp bump PROFILE``: relock to the newest versions the profile allows and commit the new lock on a new git
branch whose commit message is the plan (Renovate-style: push the branch, open a pull request, CI plans it).

The I/O edge (git through gitpython, the relock, the plan); the message is :func:`message` (pure). The working
tree must be clean (tracked files), the branch must not exist, and the checkout is left on the branch it was on:
only the new branch holds the change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import git

from composer.errors import UserError
from composer.gitops.plan import Plan


@dataclass(frozen=True, slots=True, kw_only=True)
class Bumped:
    profile: str
    branch: str                 # "" when nothing moved (no branch made)
    commit: str
    changes: tuple[str, ...]    # the relock's change lines
    plan: Plan | None


def default_branch(profile: Path) -> str:
    return f"vcomp/bump-{profile.stem}"


def message(profile: str, changes: Sequence[str], plan_text: str) -> str:
    """The commit message: a title, the lock's changes, then the plan (pure)."""
    title = f"{profile}: bump {len(changes)} package{'s' if len(changes) != 1 else ''} (vcomp bump)"
    return "\n".join([title, "", *changes, "", plan_text.rstrip("\n"), ""])


def bump(profile: Path, branch: str | None) -> Bumped:
    """Relock ``profile`` with every package at the newest allowed version, on a new branch; commit; go back."""
    from composer.advisory.audit import FeedProbe
    from composer.gitops import render as renderer
    from composer.gitops.workspace import Workspace, make_plan
    from composer.solve.relock import relock
    try:
        repo = git.Repo(profile.resolve().parent, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UserError(f"{profile} is not in a git repository",
                        hint="vcomp bump commits on a new branch: run it in the repository of the profile") from None
    if repo.is_dirty(untracked_files=False):
        changed = sorted({str(d.a_path) for d in (*repo.index.diff(None), *repo.index.diff("HEAD"))})
        raise UserError(f"{repo.working_tree_dir}: the working tree has changes ({', '.join(changed[:5])})",
                        hint="commit or stash them first: vcomp bump commits only the new lock on a new branch")
    name = branch or default_branch(profile)
    if name in repo.heads:
        raise UserError(f"branch '{name}' already exists", hint=f"delete it (git branch -D {name}) or pass --branch")
    try:
        original: str = repo.active_branch.name
    except TypeError:
        original = repo.head.commit.hexsha   # a detached HEAD: go back to the commit
    lock = profile.with_suffix(".lock")
    repo.git.checkout("-b", name)
    try:
        done = relock(profile, upgrade=True)
        if not done.changes:
            repo.git.checkout(original)
            repo.delete_head(name, force=True)
            return Bumped(profile=str(profile), branch="", commit="", changes=(), plan=None)
        ws = Workspace.open(profile.resolve().parent, None)
        plan = make_plan(ws, [profile], None, advisories=FeedProbe())
        text = message(ws.git.rel(profile), done.changes, renderer.table(plan))
        repo.index.add([str(lock.resolve())])
        commit = repo.index.commit(text)
    except BaseException:
        repo.git.checkout("--force", original)
        repo.delete_head(name, force=True)
        raise
    repo.git.checkout(original)
    return Bumped(profile=str(profile), branch=name, commit=commit.hexsha, changes=tuple(done.changes), plan=plan)
