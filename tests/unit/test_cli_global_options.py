"""Global options anywhere, -q/-v and colour (issue 15 item 4; docs/cli.md)."""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.cli import common
from composer.cli.common import GLOBAL_OPTIONS, Output, Parser, configure, wants_color
from composer.cli.main import build_parser, main, output_of
from composer.errors import EXIT_ERROR, UserError
from tests.conftest import hello_recipe

FLAGS = [f for o in GLOBAL_OPTIONS for f in o.flags]


def leaves(parser: Parser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Parser]]:
    """Every verb's parser with the words that reach it (``("pkg", "install")``)."""
    subs = [a for a in parser._actions if isinstance(a.choices, dict)]
    if not subs:
        yield path, parser
    for action in subs:
        assert isinstance(action.choices, dict)
        for name, sub in action.choices.items():
            yield from leaves(sub, (*path, name))


@pytest.fixture(autouse=True)
def plain_output() -> Iterator[None]:
    yield
    configure(Output())


def test_every_verb_takes_every_global_option_after_it() -> None:
    top = build_parser()
    assert isinstance(top, Parser)
    found = list(leaves(top))
    assert len(found) > 40, [p for p, _ in found]
    for path, parser in found:
        missing = [f for f in FLAGS if f not in parser._option_string_actions]
        assert not missing, f"vcomp {' '.join(path)} does not take {missing}"
        for flag in FLAGS:   # no default below the top: a later position never resets an earlier one
            action = parser._option_string_actions[flag]
            own = path in {("build",), ("lock",)} and flag == "--offline"   # their own --offline, same meaning
            assert own or action.default is argparse.SUPPRESS, f"vcomp {' '.join(path)} {flag}"


def minimal(parser: Parser) -> list[str]:
    """The fewest words a verb's parser accepts: each required positional and option with a value."""
    words: list[str] = []
    for a in parser._actions:
        value = str(next(iter(a.choices))) if a.choices else "1"
        if not a.option_strings and a.nargs not in ("?", "*"):
            words.append(value)
        elif a.option_strings and a.required:
            words += [a.option_strings[0], value]
    return words


def test_every_verb_parses_the_global_options_before_and_after_it() -> None:
    top = build_parser()
    assert isinstance(top, Parser)
    for path, parser in leaves(top):
        verb = [*path, *minimal(parser)]
        for argv in (["--debug", "--no-wait", "-q", "--color=never", *verb],
                     [*verb, "--debug", "--no-wait", "-q", "--color=never"]):
            args = top.parse_args(argv)
            assert (args.debug, args.no_wait, args.quiet, args.color) == (True, True, 1, "never"), argv
        assert top.parse_args([*verb, "--offline"]).offline is True
        assert top.parse_args([*verb, "-vv"]).verbose == 2


@pytest.mark.parametrize("argv", [
    ["--debug", "--no-wait", "--offline", "-q", "lock", "p.yaml"],
    ["lock", "--debug", "--no-wait", "--offline", "-q", "p.yaml"],
    ["lock", "p.yaml", "--debug", "--no-wait", "--offline", "--quiet"],
    ["--debug", "lock", "--no-wait", "p.yaml", "--offline", "-q"],
])
def test_global_options_before_or_after_the_verb_mean_the_same(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.debug, args.no_wait, args.offline, args.quiet, args.verbose) == (True, True, True, 1, 0)
    assert args.profile == ["p.yaml"]


def test_a_later_position_does_not_reset_an_earlier_one() -> None:
    args = build_parser().parse_args(["--debug", "-vv", "--color=never", "pkg", "build", "r", "--key", "k"])
    assert (args.debug, args.verbose, args.color) == (True, 2, "never")
    args = build_parser().parse_args(["pkg", "build", "r", "--key", "k", "-q", "--color", "always"])
    assert (args.debug, args.quiet, args.color) == (False, 1, "always")


@pytest.mark.parametrize("argv", [
    ["pkg", "--root", "R", "install", "nano"],
    ["pkg", "install", "--root", "R", "nano"],
    ["pkg", "install", "nano", "--root", "R"],
    ["pkg", "--root", "OTHER", "install", "--root", "R", "nano"],
])
def test_pkg_root_before_or_after_the_subverb(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.pkg_root, args.names) == ("R", ["nano"])


def test_every_root_verb_takes_root_after_it() -> None:
    top = build_parser()
    assert isinstance(top, Parser)
    # a package file, a recipe or a repository, never a root
    file_verbs = {"build", "build-all", "contents", "extract", "lint", "rebuild-check"}
    root_verbs = [path for path, _ in leaves(top) if path[0] == "pkg" and path[1] not in file_verbs]
    assert len(root_verbs) == 19, root_verbs   # update, status: A/B updates; audit: the root's advisories
    for path, parser in leaves(top):
        if path in root_verbs:
            assert parser._option_string_actions["--root"].dest == "pkg_root", path
    args = build_parser().parse_args(["pkg", "info", "nano", "--root", "R"])
    assert (args.pkg_root, args.package) == ("R", "nano")
    assert build_parser().parse_args(["pkg", "info", "x.vpk"]).pkg_root is None
    assert build_parser().parse_args(["pkg", "extract", "x.vpk", "--root", "R"]).root == "R"   # its own --root


def test_pkg_root_after_the_subverb_reaches_the_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pkg", "list", "--root", str(tmp_path / "missing")]) == EXIT_ERROR
    assert f"{tmp_path / 'missing'} is not a directory" in capsys.readouterr().err


def test_test_verbose_is_the_global_verbose() -> None:
    assert build_parser().parse_args(["test", "p.yaml", "--verbose"]).verbose == 1
    assert build_parser().parse_args(["-v", "test", "p.yaml"]).verbose == 1


# ---------------------------------------------------------------- verbosity

@pytest.mark.parametrize(("verbosity", "shown"), [
    (-1, ["data"]),
    (0, ["data", "progress", "info"]),
    (1, ["data", "progress", "info", "detail"]),
])
def test_verbosity_decides_which_lines_are_printed(verbosity: int, shown: list[str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    configure(Output(verbosity=verbosity))
    common.out("data")
    common.progress("progress")
    common.info("info")
    common.detail("detail")
    common.warn("warning: stays")
    captured = capsys.readouterr()
    assert captured.out.splitlines() == shown
    assert captured.err == "warning: stays\n"


@pytest.mark.parametrize(("quiet", "progress"), [([], True), (["-q"], False)])
def test_quiet_build_all_prints_only_the_paths(quiet: list[str], progress: bool, keydir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    hello_recipe(tmp_path / "recipes")
    argv = ["pkg", "build-all", str(tmp_path / "recipes"), "--key", str(keydir / "dev.key"),
            "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]
    assert main([*argv, *quiet]) == 0
    captured = capsys.readouterr()
    assert [Path(line).name for line in captured.out.splitlines()] == ["hello-1.2.3-x86_64.vpk"]
    assert ("1 packages for x86_64" in captured.err) is progress, captured.err
    assert (captured.err == "") is not progress


@pytest.mark.parametrize(("argv", "verbosity"), [
    (["cache", "du"], 0), (["-q", "cache", "du"], -1), (["cache", "du", "-v"], 1), (["-vv", "cache", "du"], 2),
    (["cache", "du", "-q", "-v"], 0),
])
def test_the_verbosity_of_the_options(argv: list[str], verbosity: int) -> None:
    assert output_of(build_parser().parse_args(argv)).verbosity == verbosity


# ---------------------------------------------------------------- colour

@pytest.mark.parametrize(("choice", "tty", "no_color", "wanted"), [
    ("auto", True, False, True),
    ("auto", False, False, False),      # piped
    ("auto", True, True, False),        # NO_COLOR
    ("never", True, False, False),
    ("always", False, False, True),
    ("always", True, True, True),       # an explicit option beats NO_COLOR (no-color.org)
])
def test_wants_color(choice: str, tty: bool, no_color: bool, wanted: bool) -> None:
    assert wants_color(choice, tty=tty, no_color=no_color) is wanted


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("no_color", "wanted"), [("", True), ("1", False), ("0", False)])
def test_no_color_with_any_value_turns_colour_off_on_a_terminal(no_color: str, wanted: bool,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", no_color)
    monkeypatch.setattr(sys, "stdout", _Terminal())
    monkeypatch.setattr(sys, "stderr", _Terminal())
    output = output_of(build_parser().parse_args(["cache", "du"]))
    assert (output.color_out, output.color_err) == (wanted, wanted)


def test_json_is_never_coloured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", _Terminal())
    for argv in (["cache", "du", "--json"], ["plan", "--format", "json"], ["plan", "--matrix"]):
        assert not output_of(build_parser().parse_args(["--color=always", *argv])).color_out, argv
    assert output_of(build_parser().parse_args(["--color=always", "plan"])).color_out


@pytest.mark.parametrize(("line", "painted"), [
    ("+ nano 8.3 (install)", "\x1b[32m+\x1b[0m nano 8.3 (install)"),
    ("x86_64: - vim 9.1 (was: manual)", "x86_64: \x1b[31m-\x1b[0m vim 9.1 (was: manual)"),
    ("  aarch64: ~ musl 1.2.4 -> 1.2.5", "  aarch64: \x1b[33m~\x1b[0m musl 1.2.4 -> 1.2.5"),
    ("--- a", "--- a"),
    ("+++ b", "+++ b"),
    ("lock format 1 -> 2", "lock format 1 -> 2"),
])
def test_change_markers_are_coloured_only_when_stdout_is(line: str, painted: str) -> None:
    assert common.marked(line) == line
    configure(Output(color_out=True))
    assert common.marked(line) == painted


def test_error_labels_are_coloured_never_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    configure(Output(color_err=True))
    common.err(UserError("error: in the message", hint="hint: too"))
    common.warn("warning: cache entry x")
    assert capsys.readouterr().err == ("\x1b[1;31merror:\x1b[0m error: in the message\n"
                                       "  \x1b[36mhint:\x1b[0m hint: too\n"
                                       "\x1b[1;33mwarning:\x1b[0m cache entry x\n")


def test_an_error_of_a_verb_in_colour_and_not(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "none.yaml")
    assert main(["validate", missing, "--color=always"]) == EXIT_ERROR
    assert capsys.readouterr().err.startswith("\x1b[1;31merror:\x1b[0m ")
    assert main(["validate", missing]) == EXIT_ERROR   # captured: not a terminal
    assert capsys.readouterr().err.startswith("error: ")


# ---------------------------------------------------------------- aligned columns

def test_table_aligns_columns_from_the_data() -> None:
    rows = [("a-very-long-package-name-that-stays-whole", 7, "12.5 MiB", "manual"),
            ("b", 1234, "800 B", "auto")]
    assert common.table(rows, right={2}) == [
        "a-very-long-package-name-that-stays-whole     7  12.5 MiB  manual",
        "b                                          1234     800 B  auto",
    ]


def test_table_edge_cases() -> None:
    assert common.table([]) == []
    assert common.table([("x", "")]) == ["x"]                       # no trailing blanks
    assert common.table([("a", 1), ("bb", "-")], right={1}) == ["a   1", "bb  -"]
    assert common.table([("k", 1)], gap=" ") == ["k 1"]


def test_cache_du_sizes_line_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "cache"))
    assert main(["cache", "du"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 3 and lines[-1].startswith("total ")
    ends = {line.index(" B") for line in lines}           # every size "0 B" ends in the same column
    assert len(ends) == 1, lines
