"""The files of a ``python-project`` source: a directory of the project a recipe lives in, chosen and hashed.

A recipe of the project itself (``recipes/vpk``: the package manager packaged for devices) copies a package
directory of the project's own source. Which project: the nearest folder above the recipe that holds
``pyproject.toml``; the directory must lie inside it, and so must every symbolic link in it (confined to the
project). Bytecode caches and hidden files are never taken, so a build does not depend on what ran before.

Its provenance and its build-cache key is the git tree id of exactly the files taken (computed here, in
Python, from their bytes and modes): on a clean checkout it is ``git rev-parse HEAD:PATH``, so a package
names the source it was built from without the build reading git, and the same files give the same id.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.errors import UserError
from composer.package import globs

PROJECT_MARKER = "pyproject.toml"
SKIPPED_DIRS = frozenset({"__pycache__"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")
MAX_FILES = 20_000
MAX_BYTES = 256 * 2**20


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectFile:
    """One entry taken: its path below the source directory, what it is, and (a link) its target."""

    rel: str
    kind: str            # "file", "exec" (a file with an execute bit), "link", "dir"
    target: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectTree:
    project: Path        # the project's root (holds pyproject.toml)
    directory: Path      # the source directory inside it
    entries: tuple[ProjectFile, ...]

    @property
    def rel(self) -> str:
        return str(self.directory.relative_to(self.project))


def project_root(recipe_dir: Path) -> Path | None:
    """The nearest folder at or above ``recipe_dir`` holding ``pyproject.toml``."""
    for folder in (recipe_dir.resolve(), *recipe_dir.resolve().parents):
        if (folder / PROJECT_MARKER).is_file():
            return folder
    return None


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED_DIRS or name.endswith(SKIPPED_SUFFIXES)


def scan(recipe_dir: Path, spec: Mapping[str, Any], place: str) -> ProjectTree:
    """The entries of ``spec["path"]`` the source takes (sorted, bounded); one error naming ``place``."""
    project = project_root(recipe_dir)
    if project is None:
        raise UserError(f"{place}: the recipe is not inside a project (no {PROJECT_MARKER} above {recipe_dir})",
                        hint="python-project sources copy a directory of the project the recipe belongs to")
    directory = (project / str(spec["path"])).resolve()
    if not directory.is_relative_to(project) or not directory.is_dir():
        raise UserError(f"{place}: '{spec['path']}' is not a directory inside the project {project}",
                        hint="name a folder of the project, relative to the folder holding pyproject.toml")
    include, exclude = list(spec.get("include", ["**"])), list(spec.get("exclude", []))
    entries: list[ProjectFile] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not _skipped(d))
        base = Path(dirpath)
        for name in sorted([*dirnames, *(f for f in filenames if not _skipped(f))]):
            full = base / name
            rel = str(full.relative_to(directory))
            st = full.lstat()
            if stat.S_ISDIR(st.st_mode):
                entries.append(ProjectFile(rel=rel, kind="dir"))
                continue
            if not globs.matches(rel, include) or globs.matches(rel, exclude):
                continue
            if stat.S_ISLNK(st.st_mode):
                if not full.resolve().is_relative_to(project):
                    raise UserError(f"{place}: {full} links outside the project (to {os.readlink(full)})",
                                    hint="a python-project source takes only the project's own files")
                entries.append(ProjectFile(rel=rel, kind="link", target=os.readlink(full)))
            elif stat.S_ISREG(st.st_mode):
                total += st.st_size
                entries.append(ProjectFile(rel=rel, kind="exec" if st.st_mode & 0o111 else "file"))
            else:
                raise UserError(f"{place}: {full} is a special file", hint="remove it, or exclude it")
            if len(entries) > MAX_FILES or total > MAX_BYTES:
                raise UserError(f"{place}: '{spec['path']}' holds more than {MAX_FILES} files or "
                                f"{MAX_BYTES // 2**20} MiB", hint="name a smaller folder, or exclude its data")
    return ProjectTree(project=project, directory=directory, entries=tuple(_without_empty_dirs(entries)))


def _without_empty_dirs(entries: Sequence[ProjectFile]) -> list[ProjectFile]:
    """Directories holding nothing taken are dropped (git has no empty trees either)."""
    kept = {str(Path(e.rel).parent) for e in entries if e.kind != "dir"}
    full = {p for k in kept for p in (k, *(str(q) for q in Path(k).parents))}
    return [e for e in entries if e.kind != "dir" or e.rel in full]


# ---------------------------------------------------------------- git tree ids (pure: bytes in, id out)

GIT_MODES = {"file": b"100644", "exec": b"100755", "link": b"120000", "dir": b"40000"}


def git_object_id(kind: bytes, data: bytes) -> bytes:
    return hashlib.sha1(kind + b" " + str(len(data)).encode() + b"\0" + data, usedforsecurity=False).digest()


def git_tree_id(children: Mapping[str, tuple[str, bytes]]) -> bytes:
    """The id of a git tree of ``{name: (kind, object id)}``; git orders a directory as if named ``name/``."""
    order = sorted(children, key=lambda n: n + "/" if children[n][0] == "dir" else n)
    body = b"".join(GIT_MODES[children[n][0]] + b" " + n.encode() + b"\0" + children[n][1] for n in order)
    return git_object_id(b"tree", body)


def tree_id(tree: ProjectTree) -> str:
    """The git tree id of the entries of ``tree`` (reads the files)."""
    by_dir: dict[str, dict[str, tuple[str, bytes]]] = {}
    for e in tree.entries:
        if e.kind == "dir":
            continue
        data = e.target.encode() if e.kind == "link" else (tree.directory / e.rel).read_bytes()
        parent, _, name = e.rel.rpartition("/")
        by_dir.setdefault(parent, {})[name] = (e.kind, git_object_id(b"blob", data))
    dirs = sorted({e.rel for e in tree.entries if e.kind == "dir"}, key=lambda d: -d.count("/"))
    for d in dirs:  # deepest first: each tree's id is known before its parent's
        parent, _, name = d.rpartition("/")
        by_dir.setdefault(parent, {})[name] = ("dir", git_tree_id(by_dir.get(d, {})))
    return git_tree_id(by_dir.get("", {})).hex()
