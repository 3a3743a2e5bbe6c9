"""What every CLI module shares: stdout and stderr (with the verbosity and colour of the global options), the
parser, aligned tables and the build settings from the environment (exit codes: composer.errors, 0 no changes,
1 error, 2 changes, 3 policy violation; only the CLI chooses them).

Output kinds (docs/cli.md): ``out`` the data a verb prints (always); ``progress``/``info`` what happens and
notes (silenced by ``-q``); ``detail`` more (shown with ``-v``); ``warn``/``err`` stderr (always)."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeAlias

from composer import oserrors
from composer.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_NO_CHANGES, EXIT_OK, EXIT_POLICY, ComposerError, UserError

__all__ = ["COLOR_CHOICES", "EXIT_CHANGES", "EXIT_ERROR", "EXIT_NO_CHANGES", "EXIT_OK", "EXIT_POLICY",
           "GLOBAL_OPTIONS", "OFFLINE_HELP", "PLAN_EXIT", "GlobalOption", "Output", "Parser", "Subparsers",
           "configure", "current", "detail", "epoch", "err", "image_cache", "info", "marked", "out", "progress",
           "report", "safe", "say_hint", "table", "wants_color", "warn"]

Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"
"""What a verb group's ``register(sub)`` adds its subcommands to (``vcomp GROUP ...``)."""
Options: TypeAlias = "argparse._ActionsContainer"
"""A parser or an argument group of one: what ``add_argument`` is called on."""

OFFLINE_HELP = ("never use the network: answer from the last verified repository metadata and the package cache "
                "(a package that is not cached is an error naming it)")


PLAN_EXIT = {"no changes": EXIT_NO_CHANGES, "changes": EXIT_CHANGES, "policy violation": EXIT_POLICY}
"""The exit code of a plan's verdict (composer.gitops.plan.Plan.verdict): plan, reconcile."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    """How the CLI writes, set once by ``main()`` from the global options (``-q``/``-v``, ``--color``)."""

    verbosity: int = 0       # -q: below 0 (progress and notes silenced); -v: 1 and up (more progress)
    color_out: bool = False  # change markers (+ ~ -) on stdout are coloured
    color_err: bool = False  # error:, warning:, hint: on stderr are coloured


_OUTPUT = [Output()]   # the one current setting (a list: set by configure, read by everything here)

COLOR_CHOICES = ("auto", "always", "never")
ANSI = {"+": "32", "~": "33", "-": "31", "error:": "1;31", "warning:": "1;33", "hint:": "36"}
"""Plain SGR codes (no rich here: the bytes of an uncoloured line stay exactly what they were)."""


def configure(output: Output) -> None:
    _OUTPUT[0] = output


def current() -> Output:
    return _OUTPUT[0]


def wants_color(choice: str, *, tty: bool, no_color: bool) -> bool:
    """``--color``: ``always`` and ``never`` as said; ``auto`` only on a terminal and without NO_COLOR (an
    explicit ``--color=always`` beats NO_COLOR, as no-color.org asks of command-line options) (pure)."""
    return choice == "always" or (choice == "auto" and tty and not no_color)


def paint(text: str, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m"


_MARKER = re.compile(r"^(?P<lead>\s*(?:[\w.-]+: )?)(?P<mark>[+~-])(?= )")


def marked(line: str) -> str:
    """A change line (``+ nano 8.3``, ``x86_64: - vim 9.1``) with its marker coloured when stdout is."""
    if not current().color_out:
        return line
    return _MARKER.sub(lambda m: m["lead"] + paint(m["mark"], ANSI[m["mark"]]), line, count=1)


_LABEL = re.compile(r"\b(error|warning|hint):")
_LEADING_LABEL = re.compile(r"^\s*(error|warning|hint):")


def labelled(prefix: str) -> str:
    """``error:``, ``warning:``, ``hint:`` in a stderr prefix coloured when stderr is (never the message)."""
    if not current().color_err:
        return prefix
    return _LABEL.sub(lambda m: paint(m[0], ANSI[m[0]]), prefix)


def progress(text: str = "") -> None:
    """What is happening now (a build step, a boot line): silenced by ``-q``."""
    if current().verbosity >= 0:
        out(text)


def info(text: str = "") -> None:
    """A note that is not the data the verb prints (where a log went): silenced by ``-q``."""
    if current().verbosity >= 0:
        out(text)


def detail(text: str = "") -> None:
    """More progress, shown with ``-v``."""
    if current().verbosity >= 1:
        out(text)


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
    head = _LEADING_LABEL.match(line)
    sys.stderr.write((labelled(head[0]) + line[head.end():] if head else line) + "\n")
    sys.stderr.flush()


def err(exc: ComposerError, prefix: str = "error: ") -> None:
    """An error as ``error: MESSAGE`` and ``  hint: HINT`` on stderr."""
    report(exc.message, exc.hint, prefix=prefix)


def report(message: str, hint: str | None = None, *, prefix: str = "error: ") -> None:
    """``PREFIX MESSAGE`` and ``  hint: HINT`` on stderr (the labels coloured when stderr is)."""
    sys.stderr.write(f"{labelled(prefix)}{safe(message)}\n")
    if hint:
        say_hint(hint)


def say_hint(text: str) -> None:
    """``  hint: TEXT`` on stderr."""
    sys.stderr.write(f"  {labelled('hint:')} {safe(text)}\n")


Cell: TypeAlias = "str | int"


def table(rows: Sequence[Sequence[Cell]], *, right: Collection[int] = (), gap: str = "  ") -> list[str]:
    """Rows as aligned lines (pure): each column as wide as its widest cell, numbers (``int`` cells, and the
    columns in ``right``, e.g. sizes written ``1.5 MiB``) right-aligned, nothing truncated, the last column
    not padded."""
    text = [[str(c) for c in r] for r in rows]
    columns = max((len(r) for r in text), default=0)
    widths = [max((len(r[i]) for r in text if i < len(r)), default=0) for i in range(columns)]
    numeric = set(right) | {i for i in range(columns) if all(isinstance(r[i], int) for r in rows if i < len(r))}
    lines = []
    for r in text:
        cells = [c.rjust(widths[i]) if i in numeric else c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append(gap.join(cells).rstrip())
    return lines


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


@dataclass(frozen=True, slots=True, kw_only=True)
class GlobalOption:
    """An option every verb takes, before or after the verb (``vcomp --debug lock`` = ``vcomp lock --debug``)."""

    flags: tuple[str, ...]
    help: str
    default: bool | int | str | None = False
    action: str = "store_true"
    choices: tuple[str, ...] = ()
    metavar: str | None = None

    def add(self, group: Options, *, top: bool) -> None:
        """On the top parser with its default; below it with none (SUPPRESS), so a later position does not
        reset what an earlier one said."""
        default = self.default if top else argparse.SUPPRESS
        if self.action == "store":   # an option with a value: its metavar, and its choices when it has some
            group.add_argument(*self.flags, action=self.action, help=self.help, default=default,
                               choices=self.choices or None, metavar=self.metavar)
        else:
            group.add_argument(*self.flags, action=self.action, help=self.help, default=default)


GLOBAL_OPTIONS = (
    GlobalOption(flags=("--debug",), help="log commands and show tracebacks"),
    GlobalOption(flags=("--no-wait",),
                 help="fail at once when another vcomp process holds a lock (default: wait, saying for whom)"),
    GlobalOption(flags=("--offline",), help=OFFLINE_HELP),
    GlobalOption(flags=("--no-plugins",),
                 help="load no plugin (output types, source kinds, transports, policy gates from other "
                      "distributions; also VCOMP_NO_PLUGINS=1; docs/plugins.md)"),
    GlobalOption(flags=("-q", "--quiet"), action="count", default=0,
                 help="print only the data and errors: no progress nor notes"),
    GlobalOption(flags=("-v", "--verbose"), action="count", default=0,
                 help="more progress (vcomp test: each boot's expected lines, failures and init's markers)"),
    GlobalOption(flags=("--color",), action="store", default="auto", choices=COLOR_CHOICES, metavar="WHEN",
                 help="colour change markers and error labels: auto (on a terminal, unless NO_COLOR is set), "
                      "always, never"),
    GlobalOption(flags=("--config",), action="store", default=None, metavar="FILE",
                 help="the project configuration (default: VCOMP_CONFIG, else the vcomp.toml of this directory "
                      "or its nearest parent; docs/project-config.md)"),
)
"""The global options, in the order ``vcomp --help`` lists them (docs/cli.md)."""


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

    def add_global_options(self, options: Sequence[GlobalOption], *, top: bool = False) -> None:
        """The global options here and on every subcommand below (a verb's own option of the same name, such as
        ``build --offline``, stays: it means the same)."""
        group = self.add_argument_group("global options (before or after the verb)")
        for option in options:
            if not any(f in self._option_string_actions for f in option.flags):
                option.add(group, top=top)
        for sub in self.subcommands():
            sub.add_global_options(options)

    def subcommands(self) -> list[Parser]:
        """The parsers of this parser's subcommands, each once."""
        found: dict[int, Parser] = {}
        for action in self._actions:
            if isinstance(action.choices, dict):   # the subcommands: name -> parser (a Parser: add_subparsers)
                found.update((id(p), p) for p in action.choices.values() if isinstance(p, Parser))
        return list(found.values())

    def own_actions(self) -> list[argparse.Action]:
        """This parser's arguments, in the order they were added."""
        return list(self._actions)

    def option(self, flag: str) -> argparse.Action:
        """The argument of an option string (``--color``)."""
        return self._option_string_actions[flag]

    def verbs(self) -> list[tuple[str, str, Parser]]:
        """(name, help, parser) of each subcommand, in the order ``--help`` lists them."""
        found = []
        for action in self._actions:
            if isinstance(action.choices, dict):
                helps = {str(c.dest): str(c.help or "") for c in getattr(action, "_choices_actions", ())}
                found += [(n, helps.get(n, ""), p) for n, p in action.choices.items() if isinstance(p, Parser)]
        return found

    def actions_below(self) -> list[argparse.Action]:
        """Every argument of this parser and of its subcommands (completion and the man page walk them)."""
        found = list(self._actions)
        for sub in self.subcommands():
            found += sub.actions_below()
        return found

    def option_strings(self) -> set[str]:
        """Every option this parser and its subcommands accept."""
        found = set(self._option_string_actions)
        for sub in self.subcommands():
            found |= sub.option_strings()
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
