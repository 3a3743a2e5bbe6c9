"""``vcomp advisory delegate|add|list`` (maintainers: the signed OSV feed of a repository) and ``vcomp audit``
(which locked, built or installed packages an advisory covers). docs/advisories.md."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from composer.cli import jsonout
from composer.cli.common import EXIT_OK, Subparsers, table
from composer.cli.common import out as _out
from composer.errors import EXIT_POLICY, UserError, combine

if TYPE_CHECKING:
    from composer.advisory.audit import Report

KEYSPEC = "KEYFILE[:ENV]"
AUDIT_HELP = ("exit 0: nothing at or above --severity (or no --severity given); 3: an advisory at or above it "
              "(like a policy gate); 1: an error")


def cmd_delegate(args: argparse.Namespace) -> int:
    from composer.repo.advisories import delegate_advisories
    from composer.repo.store import RepoStore
    from composer.trust.keys import load_key_spec, load_public_key
    keys = [load_public_key(Path(k)) for k in args.key]
    changed = delegate_advisories(RepoStore(Path(args.dir)), keys, threshold=args.threshold,
                                  targets_keys=[load_key_spec(k) for k in args.targets_key])
    _out(f"{args.dir}: advisories/* {'delegated to' if changed else 'already delegated to'} "
         f"{len(keys)} key(s), threshold {args.threshold}" + ("; run 'vcomp repo publish'" if changed else ""))
    return EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    from composer.advisory.osv import parse_advisory
    from composer.repo.advisories import add_advisories
    from composer.repo.store import RepoStore
    from composer.trust.keys import load_key_spec
    advisories, errors = [], []
    for name in args.files:
        path = Path(name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UserError(f"{path}: cannot read ({exc.strerror})", hint="give OSV JSON files") from None
        try:
            a = parse_advisory(data, str(path))
        except UserError as exc:
            errors.append(exc)
            continue
        stem = path.name.removesuffix(".json")
        if _looks_like_id(stem) and stem != a.id:
            errors.append(UserError(f"{path}: the file is named {stem} but the advisory's id is {a.id}",
                                    hint=f"rename the file to {a.id}.json, or fix the id"))
            continue
        advisories.append(a)
    if errors:
        raise combine(errors, summary=f"{len(errors)} of {len(args.files)} advisories refused")
    feed, changed = add_advisories(RepoStore(Path(args.dir)), advisories, [load_key_spec(k) for k in args.key],
                                   replace=args.replace)
    ids = ", ".join(a.id for a in advisories)
    _out(f"{args.dir}: {ids}: {'published' if changed else 'already published, unchanged'}; "
         f"{len(feed.advisories)} advisories in the feed")
    return EXIT_OK


def _looks_like_id(stem: str) -> bool:
    """A file name that is itself an advisory id (CVE-..., GHSA-..., DEBIAN-..., VER-...): it must match."""
    return "-" in stem and stem.split("-", 1)[0].isupper()


def cmd_list(args: argparse.Namespace) -> int:
    from composer.advisory.feed import Feed
    from composer.repo.advisories import read_feed
    from composer.repo.store import RepoStore
    feed: Feed
    if args.trust_root:
        from composer.advisory.client import client_feed
        from composer.repo.client import RepositoryClient, load_trusted_root
        from composer.solve.relock import repos_cache
        feed = client_feed(RepositoryClient(args.dir, load_trusted_root(Path(args.trust_root)), repos_cache()))
    else:
        feed = read_feed(RepoStore(Path(args.dir)))
    if args.json:
        jsonout.emit({"repository": args.dir, "advisories": feed.rows(args.package or "")})
        return EXIT_OK
    rows = [a for a in sorted(feed.advisories, key=lambda a: a.id)
            if not args.package or any(x.name == args.package for x in a.affected)]
    for line in table([(a.id, a.severity, ", ".join(sorted({x.name for x in a.affected}))[:60], a.title[:70])
                       for a in rows]):
        _out(line)
    _out(f"{len(rows)} advisories")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from composer.advisory import audit
    from composer.advisory.osv import parse_severity
    threshold = parse_severity(args.severity, "--severity") if args.severity else ""
    if args.audit_root:
        from composer.pkgmgr.ops import open_root
        from composer.solve.relock import repos_cache
        root = Path(args.audit_root)
        _database, sources = open_root(root, repos_cache())
        found = audit.root_report(root, sources.clients.values(), threshold)
    elif args.target is None:
        raise UserError("vcomp audit: nothing to audit", hint="vcomp audit PROFILE.yaml|PROFILE.lock|IMAGE_DIR or "
                                                              "--root ROOT")
    else:
        target = Path(args.target)
        if target.is_dir():
            found = audit.audit_image(target, Path(args.profile) if args.profile else None, threshold)
        elif target.is_file():
            found = audit.audit_profile(target, threshold)
        else:
            raise UserError(f"{target} does not exist", hint="give a profile, its lock or a built image directory")
    return show_audit(args, found)


def show_audit(args: argparse.Namespace, found: Report) -> int:
    if args.json:
        _out(jsonout.dumps(found.to_dict()))
    else:
        for line in audit_lines(found):
            _out(line)
    return EXIT_POLICY if found.over else EXIT_OK


def audit_lines(found: Report) -> list[str]:
    """The text form: one row per affected package and advisory, then a summary line (pure)."""
    rows = [(f.package.name, f.package.version, f.package.arch, f.advisory.id, f.severity,
             ", ".join(f.fixed) or "no fix", f.advisory.title[:60]) for f in found.findings]
    lines = table([("PACKAGE", "VERSION", "ARCH", "ADVISORY", "SEVERITY", "FIXED IN", "SUMMARY"), *rows]) \
        if rows else []
    names = len({f.package.name for f in found.findings})
    lines.append(f"{found.subject}: {len(found.findings)} advisories affect {names} of {found.packages} packages "
                 f"({found.advisories} advisories in the feeds)")
    if found.threshold:
        over = found.over
        lines.append(f"{len(over)} at or above severity {found.threshold}" + (" (exit 3)" if over else ""))
    return lines


def register(sub: Subparsers) -> None:
    adv = sub.add_parser("advisory", help="a repository's signed advisory feed (OSV): delegate, add, list")
    verbs = adv.add_subparsers(dest="advisory_verb", required=True)
    d = verbs.add_parser("delegate", help="let keys sign the advisories (signed with the offline targets key)")
    d.add_argument("dir")
    d.add_argument("--key", action="append", required=True, help="an advisory signer's public key (.pub)")
    d.add_argument("--threshold", type=int, default=1)
    d.add_argument("--targets-key", action="append", required=True, metavar=KEYSPEC,
                   help="the offline top-level targets private key")
    d.set_defaults(func=cmd_delegate)
    a = verbs.add_parser("add", help="validate OSV JSON files and publish them in the feed")
    a.add_argument("dir")
    a.add_argument("files", nargs="+", metavar="FILE.json")
    a.add_argument("--key", action="append", required=True, metavar=KEYSPEC,
                   help="an advisory signer's private key (the 'advisories' role)")
    a.add_argument("--replace", action="store_true",
                   help="publish a corrected version of an id already in the feed (its 'modified' must be later)")
    a.set_defaults(func=cmd_add)
    ls = verbs.add_parser("list", help="the advisories of a repository (a directory, or a URL with --trust-root)")
    ls.add_argument("dir", metavar="REPO")
    ls.add_argument("--trust-root", metavar="ROOT.json", help="read REPO through the verifying client")
    ls.add_argument("--package", help="only the advisories that name this package")
    jsonout.add_json(ls, "advisory list")
    ls.set_defaults(func=cmd_list)

    au = sub.add_parser("audit", help="the locked, built or installed packages an advisory covers",
                        description=AUDIT_HELP)
    au.add_argument("target", nargs="?", metavar="PROFILE|LOCK|IMAGE_DIR")
    au.add_argument("--root", dest="audit_root", metavar="DIR", help="an installed root (its package database)")
    au.add_argument("--profile", help="for an IMAGE_DIR: the profile whose repositories give the feeds")
    au.add_argument("--severity", metavar="LEVEL",
                    help="exit 3 when an advisory of this severity or higher applies (low, medium, high, "
                         "critical; unknown counts every advisory)")
    jsonout.add_json(au, "audit")
    au.set_defaults(func=cmd_audit)
