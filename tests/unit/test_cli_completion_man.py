"""Shell completion (``vcomp completion``, shtab) and the man page (``man/vcomp.1``), both generated from the
parser (issue 15 item 4; docs/cli.md)."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from composer.cli.common import Parser
from composer.cli.completion import SHELLS, script
from composer.cli.main import build_parser, main
from composer.cli.manpage import render

ROOT = Path(__file__).resolve().parents[2]
MAN_PAGE = ROOT / "man" / "vcomp.1"
REGENERATE = ".venv/bin/python -m composer.cli.manpage > man/vcomp.1"


def parser() -> Parser:
    p = build_parser()
    assert isinstance(p, Parser)
    return p


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "vcomp.bash"
    path.write_text(script(parser(), "bash"))
    return path


def complete(bash_script: Path, *words: str, cwd: Path = ROOT) -> list[str]:
    """What bash offers for the last of ``words`` (``vcomp lo`` -> ``lock``), with the generated script."""
    line = " ".join(("vcomp", *words))
    program = (f"source {bash_script}\nCOMP_WORDS=({line})\nCOMP_CWORD={len(words)}\n"
               f"COMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n_shtab_vcomp\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True,
                          cwd=cwd, check=True, timeout=60)
    return sorted(w for w in done.stdout.splitlines() if w)


def test_bash_registers_the_completion(bash_script: Path) -> None:
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", f"source {bash_script} && complete -p vcomp"],
                          capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "complete -o bashdefault -F _shtab_vcomp vcomp"


@pytest.mark.parametrize(("words", "wanted"), [
    (("lo",), ["lock"]),
    (("re",), ["reconcile", "release", "repo"]),
    (("pkg", "ins"), ["install"]),
    (("cache", "d"), ["du"]),
    (("lock", "--de"), ["--debug"]),                # a global option after the verb
    (("--no-w",), ["--no-wait"]),                   # and before it
    (("--color", "al"), ["always"]),
    (("completion", "f"), ["fish"]),
])
def test_bash_completes_verbs_and_options(bash_script: Path, words: tuple[str, ...], wanted: list[str]) -> None:
    assert complete(bash_script, *words) == wanted


def test_bash_completes_a_profile_path(bash_script: Path, tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "server.yaml").write_text("")
    assert complete(bash_script, "lock", "profiles/s", cwd=tmp_path) == ["profiles/server.yaml"]


@pytest.mark.parametrize(("shell", "options"), [
    ("bash", ["--debug", "--color"]), ("zsh", ["--debug", "--color"]), ("fish", ["-l debug", "-l color"]),
    ("tcsh", []),   # shtab's tcsh script completes verbs only
])
def test_every_shell_gets_a_script_that_knows_the_verbs(shell: str, options: list[str]) -> None:
    assert shell in SHELLS
    text = script(parser(), shell)
    assert text == script(parser(), shell)       # deterministic
    for word in ("lock", "reconcile", "install", *options):
        assert word in text, (shell, word)


def test_the_completion_verb_prints_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == 0
    assert "complete -o bashdefault -F _shtab_vcomp vcomp" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["completion", "csh"])
    assert info.value.code == 1 and "invalid choice: 'csh'" in capsys.readouterr().err


# ---------------------------------------------------------------- the man page

def test_the_committed_man_page_is_the_generated_one() -> None:
    assert MAN_PAGE.read_text() == render(parser()), f"man/vcomp.1 is stale: regenerate it with {REGENERATE}"


def test_the_man_page_documents_every_verb_and_global_option() -> None:
    text = render(parser())
    for heading in ('.SS "vcomp pkg install"', '.SS "vcomp lock"', '.SS "vcomp completion"', ".SH EXIT STATUS",
                    ".SH ENVIRONMENT", "\\fBNO_COLOR\\fR", "\\fB\\-q\\fR, \\fB\\-\\-quiet\\fR"):
        assert heading in text, heading


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_groff_renders_the_man_page_without_warnings() -> None:
    done = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", str(MAN_PAGE)], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_man_shows_the_page() -> None:
    done = subprocess.run(["man", "--warnings", "-l", str(MAN_PAGE)], capture_output=True, text=True, timeout=60,
                          env={"MANWIDTH": "100", "MANPAGER": "cat", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "vcomp - Veridian Composer" in done.stdout


def test_pip_installs_the_man_page() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["tool"]["setuptools"]["data-files"]["share/man/man1"] == ["man/vcomp.1"]
    assert "shtab" in " ".join(config["project"]["dependencies"])
