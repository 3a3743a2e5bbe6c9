"""The client-under-test CLI of the public TUF conformance suite, built from vcomp's own client parts.

The suite (theupdateframework/tuf-conformance, ``CLIENT-CLI.md``) runs a client as::

    python -m composer.repo.conformance --metadata-dir DIR init TRUSTED_ROOT
    python -m composer.repo.conformance --metadata-dir DIR --metadata-url URL refresh
    python -m composer.repo.conformance --metadata-dir DIR --metadata-url URL --target-name PATH [...]
        --target-base-url URL --target-dir DIR download

and judges it by its exit code (0 or 1), the metadata it keeps in DIR (non-versioned names:
``root.json``, ``timestamp.json``, ...), the files it writes in the target directory and the requests
it makes. What runs is what ``vcomp`` runs: the same fetcher (``composer.repo.transports.UrlFetcher``,
with its deadlines and slow-retrieval rule), the same python-tuf ``Updater`` set-up, and the same trust
rules: ``init`` pins the root the user gave (``pinned/root.json`` in the metadata directory, a name
the suite does not read as a role) and every later run bootstraps from that pin and walks forward
from it, so a ``root.json`` planted in the cache never decides what is trusted; a metadata or target
directory that is a symlink, not owned by the user, or writable by others is refused.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tuf.api import exceptions as tuf_exc
from tuf.ngclient import Updater

from composer.errors import EXIT_ERROR, EXIT_OK, ComposerError, FetchError, UserError
from composer.fsutil import atomic_write
from composer.repo.client import describe, ensure_private_dir, load_trusted_root, make_updater

PROG = "vcomp-tuf-client"
PINNED_ROOT = Path("pinned") / "root.json"


@dataclass(frozen=True, kw_only=True)
class Request:
    """One invocation of the client CLI, as parsed from the command line."""

    command: str
    metadata_dir: Path
    metadata_url: str = ""
    trusted_root: Path | None = None
    target_names: tuple[str, ...] = ()
    target_base_url: str = ""
    target_dir: Path | None = None


def check_private_dir(path: Path, what: str) -> None:
    """vcomp's cache directory rules (client.ensure_private_dir): private, real, the user's own."""
    del what  # the client's message names the directory and the fix
    ensure_private_dir(path)


def pinned_root(metadata_dir: Path) -> bytes:
    """The root the user pinned with ``init`` (re-checked: it is a file in the cache, like any other)."""
    path = metadata_dir / PINNED_ROOT
    if path.parent.is_dir():
        check_private_dir(path.parent, "pinned-root directory")
    if not path.is_file() or path.is_symlink():
        raise UserError(f"{path}: no pinned trust root", hint=f"run '{PROG} --metadata-dir {metadata_dir} init "
                                                              "ROOT.json' first with the repository's root")
    return load_trusted_root(path)


def init(req: Request) -> str:
    """Pin the trusted root; no request goes to the repository."""
    assert req.trusted_root is not None
    root = load_trusted_root(req.trusted_root)
    check_private_dir(req.metadata_dir, "metadata directory")
    check_private_dir((req.metadata_dir / PINNED_ROOT).parent, "pinned-root directory")
    atomic_write(req.metadata_dir / PINNED_ROOT, root, durable=False)
    return f"pinned {req.trusted_root} as the trust root of {req.metadata_dir}"


def updater_for(req: Request) -> Updater:
    if not req.metadata_url:
        raise UserError(f"'{req.command}' needs --metadata-url", hint="pass the repository's metadata URL")
    check_private_dir(req.metadata_dir, "metadata directory")
    if req.target_dir is not None:
        check_private_dir(req.target_dir, "target directory")
    return make_updater(metadata_dir=req.metadata_dir, metadata_url=req.metadata_url,
                         targets_url=req.target_base_url or None, root=pinned_root(req.metadata_dir),
                         target_dir=req.target_dir)


def refresh(req: Request) -> str:
    """The TUF client workflow for the top-level roles (root, timestamp, snapshot, targets)."""
    updater_for(req).refresh()
    return f"refreshed the metadata in {req.metadata_dir}"


def download(req: Request) -> str:
    """Refresh, then fetch and verify each target in order with one Updater; a cached verified copy is reused."""
    if not req.target_names or req.target_dir is None or not req.target_base_url:
        raise UserError("'download' needs --target-name, --target-dir and --target-base-url",
                        hint="see CLIENT-CLI.md of the TUF conformance suite")
    updater = updater_for(req)
    updater.refresh()
    done = []
    for name in req.target_names:
        info = updater.get_targetinfo(name)
        if info is None:
            raise FetchError(f"{req.metadata_url}: no target '{name}' in the trusted targets metadata",
                             hint="check the target name")
        cached = updater.find_cached_target(info)
        done.append(cached if cached is not None else updater.download_target(info))
    return "downloaded " + ", ".join(done)


COMMANDS = {"init": init, "refresh": refresh, "download": download}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="vcomp's TUF client, for the TUF conformance suite")
    parser.add_argument("--metadata-dir", type=Path, required=True)
    parser.add_argument("--metadata-url", default="")
    parser.add_argument("--target-name", action="append", default=[])
    parser.add_argument("--target-base-url", default="")
    parser.add_argument("--target-dir", type=Path)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="pin the trusted root").add_argument("trusted_root", type=Path)
    sub.add_parser("refresh", help="update the top-level metadata")
    sub.add_parser("download", help="download and verify targets")
    return parser


def parse(argv: Sequence[str] | None) -> tuple[Request, int]:
    args = build_parser().parse_args(argv)
    req = Request(command=args.command, metadata_dir=args.metadata_dir, metadata_url=args.metadata_url,
                  trusted_root=getattr(args, "trusted_root", None), target_names=tuple(args.target_name),
                  target_base_url=args.target_base_url, target_dir=args.target_dir)
    return req, int(args.verbose)


def main(argv: Sequence[str] | None = None) -> int:
    req, verbose = parse(argv)
    levels = {0: logging.WARNING, 1: logging.INFO}
    logging.basicConfig(level=levels.get(verbose, logging.DEBUG), format=f"{PROG}: %(name)s: %(message)s")
    try:
        said = COMMANDS[req.command](req)
    except ComposerError as exc:
        hint = f"\n  hint: {exc.hint}" if exc.hint else ""
        sys.stderr.write(f"{PROG}: {req.command}: {exc.message}{hint}\n")
        return exc.exit_code
    except (tuf_exc.RepositoryError, tuf_exc.DownloadError) as exc:
        sys.stderr.write(f"{PROG}: {req.command}: {describe(exc)}\n")
        return EXIT_ERROR
    except (OSError, ValueError) as exc:  # a cache that cannot be written, a target path python-tuf refuses
        sys.stderr.write(f"{PROG}: {req.command}: {type(exc).__name__}: {exc}\n")
        return EXIT_ERROR
    sys.stdout.write(f"{PROG}: {said}\n")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
