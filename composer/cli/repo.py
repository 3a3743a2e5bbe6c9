"""`vcomp repo VERB`: signed (TUF) package repositories (registered by composer.cli.main)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from composer.arch import DEFAULT_ARCHES
from composer.cli import jsonout
from composer.cli.common import EXIT_OK, Subparsers, info, warn
from composer.cli.common import out as _out
from composer.errors import UserError

if TYPE_CHECKING:
    from composer.repo.push import PushResult
    from composer.trust.keys import PublicKey, SigningKey

KEYSPEC = "KEYFILE[:VAR]"   # a private key; VAR holds its passphrase (docs/keys.md)


def cmd_repo_init(args: argparse.Namespace) -> int:
    from composer.repo.edit import init
    from composer.repo.store import config_key_path
    from composer.trust.keys import load_key_spec
    online = {"index": args.index_key, "snapshot": args.snapshot_key, "timestamp": args.timestamp_key}
    needed = {"--root-key": args.root_key, "--targets-key": args.targets_key,
              **{f"--{role}-key": paths for role, paths in online.items()}}
    missing = [option for option, paths in needed.items() if not paths]
    if missing:
        raise UserError(f"repo init needs {', '.join(missing)}",
                        hint="make keys with 'vcomp key generate NAME'; the root and targets keys stay offline "
                             "(they are not recorded), the index, snapshot and timestamp keys are online")
    directory = Path(args.dir)
    paths = {role: [config_key_path(directory, p) for p in ps] for role, ps in online.items()}
    root = init(directory, root_keys=[load_key_spec(p) for p in args.root_key],
                root_threshold=args.root_threshold,
                targets_keys=[load_key_spec(p) for p in args.targets_key],
                online={role: [load_key_spec(p) for p in ps] for role, ps in online.items()},
                online_paths=paths, architectures=args.arch or list(DEFAULT_ARCHES),
                root_expires=args.root_expires or "")
    _out(f"repository created in {directory}; clients pin {root}; keep the root and targets keys offline")
    return EXIT_OK


def cmd_repo_delegate(args: argparse.Namespace) -> int:
    from composer.repo.edit import delegate
    from composer.repo.store import RepoStore
    from composer.trust.keys import load_key_spec, load_public_key
    keys = [load_public_key(Path(k)) for k in args.key]
    delegate(RepoStore(Path(args.dir)), args.name, keys, args.packages, args.threshold,
             targets_keys=[load_key_spec(k) for k in args.targets_key])
    _out(f"delegated {', '.join(args.packages)} to '{args.name}' ({len(keys)} key(s), threshold {args.threshold}); "
         "run 'vcomp repo publish' to make it visible")
    return EXIT_OK


def cmd_repo_sign_targets(args: argparse.Namespace) -> int:
    from composer.repo.edit import resign_targets
    from composer.repo.publishing import publish
    from composer.repo.store import RepoStore
    from composer.trust.keys import load_key_spec
    keys = [load_key_spec(k) for k in args.targets_key]
    version = resign_targets(RepoStore(Path(args.dir)), targets_keys=keys)
    published = "" if args.no_publish else f"; published (snapshot v{publish(RepoStore(Path(args.dir)))['snapshot']})"
    _out(f"top-level targets v{version} signed with a new expiry{published}")
    return EXIT_OK


def cmd_repo_migrate(args: argparse.Namespace) -> int:
    from composer.repo.edit import migrate
    from composer.repo.guard import migrate_state
    from composer.repo.store import config_key_path
    from composer.trust.keys import load_key_spec
    if args.index_key is None:
        if args.targets_key:
            raise UserError("--targets-key goes with --index-key (the move to the offline-targets layout)",
                            hint=f"vcomp repo migrate {args.dir} --index-key NEW-INDEX.key --targets-key ...")
        count = migrate_state(Path(args.dir), rebuild=args.rebuild)
        how = ", rebuilt from the signed roles" if args.rebuild else ""
        _out(f"{args.dir}: state in state.db ({count} packages{how})")
        return EXIT_OK
    moved = migrate(Path(args.dir), index_key=load_key_spec(args.index_key),
                    index_path=config_key_path(Path(args.dir), args.index_key),
                    targets_keys=[load_key_spec(k) for k in args.targets_key])
    _out(f"{args.dir}: the indexes are now signed by the online index role; repo.toml no longer lists the "
         f"targets key: move {', '.join(moved)} offline")
    return EXIT_OK


def cmd_repo_add(args: argparse.Namespace) -> int:
    from composer.repo.edit import add
    from composer.repo.store import RepoStore
    from composer.trust.keys import load_key_spec
    results = add(RepoStore(Path(args.dir)), [Path(p) for p in args.package],
                  [load_key_spec(k) for k in args.key])
    if jsonout.wanted(args):
        jsonout.emit({"repository": args.dir, "packages": [
            {"name": r.entry.name, "version": r.entry.version, "arch": r.entry.arch, "path": r.entry.path,
             "sha256": r.entry.sha256, "role": r.role, "new": r.new, "warnings": list(r.warnings)}
            for r in results]})
        return EXIT_OK
    for r in results:
        _out(f"{'added' if r.new else 'unchanged'} {r.entry.nva} (role {r.role}, sha256 {r.entry.sha256[:16]})")
        for w in r.warnings:
            warn(w)
    info("run 'vcomp repo publish' to make them visible")
    return EXIT_OK


def cmd_repo_add_image(args: argparse.Namespace) -> int:
    from composer.repo.store import RepoStore
    from composer.update.publish import add_image
    p = add_image(RepoStore(Path(args.dir)), Path(args.image), args.name)
    index = p.stored.index
    if jsonout.wanted(args):
        jsonout.emit({"repository": args.dir, "target": p.path, "sha256": p.sha256, "length": p.length,
                      "size": index.size, "chunks": len(index.chunks), "new-chunks": p.stored.written,
                      "new-bytes": p.stored.written_bytes})
        return EXIT_OK
    _out(f"published {p.path} ({len(index.chunks)} chunks, {p.stored.written} new, {p.stored.written_bytes} "
         "bytes compressed)")
    return EXIT_OK


def cmd_repo_deltas(args: argparse.Namespace) -> int:
    from composer.repo.deltas import delta_name, write_deltas
    from composer.repo.store import RepoStore
    deltas = write_deltas(RepoStore(Path(args.dir)))
    if jsonout.wanted(args):
        jsonout.emit({"repository": args.dir, "deltas": [
            {"name": d.new.name, "arch": d.new.arch, "from": d.old.version_text, "to": d.new.version_text,
             "package-size": d.new.size, "size": d.size, "made": d.made,
             "path": delta_name(d.old.sha256, d.new.sha256) if d.size else None} for d in deltas]})
        return EXIT_OK
    for d in deltas:
        what = f"{d.size} bytes ({100 * d.size / d.new.size:.0f} % of the package)" if d.size else \
            "not kept (not smaller than the package)"
        _out(f"{'made' if d.made else 'kept'} {d.new.name} {d.old.version_text} -> {d.new.version_text} "
             f"{d.new.arch}: {what}")
    return EXIT_OK


def cmd_repo_publish(args: argparse.Namespace) -> int:
    from composer.repo.publishing import publish
    from composer.repo.store import RepoStore
    if args.prune_after is not None and not args.to:
        raise UserError("--prune-after prunes a destination: it needs --to URL",
                        hint="vcomp repo publish DIR --to URL --prune-after HOURS")
    v = publish(RepoStore(Path(args.dir)), full=args.full)
    pushed = _push(Path(args.dir), args.to) if args.to else None
    pruned = _prune(args.to, args.prune_after) if args.prune_after is not None else None
    if jsonout.wanted(args):
        doc: dict[str, object] = {"repository": args.dir, "packages": v["packages"],
                                  "incremental": bool(v["incremental"]),
                                  "versions": {k: n for k, n in v.items() if k not in ("packages", "incremental")}}
        if pushed:
            doc["pushed"] = {"to": args.to, "uploaded": pushed.uploaded, "skipped": pushed.skipped,
                             "bytes": pushed.bytes, **({"pruned": pruned} if pruned is not None else {})}
        jsonout.emit(doc)
        return EXIT_OK
    how = "incremental" if v["incremental"] else "full"
    _out(f"published {v['packages']} packages ({how}): targets v{v['targets']}, snapshot v{v['snapshot']}")
    if pushed:
        _out(_pushed_line(args.to, pushed))
    if pruned is not None:
        _out(f"pruned {len(pruned)} superseded metadata files (superseded for over {args.prune_after:g} h)")
    return EXIT_OK


def _push(directory: Path, url: str) -> PushResult:
    """Push the served files of ``directory`` to ``url`` (docs/publishing.md)."""
    from composer.repo.push import push
    from composer.repo.remotes import open_destination
    return push(directory, open_destination(url))


def _prune(url: str, hours: float) -> list[str]:
    """Delete the destination's superseded metadata, superseded for longer than ``hours`` (docs/publishing.md)."""
    import datetime as dt

    from composer.repo.push import prune
    from composer.repo.remotes import open_destination
    if not 0 <= hours <= 24 * 3650:
        raise UserError(f"--prune-after {hours:g}: not a number of hours from 0 to 87600",
                        hint="give the grace period in hours, longer than the timestamp's expiry (e.g. 48)")
    return prune(open_destination(url), grace=dt.timedelta(hours=hours), now=dt.datetime.now(dt.UTC))


def _pushed_line(url: str, r: PushResult) -> str:
    return f"pushed to {url}: {r.uploaded} files uploaded ({r.bytes} bytes), {r.skipped} already there"


def cmd_repo_refresh(args: argparse.Namespace) -> int:
    from composer.repo.publishing import refresh
    from composer.repo.store import RepoStore
    _out(f"timestamp v{refresh(RepoStore(Path(args.dir)))}")
    return EXIT_OK


def cmd_repo_serve(args: argparse.Namespace) -> int:
    from composer.repo.serve import AccessLog, make_server
    from composer.repo.store import RepoStore
    RepoStore(Path(args.dir), legacy=True)  # refuse a directory that is not a repository (any layout)
    with contextlib.ExitStack() as stack:
        log = None
        if not args.no_access_log:
            path = Path(args.access_log) if args.access_log else Path(args.dir) / "logs" / "access.log"
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                log = AccessLog(stack.enter_context(path.open("a", encoding="utf-8")))
            except OSError as exc:
                raise UserError(f"{path}: cannot write the access log ({exc.strerror})",
                                hint="pass --access-log FILE somewhere writable, or --no-access-log") from None
        server = make_server(Path(args.dir), args.port, args.host, access_log=log)
        host, port = server.server_address[:2]
        _out(f"serving {args.dir} at http://{host!s}:{port}/ (Ctrl-C to stop)")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return EXIT_OK


def cmd_repo_rotate(args: argparse.Namespace) -> int:
    from composer.repo.rotate import rotate
    from composer.repo.store import RepoStore, config_key_path
    from composer.trust.keys import load_key_spec, load_public_key
    add: list[SigningKey | PublicKey] = [load_key_spec(k) if _private(k) else load_public_key(Path(k))
                                         for k in args.add_key]
    if args.stage:
        return _stage_root(args, add)
    summary = rotate(RepoStore(Path(args.dir)), args.role, add=add,
                     remove=[load_public_key(Path(k)) for k in args.remove_key],
                     root_keys=[load_key_spec(k) for k in args.root_key],
                     targets_keys=[load_key_spec(k) for k in args.targets_key], threshold=args.threshold,
                     add_paths=[config_key_path(Path(args.dir), k) for k in args.add_key if _private(k)])
    _out(summary)
    return EXIT_OK


def _stage_root(args: argparse.Namespace, add: list[SigningKey | PublicKey]) -> int:
    from composer.repo.ceremony import stage_root
    from composer.repo.store import RepoStore
    from composer.trust.keys import SigningKey, load_key_spec, load_public_key
    if args.role != "root" or args.targets_key:
        raise UserError("--stage stages a new root: it needs --role root and no --targets-key",
                        hint="the other roles change with one command: vcomp repo rotate DIR --role ROLE ...")
    signers = [*[load_key_spec(k) for k in args.root_key], *[k for k in add if isinstance(k, SigningKey)]]
    status = stage_root(RepoStore(Path(args.dir)), add=[k.public if isinstance(k, SigningKey) else k for k in add],
                        remove=[load_public_key(Path(k)) for k in args.remove_key], threshold=args.threshold,
                        keys=signers, staged=Path(args.staged) if args.staged else None)
    _out(status.summary())
    return EXIT_OK


def cmd_repo_sign_root(args: argparse.Namespace) -> int:
    from composer.repo.ceremony import sign_root
    from composer.repo.store import RepoStore
    from composer.trust.keys import load_key_spec
    if not args.key and not args.merge:
        raise UserError("repo sign-root needs --key (your root key) or --merge (signed copies)",
                        hint="vcomp repo sign-root DIR --key KEYFILE[:VAR] [--staged FILE]")
    status = sign_root(RepoStore(Path(args.dir)), keys=[load_key_spec(k) for k in args.key],
                       merge=[Path(m) for m in args.merge], staged=Path(args.staged) if args.staged else None,
                       publish=not args.no_publish)
    _out(status.summary())
    return EXIT_OK


def cmd_repo_mirror(args: argparse.Namespace) -> int:
    from composer.package.build import default_cache
    from composer.repo.client import RepositoryClient, load_trusted_root
    from composer.repo.mirror import mirror
    from composer.update.mirror import mirror_images
    client = RepositoryClient(args.url, load_trusted_root(Path(args.root)), default_cache() / "repos")
    arches = args.arch or list(DEFAULT_ARCHES)
    images = mirror_images(client, Path(args.dest), arches[0])     # before the metadata that lists them
    r = mirror(client, Path(args.dest), arches)
    _out(f"mirrored {r.packages} package entries into {args.dest}: {r.downloaded} files downloaded and verified, "
         f"{r.skipped} already present")
    if images.images:
        _out(f"mirrored {images.images} images: {images.chunks} chunks downloaded and verified, {images.present} "
             "already present")
    if args.to:
        _out(_pushed_line(args.to, _push(Path(args.dest), args.to)))
    return EXIT_OK


def cmd_repo_vendor(args: argparse.Namespace) -> int:
    from composer.package.build import default_cache
    from composer.repo.client import RepositoryClient, load_trusted_root
    from composer.repo.store import RepoStore
    from composer.repo.vendor import VendorRequest, vendor
    from composer.trust.keys import load_key_spec
    client = RepositoryClient(args.source, load_trusted_root(Path(args.from_root)), default_cache() / "repos")
    request = VendorRequest(patterns=tuple(args.names), arches=tuple(args.arch or ()),
                            with_dependencies=args.with_dependencies)
    done = vendor(RepoStore(Path(args.dir)), client, request,
                  targets_keys=[load_key_spec(k) for k in args.targets_key])
    if jsonout.wanted(args):
        jsonout.emit({"repository": args.dir, "upstream": args.source, "copied": done.copied,
                      "targets_version": done.targets_version, "delegation_changed": done.delegation_changed,
                      "roles": [{"name": r.name, "version": r.version, "previous": r.previous, "names": list(r.names)}
                                for r in done.roles],
                      "packages": [{"name": e.name, "version": e.version_text, "arch": e.arch, "path": e.path,
                                    "sha256": e.sha256, "signer": e.signer} for e in done.packages]})
        return EXIT_OK
    for role in done.roles:
        was = f"was v{role.previous}" if role.previous else "new"
        _out(f"role {role.name} v{role.version} ({was}), signed upstream; delegated here: {', '.join(role.names)}")
    for entry in done.packages:
        _out(f"vendored {entry.nva} (signer {entry.signer[:16]}, sha256 {entry.sha256[:16]})")
    signed = f"top-level targets v{done.targets_version} signed" if done.delegation_changed else \
        "delegations unchanged"
    _out(f"{len(done.packages)} packages, {done.copied} copied; {signed}")
    info("run 'vcomp repo publish' to make them visible")
    return EXIT_OK


def _private(spec: str) -> bool:
    """A private key file (NAME.key, or NAME.key:VAR naming its passphrase variable)."""
    from composer.trust.keys import parse_key_spec
    return parse_key_spec(spec).path.suffix == ".key"


def register(sub: Subparsers) -> None:
    repo = sub.add_parser("repo", help="signed (TUF) package repositories").add_subparsers(dest="verb", required=True)
    r = repo.add_parser("init", help="create a repository: root (k-of-n) and targets offline; index, snapshot and "
                                     "timestamp online")
    r.add_argument("dir")
    r.add_argument("--root-key", action="append", default=[], metavar=KEYSPEC,
                   help="an offline root private key (repeat for k-of-n)")
    r.add_argument("--root-threshold", type=int, default=1)
    r.add_argument("--targets-key", action="append", default=[], metavar=KEYSPEC,
                   help="the offline top-level targets private key (signs delegations; not recorded)")
    r.add_argument("--index-key", action="append", default=[], metavar=KEYSPEC,
                   help="online key of the index role (repo.toml)")
    r.add_argument("--snapshot-key", action="append", default=[], metavar=KEYSPEC,
                   help="online snapshot key (repo.toml)")
    r.add_argument("--timestamp-key", action="append", default=[], metavar=KEYSPEC,
                   help="online timestamp key (repo.toml)")
    r.add_argument("--arch", action="append", help="architectures served (default: x86_64 and aarch64)")
    r.add_argument("--root-expires", help="root expiry as ISO 8601 (default: one year from now)")
    r.set_defaults(func=cmd_repo_init)
    r = repo.add_parser("delegate", help="let a developer key publish package names matching patterns")
    r.add_argument("dir")
    r.add_argument("name", help="the delegated role's name")
    r.add_argument("--key", action="append", required=True, help="developer public key (.pub); repeatable")
    r.add_argument("--packages", nargs="+", required=True, metavar="PATTERN")
    r.add_argument("--threshold", type=int, default=1)
    r.add_argument("--targets-key", action="append", required=True, metavar=KEYSPEC,
                   help="the offline top-level targets private key (.key) that signs the delegation")
    r.set_defaults(func=cmd_repo_delegate)
    r = repo.add_parser("sign-targets", help="re-sign the offline top-level targets with a new expiry")
    r.add_argument("dir")
    r.add_argument("--targets-key", action="append", required=True, metavar=KEYSPEC,
                   help="the offline targets private key (.key)")
    r.add_argument("--no-publish", action="store_true",
                   help="only write N.targets.json (offline machine); the next 'repo publish' lists it")
    r.set_defaults(func=cmd_repo_sign_targets)
    r = repo.add_parser("migrate", help="move a repository's state.json to state.db (SQLite); with --index-key, "
                                        "move a repository whose repo.toml lists the targets key to the "
                                        "offline-targets layout")
    r.add_argument("dir")
    r.add_argument("--index-key", metavar=KEYSPEC,
                   help="a new private key (.key) for the online index role")
    r.add_argument("--rebuild", action="store_true",
                   help="drop a damaged state.db and rebuild it from the signed roles and stored targets")
    r.add_argument("--targets-key", action="append", default=[], metavar=KEYSPEC,
                   help="targets private key(s) (default: the ones repo.toml still lists)")
    r.set_defaults(func=cmd_repo_migrate)
    r = repo.add_parser("add", help="verify packages and store them (published by 'repo publish')")
    r.add_argument("dir")
    r.add_argument("package", nargs="+")
    r.add_argument("--key", action="append", required=True, metavar=KEYSPEC,
                   help="developer private key(s) that sign the delegated role's metadata")
    jsonout.add_json(r, "repo add")
    r.set_defaults(func=cmd_repo_add)
    r = repo.add_parser("add-image", help="chunk an image into the repository's chunk store and publish its "
                                          "chunk index as a signed target (docs/updates/deltas.md)")
    r.add_argument("dir")
    r.add_argument("image")
    r.add_argument("--name", required=True, help="the image's name (e.g. minimal-x86_64): index/NAME.caidx.json")
    jsonout.add_json(r, "repo add-image")
    r.set_defaults(func=cmd_repo_add_image)
    r = repo.add_parser("deltas", help="binary deltas between consecutive package versions, served beside the "
                                       "packages (docs/updates/deltas.md)")
    r.add_argument("dir")
    jsonout.add_json(r, "repo deltas")
    r.set_defaults(func=cmd_repo_deltas)
    r = repo.add_parser("publish", help="write indexes, targets, snapshot and timestamp")
    r.add_argument("dir")
    r.add_argument("--to", metavar="URL", help="then push the served files to s3://BUCKET/PREFIX, "
                   "dav+https://HOST/PATH or a directory, timestamp.json last (docs/publishing.md)")
    r.add_argument("--prune-after", type=float, metavar="HOURS",
                   help="after the push, delete from the destination the metadata versions its state has not reached "
                        "for HOURS, by its push log (roots and targets are kept; docs/publishing.md)")
    r.add_argument("--full", action="store_true",
                   help="rebuild every index file and hash bin, not only what changed since the last publish (the "
                        "whole indexes of a large repository are otherwise rebuilt every n/64 changed names; "
                        "docs/repo-scale.md)")
    jsonout.add_json(r, "repo publish")
    r.set_defaults(func=cmd_repo_publish)
    r = repo.add_parser("refresh", help="re-sign the timestamp with a new expiry (for a timer)")
    r.add_argument("dir")
    r.set_defaults(func=cmd_repo_refresh)
    r = repo.add_parser("rotate", help="change a role's keys (root: signed by the old and the new threshold)")
    r.add_argument("dir")
    r.add_argument("--role", required=True,
                   help="root, targets, snapshot, timestamp, index or a developer delegation name")
    r.add_argument("--add-key", action="append", default=[], metavar="KEY.pub|KEYFILE[:VAR]",
                   help="key to add (.key for root, targets and the online roles index, snapshot, timestamp)")
    r.add_argument("--remove-key", action="append", default=[], help="public key (.pub) to remove")
    r.add_argument("--root-key", action="append", default=[], metavar=KEYSPEC,
                   help="current root private key(s) (for root, targets, snapshot, timestamp)")
    r.add_argument("--targets-key", action="append", default=[], metavar=KEYSPEC,
                   help="offline targets private key(s) (for index and developer roles; the new ones for targets)")
    r.add_argument("--threshold", type=int)
    r.add_argument("--stage", action="store_true",
                   help="root only: write the new root to a staged file for its holders to sign with "
                        "'repo sign-root' (published when both thresholds are met)")
    r.add_argument("--staged", metavar="FILE", help="the staged root file (default: DIR/staged-root.json)")
    r.set_defaults(func=cmd_repo_rotate)
    r = repo.add_parser("sign-root", help="add your signature to a staged root, or merge signed copies; "
                                          "publishes it when the thresholds are met")
    r.add_argument("dir")
    r.add_argument("--key", action="append", default=[], metavar="KEYFILE[:VAR]",
                   help="a root private key of the current or the new root (repeatable)")
    r.add_argument("--merge", action="append", default=[], metavar="FILE",
                   help="a copy of the staged root signed by another holder (repeatable)")
    r.add_argument("--staged", metavar="FILE", help="the staged root file (default: DIR/staged-root.json)")
    r.add_argument("--no-publish", action="store_true",
                   help="only sign (on a holder's machine), even when the thresholds are met")
    r.set_defaults(func=cmd_repo_sign_root)
    r = repo.add_parser("mirror", help="verifying, incremental copy of a repository (itself servable)")
    r.add_argument("url")
    r.add_argument("dest")
    r.add_argument("--root", required=True, help="the pinned trust root (root.json)")
    r.add_argument("--arch", action="append")
    r.add_argument("--to", metavar="URL", help="then push the mirror (DEST) to s3://BUCKET/PREFIX, "
                   "dav+https://HOST/PATH or a directory, timestamp.json last (docs/publishing.md)")
    r.set_defaults(func=cmd_repo_mirror)
    r = repo.add_parser("vendor", help="copy upstream packages into the repository, verified by their upstream "
                                       "developers' signatures (docs/upstream.md)")
    r.add_argument("dir")
    r.add_argument("names", nargs="*", metavar="NAME-OR-GLOB",
                   help="upstream package names or globs (none: refresh what was vendored from this upstream)")
    r.add_argument("--from", dest="source", required=True, metavar="URL-OR-DIR", help="the upstream repository")
    r.add_argument("--from-root", required=True, metavar="ROOT.json", help="the upstream's pinned trust root")
    r.add_argument("--targets-key", action="append", default=[], metavar=KEYSPEC,
                   help="your offline top-level targets private key (needed when a delegation changes)")
    r.add_argument("--arch", action="append", help="architectures to vendor (default: those the repository serves)")
    r.add_argument("--with-dependencies", action="store_true",
                   help="also vendor the upstream packages the named ones depend on")
    jsonout.add_json(r, "repo vendor")
    r.set_defaults(func=cmd_repo_vendor)
    r = repo.add_parser("serve", help="static HTTP for a repository (127.0.0.1 by default)")
    r.add_argument("dir")
    r.add_argument("--port", type=int, default=8420)
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--access-log", metavar="FILE",
                   help="append a Common Log Format line per request here (default: DIR/logs/access.log; "
                        "read by 'vcomp repo stats')")
    r.add_argument("--no-access-log", action="store_true", help="write no access log")
    r.set_defaults(func=cmd_repo_serve)
    from composer.cli import reposite
    reposite.register(repo)
