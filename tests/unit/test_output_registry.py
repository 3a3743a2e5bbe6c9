"""The output registry (composer/image/outputs.py) and the architecture registry (composer/arch.py).

A new output type is ONE row plus ONE module: the toy type ``raw-root`` (the root file system image alone) is
registered here with its builder (this module) and its options schema, and a tiny profile using it is locked and
built through the real `vcomp build` path; its options are checked by its own schema fragment. Plus: every row's
options schema is a valid JSON schema, an option given to a type that does not read it is refused with its place
and the type's options, the committed profile schema is the registry's, and the rows agree with the arch rows.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from composer import schema
from composer.arch import ARCHES
from composer.boot.machine import MEDIA
from composer.boot.session import boots_of
from composer.cli.main import main
from composer.compose.build import read_manifest
from composer.errors import UserError
from composer.image import outputs
from composer.image.outputs import OUTPUT_TYPES, OutputType, profile_schema
from composer.image.workshop import BuiltOutput, OutputJob, Workshop
from composer.package.build import build
from composer.profile.load import load_profile
from composer.repo import edit
from composer.run import TOOL_PACKAGES
from composer.solve.lock import lock_bytes, lock_path, open_sources, resolve_profile
from tests.conftest import write_recipe
from tests.repo_fixtures import ARCH, Repo

# ---------------------------------------------------------------- the toy output type: its module


def build_raw_root(w: Workshop, t: OutputJob, out: Path) -> BuiltOutput:
    """The root file system image alone (what a board's flasher writes to its root partition)."""
    filesystem = str(t.options.get("filesystem", "ext4"))
    path = out / f"{t.name}.{filesystem}"
    shutil.copyfile(w.root_image(filesystem), path)
    return BuiltOutput(name=t.name, type=t.type, files=(path,), firmware=())


RAW_ROOT = OutputType(
    name="raw-root", description="the root file system image alone", arches=frozenset(ARCHES), firmware={},
    options={"filesystem": {"enum": ["ext4", "erofs"], "default": "ext4"}},
    option_tools={"filesystem": {"ext4": ("mke2fs", "debugfs"), "erofs": ("mkfs.erofs",)}},
    builder=build_raw_root, extension=".ext4")


@pytest.fixture()
def raw_root(monkeypatch: pytest.MonkeyPatch) -> OutputType:
    """The toy row registered (the registry is the only product file it touches)."""
    monkeypatch.setitem(outputs.OUTPUT_TYPES, RAW_ROOT.name, RAW_ROOT)  # type: ignore[index]
    return RAW_ROOT


# ---------------------------------------------------------------- a tiny profile over the test repository

KERNEL_RECIPE = """
    [package]
    name = "libtoy-kernel"
    version = "1.0.0"
    description = "a stand-in kernel: the build reads boot/vmlinuz, nothing boots it"
    authors = ["Repo Tester"]
    license = "MIT"
    type = "library"

    [security]
    context = "system_t"

    [[source]]
    kind = "tree"
    path = "files"
"""


def tiny_profile(repo: Repo, tmp_path: Path, outputs_yaml: str) -> Path:
    """A profile of hello and a stand-in kernel (published by alice, who may sign lib*) with ``outputs_yaml``."""
    recipe = write_recipe(tmp_path / "recipes" / "libtoy-kernel", textwrap.dedent(KERNEL_RECIPE),
                          {"files/boot/vmlinuz": b"not a kernel\n"})
    built = build(recipe, ARCH, repo.keys.alice, tmp_path / "built", cache=tmp_path / "build-cache")
    edit.add(repo.store, [built.path], [repo.keys.alice])
    repo.publish()
    d = tmp_path / "profile"
    d.mkdir()
    (d / "root.json").write_bytes(repo.root_bytes)
    p = d / "tiny.yaml"
    p.write_text(f"name: tiny\narchitectures: [{ARCH}]\nrepositories:\n"
                 f"  - {{name: main, url: '{repo.url}', root: root.json}}\n"
                 f"packages: [hello, libtoy-kernel]\nkernel: {{package: libtoy-kernel}}\n"
                 f"outputs:\n{outputs_yaml}")
    return p


def test_a_toy_output_type_is_one_row_and_one_module(raw_root: OutputType, repo: Repo, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "vcache"))
    p = tiny_profile(repo, tmp_path, "  - type: raw-root\n    name: root\n    options: {filesystem: ext4}\n")
    prof = load_profile(p)
    lock_path(p).write_bytes(lock_bytes(resolve_profile(prof, open_sources(prof, tmp_path / "cache"))))
    images = tmp_path / "images"
    assert main(["build", str(p), "--images", str(images)]) == 0
    directory = images / "tiny" / ARCH
    manifest = read_manifest(directory)
    [out] = manifest["outputs"]
    assert (out["name"], out["type"], [f["path"] for f in out["files"]]) == ("root", "raw-root", ["root.ext4"])
    assert (directory / "root.ext4").read_bytes()[1080:1082] == b"\x53\xef", "an ext4 superblock"
    assert boots_of(manifest) == [], "not booted on its own: its row says so"
    # built again: taken from the cache, the same bytes
    before = (directory / "root.ext4").read_bytes()
    assert main(["build", str(p), "--images", str(images)]) == 0
    assert (directory / "root.ext4").read_bytes() == before


def test_the_toy_types_options_are_checked_by_its_own_schema(raw_root: OutputType, repo: Repo,
                                                              tmp_path: Path) -> None:
    p = tiny_profile(repo, tmp_path, "  - type: raw-root\n    options: {filesystem: squashfs, format: raw}\n")
    with pytest.raises(UserError) as info:
        load_profile(p)
    text = str(info.value.message)
    assert f"{p}:" in text
    assert "$.outputs[0].options.filesystem: 'squashfs' is not one of ext4, erofs" in text
    assert "$.outputs[0].options.format: output type 'raw-root' has no option 'format'" in text
    assert raw_root.tools_for({}) == ("mke2fs", "debugfs") and raw_root.tools_for({"filesystem": "erofs"}) == \
        ("mkfs.erofs",)


# ---------------------------------------------------------------- the rows


@pytest.mark.parametrize("name", list(OUTPUT_TYPES))
def test_every_rows_options_schema_is_a_valid_json_schema(name: str) -> None:
    kind = OUTPUT_TYPES[name]
    Draft202012Validator.check_schema(kind.options_schema())
    for option, fragment in kind.options.items():
        if "default" in fragment:
            assert not list(Draft202012Validator(fragment).iter_errors(fragment["default"])), (name, option)
    assert set(kind.option_tools) <= set(kind.options), "tools chosen by an option the type does not read"
    assert kind.extension.startswith(".")


def test_an_option_on_a_type_that_does_not_read_it_is_refused_with_its_place(tmp_path: Path) -> None:
    root = tmp_path / "root.json"
    root.write_text("{}")
    p = tmp_path / "p.yaml"
    p.write_text("name: p\narchitectures: [x86_64]\nrepositories:\n  - {name: r, url: 'file:///x', root: root.json}\n"
                 "packages: [busybox]\noutputs:\n  - type: iso\n    options:\n      hybrid: true\n"
                 "      compression: zstd\n  - type: rootfs\n    options: {size: 1G}\n")
    with pytest.raises(UserError) as info:
        load_profile(p)
    lines = info.value.message.splitlines()
    assert f"  {p}:10:7: $.outputs[0].options.compression: output type 'iso' has no option 'compression'" in lines
    assert f"  {p}:12:15: $.outputs[1].options.size: output type 'rootfs' has no option 'size'" in lines
    hints = [e.hint for e in info.value.errors]  # type: ignore[attr-defined]
    assert hints == ["options of iso: firmware, hybrid", "output type 'rootfs' takes no options"]


def test_a_wrong_value_is_refused_as_before(tmp_path: Path) -> None:
    root = tmp_path / "root.json"
    root.write_text("{}")
    p = tmp_path / "p.yaml"
    p.write_text("name: p\narchitectures: [x86_64]\nrepositories:\n  - {name: r, url: 'file:///x', root: root.json}\n"
                 "packages: [busybox]\noutputs:\n  - type: disk\n    options: {filesystem: btrfs}\n")
    with pytest.raises(UserError) as info:
        load_profile(p)
    assert "$.outputs[0].options.filesystem: 'btrfs' is not one of ext4, erofs, squashfs" in info.value.message


def test_the_committed_profile_schema_is_the_registrys() -> None:
    committed = schema.load("profile.schema.json")
    assert profile_schema(committed) == committed, "regenerate the outputs part of schemas/profile.schema.json"
    Draft202012Validator.check_schema(committed)


def test_output_rows_agree_with_the_arch_rows() -> None:
    for kind in OUTPUT_TYPES.values():
        assert kind.arches <= set(ARCHES), kind.name
        assert set(kind.firmware) <= kind.arches, kind.name
        for arch, kinds in kind.firmware.items():
            missing = kinds - set(ARCHES[arch].firmware)
            assert not missing, f"{kind.name} on {arch} boots with {missing}: no firmware row in composer/arch.py"
            assert kinds <= set(outputs.BOOTLOADERS), f"{kind.name}: no bootloader request for {kinds}"
        assert not kind.media or kind.media in MEDIA, f"{kind.name}: vcomp boot cannot attach {kind.media}"
        assert not kind.tested or kind.media, f"{kind.name}: tested but not bootable on its own"
        for tool in kind.every_tool():
            assert tool in TOOL_PACKAGES, f"{tool} ({kind.name}) names no Debian package in composer.run"


def test_every_arch_row_is_complete() -> None:
    for a in ARCHES.values():
        assert a.qemu in TOOL_PACKAGES and a.cross_gcc in TOOL_PACKAGES
        for kind, fw in a.firmware.items():
            pflash_or_loader = bool(fw.code and fw.vars) != bool(fw.loader)  # one or the other, not both
            assert fw.builtin or (pflash_or_loader and fw.package), (a.name, kind)
    assert json.dumps(sorted(ARCHES))  # a stable, printable set of names


def test_riscv64_has_the_uefi_types_through_u_boot_and_no_iso() -> None:
    """riscv64's firmware row is U-Boot's UEFI (a loader, not pflash): uki, esp and disk follow it; the ISO
    stays on x86_64 and aarch64 (docs/riscv64.md)."""
    for name in ("uki", "esp", "disk"):
        assert OUTPUT_TYPES[name].firmware_for("riscv64", {}) == ("uefi",), name
    assert "riscv64" not in OUTPUT_TYPES["iso"].arches
    assert {"rootfs", "initramfs"} <= {t.name for t in OUTPUT_TYPES.values() if "riscv64" in t.arches}


def test_disk_bios_is_opt_in_where_the_architecture_has_bios(tmp_path: Path) -> None:
    """A disk boots UEFI unless the profile asks for BIOS too (syslinux: it needs the host's syslinux and the
    lock's bootloader:bios); ``firmware: [bios, uefi]`` gives BIOS where the architecture has it and is valid on
    an output built for aarch64 as well; a list of kinds none of which the architecture has is refused."""
    disk = OUTPUT_TYPES["disk"]
    assert disk.firmware_for("x86_64", {}) == ("uefi",)
    assert disk.firmware_for("x86_64", {"firmware": ["bios", "uefi"]}) == ("bios", "uefi")
    assert disk.firmware_for("aarch64", {"firmware": ["bios", "uefi"]}) == ("uefi",)
    assert "syslinux" in disk.tools_for({}, ("bios", "uefi")) and "syslinux" not in disk.tools_for({}, ("uefi",))
    assert OUTPUT_TYPES["iso"].firmware_for("x86_64", {}) == ("bios", "uefi"), "an ISO's BIOS stays on by default"
    root = tmp_path / "root.json"
    root.write_text("{}")
    p = tmp_path / "p.yaml"
    head = "name: p\narchitectures: [x86_64, aarch64]\nrepositories:\n  - {name: r, url: 'file:///x', " \
           "root: root.json}\npackages: [busybox]\noutputs:\n  - type: disk\n"
    p.write_text(head + "    options: {firmware: [bios, uefi]}\n")
    assert load_profile(p).outputs[0].options["firmware"] == ["bios", "uefi"]
    p.write_text(head + "    options: {firmware: [bios]}\n")
    with pytest.raises(UserError, match=r"\$.outputs\[0\].options.firmware: disk on aarch64 cannot boot with bios"):
        load_profile(p)
