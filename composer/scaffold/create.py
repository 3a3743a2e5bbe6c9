"""``vcomp init DIR``: a working OS repository in one step (cargo new, terraform init).

What it makes (docs/tutorial.md walks through it):

- ``vcomp.toml`` (the project's defaults), ``profiles/NAME.yaml`` (upstream base set + the own package, with a
  boot test of its output line) and ``schemas/profile.schema.json`` for the editor;
- ``recipes/hello/``: a C program built by the host compiler for each architecture;
- keys: the developer key and the repository's online keys in ``keys/`` (``*.key`` gitignored); the OFFLINE root
  and targets keys outside the tree (``offline_keys``);
- ``repo/``: the project's own TUF repository, its names (``hello``, ``NAME-*``) delegated to the developer key,
  published empty; its root and the upstream root pinned in ``trust/``;
- ``.gitignore``, ``.github/workflows/vcomp.yml``, ``README.md``; ``git init`` and a first commit.

:func:`render` is pure (the text files); :func:`init_project` does the I/O and refuses, before writing anything,
a non-empty directory (unless ``force`` for an existing git repository, where nothing is overwritten).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from composer import schema
from composer.arch import DEFAULT_ARCHES, get_arch
from composer.errors import UserError
from composer.fsutil import atomic_write
from composer.scaffold import templates

ONLINE_ROLES = ("index", "snapshot", "timestamp")
OFFLINE_ROLES = ("root", "targets")
DEVELOPER = "developer"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True, slots=True, kw_only=True)
class InitOptions:
    directory: Path
    name: str                 # sanitized (see :func:`project_name`)
    upstream: str             # the upstream repository: a URL, or a directory
    upstream_root: Path       # its trust root, copied into trust/upstream-root.json
    offline_keys: Path        # where the offline root and targets keys go (outside the tree)
    arches: tuple[str, ...]
    force: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Created:
    directory: Path
    name: str
    files: tuple[str, ...]           # every file written, relative to the directory, sorted
    offline_keys: tuple[Path, ...]
    commit: str | None               # the first commit, or None (then ``git_note`` says why)
    git_note: str = ""


def project_name(text: str) -> str:
    """A profile, repository and host name from a directory name: lower case, [a-z0-9-], starting with a letter
    or digit ("My OS!" -> "my-os"); "myos" when nothing is left."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:40].rstrip("-") or "myos"


def buildable_arches(which: Callable[[str], str | None] = shutil.which) -> tuple[str, ...]:
    """The architectures whose C compiler (``<triple>-gcc``) is on PATH: the recipe builds for each."""
    return tuple(a for a in DEFAULT_ARCHES if which(get_arch(a).cross_gcc))


def upstream_paths(upstream: str, directory: Path) -> tuple[str, str]:
    """(as vcomp.toml writes it, as the profile writes it): a URL as given; a directory relative to the project
    (and to profiles/) when it is inside the project, else absolute."""
    if _URL.match(upstream):
        return upstream, upstream
    where = Path(upstream).absolute()
    top = directory.absolute()
    if where.is_relative_to(top):
        return os.path.relpath(where, top), os.path.relpath(where, top / "profiles")
    return str(where), str(where)


def render(*, name: str, arches: Sequence[str], upstream_toml: str, upstream_yaml: str,
           offline: str) -> dict[str, str]:
    """The text files of a new project, by relative path (pure)."""
    values = {"name": name, "offline": offline, "upstream_toml": json.dumps(upstream_toml),
              "upstream_yaml": json.dumps(upstream_yaml), "arches": ", ".join(arches),
              "commands": "\n".join(next_commands(arches))}
    quoted = {**values, "arches": ", ".join(json.dumps(a) for a in arches)}
    return {
        "vcomp.toml": templates.VCOMP_TOML.substitute(values),
        f"profiles/{name}.yaml": templates.PROFILE.substitute(values),
        "recipes/hello/recipe.toml": templates.RECIPE.substitute(quoted),
        "recipes/hello/src/hello.c": templates.HELLO_C.substitute(values),
        ".gitignore": templates.GITIGNORE.substitute(values),
        ".github/workflows/vcomp.yml": templates.WORKFLOW.substitute(values),
        "README.md": templates.README.substitute(values),
        "schemas/profile.schema.json": json.dumps(schema.load("profile.schema.json"), indent=2) + "\n",
    }


def check_target(directory: Path, planned: Sequence[str], *, force: bool) -> None:
    """Refuse, before anything is written, a directory that is not empty (``force``: an existing git repository
    whose files init would not overwrite)."""
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} exists and is not a directory", hint="pick a new directory name")
    present = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    others = [p for p in present if p != ".git"]
    if not others:
        return
    shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
    if not force:
        raise UserError(f"{directory} is not empty ({shown})",
                        hint="pick a new directory, or add --force to add a project to an existing git repository "
                             "(nothing is overwritten)")
    if ".git" not in present:
        raise UserError(f"{directory} is not empty ({shown}) and not a git repository",
                        hint="--force only adds a project to an existing git repository; pick a new directory")
    clash = [p for p in planned if (directory / p).exists()]
    if clash:
        raise UserError(f"{directory} already has {', '.join(clash)}", hint="init never overwrites: move them away")


def planned_files(name: str) -> list[str]:
    """Every path init writes (besides the text files: keys, the repository, the trust roots)."""
    return ["vcomp.toml", f"profiles/{name}.yaml", "recipes", "repo", "trust", "keys", ".gitignore", "README.md",
            ".github/workflows/vcomp.yml", "schemas/profile.schema.json"]


def init_project(options: InitOptions) -> Created:
    """Make the project described by ``options`` (see the module's docstring)."""
    from composer.repo.client import load_trusted_root
    top = options.directory
    check_target(top, planned_files(options.name), force=options.force)
    offline = [options.offline_keys / f"{role}.key" for role in OFFLINE_ROLES]
    taken = [str(p) for p in offline if p.exists()]
    if taken:
        raise UserError(f"offline keys already exist: {', '.join(taken)}",
                        hint="pass --offline-keys with a new directory (or move the old keys away)")
    load_trusted_root(options.upstream_root)  # a trust root that does not load is refused before anything
    upstream_toml, upstream_yaml = upstream_paths(options.upstream, top)
    files = render(name=options.name, arches=options.arches, upstream_toml=upstream_toml,
                   upstream_yaml=upstream_yaml, offline=str(options.offline_keys))
    for rel, text in files.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(top / rel, text.encode())
    (top / "trust").mkdir(exist_ok=True)
    shutil.copyfile(options.upstream_root, top / "trust" / "upstream-root.json")
    make_repository(top, options)
    commit, note = commit_all(top, f"vcomp init {options.name}")
    written = sorted(p.relative_to(top).as_posix() for p in top.rglob("*")
                     if p.is_file() and ".git" not in p.relative_to(top).parts)
    return Created(directory=top, name=options.name, files=tuple(written), offline_keys=tuple(offline),
                   commit=commit, git_note=note)


def make_repository(top: Path, options: InitOptions) -> None:
    """The keys, repo/ (init, the project's names delegated to the developer key, published) and its root in
    trust/."""
    from composer.repo.edit import delegate, init
    from composer.repo.publishing import publish
    from composer.repo.store import RepoStore, config_key_path
    from composer.trust.keys import generate, load_signing_key
    keys = top / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    options.offline_keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    made = {role: generate(role, keys)[0] for role in (DEVELOPER, *ONLINE_ROLES)}
    made |= {role: generate(role, options.offline_keys)[0] for role in OFFLINE_ROLES}
    signer = {role: load_signing_key(path) for role, path in made.items()}
    repo = top / "repo"
    root = init(repo, root_keys=[signer["root"]], root_threshold=1, targets_keys=[signer["targets"]],
                online={role: [signer[role]] for role in ONLINE_ROLES},
                online_paths={role: [config_key_path(repo, str(made[role]))] for role in ONLINE_ROLES},
                architectures=list(options.arches))
    store = RepoStore(repo)
    delegate(store, DEVELOPER, [signer[DEVELOPER].public], ["hello", f"{options.name}-*"],
             targets_keys=[signer["targets"]])
    publish(store)
    shutil.copyfile(root, top / "trust" / f"{options.name}-root.json")


def commit_all(top: Path, message: str) -> tuple[str | None, str]:
    """``git init`` (unless it is one) and a first commit of everything .gitignore lets in; (commit, "") or
    (None, why not)."""
    try:
        import git
    except ImportError:  # gitpython without a git program
        return None, "git is not installed: run 'git init' and commit the files yourself"
    existing = (top / ".git").exists()
    repo = git.Repo(top) if existing else git.Repo.init(top, initial_branch="main")
    if existing and repo.head.is_valid():
        return None, "the git repository already has commits: review the new files and commit them"
    repo.git.add(A=True)
    return repo.index.commit(message).hexsha, ""


def next_commands(arches: Sequence[str]) -> Mapping[str, str]:
    """The commands that build, publish and boot the new project (said by init, written in its README)."""
    builds = {f"vcomp pkg build-all recipes --arch {a} --key keys/developer.key --out out/packages":
              f"build the project's packages for {a}" for a in arches}
    return {
        **builds,
        "vcomp repo add repo out/packages/*.vpk --key keys/developer.key": "sign them into repo/",
        "vcomp repo publish repo": "publish the repository",
        "vcomp lock": "resolve the profile into its lock",
        "vcomp test": "build the image and boot-test it in QEMU (--arch A: one architecture)",
    }
