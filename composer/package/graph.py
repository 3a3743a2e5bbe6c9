"""Build dependencies between recipes (``[build] requires``): which recipe provides which package, and the order.

Pure: takes recipe names, the packages each makes and the package names each requires; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from composer.errors import UserError
from composer.package import split

MAX_REQUIRES = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    recipe: str                  # the recipe's folder name (what build-all reports)
    provides: tuple[str, ...]    # package names it builds: NAME, NAME-dev, NAME-dbg
    requires: tuple[str, ...]    # package names of other recipes it builds against


def node_for(recipe: str, data: Mapping[str, object]) -> Node:
    """The node of a loaded recipe's data (``[package].name``, ``[split]``, ``[build].requires``)."""
    package = data.get("package", {})
    name = str(package.get("name", recipe)) if isinstance(package, Mapping) else recipe
    rules = split.SplitRules.from_recipe(data)
    provides = (name, *((name + split.DEV_SUFFIX,) if rules.dev else ()),
                *((name + split.DBG_SUFFIX,) if rules.dbg else ()))
    build = data.get("build", {})
    requires = build.get("requires", []) if isinstance(build, Mapping) else []
    return Node(recipe=recipe, provides=provides, requires=tuple(str(r) for r in requires))


@dataclass(frozen=True, slots=True, kw_only=True)
class Graph:
    order: tuple[str, ...]                       # recipes, each after every recipe it needs
    needs: Mapping[str, tuple[str, ...]]         # recipe -> recipes it needs (directly)
    provider: Mapping[str, str]                  # package name -> recipe that builds it
    unknown: Mapping[str, tuple[str, ...]]       # recipe -> required names no recipe in the set builds

    def dependents(self, recipe: str) -> tuple[str, ...]:
        return tuple(r for r in self.order if recipe in self.needs[r])


def plan(nodes: Sequence[Node]) -> Graph:
    """The build order of ``nodes``; a cycle is one UserError naming it (``a -> b -> a``)."""
    provider: dict[str, str] = {}
    for node in nodes:
        for name in node.provides:
            provider.setdefault(name, node.recipe)
    needs = {n.recipe: tuple(sorted({provider[r] for r in n.requires if r in provider} - {n.recipe}))
             for n in nodes}
    unknown = {n.recipe: tuple(r for r in n.requires if r not in provider) for n in nodes}
    self_loops = [n.recipe for n in nodes if any(provider.get(r) == n.recipe for r in n.requires)]
    if self_loops:
        raise UserError(f"build dependency cycle: {self_loops[0]} -> {self_loops[0]}",
                        hint="a recipe cannot require a package it builds itself: remove it from [build] requires")
    order: list[str] = []
    state: dict[str, int] = {}     # 1 visiting, 2 done

    def visit(recipe: str, path: list[str]) -> None:
        if state.get(recipe) == 2:
            return
        if state.get(recipe) == 1:
            cycle = [*path[path.index(recipe):], recipe]
            raise UserError(f"build dependency cycle: {' -> '.join(cycle)}",
                            hint="remove one of these [build] requires entries")
        state[recipe] = 1
        for dep in needs[recipe]:
            visit(dep, [*path, recipe])
        state[recipe] = 2
        order.append(recipe)

    for node in sorted(nodes, key=lambda n: n.recipe):
        visit(node.recipe, [])
    return Graph(order=tuple(order), needs=needs, provider=provider,
                 unknown={k: v for k, v in unknown.items() if v})
