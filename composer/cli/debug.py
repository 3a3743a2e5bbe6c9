"""`vcomp debuginfod` and `vcomp debug core|timeline`: debugging what the composer built (docs/debugging.md)."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from composer.cli import jsonout
from composer.cli.common import EXIT_OK, Subparsers
from composer.cli.common import out as _out
from composer.errors import UserError

if TYPE_CHECKING:
    from composer.debug.timeline import Timeline

DEFAULT_LISTEN = "127.0.0.1:8002"   # elfutils' debuginfod listens on 8002
MAX_LOG_LINES = 2_000_000            # a console log longer than this is read up to here


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


def write_timeline(log: Path) -> str:
    """Parse a console log; write NAME.timeline.txt, .json and .svg beside it; return the text."""
    from composer.debug.timeline import parse, render_svg, render_text
    from composer.fsutil import atomic_write
    t = _timeline_of(log, parse)
    text = render_text(t)
    base = log.with_suffix("")
    atomic_write(base.with_name(base.name + ".timeline.txt"), text.encode(), durable=False)
    atomic_write(base.with_name(base.name + ".timeline.json"),
                 (jsonout.dumps(jsonout.document({"log": str(log), **t.to_dict()})) + "\n").encode(), durable=False)
    atomic_write(base.with_name(base.name + ".timeline.svg"), render_svg(t).encode(), durable=False)
    return text


def _timeline_of(log: Path, parse: Callable[[Iterable[str]], Timeline]) -> Timeline:
    try:
        with log.open(encoding="utf-8", errors="replace") as f:
            return parse(line for line, _ in zip(f, range(MAX_LOG_LINES), strict=False))
    except OSError as exc:
        raise UserError(f"cannot read console log {log}: {exc.strerror}",
                        hint="give a console log of vcomp boot (images/NAME/ARCH/boot/*.log)") from None


def cmd_timeline(args: argparse.Namespace) -> int:
    from composer.debug.timeline import parse, render_svg, render_text
    log = Path(args.log)
    t = _timeline_of(log, parse)
    if args.svg:
        from composer.fsutil import atomic_write
        atomic_write(Path(args.svg), render_svg(t).encode(), durable=False)
    if jsonout.wanted(args):
        jsonout.emit({"log": str(log), **t.to_dict()})
        return EXIT_OK
    _out(render_text(t).rstrip())
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
    g = sub.add_parser("debug", help="debug a booted image: a boot's timeline, a core dump (docs/debugging.md)")
    verbs = g.add_subparsers(dest="debug_command", required=True)
    t = verbs.add_parser("timeline", help="the timeline of a boot's console log (vcomp boot --trace): kernel "
                                          "initcalls and init's services")
    t.add_argument("log", help="a console log (images/NAME/ARCH/boot/*.log)")
    t.add_argument("--svg", metavar="FILE", help="also draw it as an SVG picture")
    jsonout.add_json(t, "debug timeline")
    t.set_defaults(func=cmd_timeline)
