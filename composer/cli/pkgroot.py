"""`vcomp pkg --root DIR VERB`: the package manager on a root (registered by composer.cli.main).

install, remove, upgrade, rollback, autoremove change the root, each as one transaction (``--dry-run``
prints the plan and changes nothing); history, list, info, files, owns, verify, depends, rdepends,
orphans query it (``--json`` on each).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from composer.cli import jsonout
from composer.cli.common import EXIT_CHANGES, EXIT_OK, Subparsers, marked, table
from composer.cli.common import out as _out
from composer.errors import UserError


def _root(args: argparse.Namespace) -> Path:
    root = Path(args.pkg_root)
    if not root.is_dir():
        raise UserError(f"{root} is not a directory", hint="give the root file system of an image")
    return root


def _open(args: argparse.Namespace, *, offline: bool = False) -> tuple[Any, Any]:
    """Recover an interrupted transaction, then the database and the (lazily opened) repositories.

    Called with the root's lock held (:func:`_write`)."""
    from composer.package.build import default_cache
    from composer.pkgmgr.ops import open_root
    from composer.pkgmgr.transaction import recover
    note = recover(_root(args))
    if note:
        jsonout.say(args)(f"vcomp: {note}")
    return open_root(_root(args), default_cache() / "repos", offline=offline)


def _write(args: argparse.Namespace, plan: Any, *, offline: bool = False) -> int:
    """A changing verb: under the root's lock from reading the database to the commit, so a second command
    waits (or fails at once with --no-wait) and then plans on the new state."""
    from composer.pkgmgr.transaction import locked
    with locked(_root(args)):
        database, sources = _open(args, offline=offline)
        changes, operation = plan(database, sources)
        return _transact(args, sources, changes, operation)


def _transact(args: argparse.Namespace, sources: Any, changes: Sequence[Any], operation: str) -> int:
    """Run the changes as one transaction (``--dry-run``: only show them); ``--json``: the lines go to stderr
    and the document (schemas/transaction.schema.json) to stdout."""
    from composer.pkgmgr.ops import run
    say = jsonout.say(args)
    for line in [marked(ch.line) for ch in changes] or ["nothing to do"]:
        say(line)
    outcome = None
    if changes and args.dry_run:  # a dry run that computed its answer succeeded: 0, as apt-get -s, terraform plan
        say(f"dry run: {len(changes)} change(s), nothing done")
    elif changes:
        outcome = run(_root(args), sources, changes, operation=operation, command=command_line(args), epoch=now(),
                      purge=getattr(args, "purge", False))
        for note in outcome.notes:
            say(f"note: {note}")
        say(f"transaction {outcome.transaction}: {operation} done ({len(changes)} change(s))")
    if jsonout.wanted(args):
        jsonout.emit({"root": str(_root(args)), "operation": operation, "dry_run": bool(args.dry_run),
                      "changes": [ch.to_dict() for ch in changes], "notes": list(outcome.notes) if outcome else [],
                      "transaction": outcome.transaction if outcome else None})
    return EXIT_OK


def now() -> int:
    """The wall clock, in whole seconds: the time a root transaction records (an admin's history shows when
    it ran; image builds and ``reconcile`` pass SOURCE_DATE_EPOCH instead, so their roots stay reproducible)."""
    return int(time.time())


def command_line(args: argparse.Namespace) -> str:
    """The command as typed (``vcomp``, or ``vpk`` on a device, and the argv main() parsed), shell-quoted so it
    can be run again."""
    return shlex.join([getattr(args, "program", "vcomp"), *getattr(args, "argv", sys.argv[1:])])


def _split(spec: str) -> tuple[str, str]:
    name, _, req = spec.partition("=")
    return name, req or "*"


def cmd_install(args: argparse.Namespace) -> int:
    from composer.pkgmgr.ops import solve
    return _write(args, lambda database, sources: (
        solve(sources, database, install=[_split(s) for s in args.names]), "install"))


def cmd_remove(args: argparse.Namespace) -> int:
    from composer.pkgmgr.ops import solve
    return _write(args, lambda database, sources: (solve(sources, database, remove=args.names), "remove"),
                  offline=True)


def cmd_upgrade(args: argparse.Namespace) -> int:
    from composer.pkgmgr.ops import solve
    return _write(args, lambda database, sources: (
        solve(sources, database, upgrade=args.names, allow_downgrade=args.allow_downgrade), "upgrade"))


def cmd_rollback(args: argparse.Namespace) -> int:
    from composer.pkgmgr.ops import rollback_changes

    def plan(database: Any, sources: Any) -> tuple[Any, str]:
        txid, changes = rollback_changes(sources, database, args.id)
        return changes, f"rollback of {txid}"
    return _write(args, plan)


def cmd_autoremove(args: argparse.Namespace) -> int:
    from composer.pkgmgr.ops import autoremove_changes
    return _write(args, lambda database, sources: (autoremove_changes(database), "autoremove"), offline=True)


def cmd_recover(args: argparse.Namespace) -> int:
    """Resolve an interrupted transaction: by its commit point, or explicitly (--abort / --retry)."""
    from composer.pkgmgr.transaction import locked, recover
    mode = "abort" if args.abort else "retry" if args.retry else "auto"
    with locked(_root(args)):
        note = recover(_root(args), mode)
    _out(f"vcomp: {note}" if note else f"{_root(args)}: no interrupted transaction; nothing to do")
    return EXIT_OK


def cmd_repo_url(args: argparse.Namespace) -> int:
    """Record a repository's absolute URL in the root (a directory is resolved against the current one, now)."""
    from composer.pkgmgr.ops import set_repository_url
    from composer.pkgmgr.transaction import locked
    with locked(_root(args)):
        url = set_repository_url(_root(args), args.name, args.location, cwd=Path.cwd())
    _out(f"{_root(args)}: repository '{args.name}' is {url}")
    return EXIT_OK


def _records(args: argparse.Namespace) -> Any:
    """The committed database, read without a lock (db.json is only ever replaced atomically); a pending
    journal is reported, never resolved here (that needs the lock: see ``recover``)."""
    from composer.pkgmgr import db
    from composer.pkgmgr.journal import pending
    waiting = pending(_root(args))
    if waiting:
        sys.stderr.write(f"vcomp: note: {waiting}\n")
    return db.load(_root(args))


def _show(args: argparse.Namespace, value: Any, lines: Sequence[str]) -> int:
    if args.json:  # an object gets its format_version; a list (list, files, orphans) is printed as it is
        if hasattr(value, "to_dict"):
            jsonout.emit(value.to_dict())
        else:
            _out(jsonout.dumps([v.to_dict() for v in value]))
    else:
        for line in lines:
            _out(line)
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    """One line per transaction (``--json``: schemas/history.schema.json)."""
    from composer.pkgmgr import history
    records = _records(args).history
    if args.json:
        _out(jsonout.dumps(history.document(records)))
        return EXIT_OK
    return _show(args, [], history.lines(records) or ["no transactions"])


def cmd_list(args: argparse.Namespace) -> int:
    from composer.pkgmgr.query import list_packages
    manual = True if args.manual else False if args.auto else None
    rows = list_packages(_records(args).packages, manual=manual)
    return _show(args, rows, table([(r.name, r.version, "manual" if r.manual else "auto", r.reason) for r in rows]))


def cmd_info(args: argparse.Namespace) -> int:
    from composer.pkgmgr.query import info
    i = info(_records(args).packages, args.package)
    d = i.to_dict()
    return _show(args, i, [f"{k:<15} {v}" for k, v in d.items() if not isinstance(v, (list, dict))])


def cmd_files(args: argparse.Namespace) -> int:
    from composer.pkgmgr.query import files
    rows = files(_records(args).packages, args.package)
    return _show(args, rows, [f"{r.path}{' -> ' + r.target if r.target else ''}" for r in rows])


def cmd_owns(args: argparse.Namespace) -> int:
    from composer.pkgmgr.query import owns
    o = owns(_records(args).packages, args.path)
    return _show(args, o, [f"{o.path}: {', '.join(o.packages)}"])


def cmd_depends(args: argparse.Namespace) -> int:
    from composer.pkgmgr.query import depends
    d = depends(_records(args).packages, args.package)
    lines = [f"{n.dependency} {n.requirement}: {', '.join(n.providers)}" for n in d.resolved]
    lines += [f"{n.dependency} {n.requirement}: NOT INSTALLED" for n in d.unresolved]
    return _show(args, d, lines)


def cmd_rdepends(args: argparse.Namespace) -> int:
    from composer.pkgmgr.query import rdepends
    r = rdepends(_records(args).packages, args.package)
    return _show(args, r, [f"{d.package} (needs {d.dependency} {d.requirement})" for d in r.dependents])


def cmd_orphans(args: argparse.Namespace) -> int:
    from composer.pkgmgr.query import orphans
    rows = orphans(_records(args).packages)
    return _show(args, rows, [f"{r.name} {r.version} ({r.reason})" for r in rows])


def cmd_audit(args: argparse.Namespace) -> int:
    """The root's installed packages against its repositories' advisory feeds, read through its TUF clients
    (the pinned roots the image recorded): ``vpk audit`` on a device."""
    from composer.advisory.audit import root_report
    from composer.advisory.osv import parse_severity
    from composer.cli.advisory import show_audit
    from composer.package.build import default_cache
    from composer.pkgmgr.ops import open_root
    threshold = parse_severity(args.severity, "--severity") if args.severity else ""
    _database, sources = open_root(_root(args), default_cache() / "repos")
    return show_audit(args, root_report(_root(args), sources.clients.values(), threshold))


def cmd_verify(args: argparse.Namespace) -> int:
    from composer.pkgmgr.query import verify
    report = verify(_root(args), _records(args).packages, args.package)
    generated = _generated(_root(args))
    report = replace(report, packages=tuple(
        replace(p, extra=tuple(x for x in p.extra if x.strip("/") not in generated),
                config_changed=tuple(c for c in p.config_changed if c.path.strip("/") not in generated))
        for p in report.packages))
    lines = []
    for p in report.packages:
        lines += [f"{p.name}: changed {x.path} ({x.detail})" for x in p.changed]
        lines += [f"{p.name}: missing {x.path}" for x in p.missing]
        lines += [f"{p.name}: config changed {x.path} ({x.detail})" for x in p.config_changed]
        lines += [f"{p.name}: extra {x}" for x in p.extra]
    from composer.pkgmgr.journal import pending
    waiting = pending(_root(args))
    clean = report.clean and not waiting
    if waiting:
        lines.append(f"pending: {waiting}")
    configs = sum(len(p.config_changed) for p in report.packages)
    lines.append("verify: differences found" if not report.clean
                 else "verify: a transaction is pending (files may be half-changed)" if waiting
                 else f"verify: no damage; {configs} config file(s) changed by the admin" if configs
                 else "verify: clean")  # "clean" only when nothing at all was listed
    if args.json:
        jsonout.emit({**report.to_dict(), "clean": clean, "pending": waiting})
    else:
        _show(args, report, lines)
    return EXIT_OK if clean else EXIT_CHANGES


def _generated(root: Path) -> set[str]:
    """Paths the profile wrote at build time (not a package's, and not extra)."""
    from composer.pkgmgr.configure import read_generated
    return set(read_generated(root))


ROOT_VERBS = {"info": cmd_info, "verify": cmd_verify}


def dispatch(args: argparse.Namespace, without_root: Any) -> int:
    """``info`` and ``verify`` look at a package file, or with --root at an installed package."""
    if getattr(args, "pkg_root", None):
        code: int = ROOT_VERBS[args.verb](args)
        return code
    code = without_root(args)
    return code


ROOT_HELP = "the root to manage (install, remove, upgrade, rollback, queries)"


def add_root(p: argparse.ArgumentParser) -> None:
    """``--root DIR`` after the subverb too (``vcomp pkg install --root R nano`` = ``vcomp pkg --root R install
    nano``); no default, so it does not reset the one given before the subverb."""
    p.add_argument("--root", dest="pkg_root", metavar="DIR", default=argparse.SUPPRESS, help=ROOT_HELP)


def register(pkg: Subparsers, *, note: str = " (needs --root)") -> None:
    """The root verbs under ``pkg`` (``vcomp pkg``; ``vpk``, whose root defaults to /, without the note)."""
    def verb(name: str, func: Any, help: str, *, names: str | None = None, json_out: bool = False,
             changes: bool = False) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = pkg.add_parser(name, help=f"{help}{note}")
        add_root(p)
        if names == "+":
            p.add_argument("names", nargs="+", metavar="NAME")
        elif names == "*":
            p.add_argument("names", nargs="*", metavar="NAME")
        if json_out:
            jsonout.add_json(p, f"pkg {name}")
        if changes:
            p.add_argument("--dry-run", action="store_true", help="print the transaction; change nothing")
            jsonout.add_json(p, f"pkg {name}")
        p.set_defaults(func=lambda a, f=func: _needs_root(a, f))
        return p

    verb("install", cmd_install, "install packages (NAME or NAME=REQUIREMENT)", names="+", changes=True)
    verb("remove", cmd_remove, "remove packages", names="+", changes=True).add_argument(
        "--purge", action="store_true", help="also remove config files changed by the admin")
    verb("upgrade", cmd_upgrade, "upgrade packages (all when none named)", names="*", changes=True).add_argument(
        "--allow-downgrade", action="store_true")
    verb("rollback", cmd_rollback, "undo a transaction (default: the last)", changes=True).add_argument(
        "id", nargs="?", type=int)
    verb("autoremove", cmd_autoremove, "remove orphans", changes=True)
    u = verb("repo-url", cmd_repo_url, "record a repository's absolute URL (a directory: resolved now)")
    u.add_argument("name")
    u.add_argument("location", metavar="URL-OR-DIRECTORY")
    rec = verb("recover", cmd_recover, "finish or roll back an interrupted transaction").add_mutually_exclusive_group()
    rec.add_argument("--abort", action="store_true", help="roll it back (an unreadable journal: drop it)")
    rec.add_argument("--retry", action="store_true", help="finish it (redo its steps, commit its database)")
    verb("history", cmd_history, "the transactions", json_out=True)
    g = verb("list", cmd_list, "installed packages", json_out=True)
    g.add_argument("--manual", action="store_true")
    g.add_argument("--auto", action="store_true")
    verb("files", cmd_files, "files of a package", json_out=True).add_argument("package")
    verb("owns", cmd_owns, "the package owning a path", json_out=True).add_argument("path")
    verb("depends", cmd_depends, "what a package needs", json_out=True).add_argument("package")
    verb("rdepends", cmd_rdepends, "what needs a package", json_out=True).add_argument("package")
    verb("orphans", cmd_orphans, "auto packages no manual package needs", json_out=True)
    verb("audit", cmd_audit, "installed packages the repositories' advisories cover (exit 3 at --severity)",
         json_out=True).add_argument("--severity", metavar="LEVEL",
                                     help="exit 3 when an advisory of this severity or higher applies")
    from composer.cli.abupdate import register_verbs
    register_verbs(verb)   # update, status: A/B image updates of the running system


def _needs_root(args: argparse.Namespace, func: Any) -> int:
    if not getattr(args, "pkg_root", None):
        raise UserError(f"'vcomp pkg {args.verb}' works on a root", hint=f"vcomp pkg --root DIR {args.verb} ...")
    code: int = func(args)
    return code
