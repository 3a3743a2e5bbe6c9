"""Every environment input is a row of composer/settings.py (issue 13).

No module but settings.py reads the process environment (run.py may hand it on to child processes); each
row's parser gives the error line its row documents; docs/architecture/settings.md shows the rows.
Regenerate the doc's table with ``.venv/bin/python -m tests.unit.test_settings``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from composer import settings
from composer.caches import ops
from composer.errors import UserError
from tests.conftest import REPO

COMPOSER = REPO / "composer"
DOC = REPO / "docs" / "architecture" / "settings.md"
BEGIN, END = "<!-- settings table: generated -->\n", "<!-- end of the generated table -->\n"
ALLOWED = {"composer/settings.py", "composer/run.py"}   # run.py: the environment of child processes
ENV_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _environment_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in ENV_NAMES and \
                isinstance(node.value, ast.Name) and node.value.id in ("os", "posix"):
            found.append(f"{node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "posix"):
            found += [f"{node.lineno}: from os import {a.name}" for a in node.names if a.name in ENV_NAMES]
    return found


def test_only_settings_reads_the_environment() -> None:
    offenders = {rel: reads for p in sorted(COMPOSER.rglob("*.py"))
                 if (rel := p.relative_to(REPO).as_posix()) not in ALLOWED and (reads := _environment_reads(p))}
    assert offenders == {}, "ask composer/settings.py (add a row there) instead of reading os.environ"


def test_the_check_sees_every_spelling(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom os import getenv\nos.environ.get('X')\nos.getenv('Y')\nos.environ['Z']\n")
    assert len(_environment_reads(bad)) == 4


def table_in_doc(text: str) -> str:
    return text.split(BEGIN, 1)[1].split(END, 1)[0] if BEGIN in text and END in text else ""


def test_the_doc_shows_the_rows() -> None:
    assert table_in_doc(DOC.read_text()) == settings.markdown_table(), \
        "docs/architecture/settings.md is out of date: run .venv/bin/python -m tests.unit.test_settings"


def test_rows_are_unique_documented_and_used() -> None:
    names = [s.name for s in settings.ROWS]
    assert len(names) == len(set(names))
    code = "\n".join(p.read_text() for p in COMPOSER.rglob("*.py") if p.name != "settings.py")
    for s in settings.ROWS:
        assert s.meaning and s.default and s.accepts, s.name
        assert s.family == "" or s.name.endswith("_"), s.name
        attr = next(k for k, v in vars(settings).items() if v is s)
        assert re.search(rf"settings\.{attr}\b", code) or attr in ("CACHE", "XDG_CACHE_HOME", "KEY_PASSPHRASE"), \
            f"settings.{attr} is read by nobody"


MALFORMED = [(settings.SOURCE_DATE_EPOCH, "", "soon"), (settings.LOCK_TIMEOUT, "", "later"),
             (settings.REPO_NOW, "", "yesterday"), (settings.LIMIT, "MAX_DEPTH", "deep"),
             (settings.HTTP, "MIN_RATE", "fast")]


@pytest.mark.parametrize(("row", "suffix", "bad"), MALFORMED, ids=[r.name for r, _, _ in MALFORMED])
def test_a_malformed_value_reads_as_its_row_says(row: settings.Setting[object], suffix: str, bad: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(row.name + suffix, bad)
    with pytest.raises(UserError) as info:
        row.get(suffix)
    assert info.value.message == row.malformed.split(" / ")[0].replace("TEXT", bad)
    assert info.value.hint


def test_the_cache_size_cap_reads_as_its_row_says(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ops.cap_from_env() == 20 << 30
    monkeypatch.setenv("VCOMP_CACHE_MAX", "big")
    with pytest.raises(UserError) as info:
        ops.cap_from_env()
    assert info.value.message == settings.CACHE_MAX.malformed.replace("TEXT", "big")


def test_values_are_read_at_the_time_of_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VCOMP_OFFLINE", raising=False)
    assert settings.OFFLINE.get() is False
    for word, value in (("1", True), ("yes", True), ("true", True), ("0", False), ("on", False)):
        monkeypatch.setenv("VCOMP_OFFLINE", word)
        assert settings.OFFLINE.get() is value
    assert settings.SOURCE_DATE_EPOCH.get(environ={"SOURCE_DATE_EPOCH": "12"}) == 12
    assert settings.SOURCE_DATE_EPOCH.get(environ={}) is None
    with pytest.raises(UserError, match="SOURCE_DATE_EPOCH=-1 is negative"):
        settings.SOURCE_DATE_EPOCH.get(environ={"SOURCE_DATE_EPOCH": "-1"})
    assert settings.TEST_CRASH_AT.get(environ={"VCOMP_TEST_CRASH_AT": "x"}) == 0
    assert settings.DEBIAN_MIRROR.get(environ={}) == "http://deb.debian.org/debian"


def test_the_cache_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "c"))
    assert settings.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("VCOMP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert settings.cache_dir() == tmp_path / "x" / "vcomp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert settings.cache_dir() == tmp_path / "home" / ".cache" / "vcomp"


def test_a_passphrase_comes_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.passphrase() is None
    monkeypatch.setenv("VCOMP_KEY_PASSPHRASE", "a")
    monkeypatch.setenv("MY_PASS", "b")
    assert settings.passphrase() == "a" and settings.passphrase("MY_PASS") == "b"
    monkeypatch.setenv("MY_PASS", "")
    assert settings.passphrase("MY_PASS") is None


def write_doc() -> None:
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(head + BEGIN + settings.markdown_table() + END + tail)


if __name__ == "__main__":
    write_doc()


def test_a_programs_cache_comes_after_the_variable_and_the_project(monkeypatch, tmp_path) -> None:
    """vpk on a device caches in /var/cache/vpk, not in root's ~/.cache; VCOMP_CACHE and vcomp.toml still win."""
    from composer import settings
    monkeypatch.delenv("VCOMP_CACHE", raising=False)
    try:
        settings.use_program_cache(tmp_path / "program")
        settings.use_project_cache(None)
        assert settings.cache_dir() == tmp_path / "program"
        settings.use_project_cache(tmp_path / "project")
        assert settings.cache_dir() == tmp_path / "project"
        monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "variable"))
        assert settings.cache_dir() == tmp_path / "variable"
    finally:
        settings.use_program_cache(None)
        settings.use_project_cache(None)
