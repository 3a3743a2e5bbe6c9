"""`vcomp release` and `vcomp rollback-channel`: publish a built generation to a channel of a repository, and move
a channel back (registered by composer.cli.main; docs/updates/channels.md).

Exit codes: 0 published (also when the channel already carried exactly this release: the run completes it),
1 error (nothing new is served).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from composer.cli import jsonout
from composer.cli.common import EXIT_OK, Subparsers
from composer.errors import UserError

if TYPE_CHECKING:
    from composer.profile.model import Profile
    from composer.update.release import Release


def _profile(given: str) -> tuple[str, Profile | None]:
    """(name, profile): PROFILE is a profile file, or (with --bundle) just a name."""
    from composer.profile.load import load_profile
    path = Path(given)
    if path.is_file():
        profile = load_profile(path)
        return profile.name, profile
    if path.suffix in (".yaml", ".yml") or "/" in given:
        raise UserError(f"{given}: no such profile file", hint="name an existing profile (profiles/NAME.yaml)")
    return given, None


def _human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def cmd_release(args: argparse.Namespace) -> int:
    from composer.gitops.releases import default_channel, repository_dir
    from composer.repo.store import RepoStore
    from composer.update.channel import parse_commit
    from composer.update.release import release
    say = jsonout.say(args)
    name, profile = _profile(args.profile)
    channel = default_channel(args.channel, profile, args.profile)
    if args.bundle:
        if args.generation is None:
            raise UserError("--bundle needs --generation N (a bundle directory records no generation)",
                            hint="vcomp release PROFILE --channel NAME --bundle DIR --generation N")
        try:
            commit = parse_commit(args.commit)
        except ValueError as exc:
            raise UserError(str(exc), hint="pass the full commit id: git rev-parse HEAD") from None
        bundle_dir, generation = Path(args.bundle), int(args.generation)
    else:
        if args.commit:
            raise UserError("--commit goes with --bundle", hint="a recorded generation names its own commit")
        bundle_dir, generation, commit = _recorded(args, name)
    store = RepoStore(repository_dir(args.repo, profile, args.profile))
    done = release(store, bundle_dir, channel, generation, commit, profile=name, arch=args.arch)
    _report(args, store.dir, done, say)
    return EXIT_OK


def _recorded(args: argparse.Namespace, name: str) -> tuple[Path, int, str | None]:
    from composer.gitops import generations
    from composer.gitops.releases import recorded_bundle
    from composer.gitops.workspace import Workspace
    ws = Workspace.open(Path.cwd(), args.images)
    record = generations.find(ws.images, name, args.generation) if args.generation is not None else \
        generations.last(ws.images, name)
    if record is None:
        raise UserError(f"profile '{name}' has no recorded generation yet",
                        hint="vcomp reconcile builds and records one; or release a bundle directory: "
                             "--bundle DIR --generation N")
    found = recorded_bundle(ws.images, name, record, args.arch)
    return found.directory, found.generation, found.commit


def _report(args: argparse.Namespace, repo: Path, done: Release, say: Callable[[str], None]) -> None:
    from composer.gitops.releases import channel_summary
    c = done.channel
    if jsonout.wanted(args):
        jsonout.emit({"repository": str(repo), "profile": c.profile, **channel_summary(c),
                      "previous_generation": done.previous.generation if done.previous else None,
                      "republished": done.republished, "total_bytes": done.total_bytes, "new_bytes": done.new_bytes,
                      "files": [{"role": i.role, "image": i.image, "size": i.size, "chunks": i.chunks,
                                 "new_chunks": i.new_chunks, "new_bytes": i.new_bytes} for i in done.images]})
        return
    was = f" (was generation {done.previous.generation})" if done.previous else " (a new channel)"
    if done.republished:
        say(f"{c.profile} ({c.arch}): channel '{c.channel}' already carried generation {c.generation}; published "
            f"it again ({c.target_path})")
        return
    for i in done.images:
        say(f"  {i.image}: {_human(i.size)}, {i.chunks} chunks, {i.new_chunks} new ({_human(i.new_bytes)})")
    share = f" ({100 * done.new_bytes / done.total_bytes:.1f} %)" if done.total_bytes else ""
    say(f"released {c.profile} generation {c.generation} ({c.arch}) to channel '{c.channel}'{was} in {repo}: "
        f"{c.target_path}; {_human(done.total_bytes)} of images, {_human(done.new_bytes)} of new chunks{share}")


def cmd_rollback_channel(args: argparse.Namespace) -> int:
    from composer.gitops.releases import channel_summary, default_channel, repository_dir
    from composer.repo.store import RepoStore
    from composer.update.release import rollback_channel
    name, profile = _profile(args.profile)
    channel = default_channel(args.channel, profile, args.profile)
    store = RepoStore(repository_dir(args.repo, profile, args.profile))
    arch = args.arch or _only_arch(profile, args.profile)
    done = rollback_channel(store, name, arch, channel, args.to)
    c = done.channel
    previous = done.previous.generation if done.previous else None
    if jsonout.wanted(args):
        jsonout.emit({"repository": str(store.dir), "profile": c.profile, **channel_summary(c),
                      "previous_generation": previous})
        return EXIT_OK
    jsonout.say(args)(f"channel '{c.channel}' of {c.profile} ({c.arch}) moved from generation {previous} back to "
                      f"{c.generation} (commit {(c.commit or '-')[:12]}); devices on it converge to generation "
                      f"{c.generation}")
    return EXIT_OK


def _only_arch(profile: Profile | None, given: str) -> str:
    arches = profile.architectures if profile is not None else ()
    if len(arches) != 1:
        raise UserError(f"{given}: which architecture's channel? "
                        + (f"the profile builds {', '.join(arches)}" if arches else "no profile file to read"),
                        hint="pass --arch ARCH")
    return arches[0]


def register(sub: Subparsers) -> None:
    r = sub.add_parser("release", help="publish a built generation (its A/B update bundle) to a channel of a "
                                       "repository as signed TUF targets (docs/updates/channels.md)")
    r.add_argument("profile", help="the profile file (or, with --bundle, its name)")
    r.add_argument("--channel", help="the channel (e.g. stable): index/P.ARCH.CHANNEL.channel.json (default: the "
                                     "profile's updates.channel)")
    r.add_argument("--arch", help="the architecture (default: the one whose generation has an update bundle)")
    r.add_argument("--repo", help="the repository directory (default: the directory of the profile's repository "
                                  "that updates.repository names)")
    r.add_argument("--generation", type=int, help="the recorded generation (default: the latest); with --bundle, "
                                                  "the number to publish it as")
    r.add_argument("--bundle", help="release this bundle directory (NAME.bundle/) instead of a recorded "
                                    "generation's (needs --generation)")
    r.add_argument("--commit", help="with --bundle: the git commit it was built from (recorded in the channel)")
    r.add_argument("--images", help="images directory (default: images/ of the git repository)")
    jsonout.add_json(r, "release")
    r.set_defaults(func=cmd_release)
    b = sub.add_parser("rollback-channel", help="point a channel back to an earlier released generation (a new "
                                                "channel document; devices converge to it)")
    b.add_argument("profile", help="the profile file (or its name)")
    b.add_argument("--channel", help="the channel (default: the profile's updates.channel)")
    b.add_argument("--to", type=int, help="the generation (default: the newest released one below the current)")
    b.add_argument("--arch", help="the architecture (default: the profile's only one)")
    b.add_argument("--repo", help="the repository directory (default: the profile's updates.repository)")
    jsonout.add_json(b, "rollback-channel")
    b.set_defaults(func=cmd_rollback_channel)
