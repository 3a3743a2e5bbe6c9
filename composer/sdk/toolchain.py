"""Which Debian packages make the SDK's compiler: a table per target, not a chain of ifs.

The toolchain runs on the build host, so it comes from the host's Debian release (bookworm, amd64: its binaries
need the host's glibc) while the sysroot comes from the profile's release (trixie). GCC 12 compiles against the
newer glibc and its C++ programs run with the image's newer libstdc++ (the library is backwards compatible).
GCC rather than clang + lld: Debian's cross GCC finds its own libgcc, libstdc++ headers and binutils relative to
its executable (relocatable), and knows the multiarch sysroot layout, so ``--sysroot`` is all it needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from composer.arch import Arch
from composer.errors import UserError

HOST_SUITE = "bookworm"
GCC = "12"


@dataclass(frozen=True, slots=True, kw_only=True)
class Toolchain:
    packages: tuple[str, ...]      # Debian packages (host architecture) unpacked into toolchain/
    cc: str                        # executables under toolchain/usr/bin
    cxx: str
    tool_prefix: str               # TRIPLE- for binutils (ar, strip, objcopy, ...)


def _cross(arch: Arch) -> Toolchain:
    t = arch.triple.replace("_", "-")
    d = arch.deb
    packages = (f"gcc-{GCC}-{t}", f"g++-{GCC}-{t}", f"cpp-{GCC}-{t}", f"gcc-{GCC}-{t}-base", f"binutils-{t}",
                f"libgcc-{GCC}-dev-{d}-cross", f"libstdc++-{GCC}-dev-{d}-cross", f"libgcc-s1-{d}-cross",
                f"libstdc++6-{d}-cross", f"libatomic1-{d}-cross", f"gcc-{GCC}-cross-base")
    return Toolchain(packages=tuple(sorted(packages)), cc=f"{arch.triple}-gcc-{GCC}",
                     cxx=f"{arch.triple}-g++-{GCC}", tool_prefix=f"{arch.triple}-")


def _native(arch: Arch) -> Toolchain:
    t = arch.triple.replace("_", "-")
    packages = (f"gcc-{GCC}", f"g++-{GCC}", f"cpp-{GCC}", f"gcc-{GCC}-base", f"binutils-{t}", f"libgcc-{GCC}-dev",
                f"libstdc++-{GCC}-dev")
    return Toolchain(packages=tuple(sorted(packages)), cc=f"{arch.triple}-gcc-{GCC}",
                     cxx=f"{arch.triple}-g++-{GCC}", tool_prefix=f"{arch.triple}-")


def toolchain_for(target: Arch, host: Arch) -> Toolchain:
    """Debian ships no cross compiler to the host's own architecture: the native one is that compiler."""
    return _native(target) if target.name == host.name else _cross(target)


# --- Rust and Go (issue 18 item 3) ---------------------------------------------------------------------------
#
# Rust comes from trixie, the sysroot's own release, for every target: bookworm has no riscv64 at all (its
# rustc 1.63 has no riscv64 standard library to pair with) and each libstd-rust-dev:TARGET must be the rustc's
# exact version. trixie's rustc needs glibc 2.38+ and the host has 2.36, so the SDK carries the rustc's whole
# shared-library closure from trixie (libc6, libllvm19, libstdc++6, cargo's libcurl/libgit2, ...) under rust/ and
# bin/rustc, bin/cargo run it through that closure's own ld.so (``ld.so --library-path``): nothing leaks into the
# processes they start (the linker is the SDK's bookworm GCC, on the host's libc).
# Go comes from bookworm (host suite): the go command is a static binary and cross-compiles by GOARCH; cgo uses
# the SDK's cross GCC with --sysroot.

RUST_SUITE = "trixie"
RUST_ROOTS = ("cargo", "libstd-rust-dev", "rustc")    # the closure of these (lib* runtime packages) runs rustc
RUST_STD = "libstd-rust-dev"                          # the target's rlibs, at the rustc's exact version
GO_SUITE = HOST_SUITE
GO = "1.19"


@dataclass(frozen=True, slots=True, kw_only=True)
class RustTarget:
    triple: str                    # Rust's target triple (riscv64gc-..., not GNU's riscv64-...)


@dataclass(frozen=True, slots=True, kw_only=True)
class RustHost:
    triple: str                    # Rust's triple of the build host
    loader: str                    # the dynamic loader, relative to rust/ (ld.so --library-path runs rustc)
    libdirs: tuple[str, ...]       # relative to rust/: where rustc's, cargo's and LLVM's libraries are


RUST_TARGETS: Mapping[str, RustTarget] = {
    "x86_64": RustTarget(triple="x86_64-unknown-linux-gnu"),
    "aarch64": RustTarget(triple="aarch64-unknown-linux-gnu"),
    "riscv64": RustTarget(triple="riscv64gc-unknown-linux-gnu"),
}
RUST_HOSTS: Mapping[str, RustHost] = {
    "x86_64": RustHost(triple="x86_64-unknown-linux-gnu", loader="usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                       libdirs=("usr/lib/x86_64-linux-gnu", "usr/lib/llvm-19/lib")),
    "aarch64": RustHost(triple="aarch64-unknown-linux-gnu", loader="usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
                        libdirs=("usr/lib/aarch64-linux-gnu", "usr/lib/llvm-19/lib")),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class GoTarget:
    goarch: str


GO_TARGETS: Mapping[str, GoTarget] = {
    "x86_64": GoTarget(goarch="amd64"), "aarch64": GoTarget(goarch="arm64"), "riscv64": GoTarget(goarch="riscv64")}
GO_PACKAGES = (f"golang-{GO}-go", f"golang-{GO}-src")
GOROOT = f"go/usr/lib/go-{GO}"         # relative to the SDK


T = TypeVar("T")


def _row(table: Mapping[str, T], table_name: str, name: str, what: str) -> T:
    try:
        return table[name]
    except KeyError:
        raise UserError(what, hint=f"add a row to {table_name} in composer/sdk/toolchain.py") from None


def rust_target(arch: Arch) -> RustTarget:
    return _row(RUST_TARGETS, "RUST_TARGETS", arch.name, f"the SDK has no Rust target for {arch.name}")


def rust_host(host: Arch) -> RustHost:
    return _row(RUST_HOSTS, "RUST_HOSTS", host.name, f"the SDK cannot run rustc on a {host.name} build host")


def go_target(arch: Arch) -> GoTarget:
    return _row(GO_TARGETS, "GO_TARGETS", arch.name, f"the SDK has no Go target for {arch.name}")


def runtime_closure_step(depends: str, roots: tuple[str, ...]) -> list[str]:
    """The names one package's ``apt-cache depends`` section needs at run time: the first alternative of each
    (Pre)Depends clause that is a root or a runtime library (``lib*``, not ``-dev``); virtual names are skipped."""
    names, alternative = set(), False
    for line in depends.splitlines():
        found = re.match(r"^\s+(\|?)(?:Pre)?Depends:\s*(\S+)", line)
        if found is None:
            alternative = False
            continue
        name = found.group(2)
        if not alternative and not name.startswith("<") and (
                name in roots or (name.startswith("lib") and not name.endswith("-dev"))):
            names.add(name)
        alternative = bool(found.group(1))
    return sorted(names)
