"""`vcomp debuginfod` and `vcomp debug core|timeline`: debugging what the composer built (docs/debugging.md)."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import sys
from pathlib import Path

from composer.cli import jsonout
from composer.cli.common import EXIT_OK, Subparsers
from composer.cli.common import out as _out
from composer.errors import UserError

DEFAULT_LISTEN = "127.0.0.1:8002"   # elfutils' debuginfod listens on 8002


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IP address; port 0: a free one) of ``--listen``."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        number = -1
    if not sep or not 0 <= number <= 65535:
        raise UserError(f"--listen {text}: not an address and port", hint="give e.g. --listen 127.0.0.1:8002")
    return host, number


def cmd_debuginfod(args: argparse.Namespace) -> int:
    from composer.debug.index import Store, architectures, build_index
    from composer.debug.server import DebuginfodServer
    from composer.package.build import default_cache
    from composer.repo.client import RepositoryClient, load_trusted_root
    host, port = parse_listen(args.listen)
    cache = default_cache()
    client = RepositoryClient(args.repo, load_trusted_root(Path(args.root)), cache / "repos",
                              mirrors=args.mirror or ())
    store = Store(dir=cache / "debuginfod")
    say = jsonout.say(args)
    index = build_index(client, store, architectures(client, args.arch or ()), say)
    server = DebuginfodServer((host, port), index, store, log=sys.stderr if args.verbose > 0 else None)
    say(f"{len(index.debuginfo)} debug files, {len(index.executable)} executables from {args.repo}")
    _out(f"serving debuginfod at {server.url} (DEBUGINFOD_URLS={server.url}; Ctrl-C to stop)")
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()
    return EXIT_OK


def register(sub: Subparsers) -> None:
    d = sub.add_parser("debuginfod", help="serve a repository's debug files and executables by build-id "
                                          "(the debuginfod protocol: gdb, debuginfod-find)")
    d.add_argument("repo", nargs="?", help="repository URL or directory, or the name of a repository of "
                                           "vcomp.toml (default: its first repository)")
    d.add_argument("--root", help="the pinned trust root (root.json; default: the vcomp.toml repository's)")
    d.add_argument("--mirror", action="append", help="an untrusted mirror, tried in order on failure")
    d.add_argument("--profile", help="use this profile's repositories when vcomp.toml names none")
    d.add_argument("--arch", action="append", help="index only this architecture (repeatable; default: every "
                                                   "architecture the repository has)")
    d.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"address to listen on (default {DEFAULT_LISTEN}; port 0: a free one, printed)")
    d.set_defaults(func=cmd_debuginfod)
