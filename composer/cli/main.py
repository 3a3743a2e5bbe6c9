"""The ``vcomp`` command line: the only place that prints errors and picks exit codes."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from composer import __version__, lockfile, oserrors
from composer.arch import DEFAULT_ARCHES
from composer.cli.common import EXIT_CHANGES, EXIT_ERROR, EXIT_OK
from composer.cli.common import out as _out
from composer.errors import ComposerError, UserError

if TYPE_CHECKING:
    from composer.repo.client import RepositoryClient

Handler = Callable[[argparse.Namespace], int]



# ----------------------------------------------------------------- key

def cmd_key_generate(args: argparse.Namespace) -> int:
    from composer.trust.keys import PASSPHRASE_ENV, generate
    passphrase = os.environ.get(args.passphrase_env or PASSPHRASE_ENV) if args.passphrase_env else None
    key, pub, keyid = generate(args.name, Path(args.dir), passphrase=passphrase, force=args.force)
    _out(f"{key}\n{pub}\nkey id {keyid}")
    return EXIT_OK


def cmd_key_id(args: argparse.Namespace) -> int:
    from composer.trust.keys import load_public_key, load_signing_key
    path = Path(args.key)
    key = load_signing_key(path).public if path.suffix == ".key" else load_public_key(path)
    _out(key.keyid)
    return EXIT_OK


# ----------------------------------------------------------------- pkg

def cmd_pkg_build(args: argparse.Namespace) -> int:
    from composer.package.build import build
    from composer.trust.keys import load_signing_key
    key = load_signing_key(Path(args.key))
    result = build(Path(args.recipe), args.arch, key, Path(args.out),
                   cache=Path(args.cache) if args.cache else None)
    _out(str(result.path))
    return EXIT_OK


def cmd_pkg_build_all(args: argparse.Namespace) -> int:
    from rich.console import Console

    from composer.package.build import build_all
    from composer.trust.keys import load_signing_key
    key = load_signing_key(Path(args.key))
    console = Console(stderr=True, highlight=False)
    status = console.status(f"building {args.recipes} for {args.arch}")
    status.start()

    def progress(name: str, what: str) -> None:
        status.update(f"{name}: {what}")
        if what != "building":
            console.print(f"  {name:<24} {what}")

    try:
        results = build_all(Path(args.recipes), args.arch, key, Path(args.out),
                            cache=Path(args.cache) if args.cache else None, progress=progress)
    finally:
        status.stop()
    built = sum(1 for r in results if not r.skipped)
    console.print(f"{len(results)} packages for {args.arch} in {args.out}: {built} built, "
                  f"{len(results) - built} unchanged")
    for r in results:
        _out(str(r.path))
    return EXIT_OK


def cmd_pkg_info(args: argparse.Namespace) -> int:
    from composer.package.archive import read_header
    header = read_header(Path(args.package))
    meta = header.metadata
    if args.json:
        _out(json.dumps({"metadata": meta.to_dict(), "files": len(header.manifest.entries),
                         "installed_size": header.manifest.installed_size,
                         "payload": {"sha256": header.manifest.payload_sha256,
                                     "size": header.manifest.payload_size}}, indent=2, sort_keys=True))
        return EXIT_OK
    rows = [("name", meta.name), ("version", meta.version), ("arch", meta.arch), ("type", meta.type),
            ("description", meta.description), ("license", meta.license), ("authors", ", ".join(meta.authors)),
            ("provides", ", ".join(meta.provides)), ("conflicts", ", ".join(meta.conflicts)),
            ("depends", ", ".join(f"{d.name} {d.requirement}" for d in meta.dependencies)),
            ("capabilities", ", ".join(meta.capabilities_required) +
             (f" (optional: {', '.join(meta.capabilities_optional)})" if meta.capabilities_optional else "")),
            ("context", meta.security.context), ("signer", meta.security.signer),
            ("files", str(len(header.manifest.entries))),
            ("installed size", str(header.manifest.installed_size))]
    if meta.driver:
        rows.append(("modules", " ".join(meta.driver.get("modules", []))))
    if meta.kernel:
        rows.append(("kernel", f"{meta.kernel['release']} ({meta.kernel['image']})"))
    for src in meta.provenance.get("sources", []):
        if src.get("kind") == "deb":
            rows.append(("from", f"{src['name']} {src['version']} {src['arch']} sha256:{src['sha256'][:16]}"))
    for k, v in rows:
        if v:
            _out(f"{k:<15} {v}")
    return EXIT_OK


def cmd_pkg_contents(args: argparse.Namespace) -> int:
    from composer.package.archive import read_header
    for e in read_header(Path(args.package)).manifest.entries:
        extra = f" -> {e.target}" if e.target else ""
        size = str(e.size) if e.type == "file" else "-"
        _out(f"{e.type:<8} {e.mode:04o} {size:>10} {e.role if e.type == 'file' else '':<7} {e.path}{extra}")
    return EXIT_OK


def cmd_pkg_verify(args: argparse.Namespace) -> int:
    from composer.package.archive import verify_package
    from composer.trust.keys import load_public_key
    trusted = load_public_key(Path(args.key)) if args.key else None
    failed = 0
    for pkg in args.package:
        try:
            v = verify_package(Path(pkg), trusted)
        except ComposerError as exc:
            failed += 1
            _err(exc, prefix="FAIL ")
            continue
        who = "the given key" if trusted else "its embedded key (pass --key PUB to check who signed it)"
        _out(f"OK   {pkg}: {v.header.metadata.nva}, {v.files} entries, {v.bytes} bytes; signature by "
             f"{v.signer.keyid[:16]} verified with {who}")
    return EXIT_ERROR if failed else EXIT_OK


def cmd_pkg_extract(args: argparse.Namespace) -> int:
    from composer.package.extract import extract_package
    from composer.trust.keys import load_public_key
    trusted = load_public_key(Path(args.key)) if args.key else None
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    for pkg in args.package:
        r = extract_package(Path(pkg), root, trusted=trusted, overwrite=args.overwrite)
        devices = f", {len(r.devices)} device nodes recorded (not created)" if r.devices else ""
        _out(f"{r.metadata.nva}: {len(r.files)} entries, {r.bytes_written} bytes into {root}{devices}")
    return EXIT_OK


def cmd_pkg_lint(args: argparse.Namespace) -> int:
    from composer.package.lint import lint_package
    worst = 0
    for pkg in args.package:
        findings = lint_package(Path(pkg))
        for f in findings:
            _out(f"{pkg}: {f.level}: {f.code}: {f.message}")
            worst = max(worst, 1 if f.level == "error" else 0)
        if not findings:
            _out(f"{pkg}: clean")
    return worst


# ----------------------------------------------------------------- repo

def cmd_repo_init(args: argparse.Namespace) -> int:
    from composer.repo.edit import init
    from composer.trust.keys import load_signing_key
    online = {"index": args.index_key, "snapshot": args.snapshot_key, "timestamp": args.timestamp_key}
    needed = {"--root-key": args.root_key, "--targets-key": args.targets_key,
              **{f"--{role}-key": paths for role, paths in online.items()}}
    missing = [option for option, paths in needed.items() if not paths]
    if missing:
        raise UserError(f"repo init needs {', '.join(missing)}",
                        hint="make keys with 'vcomp key generate NAME'; the root and targets keys stay offline "
                             "(they are not recorded), the index, snapshot and timestamp keys are online")
    directory = Path(args.dir)
    paths = {role: [str(Path(p).resolve()) for p in ps] for role, ps in online.items()}
    root = init(directory, root_keys=[load_signing_key(Path(p)) for p in args.root_key],
                root_threshold=args.root_threshold,
                targets_keys=[load_signing_key(Path(p)) for p in args.targets_key],
                online={role: [load_signing_key(Path(p)) for p in ps] for role, ps in online.items()},
                online_paths=paths, architectures=args.arch or list(DEFAULT_ARCHES),
                root_expires=args.root_expires or "")
    _out(f"repository created in {directory}; clients pin {root}; keep the root and targets keys offline")
    return EXIT_OK


def cmd_repo_delegate(args: argparse.Namespace) -> int:
    from composer.repo.edit import delegate
    from composer.repo.store import RepoStore
    from composer.trust.keys import load_public_key, load_signing_key
    keys = [load_public_key(Path(k)) for k in args.key]
    delegate(RepoStore(Path(args.dir)), args.name, keys, args.packages, args.threshold,
             targets_keys=[load_signing_key(Path(k)) for k in args.targets_key])
    _out(f"delegated {', '.join(args.packages)} to '{args.name}' ({len(keys)} key(s), threshold {args.threshold}); "
         "run 'vcomp repo publish' to make it visible")
    return EXIT_OK


def cmd_repo_sign_targets(args: argparse.Namespace) -> int:
    from composer.repo.edit import publish, resign_targets
    from composer.repo.store import RepoStore
    from composer.trust.keys import load_signing_key
    keys = [load_signing_key(Path(k)) for k in args.targets_key]
    version = resign_targets(RepoStore(Path(args.dir)), targets_keys=keys)
    published = "" if args.no_publish else f"; published (snapshot v{publish(RepoStore(Path(args.dir)))['snapshot']})"
    _out(f"top-level targets v{version} signed with a new expiry{published}")
    return EXIT_OK


def cmd_repo_migrate(args: argparse.Namespace) -> int:
    from composer.repo.edit import migrate
    from composer.trust.keys import load_signing_key
    moved = migrate(Path(args.dir), index_key=load_signing_key(Path(args.index_key)),
                    index_path=str(Path(args.index_key).resolve()),
                    targets_keys=[load_signing_key(Path(k)) for k in args.targets_key])
    _out(f"{args.dir}: the indexes are now signed by the online index role; repo.toml no longer lists the "
         f"targets key: move {', '.join(moved)} offline")
    return EXIT_OK


def cmd_repo_add(args: argparse.Namespace) -> int:
    from composer.repo.edit import add
    from composer.repo.store import RepoStore
    from composer.trust.keys import load_signing_key
    results = add(RepoStore(Path(args.dir)), [Path(p) for p in args.package],
                  [load_signing_key(Path(k)) for k in args.key])
    for r in results:
        _out(f"{'added' if r.new else 'unchanged'} {r.entry.nva} (role {r.role}, sha256 {r.entry.sha256[:16]})")
    _out("run 'vcomp repo publish' to make them visible")
    return EXIT_OK


def cmd_repo_publish(args: argparse.Namespace) -> int:
    from composer.repo.edit import publish
    from composer.repo.store import RepoStore
    v = publish(RepoStore(Path(args.dir)))
    _out(f"published {v['packages']} packages: targets v{v['targets']}, snapshot v{v['snapshot']}")
    return EXIT_OK


def cmd_repo_refresh(args: argparse.Namespace) -> int:
    from composer.repo.edit import refresh
    from composer.repo.store import RepoStore
    _out(f"timestamp v{refresh(RepoStore(Path(args.dir)))}")
    return EXIT_OK


def cmd_repo_serve(args: argparse.Namespace) -> int:
    from composer.repo.serve import make_server
    from composer.repo.store import RepoStore
    RepoStore(Path(args.dir), legacy=True)  # refuse a directory that is not a repository (any layout)
    server = make_server(Path(args.dir), args.port, args.host)
    host, port = server.server_address[:2]
    _out(f"serving {args.dir} at http://{host!s}:{port}/ (Ctrl-C to stop)")
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return EXIT_OK


def cmd_repo_rotate(args: argparse.Namespace) -> int:
    from composer.repo.rotate import rotate
    from composer.repo.store import RepoStore
    from composer.trust.keys import PublicKey, SigningKey, load_public_key, load_signing_key
    add: list[SigningKey | PublicKey] = [load_signing_key(Path(k)) if k.endswith(".key") else load_public_key(Path(k))
                                         for k in args.add_key]
    summary = rotate(RepoStore(Path(args.dir)), args.role, add=add,
                     remove=[load_public_key(Path(k)) for k in args.remove_key],
                     root_keys=[load_signing_key(Path(k)) for k in args.root_key],
                     targets_keys=[load_signing_key(Path(k)) for k in args.targets_key], threshold=args.threshold,
                     add_paths=[str(Path(k).resolve()) for k in args.add_key if k.endswith(".key")])
    _out(summary)
    return EXIT_OK


def cmd_repo_mirror(args: argparse.Namespace) -> int:
    from composer.package.build import default_cache
    from composer.repo.client import RepositoryClient, load_trusted_root
    from composer.repo.mirror import mirror
    client = RepositoryClient(args.url, load_trusted_root(Path(args.root)), default_cache() / "repos")
    r = mirror(client, Path(args.dest), args.arch or list(DEFAULT_ARCHES))
    _out(f"mirrored {r.packages} package entries into {args.dest}: {r.downloaded} files downloaded and verified, "
         f"{r.skipped} already present")
    return EXIT_OK


def _client(args: argparse.Namespace) -> RepositoryClient:
    from composer.package.build import default_cache
    from composer.repo.client import RepositoryClient, load_trusted_root
    return RepositoryClient(args.repo, load_trusted_root(Path(args.root)), default_cache() / "repos",
                            mirrors=args.mirror or ())


def cmd_search(args: argparse.Namespace) -> int:
    client = _client(args)
    found = client.search(args.query, args.arch)
    for e in found:
        _out(f"{e.name:<22} {e.version:<30} {e.arch:<8} {e.type:<12} {e.description}")
    if not found:
        _out(f"no package matches '{args.query}' for {args.arch}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    client = _client(args)
    e = client.metadata(args.name, args.arch, args.version or "")
    if args.json:
        _out(json.dumps(e.to_dict(), indent=2, sort_keys=True))
        return EXIT_OK
    deps = ", ".join(f"{k} {v if isinstance(v, str) else v.get('version')}" for k, v in e.dependencies.items())
    for k, v in [("name", e.name), ("version", e.version), ("arch", e.arch), ("type", e.type),
                 ("description", e.description), ("license", e.license), ("depends", deps),
                 ("provides", ", ".join(e.provides)), ("size", str(e.size)), ("sha256", e.sha256),
                 ("signer", e.signer), ("path", e.path)]:
        if v:
            _out(f"{k:<12} {v}")
    return EXIT_OK


def cmd_fetch(args: argparse.Namespace) -> int:
    client = _client(args)
    name, _, version = args.spec.partition("=")
    entry = client.metadata(name, args.arch, version)
    _out(str(client.fetch(entry, Path(args.out))))
    return EXIT_OK


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


def cmd_lock(args: argparse.Namespace) -> int:
    from composer.package.build import default_cache
    from composer.profile.load import load_profile
    from composer.solve.lock import (
        diff_locks,
        kept_versions,
        lock_path,
        missing_packages,
        open_sources,
        read_lock,
        resolve_profile,
        staleness,
        write_lock,
    )
    from composer.solve.lockcheck import lock_problems
    status = EXIT_OK
    for path in args.profile:
        profile = load_profile(Path(path))
        target = lock_path(Path(path))
        old = read_lock(target)
        sources = open_sources(profile, default_cache() / "repos")
        if args.check:
            if old is None:
                _err(UserError(f"{target} does not exist", hint=f"run: vcomp lock {path}"))
                status = EXIT_ERROR
                continue
            stale = staleness(profile, old, sources.fingerprints)
            stale += [] if stale else missing_packages(old, sources)
            stale += [] if stale else lock_problems(profile, old, sources)[1]  # what build's check refuses
            for line in stale:
                sys.stderr.write(f"{target}: {line}\n")
            if stale:  # a comparison that found changes: exit 2, like plan and diff (1 is for errors)
                sys.stderr.write(f"  hint: run: vcomp lock {path}\n")
                status = EXIT_CHANGES if status == EXIT_OK else status
            else:
                _out(f"{target}: up to date with {path}")
            continue
        keep = {} if args.upgrade else kept_versions(old, args.update or ())
        doc = resolve_profile(profile, sources, keep)
        changes = diff_locks(old, doc)
        write_lock(target, doc)
        counts = ", ".join(f"{a}: {len(p)}" for a, p in doc.architectures.items())
        _out(f"{target}: {counts} packages" + ("; no change" if not changes and old else ""))
        for line in changes:
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


def _repo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", required=True, help="repository URL (file://, http://, https://) or directory")
    p.add_argument("--root", required=True, help="the pinned trust root (root.json)")
    p.add_argument("--mirror", action="append", help="an untrusted mirror, tried in order on failure")
    p.add_argument("--arch", default="x86_64")


# ----------------------------------------------------------------- parser

class Parser(argparse.ArgumentParser):
    """argparse with vcomp's error format and exit code: a usage error is an error (1), not argparse's 2, which
    vcomp reserves for "changes found" (plan, diff, lock --check, verify, --dry-run)."""

    def error(self, message: str) -> NoReturn:
        _err(UserError(f"{self.prog}: {message}", hint=f"see: {self.prog} --help"))
        sys.exit(EXIT_ERROR)


OFFLINE_HELP = ("never use the network: answer from the last verified repository metadata and the package cache "
                "(a package that is not cached is an error naming it)")


def build_parser() -> argparse.ArgumentParser:
    from composer.cli import pkgroot
    p = Parser(prog="vcomp", description="Veridian Composer: declarative system images")
    p.add_argument("--version", action="version", version=f"vcomp {__version__}")
    p.add_argument("--debug", action="store_true", help="log commands and show tracebacks")
    p.add_argument("--no-wait", action="store_true",
                   help="fail at once when another vcomp process holds a lock (default: wait, saying for whom)")
    p.add_argument("--offline", action="store_true", help=OFFLINE_HELP)
    sub = p.add_subparsers(dest="command", required=True)

    key = sub.add_parser("key", help="developer and repository keys").add_subparsers(dest="verb", required=True)
    k = key.add_parser("generate", help="write NAME.key (ed25519, PEM) and NAME.pub")
    k.add_argument("name")
    k.add_argument("--dir", default=".")
    k.add_argument("--passphrase-env", metavar="VAR",
                   help="encrypt the private key with the passphrase in this environment variable")
    k.add_argument("--force", action="store_true", help="replace existing files")
    k.set_defaults(func=cmd_key_generate)
    k = key.add_parser("id", help="print the key id (TUF style) of a .pub or .key file")
    k.add_argument("key")
    k.set_defaults(func=cmd_key_id)

    pkg_parser = sub.add_parser("pkg", help="build and inspect packages; with --root, manage a root's packages")
    pkg_parser.add_argument("--root", dest="pkg_root", metavar="DIR",
                            help="the root to manage (install, remove, upgrade, rollback, queries)")
    pkg = pkg_parser.add_subparsers(dest="verb", required=True)
    b = pkg.add_parser("build", help="build a package from a recipe directory; prints the .vpk path")
    b.add_argument("recipe")
    b.add_argument("--arch", default="x86_64")
    b.add_argument("--key", required=True, help="developer private key (.key)")
    b.add_argument("--out", default="out/packages")
    b.add_argument("--cache", help="download cache (default: $VCOMP_CACHE or ~/.cache/vcomp)")
    b.set_defaults(func=cmd_pkg_build)
    b = pkg.add_parser("build-all", help="build every recipe in a folder, skipping unchanged ones")
    b.add_argument("recipes")
    b.add_argument("--arch", default="x86_64")
    b.add_argument("--key", required=True)
    b.add_argument("--out", default="out/packages")
    b.add_argument("--cache")
    b.set_defaults(func=cmd_pkg_build_all)
    i = pkg.add_parser("info", help="show a package's metadata (with --root: an installed package)")
    i.add_argument("package")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=lambda a: pkgroot.dispatch(a, cmd_pkg_info))
    c = pkg.add_parser("contents", help="list a package's files")
    c.add_argument("package")
    c.set_defaults(func=cmd_pkg_contents)
    v = pkg.add_parser("verify", help="check signature, manifest and every file's hash (with --root: the "
                       "installed files against the database)")
    v.add_argument("package", nargs="*")
    v.add_argument("--key", help="trusted public key (.pub) the package must be signed with")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=lambda a: pkgroot.dispatch(a, cmd_pkg_verify))
    x = pkg.add_parser("extract", help="verify packages and extract them safely into a root directory")
    x.add_argument("package", nargs="+")
    x.add_argument("--root", required=True, help="target root directory (created if missing)")
    x.add_argument("--key", help="trusted public key (.pub) the packages must be signed with")
    x.add_argument("--overwrite", action="store_true", help="replace files that already exist in the root")
    x.set_defaults(func=cmd_pkg_extract)
    lint = pkg.add_parser("lint", help="report packaging mistakes")
    lint.add_argument("package", nargs="+")
    lint.set_defaults(func=cmd_pkg_lint)
    pkgroot.register(pkg)
    repo = sub.add_parser("repo", help="signed (TUF) package repositories").add_subparsers(dest="verb", required=True)
    r = repo.add_parser("init", help="create a repository: root (k-of-n) and targets offline; index, snapshot and "
                                     "timestamp online")
    r.add_argument("dir")
    r.add_argument("--root-key", action="append", default=[], help="an offline root private key (repeat for k-of-n)")
    r.add_argument("--root-threshold", type=int, default=1)
    r.add_argument("--targets-key", action="append", default=[],
                   help="the offline top-level targets private key (signs delegations; not recorded)")
    r.add_argument("--index-key", action="append", default=[], help="online key of the index role (repo.toml)")
    r.add_argument("--snapshot-key", action="append", default=[], help="online snapshot key (repo.toml)")
    r.add_argument("--timestamp-key", action="append", default=[], help="online timestamp key (repo.toml)")
    r.add_argument("--arch", action="append", help="architectures served (default: x86_64 and aarch64)")
    r.add_argument("--root-expires", help="root expiry as ISO 8601 (default: one year from now)")
    r.set_defaults(func=cmd_repo_init)
    r = repo.add_parser("delegate", help="let a developer key publish package names matching patterns")
    r.add_argument("dir")
    r.add_argument("name", help="the delegated role's name")
    r.add_argument("--key", action="append", required=True, help="developer public key (.pub); repeatable")
    r.add_argument("--packages", nargs="+", required=True, metavar="PATTERN")
    r.add_argument("--threshold", type=int, default=1)
    r.add_argument("--targets-key", action="append", required=True,
                   help="the offline top-level targets private key (.key) that signs the delegation")
    r.set_defaults(func=cmd_repo_delegate)
    r = repo.add_parser("sign-targets", help="re-sign the offline top-level targets with a new expiry")
    r.add_argument("dir")
    r.add_argument("--targets-key", action="append", required=True, help="the offline targets private key (.key)")
    r.add_argument("--no-publish", action="store_true",
                   help="only write N.targets.json (offline machine); the next 'repo publish' lists it")
    r.set_defaults(func=cmd_repo_sign_targets)
    r = repo.add_parser("migrate", help="move a repository whose repo.toml lists the targets key to the "
                                        "offline-targets layout")
    r.add_argument("dir")
    r.add_argument("--index-key", required=True, help="a new private key (.key) for the online index role")
    r.add_argument("--targets-key", action="append", default=[],
                   help="targets private key(s) (default: the ones repo.toml still lists)")
    r.set_defaults(func=cmd_repo_migrate)
    r = repo.add_parser("add", help="verify packages and store them (published by 'repo publish')")
    r.add_argument("dir")
    r.add_argument("package", nargs="+")
    r.add_argument("--key", action="append", required=True,
                   help="developer private key(s) that sign the delegated role's metadata")
    r.set_defaults(func=cmd_repo_add)
    r = repo.add_parser("publish", help="write indexes, targets, snapshot and timestamp")
    r.add_argument("dir")
    r.set_defaults(func=cmd_repo_publish)
    r = repo.add_parser("refresh", help="re-sign the timestamp with a new expiry (for a timer)")
    r.add_argument("dir")
    r.set_defaults(func=cmd_repo_refresh)
    r = repo.add_parser("rotate", help="change a role's keys (root: signed by the old and the new threshold)")
    r.add_argument("dir")
    r.add_argument("--role", required=True,
                   help="root, targets, snapshot, timestamp, index or a developer delegation name")
    r.add_argument("--add-key", action="append", default=[],
                   help="key to add (.key for root, targets and the online roles index, snapshot, timestamp)")
    r.add_argument("--remove-key", action="append", default=[], help="public key (.pub) to remove")
    r.add_argument("--root-key", action="append", default=[],
                   help="current root private key(s) (for root, targets, snapshot, timestamp)")
    r.add_argument("--targets-key", action="append", default=[],
                   help="offline targets private key(s) (for index and developer roles; the new ones for targets)")
    r.add_argument("--threshold", type=int)
    r.set_defaults(func=cmd_repo_rotate)
    r = repo.add_parser("mirror", help="verifying, incremental copy of a repository (itself servable)")
    r.add_argument("url")
    r.add_argument("dest")
    r.add_argument("--root", required=True, help="the pinned trust root (root.json)")
    r.add_argument("--arch", action="append")
    r.set_defaults(func=cmd_repo_mirror)
    r = repo.add_parser("serve", help="static HTTP for a repository (127.0.0.1 by default)")
    r.add_argument("dir")
    r.add_argument("--port", type=int, default=8420)
    r.add_argument("--host", default="127.0.0.1")
    r.set_defaults(func=cmd_repo_serve)

    v = sub.add_parser("validate", help="check profiles: schema and meaning, every error with file:line:column")
    v.add_argument("profile", nargs="+")
    v.set_defaults(func=cmd_validate)

    lk = sub.add_parser("lock", help="resolve profiles into PROFILE.lock (per architecture, exact)")
    lk.add_argument("profile", nargs="+")
    lk.add_argument("--check", action="store_true", help="exit 1 when the lock no longer matches the profile")
    lk.add_argument("--offline", action="store_true", default=argparse.SUPPRESS, help=OFFLINE_HELP)
    lk.add_argument("--update", nargs="+", metavar="PKG", help="move only these packages")
    lk.add_argument("--upgrade", action="store_true", help="re-resolve everything to the newest versions")
    lk.set_defaults(func=cmd_lock)
    w = sub.add_parser("why", help="the chain of reasons that pulls a package into a profile")
    w.add_argument("package")
    w.add_argument("--profile", required=True)
    w.add_argument("--arch")
    w.set_defaults(func=cmd_why)

    s = sub.add_parser("search", help="search a repository's verified index")
    s.add_argument("query")
    _repo_args(s)
    s.set_defaults(func=cmd_search)
    s = sub.add_parser("info", help="show a package from a repository's verified index")
    s.add_argument("name")
    s.add_argument("--version")
    s.add_argument("--json", action="store_true")
    _repo_args(s)
    s.set_defaults(func=cmd_info)
    s = sub.add_parser("fetch", help="download and verify a package")
    s.add_argument("spec", metavar="NAME[=VERSION]")
    s.add_argument("--out", required=True)
    _repo_args(s)
    s.set_defaults(func=cmd_fetch)
    from composer.cli import gitops, image
    image.register(sub)
    gitops.register(sub)
    from composer.cli import cache
    cache.register(sub)
    return p


def _err(exc: ComposerError, prefix: str = "error: ") -> None:
    sys.stderr.write(f"{prefix}{_safe(exc.message)}\n")
    if exc.hint:
        sys.stderr.write(f"  hint: {_safe(exc.hint)}\n")


def _safe(text: str) -> str:
    """Control characters escaped (a hostile name must not drive the terminal nor forge an ``error:`` line);
    the indented lines of an error that lists several problems are kept."""
    if text.isprintable():
        return text
    lines: list[str] = []
    for part in text.split("\n"):
        if lines and not part.startswith((" ", "\t")):
            lines[-1] += "\\n" + oserrors.printable(part)
        else:
            lines.append(oserrors.printable(part))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(name)s: %(message)s")
    lockfile.configure(wait=not getattr(args, "no_wait", False))
    offline = bool(getattr(args, "offline", False))
    if offline or "composer.repo.client" in sys.modules:
        from composer.repo import client as repo_client
        repo_client.configure(offline=offline)
    try:
        code: int = args.func(args)
        return code
    except ComposerError as exc:
        if args.debug:
            raise
        _err(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:  # `vcomp info x | head`: the reader left; stop quietly like git does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:  # the machine refused: disk full, read-only, permissions; one line, not a bug
        if args.debug:
            raise
        _err(oserrors.describe(exc))
        return EXIT_ERROR
    except MemoryError:
        if args.debug:
            raise
        _err(oserrors.describe(OSError(errno.ENOMEM, "out of memory")))
        return EXIT_ERROR
    except Exception as exc:  # a bug: say so in one line, the traceback only with --debug
        if args.debug:
            raise
        sys.stderr.write(f"internal error: {type(exc).__name__}: {exc}\n  hint: rerun with --debug and report it\n")
        return EXIT_ERROR
