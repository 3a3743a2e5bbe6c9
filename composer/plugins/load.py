"""Finding the plugins: the entry points of one group, loaded once, lazily, each kept or refused in one line.

:func:`found` is called by a registry (:mod:`composer.plugins.registry`) the first time it is read, not at
import: ``vcomp --help`` or a verb that reads no registry imports no plugin. Each entry point of the group is
imported and checked in a fixed order (distribution name, then entry point name) and either kept or refused
with one line naming the distribution, its version and the entry point, and the fix:

* it cannot be imported (any exception while importing it: the plugin's own bug or a missing dependency);
* it is not a :class:`~composer.plugins.base.Plugin`, or its row is not the group's row type;
* its ``api_version`` is not the :data:`~composer.plugins.base.API_VERSION` of this vcomp;
* its row's name differs from the entry point's name, or the row fails the registry's own check;
* its name is a built-in's (plugins add rows, they never replace one) or a plugin kept before it.

A refusal is a notice (stderr), not an error: vcomp goes on with the rows it has, and a profile naming the
refused row gets the registry's "unknown ..." error. ``vcomp plugins`` lists what was kept and refused.
``VCOMP_NO_PLUGINS=1`` or ``--no-plugins`` (:func:`disable`) loads none (CI reproducibility).
"""

from __future__ import annotations

import importlib.metadata as metadata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from composer import notices, settings
from composer.plugins.base import API_VERSION, Plugin

NO_PLUGINS_HINT = "or run without plugins: --no-plugins / VCOMP_NO_PLUGINS=1"


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """One entry point group and the registry it adds rows to."""

    name: str                         # the entry point group: vcomp.outputs
    kind: str                         # what a row is, in words: "output type"
    row_type: type                    # the type every row must be an instance of
    name_of: Callable[[Any], str]     # a row's name (its key in the registry)
    builtins: Collection[str]         # the built-in names (a plugin may not take one)
    check: Callable[[Any], str]       # the registry's own check of a plugin row: its problem, "" when none


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """Where a plugin comes from."""

    group: str
    entry_point: str       # its name
    target: str            # what it names: module:attribute
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"plugin '{self.entry_point}' ({self.group} = {self.target}) of {self.distribution} {self.version}"

    def to_dict(self) -> dict[str, str]:
        return {"group": self.group, "entry_point": self.entry_point, "target": self.target,
                "distribution": self.distribution, "version": self.version}


@dataclass(frozen=True, slots=True, kw_only=True)
class Loaded:
    origin: Origin
    name: str
    row: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    origin: Origin
    reason: str    # one line: what is wrong
    hint: str      # the fix

    @property
    def line(self) -> str:
        return f"{self.origin} refused: {self.reason} (fix: {self.hint})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    """What one group's entry points gave: the rows kept and the plugins refused, both in load order."""

    group: str
    loaded: tuple[Loaded, ...] = ()
    refused: tuple[Refused, ...] = ()


_found: dict[str, Found] = {}
_disabled: list[bool] = [False]


def disable(off: bool = True) -> None:
    """Load no plugin in this process (``--no-plugins``); the registries already read keep what they have."""
    _disabled[0] = off


def enabled() -> bool:
    return not (_disabled[0] or settings.NO_PLUGINS.get())


def reset() -> None:
    """Forget what was found (tests; a registry also forgets its plugin rows:
    :func:`composer.plugins.registry.reset`)."""
    _found.clear()


def found(group: Group, *, quiet: bool = False) -> Found:
    """The plugins of ``group``: found on the first call (a notice for each refused one, unless ``quiet``: the
    caller reports them), then remembered."""
    if not enabled():
        return Found(group=group.name)
    if group.name not in _found:
        _found[group.name] = discover(group)
        for refusal in () if quiet else _found[group.name].refused:
            notices.notice(f"warning: {refusal.line}")
    return _found[group.name]


def _origin(group: str, ep: metadata.EntryPoint) -> Origin:
    dist = ep.dist
    return Origin(group=group, entry_point=ep.name, target=ep.value,
                  distribution=dist.name if dist is not None else "(unknown distribution)",
                  version=dist.version if dist is not None else "?")


def discover(group: Group) -> Found:
    """Import and check every entry point of ``group`` (no cache, no notices: :func:`found` adds those)."""
    points = sorted(((_origin(group.name, ep), ep) for ep in metadata.entry_points(group=group.name)),
                    key=lambda pair: (pair[0].distribution.lower(), pair[0].entry_point, pair[0].target))
    loaded: list[Loaded] = []
    refused: list[Refused] = []
    for origin, ep in points:
        taken = {kept.name: kept.origin for kept in loaded}
        outcome = _load(group, origin, ep, taken)
        if isinstance(outcome, Loaded):
            loaded.append(outcome)
        else:
            refused.append(outcome)
    return Found(group=group.name, loaded=tuple(loaded), refused=tuple(refused))


def _load(group: Group, origin: Origin, ep: metadata.EntryPoint, taken: dict[str, Origin]) -> Loaded | Refused:
    def refuse(reason: str, hint: str) -> Refused:
        return Refused(origin=origin, reason=reason, hint=f"{hint}; {NO_PLUGINS_HINT}")

    uninstall = f"fix or uninstall {origin.distribution} (pip uninstall {origin.distribution})"
    try:
        plugin = ep.load()
    except Exception as exc:  # the plugin's own code: any failure is its failure to import
        return refuse(f"cannot be imported: {type(exc).__name__}: {_one_line(exc)}", uninstall)
    if not isinstance(plugin, Plugin):
        return refuse(f"names a {type(plugin).__name__}, not a composer.plugins.api.Plugin",
                      f"point the entry point at a Plugin(api_version=..., row={group.row_type.__name__}(...)); "
                      f"{uninstall}")
    if plugin.api_version != API_VERSION:
        return refuse(f"is written for plugin API version {plugin.api_version!r}; this vcomp offers version "
                      f"{API_VERSION}", f"install a release of {origin.distribution} for plugin API {API_VERSION}, "
                      "or a vcomp that offers its version")
    if not isinstance(plugin.row, group.row_type):
        return refuse(f"its row is a {type(plugin.row).__name__}, not a {group.row_type.__name__} "
                      f"(the row type of {group.name})", f"register it under the group of its row type; {uninstall}")
    name = group.name_of(plugin.row)
    if name != ep.name:
        return refuse(f"its {group.kind} is named '{name}', not '{ep.name}' as its entry point",
                      f"name the entry point as the {group.kind}; {uninstall}")
    if name in group.builtins:
        return refuse(f"{group.kind} '{name}' is a built-in one (plugins add {group.kind}s, never replace one)",
                      f"rename the plugin's {group.kind}; {uninstall}")
    if name in taken:
        return refuse(f"{group.kind} '{name}' is already added by {taken[name]}",
                      f"uninstall one of {taken[name].distribution} and {origin.distribution}")
    try:
        problem = group.check(plugin.row)
    except Exception as exc:  # a row so malformed that the check itself fails
        problem = f"{type(exc).__name__}: {_one_line(exc)}"
    if problem:
        return refuse(f"its {group.kind} is not valid: {problem}", uninstall)
    return Loaded(origin=origin, name=name, row=plugin.row)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
