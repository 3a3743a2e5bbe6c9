"""A registry: a read-only mapping of name -> row, its built-in rows first, then the rows plugins add.

Each registry of vcomp (:data:`composer.image.outputs.OUTPUT_TYPES`, :data:`composer.package.sources.SOURCE_KINDS`,
:data:`composer.repo.transports.TRANSPORTS`, :data:`composer.gitops.policy.POLICY_GATES`) is one
:class:`Registry`. Reading it (a lookup, ``in``, iterating, ``len``) loads its group's plugins the first time
(:func:`composer.plugins.load.found`); the built-in rows are never replaced. Setting or deleting an item
changes the built-in table (tests add a run-time row with ``monkeypatch.setitem``), never a plugin's row.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from composer.plugins import load

R = TypeVar("R")

REGISTRIES: dict[str, Registry[Any]] = {}
"""Every registry, by its entry point group (``vcomp plugins`` reads them all)."""


def _no_problem(_row: object) -> str:
    return ""


class Registry(Mapping[str, R], Generic[R]):
    """name -> row: the built-in rows, then the plugins' rows of the entry point group ``group``."""

    def __init__(self, rows: Iterable[R], *, group: str, kind: str, row_type: type[R], name_of: Callable[[R], str],
                 check: Callable[[R], str] = _no_problem,
                 reserved: Callable[[], Collection[str]] = frozenset) -> None:
        self._builtin: dict[str, R] = {name_of(row): row for row in rows}
        self._plugins: dict[str, R] | None = None
        self._all: dict[str, R] | None = None
        self.group = group
        self.kind = kind
        self.row_type = row_type
        self.name_of = name_of
        self.check = check
        self.reserved = reserved   # names no plugin may take besides the built-in rows' (read when plugins load)
        REGISTRIES[group] = self

    def spec(self) -> load.Group:
        return load.Group(name=self.group, kind=self.kind, row_type=self.row_type, name_of=self.name_of,
                          builtins=frozenset(self._builtin) | frozenset(self.reserved()), check=self.check)

    def plugin_rows(self) -> Mapping[str, R]:
        """The rows the plugins add (loaded on the first call)."""
        if self._plugins is None:
            self._plugins = {kept.name: kept.row for kept in load.found(self.spec()).loaded}
        return self._plugins

    def origin(self, name: str) -> load.Origin | None:
        """The plugin that added row ``name`` (None: a built-in row, or no such row)."""
        if name in self._builtin:
            return None
        self.plugin_rows()
        return next((kept.origin for kept in load.found(self.spec()).loaded if kept.name == name), None)

    def builtin_rows(self) -> Mapping[str, R]:
        return self._builtin

    def _rows(self) -> dict[str, R]:
        if self._all is None:
            self._all = {**self._builtin, **{k: v for k, v in self.plugin_rows().items() if k not in self._builtin}}
        return self._all

    def reset(self) -> None:
        """Forget the plugins' rows (the next read looks again)."""
        self._plugins = self._all = None

    def __getitem__(self, name: str) -> R:
        return self._rows()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows())

    def __len__(self) -> int:
        return len(self._rows())

    def __contains__(self, name: object) -> bool:
        return name in self._rows()

    def __setitem__(self, name: str, row: R) -> None:
        self._builtin[name] = row
        self._all = None

    def __delitem__(self, name: str) -> None:
        del self._builtin[name]
        self._all = None

    def __repr__(self) -> str:
        return f"Registry({self.group}: {', '.join(self._rows())})"


def reset() -> None:
    """Forget every plugin found (tests): the next read of each registry looks for its plugins again."""
    load.reset()
    for registry in REGISTRIES.values():
        registry.reset()
