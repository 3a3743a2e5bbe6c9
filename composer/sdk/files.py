"""The text files of an SDK, pure: environment-setup-ARCH, CMake toolchain, Meson cross file, pkg-config wrapper.

Every file finds the SDK from its own location (relocatable: move or copy the directory anywhere).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from composer.arch import Arch
from composer.sdk import langfiles
from composer.sdk.toolchain import Toolchain

BINUTILS = ("ar", "as", "ld", "nm", "objcopy", "objdump", "ranlib", "readelf", "strip")
HOST_PKG_CONFIG = ("/usr/bin/pkgconf", "/usr/bin/pkg-config")
MESON_CPU: Mapping[str, tuple[str, str]] = {     # our arch -> (cpu_family, endian)
    "x86_64": ("x86_64", "little"), "aarch64": ("aarch64", "little"), "riscv64": ("riscv64", "little")}


@dataclass(frozen=True, slots=True, kw_only=True)
class SdkLayout:
    arch: Arch
    toolchain: Toolchain
    langs: langfiles.Langs | None = None      # Rust and Go (None: C and C++ only)

    @property
    def env_script(self) -> str:
        return f"environment-setup-{self.arch.name}"

    @property
    def cmake_file(self) -> str:
        return f"share/cmake/toolchain-{self.arch.name}.cmake"

    @property
    def meson_file(self) -> str:
        return f"share/meson/cross-{self.arch.name}.ini"

    def pkg_config_libdir(self, sysroot: str) -> str:
        t = self.arch.triple
        return ":".join(f"{sysroot}/{d}" for d in (f"usr/lib/{t}/pkgconfig", "usr/lib/pkgconfig",
                                                    "usr/share/pkgconfig"))


def rpath_link(layout: SdkLayout, sysroot: str) -> str:
    """``-Wl,-rpath-link`` to the sysroot's library directories: a cross ld does not read the sysroot's
    ld.so.conf, so without it the libraries a linked library needs (libcrypto -> libz) are not found."""
    t = layout.arch.triple
    return f"-Wl,-rpath-link,{sysroot}/usr/lib/{t}:{sysroot}/usr/lib"


def environment_setup(layout: SdkLayout) -> str:
    tc, t = layout.toolchain, layout.arch.triple
    tools = "\n".join(f'export {name.upper()}="{tc.tool_prefix}{name}"' for name in BINUTILS
                      if name not in ("as", "readelf", "objdump"))
    return f"""\
# Veridian SDK for {layout.arch.name} ({t}). Source it from bash or zsh:  . ./{layout.env_script}
# (from another shell: VCOMP_SDK=/path/to/sdk . /path/to/sdk/{layout.env_script})
if [ -z "${{VCOMP_SDK:-}}" ]; then
    if [ -n "${{BASH_SOURCE:-}}" ]; then VCOMP_SDK="${{BASH_SOURCE[0]}}"; else VCOMP_SDK="$0"; fi
    VCOMP_SDK="$(cd "$(dirname "$VCOMP_SDK")" && pwd)"
fi
export VCOMP_SDK
export SDKTARGETSYSROOT="$VCOMP_SDK/sysroot"
export VCOMP_ARCH="{layout.arch.name}"
export TARGET_TRIPLE="{t}"
export PATH="$VCOMP_SDK/bin:$VCOMP_SDK/toolchain/usr/bin:$PATH"
export CC="{tc.cc} --sysroot=$SDKTARGETSYSROOT"
export CXX="{tc.cxx} --sysroot=$SDKTARGETSYSROOT"
export CPP="{tc.cc} -E --sysroot=$SDKTARGETSYSROOT"
{tools}
export CFLAGS="-O2 -pipe -g --sysroot=$SDKTARGETSYSROOT"
export CXXFLAGS="-O2 -pipe -g --sysroot=$SDKTARGETSYSROOT"
export LDFLAGS="-Wl,-O1 -Wl,--build-id --sysroot=$SDKTARGETSYSROOT {rpath_link(layout, "$SDKTARGETSYSROOT")}"
export PKG_CONFIG="$VCOMP_SDK/bin/pkg-config"
export PKG_CONFIG_SYSROOT_DIR="$SDKTARGETSYSROOT"
export PKG_CONFIG_LIBDIR="{layout.pkg_config_libdir("$SDKTARGETSYSROOT")}"
unset PKG_CONFIG_PATH
export CMAKE_TOOLCHAIN_FILE="$VCOMP_SDK/{layout.cmake_file}"
# Meson before 1.3 does not expand @DIRNAME@ in a cross file: use a copy with the SDK's place written in
MESON_CROSS_FILE="${{TMPDIR:-/tmp}}/vcomp-sdk-meson-{layout.arch.name}-$$.ini"
sed "s|@DIRNAME@|$VCOMP_SDK/share/meson|g" "$VCOMP_SDK/{layout.meson_file}" >"$MESON_CROSS_FILE"
export MESON_CROSS_FILE
""" + (langfiles.environment_lines(layout.langs) if layout.langs else "")


def cmake_toolchain(layout: SdkLayout) -> str:
    tc = layout.toolchain
    bin_dir = "${VCOMP_SDK}/toolchain/usr/bin"
    return f"""\
# CMake toolchain file of the Veridian SDK for {layout.arch.name}: cmake -DCMAKE_TOOLCHAIN_FILE=<this file>
get_filename_component(VCOMP_SDK "${{CMAKE_CURRENT_LIST_DIR}}/../.." ABSOLUTE)
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR {layout.arch.name})
set(CMAKE_SYSROOT "${{VCOMP_SDK}}/sysroot")
set(CMAKE_C_COMPILER "{bin_dir}/{tc.cc}")
set(CMAKE_CXX_COMPILER "{bin_dir}/{tc.cxx}")
set(CMAKE_AR "{bin_dir}/{tc.tool_prefix}ar" CACHE FILEPATH "ar")
set(CMAKE_RANLIB "{bin_dir}/{tc.tool_prefix}ranlib" CACHE FILEPATH "ranlib")
set(CMAKE_STRIP "{bin_dir}/{tc.tool_prefix}strip" CACHE FILEPATH "strip")
set(CMAKE_OBJCOPY "{bin_dir}/{tc.tool_prefix}objcopy" CACHE FILEPATH "objcopy")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,--build-id {rpath_link(layout, "${CMAKE_SYSROOT}")}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,--build-id {rpath_link(layout, "${CMAKE_SYSROOT}")}")
set(CMAKE_FIND_ROOT_PATH "${{CMAKE_SYSROOT}}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_LIBRARY_ARCHITECTURE {layout.arch.triple})
set(PKG_CONFIG_EXECUTABLE "${{VCOMP_SDK}}/bin/pkg-config" CACHE FILEPATH "pkg-config")
set(ENV{{PKG_CONFIG_SYSROOT_DIR}} "${{CMAKE_SYSROOT}}")
set(ENV{{PKG_CONFIG_LIBDIR}} "{layout.pkg_config_libdir("${CMAKE_SYSROOT}")}")
"""


def meson_cross(layout: SdkLayout) -> str:
    tc = layout.toolchain
    family, endian = MESON_CPU[layout.arch.name]
    b = "sdk + '/toolchain/usr/bin/"
    sysroot = "'--sysroot=' + sdk + '/sysroot'"
    link = "'" + rpath_link(layout, "' + sdk + '/sysroot") + "'"
    return f"""\
# Meson cross file of the Veridian SDK for {layout.arch.name}: meson setup --cross-file <this file> build
[constants]
sdk = '@DIRNAME@' + '/../..'

[binaries]
c = [{b}{tc.cc}', {sysroot}]
cpp = [{b}{tc.cxx}', {sysroot}]
ar = {b}{tc.tool_prefix}ar'
strip = {b}{tc.tool_prefix}strip'
objcopy = {b}{tc.tool_prefix}objcopy'
pkg-config = sdk + '/bin/pkg-config'

[built-in options]
c_link_args = ['-Wl,--build-id', {link}]
cpp_link_args = ['-Wl,--build-id', {link}]

[properties]
sys_root = sdk + '/sysroot'
pkg_config_libdir = '{layout.pkg_config_libdir("' + sdk + '/sysroot")}'

[host_machine]
system = 'linux'
cpu_family = '{family}'
cpu = '{layout.arch.name}'
endian = '{endian}'
"""


def pkg_config_wrapper(layout: SdkLayout) -> str:
    hosts = " ".join(HOST_PKG_CONFIG)
    return f"""\
#!/bin/sh
# pkg-config for the Veridian SDK ({layout.arch.name}): the sysroot's .pc files, paths inside the sysroot.
sdk="$(cd "$(dirname "$0")/.." && pwd)"
export PKG_CONFIG_SYSROOT_DIR="$sdk/sysroot"
export PKG_CONFIG_LIBDIR="{layout.pkg_config_libdir("$sdk/sysroot")}"
unset PKG_CONFIG_PATH
for tool in {hosts}; do
    [ -x "$tool" ] && exec "$tool" "$@"
done
echo "pkg-config: install pkgconf on the host (apt-get install pkgconf)" >&2
exit 127
"""


def generated(layout: SdkLayout) -> dict[str, tuple[str, int]]:
    """Relative path -> (text, mode) of every generated file."""
    langs = langfiles.generated(layout.langs) if layout.langs else {}
    return langs | {
        layout.env_script: (environment_setup(layout), 0o644),
        layout.cmake_file: (cmake_toolchain(layout), 0o644),
        layout.meson_file: (meson_cross(layout), 0o644),
        "bin/pkg-config": (pkg_config_wrapper(layout), 0o755),
    }
