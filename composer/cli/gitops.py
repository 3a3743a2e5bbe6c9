"""The GitOps verbs of the CLI: plan, apply, reconcile, diff, history (registered by composer.cli.main).

Exit codes, the same for every verb that compares: 0 no changes, 1 error, 2 changes, 3 policy violation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from composer.cli.common import EXIT_CHANGES, EXIT_ERROR, EXIT_NO_CHANGES, EXIT_POLICY, epoch, image_cache
from composer.cli.common import out as _out
from composer.errors import UserError
from composer.gitops.plan import PackageChange


def _setuid_probe(sources_for: dict[Path, Any]) -> Any:
    """Setuid files a changed package brings (read from the package, fetched and verified through TUF)."""
    def probe(path: Path, change: PackageChange) -> list[str]:
        from composer.package.archive import read_header
        from composer.package.build import default_cache
        from composer.pkgmgr.install import fetch_locked
        from composer.profile.load import load_profile
        from composer.solve.lock import open_sources, read_lock
        if path not in sources_for:
            sources_for[path] = open_sources(load_profile(path), default_cache() / "repos")
        lock = read_lock(path.with_suffix(".lock"))
        row = lock.package(change.arch, change.name) if lock else None
        if row is None:
            return []
        (fetched,) = fetch_locked(sources_for[path], [row], change.arch)
        entries = read_header(fetched.path).manifest.entries
        return [e.path for e in entries if e.type == "file" and e.mode & 0o6000]
    return probe


def _plan(args: argparse.Namespace, base: str | None) -> Any:
    from composer.gitops.workspace import Workspace, make_plan
    ws = Workspace.open(Path.cwd(), args.images)
    profiles = ws.profiles(args.profile)
    return ws, make_plan(ws, profiles, base, acknowledged=args.ack or (), setuid=_setuid_probe({}))


def cmd_plan(args: argparse.Namespace) -> int:
    from composer.gitops import render
    _ws, plan = _plan(args, args.base)
    if args.out:
        Path(args.out).write_text(render.to_json(plan))
    if args.matrix:
        _out(render.matrix_json(plan).rstrip("\n"))
    else:
        text = {"table": render.table, "json": render.to_json, "markdown": render.markdown}[args.format](plan)
        _out(text.rstrip("\n"))
    code: int = plan.exit_code
    return code


def cmd_apply(args: argparse.Namespace) -> int:
    from composer.gitops.workspace import Workspace, stale_reasons
    try:
        saved = json.loads(Path(args.plan).read_bytes())
    except (OSError, ValueError) as exc:
        raise UserError(f"{args.plan}: not a saved plan ({exc})", hint="vcomp plan --out plan.json") from None
    if not str(saved.get("format_version", "")).startswith("1."):
        raise UserError(f"{args.plan}: plan format {saved.get('format_version')} is not supported", hint="replan")
    ws = Workspace.open(Path.cwd(), args.images)
    stale = stale_reasons(ws, saved)
    if stale:
        raise UserError(f"{args.plan} is stale: " + "; ".join(stale), hint="make a new plan: vcomp plan --out FILE")
    if saved.get("exit_code") == EXIT_POLICY:
        raise UserError(f"{args.plan} violates the policy; it is not applied", hint="fix the violations and replan")
    from composer.compose.build import build_profile
    from composer.compose.layout import locked
    built = 0
    for p in saved["profiles"]:
        jobs: dict[str, list[str]] = {}
        for o in p["output_changes"]:
            if o["action"] != "remove":
                jobs.setdefault(o["arch"], []).append(o["name"])
        if not jobs:
            continue
        profile, lock, lock_digest, sources = _load(ws.git.root / p["profile"])
        with locked(ws.images, profile.name) as top:
            for r in build_profile(top, profile, lock, lock_digest, sources, dict(sorted(jobs.items())),
                                   image_cache(), epoch=epoch(), say=_out):
                built += len(jobs[r.arch])
                _out(f"{r.arch}: built {', '.join(jobs[r.arch])} in {r.directory}")
    _out(f"applied {args.plan}: {built} output(s) built" if built else f"{args.plan}: nothing to build")
    return EXIT_CHANGES if built else EXIT_NO_CHANGES


def _load(path: Path) -> Any:
    from composer.cli import image
    return image.load_inputs(path)


def cmd_reconcile_root(args: argparse.Namespace) -> int:
    """Apply the difference between a root's packages and a profile's lock as one transaction."""
    from composer.pkgmgr.transaction import locked
    if len(args.profile) != 1:
        raise UserError("reconcile --root takes exactly one profile", hint="vcomp reconcile --root DIR PROFILE")
    with locked(Path(args.root)):  # the root's lock from reading its database to the commit
        return _reconcile_root(args)


def _reconcile_root(args: argparse.Namespace) -> int:
    from composer.pkgmgr import db
    from composer.pkgmgr.configure import configure
    from composer.pkgmgr.ops import fetch_locked_changes, reconcile_changes
    from composer.pkgmgr.transaction import apply, recover
    root, path = Path(args.root), Path(args.profile[0])
    profile, lock, lock_digest, sources = _load(path)
    note = recover(root)
    if note:
        _out(f"vcomp: {note}")
    database = db.load(root)
    arches = {p["arch"] for p in database.packages.values()} - {"noarch"}
    arch = next(iter(sorted(arches)), profile.architectures[0])
    if arch not in lock.architectures:
        raise UserError(f"the lock of {path} has no {arch} packages (the root's architecture)")
    changes = reconcile_changes(database, lock.architectures[arch])
    if not changes:  # configure again (idempotent): finishes a reconcile killed after its commit
        configure(root, profile, arch, {k: dict(v) for k, v in database.packages.items()})
        _out(f"{root}: already matches {path.with_suffix('.lock').name} ({arch}): nothing to do")
        return EXIT_NO_CHANGES
    for ch in changes:
        _out(ch.line)
    outcome = apply(root, fetch_locked_changes(sources, changes, arch), operation="reconcile",
                    cause=f"lock {lock_digest}", epoch=epoch())
    configure(root, profile, arch, {k: dict(v) for k, v in db.load(root).packages.items()})
    for n in outcome.notes:
        _out(f"note: {n}")
    _out(f"transaction {outcome.transaction}: {len(changes)} change(s) applied; {root} matches the lock")
    return EXIT_CHANGES


def cmd_reconcile(args: argparse.Namespace) -> int:
    from composer.gitops.workspace import BUILT, Workspace, unchanged_since_built
    if args.root:
        return cmd_reconcile_root(args)
    ws = Workspace.open(Path.cwd(), args.images)
    codes: list[int] = []
    cases: list[Any] = []
    for path in ws.profiles(args.profile):
        rel = ws.git.rel(path)
        last = unchanged_since_built(ws, path)
        if last is not None and args.base is None:
            _out(f"{rel}: unchanged since generation {last['generation']} (commit {last['commit'][:12]}): "
                 "nothing to do")
            codes.append(EXIT_NO_CHANGES)
            continue
        try:
            code, found = reconcile_profile(ws, path, args.base or BUILT, args)
        except UserError as exc:
            sys.stderr.write(f"{rel}: error: {exc.message}\n" + (f"  hint: {exc.hint}\n" if exc.hint else ""))
            code, found = EXIT_ERROR, []
        codes.append(code)
        cases += found
    if args.junit:
        from composer.boot.session import junit
        Path(args.junit).write_bytes(junit(cases, "vcomp.reconcile"))
    for bad in (EXIT_ERROR, EXIT_POLICY, EXIT_CHANGES):
        if bad in codes:
            return bad
    return EXIT_NO_CHANGES


def reconcile_profile(ws: Any, path: Path, base: str, args: argparse.Namespace) -> tuple[int, list[Any]]:
    from composer.compose.layout import locked
    from composer.gitops import render
    from composer.gitops.workspace import make_plan
    from composer.solve.lock import missing_packages
    rel = ws.git.rel(path)
    plan = make_plan(ws, [path], base, acknowledged=args.ack or ())
    pp = plan.profiles[0]
    _out(render.table(plan).rstrip("\n"))
    if pp.violations:
        return EXIT_POLICY, []
    profile, lock, lock_digest, sources = _load(path)
    moved = missing_packages(lock, sources)
    if moved:
        raise UserError(f"{path.with_suffix('.lock').name} no longer matches the repositories: {moved[0]}",
                        hint=f"relock and commit: vcomp lock {rel}")
    with locked(ws.images, profile.name):
        return _reconcile_locked(ws, path, rel, profile, lock, lock_digest, sources, pp)


def _reconcile_locked(ws: Any, path: Path, rel: str, profile: Any, lock: Any, lock_digest: str, sources: Any,
                      pp: Any) -> tuple[int, list[Any]]:
    from composer.boot.session import boots_of, run_boot
    from composer.compose.build import build_profile
    from composer.gitops import generations
    last = generations.last(ws.images, profile.name)
    arches = sorted({o.arch for o in pp.output_changes if o.action != "remove"} |
                    {a for a in profile.architectures if last is None or a not in last.get("architectures", {})
                     or not (ws.images / profile.name / a / "manifest.json").is_file()})
    records = dict(last["architectures"]) if last else {}
    cases: list[Any] = []
    built = build_profile(ws.images / profile.name, profile, lock, lock_digest, sources, {a: () for a in arches},
                          image_cache(), epoch=epoch(), say=_out) if arches else []
    for r in built:
        arch = r.arch
        found = []
        for output, firmware in boots_of(r.manifest):
            _out(f"{arch}: boot test of {output} ({firmware})")
            found += run_boot(r.manifest, r.directory, output, firmware, logs=r.directory / "boot")
        for c in found:
            _out(f"  {c.id}: {'PASS' if c.passed else 'FAIL: ' + c.reason()} ({c.watch.seconds:.1f} s)")
        cases += found
        records[arch] = {"inputs": r.manifest["inputs"],
                         "outputs": [{"name": o["name"], "type": o["type"], "files": o["files"]}
                                     for o in r.manifest["outputs"]],
                         "packages": [{"name": p.name, "version": p.version, "sha256": p.sha256, "size": p.size,
                                       "reason": p.reason.text} for p in lock.packages(arch)],
                         "tests": [{"id": c.id, "passed": c.passed, "seconds": round(c.watch.seconds, 1)}
                                   for c in found]}
    for arch in list(records):
        if arch not in profile.architectures:
            del records[arch]
    head = ws.git.head() or ""
    now = ws.current(path)
    g = generations.record(ws.images, profile.name, {
        "profile": rel, "commit": head, "worktree": "clean" if ws.git.worktree(rel) == ws.git.read(head, rel)
        else "modified", "time": ws.git.commit_time(head) if head else 0,
        "profile-digest": now.profile_digest, "lock-digest": now.lock_digest, "rebuilt": arches,
        "architectures": records})
    failed = [c for c in cases if not c.passed]
    _out(f"{rel}: generation {g['generation']} recorded: rebuilt {', '.join(arches) or 'nothing'}; "
         f"{len(cases) - len(failed)} of {len(cases)} boot tests passed")
    return (EXIT_ERROR if failed else EXIT_CHANGES), cases


def _human(n: int) -> str:
    sign = "-" if n < 0 else "+"
    n = abs(n)
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{sign}{n / size:.1f} {unit}"
    return f"{sign}{n} B"


def cmd_diff(args: argparse.Namespace) -> int:
    from composer.gitops.workspace import Workspace, diff_sides, side
    ws = Workspace.open(Path.cwd(), args.images)
    profile = Path(args.profile).resolve() if args.profile else None
    a, b = side(ws, args.a, profile), side(ws, args.b, profile)
    packages, files = diff_sides(a, b)
    _out(f"--- {a.label}\n+++ {b.label}")
    for p in packages:
        arrow = f"{p.old} -> {p.new}" if p.old and p.new else (p.new or p.old)
        _out(f"{p.arch}: {p.symbol} {p.name} {arrow} ({_human(p.size_delta)})")
    for arch, changes in files.items():
        for sym, path, before, after in changes:
            size = f"{after} B" if sym == "+" else f"{before} B" if sym == "-" else f"{before} -> {after} B"
            _out(f"{arch}: {sym} /{path} ({size})")
    total = sum(p.size_delta for p in packages)
    n_files = sum(len(c) for c in files.values())
    _out(f"{len(packages)} package change(s), {n_files} file change(s), packages {_human(total)}")
    return EXIT_CHANGES if packages or n_files else EXIT_NO_CHANGES


def cmd_history(args: argparse.Namespace) -> int:
    from composer.gitops import generations
    from composer.gitops.workspace import Workspace
    ws = Workspace.open(Path.cwd(), args.images)
    path = Path(args.profile).resolve()
    current = ws.current(path).profile
    name = current.name if current else path.stem
    found = generations.generations(ws.images, name)
    if not found:
        _out(f"{name}: no generations yet (vcomp reconcile builds and records them)")
        return EXIT_NO_CHANGES
    for g in found:
        tests = [t for a in g["architectures"].values() for t in a.get("tests", [])]
        passed = sum(t["passed"] for t in tests)
        _out(f"generation {g['generation']:>3}  commit {g['commit'][:12]}{'+' if g['worktree'] != 'clean' else ''}"
             f"  lock {g['lock-digest'][:12]}  rebuilt {','.join(g['rebuilt']) or '-'}"
             f"  tests {passed}/{len(tests)}")
    return EXIT_NO_CHANGES


def register(sub: Any) -> None:
    p = sub.add_parser("plan", help="what a change of profiles/locks does, against a base (exit 0/1/2/3)")
    p.add_argument("profile", nargs="*", help="profiles (default: profiles/*.yaml of the git repository)")
    p.add_argument("--base", help="git ref, or @built (the last generation built); default: the previous commit "
                   "that touched each profile")
    p.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    p.add_argument("--out", help="also save the plan (JSON) for vcomp apply")
    p.add_argument("--matrix", action="store_true", help="print the (profile, arch, output) jobs as JSON")
    p.add_argument("--ack", action="append", choices=("kernel",), help="acknowledge a change the policy gates")
    p.add_argument("--images", help="images directory (default: images/ of the repository)")
    p.set_defaults(func=cmd_plan)
    a = sub.add_parser("apply", help="build exactly what a saved plan says (refused when stale)")
    a.add_argument("plan")
    a.add_argument("--images")
    a.set_defaults(func=cmd_apply)
    r = sub.add_parser("reconcile", help="rebuild and boot-test the profiles whose inputs changed; record them")
    r.add_argument("profile", nargs="*")
    r.add_argument("--base", help="compare with this ref instead of the last generation built")
    r.add_argument("--junit", help="write the boot tests as JUnit XML")
    r.add_argument("--ack", action="append", choices=("kernel",))
    r.add_argument("--images")
    r.add_argument("--root", help="apply the lock to this root as one package transaction instead of building")
    r.set_defaults(func=cmd_reconcile)
    d = sub.add_parser("diff", help="packages and files between two commits, generations (gen:N) or built images")
    d.add_argument("a")
    d.add_argument("b")
    d.add_argument("--profile", help="the profile (for commits and generations)")
    d.add_argument("--images")
    d.set_defaults(func=cmd_diff)
    h = sub.add_parser("history", help="the generations built for a profile")
    h.add_argument("profile")
    h.add_argument("--images")
    h.set_defaults(func=cmd_history)
