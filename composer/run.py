"""The one subprocess gateway: logs the command, captures output, raises typed errors."""

from __future__ import annotations

import logging
import os
import select
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from composer import oserrors
from composer.arch import TOOL_PACKAGES as ARCH_TOOL_PACKAGES
from composer.errors import ToolError

log = logging.getLogger("composer.run")

# Which Debian package provides each host tool we call.
TOOL_PACKAGES: Mapping[str, str] = {
    "apt-get": "apt",
    "reboot": "systemd-sysv",        # vpk update --reboot on a device: BusyBox's (asks init to stop services first)
    "sbsign": "sbsigntool",
    "sbverify": "sbsigntool",
    "faketime": "faketime",
    "veritysetup": "cryptsetup-bin",
    "git": "git",
    "apt-cache": "apt",
    "dpkg-deb": "dpkg",
    "mke2fs": "e2fsprogs",
    "debugfs": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "fsck.fat": "dosfstools",
    "mdir": "mtools",
    "mformat": "mtools",
    "sfdisk": "fdisk",
    **{tool: "util-linux" for tool in ("losetup", "partx", "mount", "umount", "fstrim")},  # the dib output
    "mkfs.ext4": "e2fsprogs",
    "dump.erofs": "erofs-utils",
    "fsck.erofs": "erofs-utils",
    "unsquashfs": "squashfs-tools",
    "mkfs.fat": "dosfstools",
    "mcopy": "mtools",
    "mmd": "mtools",
    "syslinux": "syslinux",
    "mkfs.erofs": "erofs-utils",
    "mksquashfs": "squashfs-tools",
    "qemu-img": "qemu-utils",
    "objcopy": "binutils",
    "gdb-multiarch": "gdb-multiarch",  # vcomp debug core (docs/debugging.md)
    "debuginfod-find": "debuginfod",
    "abidiff": "abigail-tools",        # repo add: ABI break detail (docs/elf-checks.md)
    "tar": "tar",
    "zstd": "zstd",
    "gcc": "gcc",
    "make": "make",
    "cmake": "cmake",                 # docs/sdk.md: the examples' build systems
    "ninja": "ninja-build",
    "meson": "meson",
    "pkg-config": "pkgconf",
    "sh": "dash",
    "bwrap": "bubblewrap",
    "ssh": "openssh-client",          # boot tests' ssh checks (composer.boot.reach)
    "ssh-keygen": "openssh-client",
    **ARCH_TOOL_PACKAGES,  # each architecture's emulator and cross compiler
    # what recipes' build commands get by default (composer.package.sources.BASE_TOOLS)
    **{tool: "coreutils" for tool in ("cat", "chmod", "cp", "date", "echo", "head", "install", "ln", "ls", "mkdir",
                                      "mv", "printf", "rm", "sort", "tail", "touch", "tr", "true", "false", "test",
                                      "uname", "wc", "env", "basename", "dirname", "dd")},
    "find": "findutils",
    "xargs": "findutils",
    "grep": "grep",
    "sed": "sed",
    "dot": "graphviz",                # vcomp graph, vcomp repo site (docs/stats.md)
    "chromium": "chromium",           # the site's browser test (docs/site.md)
}

# The sandbox for commands from recipes: the host read-only, fresh /dev, /proc and /tmp, no network,
# no shared IPC/PID/UTS namespaces, no controlling terminal, killed with vcomp.
SANDBOX = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
           "--unshare-net", "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--new-session",
           "--die-with-parent")


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes


def require_tool(name: str) -> str:
    """Return the absolute path of a host tool or raise naming the Debian package."""
    path = shutil.which(name)
    if path is None:
        raise ToolError(f"host tool '{name}' is not installed (not found in PATH)", hint=install_hint(name))
    return path


def install_hint(name: str) -> str:
    """How to get ``name``: the Debian package from the table, or how to find the package for an unknown tool."""
    pkg = TOOL_PACKAGES.get(name)
    if pkg:
        return f"install it with: apt-get install {pkg} (or put it in PATH)"
    return f"find the package that provides it (apt-file search --regexp 'bin/{name}$'), apt-get install it, " \
           "or put the tool in PATH"


def confine(args: Sequence[str | Path], *, cwd: Path, writable: Sequence[Path],
            readable: Sequence[Path] = ()) -> list[str]:
    """``args`` wrapped to run in a bubblewrap sandbox (see SANDBOX) where only ``writable`` can be written.

    ``readable`` are paths below /tmp the command needs to see (the host's /tmp is hidden). Pass the result
    to :func:`run`. Writes elsewhere fail with EROFS ("Read-only file system"); the network is down.
    """
    argv = [require_tool("bwrap"), *SANDBOX]
    for path in readable:
        argv += ["--ro-bind", str(path), str(path)]
    for path in writable:
        argv += ["--bind", str(path), str(path)]
    return [*argv, "--chdir", str(cwd), "--", *(str(a) for a in args)]


def run(args: Sequence[str | Path], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        check: bool = True, stdin: bytes | None = None, clean_env: bool = False,
        timeout: float | None = None, umask: int = -1) -> Result:
    """Run a command; raise ToolError with the tool's stderr tail when it fails."""
    argv = [str(a) for a in args]
    exe = require_tool(argv[0]) if os.sep not in argv[0] else argv[0]
    full_env: dict[str, str] = {} if clean_env else dict(os.environ)
    if env:
        full_env.update(env)
    log.debug("run: %s", " ".join(argv))
    try:
        proc = subprocess.run([exe, *argv[1:]], cwd=cwd, env=full_env, input=stdin,
                              capture_output=True, check=False, timeout=timeout, umask=umask)
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"'{argv[0]}' did not finish within {timeout} s",
                        hint="see the command with --debug") from exc
    except OSError as exc:  # found a moment ago, but not executable (permissions, wrong architecture, ETXTBSY...)
        raise ToolError(f"cannot run '{argv[0]}' ({exe}): {oserrors.describe(exc).message}",
                        hint=f"check that {exe} is an executable for this machine; {install_hint(argv[0])}") from exc
    result = Result(args=tuple(argv), returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()[-12:]
        raise ToolError(f"'{' '.join(argv[:3])}{' ...' if len(argv) > 3 else ''}' failed "
                        f"(exit {proc.returncode}):\n    " + "\n    ".join(tail))
    return result


def stream(args: Sequence[str | Path], on_line: Callable[[str], bool], *, timeout: float,
           idle: Callable[[], bool] | None = None) -> tuple[int, bool]:
    """Run a command and hand each line of its output (stdout and stderr merged) to ``on_line``; stop it
    when ``on_line`` returns True, when ``idle`` (asked at least once a second, output or not) returns True,
    or after ``timeout`` seconds. Returns (exit status, timed out)."""
    argv = [str(a) for a in args]
    exe = require_tool(argv[0]) if os.sep not in argv[0] else argv[0]
    log.debug("stream: %s", " ".join(argv))
    proc = subprocess.Popen([exe, *argv[1:]], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    timed_out, buf = False, b""
    fd = proc.stdout.fileno()
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                if idle is not None and idle():
                    break
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            stop = [on_line(line.decode(errors="replace").rstrip("\r")) for line in lines]
            if any(stop) or (idle is not None and idle()):
                break
        if buf:
            on_line(buf.decode(errors="replace").rstrip("\r"))
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
    return proc.returncode, timed_out


def run_attached(args: Sequence[str | Path], *, env: Mapping[str, str] | None = None) -> int:
    """Run a command on the user's terminal (an interactive QEMU console, gdb); ``env`` added to ours."""
    argv = [str(a) for a in args]
    exe = require_tool(argv[0]) if os.sep not in argv[0] else argv[0]
    log.debug("attached: %s", " ".join(argv))
    return subprocess.run([exe, *argv[1:]], check=False, env={**os.environ, **(env or {})}).returncode
