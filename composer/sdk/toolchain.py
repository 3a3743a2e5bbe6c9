"""Which Debian packages make the SDK's compiler: a table per target, not a chain of ifs.

The toolchain runs on the build host, so it comes from the host's Debian release (bookworm, amd64: its binaries
need the host's glibc) while the sysroot comes from the profile's release (trixie). GCC 12 compiles against the
newer glibc and its C++ programs run with the image's newer libstdc++ (the library is backwards compatible).
GCC rather than clang + lld: Debian's cross GCC finds its own libgcc, libstdc++ headers and binutils relative to
its executable (relocatable), and knows the multiarch sysroot layout, so ``--sysroot`` is all it needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from composer.arch import Arch

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
