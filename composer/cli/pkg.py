"""`vcomp pkg VERB`: build and inspect package files; with ``--root`` the package manager (composer.cli.pkgroot)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from composer.cli import jsonout, pkgquality, pkgroot
from composer.cli.common import EXIT_ERROR, EXIT_OK, Subparsers, current, table
from composer.cli.common import err as _err
from composer.cli.common import out as _out
from composer.errors import ComposerError, UserError

if TYPE_CHECKING:
    from collections.abc import Callable

    from composer.package.build import Built
    from composer.package.sources import SdkProvider, SdkRef
    from composer.trust.keys import SigningKey


def _sdks(cache: Path | None) -> SdkProvider:
    """SDKs for recipes with ``sdk = PROFILE``, made in the cache (docs/sdk.md); composer.sdk is imported only
    when a recipe asks for one."""
    from composer.package.build import default_cache

    def get(profile: Path, arch: str) -> SdkRef:
        from composer.sdk.assemble import provider
        return provider(cache or default_cache())(profile, arch)
    return get


def cmd_pkg_build(args: argparse.Namespace) -> int:
    from composer.package.build import build
    from composer.trust.keys import load_key_spec
    key = load_key_spec(args.key)
    cache = Path(args.cache) if args.cache else None
    result = build(Path(args.recipe), args.arch, key, Path(args.out), cache=cache, sdk_provider=_sdks(cache))
    _out(str(result.path))
    for extra in result.split:
        _out(str(extra.path))
    return EXIT_OK


def cmd_pkg_build_all(args: argparse.Namespace) -> int:
    from rich.console import Console

    from composer.package.build import build_all
    from composer.trust.keys import load_key_spec
    key = load_key_spec(args.key)
    console = Console(stderr=True, highlight=False, quiet=current().verbosity < 0)   # -q: no progress
    status = console.status(f"building {args.recipes} for {args.arch}")
    status.start()

    def progress(name: str, what: str) -> None:
        status.update(f"{name}: {what}")
        if what != "building":
            console.print(f"  {name:<24} {what}")

    farm = args.workers is not None or args.scheduler or args.shared_cache
    try:
        if farm:
            results, summary = _farm(args, key, progress)
        else:
            results = build_all(Path(args.recipes), args.arch, key, Path(args.out),
                                cache=Path(args.cache) if args.cache else None, progress=progress,
                                sdk_provider=_sdks(Path(args.cache) if args.cache else None))
            built = sum(1 for r in results if not r.skipped)
            summary = f"{built} built, {len(results) - built} unchanged"
    finally:
        status.stop()
    console.print(f"{len(results)} packages for {args.arch} in {args.out}: {summary}")
    for r in results:
        _out(str(r.path))
        for extra in r.split:
            _out(str(extra.path))
    return EXIT_OK


def _farm(args: argparse.Namespace, key: SigningKey,
          progress: Callable[[str, str], None]) -> tuple[list[Built], str]:
    """build-all on Dask (docs/farm.md): a LocalCluster of --workers, or the cluster of --scheduler."""
    import os

    from composer.farm import cache, engine
    store = cache.open_store(args.shared_cache, read_only=args.shared_cache_read_only) if args.shared_cache else None
    workers = 1 if args.workers is None else args.workers
    if workers < 1 or workers > 256:
        raise UserError(f"--workers {workers}: out of range", hint="give 1 to 256 local workers")
    with engine.connect(args.scheduler, workers, os.uname().machine) as client:
        outcome = engine.farm_build_all(Path(args.recipes), args.arch, key, Path(args.out), client=client,
                                        cache=Path(args.cache) if args.cache else None, store=store,
                                        progress=progress)
    counts = outcome.counts
    results: list[Built] = outcome.built
    return results, (f"{counts['built']} built, {counts['fetched']} fetched from the shared cache, "
                     f"{counts['unchanged']} unchanged in {outcome.seconds:.1f} s")


def cmd_pkg_info(args: argparse.Namespace) -> int:
    from composer.package.archive import read_header
    header = read_header(Path(args.package))
    meta = header.metadata
    if args.json:
        jsonout.emit({"metadata": meta.to_dict(), "files": len(header.manifest.entries),
                      "installed_size": header.manifest.installed_size,
                      "payload": {"sha256": header.manifest.payload_sha256, "size": header.manifest.payload_size}})
        return EXIT_OK
    rows = [("name", meta.name), ("version", str(meta.full_version)), ("arch", meta.arch), ("type", meta.type),
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
    header = read_header(Path(args.package))
    if jsonout.wanted(args):
        jsonout.emit({"package": args.package, "nva": header.metadata.nva,
                      "entries": [e.to_dict() for e in header.manifest.entries]})
        return EXIT_OK
    rows = [(e.type, f"{e.mode:04o}", str(e.size) if e.type == "file" else "-", e.role if e.type == "file" else "",
             e.path + (f" -> {e.target}" if e.target else "")) for e in header.manifest.entries]
    for line in table(rows, right={2}):
        _out(line)
    return EXIT_OK


def cmd_pkg_verify(args: argparse.Namespace) -> int:
    from composer.package.archive import verify_package
    from composer.trust.keys import load_public_key
    trusted = load_public_key(Path(args.key)) if args.key else None
    found: list[dict[str, object]] = []
    for pkg in args.package:
        try:
            v = verify_package(Path(pkg), trusted)
        except ComposerError as exc:
            _err(exc, prefix="FAIL ")
            found.append({"package": pkg, "verified": False, "error": jsonout.error_dict(exc)})
            continue
        found.append({"package": pkg, "verified": True, "nva": v.header.metadata.nva, "entries": v.files,
                      "bytes": v.bytes, "signer": v.signer.keyid, "key": "given" if trusted else "embedded"})
        who = "the given key" if trusted else "its embedded key (pass --key PUB to check who signed it)"
        if not jsonout.wanted(args):
            _out(f"OK   {pkg}: {v.header.metadata.nva}, {v.files} entries, {v.bytes} bytes; signature by "
                 f"{v.signer.keyid[:16]} verified with {who}")
    if jsonout.wanted(args):
        jsonout.emit({"packages": found})
    return EXIT_ERROR if any(not f["verified"] for f in found) else EXIT_OK


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
    found: list[dict[str, object]] = []
    worst = EXIT_OK
    for pkg in args.package:
        findings = lint_package(Path(pkg))
        found.append({"package": pkg, "findings": [{"level": f.level, "code": f.code, "message": f.message}
                                                   for f in findings]})
        worst = max([worst, *(EXIT_ERROR if f.level == "error" else EXIT_OK for f in findings)])
        if not jsonout.wanted(args):
            for f in findings:
                _out(f"{pkg}: {f.level}: {f.code}: {f.message}")
            if not findings:
                _out(f"{pkg}: clean")
    if jsonout.wanted(args):
        jsonout.emit({"packages": found})
    return worst


def register(sub: Subparsers) -> None:
    pkg_parser = sub.add_parser("pkg", help="build and inspect packages; with --root, manage a root's packages")
    pkg_parser.add_argument("--root", dest="pkg_root", metavar="DIR", help=pkgroot.ROOT_HELP)
    pkg = pkg_parser.add_subparsers(dest="verb", required=True)
    b = pkg.add_parser("build", help="build a package from a recipe directory; prints the .vpk path")
    b.add_argument("recipe")
    b.add_argument("--arch", default="x86_64")
    b.add_argument("--key", required=True, metavar="KEYFILE[:VAR]",
                   help="developer private key (.key; VAR holds its passphrase)")
    b.add_argument("--out", default="out/packages")
    b.add_argument("--cache", help="download cache (default: $VCOMP_CACHE or ~/.cache/vcomp)")
    b.set_defaults(func=cmd_pkg_build)
    b = pkg.add_parser("build-all", help="build every recipe in a folder in [build] requires order, skipping "
                                         "unchanged ones; on a Dask farm with --workers/--scheduler")
    b.add_argument("recipes")
    b.add_argument("--arch", default="x86_64")
    b.add_argument("--key", required=True, metavar="KEYFILE[:VAR]")
    b.add_argument("--out", default="out/packages")
    b.add_argument("--cache")
    b.add_argument("--workers", type=int, metavar="N",
                   help="build on an in-process Dask LocalCluster of N workers (docs/farm.md); without it and "
                        "without --scheduler/--shared-cache, one build at a time in this process")
    b.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="build on the `dask worker`s of this Dask scheduler (workers need the recipes at the same "
                        "path; --resources arch-ARCH=1 marks native builders)")
    b.add_argument("--shared-cache", metavar="DIR|URL",
                   help="a shared build cache keyed by the input digest: a directory (read/write), an http(s) URL "
                        "(GET; PUT to write) or s3://BUCKET/PREFIX (boto3; AWS_* credentials and endpoint); entries "
                        "are signed with --key and verified on read")
    b.add_argument("--shared-cache-read-only", action="store_true",
                   help="only download from the shared cache, never upload (e.g. a static HTTP server)")
    b.set_defaults(func=cmd_pkg_build_all)
    i = pkg.add_parser("info", help="show a package's metadata (with --root: an installed package; with --repo: "
                                    "a stored package and its quality metrics)")
    i.add_argument("package", help="a package file, or a NAME with --root or --repo")
    i.add_argument("--repo", metavar="DIR", help="a repository directory: show NAME's newest package there and its "
                                                 "quality metrics (lint, hardening, reproducibility, size, "
                                                 "dependencies, advisories)")
    i.add_argument("--arch", default="x86_64", help="with --repo: the architecture (default x86_64)")
    jsonout.add_json(i, "pkg info")
    pkgroot.add_root(i)
    i.set_defaults(func=lambda a: pkgroot.dispatch(a, pkgquality.cmd_pkg_info_repo if a.repo else cmd_pkg_info))
    c = pkg.add_parser("contents", help="list a package's files")
    c.add_argument("package")
    jsonout.add_json(c, "pkg contents")
    c.set_defaults(func=cmd_pkg_contents)
    v = pkg.add_parser("verify", help="check signature, manifest and every file's hash (with --root: the "
                       "installed files against the database)")
    v.add_argument("package", nargs="*")
    v.add_argument("--key", help="trusted public key (.pub) the package must be signed with")
    jsonout.add_json(v, "pkg verify")
    pkgroot.add_root(v)
    v.set_defaults(func=lambda a: pkgroot.dispatch(a, cmd_pkg_verify))
    x = pkg.add_parser("extract", help="verify packages and extract them safely into a root directory")
    x.add_argument("package", nargs="+")
    x.add_argument("--root", required=True, help="target root directory (created if missing)")
    x.add_argument("--key", help="trusted public key (.pub) the packages must be signed with")
    x.add_argument("--overwrite", action="store_true", help="replace files that already exist in the root")
    x.set_defaults(func=cmd_pkg_extract)
    lint = pkg.add_parser("lint", help="report packaging mistakes")
    lint.add_argument("package", nargs="+")
    jsonout.add_json(lint, "pkg lint")
    lint.set_defaults(func=cmd_pkg_lint)
    pkgquality.register(pkg)
    pkgroot.register(pkg)
