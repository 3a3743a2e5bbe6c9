"""`vcomp init [DIR]`: a new OS repository (composer/scaffold; registered by composer.cli.main)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from composer.cli.common import EXIT_OK, Subparsers
from composer.cli.common import out as _out
from composer.errors import UserError

if TYPE_CHECKING:
    from composer.scaffold.create import InitOptions


def options(args: argparse.Namespace) -> InitOptions:
    """The scaffold's options from the command line (the required upstream said clearly when missing)."""
    from composer.scaffold.create import InitOptions, buildable_arches, project_name
    missing = [o for o, v in (("--upstream URL-OR-DIR", args.upstream), ("--upstream-root ROOT.json",
                                                                           args.upstream_root)) if not v]
    if missing:
        raise UserError(f"vcomp init needs {' and '.join(missing)}: the repository the base system comes from",
                        hint="e.g. the sample repository of a vcomp checkout: make demo; then --upstream "
                             "CHECKOUT/images/repo --upstream-root CHECKOUT/profiles/trust/sample-root.json")
    directory = Path(args.dir)
    name = project_name(args.name or directory.absolute().name)
    arches = tuple(dict.fromkeys(args.arch)) if args.arch else buildable_arches()
    if not arches:
        raise UserError("no C compiler for any architecture on PATH (x86_64-linux-gnu-gcc, aarch64-linux-gnu-gcc)",
                        hint="install gcc (apt-get install gcc), or name the architectures with --arch")
    offline = Path(args.offline_keys) if args.offline_keys else Path.home() / ".config" / "vcomp" / "keys" / name
    return InitOptions(directory=directory, name=name, upstream=args.upstream, upstream_root=Path(args.upstream_root),
                       offline_keys=offline, arches=arches, force=args.force)


def cmd_init(args: argparse.Namespace) -> int:
    from composer.scaffold.create import init_project, next_commands
    opts = options(args)
    done = init_project(opts)
    _out(f"created {done.name} in {done.directory} ({len(done.files)} files, architectures "
         f"{', '.join(opts.arches)}):")
    for rel in done.files:
        if not rel.startswith("repo/"):
            _out(f"  {rel}")
    _out(f"  repo/  (the project's signed package repository: hello and {done.name}-* delegated to keys/developer)")
    _out(f"offline keys (root, targets; keep them offline, not in git): {opts.offline_keys}")
    _out(f"git: first commit {done.commit[:12]}" if done.commit else f"git: {done.git_note}")
    _out("next:")
    _out(f"  cd {args.dir}")
    commands = next_commands(opts.arches)
    width = max(len(c) for c in commands)
    for command, what in commands.items():
        _out(f"  {command:<{width}}  # {what}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    i = sub.add_parser("init", help="create an OS repository: vcomp.toml, a profile, an own package and its signed "
                                    "repository, keys, CI, git")
    i.add_argument("dir", nargs="?", default=".", help="the new project's directory (default: .; must be empty)")
    i.add_argument("--name", help="the project's name (default: the directory's name, in lower case)")
    i.add_argument("--upstream", metavar="URL-OR-DIR", help="the repository of the base system (required)")
    i.add_argument("--upstream-root", metavar="ROOT.json", help="its pinned trust root (required; copied to trust/)")
    i.add_argument("--offline-keys", metavar="DIR",
                   help="where the offline root and targets keys go (default: ~/.config/vcomp/keys/NAME)")
    i.add_argument("--arch", action="append", help="an architecture to build for (repeatable; default: those "
                                                   "with a C compiler on PATH)")
    i.add_argument("--force", action="store_true",
                   help="add the project to an existing git repository that is not empty (nothing is overwritten)")
    i.set_defaults(func=cmd_init)
