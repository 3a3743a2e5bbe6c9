"""The SDK's Rust and Go parts, pure (issue 18 item 3): the tables, the rustc closure's dependency step, the
cargo config, the environment lines (sourced from sh after a move), the rustc/cargo wrappers (run through the
host's real ld.so), the manifest and SBOM rows of the new .debs."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from composer.arch import get_arch
from composer.errors import UserError
from composer.package.debian import DebRef
from composer.sdk import files, langfiles, manifest
from composer.sdk import toolchain as tables
from composer.sdk.toolchain import go_target, runtime_closure_step, rust_host, rust_target, toolchain_for

HOST = get_arch("x86_64")
RUST = {"x86_64": "x86_64-unknown-linux-gnu", "aarch64": "aarch64-unknown-linux-gnu",
        "riscv64": "riscv64gc-unknown-linux-gnu"}
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "riscv64": "riscv64"}


def _langs(arch: str) -> langfiles.Langs:
    a = get_arch(arch)
    return langfiles.Langs(arch=a, toolchain=toolchain_for(a, HOST), rust=rust_target(a), rust_host=rust_host(HOST),
                           go=go_target(a))


def _layout(arch: str) -> files.SdkLayout:
    a = get_arch(arch)
    return files.SdkLayout(arch=a, toolchain=toolchain_for(a, HOST), langs=_langs(arch))


@pytest.mark.parametrize("arch", ["x86_64", "aarch64", "riscv64"])
def test_cargo_config_names_the_target_the_sdk_linker_and_the_sysroot(arch: str) -> None:
    langs = _langs(arch)
    text = langfiles.cargo_config(langs)
    t = RUST[arch]
    assert f'target = "{t}"' in text and f"[target.{t}]" in text
    assert f'linker = "@VCOMP_SDK@/toolchain/usr/bin/{toolchain_for(get_arch(arch), HOST).cc}"' in text
    assert '"-C", "link-arg=--sysroot=@VCOMP_SDK@/sysroot"' in text and '"link-arg=-Wl,--build-id"' in text
    assert "offline = true" in text and "/work/" not in text


@pytest.mark.parametrize("arch", ["x86_64", "aarch64", "riscv64"])
def test_generated_files_include_rust_and_go(arch: str) -> None:
    out = files.generated(_layout(arch))
    assert {"bin/rustc", "bin/cargo", f"share/cargo/config-{arch}.toml"} <= set(out)
    assert out["bin/rustc"][1] == out["bin/cargo"][1] == 0o755
    env = out[f"environment-setup-{arch}"][0]
    upper = RUST[arch].upper().replace("-", "_")
    assert f'export CARGO_BUILD_TARGET="{RUST[arch]}"' in env
    assert f'export CARGO_TARGET_{upper}_LINKER="$VCOMP_SDK/toolchain/usr/bin/' in env
    assert f'export GOARCH="{GOARCH[arch]}"' in env and "export CGO_ENABLED=1" in env
    assert 'export GOFLAGS="-trimpath -buildvcs=false -ldflags=-buildid="' in env
    for text, _ in out.values():
        assert "/work/" not in text and "/tmp/" not in text


def test_environment_setup_exports_rust_and_go_after_a_move(tmp_path: Path) -> None:
    layout = _layout("riscv64")
    sdk = tmp_path / "moved"
    for rel, (text, mode) in files.generated(layout).items():
        (sdk / rel).parent.mkdir(parents=True, exist_ok=True)
        (sdk / rel).write_text(text)
        os.chmod(sdk / rel, mode)
    script = (f'. "{sdk}/environment-setup-riscv64" && echo "$CARGO_BUILD_TARGET|$GOARCH|$GOROOT|$RUSTC" && '
              'echo "$RUSTFLAGS" && cat "$VCOMP_CARGO_CONFIG" && rm "$VCOMP_CARGO_CONFIG" "$MESON_CROSS_FILE"')
    out = subprocess.run(["sh", "-c", script], env={"PATH": "/usr/bin:/bin", "VCOMP_SDK": str(sdk),
                                                    "TMPDIR": str(tmp_path)},
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == f"riscv64gc-unknown-linux-gnu|riscv64|{sdk}/go/usr/lib/go-1.19|{sdk}/bin/rustc"
    assert f"-C link-arg=--sysroot={sdk}/sysroot" in out[1] and f"--remap-path-prefix={sdk}=/sdk" in out[1]
    config = "\n".join(out[2:])
    assert f'rustc = "{sdk}/bin/rustc"' in config and "@VCOMP_SDK@" not in config


def test_the_rustc_wrapper_runs_the_program_through_the_loader_it_names(tmp_path: Path) -> None:
    loader = Path("/lib64/ld-linux-x86-64.so.2")
    if os.uname().machine != "x86_64" or not loader.exists():
        pytest.skip("needs an x86_64 host with glibc's loader")
    langs = _langs("aarch64")
    sdk = tmp_path / "sdk"
    (sdk / "bin").mkdir(parents=True)
    place = sdk / "rust" / langs.rust_host.loader
    place.parent.mkdir(parents=True)
    os.symlink(loader.resolve(), place)
    (sdk / "rust" / "usr" / "bin").mkdir(parents=True)
    os.symlink(Path("/bin/echo").resolve(), sdk / "rust" / "usr" / "bin" / "cargo")
    (sdk / "bin" / "cargo").write_text(langfiles.tool_wrapper(langs, "cargo"))
    os.chmod(sdk / "bin" / "cargo", 0o755)
    out = subprocess.run([str(sdk / "bin" / "cargo"), "build", "--release"], env={"PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout
    assert out == "build --release\n"


def test_runtime_closure_step_follows_libraries_and_roots_only() -> None:
    section = ("  PreDepends: libc6\n  Depends: libstd-rust-dev\n  Depends: gcc\n  Depends: <libc-dev>\n"
               "    libc6-dev\n |Depends: libcurl4t64\n  Depends: libcurl3-gnutls\n  Depends: libssl-dev\n"
               "  Recommends: libllvm19\n  Depends: libz3-4\n")
    assert runtime_closure_step(section, tables.RUST_ROOTS) == ["libc6", "libcurl4t64", "libstd-rust-dev", "libz3-4"]
    assert runtime_closure_step("", tables.RUST_ROOTS) == []


def test_an_architecture_without_a_row_is_one_clear_error() -> None:
    mips = dataclasses.replace(get_arch("aarch64"), name="mips64")
    for lookup, table in ((rust_target, "RUST_TARGETS"), (go_target, "GO_TARGETS"), (rust_host, "RUST_HOSTS")):
        with pytest.raises(UserError, match="mips64") as info:
            lookup(mips)
        assert table in (info.value.hint or "")


def test_manifest_and_sbom_list_the_rust_and_go_debs(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    for name in ("rustc", "cargo", "pkg-config"):
        (tmp_path / "bin" / name).write_text("#!/bin/sh\n")
    rustc = DebRef(name="rustc", version="1.85.1+dfsg1-1+deb13u1", arch="amd64", sha256="c" * 64)
    std = DebRef(name="libstd-rust-dev", version="1.85.1+dfsg1-1+deb13u1", arch="riscv64", sha256="d" * 64)
    go = DebRef(name="golang-1.19-go", version="1.19.8-2", arch="amd64", sha256="e" * 64)
    m = manifest.make(profile="server", arch="riscv64", host="x86_64", suite="trixie", host_suite="bookworm",
                      sysroot=[], toolchain=[], root=tmp_path, rust=[rustc, std], go=[go])
    assert manifest.SdkManifest.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    assert [g[0] for g in m.generated] == ["bin/cargo", "bin/pkg-config", "bin/rustc"]
    doc = manifest.spdx(m)
    rows = {p["name"]: p for p in doc["packages"][1:]}
    assert rows["libstd-rust-dev"]["comment"] == "rust (trixie)"
    assert rows["golang-1.19-go"]["comment"] == "go (bookworm)"
    assert rows["libstd-rust-dev"]["externalRefs"][0]["referenceLocator"] == \
        "pkg:deb/debian/libstd-rust-dev@1.85.1+dfsg1-1+deb13u1?arch=riscv64"
