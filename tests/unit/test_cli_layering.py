"""The CLI stays thin and is the only printer (issue 13; docs/architecture/cli.md).

- library code (``composer/`` outside ``cli/`` and ``__main__``) never prints nor writes to sys.stdout or
  sys.stderr: it returns data and takes a ``say``/``warn`` callback; where none is given it calls
  ``composer.notices.notice``, the one gateway (whose writer the CLI installs);
- library code never imports ``composer.cli``;
- a CLI function holds no domain logic: at most MAX_LINES lines of body (``register`` functions, which only
  declare arguments, are exempt);
- a CLI module uses no private name (``_x``) of another module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

COMPOSER = Path(__file__).resolve().parents[2] / "composer"
CLI = COMPOSER / "cli"
MAX_LINES = 40
# Where writing to the standard streams is the job: the CLI, the entry point, the notices gateway, and the
# TUF conformance client (a separate program: python -m composer.repo.conformance, run by the public suite).
PRINTERS = {CLI, COMPOSER / "__main__.py", COMPOSER / "notices.py", COMPOSER / "repo" / "conformance.py"}


def _modules(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def _library() -> list[Path]:
    return [p for p in _modules(COMPOSER) if not any(p == x or x in p.parents for x in PRINTERS)]


def _rel(p: Path) -> str:
    return str(p.relative_to(COMPOSER.parent))


def printing(tree: ast.AST) -> list[tuple[int, str]]:
    """Every ``print(...)``, ``sys.stdout``/``sys.stderr`` and ``from sys import stdout/stderr`` in a module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            found.append((node.lineno, "print()"))
        elif (isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr", "__stdout__", "__stderr__")
              and isinstance(node.value, ast.Name) and node.value.id == "sys"):
            found.append((node.lineno, f"sys.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module == "sys" and \
                any(a.name in ("stdout", "stderr") for a in node.names):
            found.append((node.lineno, "from sys import stdout/stderr"))
    return found


def test_library_code_never_prints() -> None:
    found = [f"{_rel(p)}:{line}: {what}" for p in _library() for line, what in printing(ast.parse(p.read_text()))]
    assert not found, "library code prints (take a say/warn callback, or composer.notices.notice):\n" + \
        "\n".join(found)


def test_the_rule_finds_printing() -> None:
    """The checker itself: each form is found, a mention in a string is not."""
    source = ("import sys\nfrom sys import stderr\nprint('x')\nsys.stdout.write('x')\nsys.stderr.flush()\n"
              "say = 'print(1) sys.stdout'\n")
    assert [what for _l, what in printing(ast.parse(source))] == \
        ["from sys import stdout/stderr", "print()", "sys.stdout", "sys.stderr"]


def test_library_code_never_imports_the_cli() -> None:
    found = []
    for p in _library():
        for node in ast.walk(ast.parse(p.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{_rel(p)}:{node.lineno}: {n}" for n in names if n == "composer.cli" or
                      n.startswith("composer.cli.")]
    assert not found, "library code imports the CLI:\n" + "\n".join(found)


def _body_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if not body:
        return 0
    return int(body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1


def cli_functions() -> list[tuple[Path, ast.FunctionDef | ast.AsyncFunctionDef]]:
    return [(p, node) for p in _modules(CLI) for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_cli_functions_are_short() -> None:
    """A verb maps arguments to one library call and its result to lines and an exit code; more than
    MAX_LINES lines means domain logic that belongs in a library module (docs/architecture/cli.md)."""
    long = [f"{_rel(p)}:{fn.lineno}: {fn.name} has {_body_lines(fn)} lines" for p, fn in cli_functions()
            if fn.name != "register" and _body_lines(fn) > MAX_LINES]
    assert not long, f"CLI functions longer than {MAX_LINES} lines (move the logic into the library):\n" + \
        "\n".join(long)


def test_the_cli_uses_no_private_name_of_another_module() -> None:
    found = []
    for p in _modules(CLI):
        tree = ast.parse(p.read_text())
        modules = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                   and (n.module or "").startswith("composer") for a in n.names}
        modules |= {(a.asname or a.name).split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                    for a in n.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("composer"):
                found += [f"{_rel(p)}:{node.lineno}: {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                    node.value.id in modules and node.attr.startswith("_") and not node.attr.startswith("__"):
                found.append(f"{_rel(p)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not found, "the CLI reaches into another module's private names:\n" + "\n".join(found)


@pytest.mark.parametrize("group", ["key", "pkg", "repo", "lock", "query", "image", "gitops", "cache"])
def test_every_verb_group_registers_itself(group: str) -> None:
    """One module per verb group, each with ``register(sub)``, listed once in ``main.GROUPS``."""
    import importlib

    from composer.cli import main
    module = importlib.import_module(f"composer.cli.{group}")
    assert [g for g in main.GROUPS if g is module.register] == [module.register]


def test_the_cli_maps_a_plans_verdict_to_the_code_the_plan_format_records() -> None:
    """The plan gives a verdict (data); the CLI chooses the exit code, the same the saved plan records."""
    from composer.cli.common import PLAN_EXIT
    from composer.gitops.plan import EXIT_CODES
    assert {k: v for k, v in EXIT_CODES.items() if k != "error"} == PLAN_EXIT
