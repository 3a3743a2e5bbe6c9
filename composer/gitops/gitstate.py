"""Previous desired states from git (gitpython): a profile and its lock at a base commit.

The default base is HEAD when the working tree changes a planned profile or lock, else HEAD's parent (a
clean tree plans what the last commit did; a commit of other files plans as no changes). ``@built`` is the
commit of the profile's last generation actually built.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import git

from composer.errors import UserError
from composer.gitops.plan import State
from composer.limits import load_json
from composer.profile.load import profile_of
from composer.profile.model import Profile
from composer.solve.lockmodel import Lock


@dataclass(frozen=True, slots=True, kw_only=True)
class Base:
    ref: str
    commit: str | None  # None: nothing to compare with (the profile is new)


class GitState:
    def __init__(self, start: Path) -> None:
        try:
            self.repo = git.Repo(start, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise UserError(f"{start} is not inside a git repository",
                            hint="plans compare with git history: run it in the repository of the profiles") from None
        if self.repo.working_tree_dir is None:
            raise UserError(f"{start}: a bare git repository has no profiles to plan")
        self.root = Path(self.repo.working_tree_dir).resolve()

    def rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            raise UserError(f"{path} is outside the git repository {self.root}") from None

    def head(self) -> str | None:
        try:
            return self.repo.head.commit.hexsha
        except ValueError:  # no commit yet
            return None

    def resolve(self, ref: str) -> str:
        try:
            return self.repo.commit(ref).hexsha
        except (git.BadName, ValueError, git.GitCommandError):
            raise UserError(f"base ref '{ref}' does not exist in {self.root}",
                            hint="use a commit, branch or tag that exists (git log), or omit --base") from None

    def read(self, commit: str | None, rel: str) -> bytes | None:
        if commit is None:
            return None
        try:
            blob = self.repo.commit(commit).tree / rel
        except KeyError:
            return None
        data: bytes = blob.data_stream.read()
        return data

    def worktree(self, rel: str) -> bytes | None:
        path = self.root / rel
        return path.read_bytes() if path.is_file() else None

    def default_base(self, rels: list[str]) -> Base:
        """HEAD when the working tree changes any of ``rels``; else HEAD's parent: the plan shows what the last
        commit did to the profiles (nothing, when it touched only other files: a commit of the repository or the
        docs re-shows no older profile change). None when HEAD has no parent: everything is new."""
        head = self.head()
        if head is None:
            return Base(ref="(no commits)", commit=None)
        if any(self.worktree(r) != self.read(head, r) for r in rels):
            return Base(ref="HEAD (the working tree changes the profiles)", commit=head)
        parents = self.repo.commit(head).parents
        if not parents:
            return Base(ref="(none before the first commit)", commit=None)
        touched = any(self.read(parents[0].hexsha, r) != self.read(head, r) for r in rels)
        why = "the last commit" if touched else "the last commit, which does not change the profiles"
        return Base(ref=f"HEAD^ ({why})", commit=parents[0].hexsha)

    def commit_time(self, commit: str) -> int:
        return int(self.repo.commit(commit).committed_date)


def state_of(profile: bytes | None, lock: bytes | None, origin: str, path: Path) -> State:
    """One side of a plan: the profile's bytes (of ``path``, maybe at a commit: ``origin`` names it in errors)
    validated as ``vcomp validate`` does, but for the files it names (those of that commit are not on disk),
    and its lock, read as ``vcomp build`` reads it."""
    model: Profile | None = None
    if profile is not None:
        model = profile_of(profile, path, origin=origin, files=False)
    doc: Lock | None = None
    if lock is not None:
        try:
            data = load_json(lock, origin)
        except ValueError as exc:
            raise UserError(f"{origin}: its lock is not JSON ({exc})", hint="relock: vcomp lock PROFILE") from None
        doc = Lock.from_dict(data, origin.replace(path.name, path.with_suffix(".lock").name, 1))
    return State(profile=model, lock=doc, profile_digest=hashlib.sha256(profile).hexdigest() if profile else "",
                 lock_digest=hashlib.sha256(lock).hexdigest() if lock else "")
