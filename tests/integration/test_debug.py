"""Debugging a booted guest, end to end (marker ``debug``: make test-debug; minutes of TCG).

A static C program (crasher) split into crasher and crasher-dbg (GNU build-id layout) is published in a signed
repository beside the sample one; a profile with it and a boot check that crashes it is built (x86_64, an
initramfs booted directly, so that `vcomp boot` gives the kernel command line), and:

- ``vcomp boot --cores --trace``: the guest's core dump comes over the console into boot/cores/, and the boot's
  timeline (initcalls, init's services and stages) beside the log;
- ``vcomp debug core --profile --debuginfod``: gdb-multiarch on that core, symbols from ``vcomp debuginfod``
  serving the repository, shows the crashing function;
- QEMU's gdb stub (``--gdb`` as a library call, not waiting): gdb-multiarch attaches to the running guest
  kernel and reads its program counter (by address: Debian's linux-image-*-dbg, the vmlinux with symbols, is
  not in the sample repository; docs/debugging.md);
- live: crasher-live (built by a recipe whose ``[split] dbg = true`` makes crasher-live-dbg) runs under Debian's
  gdbserver (imported into a Debian repository beside the others, as images/debian has it) as a service of the
  image; its port forwarded to the host, ``vcomp debug remote --debuginfod`` stops it in a function and prints
  the backtrace with the program's function names: gdb gets the program from gdbserver, the symbols from
  ``vcomp debuginfod``, no local file.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from composer.boot.forward import Forward
from composer.boot.machine import GdbStub, command
from composer.boot.session import boot_spec, with_cmdline
from composer.cli.main import main
from composer.compose.build import read_manifest
from composer.debug.gdbcmd import GDB_KERNEL_ARGS
from composer.debug.index import Store, build_index
from composer.debug.server import serve_in_thread
from composer.repo.client import RepositoryClient
from composer.repo.debianset import DEBUG_NAMES, build_debian_repo
from composer.repo.sample import SampleCheckout, forget_trusted_state
from tests.conftest import REPO
from tests.integration.conftest import copy_profiles
from tests.support.debugpkgs import LIVE_PORT, DebugRepo, make_debug_repo

pytestmark = [pytest.mark.debug, pytest.mark.integration]
BOOT_TIMEOUT = 240
BOOT_TIMEOUTS = {"x86_64": BOOT_TIMEOUT, "aarch64": 600, "riscv64": 900}   # TCG: as test_boot_server.py

PROFILE = """\
name: debugging
description: minimal with a program that crashes at boot (tests/integration/test_debug.py)
architectures: [{arch}]
repositories:
  - name: sample
    url: ../images/repo
    root: trust/sample-root.json
    packages: [base-files, "busybox*", init, linux, "driver-*"]
  - name: debug
    url: {repo}
    root: {root}
  - name: debian
    url: {debian}
    root: trust/debian-root.json
    priority: 10
packages: [base-files, busybox, init, crasher, crasher-live]
drivers: [virtio-blk, virtio-net, ext4]
capabilities: [network]
kernel:
  package: linux
  cmdline: quiet
init: init
hostname: debugging
outputs:
  - type: initramfs
boot-tests:
  - name: boots
    expect: ["VCOMP-BOOT: init started", "VCOMP-CORE: end crasher", "VCOMP-BOOT: ready"]
    timeout: {timeout}
policy:
  allowed-licenses: [GPL-2.0-only, GPL-2.0-or-later, Apache-2.0, MIT, LGPL-2.1-or-later]
"""


def build_debugging(sample_repo_base: Path, base: Path, arch: str) -> tuple[Path, Path, DebugRepo]:
    """(the profile, its image directory for ``arch``, the debug repository)."""
    repo = make_debug_repo(base / "debugrepo", arch, static=True, crash_at_boot=True, live=True)
    start = time.monotonic()
    debian = base / "debian"
    forget_trusted_state(debian, SampleCheckout(root=REPO))   # a new repository where an old one may have been
    build_debian_repo(debian, base / "debian-packages", checkout=SampleCheckout(root=REPO), arches=(arch,),
                      names=DEBUG_NAMES)
    print(f"import {', '.join(DEBUG_NAMES)} and closure: {time.monotonic() - start:.0f} s")
    profiles = copy_profiles(sample_repo_base, base)
    profile = profiles / "debugging.yaml"
    shutil.copyfile(repo.root, profiles / "trust" / "debug-root.json")
    profile.write_text(PROFILE.format(repo=os.path.relpath(repo.dir, profiles), root="trust/debug-root.json",
                                      debian=os.path.relpath(debian, profiles), arch=arch,
                                      timeout=BOOT_TIMEOUTS[arch]))
    images = base / "images-out"
    assert main(["lock", str(profile)]) == 0
    assert main(["build", str(profile), "--images", str(images)]) == 0
    return profile, images / "debugging" / arch, repo


@pytest.fixture(scope="module")
def built(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, DebugRepo]:
    """(the profile, its x86_64 image directory, the debug repository)."""
    return build_debugging(sample_repo_base, tmp_path_factory.mktemp("debugging"), "x86_64")


def test_a_core_from_the_guest_opens_with_symbols_from_debuginfod(built: tuple[Path, Path, DebugRepo],
                                                                 tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    profile, directory, repo = built
    code = main(["boot", str(directory), "--output", "initramfs", "--cores", "--trace",
                 "--timeout", str(BOOT_TIMEOUT)])
    out = capsys.readouterr().out
    assert code == 0, out
    core = directory / "boot" / "cores"
    [found] = sorted(core.glob("core.crasher.*"))
    assert found.read_bytes()[:4] == b"\x7fELF"
    timeline = json.loads(next((directory / "boot").glob("*.timeline.json")).read_text())
    assert "ready" in timeline["events"] and any(s["kind"] == "initcall" for s in timeline["spans"])
    assert "initcalls:" in out
    client = RepositoryClient(str(repo.dir), repo.root.read_bytes(), tmp_path / "repos")
    server = serve_in_thread(build_index(client, Store(dir=tmp_path / "debuginfod"), ["x86_64"]),
                             Store(dir=tmp_path / "debuginfod"))
    try:
        monkeypatch.setenv("DEBUGINFOD_CACHE_PATH", str(tmp_path / "client-cache"))
        assert main(["debug", "core", str(found), "--profile", str(profile), "--arch", "x86_64",
                     "--exe", "/usr/bin/crasher", "--debuginfod", server.url, "--batch"]) == 0
    finally:
        server.shutdown()
        server.server_close()
    bt = capsys.readouterr().out
    assert "veridian_crash_here" in bt and "veridian_outer" in bt and "main" in bt, bt


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_gdb_attaches_to_the_guest_kernel(built: tuple[Path, Path, DebugRepo], tmp_path: Path) -> None:
    _profile, directory, _repo = built
    port = _free_port()
    spec = boot_spec(read_manifest(directory), directory, "initramfs", "", tmp_path)
    qemu = subprocess.Popen(command(spec, gdb=GdbStub(port=port, wait=False), network=False),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        assert _wait_for(qemu, b"VCOMP-BOOT: ready", BOOT_TIMEOUT)
        gdb = subprocess.run(["gdb-multiarch", "-nx", "-batch", "-ex", "set architecture i386:x86-64",
                              "-ex", f"target remote 127.0.0.1:{port}", "-ex", "info registers rip",
                              "-ex", "x/i $pc", "-ex", "detach"], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "DEBUGINFOD_URLS": ""})
        assert "rip" in gdb.stdout and "0xffffffff" in gdb.stdout, gdb.stdout + gdb.stderr
    finally:
        qemu.kill()
        qemu.wait(timeout=30)


KERNEL_DBG = "VCOMP_TEST_KERNEL_DBG"   # opt-in: fetches Debian's linux-image-RELEASE-dbg (1 GB; 360 MB kept)


@pytest.mark.skipif(not os.environ.get(KERNEL_DBG), reason=f"{KERNEL_DBG}=1 (make test-debug-kernel) fetches "
                                                           "Debian's linux-image-RELEASE-dbg, about 1 GB")
def test_gdb_names_the_guest_kernels_function_with_debians_vmlinux(built: tuple[Path, Path, DebugRepo],
                                                                  tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    profile, directory, _repo = built
    port = _free_port()
    spec = with_cmdline(boot_spec(read_manifest(directory), directory, "initramfs", "", tmp_path), GDB_KERNEL_ARGS)
    qemu = subprocess.Popen(command(spec, gdb=GdbStub(port=port, wait=False), network=False),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        assert _wait_for(qemu, b"VCOMP-BOOT: ready", BOOT_TIMEOUT)
        start = time.monotonic()
        assert main(["debug", "kernel", f"127.0.0.1:{port}", "--profile", str(profile), "--arch", "x86_64",
                     "--batch"]) == 0
        took = time.monotonic() - start
    finally:
        qemu.kill()
        qemu.wait(timeout=30)
    out = capsys.readouterr().out
    with capsys.disabled():
        print(f"\nvcomp debug kernel (vmlinux fetched or cached, gdb attached): {took:.0f} s\n{out}")
    # e.g. "pv_native_safe_halt + 6 in section .text" and a backtrace through the idle loop
    assert re.search(r"[a-z_][a-z0-9_.]* \+ \d+ in section \.text", out), out
    assert re.search(r"#1 +0x[0-9a-f]+ in [a-z_]", out), out


PERF = "VCOMP_TEST_PERF"   # opt-in: imports Debian's linux-perf with its closure (100 packages, 55 MB)
PERF_PROFILE = """\
name: perfing
description: Debian's perf records a program in the guest (tests/integration/test_debug.py)
architectures: [x86_64]
repositories:
  - name: sample
    url: ../images/repo
    root: trust/sample-root.json
    packages: [base-files, "busybox*", init, linux, "driver-*"]
  - name: debug
    url: {repo}
    root: trust/debug-root.json
  - name: debian
    url: {debian}
    root: trust/debian-root.json
    priority: 10
packages: [base-files, busybox-lean, mount, init, crasher-live, linux-perf]   # -lean: Debian's ps, tar, mount
drivers: [virtio-blk, ext4]
kernel:
  package: linux
  cmdline: quiet
init: init
hostname: perfing
services:
  - name: gdbserver
    enable: false
outputs:
  - type: initramfs
boot-tests:
  - name: perf
    checks:
      # TCG has no PMU: the software event cpu-clock samples; crasher-live keeps its .symtab (only its DWARF
      # went to crasher-live-dbg), so perf names its functions without debuginfod
      perf: |
        perf record -e cpu-clock -F 499 -o /tmp/perf.data /usr/bin/crasher-live wait >/dev/null 2>&1 &
        sleep 4; kill -INT $!; wait
        perf report -i /tmp/perf.data --stdio --sort comm,dso,symbol 2>&1 | grep -v -e '^#' -e '^$' | head -n 8 \
          >/tmp/report
        sed 's/^/VCOMP-PERF: /' /tmp/report >/dev/console
        grep -q veridian_outer /tmp/report
    expect: ["VCOMP-BOOT: init started", "VCOMP-CHECK: PASS 50-perf", "VCOMP-BOOT: ready"]
    timeout: {timeout}
policy:
  allowed-licenses: [GPL-2.0-only, GPL-2.0-or-later, Apache-2.0, MIT, LGPL-2.1-or-later]
"""


@pytest.mark.skipif(not os.environ.get(PERF), reason=f"{PERF}=1 imports Debian's linux-perf (100 packages)")
def test_perf_records_a_program_in_the_guest(built: tuple[Path, Path, DebugRepo], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    profile, _directory, repo = built
    profiles = profile.parent
    start = time.monotonic()
    debian = profiles.parent / "debian"
    build_debian_repo(debian, profiles.parent / "debian-packages", checkout=SampleCheckout(root=REPO),
                      arches=("x86_64",), names=(*DEBUG_NAMES, "linux-perf", "mount"))
    imported = time.monotonic() - start
    perf = profiles / "perfing.yaml"
    perf.write_text(PERF_PROFILE.format(repo=os.path.relpath(repo.dir, profiles),
                                        debian=os.path.relpath(debian, profiles), timeout=BOOT_TIMEOUT))
    images = profiles.parent / "images-out"
    start = time.monotonic()
    assert main(["lock", str(perf)]) == 0
    assert main(["build", str(perf), "--images", str(images)]) == 0
    built_in = time.monotonic() - start
    start = time.monotonic()
    code = main(["boot", str(images / "perfing" / "x86_64"), "--output", "initramfs", "--timeout",
                 str(BOOT_TIMEOUT)])
    booted = time.monotonic() - start
    capsys.readouterr()
    log = next((images / "perfing" / "x86_64" / "boot").glob("*.log")).read_text(errors="replace")
    report = "\n".join(line for line in log.splitlines() if "VCOMP-PERF: " in line)
    with capsys.disabled():
        print(f"\nperf: import {imported:.0f} s, lock+build {built_in:.0f} s, boot {booted:.0f} s\n{report}")
    assert code == 0 and "veridian_outer" in report, report


def _wait_for(proc: subprocess.Popen[bytes], marker: bytes, timeout: float) -> bool:
    assert proc.stdout is not None
    seen = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            seen += os.read(proc.stdout.fileno(), 65536)
            if marker in seen:
                return True
    return False


def test_gdb_shows_a_live_programs_backtrace_with_symbols_from_debuginfod(built: tuple[Path, Path, DebugRepo],
                                                                        tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _profile, directory, repo = built
    debug_live(directory, repo, "x86_64", tmp_path, capsys, monkeypatch)


ARCHES = "VCOMP_TEST_DEBUG_ARCHES"   # opt-in: the live test on aarch64 and riscv64 (minutes of TCG each)


@pytest.mark.skipif(not os.environ.get(ARCHES), reason=f"{ARCHES}=1: the live test on aarch64 and riscv64")
@pytest.mark.parametrize("arch", ["aarch64", "riscv64"])
def test_gdb_shows_a_live_programs_backtrace_on_the_other_architectures(
        arch: str, sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    start = time.monotonic()
    _profile, directory, repo = build_debugging(sample_repo_base, tmp_path_factory.mktemp(f"debugging-{arch}"), arch)
    with capsys.disabled():
        print(f"\n{arch}: debug repository, gdbserver import, lock and build: {time.monotonic() - start:.0f} s")
    debug_live(directory, repo, arch, tmp_path, capsys, monkeypatch)


def debug_live(directory: Path, repo: DebugRepo, arch: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
               monkeypatch: pytest.MonkeyPatch) -> None:
    """Boot ``directory``'s initramfs with gdbserver's port forwarded; vcomp debug remote stops crasher-live in
    veridian_outer and prints its backtrace, the symbols from a debuginfod serving ``repo``."""
    port = _free_port()
    spec = boot_spec(read_manifest(directory), directory, "initramfs", "", tmp_path)
    qemu = subprocess.Popen(command(spec, forwards=[Forward(host=port, guest=LIVE_PORT)]),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    client = RepositoryClient(str(repo.dir), repo.root.read_bytes(), tmp_path / "repos")
    store = Store(dir=tmp_path / "debuginfod")
    server = serve_in_thread(build_index(client, store, [arch]), store)
    try:
        start = time.monotonic()
        assert _wait_for(qemu, b"VCOMP-SERVICE: up gdbserver", BOOT_TIMEOUTS[arch])
        up = time.monotonic() - start
        monkeypatch.setenv("DEBUGINFOD_CACHE_PATH", str(tmp_path / "client-cache"))
        start = time.monotonic()
        assert main(["debug", "remote", f"127.0.0.1:{port}", "--arch", arch, "--debuginfod", server.url,
                     "--batch", "--break", "veridian_outer"]) == 0
        took = time.monotonic() - start
    finally:
        server.shutdown()
        server.server_close()
        qemu.kill()
        qemu.wait(timeout=30)
    bt = capsys.readouterr().out
    with capsys.disabled():
        print(f"\n{arch}: gdbserver up in the guest: {up:.0f} s; gdb connected, stopped, backtrace: {took:.0f} s\n{bt}")
    # the program's own frames, by name and source line: the symbols came from crasher-live-dbg via debuginfod
    assert "veridian_outer" in bt and "main" in bt and "crasher.c" in bt, bt
    fetched = list((tmp_path / "client-cache").rglob("debuginfo"))
    assert fetched, f"gdb fetched no debuginfo from {server.url}: {bt}"
