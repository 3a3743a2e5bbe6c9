"""The SDK's pure parts: generated files (relocatable, per architecture), toolchain table, plan helpers, manifest
and SBOM shape (issue 18)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from composer.arch import get_arch
from composer.package.debian import DebRef, parse_rdepends
from composer.sdk import files, manifest
from composer.sdk.assemble import depends_names, merge_usr, relocate_links, reverse_dev, sdk_libraries
from composer.sdk.toolchain import toolchain_for
from composer.solve.lockmodel import LockedPackage, Reason

HOST = get_arch("x86_64")


def _layout(arch: str) -> files.SdkLayout:
    return files.SdkLayout(arch=get_arch(arch), toolchain=toolchain_for(get_arch(arch), HOST))


@pytest.mark.parametrize("arch", ["x86_64", "aarch64", "riscv64"])
def test_generated_files_name_the_target_and_no_absolute_sdk_path(arch: str) -> None:
    layout = _layout(arch)
    out = files.generated(layout)
    assert set(out) == {f"environment-setup-{arch}", f"share/cmake/toolchain-{arch}.cmake",
                        f"share/meson/cross-{arch}.ini", "bin/pkg-config"}
    triple = get_arch(arch).triple
    for text, _ in out.values():
        assert "/work/" not in text and "/tmp/" not in text     # found from the file's own place
    env = out[f"environment-setup-{arch}"][0]
    assert f'export CC="{triple}-gcc-12 --sysroot=$SDKTARGETSYSROOT"' in env
    assert f"$SDKTARGETSYSROOT/usr/lib/{triple}/pkgconfig" in env
    cmake = out[f"share/cmake/toolchain-{arch}.cmake"][0]
    assert f"set(CMAKE_SYSTEM_PROCESSOR {arch})" in cmake and "CMAKE_CURRENT_LIST_DIR" in cmake
    assert f"cpu_family = '{arch}'" in out[f"share/meson/cross-{arch}.ini"][0]
    assert out["bin/pkg-config"][1] == 0o755


def test_toolchain_is_native_for_the_host_and_cross_otherwise() -> None:
    native = toolchain_for(HOST, HOST)
    assert "gcc-12" in native.packages and native.cc == "x86_64-linux-gnu-gcc-12"
    cross = toolchain_for(get_arch("riscv64"), HOST)
    assert "gcc-12-riscv64-linux-gnu" in cross.packages and "libstdc++-12-dev-riscv64-cross" in cross.packages
    assert list(cross.packages) == sorted(cross.packages)


def test_environment_setup_works_from_sh_when_moved(tmp_path: Path) -> None:
    layout = _layout("aarch64")
    sdk = tmp_path / "moved sdk"
    sdk.mkdir()
    (sdk / layout.env_script).write_text(files.environment_setup(layout))
    env = {"PATH": "/usr/bin:/bin", "VCOMP_SDK": str(sdk)}
    out = subprocess.run(["sh", "-c", f'. "{sdk / layout.env_script}" && echo "$PKG_CONFIG_SYSROOT_DIR|$CC"'],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert out == f"{sdk}/sysroot|aarch64-linux-gnu-gcc-12 --sysroot={sdk}/sysroot"
    bash = subprocess.run(["bash", "-c", f'. "{sdk / layout.env_script}" && echo "$VCOMP_SDK"'],
                          env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True).stdout.strip()
    assert bash == str(sdk)


def test_pkg_config_wrapper_reads_the_sysroot(tmp_path: Path) -> None:
    layout = _layout("riscv64")
    pc = tmp_path / "sysroot" / "usr" / "lib" / "riscv64-linux-gnu" / "pkgconfig"
    pc.mkdir(parents=True)
    (pc / "demo.pc").write_text("prefix=/usr\nincludedir=${prefix}/include\nlibdir=${prefix}/lib/riscv64-linux-gnu\n"
                                "Name: demo\nDescription: d\nVersion: 1\nLibs: -L${libdir} -ldemo\n"
                                "Cflags: -I${includedir}/demo\n")
    (tmp_path / "bin").mkdir()
    wrapper = tmp_path / "bin" / "pkg-config"
    wrapper.write_text(files.pkg_config_wrapper(layout))
    os.chmod(wrapper, 0o755)
    if not any(Path(p).exists() for p in files.HOST_PKG_CONFIG):
        pytest.skip("no pkg-config on the host")
    out = subprocess.run([str(wrapper), "--cflags", "--libs", "demo"], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin"}).stdout.split()
    assert f"-I{tmp_path}/sysroot/usr/include/demo" in out and "-ldemo" in out


def test_rdepends_parse_and_dev_selection() -> None:
    text = ("libssl3t64\nReverse Depends:\n  libssl-dev\n |openssl\n  libfoo-dev\n"
            "zlib1g\nReverse Depends:\n  zlib1g-dev\n")
    parsed = parse_rdepends(text)
    assert parsed == {"libssl3t64": ["libfoo-dev", "libssl-dev", "openssl"], "zlib1g": ["zlib1g-dev"]}
    assert reverse_dev(parsed["libssl3t64"]) == ["libfoo-dev", "libssl-dev"]
    assert depends_names("libssl-dev\n  Depends: libssl3t64\n |Depends: zlib1g-dev\n    Depends: libz-alt-dev\n"
                         "  Suggests: x\n  Depends: libc6\n") == ["libc6", "libssl3t64", "zlib1g-dev"]


def _locked(name: str, scheme: str = "deb") -> LockedPackage:
    return LockedPackage(name=name, version="1.0-1", arch="aarch64", sha256="0" * 64, size=1, repository="debian",
                         signer="s", reason=Reason(kind="requested"), version_scheme=scheme)


def test_sdk_libraries_are_debian_libraries_only() -> None:
    got = sdk_libraries([_locked("nginx"), _locked("libssl3t64"), _locked("libc6"), _locked("libown", "semver")])
    assert [p.name for p in got] == ["libc6", "libssl3t64"]


def test_sysroot_fixups_make_links_relative_and_usr_merged(tmp_path: Path) -> None:
    root = tmp_path / "sysroot"
    (root / "lib" / "t").mkdir(parents=True)
    (root / "lib" / "t" / "libz.so.1").write_text("z")
    (root / "usr" / "lib" / "t").mkdir(parents=True)
    os.symlink("/lib/t/libz.so.1", root / "usr" / "lib" / "t" / "libz.so")
    merge_usr(root)
    assert relocate_links(root) == 1
    assert os.readlink(root / "lib") == "usr/lib"
    assert os.readlink(root / "usr" / "lib" / "t" / "libz.so") == "../../../lib/t/libz.so.1"
    assert (root / "usr" / "lib" / "t" / "libz.so").read_text() == "z"


def test_manifest_round_trips_and_the_sbom_lists_every_deb(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "pkg-config").write_text("#!/bin/sh\n")
    ref = DebRef(name="libc6-dev", version="2.41-12", arch="arm64", sha256="a" * 64)
    tool = DebRef(name="gcc-12-aarch64-linux-gnu", version="12.2.0-14cross1", arch="amd64", sha256="b" * 64)
    m = manifest.make(profile="server", arch="aarch64", host="x86_64", suite="trixie", host_suite="bookworm",
                      sysroot=[ref], toolchain=[tool], root=tmp_path)
    assert manifest.SdkManifest.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    again = manifest.make(profile="server", arch="aarch64", host="x86_64", suite="trixie", host_suite="bookworm",
                          sysroot=[ref], toolchain=[tool], root=tmp_path)
    assert again.tree_sha256 == m.tree_sha256 and m.generated == (("bin/pkg-config", m.generated[0][1]),)
    doc = manifest.spdx(m)
    assert doc["spdxVersion"] == "SPDX-2.3"
    assert {p["name"] for p in doc["packages"][1:]} == {"libc6-dev", "gcc-12-aarch64-linux-gnu"}
    assert manifest.spdx(again) == doc


def test_sdk_build_without_a_lock_says_how_to_make_one(tmp_path: Path) -> None:
    from composer.errors import UserError
    from composer.sdk.assemble import build_sdk
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\n")
    with pytest.raises(UserError, match=r"p.yaml: no lock \(p.lock\)") as info:
        build_sdk(profile, "aarch64", tmp_path / "out", cache=tmp_path / "cache")
    assert info.value.hint == f"run: vcomp lock {profile}"


def test_sdk_build_refuses_an_out_directory_that_is_not_an_sdk(tmp_path: Path) -> None:
    from composer.errors import UserError
    from composer.sdk.assemble import build_sdk
    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("x")
    with pytest.raises(UserError, match="exists and is not an SDK"):
        build_sdk(repo / "profiles" / "server.yaml", "aarch64", out, cache=tmp_path / "cache")
    assert (out / "precious.txt").is_file()


@pytest.mark.parametrize(("profile", "provider", "message"), [
    ("missing.yaml", False, r"recipe.toml:\d+:\d+: no profile .*missing.yaml"),
    ("p.yaml", False, r"recipe.toml:\d+:\d+: this build has no SDK provider"),
])
def test_a_recipe_with_sdk_needs_the_profile_and_a_provider(tmp_path: Path, profile: str, provider: bool,
                                                            message: str) -> None:
    from composer.errors import UserError
    from composer.package.build import build
    from composer.trust.keys import load_signing_key
    (tmp_path / "p.yaml").write_text("name: p\n")
    d = tmp_path / "r"
    d.mkdir()
    (d / "recipe.toml").write_text(f'''[package]
name = "r"
version = "1.0.0"
description = "d"
license = "MIT"
type = "application"

[security]
context = "system_t"

[[source]]
kind = "command"
sdk = "../{profile}"
run = "true"
''')
    key = load_signing_key(Path(__file__).resolve().parents[2] / "keys" / "sample" / "INSECURE-SAMPLE-developer.key")
    with pytest.raises(UserError, match=message):
        build(d, "x86_64", key, tmp_path / "out")
