"""The ``vcomp`` command line: the only place that prints errors and picks exit codes.

This module keeps ``main()`` (top-level flags, error handling, exit codes) and the list of verb groups; each
group is a module of ``composer.cli`` whose ``register(sub)`` adds its subcommands (docs/architecture/cli.md).
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from composer import __version__, lockfile, notices, oserrors, settings
from composer.cli import advisory as advisories
from composer.cli import bump as bumps
from composer.cli import cache, common, completion, defaults, gitops, image, importer, init, key, lock, pkg, query, repo
from composer.cli import debug as debugging
from composer.cli import graph as graphs
from composer.cli import licenses as licence_verbs
from composer.cli import plugins as plugin_verbs
from composer.cli import release as releases
from composer.cli import sdk as sdk_verbs
from composer.cli import update as chunked
from composer.cli.common import EXIT_ERROR, GLOBAL_OPTIONS, Output, Parser, Subparsers, wants_color
from composer.cli.common import err as _err
from composer.cli.common import warn as _warn
from composer.errors import ComposerError
from composer.plugins import load as plugin_load

Handler = Callable[[argparse.Namespace], int]

GROUPS: tuple[Callable[[Subparsers], None], ...] = (
    init.register,     # init: a new OS repository
    key.register,      # key generate|id
    pkg.register,      # pkg build|info|verify|...; with --root the package manager (cli/pkgroot.py)
    repo.register,     # repo init|add|publish|...
    lock.register,     # validate, lock, why
    query.register,    # search, info, fetch
    image.register,    # build, boot, test
    chunked.register,  # image chunk|fetch
    gitops.register,   # plan, apply, reconcile, diff, history
    releases.register,  # release, rollback-channel
    cache.register,    # cache list|du|verify|gc
    importer.register,  # import debian
    plugin_verbs.register,  # plugins
    sdk_verbs.register,  # sdk build|shell
    debugging.register,  # debuginfod, debug core|timeline
    licence_verbs.register,  # license-report
    graphs.register,   # graph, size
    advisories.register,  # advisory delegate|add|list, audit
    bumps.register,    # bump
)
"""The verb groups, in the order ``vcomp --help`` lists them: a new group is one module and one row here."""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="vcomp", description="Veridian Composer: declarative system images")
    p.add_argument("--version", action="version", version=f"vcomp {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for register in GROUPS:
        register(sub)
    h = sub.add_parser("help", help="the help of a verb (vcomp help lock, vcomp help pkg build)")
    h.add_argument("topic", nargs="*", help="a verb, and a subverb for pkg, repo, key, cache, import")
    h.set_defaults(func=_help)
    completion.add_verb(sub, build_parser)   # needs the whole parser, as help does
    p.add_global_options(GLOBAL_OPTIONS, top=True)   # --debug -q -v --color ... before or after any verb
    return p


def _help(args: argparse.Namespace) -> int:
    """``vcomp help VERB [SUBVERB]`` is ``vcomp VERB [SUBVERB] --help`` (argparse prints it and exits 0); an
    unknown verb is a usage error with 'did you mean'."""
    build_parser().parse_args([*args.topic, "--help"])
    return 0


def output_of(args: argparse.Namespace) -> Output:
    """Verbosity and colour from the global options, NO_COLOR and the terminals (never colour in JSON)."""
    json_data = bool(getattr(args, "json", False) or getattr(args, "matrix", False)
                     or getattr(args, "format", None) == "json")
    no_color = settings.NO_COLOR.get()
    return Output(verbosity=args.verbose - args.quiet,
                  color_out=not json_data and wants_color(args.color, tty=sys.stdout.isatty(), no_color=no_color),
                  color_err=wants_color(args.color, tty=sys.stderr.isatty(), no_color=no_color))


def main(argv: Sequence[str] | None = None) -> int:
    typed = tuple(sys.argv[1:] if argv is None else argv)  # as the user typed it (recorded by root transactions)
    args = build_parser().parse_args(argv)
    args.argv = typed
    configure(args)
    return run(args)


def configure(args: argparse.Namespace) -> None:
    """The process-wide settings of the global options: output, logging, notices, lock waits, offline."""
    common.configure(output_of(args))
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(name)s: %(message)s")
    notices.use(_warn)  # library notices (lock waits, damaged cache entries) reach stderr through the CLI
    lockfile.configure(wait=not getattr(args, "no_wait", False))
    plugin_load.disable(bool(getattr(args, "no_plugins", False)))
    offline = bool(getattr(args, "offline", False))
    if offline or "composer.repo.client" in sys.modules:
        from composer.repo import client as repo_client
        repo_client.configure(offline=offline)


def run(args: argparse.Namespace) -> int:
    """The verb, and its outcome as an exit code (the table in docs/architecture/cli.md)."""
    try:
        defaults.apply(args, Path.cwd())  # vcomp.toml fills what the command line left out
        return int(args.func(args))
    except ComposerError as exc:
        if args.debug:
            raise
        _err(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:  # `vcomp info x | head`: the reader left; stop quietly like git does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:  # the machine refused: disk full, read-only, permissions; one line, not a bug
        if args.debug:
            raise
        _err(oserrors.describe(exc))
        return EXIT_ERROR
    except MemoryError:
        if args.debug:
            raise
        _err(oserrors.describe(OSError(errno.ENOMEM, "out of memory")))
        return EXIT_ERROR
    except Exception as exc:  # a bug: say so in one line, the traceback only with --debug
        if args.debug:
            raise
        common.report(f"{type(exc).__name__}: {exc}", "rerun with --debug and report it", prefix="internal error: ")
        return EXIT_ERROR
