"""The API documentation (issue 18 item 6): pdoc renders composer.plugins (the plugin interface, and the rows
and helpers composer.plugins.api re-exports) with no warning, every reference of its docstrings
(``:func:`...```, ``:class:``, ``:data:``, ``:mod:``, ``:meth:``, ``:attr:``) names something that exists,
and every link between the rendered pages leads to a page that was written. ``make docs`` renders the whole
library into build/api/ the same way."""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

try:
    import pdoc
    import pdoc.doc
    import pdoc.render
except ModuleNotFoundError:  # pragma: no cover - the test extra installs it
    pytest.fail("pdoc is not installed: `make setup` installs it (pyproject.toml, the test extra)",
                pytrace=False)

CHECKED = ("composer.plugins", "composer.plugins.api", "composer.plugins.base", "composer.plugins.load",
           "composer.plugins.registry")
ROLE = re.compile(r":(?:func|class|data|mod|meth|attr|exc|obj):`~?([A-Za-z_][\w.]*)(?:\(\))?`")
HREF = re.compile(r'href="([^"#:]+\.html)(?:#[^"]*)?"')


def documented(module: pdoc.doc.Module) -> Iterator[pdoc.doc.Doc[Any]]:
    """The module and every member pdoc documents on its page, members of classes included."""
    yield module
    for member in module.members.values():
        yield member
        if isinstance(member, pdoc.doc.Class):
            yield from member.members.values()


def resolves(name: str, context: ModuleType, owner: object | None) -> bool:
    """Whether ``name`` names something: in the owner class, the defining module's namespace, or by its
    full dotted path (its longest importable module prefix, then attributes)."""
    parts = name.split(".")
    for start in (owner, context):
        obj = start
        for part in parts:
            obj = getattr(obj, part, None) if obj is not None else None
        if obj is not None:
            return True
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part, None)
        return obj is not None
    return False


def broken_references() -> list[str]:
    out: list[str] = []
    for name in CHECKED:
        for doc in documented(pdoc.doc.Module(importlib.import_module(name))):
            module_name, qualname = doc.taken_from
            context = importlib.import_module(module_name)
            owner_name = qualname.rpartition(".")[0]
            owner = getattr(context, owner_name, None) if owner_name else getattr(context, qualname, None)
            for ref in ROLE.findall(doc.docstring):
                if not resolves(ref, context, owner):
                    out.append(f"{doc.fullname}: :ref:`{ref}` names nothing (from {module_name})")
    return out


def test_pdoc_renders_the_plugin_interface_without_warnings_or_broken_references(tmp_path: Path) -> None:
    pdoc.render.configure(docformat="restructuredtext")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc("composer.plugins", output_directory=tmp_path)
    assert [str(w.message) for w in caught] == []
    pages = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.html"))
    assert {f"{m.replace('.', '/')}.html" for m in CHECKED if m != "composer.plugins"} <= set(pages)
    api = (tmp_path / "composer" / "plugins" / "api.html").read_text()
    for name in ("API_VERSION", "Plugin", "OutputType", "SourceKind", "Transport", "Gate", "Workshop"):
        assert f'id="{name}"' in api, f"{name} is not documented on the api page"
    dead = [f"{page}: {href}" for page in pages
            for href in HREF.findall((tmp_path / page).read_text())
            if not (tmp_path / page).parent.joinpath(href).resolve().is_file()]
    assert dead == []
    assert broken_references() == []


def test_a_broken_reference_is_found() -> None:
    module = importlib.import_module("composer.plugins.load")
    assert resolves("composer.plugins.base.API_VERSION", module, None)
    assert resolves("found", module, None) and resolves("Group", module, None)
    assert not resolves("composer.plugins.base.NO_SUCH_THING", module, None)
    assert not resolves("no_such_function", module, None)
