"""Dependency graphs (pure): nodes are packages of one architecture, edges their resolved dependencies.

A dependency names a package or something packages provide; it resolves, within the graph's universe (the
repository's newest version of every name, or the rows of a lock), to the package of that name or else to the
first provider by name. Of alternatives (``a | b``) the first that resolves wins. Everything is sorted:
the same universe gives the same graph, byte for byte, in every format.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from composer.repo.index import IndexEntry

HARD = ("requires", "depends", "pre-depends")   # relation kinds that are dependencies (composer.package.metadata)
WEAK = ("recommends",)
KINDS = ("depends", "recommends")
MAX_NODES = 5000   # a graph larger than this is refused: nobody reads it, and dot takes minutes
_NAME = re.compile(r"^\s*([^\s(:]+)")


class GraphTooLarge(ValueError):
    """More than MAX_NODES packages would be drawn."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    name: str
    version: str
    arch: str
    installed_size: int
    license: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "arch": self.arch,
                "installed_size": self.installed_size, "license": self.license}


@dataclass(frozen=True, slots=True, kw_only=True)
class Edge:
    source: str
    target: str
    kind: str     # one of KINDS

    def to_dict(self) -> dict[str, str]:
        return {"from": self.source, "to": self.target, "kind": self.kind}


@dataclass(frozen=True, slots=True, kw_only=True)
class Graph:
    title: str
    arch: str
    roots: tuple[str, ...]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    reverse: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "arch": self.arch, "roots": list(self.roots), "reverse": self.reverse,
                "nodes": [n.to_dict() for n in self.nodes], "edges": [e.to_dict() for e in self.edges]}


def _names(clause: str) -> tuple[str, ...]:
    """``libc6 (>= 2.36) | libc`` -> ('libc6', 'libc'); ``python3:any`` -> python3."""
    return tuple(m.group(1) for alt in clause.split("|") if (m := _NAME.match(alt)))


def requirements(entry: IndexEntry) -> list[tuple[str, tuple[str, ...]]]:
    """(kind, alternatives) of every dependency of ``entry``, in a fixed order, duplicates dropped."""
    out: list[tuple[str, tuple[str, ...]]] = [("depends", (name,)) for name in sorted(entry.dependencies)]
    for kind, wanted in (("depends", HARD), ("recommends", WEAK)):
        for rel in wanted:
            out += [(kind, names) for clause in entry.relations.get(rel, ()) if (names := _names(clause))]
    return list(dict.fromkeys(out))


@dataclass(frozen=True, slots=True, kw_only=True)
class Universe:
    """The packages a graph is drawn among (one per name) and who provides what."""

    arch: str
    packages: Mapping[str, IndexEntry]
    providers: Mapping[str, tuple[str, ...]]

    def resolve(self, alternatives: Sequence[str]) -> str | None:
        for name in alternatives:
            if name in self.packages:
                return name
            if self.providers.get(name):
                return self.providers[name][0]
        return None

    def edges_of(self, name: str) -> list[Edge]:
        found: dict[str, str] = {}
        for kind, alts in requirements(self.packages[name]):
            target = self.resolve(alts)
            if target is not None and target != name and found.get(target) != "depends":
                found[target] = kind
        return [Edge(source=name, target=t, kind=k) for t, k in sorted(found.items())]


def universe(entries: Iterable[IndexEntry], arch: str) -> Universe:
    """The newest entry of every name available on ``arch`` (noarch included)."""
    best: dict[str, IndexEntry] = {}
    for e in entries:
        if e.arch in (arch, "noarch") and (e.name not in best or e.order_key() > best[e.name].order_key()):
            best[e.name] = e
    providers: dict[str, list[str]] = {}
    for name, e in best.items():
        for p in e.provides:
            providers.setdefault(p.split("=", 1)[0].strip(), []).append(name)
    return Universe(arch=arch, packages=MappingProxyType(dict(sorted(best.items()))),
                    providers=MappingProxyType({k: tuple(sorted(v)) for k, v in sorted(providers.items())}))


def _node(e: IndexEntry) -> Node:
    return Node(name=e.name, version=e.version_text, arch=e.arch, installed_size=e.installed_size,
                license=e.license)


def reverse_edges(u: Universe) -> dict[str, list[Edge]]:
    """target -> the edges into it, across the universe."""
    into: dict[str, list[Edge]] = {}
    for name in u.packages:
        for edge in u.edges_of(name):
            into.setdefault(edge.target, []).append(edge)
    return into


def graph(u: Universe, roots: Sequence[str], *, title: str, reverse: bool = False, depth: int | None = None) -> Graph:
    """The graph reachable from ``roots`` (following dependencies, or with ``reverse`` the packages that depend
    on them) up to ``depth`` edges away (None: all)."""
    into = reverse_edges(u) if reverse else {}
    seen = {r: 0 for r in roots if r in u.packages}
    queue = deque(sorted(seen))
    edges: set[Edge] = set()
    while queue:
        name = queue.popleft()
        if depth is not None and seen[name] >= depth:
            continue
        for edge in (into.get(name, []) if reverse else u.edges_of(name)):
            edges.add(edge)
            nxt = edge.source if reverse else edge.target
            if nxt not in seen:
                if len(seen) >= MAX_NODES:
                    raise GraphTooLarge(f"more than {MAX_NODES} packages")
                seen[nxt] = seen[name] + 1
                queue.append(nxt)
    return Graph(title=title, arch=u.arch, roots=tuple(sorted(seen.keys() & set(roots))), reverse=reverse,
                 nodes=tuple(_node(u.packages[n]) for n in sorted(seen)),
                 edges=tuple(sorted(edges, key=lambda e: (e.source, e.target, e.kind))))


def whole(u: Universe, *, title: str, roots: Sequence[str] = ()) -> Graph:
    """Every package of the universe and every edge among them (a lock's graph; ``roots`` are highlighted)."""
    edges = [e for name in u.packages for e in u.edges_of(name)]
    return Graph(title=title, arch=u.arch, roots=tuple(sorted(set(roots) & set(u.packages))),
                 nodes=tuple(_node(e) for e in u.packages.values()),
                 edges=tuple(sorted(edges, key=lambda e: (e.source, e.target, e.kind))))
