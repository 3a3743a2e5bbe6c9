"""The image verbs of the CLI: build, boot, test (registered by composer.cli.main)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.cli import jsonout
from composer.cli.common import EXIT_ERROR, EXIT_OK, Subparsers, current, epoch, image_cache, table, warn
from composer.cli.common import out as _out
from composer.errors import UserError

if TYPE_CHECKING:
    from composer.boot.verdict import Seen
    from composer.profile.model import Profile
    from composer.solve.lock import RepositorySources
    from composer.solve.lockmodel import Lock


def images_dir(args: argparse.Namespace, profile: Path) -> Path:
    return Path(args.images) if args.images else Path("images")


def build(args: argparse.Namespace, top: Path, profile: Profile, lock: Lock, lock_digest: str,
          sources: RepositorySources) -> list[Any]:
    """Build the asked architectures and outputs into ``top`` (images/NAME, its lock held by the caller); with
    ``--workers``/``--scheduler`` the outputs are built on the farm first and taken from the shared cache."""
    from composer.compose.build import build_profile, targets_for
    jobs = {a: tuple(args.output or ()) for a in asked_arches(args, profile)}
    if getattr(args, "workers", None) is not None or getattr(args, "scheduler", None):
        from composer.farm.images import ImageJob
        from composer.image.outputs import OUTPUT_TYPES
        # (an output the cache cannot hold, an A/B disk with its update bundle, is built here)
        farm_jobs = [ImageJob(profile=str(profile.path.resolve()), arch=a, output=t.name)
                     for a, only in jobs.items() for t in targets_for(profile, a, only)
                     if OUTPUT_TYPES[t.type].cacheable(t.options)]
        run_on_farm(args, farm_jobs)
    key = getattr(args, "sign_key", None)
    say = jsonout.say(args)
    results = build_profile(top, profile, lock, lock_digest, sources, jobs, image_cache(), epoch=epoch(), say=say,
                            warn=warn, sign_key=_signing_key(key) if key else None)
    for r in results:
        for line in table([(f"  {f}", f"{f.stat().st_size / 2**20:.1f} MiB") for p in r.products for f in p.files],
                          right={1}):
            say(line)
        for name in r.stale:
            say(f"  {name}: stale (built from other inputs; kept, not rebuilt: vcomp build {args.profile} "
                f"--output {name})")
        reused = f" ({len(r.cached)} of {len(r.products)} from the cache)" if r.cached else ""
        say(f"{r.arch}: {len(r.products)} outputs in {r.directory}{reused}")
    return results


def run_on_farm(args: argparse.Namespace, jobs: Sequence[Any]) -> list[Any]:
    """Run image jobs on a LocalCluster of ``--workers`` or on ``--scheduler``'s workers (docs/farm.md)."""
    import os

    from composer.farm import engine, images
    images.shared_env()   # refused before a cluster starts when there is no writable shared cache
    workers = 1 if args.workers is None else args.workers
    if workers < 1 or workers > 256:
        raise UserError(f"--workers {workers}: out of range", hint="give 1 to 256 local workers")
    say = jsonout.say(args)
    with engine.connect(args.scheduler, workers, os.uname().machine) as client:
        results = images.farm_images(client, jobs, progress=lambda line: say(f"farm: {line}"))
    built = sum(not r.cached for r in results)
    say(f"farm: {len(results)} image jobs, {built} built, {len(results) - built} already built (cached)")
    return list(results)


def cmd_build_matrix(args: argparse.Namespace) -> int:
    """Build the (profile, arch, output) jobs of `vcomp plan --matrix` on the farm, into the shared cache."""
    import sys
    from dataclasses import replace

    from composer.farm.images import parse_matrix
    data = sys.stdin.buffer.read(1 << 24) if args.matrix == "-" else _read_matrix(Path(args.matrix))
    jobs = [replace(j, profile=str(Path(j.profile).resolve()))   # the workers' paths: absolute
            for j in parse_matrix(data, "standard input" if args.matrix == "-" else args.matrix)]
    results = run_on_farm(args, jobs)
    if jsonout.wanted(args):
        jsonout.emit({"jobs": [{"profile": r.job.profile, "arch": r.job.arch, "output": r.job.output,
                                "worker": r.worker, "seconds": round(r.seconds, 1), "cached": r.cached}
                               for r in results]})
    return EXIT_OK


def _read_matrix(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(1 << 24)
    except OSError as exc:
        raise UserError(f"{path}: cannot read the build matrix ({exc.strerror or exc})",
                        hint="write one with: vcomp plan --matrix > matrix.json") from None


def add_farm_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, metavar="N",
                        help="build the outputs on an in-process Dask LocalCluster of N workers first, through the "
                             "shared cache (VCOMP_SHARED_CACHE; docs/farm.md)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:8786",
                        help="build the outputs on this Dask scheduler's workers first, through the shared cache")


def _signing_key(path: str) -> Any:
    from composer.trust.keys import load_signing_key
    return load_signing_key(Path(path))


def cmd_verify_attestation(args: argparse.Namespace) -> int:
    """Verify a DSSE-signed provenance with a public key; print what it attests."""
    import json

    from composer.report.dsse import verify
    from composer.trust.keys import load_public_key
    path = Path(args.file)
    try:
        envelope = json.loads(path.read_bytes())
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}",
                        hint="pass images/NAME/ARCH/provenance.intoto.dsse.json (vcomp build --sign-key)") from None
    except ValueError:
        raise UserError(f"{path}: not JSON", hint="pass the DSSE envelope written by vcomp build --sign-key") from None
    if not isinstance(envelope, dict):
        raise UserError(f"{path}: not a DSSE envelope", hint="pass the file written by vcomp build --sign-key")
    key = load_public_key(Path(args.key))
    statement = verify(envelope, key, where=str(path))
    _out(f"{path}: signature by {key.keyid[:16]} verifies ({statement.get('predicateType', '?')})")
    for s in statement.get("subject", []):
        _out(f"  {s.get('name')}  sha256:{s.get('digest', {}).get('sha256', '?')}")
    return EXIT_OK


def _check_tools_first(args: argparse.Namespace, profile: Any) -> None:
    """A missing host tool is said before anything is created (not even the images directory)."""
    from composer.compose.build import check_tools, targets_for
    check_tools([t for a in asked_arches(args, profile) for t in targets_for(profile, a, tuple(args.output or ()))])


def asked_arches(args: argparse.Namespace, profile: Any) -> list[str]:
    """The architectures ``--arch`` asks for (default: the profile's), each once; one outside the profile is
    an error."""
    arches = list(dict.fromkeys(args.arch or profile.architectures))
    for a in arches:
        if a not in profile.architectures:
            raise UserError(f"{a} is not an architecture of {args.profile}",
                            hint=f"architectures: {', '.join(profile.architectures)}")
    return arches


@contextlib.contextmanager
def locked_build(args: argparse.Namespace) -> Iterator[tuple[Path, list[Any]]]:
    """Load the profile, take the lock of its images directory and build; the lock is held until the end
    of the ``with`` block (``vcomp test`` boots under it)."""
    from composer.compose.layout import locked
    profile_path = Path(args.profile)
    from composer.solve.relock import load_locked
    loaded = load_locked(profile_path)
    _check_tools_first(args, loaded[0])
    with locked(images_dir(args, profile_path), loaded[0].name) as top:
        yield top, build(args, top, *loaded)


def cmd_build(args: argparse.Namespace) -> int:
    with locked_build(args) as (_top, results):
        if jsonout.wanted(args):
            jsonout.emit({"profile": args.profile, "architectures": [r.to_dict() for r in results]})
        return EXIT_OK


def _report(args: argparse.Namespace, cases: list[Any], **doc: object) -> int:
    """Each boot test's verdict (the tail of a failed boot's console), or with ``--json`` the document of
    ``boot`` and ``test`` (``doc`` and the cases); 0 when every test passed, else 1."""
    code = EXIT_OK if all(c.passed for c in cases) else EXIT_ERROR
    if jsonout.wanted(args):
        jsonout.emit({**doc, "cases": [c.to_dict() for c in cases], "passed": sum(c.passed for c in cases),
                      "total": len(cases)})
        return code
    for c in cases:
        status = "PASS" if c.passed else "FAIL"
        why = "host checks failed (below)" if c.checks_failed_only else c.reason()
        _out(f"{c.id}: {status} in {c.watch.seconds:.1f} s" + ("" if c.passed else f": {why}"))
        for o in c.checks:
            _out(f"    host check {o.check}: " + (f"PASS in {o.seconds:.1f} s" if o.passed else f"FAIL: {o.reason}"))
        if not c.passed:
            _out("    " + c.watch.tail(15).replace("\n", "\n    "))
    return code


def _echo(args: argparse.Namespace) -> Any:
    """Progress while booting: the test's expected lines as they appear (``[n/total]``), failures (``!``)
    and init's other markers; the full console is in the log."""
    from composer.boot.session import plain_text

    say = jsonout.say(args)

    def show(seen: Seen) -> None:
        if not seen.notable:
            return
        mark = f"[{seen.index}/{seen.total}]" if seen.expected else "!" if seen.failure else ""
        say(f"   {mark:<{len(str(seen.total)) * 2 + 3}} {plain_text(seen.line)}")
    return show if getattr(args, "show", True) else None


def cmd_boot(args: argparse.Namespace) -> int:
    from composer.boot.forward import allocate, parse_forwards
    from composer.boot.session import Reach, boot_spec, junit, run_boot, secure_boot_certificate
    forwards = allocate(parse_forwards(args.forward or ()))
    from composer.compose.build import read_manifest
    image = Path(args.image)
    directory, output = (image, args.output) if image.is_dir() else (image.parent, None)
    manifest = read_manifest(directory)
    if args.arch and args.arch != manifest["arch"]:
        raise UserError(f"{image} was built for {manifest['arch']}, not {args.arch}", hint="drop --arch")
    if output is None:
        output = next((o["name"] for o in manifest["outputs"] if any(directory / f["path"] == image
                                                                      for f in o["files"])), None)
    if output is None:
        raise UserError(f"{image}: name an output with --output (or give the output file)",
                        hint=f"outputs: {', '.join(o['name'] for o in manifest['outputs'])}")
    logs = directory / "boot"
    given = Path(args.secure_boot_cert) if args.secure_boot_cert else None
    secure = secure_boot_certificate(manifest, directory, given) if args.secure_boot or given else None
    def make_spec() -> Any:
        return boot_spec(manifest, directory, output, args.firmware or "", logs, args.medium or "", secure)
    if args.interactive or args.gdb is not None:
        return _boot_attached(args, make_spec, forwards)
    _say_forwards(args, forwards)
    reach = Reach(forwards=forwards, keys=Path.cwd(), ssh_key=Path(args.ssh_key) if args.ssh_key else None)
    cases = run_boot(manifest, directory, output, args.firmware or "", logs=logs, expect=args.expect or (),
                     timeout=args.timeout, echo=_echo(args), reach=reach, medium=args.medium or "",
                     secure_boot=secure, cmdline=trace_args(args, make_spec))
    after_boot(args, manifest, logs, cases)
    if args.junit:
        Path(args.junit).write_bytes(junit(cases, f"vcomp.boot.{manifest['profile']}"))
    jsonout.say(args)(f"console log: {logs}")
    return _report(args, cases, image=args.image, log=str(logs),
                   forwards=[{"host": f.host, "guest": f.guest} for f in forwards])


def _boot_attached(args: argparse.Namespace, make_spec: Callable[[], Any], forwards: Sequence[Any]) -> int:
    """``--interactive`` / ``--gdb [PORT]``: the console on this terminal (QEMU's gdb stub on 127.0.0.1:PORT,
    the CPU waiting for gdb)."""
    from composer.boot.machine import GdbStub, command, interactive
    from composer.boot.session import with_cmdline
    if jsonout.wanted(args):
        raise UserError("vcomp boot: --json cannot be combined with --interactive or --gdb",
                        hint="an attached console prints no document; drop --json")
    spec = make_spec()
    stub = GdbStub(port=args.gdb) if args.gdb is not None else None
    from composer.debug.gdbcmd import GDB_KERNEL_ARGS
    extra = " ".join(a for a in (trace_args(args, lambda: spec), GDB_KERNEL_ARGS if stub is not None else "") if a)
    cmd = command(with_cmdline(spec, extra), gdb=stub, forwards=forwards)
    _say_forwards(args, forwards)
    if stub is not None:
        _out(f"QEMU waits for gdb on 127.0.0.1:{stub.port}: vcomp debug kernel 127.0.0.1:{stub.port} --profile "
             f"PROFILE, or gdb-multiarch -ex 'target remote 127.0.0.1:{stub.port}' (docs/debugging.md)")
    _out("console attached; quit QEMU with Ctrl-A X")
    return interactive(cmd)


def trace_args(args: argparse.Namespace, make_spec: Callable[[], Any]) -> str:
    """The kernel arguments of ``--trace`` and ``--cores`` (none without them); a boot whose command line is
    built in is told where to put them."""
    from composer.boot.session import cmdline_settable
    from composer.debug.timeline import KERNEL_ARGS
    extra = " ".join(a for flag, a in (("trace", KERNEL_ARGS), ("cores", "vcomp.cores=1"))
                     if getattr(args, flag, False))
    if not extra:
        return ""
    spec = make_spec()
    if not cmdline_settable(spec):
        warn(f"--trace/--cores: a {spec.media} boot's kernel command line is built into the image; add '{extra}' "
             "to the profile's kernel.cmdline (or boot the initramfs output, --medium kernel)")
    return extra


def after_boot(args: argparse.Namespace, manifest: Any, logs: Path, cases: Sequence[Any]) -> None:
    """Each booted log's core dumps into ``logs/cores/`` (init's vcomp.cores=1) and, with ``--trace``, its
    timeline beside it (``NAME.timeline.txt``, ``.json``, ``.svg``), the text shown."""
    from composer.boot.session import log_name, product
    from composer.cli.debug import collect_cores, write_timeline
    if cases:   # one boot: its tests share the log
        c = cases[0]
        collect_cores(args, c.watch.log, logs / "cores")
        if getattr(args, "trace", False):
            primary = product(manifest, c.output)["boot"].get("media", "")
            log = logs / log_name(c.arch, c.output, c.medium, c.firmware, primary)
            jsonout.say(args)(f"timeline of {log}:\n{write_timeline(log).rstrip()}")


def _say_forwards(args: argparse.Namespace, forwards: Sequence[Any]) -> None:
    for f in forwards:
        jsonout.say(args)(f"forwarding {f}" + (f" (ssh -p {f.host} USER@127.0.0.1)" if f.guest == 22 else ""))


def cmd_test(args: argparse.Namespace) -> int:
    """Build, then boot every cell of the matrix the outputs support (or the ``--cell`` globs pick)."""
    from composer.boot.matrix import cells_of, precheck, select
    from composer.boot.session import Reach, enforced_certificate, junit, run_boot
    if args.cell:
        from composer.profile.load import load_profile
        planned = load_profile(Path(args.profile))
        from composer.arch import ARCHES
        arches = asked_arches(args, planned)
        precheck([(a, o.name) for a in arches for o in planned.outputs
                  if (not o.architectures or a in o.architectures) and (not args.output or o.name in args.output)],
                 sorted({fw for a in arches for fw in ARCHES[a].firmware}), args.cell)
    with locked_build(args) as (top, results):
        cells = select([c for r in results for c in cells_of(r.manifest)], args.cell or ())
        where = {r.arch: r for r in results}
        cases = []
        for cell in cells:
            r = where[cell.arch]
            jsonout.say(args)(f"{cell.id}: booting {cell.output} ({cell.medium}, {cell.firmware} firmware)")
            cases += run_boot(r.manifest, r.directory, cell.output, cell.firmware, logs=r.directory / "boot",
                              echo=_echo(args) if current().verbosity >= 1 else None, medium=cell.medium,
                              reach=Reach(keys=Path(args.profile).parent),
                              secure_boot=enforced_certificate(r.manifest, r.directory, cell.firmware))
        profile = results[0].manifest["profile"] if results else "profile"
        target = Path(args.junit) if args.junit else top / "junit.xml"
        target.write_bytes(junit(cases, f"vcomp.test.{profile}"))
    code = _report(args, cases, profile=args.profile, junit=str(target),
                   architectures=[r.to_dict() for r in results])
    jsonout.say(args)(f"{sum(c.passed for c in cases)} of {len(cases)} boot tests passed; JUnit: {target}")
    return code


def register(sub: Subparsers) -> None:
    b = sub.add_parser("build", help="build a locked profile's outputs into images/NAME/ARCH/")
    b.add_argument("profile", nargs="?", help="the profile (default: [project] profile of vcomp.toml)")
    b.add_argument("--arch", action="append", help="only this architecture (repeatable)")
    b.add_argument("--output", action="append", help="only this output (repeatable)")
    b.add_argument("--images", help="output root (default: ./images)")
    b.add_argument("--offline", action="store_true", default=argparse.SUPPRESS,
                   help="never use the network: the locked packages must all be in the package cache")
    b.add_argument("--sign-key", metavar="KEY",
                   help="sign the provenance with this ed25519 key (vcomp key generate): provenance.intoto.dsse.json")
    add_farm_options(b)
    jsonout.add_json(b, "build")
    b.set_defaults(func=cmd_build)
    v = sub.add_parser("verify-attestation", help="verify a signed provenance (DSSE envelope) with a public key")
    v.add_argument("file", help="images/NAME/ARCH/provenance.intoto.dsse.json")
    v.add_argument("--key", required=True, help="the public key (.pub) of the build key")
    v.set_defaults(func=cmd_verify_attestation)
    t = sub.add_parser("boot", help="boot a built output in QEMU and check the console")
    t.add_argument("image", help="an output file, or an images/NAME/ARCH directory with --output")
    t.add_argument("--output")
    t.add_argument("--arch")
    t.add_argument("--firmware", choices=("bios", "uefi"))
    t.add_argument("--medium", choices=("cdrom", "disk", "kernel"),
                   help="attach the output as this medium (default: its own; a hybrid ISO also boots as a disk)")
    t.add_argument("--expect", action="append", help="a console line to wait for, in order (repeatable)")
    t.add_argument("--timeout", type=float)
    t.add_argument("--junit", help="write a JUnit XML report here")
    t.add_argument("--interactive", action="store_true", help="attach the console to this terminal")
    t.add_argument("--forward", action="append", metavar="HOST:GUEST",
                   help="forward tcp port HOST of 127.0.0.1 (0: a free one, printed) to the guest's port GUEST "
                        "(repeatable; only 127.0.0.1 is ever bound)")
    t.add_argument("--ssh-key", metavar="KEY",
                   help="the private key of the boot tests' ssh checks (default: their key:, relative to the "
                        "current directory, or the INSECURE sample key)")
    t.add_argument("--gdb", nargs="?", type=int, const=1234, metavar="PORT",
                   help="open QEMU's gdb stub on 127.0.0.1:PORT (default 1234) and wait for gdb (docs/debugging.md)")
    t.add_argument("--cores", action="store_true",
                   help="boot with vcomp.cores=1: the guest's core dumps come over the console into "
                        "boot/cores/ (a direct kernel boot; a disk's command line is the profile's kernel.cmdline)")
    t.add_argument("--trace", action="store_true",
                   help="boot with initcall_debug loglevel=8 printk.time=1 vcomp.trace=1 (a direct kernel boot; a "
                        "disk's command line is the profile's kernel.cmdline) and write the boot's timeline beside its "
                        "console log (NAME.timeline.txt/.json/.svg; docs/debugging.md)")
    t.add_argument("--secure-boot", action="store_true",
                   help="UEFI with Secure Boot enforced: the build's certificate (the profile's secure-boot key) "
                        "enrolled as PK, KEK and db into a copy of the firmware variables")
    t.add_argument("--secure-boot-cert", metavar="CERT",
                   help="enroll this certificate instead (implies --secure-boot; a UKI signed by another key "
                        "is then refused)")
    jsonout.add_json(t, "boot")
    t.set_defaults(func=cmd_boot)
    s = sub.add_parser("test", help="build a profile and boot every cell of its boot matrix: output x medium x "
                                    "firmware (JUnit)")
    s.add_argument("profile", nargs="?", help="the profile (default: [project] profile of vcomp.toml)")
    s.add_argument("--arch", action="append")
    s.add_argument("--output", action="append")
    s.add_argument("--images")
    s.add_argument("--junit", help="JUnit XML path (default: images/NAME/junit.xml)")
    s.add_argument("--cell", action="append", metavar="GLOB",
                   help="only the boot cells ARCH/OUTPUT/MEDIUM/FIRMWARE matching this glob, e.g. 'x86_64/*/disk/*' "
                        "(repeatable; default: every cell)")
    add_farm_options(s)
    jsonout.add_json(s, "test")
    s.set_defaults(func=cmd_test)
    m = sub.add_parser("build-matrix", help="build the (profile, arch, output) jobs of `vcomp plan --matrix` on the "
                                            "farm, into the shared cache (docs/farm.md)")
    m.add_argument("matrix", help="the matrix document (vcomp plan --matrix > matrix.json), or - for standard input")
    add_farm_options(m)
    jsonout.add_json(m, "build-matrix")
    m.set_defaults(func=cmd_build_matrix)
