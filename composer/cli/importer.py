"""`vcomp import debian`: Debian packages as signed ``.vpk`` files, optionally added to a repository and published
(composer.package.importer; docs/packages/import.md)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from composer.cli import jsonout
from composer.cli.common import EXIT_OK, Subparsers, current, warn
from composer.cli.common import out as _out
from composer.errors import UserError

T = TypeVar("T")


class _Phases:
    """Wall time per phase, and one progress line per phase on stderr."""

    def __init__(self, quiet: bool) -> None:
        self.seconds: dict[str, float] = {}
        self.quiet = quiet

    def timed(self, name: str, fn: Callable[[], T], what: Callable[[T], str]) -> T:
        start = time.monotonic()
        result = fn()
        self.seconds[name] = round(time.monotonic() - start, 3)
        self.say(f"import: {name}: {what(result)} in {self.seconds[name]:.1f} s")
        return result

    def say(self, line: str) -> None:
        if not self.quiet:
            warn(line)

    def progress(self, name: str) -> Callable[[int, int], None]:
        return lambda done, total: self.say(f"import: {name}: {done:,}/{total:,}")


def _check_usage(args: argparse.Namespace) -> None:
    if args.all and args.name:
        raise UserError("import debian: --all imports every package; do not also name packages",
                        hint="drop the names or --all")
    if not args.all and not args.name:
        raise UserError("import debian: no package names", hint="name packages, or pass --all")
    if args.with_recommends and not args.closure:
        raise UserError("import debian: --with-recommends only widens --closure", hint="add --closure")
    if args.jobs < 1:
        raise UserError(f"import debian: --jobs {args.jobs} is not a positive number", hint="use --jobs 2")
    if args.packages and not args.metadata_only:
        raise UserError("import debian: --packages FILE is for --metadata-only imports (the .debs come from the "
                        "private apt state)", hint="add --metadata-only, or drop --packages to use apt's lists")


def _stanzas(args: argparse.Namespace, arch: Any) -> Any:
    from composer.package import importer
    if args.packages:
        return importer.file_stanzas([Path(p) for p in args.packages])
    from composer.package.build import default_cache
    from composer.package.debian import DebianArchive
    return importer.suite_stanzas(DebianArchive(default_cache()), arch, _suites(args))


def _suites(args: argparse.Namespace) -> list[str]:
    from composer.package.debian import DEFAULT_SUITE
    return list(args.suite) or [DEFAULT_SUITE]


def _build(args: argparse.Namespace, plan: Any, key: Any, arch: Any, phases: _Phases) -> list[Any]:
    from composer.cli.common import epoch
    from composer.package import importer
    out = Path(args.out)
    if args.metadata_only:
        return importer.build_metadata_only(plan.packages, key=key, epoch=epoch(), out_dir=out, jobs=args.jobs,
                                            progress=phases.progress("build"))
    from composer.package.build import default_cache
    from composer.package.debian import DebianArchive
    archive = DebianArchive(default_cache(), suite=importer.release(_suites(args)))
    out.mkdir(parents=True, exist_ok=True)
    built = []
    for i, meta in enumerate(plan.packages, 1):
        built.append(importer.build_with_payload(meta, archive=archive, arch=arch, key=key, epoch=epoch(),
                                                 out_dir=out))
        phases.say(f"import: build: {i}/{len(plan.packages)} {meta.text}")
    return built


def _publish(args: argparse.Namespace, paths: list[Path], key: Any, phases: _Phases) -> dict[str, Any]:
    from composer.repo.edit import add_many
    from composer.repo.publishing import publish
    from composer.repo.store import RepoStore
    added = phases.timed("add", lambda: add_many(RepoStore(Path(args.repo)), paths, [key], jobs=args.jobs,
                                               progress=phases.progress("add")),
                       lambda r: f"{sum(1 for a in r if a.new):,} new of {len(r):,}")
    versions = phases.timed("publish", lambda: publish(RepoStore(Path(args.repo))),
                          lambda v: f"{v['packages']:,} packages, snapshot v{v['snapshot']}")
    return {"added": sum(1 for a in added if a.new), "unchanged": sum(1 for a in added if not a.new),
            "snapshot": versions["snapshot"], "published": versions["packages"]}


def _advisories(args: argparse.Namespace, stanzas: Any, plan: Any, arch: Any, key: Any,
                phases: _Phases) -> dict[str, Any]:
    """The CVEs the imported packages' changelog.Debian files name as fixed (docs/advisories.md), merged into the
    repository's signed feed with the import's key; a repository without an advisories role for that key keeps
    its feed, and the line says how to delegate one."""
    from composer.advisory.debian import debian_feed
    from composer.advisory.feed import newer
    from composer.package import importer
    from composer.package.build import default_cache
    from composer.package.debian import DebianArchive
    from composer.repo.advisories import add_advisories, read_feed
    from composer.repo.debianset import imported_binaries
    from composer.repo.store import RepoStore
    archive = DebianArchive(default_cache(), suite=importer.release(_suites(args)))
    feed = debian_feed(imported_binaries(archive, arch, plan.packages, stanzas))
    store = RepoStore(Path(args.repo))
    derived = len(feed.advisories)
    try:
        fresh = newer(read_feed(store), feed.advisories)
        if fresh:
            add_advisories(store, fresh, [key], replace=True)
    except UserError as exc:
        phases.say(f"import: advisories: {derived:,} CVEs named by the changelogs, not published: {exc.message}"
                   + (f" ({exc.hint})" if exc.hint else ""))
        return {"derived": derived, "published": 0, "refused": exc.message}
    phases.say(f"import: advisories: {derived:,} CVEs named by the changelogs, {len(fresh):,} new in the feed")
    return {"derived": derived, "published": len(fresh)}


def cmd_import_debian(args: argparse.Namespace) -> int:
    from composer.arch import get_arch
    from composer.package import importer
    from composer.trust.keys import load_key_spec
    _check_usage(args)
    arch, key = get_arch(args.arch), load_key_spec(args.key)
    phases = _Phases(quiet=args.json or current().verbosity < 0)
    request = importer.Request(names=tuple(args.name), closure=args.closure, recommends=args.with_recommends,
                               everything=args.all, newest_only=args.newest_only)
    stanzas = phases.timed("parse", lambda: _stanzas(args, arch), lambda s: f"{len(s):,} stanzas")
    plan = phases.timed("map", lambda: importer.plan(stanzas, request), lambda p: f"{len(p.packages):,} packages")
    built = phases.timed("build", lambda: _build(args, plan, key, arch, phases), lambda b: f"{len(b):,} .vpk")
    repo = _publish(args, [Path(args.out) / b.name for b in built], key, phases) if args.repo else {}
    if args.repo and not args.metadata_only:
        repo["advisories"] = _advisories(args, stanzas, plan, arch, key, phases)
    summary = _summary(args, plan, built, phases.seconds, repo)
    if args.report:
        Path(args.report).write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    if args.json:
        _out(jsonout.dumps(summary))
        return EXIT_OK
    for kind, n in sorted(plan.counts.items()):
        _out(f"{n:>8,}  {kind}")
    if summary["untranslated"]:
        _out(f"{len(summary['untranslated']):,} packages keep maintainer-script items not translated into [actions]"
             " (listed in --report; vcomp pkg lint shows them)")
    _out(f"imported {len(built):,} packages into {args.out}" + (f", published in {args.repo}" if repo else "")
         + f" ({summary['ms-per-package']:.2f} ms per package)")
    return EXIT_OK


def _summary(args: argparse.Namespace, plan: Any, built: list[Any], seconds: dict[str, float],
             repo: dict[str, Any]) -> dict[str, Any]:
    total = sum(seconds.values())
    n = max(1, len(built))
    return jsonout.document({"stanzas": plan.stanzas, "packages": len(built), "metadata-only": bool(args.metadata_only),
            "suites": args.suite or (["(--packages)"] if args.packages else _suites(args)),
            "bytes": sum(b.size for b in built), "cannot-express": dict(sorted(plan.counts.items())),
            "skipped": list(plan.skipped), "missing": list(plan.missing), "seconds": seconds,
            "ms-per-package": round(total * 1000 / n, 3),
            "ms-per-package-by-phase": {k: round(v * 1000 / n, 3) for k, v in seconds.items()},
            "repository": repo,
            "untranslated": {b.name: list(b.untranslated) for b in built if getattr(b, "untranslated", ())}})


def register(sub: Subparsers) -> None:
    p = sub.add_parser("import", help="turn another distribution's packages into signed .vpk files")
    isub = p.add_subparsers(dest="import_source", required=True)
    d = isub.add_parser("debian", help="import Debian binary packages (metadata-only or with their payload)",
                        description="Import Debian packages of one or more suites as signed .vpk files "
                                    "(docs/packages/import.md).")
    d.add_argument("name", nargs="*", help="package names (with --closure: their dependency closure)")
    d.add_argument("--suite", action="append", default=[],
                   help="a Debian suite: trixie or bookworm, or one of their pockets (trixie-updates, "
                        "trixie-security, ...); repeat for several of one release (the newest version of a name "
                        "wins in resolution; every version is imported unless --newest-only); default trixie")
    d.add_argument("--arch", default="x86_64", help="architecture (default x86_64)")
    d.add_argument("--metadata-only", action="store_true", help="no payload: packages for resolution studies")
    d.add_argument("--closure", action="store_true",
                   help="also every package reachable through Depends and Pre-Depends (all alternatives, all "
                        "providers)")
    d.add_argument("--with-recommends", action="store_true", help="the closure follows Recommends too")
    d.add_argument("--all", action="store_true", help="every package of the suites")
    d.add_argument("--newest-only", action="store_true", help="only the newest version of each name")
    d.add_argument("--packages", action="append", default=[], metavar="FILE",
                   help="read stanzas from a local Packages file (plain or .zst) instead of apt's lists "
                        "(metadata-only; the file is trusted as given)")
    d.add_argument("--key", required=True, help="developer key that signs the packages")
    d.add_argument("--out", required=True, help="directory for the .vpk files")
    d.add_argument("--repo", help="add the packages to this local repository and publish it")
    d.add_argument("--report", help="write a JSON report: counts of what cannot be expressed, time per phase")
    d.add_argument("--jobs", type=int, default=2, help="worker processes for building and verifying (default 2)")
    jsonout.add_json(d, "import debian")
    d.set_defaults(func=cmd_import_debian)
