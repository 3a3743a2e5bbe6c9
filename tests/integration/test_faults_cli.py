"""The CLI's own contract for faults: usage errors are errors (exit 1, one line + hint, never argparse's 2, which
means "changes found"), ``--no-wait`` reaches the locks, and the documented exit codes are the ones used."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from composer import errors, lockfile, oserrors
from composer.cli.main import main
from composer.trust.keys import generate
from tests.conftest import REPO


def _vcomp(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "composer", *argv], capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)


@pytest.mark.parametrize(("argv", "line"), [
    (("pkg", "build"), "error: vcomp pkg build: the following arguments are required: recipe, --key"),
    (("frobnicate",), "error: vcomp: argument command: invalid choice: 'frobnicate'"),
    (("pkg", "--root", "/r", "rollback", "abc"), "error: vcomp pkg rollback: argument id: invalid int value: 'abc'"),
    (("plan", "--format", "yaml"), "error: vcomp plan: argument --format: invalid choice: 'yaml'"),
])
def test_a_usage_error_is_one_line_and_exit_1(argv: tuple[str, ...], line: str) -> None:
    r = _vcomp(*argv)
    assert r.returncode == errors.EXIT_ERROR, r.stderr
    first, hint = r.stderr.splitlines()
    assert first.startswith(line)
    assert hint.startswith("  hint: see: vcomp") and hint.endswith(" --help")
    assert r.stdout == ""


def test_help_and_version_still_exit_0() -> None:
    assert _vcomp("--help").returncode == 0
    r = _vcomp("--version")
    assert r.returncode == 0 and r.stdout.startswith("vcomp ")


def test_no_wait_reaches_the_locks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate("k", tmp_path)
    try:
        assert main(["--no-wait", "key", "id", str(tmp_path / "k.pub")]) == 0
        assert not lockfile.waiting_allowed()
        assert main(["key", "id", str(tmp_path / "k.pub")]) == 0
        assert lockfile.waiting_allowed()
    finally:
        lockfile.configure(wait=True)


def test_an_os_fault_is_one_line_through_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An OSError escaping a command (here: the output directory is a file) is the registry's line, exit 1."""
    (tmp_path / "keys").write_text("a file")
    assert main(["key", "generate", "k", "--dir", str(tmp_path / "keys")]) == errors.EXIT_ERROR
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith(f"error: {tmp_path / 'keys'}")
    assert "[ENOTDIR]" in err[0] or "[EEXIST]" in err[0]
    assert err[1].startswith("  hint: ")


def test_the_exit_codes_are_the_documented_ones() -> None:
    assert (errors.EXIT_OK, errors.EXIT_ERROR, errors.EXIT_CHANGES, errors.EXIT_POLICY) == (0, 1, 2, 3)
    doc = (REPO / "docs" / "reliability" / "faults.md").read_text()
    for code, meaning in ((0, "success"), (1, "error"), (2, "changes"), (3, "policy"), (130, "interrupted"),
                          (141, "pipe")):
        assert any(line.startswith(f"| {code} ") and meaning in line.lower() for line in doc.splitlines()), code


def errno_table() -> str:
    """The errno table of docs/reliability/faults.md, as the registry says it."""
    rows = ["| errno | what the line says | hint (what to do) |", "|---|---|---|"]
    rows += [f"| {errno.errorcode[n]} | {a.what} | {a.hint} |" for n, a in oserrors.ADVICE.items()]
    return "\n".join(rows)


def test_the_doc_lists_exactly_the_registry() -> None:
    doc = (REPO / "docs" / "reliability" / "faults.md").read_text()
    begin, end = "<!-- errno-table:begin -->\n", "\n<!-- errno-table:end -->"
    documented = doc[doc.index(begin) + len(begin):doc.index(end)]
    assert documented == errno_table(), f"paste this into docs/reliability/faults.md:\n{errno_table()}"


def test_an_error_cannot_drive_the_terminal(tmp_path: Path) -> None:
    """A file name with an escape sequence and a line break, in a message another module built."""
    hostile = tmp_path / "evil\x1b[2J\nerror: forged"
    r = _vcomp("pkg", "info", str(hostile))
    assert r.returncode == errors.EXIT_ERROR
    assert "\x1b" not in r.stderr
    assert [line for line in r.stderr.splitlines() if line.startswith("error: ")] == \
           [r.stderr.splitlines()[0]]


def test_a_name_that_is_not_utf8_is_printed_escaped(tmp_path: Path) -> None:
    """stdout in strict UTF-8 (PYTHONIOENCODING): a directory named with a byte that is not UTF-8 is printed
    escaped, not an internal error."""
    where = os.fsencode(tmp_path) + b"/keys-\xff"
    r = subprocess.run([sys.executable, "-m", "composer", "key", "generate", "k", "--dir", os.fsdecode(where)],
                       check=False, capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "utf-8:strict"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == os.fsencode(tmp_path) + b"/keys-\\udcff/k.key"
    assert os.path.exists(where + b"/k.key")
