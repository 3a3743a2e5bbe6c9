"""`vcomp validate|lock|why`: profiles and their locks (registered by composer.cli.main)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from composer.cli import jsonout
from composer.cli.common import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, OFFLINE_HELP, Subparsers, marked, say_hint
from composer.cli.common import err as _err
from composer.cli.common import out as _out
from composer.errors import ComposerError, UserError

if TYPE_CHECKING:
    from composer.solve.relock import Outdated

OUTDATED_FORMAT = "1.0"  # `format` of `vcomp outdated --json` (schemas/outdated.schema.json): format_version's value


def cmd_validate(args: argparse.Namespace) -> int:
    from composer.profile.load import load_profile
    found: list[dict[str, object]] = []
    for path in args.profile:
        try:
            prof = load_profile(Path(path))
        except ComposerError as exc:
            _err(exc)
            found.append({"profile": path, "valid": False, "error": jsonout.error_dict(exc)})
            continue
        per_arch = {a: len(prof.packages_for(a)) for a in prof.architectures}
        found.append({"profile": path, "valid": True, "name": prof.name, "requested": per_arch,
                      "drivers": len(prof.drivers), "outputs": [o.name for o in prof.outputs]})
        if not jsonout.wanted(args):
            _out(f"{path}: valid: profile '{prof.name}', packages requested "
                 f"({', '.join(f'{a}: {n}' for a, n in per_arch.items())}), {len(prof.drivers)} drivers, "
                 f"outputs {', '.join(o.name for o in prof.outputs)}")
    if jsonout.wanted(args):
        jsonout.emit({"profiles": found})
    return EXIT_ERROR if any(not f["valid"] for f in found) else EXIT_OK


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
    from composer.solve.relock import relock
    names, profiles = split_update(args.update or (), args.profile)
    if not profiles:
        raise UserError("vcomp lock: no profile given",
                        hint="name the profile: vcomp lock [--update NAME...] PROFILE.yaml")
    if names and (args.check or args.upgrade):
        raise UserError("vcomp lock: --update NAME cannot be combined with "
                        + ("--check" if args.check else "--upgrade"),
                        hint="--update moves only the named packages; --upgrade moves all; --check writes nothing")
    if args.check:
        return _check_locks(args, profiles)
    found: list[dict[str, object]] = []
    for path in profiles:
        done = relock(Path(path), upgrade=args.upgrade, update=names)
        counts = {a: len(p) for a, p in done.doc.architectures.items()}
        found.append({"profile": path, "lock": str(done.target), "packages": counts, "changes": list(done.changes),
                      "previous": done.was_locked})
        if not jsonout.wanted(args):
            _out(f"{done.target}: {', '.join(f'{a}: {n}' for a, n in counts.items())} packages"
                 + ("; no change" if not done.changes and done.was_locked else ""))
            for line in done.changes:
                _out(marked(f"  {line}"))
    if jsonout.wanted(args):
        jsonout.emit({"check": False, "profiles": found})
    return EXIT_OK


def _check_locks(args: argparse.Namespace, profiles: Sequence[str]) -> int:
    """``lock --check``: 0 up to date, 2 a lock no longer matches (a comparison that found changes, like plan
    and diff), 1 a lock missing (the worst wins: 1 before 2)."""
    from composer.solve.relock import check
    found = []
    for path in profiles:  # each said as it is checked (a later error leaves the earlier lines)
        status = check(Path(path))
        found.append((path, status))
        if not status.exists:
            _err(UserError(f"{status.target} does not exist", hint=f"run: vcomp lock {path}"))
        for line in status.problems:
            sys.stderr.write(f"{status.target}: {line}\n")
        if status.problems:
            say_hint(f"run: vcomp lock {path}")
        elif status.exists and not jsonout.wanted(args):
            _out(f"{status.target}: up to date with {path}" + (
                f", {status.newer} newer version{'s' if status.newer > 1 else ''} available (vcomp outdated {path})"
                if status.newer else ""))
    if jsonout.wanted(args):
        jsonout.emit({"check": True, "profiles": [
            {"profile": path, "lock": str(s.target), "exists": s.exists, "up_to_date": s.up_to_date,
             "problems": list(s.problems), "newer": s.newer} for path, s in found]})
    if any(not s.exists for _p, s in found):
        return EXIT_ERROR
    return EXIT_CHANGES if any(s.problems for _p, s in found) else EXIT_OK


def default_profiles(where: Path) -> list[str]:
    """The profiles ``vcomp outdated`` looks at when none is named: every PROFILE.yaml/.yml with a PROFILE.lock
    beside it, in ``where`` and ``where/profiles`` (sorted)."""
    found = [p for d in (where, where / "profiles") for suffix in PROFILE_SUFFIXES for p in d.glob(f"*{suffix}")
             if p.with_suffix(".lock").is_file()]
    return sorted(str(p.relative_to(where)) for p in found)


def cmd_outdated(args: argparse.Namespace) -> int:
    from composer.advisory.audit import FeedProbe
    from composer.solve.outdated import upgrade_command
    from composer.solve.relock import outdated
    profiles = args.profile or default_profiles(Path.cwd())
    if not profiles:
        raise UserError("vcomp outdated: no profile given and no locked profile (PROFILE.yaml beside PROFILE.lock) "
                        "in . or ./profiles", hint="name the profile: vcomp outdated PROFILE.yaml")
    probe = FeedProbe()
    found = [outdated(Path(path), probe=probe) for path in profiles]
    if args.json:
        jsonout.emit({"format": OUTDATED_FORMAT, "profiles": [
            {"profile": str(f.profile), "lock": str(f.target), "stale": list(f.stale),
             "packages": [p.to_dict(str(f.profile)) for p in f.packages],
             "command": upgrade_command([p.name for p in f.packages if p.upgradable], str(f.profile))
             if any(p.upgradable for p in f.packages) else None} for f in found]})
        return EXIT_OK
    for f in found:
        for line in outdated_lines(f):
            _out(line)
    return EXIT_OK


def outdated_lines(found: Outdated) -> list[str]:
    """The table of ``vcomp outdated`` for one profile (pure)."""
    from composer.solve.outdated import upgrade_command
    path = str(found.profile)
    lines = [f"{path}: the lock is stale ({'; '.join(found.stale)}); run: vcomp lock {path}"] if found.stale else []
    if not found.packages:
        return [*lines, f"{found.target}: nothing outdated: every locked package is the newest the repositories serve"]
    lines.append(f"{found.target}: {len(found.packages)} package{'s' if len(found.packages) > 1 else ''} with "
                 f"newer versions")
    fixes = any(p.fixes for p in found.packages)   # the column appears when an upgrade fixes an advisory
    head = ("ARCH", "NAME", "LOCKED", "ALLOWED", "NEWEST", *(("FIXES",) if fixes else ()))
    rows = [head, *((p.arch, p.name, p.locked, p.allowed, p.newest, *((_fixes(p.fixes),) if fixes else ()))
                    for p in found.packages)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    moving = [p.name for p in found.packages if p.upgradable]
    if moving:
        lines.append(f"  upgrade: {upgrade_command(moving, path)}")
    held = sorted({p.name for p in found.packages if p.newest != p.allowed})
    if held:
        lines.append(f"  newest not allowed by the profile's requirements: {', '.join(held)} "
                     f"(change the requirement in {path}, then run the upgrade)")
    return lines


def _fixes(ids: Sequence[str]) -> str:
    """The advisories an upgrade fixes, as a cell: a few ids, then how many more."""
    shown = ", ".join(ids[:3])
    return f"{shown} (+{len(ids) - 3})" if len(ids) > 3 else shown


def cmd_why(args: argparse.Namespace) -> int:
    from composer.profile.load import load_profile
    from composer.solve.lock import lock_path, read_lock, why_chain
    profile = load_profile(Path(args.profile))
    lock = read_lock(lock_path(Path(args.profile)))
    if lock is None:
        raise UserError(f"{args.profile} has no lock", hint=f"run: vcomp lock {args.profile}")
    chains = {arch: why_chain(lock, args.package, arch)
              for arch in ([args.arch] if args.arch else list(profile.architectures))}
    if jsonout.wanted(args):
        jsonout.emit({"package": args.package, "profile": args.profile, "architectures": {
            arch: [{"name": p.name, "version": p.version, "reason": p.reason.text, "kind": p.reason.kind,
                    "pulled_by": p.reason.parent} for p in chain] for arch, chain in chains.items()}})
        return EXIT_OK
    for arch, chain in chains.items():
        _out(f"{arch}: " + "\n    <- ".join(f"{p.name} {p.version}: {p.reason}" for p in chain))
    return EXIT_OK


def register(sub: Subparsers) -> None:
    v = sub.add_parser("validate", help="check profiles: schema and meaning, every error with file:line:column")
    v.add_argument("profile", nargs="*", help="profiles (default: [project] profile of vcomp.toml)")
    jsonout.add_json(v, "validate")
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
    jsonout.add_json(lk, "lock")
    lk.set_defaults(func=cmd_lock)
    o = sub.add_parser("outdated", help="locked packages the repositories serve newer versions of, and the "
                                        "command that upgrades them (exit 0 whether or not any is outdated)")
    o.add_argument("profile", nargs="*", help="profiles (default: every PROFILE.yaml with a PROFILE.lock beside it "
                                              "in . and ./profiles)")
    jsonout.add_json(o, "outdated")
    o.set_defaults(func=cmd_outdated)
    w = sub.add_parser("why", help="the chain of reasons that pulls a package into a profile")
    w.add_argument("package")
    w.add_argument("--profile", required=True)
    w.add_argument("--arch")
    jsonout.add_json(w, "why")
    w.set_defaults(func=cmd_why)
