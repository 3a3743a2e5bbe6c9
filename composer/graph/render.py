"""A graph as Graphviz dot text, as JSON, and as SVG (dot, from Debian's graphviz, through composer.run)."""

from __future__ import annotations

from typing import Any

from composer.graph.model import Graph

DOT_TIMEOUT = 120.0
STYLE = {"depends": "", "recommends": ' [style="dashed"]'}


def quote(text: str) -> str:
    """A dot double-quoted string: backslashes and quotes escaped, control characters dropped."""
    clean = "".join(c for c in text if c.isprintable())
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(g: Graph) -> str:
    """Deterministic dot: nodes ``n0..`` in name order (names are labels only, so no name is dot syntax)."""
    ids = {n.name: f"n{i}" for i, n in enumerate(g.nodes)}
    roots = set(g.roots)
    lines = [f"digraph {quote(g.title)} {{", '  graph [rankdir="LR", fontname="DejaVu Sans", fontsize="10"];',
             '  node [shape="box", style="rounded,filled", fillcolor="#eef3fb", fontname="DejaVu Sans", '
             'fontsize="10"];', '  edge [color="#556070"];']
    for n in g.nodes:
        fill = ', fillcolor="#ffe9b3"' if n.name in roots else ""
        lines.append(f"  {ids[n.name]} [label={quote(f'{n.name} {n.version}')}{fill}];")
    for e in g.edges:
        lines.append(f"  {ids[e.source]} -> {ids[e.target]}{STYLE[e.kind]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json(g: Graph) -> dict[str, Any]:
    return g.to_dict()


def to_svg(g: Graph) -> bytes:
    """The graph drawn by ``dot -Tsvg`` (same dot text and graphviz: same bytes)."""
    from composer.run import run
    return run(["dot", "-Tsvg"], stdin=to_dot(g).encode(), timeout=DOT_TIMEOUT, env={"SOURCE_DATE_EPOCH": "0"}).stdout
