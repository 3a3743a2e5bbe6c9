"""`vpk`: the package manager on the running system (docs/updates/vpk-on-device.md).

The same verbs and code as ``vcomp pkg --root / VERB`` (composer/cli/pkgroot.py), on ``/`` by default: the
repositories and pinned trust roots are the ones the image recorded at build (``var/lib/vcomp/...``, at the
URLs the profile gave devices: ``repositories[].device-url``), the downloads are kept in /var/cache/vpk and
a change holds the root's lock. ``/usr/bin/vpk`` (recipes/vpk) runs :func:`main`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from composer import __version__
from composer.cli import jsonout, pkgroot
from composer.cli.common import GLOBAL_OPTIONS, Parser

PROG = "vpk"
DEVICE_CACHE = "/var/cache/vpk"   # VCOMP_CACHE, when the environment does not set one
DEVICE_OPTIONS = tuple(o for o in GLOBAL_OPTIONS if "--config" not in o.flags)   # no project on a device


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="the package manager of this system: install, remove, upgrade and roll "
                                      "back packages from its signed repositories")
    p.add_argument("--version", action="version", version=f"vpk (Veridian Composer) {__version__}")
    p.add_argument("--root", dest="pkg_root", metavar="DIR", default="/",
                   help="the root to manage (default: /, this system)")
    sub = p.add_subparsers(dest="verb", required=True)
    pkgroot.register(sub, note="")
    i = sub.add_parser("info", help="an installed package's metadata")
    i.add_argument("package")
    jsonout.add_json(i, "pkg info")
    pkgroot.add_root(i)
    i.set_defaults(func=pkgroot.cmd_info)
    v = sub.add_parser("verify", help="check the installed files against the package database")
    v.add_argument("package", nargs="*")
    jsonout.add_json(v, "pkg verify")
    pkgroot.add_root(v)
    v.set_defaults(func=pkgroot.cmd_verify)
    for parser in (p, *p.subcommands()):   # the history records what was typed, as vpk
        parser.set_defaults(program=PROG)
    p.add_global_options(DEVICE_OPTIONS, top=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one vpk command; the exit code follows vcomp's (docs/architecture/cli.md)."""
    from composer.cli.main import configure, run
    os.environ.setdefault("VCOMP_CACHE", DEVICE_CACHE)
    typed = tuple(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = typed
    args.config = None
    configure(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
