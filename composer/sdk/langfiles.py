"""The SDK's Rust and Go files, pure: the rustc/cargo wrappers, the cargo config and the environment lines.

Like composer.sdk.files, every file finds the SDK from its own place (relocatable). The cargo config cannot
expand variables, so it is a template with ``@VCOMP_SDK@`` that ``environment-setup-ARCH`` fills into a copy
(``$VCOMP_CARGO_CONFIG``, for ``cargo --config``); the environment's own exports (``CARGO_BUILD_TARGET``,
``CARGO_TARGET_<TRIPLE>_LINKER``, ``RUSTFLAGS``) make a plain ``cargo build`` cross-build without it.
"""

from __future__ import annotations

from dataclasses import dataclass

from composer.arch import Arch
from composer.sdk.toolchain import GOROOT, GoTarget, RustHost, RustTarget, Toolchain

PLACEHOLDER = "@VCOMP_SDK@"
GOFLAGS = "-trimpath -buildvcs=false -ldflags=-buildid="   # reproducible: no paths, no VCS stamp, no Go build id


@dataclass(frozen=True, slots=True, kw_only=True)
class Langs:
    arch: Arch
    toolchain: Toolchain
    rust: RustTarget
    rust_host: RustHost
    go: GoTarget

    @property
    def cargo_file(self) -> str:
        return f"share/cargo/config-{self.arch.name}.toml"

    @property
    def triple_env(self) -> str:
        """The triple as cargo spells it in variable names: CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_LINKER."""
        return self.rust.triple.upper().replace("-", "_")


def rust_link_args(langs: Langs, sdk: str) -> list[str]:
    """What rustc passes to the linker (the SDK's GCC): the sysroot, a GNU build-id (for -dbg splits), the
    sysroot's library directories for the libraries a linked library needs."""
    t = langs.arch.triple
    return [f"--sysroot={sdk}/sysroot", "-Wl,--build-id",
            f"-Wl,-rpath-link,{sdk}/sysroot/usr/lib/{t}:{sdk}/sysroot/usr/lib"]


def rustflags(langs: Langs, sdk: str) -> list[str]:
    flags: list[str] = []
    for arg in rust_link_args(langs, sdk):
        flags += ["-C", f"link-arg={arg}"]
    return [*flags, f"--remap-path-prefix={sdk}=/sdk"]


def tool_wrapper(langs: Langs, tool: str) -> str:
    """bin/rustc, bin/cargo: trixie's program through trixie's ld.so and libraries, found from $0."""
    h = langs.rust_host
    libdirs = ":".join(f"$rust/{d}" for d in h.libdirs)
    rustc = ': "${RUSTC:=$sdk/bin/rustc}"\nexport RUSTC\n' if tool == "cargo" else ""
    return f"""\
#!/bin/sh
# {tool} of the Veridian SDK: Debian {tool} (trixie) run by its own ld.so and libraries in rust/ (docs/sdk.md)
sdk="$(cd "$(dirname "$0")/.." && pwd)"
rust="$sdk/rust"
{rustc}exec "$rust/{h.loader}" --library-path "{libdirs}" "$rust/usr/bin/{tool}" "$@"
"""


def cargo_config(langs: Langs) -> str:
    t = langs.rust.triple
    flags = ", ".join(f'"{f}"' for f in rustflags(langs, PLACEHOLDER))
    return f"""\
# cargo config of the Veridian SDK for {langs.arch.name}: environment-setup-{langs.arch.name} writes a copy with
# the SDK's place filled in and names it $VCOMP_CARGO_CONFIG:  cargo --config "$VCOMP_CARGO_CONFIG" build
[build]
target = "{t}"
rustc = "{PLACEHOLDER}/bin/rustc"

[target.{t}]
linker = "{PLACEHOLDER}/toolchain/usr/bin/{langs.toolchain.cc}"
rustflags = [{flags}]

[net]
offline = true
"""


def environment_lines(langs: Langs) -> str:
    """The Rust and Go part of environment-setup-ARCH (after the C part: uses $VCOMP_SDK, $SDKTARGETSYSROOT)."""
    t, tc = langs.triple_env, langs.toolchain
    flags = " ".join(rustflags(langs, "$VCOMP_SDK"))
    link = " ".join(rust_link_args(langs, "$VCOMP_SDK"))
    return f"""\
# Rust: Debian's rustc and cargo (trixie) with {langs.rust.triple}'s standard library
export RUSTC="$VCOMP_SDK/bin/rustc"
export CARGO_BUILD_TARGET="{langs.rust.triple}"
export CARGO_TARGET_{t}_LINKER="$VCOMP_SDK/toolchain/usr/bin/{tc.cc}"
export RUSTFLAGS="{flags}"
export CARGO_NET_OFFLINE=true
VCOMP_CARGO_CONFIG="${{TMPDIR:-/tmp}}/vcomp-sdk-cargo-{langs.arch.name}-$$.toml"
sed "s|{PLACEHOLDER}|$VCOMP_SDK|g" "$VCOMP_SDK/{langs.cargo_file}" >"$VCOMP_CARGO_CONFIG"
export VCOMP_CARGO_CONFIG
# Go: Debian's go (bookworm), GOARCH={langs.go.goarch}, cgo with the SDK's GCC and sysroot ($CC)
export GOROOT="$VCOMP_SDK/{GOROOT}"
export PATH="$GOROOT/bin:$PATH"
export GOOS=linux
export GOARCH="{langs.go.goarch}"
export CGO_ENABLED=1
export CGO_CFLAGS="-O2 -g --sysroot=$SDKTARGETSYSROOT"
export CGO_LDFLAGS="{link}"
export GOFLAGS="{GOFLAGS}"
export GOPROXY=off
export GOTOOLCHAIN=local
"""


def generated(langs: Langs) -> dict[str, tuple[str, int]]:
    return {
        "bin/rustc": (tool_wrapper(langs, "rustc"), 0o755),
        "bin/cargo": (tool_wrapper(langs, "cargo"), 0o755),
        langs.cargo_file: (cargo_config(langs), 0o644),
    }
