"""The project's defaults (vcomp.toml, composer/project.py) applied to a parsed command line.

An option or argument given on the command line always wins; a default fills only a gap. Which verb takes
which default is a table here (no if/elif on verb names). A verb whose profile is required and that neither
the command line nor the project gives one is the same usage error as before the project configuration.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from composer import project as project_config
from composer import settings
from composer.errors import UserError


def _profiles_given(args: argparse.Namespace) -> bool:
    return bool(args.profile)


def _lock_profiles_given(args: argparse.Namespace) -> bool:
    from composer.cli.lock import split_update
    return bool(split_update(args.update or (), args.profile)[1])


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileSlot:
    """Where a verb takes its profile: one (``build PROFILE``) or a list (``lock PROFILE...``)."""

    many: bool
    required: bool = False
    given: Callable[[argparse.Namespace], bool] = _profiles_given


PROFILE_SLOTS: dict[str, ProfileSlot] = {
    "validate": ProfileSlot(many=True, required=True),
    "lock": ProfileSlot(many=True, given=_lock_profiles_given),
    "outdated": ProfileSlot(many=True),
    "build": ProfileSlot(many=False, required=True),
    "test": ProfileSlot(many=False, required=True),
    "plan": ProfileSlot(many=True),
    "reconcile": ProfileSlot(many=True),
}
"""The verbs whose PROFILE defaults to ``[project] profile``."""

IMAGES_VERBS = frozenset({"build", "test", "plan", "apply", "reconcile", "diff", "history"})
"""The verbs whose ``--images`` defaults to ``[project] images``."""

REPOSITORY_VERBS = frozenset({"search", "info", "fetch", "debuginfod"})
"""The verbs whose ``--repo``/``--root`` default to the project's repositories (``--repo NAME`` picks one)."""

UNCONFIGURED = frozenset({"init", "help"})
"""The verbs that never read a vcomp.toml (init writes one; a broken one must not stop help)."""


def config_path(args: argparse.Namespace, cwd: Path) -> Path | None:
    """``--config FILE``, else VCOMP_CONFIG, else the vcomp.toml found upward from ``cwd``."""
    given = getattr(args, "config", None)
    if given:
        return Path(given)
    return settings.CONFIG.get() or project_config.find(cwd)


def apply(args: argparse.Namespace, cwd: Path) -> project_config.Project | None:
    """Fill the gaps of ``args`` from the project configuration (None: there is none); the usage error of a
    required profile that is still missing."""
    verb = str(getattr(args, "command", ""))
    if verb in UNCONFIGURED:
        return None
    path = config_path(args, cwd)
    found = project_config.load(path) if path is not None else None
    settings.use_project_cache(found.cache if found else None)
    if found is not None:
        _fill(args, verb, found, cwd)
    slot = PROFILE_SLOTS.get(verb)
    if slot is not None and slot.required and not slot.given(args):
        raise _usage(verb, "profile")
    if verb in REPOSITORY_VERBS:
        _repository(args, verb, found)
    return found


def _fill(args: argparse.Namespace, verb: str, found: project_config.Project, cwd: Path) -> None:
    slot = PROFILE_SLOTS.get(verb)
    if slot is not None and found.profile is not None and not slot.given(args):
        shown = shown_path(found.profile, cwd)
        args.profile = [shown] if slot.many else shown
    if verb in IMAGES_VERBS and found.images is not None and getattr(args, "images", None) is None:
        args.images = shown_path(found.images, cwd)


@dataclass(frozen=True, slots=True, kw_only=True)
class Known:
    """A repository search/info/fetch can use: one of vcomp.toml, or of a profile."""

    name: str
    url: str
    root: str
    mirrors: tuple[str, ...] = ()


def known_repositories(args: argparse.Namespace, found: project_config.Project | None) -> list[Known]:
    """vcomp.toml's repositories; when it names none, those of ``--profile P`` (default: ``[project]
    profile``)."""
    if found is not None and found.repositories:
        return [Known(name=r.name, url=r.url, root=str(r.root)) for r in found.repositories]
    path = getattr(args, "profile", None) or (found.profile if found is not None else None)
    if not path:
        return []
    from composer.profile.load import load_profile
    return [Known(name=r.name, url=r.url, root=str(r.root), mirrors=r.mirrors)
            for r in load_profile(Path(path)).repositories]


def _repository(args: argparse.Namespace, verb: str, found: project_config.Project | None) -> None:
    """``--repo URL --root ROOT`` as given; ``--repo NAME`` (a known name) or no ``--repo`` (the first known
    repository) take the URL, the root and the mirrors from vcomp.toml or the profile."""
    known = known_repositories(args, found) if not (args.repo and args.root) else []
    chosen = next((k for k in known if k.name == args.repo), None) if args.repo else next(iter(known), None)
    if chosen is not None:
        args.repo = chosen.url
        args.root = args.root or chosen.root
        args.mirror = args.mirror or list(chosen.mirrors)
    if chosen is None and known and args.repo and not args.root:
        from composer.cli.common import did_you_mean
        names = [k.name for k in known]
        raise UserError(f"vcomp {verb}: no repository named '{args.repo}'{did_you_mean(args.repo, names)}",
                        hint=f"known: {', '.join(names)}; or give a URL or directory with --repo and its --root")
    missing = [option for option, value in (("--repo", args.repo), ("--root", args.root)) if not value]
    if missing:
        raise _usage(verb, ", ".join(missing))


def _usage(verb: str, missing: str) -> UserError:
    """argparse's own line for a missing argument (``vcomp build: the following arguments are required: ...``)."""
    return UserError(f"vcomp {verb}: the following arguments are required: {missing}",
                     hint=f"see: vcomp {verb} --help (or set it in vcomp.toml: docs/project-config.md)")


def shown_path(path: Path, cwd: Path) -> str:
    """``path`` relative to ``cwd`` when it is under it (messages name it as a user would type it)."""
    here = cwd.absolute()
    return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)
