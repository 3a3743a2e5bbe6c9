"""gdb-multiarch command lines, pure: a core file (``vcomp debug core``), a program under gdbserver in a booted
guest (``vcomp debug remote``) or the guest kernel through QEMU's gdb stub (``vcomp debug kernel``).

A :class:`Session` says what gdb opens and where its symbols come from (a sysroot, the files of the remote
target through gdbserver, debuginfod, a symbol file); :func:`command` turns it into argv. No I/O: the CLI
checks the files and runs gdb through :mod:`composer.run`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from composer.errors import UserError

GDB_ARCH = {"x86_64": "i386:x86-64", "aarch64": "aarch64", "riscv64": "riscv:rv64"}
TARGET_SYSROOT = "target:"     # gdb reads the program and its libraries from gdbserver
# What `vcomp boot --gdb` adds where it gives the kernel command line: the kernel where the vmlinux says
# (KASLR would move it by a random offset the symbols do not know).
GDB_KERNEL_ARGS = "nokaslr"
MAX_BREAKS = 16
_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_:.]{0,255}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """One gdb session; ``remote`` (HOST:PORT of gdbserver or of QEMU's stub) or ``core`` (a core file)."""

    arch: str = ""                   # a composer architecture name ("" : gdb's default)
    sysroot: str = ""                # a directory, TARGET_SYSROOT, or "" (gdb's default)
    debug_dir: str = ""              # set debug-file-directory
    debuginfod: bool = False
    exe: str = ""                    # the program (host path) when gdb should not fetch it itself
    symbols: tuple[tuple[str, str], ...] = ()   # (file, address or ""): add-symbol-file at that address
    remote: str = ""
    core: str = ""
    batch: tuple[str, ...] = ()      # commands of a batch run (empty: interactive)


def command(s: Session) -> list[str]:
    """The argv of gdb-multiarch for ``s``."""
    gdb = ["gdb-multiarch", "-nx", "-q"]
    if s.batch:
        gdb += ["-batch"]
    if s.debuginfod:
        gdb += ["-iex", "set debuginfod enabled on"]
    if s.arch:
        gdb += ["-iex", f"set architecture {GDB_ARCH.get(s.arch, 'auto')}"]
    if s.sysroot:
        gdb += ["-iex", f"set sysroot {s.sysroot}"]
    if s.debug_dir:
        gdb += ["-iex", f"set debug-file-directory {s.debug_dir}"]
    for path, address in s.symbols:
        gdb += ["-iex", f"add-symbol-file {path}" + (f" -o {address}" if address else "")]
    if s.remote:
        gdb += ["-ex", f"target remote {s.remote}"]
    for line in s.batch:
        gdb += ["-ex", line]
    return [*gdb, *([s.exe] if s.exe else []), *([s.core] if s.core else [])]


def backtrace_at(breaks: tuple[str, ...]) -> tuple[str, ...]:
    """Batch commands: stop at the first of ``breaks`` that is hit (none: where the program is), then the
    backtrace; gdb kills the program when the batch ends (gdbserver starts it again if its service restarts)."""
    if len(breaks) > MAX_BREAKS:
        raise UserError(f"{len(breaks)} --break options: at most {MAX_BREAKS}", hint="give fewer functions")
    for b in breaks:
        if not _SYMBOL.fullmatch(b):
            raise UserError(f"--break {b!r}: not a function name", hint="give a C or C++ function name, e.g. "
                                                                       "--break main")
    if not breaks:
        return ("bt",)
    return (*(f"break {b}" for b in breaks), "continue", "bt")


def parse_remote(text: str) -> str:
    """``HOST:PORT`` of a gdbserver or gdb stub (an IP address, or ``localhost``; a port 1-65535), normalised."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        if host != "localhost":
            ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        number = 0
    if not sep or not 1 <= number <= 65535:
        raise UserError(f"{text!r}: not HOST:PORT", hint="give the forwarded port, e.g. 127.0.0.1:2345 (vcomp boot "
                                                         "--forward 2345:2345)")
    return f"[{host}]:{number}" if ":" in host else f"{host}:{number}"
