"""`vcomp graph` and `vcomp size`: dependency graphs and size breakdowns (registered by composer.cli.main)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from composer.cli import jsonout
from composer.cli.common import EXIT_OK, Subparsers
from composer.cli.common import out as _out
from composer.errors import UserError
from composer.fsutil import atomic_write
from composer.graph.model import Graph


def _dot(g: Graph) -> bytes:
    from composer.graph.render import to_dot
    return to_dot(g).encode()


def _svg(g: Graph) -> bytes:
    from composer.graph.render import to_svg
    return to_svg(g)


def _json(g: Graph) -> bytes:
    return (jsonout.dumps(jsonout.document(g.to_dict())) + "\n").encode()


FORMATS: Mapping[str, Callable[[Graph], bytes]] = MappingProxyType({"dot": _dot, "svg": _svg, "json": _json})


def _emit(data: bytes, out: str | None) -> None:
    if out:
        atomic_write(Path(out), data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def _graph_of(args: argparse.Namespace) -> Graph:
    from composer.graph import model
    from composer.graph.subjects import is_profile, locked_set, package_universe
    depth = args.depth
    if depth is not None and depth < 0:
        raise UserError(f"--depth {depth}: must be 0 or more", hint="--depth 1 draws the direct dependencies")
    try:
        if is_profile(args.subject):
            s = locked_set(args.subject, args.arch)
            if depth is None and not args.reverse:
                return model.whole(s.universe(), title=s.title, roots=s.requested)
            return model.graph(s.universe(), s.requested, title=s.title, reverse=args.reverse, depth=depth)
        if not args.repo:
            raise UserError(f"'{args.subject}' is a package name: which repository?",
                            hint="pass --repo DIR-OR-URL (and --root ROOT.json for a URL), or give a profile "
                                 "(PROFILE.yaml) to draw its lock")
        from composer.package.build import default_cache
        from composer.repo.catalog import open_client
        u = package_universe(open_client(args.repo, args.root, default_cache() / "repos"), args.subject, args.arch)
        return model.graph(u, [args.subject], title=args.subject, reverse=args.reverse, depth=depth)
    except model.GraphTooLarge as exc:
        raise UserError(f"{args.subject}: the graph is too large ({exc})",
                        hint="limit it with --depth N") from None


def cmd_graph(args: argparse.Namespace) -> int:
    if args.sizes:
        return cmd_size(args)
    fmt = "json" if jsonout.wanted(args) else args.format or "dot"
    _emit(FORMATS[fmt](_graph_of(args)), args.out)
    return EXIT_OK


def cmd_size(args: argparse.Namespace) -> int:
    from composer.graph.sizes import text, to_svg
    from composer.graph.subjects import is_profile, locked_set, size_breakdown
    if not is_profile(args.subject):
        raise UserError(f"'{args.subject}': a size breakdown is of a profile's lock",
                        hint="vcomp size PROFILE.yaml [--arch A]")
    b = size_breakdown(locked_set(args.subject, args.arch))
    fmt = "json" if jsonout.wanted(args) else args.format or "text"
    if fmt == "json":
        _emit((jsonout.dumps(jsonout.document(b.to_dict())) + "\n").encode(), args.out)
    elif fmt == "svg":
        _emit(to_svg(b).encode(), args.out)
    elif fmt == "text":
        _emit(("\n".join(text(b)) + "\n").encode(), args.out)
    else:
        raise UserError(f"--format {fmt}: a size breakdown is text, svg or json", hint="--format svg")
    if args.out:
        _out(f"wrote {args.out}")
    return EXIT_OK


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("subject", metavar="PROFILE|NAME", help="a profile (its lock is drawn) or a package name (--repo)")
    p.add_argument("--repo", help="the repository of a package NAME (directory or URL)")
    p.add_argument("--root", help="the pinned trust root of --repo (default: a directory's metadata/root.json)")
    p.add_argument("--arch", default="x86_64")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")


def register(sub: Subparsers) -> None:
    g = sub.add_parser("graph", help="dependency graph of a profile's lock or a repository's package (dot, svg, json)")
    _common(g)
    g.add_argument("--format", choices=sorted(FORMATS),
                   help="dot (default), svg (Graphviz dot, Debian's graphviz) or json (schemas/graph.schema.json); "
                        "with --sizes: text (default), svg or json")
    g.add_argument("--reverse", action="store_true", help="the packages that depend on it, across the repository")
    g.add_argument("--depth", type=int, metavar="N", help="at most N edges away (default: all)")
    g.add_argument("--sizes", action="store_true", help="a profile's size breakdown instead (as 'vcomp size')")
    jsonout.add_json(g, "graph")
    g.set_defaults(func=cmd_graph)
    s = sub.add_parser("size", help="which packages and files take a profile's space (text, svg or json)")
    _common(s)
    s.add_argument("--format", choices=("text", "svg", "json"), help="text (default), svg (bar charts) or json")
    jsonout.add_json(s, "size")
    s.set_defaults(func=cmd_size)
