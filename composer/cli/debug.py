"""`vcomp debuginfod` and `vcomp debug core|timeline`: debugging what the composer built (docs/debugging.md)."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from composer.cli import jsonout
from composer.cli.common import EXIT_OK, Subparsers
from composer.cli.common import out as _out
from composer.errors import UserError

if TYPE_CHECKING:
    from composer.debug.timeline import Timeline

DEFAULT_LISTEN = "127.0.0.1:8002"   # elfutils' debuginfod listens on 8002
MAX_LOG_LINES = 2_000_000            # a console log longer than this is read up to here


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IP address; port 0: a free one) of ``--listen``."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        number = -1
    if not sep or not 0 <= number <= 65535:
        raise UserError(f"--listen {text}: not an address and port", hint="give e.g. --listen 127.0.0.1:8002")
    return host, number


def cmd_debuginfod(args: argparse.Namespace) -> int:
    from composer.debug.index import Store, architectures, build_index
    from composer.debug.server import DebuginfodServer
    from composer.package.build import default_cache
    from composer.repo.client import RepositoryClient, load_trusted_root
    host, port = parse_listen(args.listen)
    cache = default_cache()
    client = RepositoryClient(args.repo, load_trusted_root(Path(args.root)), cache / "repos",
                              mirrors=args.mirror or ())
    store = Store(dir=cache / "debuginfod")
    say = jsonout.say(args)
    index = build_index(client, store, architectures(client, args.arch or ()), say)
    server = DebuginfodServer((host, port), index, store, log=sys.stderr if args.verbose > 0 else None)
    say(f"{len(index.debuginfo)} debug files, {len(index.executable)} executables from {args.repo}")
    _out(f"serving debuginfod at {server.url} (DEBUGINFOD_URLS={server.url}; Ctrl-C to stop)")
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()
    return EXIT_OK


def collect_cores(args: argparse.Namespace, log_text: str, directory: Path) -> list[Path]:
    """The core dumps a boot's console carried, written into ``directory`` (problems said as warnings)."""
    if "VCOMP-CORE: begin" not in log_text:
        return []
    from composer.cli.common import warn
    from composer.debug.cores import extract, write_cores
    written, problems = write_cores(extract(log_text.splitlines()), directory)
    for p in problems:
        warn(f"{directory}: {p}")
    for path in written:
        jsonout.say(args)(f"core dump: {path} (open it: vcomp debug core {path} --profile PROFILE)")
    return written


def write_timeline(log: Path) -> str:
    """Parse a console log; write NAME.timeline.txt, .json and .svg beside it; return the text."""
    from composer.debug.timeline import parse, render_svg, render_text
    from composer.fsutil import atomic_write
    t = _timeline_of(log, parse)
    text = render_text(t)
    base = log.with_suffix("")
    atomic_write(base.with_name(base.name + ".timeline.txt"), text.encode(), durable=False)
    atomic_write(base.with_name(base.name + ".timeline.json"),
                 (jsonout.dumps(jsonout.document({"log": str(log), **t.to_dict()})) + "\n").encode(), durable=False)
    atomic_write(base.with_name(base.name + ".timeline.svg"), render_svg(t).encode(), durable=False)
    return text


def _timeline_of(log: Path, parse: Callable[[Iterable[str]], Timeline]) -> Timeline:
    try:
        with log.open(encoding="utf-8", errors="replace") as f:
            return parse(line for line, _ in zip(f, range(MAX_LOG_LINES), strict=False))
    except OSError as exc:
        raise UserError(f"cannot read console log {log}: {exc.strerror}",
                        hint="give a console log of vcomp boot (images/NAME/ARCH/boot/*.log)") from None


def cmd_timeline(args: argparse.Namespace) -> int:
    from composer.debug.timeline import parse, render_svg, render_text
    log = Path(args.log)
    t = _timeline_of(log, parse)
    if args.svg:
        from composer.fsutil import atomic_write
        atomic_write(Path(args.svg), render_svg(t).encode(), durable=False)
    if jsonout.wanted(args):
        jsonout.emit({"log": str(log), **t.to_dict()})
        return EXIT_OK
    _out(render_text(t).rstrip())
    return EXIT_OK


def _sysroot(args: argparse.Namespace) -> Path | None:
    """--sysroot, or the profile's locked packages installed into the cache (--profile), or None."""
    if getattr(args, "profile", None):
        from composer.debug.sysroot import profile_sysroot
        from composer.package.build import default_cache
        return profile_sysroot(Path(args.profile), args.arch or "x86_64", default_cache(), jsonout.say(args))
    return Path(args.sysroot) if getattr(args, "sysroot", None) else None


def _exe(args: argparse.Namespace, sysroot: Path | None) -> str:
    """--exe as a host path: a path in the sysroot when it is one there, else as given."""
    exe = Path(args.exe) if args.exe else None
    if exe is not None and sysroot is not None and not exe.is_file() and (sysroot / str(exe).lstrip("/")).is_file():
        exe = sysroot / str(exe).lstrip("/")
    return str(exe) if exe is not None else ""


def core_command(args: argparse.Namespace, sysroot: Path | None) -> list[str]:
    """gdb-multiarch on a core file: the sysroot (shared libraries), the executable when given, debuginfod."""
    from composer.debug.gdbcmd import Session, command
    return command(Session(arch=args.arch or "", sysroot=str(sysroot or ""),
                           debug_dir=f"{sysroot}/usr/lib/debug" if sysroot is not None else "",
                           debuginfod=bool(args.debuginfod), exe=_exe(args, sysroot), core=str(args.core),
                           batch=("bt",) if args.batch else ()))


GDB_TIMEOUT = 300.0   # seconds for a batch backtrace (debuginfod downloads included)


def _gdb(cmd: list[str], *, batch: bool, debuginfod: str | None) -> int:
    from composer.run import require_tool, run, run_attached
    require_tool("gdb-multiarch")
    env = {"DEBUGINFOD_URLS": debuginfod} if debuginfod else {}
    if batch:
        _out(run(cmd, env=env, timeout=GDB_TIMEOUT).stdout.decode(errors="replace").rstrip())
        return EXIT_OK
    return run_attached(cmd, env=env)


def cmd_core(args: argparse.Namespace) -> int:
    core = Path(args.core)
    if not core.is_file():
        raise UserError(f"no core file {core}", hint="vcomp boot writes the guest's cores to its log directory "
                                                      "(images/NAME/ARCH/boot/cores/)")
    return _gdb(core_command(args, _sysroot(args)), batch=args.batch, debuginfod=args.debuginfod)


def remote_command(args: argparse.Namespace, sysroot: Path | None) -> list[str]:
    """gdb-multiarch on a program under gdbserver: its files from gdbserver (or the sysroot), symbols from
    debuginfod; batch: stop at --break, backtrace."""
    from composer.debug.gdbcmd import TARGET_SYSROOT, Session, backtrace_at, command, parse_remote
    return command(Session(arch=args.arch or "", sysroot=str(sysroot) if sysroot is not None else TARGET_SYSROOT,
                           debug_dir=f"{sysroot}/usr/lib/debug" if sysroot is not None else "",
                           debuginfod=bool(args.debuginfod), exe=_exe(args, sysroot),
                           remote=parse_remote(args.address),
                           batch=backtrace_at(tuple(args.breaks or ())) if args.batch else ()))


def cmd_remote(args: argparse.Namespace) -> int:
    return _gdb(remote_command(args, _sysroot(args)), batch=args.batch, debuginfod=args.debuginfod)


def kernel_command(args: argparse.Namespace, vmlinux: Path | None) -> list[str]:
    """gdb-multiarch on the guest kernel through QEMU's gdb stub, with the vmlinux's symbols when known."""
    from composer.debug.gdbcmd import Session, command, parse_remote
    batch = (("info symbol $pc", "bt 8") if vmlinux is not None else ("info registers pc", "x/i $pc"))
    return command(Session(arch=args.arch or "", exe=str(vmlinux or ""), remote=parse_remote(args.address),
                           batch=(*batch, "detach") if args.batch else ()))


def cmd_kernel(args: argparse.Namespace) -> int:
    vmlinux = Path(args.vmlinux) if args.vmlinux else None
    if vmlinux is not None and not vmlinux.is_file():
        raise UserError(f"no vmlinux {vmlinux}", hint="give the kernel's unstripped vmlinux, or --profile to fetch "
                                                      "Debian's linux-image-RELEASE-dbg")
    if vmlinux is None and args.profile:
        from composer.debug.kernel import kernel_vmlinux
        from composer.package.build import default_cache
        sysroot = _sysroot(args)
        assert sysroot is not None
        vmlinux = kernel_vmlinux(sysroot, args.arch or "x86_64", default_cache(), jsonout.say(args))
    return _gdb(kernel_command(args, vmlinux), batch=args.batch, debuginfod=None)


def register(sub: Subparsers) -> None:
    d = sub.add_parser("debuginfod", help="serve a repository's debug files and executables by build-id "
                                          "(the debuginfod protocol: gdb, debuginfod-find)")
    d.add_argument("repo", nargs="?", help="repository URL or directory, or the name of a repository of "
                                           "vcomp.toml (default: its first repository)")
    d.add_argument("--root", help="the pinned trust root (root.json; default: the vcomp.toml repository's)")
    d.add_argument("--mirror", action="append", help="an untrusted mirror, tried in order on failure")
    d.add_argument("--profile", help="use this profile's repositories when vcomp.toml names none")
    d.add_argument("--arch", action="append", help="index only this architecture (repeatable; default: every "
                                                   "architecture the repository has)")
    d.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"address to listen on (default {DEFAULT_LISTEN}; port 0: a free one, printed)")
    d.set_defaults(func=cmd_debuginfod)
    g = sub.add_parser("debug", help="debug a booted image: a boot's timeline, a core dump (docs/debugging.md)")
    verbs = g.add_subparsers(dest="debug_command", required=True)
    t = verbs.add_parser("timeline", help="the timeline of a boot's console log (vcomp boot --trace): kernel "
                                          "initcalls and init's services")
    t.add_argument("log", help="a console log (images/NAME/ARCH/boot/*.log)")
    t.add_argument("--svg", metavar="FILE", help="also draw it as an SVG picture")
    jsonout.add_json(t, "debug timeline")
    t.set_defaults(func=cmd_timeline)
    c = verbs.add_parser("core", help="open a core dump with gdb-multiarch: the profile's sysroot, the symbols "
                                      "from debuginfod (vcomp debuginfod) or -dbg packages")
    c.add_argument("core", help="a core file (vcomp boot collects the guest's into images/NAME/ARCH/boot/cores/)")
    c.add_argument("--profile", help="use this profile's locked packages as the sysroot (installed once into "
                                     "the cache)")
    c.add_argument("--arch", help="the architecture (default x86_64 with --profile)")
    c.add_argument("--sysroot", metavar="DIR", help="a root to take the shared libraries from instead")
    c.add_argument("--exe", metavar="PATH", help="the crashed program (a path in the sysroot or on the host)")
    c.add_argument("--debuginfod", metavar="URL", help="a debuginfod server (DEBUGINFOD_URLS), e.g. vcomp "
                                                      "debuginfod's")
    c.add_argument("--batch", action="store_true", help="print the backtrace and exit (no interactive gdb)")
    c.set_defaults(func=cmd_core)
    r = verbs.add_parser("remote", help="debug a program running under gdbserver in a booted guest (a forwarded "
                                        "port): gdb-multiarch with its symbols from debuginfod")
    r.add_argument("address", metavar="HOST:PORT", help="the gdbserver's port forwarded to this host (vcomp boot "
                                                        "--forward HOSTPORT:GUESTPORT), e.g. 127.0.0.1:2345")
    r.add_argument("--arch", help="the guest's architecture (default: what gdbserver says)")
    r.add_argument("--profile", help="take the program and its libraries from this profile's locked packages "
                                     "(default: from the guest, through gdbserver)")
    r.add_argument("--sysroot", metavar="DIR", help="a root to take the program and libraries from instead")
    r.add_argument("--exe", metavar="PATH", help="the program (a path in the sysroot or on the host; default: "
                                                 "the one gdbserver runs)")
    r.add_argument("--debuginfod", metavar="URL", help="a debuginfod server (DEBUGINFOD_URLS), e.g. vcomp "
                                                      "debuginfod's")
    r.add_argument("--batch", action="store_true", help="print a backtrace and exit (the program is killed)")
    r.add_argument("--break", dest="breaks", action="append", metavar="FUNCTION",
                   help="with --batch: continue to this function first (repeatable: the first hit)")
    r.set_defaults(func=cmd_remote)
    k = verbs.add_parser("kernel", help="debug the guest kernel through QEMU's gdb stub (vcomp boot --gdb) with "
                                        "its symbols (Debian's linux-image-RELEASE-dbg)")
    k.add_argument("address", metavar="HOST:PORT", help="QEMU's gdb stub (vcomp boot --gdb PORT), e.g. "
                                                        "127.0.0.1:1234")
    k.add_argument("--arch", help="the guest's architecture (default x86_64 with --profile)")
    k.add_argument("--profile", help="fetch the vmlinux with symbols of this profile's locked kernel (Debian's "
                                     "linux-image-RELEASE-dbg, about 1 GB for amd64, once into the cache)")
    k.add_argument("--vmlinux", metavar="FILE", help="the kernel's unstripped vmlinux (instead of --profile)")
    k.add_argument("--batch", action="store_true", help="print where the kernel is (symbol, backtrace) and detach")
    k.set_defaults(func=cmd_kernel)
