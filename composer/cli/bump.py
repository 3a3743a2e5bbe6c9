"""``vcomp bump PROFILE [--branch NAME]``: the newest allowed versions, committed on a new branch with the plan as
the message (composer/gitops/bump.py; the CI example in docs/ci/bump.md opens the pull request)."""

from __future__ import annotations

import argparse
from pathlib import Path

from composer.cli.common import EXIT_OK, Subparsers
from composer.cli.common import out as _out


def cmd_bump(args: argparse.Namespace) -> int:
    from composer.gitops.bump import bump
    done = bump(Path(args.profile), args.branch)
    if not done.branch:
        _out(f"{args.profile}: every package is at the newest version the profile allows: nothing to bump")
        return EXIT_OK
    for line in done.changes:
        _out(f"  {line}")
    violations = sum(len(p.violations) for p in done.plan.profiles) if done.plan else 0
    _out(f"{args.profile}: {len(done.changes)} change(s) committed on branch '{done.branch}' ({done.commit[:12]}); "
         f"the checkout stays where it was. Next: git push origin {done.branch}, open a pull request"
         + (f" ({violations} policy violation(s): see the commit message)" if violations else ""))
    return EXIT_OK


def register(sub: Subparsers) -> None:
    b = sub.add_parser("bump", help="relock a profile to the newest allowed versions and commit it on a new git "
                                    "branch, the plan as the message (Renovate-style)")
    b.add_argument("profile", metavar="PROFILE")
    b.add_argument("--branch", help="the new branch (default: vcomp/bump-PROFILE-NAME); it must not exist")
    b.set_defaults(func=cmd_bump)
