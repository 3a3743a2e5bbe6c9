"""`vcomp sdk build|shell`: a relocatable SDK per profile and architecture (composer.sdk, docs/sdk.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from composer.cli import jsonout
from composer.cli.common import EXIT_OK, Subparsers, current
from composer.cli.common import out as _out


def _note(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def default_out(profile: str, arch: str) -> Path:
    return Path(f"sdk-{Path(profile).stem}-{arch}")


def _build(args: argparse.Namespace) -> tuple[Path, dict[str, object]]:
    from composer import settings
    from composer.sdk.assemble import build_sdk
    out = Path(args.out) if args.out else default_out(args.profile, args.arch)
    quiet = getattr(args, "json", False) or current().verbosity < 0
    say = (lambda what: None) if quiet else (lambda what: _note(f"  {what}"))
    sdk = build_sdk(Path(args.profile), args.arch, out.resolve(), cache=settings.cache_dir(), progress=say)
    return sdk.path, sdk.manifest.to_dict()


def cmd_sdk_build(args: argparse.Namespace) -> int:
    path, manifest = _build(args)
    if args.json:
        jsonout.emit({"path": str(path), "manifest": manifest})
    else:
        _out(str(path))
    return EXIT_OK


def cmd_sdk_shell(args: argparse.Namespace) -> int:
    from composer.run import run_attached
    from composer.sdk.assemble import MANIFEST
    out = Path(args.out) if args.out else default_out(args.profile, args.arch)
    path = out.resolve() if (out / MANIFEST).is_file() else _build(args)[0]
    script = path / f"environment-setup-{args.arch}"
    from composer import settings
    shell = settings.SHELL.get() or "/bin/sh"
    _note(f"SDK {path} ({args.arch}); leave with exit")
    return run_attached([shell, "-c", f'. "{script}" && exec "$0" -i', shell], env={"VCOMP_SDK": str(path)})


def register(sub: Subparsers) -> None:
    from composer.arch import ARCHES
    sdk = sub.add_parser("sdk", help="SDKs: sysroot, cross toolchain and build-system files for a profile")
    verbs = sdk.add_subparsers(dest="verb", required=True)
    for name, func, text in (
            ("build", cmd_sdk_build, "build a relocatable SDK for PROFILE's locked libraries and one architecture"),
            ("shell", cmd_sdk_shell, "open $SHELL with the SDK's environment (building the SDK when missing)")):
        p = verbs.add_parser(name, help=text)
        p.add_argument("profile", help="the profile (its lock, PROFILE.lock, says the libraries and versions)")
        p.add_argument("--arch", default="x86_64", choices=sorted(ARCHES), help="target architecture")
        p.add_argument("--out", metavar="DIR", help="the SDK directory (default: sdk-PROFILE-ARCH)")
        if name == "build":
            jsonout.add_json(p, "sdk build")
        p.set_defaults(func=func)
