"""`vcomp validate|lock|why`: profiles and their locks (registered by composer.cli.main)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from composer.cli.common import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, OFFLINE_HELP, Subparsers
from composer.cli.common import err as _err
from composer.cli.common import out as _out
from composer.errors import ComposerError, UserError


def cmd_validate(args: argparse.Namespace) -> int:
    from composer.profile.load import load_profile
    failed = 0
    for path in args.profile:
        try:
            prof = load_profile(Path(path))
        except ComposerError as exc:
            failed += 1
            _err(exc)
            continue
        per_arch = ", ".join(f"{a}: {len(prof.packages_for(a))}" for a in prof.architectures)
        _out(f"{path}: valid: profile '{prof.name}', packages requested ({per_arch}), "
             f"{len(prof.drivers)} drivers, outputs {', '.join(o.name for o in prof.outputs)}")
    return EXIT_ERROR if failed else EXIT_OK


PROFILE_SUFFIXES = (".yaml", ".yml")


def looks_like_profile(word: str) -> bool:
    """A profile path, not a package name: package names never contain a '/' nor end in .yaml/.yml."""
    return "/" in word or word.endswith(PROFILE_SUFFIXES)


def split_update(update: Sequence[str], profiles: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(package names, profiles) of ``lock --update NAME... PROFILE...``: ``--update`` takes one or more names
    and stops at the first word that is a profile path, so ``--update nano profiles/server.yaml`` works as the
    profile-first order and ``--update a --update b PROFILE`` does (pure)."""
    names = tuple(w for w in update if not looks_like_profile(w))
    moved = tuple(w for w in update if looks_like_profile(w))
    return names, moved + tuple(profiles)


def cmd_lock(args: argparse.Namespace) -> int:
    from composer.solve.relock import check, relock
    names, profiles = split_update(args.update or (), args.profile)
    if not profiles:
        raise UserError("vcomp lock: no profile given",
                        hint="name the profile: vcomp lock [--update NAME...] PROFILE.yaml")
    if names and (args.check or args.upgrade):
        raise UserError("vcomp lock: --update NAME cannot be combined with "
                        + ("--check" if args.check else "--upgrade"),
                        hint="--update moves only the named packages; --upgrade moves all; --check writes nothing")
    status = EXIT_OK
    for path in profiles:
        if args.check:
            found = check(Path(path))
            if not found.exists:
                _err(UserError(f"{found.target} does not exist", hint=f"run: vcomp lock {path}"))
                status = EXIT_ERROR
                continue
            for line in found.problems:
                sys.stderr.write(f"{found.target}: {line}\n")
            if found.problems:  # a comparison that found changes: exit 2, like plan and diff (1 is for errors)
                sys.stderr.write(f"  hint: run: vcomp lock {path}\n")
                status = EXIT_CHANGES if status == EXIT_OK else status
            else:
                _out(f"{found.target}: up to date with {path}")
            continue
        done = relock(Path(path), upgrade=args.upgrade, update=names)
        counts = ", ".join(f"{a}: {len(p)}" for a, p in done.doc.architectures.items())
        _out(f"{done.target}: {counts} packages" + ("; no change" if not done.changes and done.was_locked else ""))
        for line in done.changes:
            _out(f"  {line}")
    return status


def cmd_why(args: argparse.Namespace) -> int:
    from composer.profile.load import load_profile
    from composer.solve.lock import lock_path, read_lock, why
    profile = load_profile(Path(args.profile))
    lock = read_lock(lock_path(Path(args.profile)))
    if lock is None:
        raise UserError(f"{args.profile} has no lock", hint=f"run: vcomp lock {args.profile}")
    for arch in [args.arch] if args.arch else list(profile.architectures):
        chain = why(lock, args.package, arch)
        _out(f"{arch}: " + "\n    <- ".join(chain))
    return EXIT_OK


def register(sub: Subparsers) -> None:
    v = sub.add_parser("validate", help="check profiles: schema and meaning, every error with file:line:column")
    v.add_argument("profile", nargs="+")
    v.set_defaults(func=cmd_validate)

    lk = sub.add_parser("lock", help="resolve profiles into PROFILE.lock (per architecture, exact)")
    lk.add_argument("profile", nargs="*", help="profile files (PROFILE.yaml; the lock is PROFILE.lock)")
    lk.add_argument("--check", action="store_true",
                    help="exit 2 when the lock no longer matches the profile (1: an error)")
    lk.add_argument("--offline", action="store_true", default=argparse.SUPPRESS, help=OFFLINE_HELP)
    lk.add_argument("--update", nargs="+", action="extend", metavar="NAME",
                    help="move only these packages to the newest versions the profile allows, keep the rest "
                         "(repeatable; the profile may come before or after: a word with '/' or ending in "
                         ".yaml/.yml is a profile)")
    lk.add_argument("--upgrade", action="store_true", help="re-resolve everything to the newest versions")
    lk.set_defaults(func=cmd_lock)
    w = sub.add_parser("why", help="the chain of reasons that pulls a package into a profile")
    w.add_argument("package")
    w.add_argument("--profile", required=True)
    w.add_argument("--arch")
    w.set_defaults(func=cmd_why)
