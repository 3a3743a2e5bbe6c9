"""`vcomp repo stats` and `vcomp repo site` (registered by composer.cli.repo under `vcomp repo`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from composer.cli import jsonout
from composer.cli.common import EXIT_OK, Subparsers, table
from composer.cli.common import out as _out
from composer.errors import UserError

if TYPE_CHECKING:
    from composer.repo.client import RepositoryClient
    from composer.stats.downloads import Stats


def _client(repo: str, root: str | None) -> RepositoryClient:
    from composer.package.build import default_cache
    from composer.repo.catalog import open_client
    return open_client(repo, root, default_cache() / "repos")


def _stats(logs: list[str], client: RepositoryClient) -> Stats:
    from composer.repo.catalog import load_catalog
    from composer.stats.clf import parse_lines
    from composer.stats.downloads import downloads, targets_of
    from composer.stats.logs import read_lines
    targets = targets_of(load_catalog(client).entries)
    return downloads([parse_lines(read_lines(Path(p))) for p in logs], targets)


def _repo_of(args: argparse.Namespace) -> str:
    """--repo, or the repository whose logs/ holds the first log (what 'vcomp repo serve' writes)."""
    if args.repo:
        return str(args.repo)
    first = Path(args.log[0]).resolve().parent
    if first.name == "logs" and (first.parent / "metadata" / "root.json").is_file():
        return str(first.parent)
    raise UserError("which repository do the logs belong to?",
                    hint="pass --repo DIR-OR-URL (its index maps the requested files to packages)")


def cmd_repo_stats(args: argparse.Namespace) -> int:
    from composer.stats.downloads import BY
    stats = _stats(args.log, _client(_repo_of(args), args.root))
    rows = stats.count(BY[args.by])
    if args.by == "day":
        rows.sort()
    if jsonout.wanted(args):
        jsonout.emit({"by": args.by, "lines": stats.lines, "downloads": len(stats.downloads),
                      "bytes": sum(d.size for d in stats.downloads), "other": stats.other,
                      "malformed": dict(stats.malformed),
                      "rows": [{"key": k, "downloads": n, "bytes": b} for k, n, b in rows]})
        return EXIT_OK
    for line in table([(k, str(n), str(b)) for k, n, b in rows], right=(1, 2)):
        _out(line)
    skipped = sum(stats.malformed.values())
    _out(f"{len(stats.downloads)} downloads in {stats.lines} lines; {stats.other} other requests; "
         f"{skipped} malformed lines skipped" + (f" ({', '.join(f'{n} {why}' for why, n in stats.malformed.items())})"
                                                  if skipped else ""))
    return EXIT_OK


def cmd_repo_site(args: argparse.Namespace) -> int:
    from composer.repo.catalog import load_catalog
    from composer.site.build import build_site
    from composer.site.providers import site_data
    from composer.stats.downloads import empty
    client = _client(args.repo, args.root)
    catalog = load_catalog(client)
    stats = _stats(args.access_log, client) if args.access_log else empty()
    title = args.title or Path(args.repo.rstrip("/")).name or "repository"
    written = build_site(client, catalog, stats, site_data(client), Path(args.out), title=title,
                         files=not args.no_files)
    _out(f"wrote {written.pages} pages ({written.files} files) for {len(catalog.names())} packages into "
         f"{written.out}; serve it with any static web server")
    return EXIT_OK


def register(repo: Subparsers) -> None:
    from composer.stats.downloads import BY
    r = repo.add_parser("stats", help="downloads per package, version, architecture or day from access logs "
                                      "(Common Log Format: repo serve's, nginx's, Apache's)")
    r.add_argument("log", nargs="+", metavar="LOG", help="access log files (.gz too)")
    r.add_argument("--repo", help="the repository the logs are of (default: the one whose logs/ holds LOG)")
    r.add_argument("--root", help="its pinned trust root (default: a directory's metadata/root.json)")
    r.add_argument("--by", choices=sorted(BY), default="package")
    jsonout.add_json(r, "repo stats")
    r.set_defaults(func=cmd_repo_stats)
    r = repo.add_parser("site", help="a static web site of the repository: search, package pages, graphs, "
                                     "advisories, statistics (docs/site.md)")
    r.add_argument("repo", metavar="REPO", help="repository directory or URL")
    r.add_argument("--out", required=True, metavar="DIR", help="where the site is written (replaced as a whole)")
    r.add_argument("--root", help="the pinned trust root (default: a directory's metadata/root.json)")
    r.add_argument("--access-log", action="append", default=[], metavar="LOG",
                   help="access logs for the statistics pages (repeatable)")
    r.add_argument("--title", help="the site's name (default: the repository directory's name)")
    r.add_argument("--no-files", action="store_true",
                   help="list no files on the package pages (no package is downloaded: for a metadata-only "
                        "repository, or a quick preview)")
    r.set_defaults(func=cmd_repo_site)
