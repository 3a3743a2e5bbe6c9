"""What every CLI module shares: stdout and the build settings from the environment (exit codes:
composer.errors, 0 no changes, 1 error, 2 changes, 3 policy violation; only the CLI chooses them)."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TypeAlias

from composer import oserrors
from composer.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_NO_CHANGES, EXIT_OK, EXIT_POLICY, ComposerError, UserError

__all__ = ["EXIT_CHANGES", "EXIT_ERROR", "EXIT_NO_CHANGES", "EXIT_OK", "EXIT_POLICY", "OFFLINE_HELP", "PLAN_EXIT",
           "Parser", "Subparsers", "epoch", "err", "image_cache", "out", "safe", "warn"]

Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"
"""What a verb group's ``register(sub)`` adds its subcommands to (``vcomp GROUP ...``)."""

OFFLINE_HELP = ("never use the network: answer from the last verified repository metadata and the package cache "
                "(a package that is not cached is an error naming it)")


PLAN_EXIT = {"no changes": EXIT_NO_CHANGES, "changes": EXIT_CHANGES, "policy violation": EXIT_POLICY}
"""The exit code of a plan's verdict (composer.gitops.plan.Plan.verdict): plan, reconcile."""


def out(text: str = "") -> None:
    line = f"{text}\n"
    try:
        sys.stdout.write(line)
    except UnicodeEncodeError:  # a name that is not valid UTF-8 (surrogate-escaped bytes): shown escaped
        encoding = sys.stdout.encoding or "utf-8"
        sys.stdout.write(line.encode(encoding, "backslashreplace").decode(encoding))
    sys.stdout.flush()


def warn(line: str) -> None:
    """A notice of library code (a wait for a lock, a damaged cache entry): one line on stderr."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def err(exc: ComposerError, prefix: str = "error: ") -> None:
    """An error as ``error: MESSAGE`` and ``  hint: HINT`` on stderr."""
    sys.stderr.write(f"{prefix}{safe(exc.message)}\n")
    if exc.hint:
        sys.stderr.write(f"  hint: {safe(exc.hint)}\n")


def safe(text: str) -> str:
    """Control characters escaped (a hostile name must not drive the terminal nor forge an ``error:`` line);
    the indented lines of an error that lists several problems are kept."""
    if text.isprintable():
        return text
    lines: list[str] = []
    for part in text.split("\n"):
        if lines and not part.startswith((" ", "\t")):
            lines[-1] += "\\n" + oserrors.printable(part)
        else:
            lines.append(oserrors.printable(part))
    return "\n".join(lines)


class Parser(argparse.ArgumentParser):
    """argparse with vcomp's error format and exit code: a usage error is an error (1), not argparse's 2, which
    vcomp reserves for "changes found" (plan, diff, lock --check, verify)."""

    def error(self, message: str) -> NoReturn:
        err(UserError(f"{self.prog}: {message}{self.suggestion(message)}", hint=f"see: {self.prog} --help"))
        sys.exit(EXIT_ERROR)

    def suggestion(self, message: str) -> str:
        """'; did you mean ...?' for a mistyped verb, choice or option (difflib over what this parser knows)."""
        choice = _INVALID_CHOICE.search(message)
        if choice is not None:
            return did_you_mean(choice["given"], _QUOTED.findall(choice["choices"]))
        unknown = _UNRECOGNIZED.search(message)
        if unknown is not None:
            words = [w for w in unknown["args"].split() if w.startswith("-")]
            return did_you_mean(words[0], sorted(self.option_strings())) if words else ""
        return ""

    def option_strings(self) -> set[str]:
        """Every option this parser and its subcommands accept."""
        found = set(self._option_string_actions)
        for action in self._actions:
            if isinstance(action.choices, dict):   # the subcommands: name -> parser (a Parser: add_subparsers)
                for sub in action.choices.values():
                    found |= sub.option_strings() if isinstance(sub, Parser) else set()
        return found


_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<given>[^']*)' \(choose from (?P<choices>.*)\)")
_QUOTED = re.compile(r"'([^']*)'")
_UNRECOGNIZED = re.compile(r"unrecognized arguments: (?P<args>.*)")


def did_you_mean(given: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(given, list(known), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def epoch() -> int:
    from composer.fsutil import source_date_epoch
    return source_date_epoch()


def image_cache() -> Path:
    from composer.package.build import default_cache
    return default_cache() / "images"
