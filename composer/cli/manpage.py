"""The manual page ``man/vcomp.1``, generated from the parser (the same words as ``--help``; pure text, no date,
so the same parser gives the same bytes: tests/unit/test_cli_completion_man.py keeps the committed page current).

Regenerate it with ``.venv/bin/python -m composer.cli.manpage > man/vcomp.1``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from composer import __version__, settings
from composer.cli.common import GLOBAL_OPTIONS, Parser
from composer.cli.common import out as _out

GLOBAL_FLAGS = frozenset(f for o in GLOBAL_OPTIONS for f in o.flags)

EXIT_STATUS = (
    ("0", "success; for a verb that compares (plan, diff, lock --check, pkg --root verify): no changes"),
    ("1", "an error (also a usage error, a failed boot test, a stale plan)"),
    ("2", "changes found (plan, diff, lock --check, reconcile, apply, pkg --root verify)"),
    ("3", "a policy violation (plan, reconcile)"),
    ("4", "plan: a profile's lock is stale (run vcomp lock)"),
    ("130", "interrupted (Ctrl-C)"),
    ("141", "the reader of the output went away (vcomp ... | head)"),
)


def roff(text: str) -> str:
    """Plain text as roff: backslashes and hyphens escaped, no line that starts a request."""
    escaped = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in escaped.split("\n"))


def option_head(action: argparse.Action) -> str:
    """``\\fB\\-q\\fR, \\fB\\-\\-quiet\\fR`` or ``\\fB\\-\\-color\\fR \\fIWHEN\\fR`` or a positional's name."""
    if not action.option_strings:
        return f"\\fI{roff(str(action.metavar or action.dest))}\\fR"
    value = "" if action.nargs == 0 else (action.metavar or
                                          ("{" + ",".join(map(str, action.choices)) + "}" if action.choices
                                           else action.dest.upper()))
    flags = ", ".join(f"\\fB{roff(f)}\\fR" for f in action.option_strings)
    return flags + (f" \\fI{roff(str(value))}\\fR" if value else "")


def synopsis(words: tuple[str, ...], parser: Parser) -> str:
    """``vcomp pkg build [options] recipe`` from the parser's arguments."""
    parts = [f"\\fB{roff(' '.join(words))}\\fR"]
    if any(a.option_strings and a.help != argparse.SUPPRESS for a in parser.own_actions()):
        parts.append("[\\fIoptions\\fR]")
    for a in parser.own_actions():
        if a.option_strings or isinstance(a.choices, dict):
            continue
        name = f"\\fI{roff(str(a.metavar or a.dest))}\\fR"
        parts.append({"?": f"[{name}]", "*": f"[{name} ...]", "+": f"{name} ..."}.get(str(a.nargs), name))
    if parser.verbs():
        parts.append("\\fIverb\\fR ...")
    return " ".join(parts)


def arguments(parser: Parser) -> list[str]:
    """``.TP`` paragraphs of a parser's own arguments (the global ones are in GLOBAL OPTIONS)."""
    lines = []
    for a in parser.own_actions():
        if a.help == argparse.SUPPRESS or isinstance(a.choices, dict) or GLOBAL_FLAGS & set(a.option_strings) \
                or a.option_strings in (["-h", "--help"], ["--version"]):
            continue
        lines += [".TP", option_head(a), roff(a.help or "")]
    return lines


def commands(parser: Parser, words: tuple[str, ...]) -> Iterator[str]:
    """``.SS`` per verb (``vcomp pkg build``), depth first, in the order ``--help`` lists them."""
    for name, help_text, sub in parser.verbs():
        path = (*words, name)
        yield f'.SS "{roff(" ".join(path))}"'
        yield synopsis(path, sub)
        yield ".PP"
        yield roff(help_text)
        yield from arguments(sub)
        yield from commands(sub, path)


def render(parser: Parser) -> str:
    lines = [f'.TH VCOMP 1 "" "vcomp {roff(__version__)}" "User Commands"',
             ".SH NAME", f"vcomp \\- {roff(parser.description or '')}",
             ".SH SYNOPSIS",
             "\\fBvcomp\\fR [\\fIglobal options\\fR] \\fIverb\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]",
             ".SH DESCRIPTION",
             "Every verb prints its help with \\fB\\-\\-help\\fR (or \\fBvcomp help\\fR \\fIverb\\fR). "
             "The global options are taken before or after the verb.",
             ".SH GLOBAL OPTIONS"]
    lines += [x for o in GLOBAL_OPTIONS for x in (".TP", option_head(parser.option(o.flags[-1])), roff(o.help))]
    lines += [".SH COMMANDS", *commands(parser, ("vcomp",)), ".SH ENVIRONMENT"]
    lines += [x for s in settings.ROWS for x in (".TP", f"\\fB{roff(s.shown_name)}\\fR",
                                                  roff(f"{s.meaning} (default: {s.default})"))]
    lines += [".SH EXIT STATUS", *(x for code, text in EXIT_STATUS for x in (".TP", f"\\fB{code}\\fR", roff(text)))]
    lines += [".SH SEE ALSO", "docs/cli.md, docs/architecture/cli.md in the Veridian Composer sources"]
    return "\n".join(lines) + "\n"


def main() -> None:
    from composer.cli.main import build_parser
    parser = build_parser()
    assert isinstance(parser, Parser)
    _out(render(parser).rstrip("\n"))


if __name__ == "__main__":
    main()
