"""``vcomp repo site``: read a repository (and access logs), write the static site (the I/O edge of composer.site).

    OUT/index.html  search.js  search-index.json  style.css  advisories.html  stats.html  stats-*.svg
    OUT/packages/NAME.html  NAME.svg (the dependency graph, Graphviz dot)

The site is written into a new directory beside OUT and moved into place, so a reader (or a CDN sync) never
sees half a site; an OUT that is not a site written by vcomp is refused rather than replaced.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from composer.errors import UserError
from composer.graph import model as graphs
from composer.graph.render import to_svg
from composer.graph.svg import Bar, bars, columns, human
from composer.package.manifest import Manifest
from composer.repo.catalog import Catalog, manifest
from composer.repo.client import RepositoryClient
from composer.repo.index import IndexEntry
from composer.site import pages
from composer.site.data import SiteData
from composer.site.model import SiteModel, build_model, listed_builds
from composer.stats.downloads import BY, Stats

MARKER = ".vcomp-site"
GRAPH_NODES = 60     # a package's picture: its whole closure up to this many packages, else its direct ones


@dataclass(frozen=True, slots=True, kw_only=True)
class Written:
    out: Path
    pages: int
    files: int


def package_graph(u: graphs.Universe, name: str) -> graphs.Graph:
    try:
        g = graphs.graph(u, [name], title=name)
    except graphs.GraphTooLarge:
        g = graphs.graph(u, [name], title=name, depth=1)
    return g if len(g.nodes) <= GRAPH_NODES else graphs.graph(u, [name], title=name, depth=1)


def render(m: SiteModel, entries: Sequence[IndexEntry], draw: Callable[[graphs.Graph], bytes]) -> dict[str, bytes]:
    """Every file of the site: relative path -> bytes (pure but for ``draw``, which makes a graph's SVG)."""
    files: dict[str, bytes] = {
        "index.html": pages.index_page(m).encode(), "search.js": pages.SEARCH_JS.encode(),
        "search-index.json": pages.search_index(m).encode(), "style.css": pages.CSS.encode(),
        "advisories.html": pages.advisories_page(m).encode(), "stats.html": pages.stats_page(m).encode(),
        MARKER: b"written by vcomp repo site; the whole directory is replaced on the next run\n"}
    files.update(charts(m.stats))
    universes = {a: graphs.universe(entries, a) for a in m.architectures}
    for p in m.packages:
        files[f"packages/{p.slug}.html"] = pages.package_page(p, m).encode()
        u = universes.get(p.graph_arch)
        if u is not None and p.name in u.packages:
            files[f"packages/{p.slug}.svg"] = draw(package_graph(u, p.name))
        else:   # a name only of another architecture than those drawn: an empty picture, never a broken link
            files[f"packages/{p.slug}.svg"] = bars(f"{p.name}: no graph", []).encode()
    return files


def charts(s: Stats) -> dict[str, bytes]:
    def rows(by: str, limit: int) -> list[Bar]:
        counted = s.count(BY[by])
        if by == "day":
            counted.sort()
        return [Bar(label=k, value=n, note=f"{n} ({human(b)})") for k, n, b in counted[:limit]]
    return {"stats-day.svg": columns("downloads per day", rows("day", 120)).encode(),
            "stats-package.svg": bars("downloads per package (top 40)", rows("package", 40)).encode(),
            "stats-arch.svg": bars("downloads per architecture", rows("arch", 20)).encode()}


def build_site(client: RepositoryClient, catalog: Catalog, stats: Stats, data: SiteData, out: Path, *,
               title: str, files: bool = True) -> Written:
    """``files``: list each package's files (its newest build is fetched and verified to read its manifest)."""
    listed = listed_builds(catalog.entries, catalog.architectures) if files else []
    manifests: dict[str, Manifest] = {e.sha256: manifest(client, e) for e in listed}
    m = build_model(title, catalog.architectures, catalog.entries, manifests, stats, data)
    tree = render(m, catalog.entries, to_svg)
    write_tree(out, tree)
    return Written(out=out, pages=sum(1 for k in tree if k.endswith(".html")), files=len(tree))


def write_tree(out: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` as the directory ``out`` (replacing a previous site there, and nothing else)."""
    if out.exists() and not (out / MARKER).is_file() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out}: exists and is not a site written by 'vcomp repo site'",
                        hint="pass an empty or new directory with --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for rel, data in sorted(files.items()):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            os.chmod(path, 0o644)
        os.chmod(tmp, 0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"{out}: cannot write the site ({exc.strerror})",
                        hint="check the directory's permissions") from None
