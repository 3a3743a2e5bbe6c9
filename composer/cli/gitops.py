"""The GitOps verbs of the CLI: plan, apply, reconcile, diff, history (registered by composer.cli.main).

Exit codes, the same for every verb that compares: 0 no changes, 1 error, 2 changes, 3 policy violation;
``plan`` also 4: a profile's lock is stale (nothing planned, ``--out`` writes nothing; fix: ``vcomp lock``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from composer.cli import jsonout
from composer.cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_NO_CHANGES,
    EXIT_POLICY,
    PLAN_EXIT,
    Subparsers,
    current,
    epoch,
    image_cache,
    marked,
    report,
)
from composer.cli.common import out as _out
from composer.cli.image import add_farm_options
from composer.errors import UserError

if TYPE_CHECKING:
    from composer.boot.session import Case
    from composer.gitops.plan import Plan
    from composer.gitops.workspace import Workspace
    from composer.update.channel import Channel


def _plan(args: argparse.Namespace, base: str | None) -> tuple[Workspace, Plan]:
    from composer.advisory.audit import FeedProbe
    from composer.gitops.workspace import Workspace, make_plan, refuse_stale_locks
    from composer.pkgmgr.setuid import SetuidProbe
    ws = Workspace.open(Path.cwd(), args.images)
    profiles = ws.profiles(args.profile)
    refuse_stale_locks(ws, profiles)  # exit 4 before anything is planned or written (--out included)
    return ws, make_plan(ws, profiles, base, acknowledged=args.ack or (), setuid=SetuidProbe(),
                         advisories=FeedProbe())


def cmd_plan(args: argparse.Namespace) -> int:
    from composer.gitops import render
    _ws, plan = _plan(args, args.base)
    if args.out:
        Path(args.out).write_text(render.to_json(plan))
    if args.matrix:
        _out(render.matrix_json(plan).rstrip("\n"))
    else:
        fmt = "json" if args.json else args.format
        text = {"table": lambda p: render.table(p, color=current().color_out), "json": render.to_json,
                "markdown": render.markdown}[fmt](plan)
        _out(text.rstrip("\n"))
    return PLAN_EXIT[plan.verdict]


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
    from composer.gitops.reconcile import apply_saved
    done = apply_saved(ws, saved, image_cache=image_cache(), epoch=epoch(), say=_out)
    cases = [c for d in done for c in d.cases]
    if args.junit:
        from composer.boot.session import junit
        Path(args.junit).write_bytes(junit(cases, "vcomp.apply"))
    if not done:
        _out(f"{args.plan}: nothing to apply (no new or changed profile)")
        return EXIT_NO_CHANGES
    recorded = ", ".join(f"{d.profile} generation {d.generation}" for d in done)
    failed = sum(not c.passed for c in cases)
    _out(f"applied {args.plan}: {recorded}; {len(cases) - failed} of {len(cases)} boot tests passed")
    return EXIT_ERROR if failed else EXIT_CHANGES


def cmd_reconcile_root(args: argparse.Namespace) -> int:
    """Apply the difference between a root's packages and a profile's lock as one transaction."""
    from composer.pkgmgr.reconcile import reconcile_root
    if len(args.profile) != 1:
        raise UserError("reconcile --root takes exactly one profile", hint="vcomp reconcile --root DIR PROFILE")
    done = reconcile_root(Path(args.root), Path(args.profile[0]), epoch=epoch(), say=lambda line: _out(marked(line)))
    if not done.changes:
        _out(f"{done.root}: already matches {done.lock_name} ({done.arch}): nothing to do")
        return EXIT_NO_CHANGES
    for n in done.notes:
        _out(f"note: {n}")
    _out(f"transaction {done.transaction}: {done.changes} change(s) applied; {done.root} matches the lock")
    return EXIT_CHANGES


def cmd_reconcile(args: argparse.Namespace) -> int:
    from composer.gitops.workspace import BUILT, Workspace, unchanged_since_built
    if args.root:
        return cmd_reconcile_root(args)
    ws = Workspace.open(Path.cwd(), args.images)
    codes: list[int] = []
    cases: list[Case] = []
    for path in ws.profiles(args.profile):
        rel = ws.git.rel(path)
        last = unchanged_since_built(ws, path)
        if last is not None and args.base is None:
            _out(f"{rel}: unchanged since generation {last['generation']} (commit {last['commit'][:12]}): "
                 "nothing to do")
            codes.append(EXIT_NO_CHANGES)
            continue
        try:
            code, found = _reconcile_one(ws, path, args.base or BUILT, args)
        except UserError as exc:
            report(exc.message, exc.hint, prefix=f"{rel}: error: ")
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


def _reconcile_one(ws: Workspace, path: Path, base: str, args: argparse.Namespace) -> tuple[int, list[Case]]:
    from composer.cli.image import run_on_farm  # (the farm: docs/farm.md)
    from composer.gitops.reconcile import reconcile_profile
    farmed = args.workers is not None or args.scheduler
    done = reconcile_profile(ws, path, base, acknowledged=args.ack or (), image_cache=image_cache(), epoch=epoch(),
                             say=_out, farm=(lambda jobs: run_on_farm(args, jobs)) if farmed else None)
    if done.violations:
        return EXIT_POLICY, []
    if done.failed:
        if args.channel:
            _out(f"{ws.git.rel(path)}: a boot test failed: generation {done.generation} is not released to "
                 f"'{args.channel}'")
        return EXIT_ERROR, list(done.cases)
    if args.channel and done.generation is not None:
        _release_generation(ws, path, done.generation, args)
    return EXIT_CHANGES, list(done.cases)


def _release_generation(ws: Workspace, path: Path, number: int, args: argparse.Namespace) -> None:
    """``reconcile --channel``: publish the generation just recorded (each architecture's update bundle)."""
    from composer.gitops import generations
    from composer.gitops.releases import recorded_bundles, repository_dir
    from composer.profile.load import load_profile
    from composer.repo.store import RepoStore
    from composer.update.release import release
    profile = load_profile(path)
    found = recorded_bundles(ws.images, profile.name, generations.find(ws.images, profile.name, number))
    if not found:
        _out(f"{ws.git.rel(path)}: generation {number} has no update bundle (no A/B disk output): not released")
        return
    store = RepoStore(repository_dir(args.repo, profile, str(path)))
    for b in found:
        done = release(store, b.directory, args.channel, b.generation, b.commit, profile=profile.name, arch=b.arch)
        share = f"{100 * done.new_bytes / done.total_bytes:.1f} %" if done.total_bytes else "-"
        _out(f"{ws.git.rel(path)}: released generation {number} ({b.arch}) to channel '{args.channel}' in "
             f"{store.dir}: {done.new_bytes} new chunk bytes of {done.total_bytes} ({share})")


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
    n_files = sum(len(c) for c in files.values())
    code = EXIT_CHANGES if packages or n_files else EXIT_NO_CHANGES
    if jsonout.wanted(args):
        jsonout.emit({"a": a.label, "b": b.label, "packages": [p.to_dict() for p in packages],
                      "files": {arch: [{"change": sym, "path": f"/{path}", "size_before": None if sym == "+" else
                                        before, "size_after": None if sym == "-" else after}
                                       for sym, path, before, after in changes] for arch, changes in files.items()},
                      "size_delta": sum(p.size_delta for p in packages), "differences": code == EXIT_CHANGES})
        return code
    _out(f"--- {a.label}\n+++ {b.label}")
    for p in packages:
        arrow = f"{p.old} -> {p.new}" if p.old and p.new else (p.new or p.old)
        _out(marked(f"{p.arch}: {p.symbol} {p.name} {arrow} ({_human(p.size_delta)})"))
    for arch, changes in files.items():
        for sym, path, before, after in changes:
            size = f"{after} B" if sym == "+" else f"{before} B" if sym == "-" else f"{before} -> {after} B"
            _out(marked(f"{arch}: {sym} /{path} ({size})"))
    total = sum(p.size_delta for p in packages)
    _out(f"{len(packages)} package change(s), {n_files} file change(s), packages {_human(total)}")
    return code


def cmd_history(args: argparse.Namespace) -> int:
    from composer.gitops import generations, releases
    from composer.gitops.workspace import Workspace
    ws = Workspace.open(Path.cwd(), args.images)
    path = Path(args.profile).resolve()
    current = ws.current(path).profile
    name = current.name if current else path.stem
    found = generations.generations(ws.images, name)
    channels = _channels(args, current, name)
    carried = releases.carried(channels)
    if jsonout.wanted(args):
        doc: dict[str, object] = {"profile": args.profile, "name": name,
                                  "generations": [{**generations.summary(g),
                                                   **({"channels": carried.get(g["generation"], [])}
                                                      if args.repo or channels else {})} for g in found]}
        if args.repo or channels:
            doc["channels"] = [releases.channel_summary(c) for c in channels]
        jsonout.emit(doc)
        return EXIT_NO_CHANGES
    if not found:
        _out(f"{name}: no generations yet (vcomp reconcile builds and records them)")
        return EXIT_NO_CHANGES
    for g in found:
        tests = [t for a in g["architectures"].values() for t in a.get("tests", [])]
        passed = sum(t["passed"] for t in tests)
        column = f"  channels {','.join(carried.get(g['generation'], [])) or '-'}" if channels else ""
        _out(f"generation {g['generation']:>3}  commit {g['commit'][:12]}{'+' if g['worktree'] != 'clean' else ''}"
             f"  lock {g['lock-digest'][:12]}  rebuilt {','.join(g['rebuilt']) or '-'}"
             f"  tests {passed}/{len(tests)}{column}")
    return EXIT_NO_CHANGES


def _channels(args: argparse.Namespace, profile: object, name: str) -> list[Channel]:
    """The profile's channels in ``--repo`` (or its updates.repository); none without a repository."""
    from composer.gitops.releases import repository_dir
    from composer.repo.store import RepoStore
    from composer.update.release import channels_of
    if args.repo:
        return channels_of(RepoStore(Path(args.repo)), name)
    try:
        directory = repository_dir(None, profile, args.profile)
    except UserError:
        return []      # no local repository to ask: no column (--repo names one)
    return channels_of(RepoStore(directory), name) if directory.is_dir() else []


def register(sub: Subparsers) -> None:
    p = sub.add_parser("plan", help="what a change of profiles/locks does, against a base (exit 0 no changes, "
                                    "1 error, 2 changes, 3 policy violation, 4 a lock is stale: run vcomp lock)")
    p.add_argument("profile", nargs="*", help="profiles (default: profiles/*.yaml of the git repository)")
    p.add_argument("--base", help="git ref, or @built (the last generation built); default: the previous commit "
                   "that touched each profile")
    p.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    jsonout.add_json(p, "plan")
    p.add_argument("--out", help="also save the plan (JSON) for vcomp apply")
    p.add_argument("--matrix", action="store_true", help="print the (profile, arch, output) jobs as JSON")
    p.add_argument("--ack", action="append", choices=("kernel",), help="acknowledge a change the policy gates")
    p.add_argument("--images", help="images directory (default: images/ of the repository)")
    p.set_defaults(func=cmd_plan)
    a = sub.add_parser("apply", help="do what reconcile does for the profiles a saved plan changes: build, "
                                     "boot-test, record a generation (refused when stale; exit 1 when a boot "
                                     "test fails)")
    a.add_argument("plan")
    a.add_argument("--images")
    a.add_argument("--junit", help="write the boot tests as JUnit XML")
    a.set_defaults(func=cmd_apply)
    r = sub.add_parser("reconcile", help="rebuild and boot-test the profiles whose inputs changed; record them")
    r.add_argument("profile", nargs="*")
    r.add_argument("--base", help="compare with this ref instead of the last generation built")
    r.add_argument("--junit", help="write the boot tests as JUnit XML")
    r.add_argument("--ack", action="append", choices=("kernel",))
    r.add_argument("--images")
    add_farm_options(r)
    r.add_argument("--root", help="apply the lock to this root as one package transaction instead of building")
    r.add_argument("--channel", help="publish each newly recorded generation (its A/B update bundle) to this "
                                     "channel (docs/updates/channels.md)")
    r.add_argument("--repo", help="with --channel: the repository directory (default: each profile's "
                                  "updates.repository)")
    r.set_defaults(func=cmd_reconcile)
    d = sub.add_parser("diff", help="packages and files between two commits, generations (gen:N) or built images")
    d.add_argument("a")
    d.add_argument("b")
    d.add_argument("--profile", help="the profile (for commits and generations)")
    d.add_argument("--images")
    jsonout.add_json(d, "diff")
    d.set_defaults(func=cmd_diff)
    h = sub.add_parser("history", help="the generations built for a profile (and which channel carries which)")
    h.add_argument("profile")
    h.add_argument("--images")
    h.add_argument("--repo", help="show which channel of this repository carries which generation (default: the "
                                  "profile's updates.repository)")
    jsonout.add_json(h, "history")
    h.set_defaults(func=cmd_history)
