"""`vcomp search|info|fetch`: a repository's verified index, read through TUF (registered by composer.cli.main)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from composer.cli import jsonout
from composer.cli.common import EXIT_OK, Subparsers, table
from composer.cli.common import out as _out

if TYPE_CHECKING:
    from composer.repo.client import RepositoryClient


def _client(args: argparse.Namespace) -> RepositoryClient:
    from composer.package.build import default_cache
    from composer.repo.client import RepositoryClient, load_trusted_root
    return RepositoryClient(args.repo, load_trusted_root(Path(args.root)), default_cache() / "repos",
                            mirrors=args.mirror or ())


def cmd_search(args: argparse.Namespace) -> int:
    client = _client(args)
    found = client.search(args.query, args.arch)
    if jsonout.wanted(args):
        jsonout.emit({"query": args.query, "arch": args.arch, "packages": [e.to_dict() for e in found]})
        return EXIT_OK
    for line in table([(e.name, e.version_text, e.arch, e.type, e.description) for e in found]):
        _out(line)
    if not found:
        _out(f"no package matches '{args.query}' for {args.arch}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    client = _client(args)
    e = client.metadata(args.name, args.arch, args.version or "")
    if jsonout.wanted(args):
        jsonout.emit(e.to_dict())
        return EXIT_OK
    deps = ", ".join(f"{k} {v if isinstance(v, str) else v.get('version')}" for k, v in e.dependencies.items())
    for k, v in [("name", e.name), ("version", e.version_text), ("arch", e.arch), ("type", e.type),
                 ("description", e.description), ("license", e.license), ("depends", deps),
                 ("provides", ", ".join(e.provides)), ("size", str(e.size)), ("sha256", e.sha256),
                 ("signer", e.signer), ("path", e.path)]:
        if v:
            _out(f"{k:<12} {v}")
    return EXIT_OK


def cmd_fetch(args: argparse.Namespace) -> int:
    client = _client(args)
    name, _, version = args.spec.partition("=")
    entry = client.metadata(name, args.arch, version)
    path = client.fetch(entry, Path(args.out))
    if jsonout.wanted(args):
        jsonout.emit({"path": str(path), "package": entry.to_dict()})
        return EXIT_OK
    _out(str(path))
    return EXIT_OK


def _repo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", help="repository URL (file://, http://, https://) or directory, or the name of a "
                                  "repository of vcomp.toml (default: its first repository)")
    p.add_argument("--root", help="the pinned trust root (root.json; default: the vcomp.toml repository's)")
    p.add_argument("--mirror", action="append", help="an untrusted mirror, tried in order on failure")
    p.add_argument("--profile", help="use this profile's repositories (--repo NAME picks one; default: the first) "
                                     "when vcomp.toml names none (default: its [project] profile)")
    p.add_argument("--arch", default="x86_64")


def register(sub: Subparsers) -> None:
    s = sub.add_parser("search", help="search a repository's verified index")
    s.add_argument("query")
    jsonout.add_json(s, "search")
    _repo_args(s)
    s.set_defaults(func=cmd_search)
    s = sub.add_parser("info", help="show a package from a repository's verified index")
    s.add_argument("name")
    s.add_argument("--version")
    jsonout.add_json(s, "info")
    _repo_args(s)
    s.set_defaults(func=cmd_info)
    s = sub.add_parser("fetch", help="download and verify a package")
    s.add_argument("spec", metavar="NAME[=VERSION]")
    s.add_argument("--out", required=True)
    jsonout.add_json(s, "fetch")
    _repo_args(s)
    s.set_defaults(func=cmd_fetch)
