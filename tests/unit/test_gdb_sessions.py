"""gdb sessions (composer/debug/gdbcmd.py): the command lines of a core, a program under gdbserver and the guest
kernel; the bounds of --break and HOST:PORT; the kernel's vmlinux read out of a real .deb (dpkg-deb built) by
streaming, and the CLI's command lines (vcomp debug remote, kernel)."""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import pytest

from composer.cli.debug import kernel_command, remote_command
from composer.debug.gdbcmd import TARGET_SYSROOT, Session, backtrace_at, command, parse_remote
from composer.debug.kernel import dbg_package, extract_vmlinux, kernel_release
from composer.errors import InvalidPackage, UserError

RELEASE = "6.12.118+deb13-amd64"


def _pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_a_remote_session_reads_the_program_from_gdbserver_and_symbols_from_debuginfod() -> None:
    argv = command(Session(arch="aarch64", sysroot=TARGET_SYSROOT, debuginfod=True, remote="127.0.0.1:2345",
                           batch=backtrace_at(("veridian_outer",))))
    assert argv[:3] == ["gdb-multiarch", "-nx", "-q"] and "-batch" in argv
    assert _pairs(argv, "-iex") == ["set debuginfod enabled on", "set architecture aarch64", "set sysroot target:"]
    assert _pairs(argv, "-ex") == ["target remote 127.0.0.1:2345", "break veridian_outer", "continue", "bt"]
    assert argv[-1] == "bt"     # no executable, no core: gdb asks gdbserver for the program


def test_a_core_session_names_the_program_then_the_core() -> None:
    argv = command(Session(arch="x86_64", sysroot="/s", debug_dir="/s/usr/lib/debug", exe="/s/usr/bin/p",
                           core="/tmp/core.p.1", batch=("bt",)))
    assert argv[-2:] == ["/s/usr/bin/p", "/tmp/core.p.1"]
    assert "set debug-file-directory /s/usr/lib/debug" in _pairs(argv, "-iex")
    assert not any("debuginfod" in a for a in argv)
    assert "-batch" not in command(Session(core="c"))


def test_backtrace_at_bounds_function_names() -> None:
    assert backtrace_at(()) == ("bt",)
    assert backtrace_at(("a", "ns::b")) == ("break a", "break ns::b", "continue", "bt")
    for bad in ("main; shell rm -rf /", "x\ny", "", "1abc"):
        with pytest.raises(UserError, match="not a function name"):
            backtrace_at((bad,))
    with pytest.raises(UserError, match="at most"):
        backtrace_at(tuple(f"f{i}" for i in range(17)))


@pytest.mark.parametrize(("text", "want"), [("127.0.0.1:2345", "127.0.0.1:2345"), (":1234", "127.0.0.1:1234"),
                                            ("localhost:1", "localhost:1"), ("[::1]:9", "[::1]:9")])
def test_remote_addresses(text: str, want: str) -> None:
    assert parse_remote(text) == want


@pytest.mark.parametrize("text", ["2345", "127.0.0.1:0", "127.0.0.1:70000", "host.example:22", "a:b",
                                  "127.0.0.1:22;shell"])
def test_bad_remote_addresses_are_one_clear_error(text: str) -> None:
    with pytest.raises(UserError, match="not HOST:PORT") as e:
        parse_remote(text)
    assert "--forward" in (e.value.hint or "")


def _args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"arch": "x86_64", "exe": None, "debuginfod": None, "batch": True, "breaks": None,
                               "address": "127.0.0.1:2345"}
    return argparse.Namespace(**{**base, **kw})


def test_the_cli_command_lines(tmp_path: Path) -> None:
    remote = remote_command(_args(debuginfod="http://127.0.0.1:8002", breaks=["main"]), None)
    assert "set sysroot target:" in remote and "break main" in remote
    sysroot = tmp_path / "root"
    (sysroot / "usr/bin").mkdir(parents=True)
    (sysroot / "usr/bin/p").write_bytes(b"\x7fELF")
    local = remote_command(_args(exe="/usr/bin/p"), sysroot)
    assert f"set sysroot {sysroot}" in local and local[-1] == str(sysroot / "usr/bin/p")
    kernel = kernel_command(_args(address="127.0.0.1:1234"), tmp_path / "vmlinux")
    assert kernel[-1] == str(tmp_path / "vmlinux") and "info symbol $pc" in kernel and "detach" in kernel
    bare = kernel_command(_args(address="127.0.0.1:1234"), None)
    assert "x/i $pc" in bare and "info symbol $pc" not in bare


def _deb(tmp_path: Path, files: dict[str, bytes], compression: str = "xz") -> Path:
    root = tmp_path / "pkg"
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (root / "DEBIAN" / "control").write_text(f"Package: {dbg_package(RELEASE)}\nVersion: 6.12.118-1\n"
                                             "Architecture: amd64\nMaintainer: t <t@example.org>\n"
                                             "Description: test\n")
    deb = tmp_path / "k.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(root), str(deb)],
                   check=True, capture_output=True)
    return deb


@pytest.mark.parametrize("compression", ["xz", "gzip", "none"])
def test_the_vmlinux_is_streamed_out_of_the_dbg_package(tmp_path: Path, compression: str) -> None:
    vmlinux = b"\x7fELF" + bytes(range(256)) * 4096
    deb = _deb(tmp_path, {"usr/lib/debug/lib/modules/x/a.ko": b"module" * 1000,
                          f"usr/lib/debug/boot/vmlinux-{RELEASE}": vmlinux}, compression)
    out = extract_vmlinux(deb, RELEASE, tmp_path / "cache" / "vmlinux")
    assert out.read_bytes() == vmlinux and [p.name for p in out.parent.iterdir()] == ["vmlinux"]


def test_a_package_without_the_vmlinux_or_not_a_deb_is_one_error(tmp_path: Path) -> None:
    deb = _deb(tmp_path, {"usr/share/doc/x": b"x"})
    with pytest.raises(InvalidPackage, match=re.escape(f"no usr/lib/debug/boot/vmlinux-{RELEASE}")):
        extract_vmlinux(deb, RELEASE, tmp_path / "vmlinux")
    (tmp_path / "bad.deb").write_bytes(b"PK\x03\x04 not an ar archive")
    with pytest.raises(InvalidPackage, match="not a Debian package"):
        extract_vmlinux(tmp_path / "bad.deb", RELEASE, tmp_path / "vmlinux")
    assert not (tmp_path / "vmlinux").exists()


def test_the_kernel_release_comes_from_the_sysroot(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    with pytest.raises(UserError, match="0 kernels"):
        kernel_release(tmp_path)
    (tmp_path / "boot" / f"config-{RELEASE}").write_text("CONFIG_X=y\n")
    assert kernel_release(tmp_path) == RELEASE
    assert dbg_package(RELEASE) == "linux-image-6.12.118+deb13-amd64-dbg"
