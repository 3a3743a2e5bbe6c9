"""The edge of the ``python`` source kind: find a project's ``pyproject.toml`` and build its wheel, offline.

The wheel is built by ``pip wheel --no-deps --no-build-isolation --no-index`` with the composer's own interpreter,
confined (no network, writes only to its scratch copy), with ``SOURCE_DATE_EPOCH``; the build backend the project
names must be installed there (setuptools is: pyproject.toml). Dependencies are not fetched: a recipe requires the
Debian ``python3-*`` packages the program imports. What the wheel holds is checked and laid out by the pure
:mod:`composer.package.wheel`.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.errors import ComposerError, ToolError, UserError
from composer.limits import load_toml
from composer.run import confine, run

PROJECT_FILE = "pyproject.toml"
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"     # what pip uses when [build-system] names none
MAX_FILES = 20_000
MAX_BYTES = 256 * 2**20
MAX_WHEEL = 256 * 2**20
_BACKEND = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*){0,15}(?::[A-Za-z_][A-Za-z0-9_.]{0,127})?$")
_SKIP = shutil.ignore_patterns(".*", "__pycache__", "*.pyc", "build", "dist", "*.egg-info", "recipe.toml")
# does the interpreter have the backend's module? (argv[1]: the module)
_FIND = "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Project:
    directory: Path
    name: str
    backend: str


def find_project(recipe_dir: Path, spec: Any, place: str) -> Project:
    """The project a source names (``path``, default the recipe's folder): inside the recipe's folder, with a
    pyproject.toml (bounded) naming the project and, optionally, its build backend."""
    rel = str(spec.get("path", "."))
    directory = (recipe_dir / rel).resolve()
    if not directory.is_relative_to(recipe_dir.resolve()) or not (directory / PROJECT_FILE).is_file():
        raise UserError(f"{place}: '{rel}' is not a folder inside the recipe holding {PROJECT_FILE}",
                        hint="path names the Python project's folder, relative to recipe.toml")
    origin = str(directory / PROJECT_FILE)
    try:
        doc = load_toml((directory / PROJECT_FILE).read_bytes(), origin)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{origin}: not valid TOML: {exc}", hint="fix pyproject.toml") from None
    except ComposerError as exc:
        raise UserError(f"{origin}: {exc.message}", hint=exc.hint) from None
    project, system = doc.get("project"), doc.get("build-system", {})
    name = project.get("name") if isinstance(project, dict) else None
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?", name):
        raise UserError(f"{origin}: [project] name is missing or not 1-128 of A-Z a-z 0-9 . _ -",
                        hint="the python source kind builds projects with PEP 621 metadata ([project] name, version)")
    backend = system.get("build-backend", LEGACY_BACKEND) if isinstance(system, dict) else LEGACY_BACKEND
    if not isinstance(backend, str) or not _BACKEND.match(backend):
        raise UserError(f"{origin}: [build-system] build-backend {str(backend)[:80]!r} is not module[:object]",
                        hint='e.g. build-backend = "setuptools.build_meta"')
    if isinstance(system, dict) and "backend-path" in system:
        raise UserError(f"{origin}: [build-system] backend-path (an in-tree backend) is not supported",
                        hint="use an installed backend such as setuptools.build_meta")
    return Project(directory=directory, name=name, backend=backend)


def _copy(project: Project, work: Path, place: str) -> None:
    """The project without build leftovers, bounded (a build never writes into the recipe's folder)."""
    count = total = 0
    for dirpath, dirnames, filenames in os.walk(project.directory):
        count += len(filenames)
        total += sum((Path(dirpath) / f).lstat().st_size for f in filenames)
        for name in (*dirnames, *filenames):
            entry = Path(dirpath) / name
            if entry.is_symlink() and not entry.resolve().is_relative_to(project.directory):
                raise UserError(f"{place}: {entry} links outside the project (to {os.readlink(entry)})",
                                hint="a python source builds only the project's own files: copy what it needs")
        if count > MAX_FILES or total > MAX_BYTES:
            raise UserError(f"{place}: the project holds more than {MAX_FILES} files or {MAX_BYTES // 2**20} MiB",
                            hint="point path at the project's folder only")
    shutil.copytree(project.directory, work, symlinks=True, ignore=_SKIP)


def build_wheel(project: Project, *, scratch: Path, epoch: int, place: str, timeout: float = 1800,
                python: str = sys.executable) -> tuple[str, bytes]:
    """The wheel of ``project`` (its file name and bytes), built offline and confined."""
    module = project.backend.partition(":")[0]
    if run([python, "-c", _FIND, module], check=False).returncode != 0:
        raise ToolError(f"{place}: the build backend {module} is not installed for {python}",
                        hint=f"install it into the composer's environment ({python} -m pip install "
                             f"{module.split('.')[0]}), or build with setuptools.build_meta")
    work, out, home = scratch / "python-src", scratch / "python-wheel", scratch / "python-home"
    _copy(project, work, place)
    out.mkdir()
    home.mkdir()
    env = {"PATH": f"{Path(python).parent}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "TZ": "UTC", "SOURCE_DATE_EPOCH": str(epoch), "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
           "PIP_NO_INDEX": "1", "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "TMPDIR": "/tmp"}
    env_root = Path(python).absolute().parent.parent   # the interpreter's environment: a venv below /tmp is
    seen = [env_root] if env_root.is_relative_to("/tmp") else []   # hidden by the sandbox's fresh /tmp otherwise
    argv = confine([python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "--wheel-dir", str(out), "."], cwd=work, writable=[work, out, home], readable=seen)
    result = run(argv, cwd=work, env=env, clean_env=True, timeout=timeout, umask=0o022, check=False)
    if result.returncode != 0:
        tail = (result.stderr + result.stdout).decode(errors="replace").strip().splitlines()[-12:]
        raise ToolError(f"{place}: building the wheel of {project.name} failed (exit {result.returncode}):\n    "
                        + "\n    ".join(tail),
                        hint="builds are offline: dependencies are Debian python3-* packages in [relations] "
                             "requires, not build requirements fetched from PyPI")
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise ToolError(f"{place}: pip made {len(wheels)} wheels for {project.name}", hint="build it by hand to see")
    if wheels[0].stat().st_size > MAX_WHEEL:
        raise UserError(f"{place}: the wheel is larger than {MAX_WHEEL // 2**20} MiB", hint="leave data out of it")
    return wheels[0].name, wheels[0].read_bytes()
