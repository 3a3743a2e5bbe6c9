"""Malformed recipes: one clear error per mistake with file:line:column and the field; no partial .vpk."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.errors import ComposerError, ToolError, UserError
from composer.package.build import build
from composer.trust.keys import SigningKey
from tests.conftest import write_recipe

GOOD_HEAD = """
    [package]
    name = "demo"
    version = "1.0.0"
    description = "demo"
    license = "MIT"
    type = "application"
"""
TREE = """
    [[source]]
    kind = "tree"
    path = "files"
"""


def _build(tmp_path: Path, key: SigningKey, toml: str, files: dict[str, str | bytes] | None = None) -> None:
    rdir = write_recipe(tmp_path / "r", toml, files if files is not None else {"files/etc/x": "x"})
    build(rdir, "x86_64", key, tmp_path / "out", cache=tmp_path / "cache")


def _no_partial_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize(("toml", "expect"), [
    (GOOD_HEAD.replace('"1.0.0"', '"1.0"') + TREE, r"recipe.toml:4:\d+: \$\.package\.version"),
    (GOOD_HEAD.replace('"application"', '"app"') + TREE, r"recipe.toml:7:\d+: \$\.package\.type.*not one of"),
    (GOOD_HEAD.replace('name = "demo"', 'name = "Demo!"') + TREE, r"recipe.toml:3:\d+: \$\.package\.name"),
    (GOOD_HEAD + '    colour = "red"\n' + TREE, r"recipe.toml:8:\d+: \$\.package: unknown field.*colour"),
    (GOOD_HEAD + TREE.replace('"tree"', '"git"'), r"recipe.toml:10:\d+: \$\.source\[0\]\.kind"),
    (GOOD_HEAD + '\n    [dependencies]\n    foo = "^^1"\n' + TREE, r"recipe.toml:10:\d+: \$\.dependencies\.foo"),
    (GOOD_HEAD + '\n    [capabilities]\n    required = ["Net Work"]\n' + TREE,
     r"recipe.toml:10:\d+: \$\.capabilities\.required\[0\]"),
    (GOOD_HEAD + "\n    [package\n" + TREE, r"invalid TOML.*line 9"),
    (GOOD_HEAD, r"missing required field 'source'"),
])
def test_malformed_recipe(tmp_path: Path, dev_key: SigningKey, toml: str, expect: str) -> None:
    with pytest.raises(UserError, match=expect):
        _build(tmp_path, dev_key, toml)
    _no_partial_output(tmp_path)


def test_all_schema_errors_reported_at_once(tmp_path: Path, dev_key: SigningKey) -> None:
    toml = GOOD_HEAD.replace('"1.0.0"', '"x"').replace('"application"', '"app"') + TREE
    with pytest.raises(UserError) as info:
        _build(tmp_path, dev_key, toml)
    assert "2 errors" in info.value.message
    assert "$.package.version" in info.value.message and "$.package.type" in info.value.message


def test_unknown_architecture(tmp_path: Path, dev_key: SigningKey) -> None:
    rdir = write_recipe(tmp_path / "r", GOOD_HEAD + TREE, {"files/etc/x": "x"})
    with pytest.raises(UserError, match="unknown architecture 'sparc'") as info:
        build(rdir, "sparc", dev_key, tmp_path / "out")
    assert "x86_64" in info.value.hint


def test_unsupported_architecture_names_the_line(tmp_path: Path, dev_key: SigningKey) -> None:
    toml = GOOD_HEAD + '\n    [build]\n    architectures = ["x86_64"]\n' + TREE
    rdir = write_recipe(tmp_path / "r", toml, {"files/etc/x": "x"})
    with pytest.raises(UserError, match=r"recipe.toml:10:\d+: recipe 'demo' does not support aarch64"):
        build(rdir, "aarch64", dev_key, tmp_path / "out")


def test_tree_source_outside_recipe(tmp_path: Path, dev_key: SigningKey) -> None:
    with pytest.raises(UserError, match=r"recipe.toml:11:\d+: '\.\./\.\.' is not a directory inside the recipe"):
        _build(tmp_path, dev_key, GOOD_HEAD + TREE.replace('"files"', '"../.."'))


def test_failing_command_leaves_nothing(tmp_path: Path, dev_key: SigningKey) -> None:
    toml = GOOD_HEAD + TREE + '\n    [[source]]\n    kind = "command"\n    run = "echo boom >&2; exit 3"\n'
    with pytest.raises(ToolError, match=r"exit 3[\s\S]*boom"):
        _build(tmp_path, dev_key, toml)
    _no_partial_output(tmp_path)


def test_missing_host_tool_names_the_debian_package(tmp_path: Path, dev_key: SigningKey) -> None:
    toml = GOOD_HEAD + TREE + textwrap.indent(textwrap.dedent('''
        [[source]]
        kind = "command"
        run = "true"
        tools = ["riscv64-linux-gnu-gcc-99"]
    '''), "    ")
    with pytest.raises(ToolError, match="'riscv64-linux-gnu-gcc-99' is not installed") as info:
        _build(tmp_path, dev_key, toml)
    assert "apt-get install" in info.value.hint


def test_command_cannot_use_undeclared_tools(tmp_path: Path, dev_key: SigningKey) -> None:
    toml = GOOD_HEAD + TREE + '\n    [[source]]\n    kind = "command"\n    run = "gzip --version"\n'
    with pytest.raises(ToolError, match="gzip: not found"):
        _build(tmp_path, dev_key, toml)


def test_modes_for_missing_path(tmp_path: Path, dev_key: SigningKey) -> None:
    toml = GOOD_HEAD + '\n    [files]\n    modes = { "etc/nope" = "0600" }\n' + TREE
    with pytest.raises(UserError, match="etc/nope"):
        _build(tmp_path, dev_key, toml)


def test_cli_exit_code_and_one_line_error(tmp_path: Path, keydir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rdir = write_recipe(tmp_path / "r", GOOD_HEAD.replace('"1.0.0"', '"1.0"') + TREE, {"files/etc/x": "x"})
    code = main(["pkg", "build", str(rdir), "--key", str(keydir / "dev.key"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and "recipe.toml:4:" in err and "Traceback" not in err


def test_errors_are_composer_errors() -> None:
    assert issubclass(UserError, ComposerError) and issubclass(ToolError, ComposerError)


def test_binaries_for_another_architecture_are_refused(tmp_path: Path, dev_key: SigningKey) -> None:
    host_elf = Path("/bin/true").read_bytes()  # an x86_64 (or host) ELF executable
    rdir = write_recipe(tmp_path / "r", GOOD_HEAD + TREE, {"files/usr/bin/tool": host_elf})
    with pytest.raises(UserError, match=r"for aarch64 contains binaries for another architecture: usr/bin/tool"):
        build(rdir, "aarch64", dev_key, tmp_path / "out")
    noarch = GOOD_HEAD.replace('type = "application"', 'type = "application"\n    arch = "noarch"') + TREE
    rdir = write_recipe(tmp_path / "n", noarch, {"files/usr/bin/tool": host_elf})
    with pytest.raises(UserError, match="for noarch contains binaries"):
        build(rdir, "x86_64", dev_key, tmp_path / "out")
    _no_partial_output(tmp_path)


def test_a_later_command_never_edits_the_recipe_through_a_hard_link(tmp_path: Path, dev_key: SigningKey) -> None:
    command = '\n    [[source]]\n    kind = "command"\n    run = "echo changed >> \\"$DESTDIR/etc/x\\""\n'
    toml = GOOD_HEAD + TREE + command
    rdir = write_recipe(tmp_path / "r", toml, {"files/etc/x": "original\n"})
    build(rdir, "x86_64", dev_key, tmp_path / "out")
    assert (rdir / "files/etc/x").read_text() == "original\n"
