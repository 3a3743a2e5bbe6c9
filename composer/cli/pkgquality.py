"""``vcomp pkg info NAME --repo R`` (the package's quality metrics) and ``vcomp pkg rebuild-check`` (the edges of
composer.report.quality and composer.package.rebuild; docs/quality.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from composer.cli import jsonout
from composer.cli.common import EXIT_ERROR, EXIT_OK, table
from composer.cli.common import out as _out
from composer.errors import UserError
from composer.report.repoquality import published, quality_of


def cmd_pkg_info_repo(args: argparse.Namespace) -> int:
    """``pkg info NAME --repo R``: the stored package's metadata and its quality metrics."""
    repo_dir = Path(args.repo)
    entry, path = published(repo_dir, args.package, args.arch)
    q = quality_of(repo_dir, path)
    if jsonout.wanted(args):
        jsonout.emit({"entry": entry.to_dict(), "quality": q.to_dict()})
        return EXIT_OK
    rows = [("name", entry.name), ("version", entry.version_text), ("arch", entry.arch),
            ("description", entry.description), ("license", entry.license), ("file", str(path)), *q.rows()]
    for line in table(rows):
        _out(line)
    return EXIT_OK


def recipe_dir(target: str, recipes: str) -> Path:
    path = Path(target)
    if (path / "recipe.toml").is_file():
        return path
    candidate = Path(recipes) / target
    if (candidate / "recipe.toml").is_file():
        return candidate
    raise UserError(f"'{target}' is neither a recipe directory nor a recipe in {recipes}/",
                    hint="pass RECIPE_DIR (holding recipe.toml) or NAME with --recipes DIR")


def cmd_pkg_rebuild_check(args: argparse.Namespace) -> int:
    from composer.fsutil import sha256_file
    from composer.package.archive import read_header
    from composer.package.rebuild import RebuildStore, compare, rebuild
    from composer.package.recipe import load_recipe
    rdir = recipe_dir(args.target, args.recipes)
    name = load_recipe(rdir, args.arch).name
    repo_dir = Path(args.repo)
    _entry, path = published(repo_dir, name, args.arch)
    header = read_header(path)
    rebuilt = rebuild(rdir, args.arch, header, cache=Path(args.cache) if args.cache else None)
    result = compare(header, rebuilt, published_sha256=sha256_file(path))
    RebuildStore(repo_dir).record(result)
    if jsonout.wanted(args):
        jsonout.emit(result.to_dict())
    else:
        _out(f"{result.name} {result.version} {result.arch}: {result.verdict} "
             f"({'rebuilt from ' + str(rdir) + ', compared with ' + str(path)})")
        for line in (*(f"  metadata {m}" for m in result.metadata), *(f"  {f}" for f in result.files)):
            _out(line)
        if result.more:
            _out(f"  and {result.more} more files")
    return EXIT_OK if result.identical else EXIT_ERROR


def register(pkg: Any) -> None:
    r = pkg.add_parser("rebuild-check", help="rebuild a package from its recipe in a clean directory and compare "
                                             "it with the published one (recorded for the quality metrics)")
    r.add_argument("target", metavar="RECIPE_DIR|NAME")
    r.add_argument("--repo", required=True, metavar="DIR", help="the repository directory holding the package")
    r.add_argument("--arch", default="x86_64")
    r.add_argument("--recipes", default="recipes", help="where NAME's recipe is (default: recipes)")
    r.add_argument("--cache", help="download cache (default: $VCOMP_CACHE or ~/.cache/vcomp)")
    jsonout.add_json(r, "pkg rebuild-check")
    r.set_defaults(func=cmd_pkg_rebuild_check)
