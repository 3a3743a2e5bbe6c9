"""The import graph of ``composer`` has no cycles and no upward imports (issue 13).

Nodes are the first level under ``composer/`` (a package such as ``image`` or ``pkgmgr``, or a top-level
module such as ``arch``); an edge is any import, at module level, inside a function or under
``TYPE_CHECKING``, from a module of one node to another node. Tarjan's strongly connected components must
all be single nodes, between packages and between modules.

The layering contract (:data:`RANKS`): a package imports only packages of a LOWER rank; the base modules
(rank 0) import only base modules (and each other, without cycles). A new package or top-level module
must be given a rank here (the test says so). Why a small AST check rather than import-linter's "layers"
contract: the graph is already built here (also for the cycle checks), the failure names both ranks, and
the contract needs no new dependency; see docs/architecture/tests.md.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import REPO

COMPOSER = REPO / "composer"


def _module(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("composer")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.startswith("composer"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in COMPOSER.rglob("*.py")}
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for target in _imports(path, module):
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target in modules and target != module:
                edges[module].add(target)
    return edges


# rank -> the nodes of that rank (the table of docs/architecture/tests.md and the common brief of issue 13)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("composer", "errors", "oserrors", "limits", "gcpause", "fsutil", "run", "lockfile", "schema", "tomlpos",
     "reserved", "cachekinds", "version", "debversion", "spdx", "s3client", "arch", "hardware", "settings", "notices",
     "project", "hostchecks", "plugins", "update.chunking", "update.index", "update.store", "update.seeds",
     "update.slots", "update.channel", "update.bundle", "stats.clf", "advisory.osv", "advisory.feed",
     "advisory.changelog", "advisory.debian", "advisory.match"),
    ("trust", "rootfs"),
    ("package",),
    ("image", "repo", "farm"),
    ("profile", "caches", "boot", "update", "stats", "advisory.client"),
    ("solve",),
    ("pkgmgr",),
    ("report", "update.device", "debug", "graph", "advisory"),
    ("compose", "sdk", "site"),
    ("gitops",),
    ("scaffold", "plugins.api"),
    ("cli",),
    ("__main__",),
)
RANKS: dict[str, int] = {node: rank for rank, nodes in enumerate(LAYERS) for node in nodes}

# Upward imports known on main and being removed by another slice of issue 13: (importing module, imported
# module). Empty it as they are fixed; the test fails when an entry no longer occurs, so the set only shrinks.
KNOWN: frozenset[tuple[str, str]] = frozenset()


# Modules that are a node of their own, not part of their package's: composer.plugins.api is the facade of
# the plugin interface, re-exporting the row types of every registry (image, package, repo, gitops), so it
# ranks above them; the rest of composer.plugins (base, load, registry) is what those registries are built on
# (rank 0: it imports only notices and settings). The update formats (chunking, chunk index and store, seeds,
# slots and entry names, the bundle and channel documents) are pure and import only base modules: rank 0, so
# the A/B disk output (image) writes them; update.device, the device side of `vpk update`, reads the package
# database (pkgmgr) and ranks above it. stats.clf, the Common Log Format, is pure too: `repo serve` writes it.
# The advisory formats and matching (OSV, the feed, changelog CVEs, the Debian feed, version ranges) are pure:
# rank 0, so the Debian import (repo) derives a feed and `vcomp outdated` (solve) names what an upgrade fixes;
# advisory.client reads a feed through the TUF client (repo), and the audits (advisory) read locks, roots and
# images. Publishing a feed is a repository operation: composer/repo/advisories.py.
OWN_NODES = ("plugins.api", "update.chunking", "update.index", "update.store", "update.seeds", "update.slots",
             "update.channel", "update.bundle", "update.device", "stats.clf", "advisory.osv", "advisory.feed",
             "advisory.changelog", "advisory.debian", "advisory.match", "advisory.client")


def _node(module: str) -> str:
    parts = module.split(".")
    own = ".".join(parts[1:3])
    if own in OWN_NODES:
        return own
    return parts[1] if len(parts) > 1 else parts[0]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    nodes = sorted(set(edges) | {t for ts in edges.values() for t in ts})

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in nodes:
        if v not in index:
            visit(v)
    return out


def test_no_cycles_between_packages() -> None:
    packages: dict[str, set[str]] = defaultdict(set)
    for source, targets in _graph().items():
        for target in targets:
            if _node(source) != _node(target):
                packages[_node(source)].add(_node(target))
    assert _cycles(packages) == []


def test_the_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_graph_sees_the_imports() -> None:
    edges = _graph()
    assert "composer.pkgmgr.install" in edges["composer.pkgmgr.transaction"]
    assert "composer.pkgmgr.configure" in edges["composer.compose.build"]


def _upward(edges: dict[str, set[str]], ranks: dict[str, int]) -> list[str]:
    """One line per import that breaks the layering: the importing module, the imported one, both ranks."""
    found = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            a, b = _node(source), _node(target)
            if a == b or (source, target) in KNOWN:
                continue
            if ranks[b] >= ranks[a] and not ranks[a] == ranks[b] == 0:
                found.append(f"{source} (package {a}, rank {ranks[a]}) imports {target} (package {b}, rank "
                             f"{ranks[b]}): a package may import only packages of a lower rank")
    return found


def test_every_package_has_a_rank() -> None:
    nodes = {_node(m) for m in (_module(p) for p in COMPOSER.rglob("*.py"))}
    missing = sorted(nodes - set(RANKS))
    assert missing == [], f"give {missing} a rank in LAYERS of {__file__} (docs/architecture/tests.md)"


def test_no_upward_imports() -> None:
    violations = _upward(_graph(), RANKS)
    assert violations == [], "upward imports:\n" + "\n".join(violations)


def test_known_upward_imports_still_occur() -> None:
    edges = _graph()
    gone = sorted(edge for edge in KNOWN if edge[1] not in edges.get(edge[0], set()))
    assert gone == [], f"fixed, remove from KNOWN: {gone}"


def test_no_cycles_between_modules() -> None:
    """Also the base modules (rank 0), which may import each other, never in a circle."""
    assert _cycles(_graph()) == []


def test_the_rank_check_finds_an_upward_import() -> None:
    edges = {"composer.image.build": {"composer.solve.lock", "composer.errors"},
             "composer.errors": {"composer.trust.keys"}, "composer.solve.lock": {"composer.image.outputs"}}
    assert _upward(edges, RANKS) == [
        "composer.errors (package errors, rank 0) imports composer.trust.keys (package trust, rank 1): a package "
        "may import only packages of a lower rank",
        "composer.image.build (package image, rank 3) imports composer.solve.lock (package solve, rank 5): a "
        "package may import only packages of a lower rank",
    ]
    same_rank = {"composer.image.x": {"composer.repo.y"}, "composer.fsutil": {"composer.errors"}}
    assert len(_upward(same_rank, RANKS)) == 1
