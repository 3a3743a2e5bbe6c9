"""`vcomp completion bash|zsh|fish|tcsh`: a shell completion script generated from the parser (shtab; static, no
runtime hook: the script knows every verb and option, and completes file names where a verb takes a path).

Install lines: docs/cli.md (added by composer.cli.main after the verb groups, like ``help``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from composer.cli.common import EXIT_OK, Parser, Subparsers
from composer.cli.common import out as _out

SHELLS = ("bash", "zsh", "fish", "tcsh")


def script(parser: Parser, shell: str) -> str:
    """The completion script of ``parser`` for ``shell`` (deterministic: the same parser, the same bytes)."""
    import shtab
    for action in parser.actions_below():
        if getattr(action, "complete", None) is None:
            path = shtab.DIRECTORY if action.metavar == "DIR" else shtab.FILE
            if action.choices is None and action.nargs != 0 and (not action.option_strings or action.metavar):
                action.complete = path  # type: ignore[attr-defined]  # shtab reads this attribute
    text: str = shtab.complete(parser, shell=shell)
    return text


def add_verb(sub: Subparsers, whole: Callable[[], argparse.ArgumentParser]) -> None:
    """``vcomp completion SHELL``; ``whole`` builds the complete parser (main.build_parser: passed in, not
    imported, so this module does not import main back)."""
    def cmd_completion(args: argparse.Namespace) -> int:
        parser = whole()
        assert isinstance(parser, Parser)
        _out(script(parser, args.shell).rstrip("\n"))
        return EXIT_OK

    c = sub.add_parser("completion", help="print a shell completion script (bash, zsh, fish, tcsh; see docs/cli.md)")
    c.add_argument("shell", choices=SHELLS)
    c.set_defaults(func=cmd_completion)
