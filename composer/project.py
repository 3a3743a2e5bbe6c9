"""``vcomp.toml``: the project configuration at an OS repository's root (docs/project-config.md).

Found upward from the working directory (like Cargo.toml or mkosi.conf): the first ``vcomp.toml`` in the
directory or one of its parents, stopping after the filesystem root or after the directory that holds ``.git``
(a project never reaches outside its repository). It holds defaults only; the CLI applies them where the
command line left a gap (an option given always wins). Every relative path in it is relative to the file.

:func:`parse` is pure (text in, :class:`Project` out, every error at once with file:line:column and a
did-you-mean for a mistyped key); :func:`find` and :func:`load` are the I/O edges.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer import schema, tomlpos
from composer.errors import UserError, combine
from composer.limits import load_toml

FILENAME = "vcomp.toml"
SCHEMA = "project.schema.json"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_TOML_PLACE = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectRepository:
    """A repository of the project: search, info and fetch use it when --repo/--root are not given."""

    name: str
    url: str     # a URL as written, or an absolute directory (a relative one is resolved against vcomp.toml)
    root: Path   # the pinned trust root, absolute


@dataclass(frozen=True, slots=True, kw_only=True)
class Project:
    """The defaults of one ``vcomp.toml`` (paths absolute; None: not configured)."""

    path: Path
    profile: Path | None = None
    images: Path | None = None
    cache: Path | None = None
    repositories: tuple[ProjectRepository, ...] = ()

    @property
    def directory(self) -> Path:
        return self.path.parent

    def repository(self, name: str) -> ProjectRepository | None:
        return next((r for r in self.repositories if r.name == name), None)


def find(start: Path) -> Path | None:
    """The ``vcomp.toml`` that applies in ``start``: in it or the nearest parent, not above a git work tree's
    top (the directory holding ``.git``) nor the filesystem root; None when there is none."""
    here = start.absolute()
    for directory in (here, *here.parents):
        candidate = directory / FILENAME
        if candidate.is_file():
            return candidate
        if (directory / ".git").exists():
            return None
    return None


def load(path: Path) -> Project:
    """Read and parse ``path`` (a missing or unreadable file is a UserError naming it)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such project configuration",
                        hint="give an existing vcomp.toml (--config FILE, VCOMP_CONFIG) or run: vcomp init") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read it: {exc.strerror}",
                        hint="check the path and its permissions") from None
    return parse(data, path.absolute())


def parse(data: bytes | str, path: Path) -> Project:
    """The :class:`Project` of the text of ``path`` (pure: ``path`` only names the file and anchors relative
    paths); every error at once, each with ``file:line:column``."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    raw = _toml(data, path)
    schema.check(raw, SCHEMA, origin=str(path), locate=lambda p: tomlpos.locate(text, p))
    _check_names(raw, text, path)
    base = path.parent
    project = raw.get("project", {})
    return Project(
        path=path,
        profile=_under(base, project.get("profile")),
        images=_under(base, project.get("images")),
        cache=_under(base, project.get("cache")),
        repositories=tuple(ProjectRepository(name=r["name"], url=repository_url(base, r["url"]),
                                             root=base / r["root"]) for r in raw.get("repositories", [])))


def repository_url(base: Path, url: str) -> str:
    """A URL as written; a directory made absolute against ``base`` (the directory of vcomp.toml)."""
    return url if _URL.match(url) else str(base / url)


def _under(base: Path, value: str | None) -> Path | None:
    return None if value is None else base / value


def _toml(data: bytes | str, path: Path) -> dict[str, Any]:
    try:
        return load_toml(data, str(path))
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text", hint="vcomp.toml is TOML in UTF-8: save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        place = _TOML_PLACE.search(str(exc))
        where = f"{path}:{place[1]}:{place[2]}" if place else f"{path}:1:1"
        reason = _TOML_PLACE.sub("", str(exc)).strip()
        raise UserError(f"{where}: invalid TOML: {reason}", hint="fix the TOML syntax at that place") from None


def _check_names(raw: dict[str, Any], text: str, path: Path) -> None:
    """Each repository name once (search --repo NAME picks one)."""
    seen: set[str] = set()
    errors: list[UserError] = []
    repositories: Sequence[dict[str, Any]] = raw.get("repositories", [])
    for i, r in enumerate(repositories):
        if r["name"] in seen:
            line, col = tomlpos.locate(text, ["repositories", i, "name"])
            errors.append(UserError(f"{path}:{line}:{col}: $.repositories[{i}].name: '{r['name']}' is used twice",
                                    hint="give every repository its own name"))
        seen.add(r["name"])
    if errors:
        raise combine(errors, summary=f"{path}: {len(errors)} errors")
