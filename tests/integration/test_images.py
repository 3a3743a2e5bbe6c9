"""The main job: locked profiles built into images (rootless, bit-for-bit) and booted in QEMU against their tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from composer.boot.session import run_boot
from composer.cli.main import main
from composer.compose.build import read_manifest
from composer.package.archive import read_header
from composer.pkgmgr.install import check_conflicts, installed
from tests.integration.images_fixture import BOOT_TIMEOUT, IMAGES, READ_ONLY, Built, build_minimal, with_cache

pytestmark = [pytest.mark.integration, IMAGES]


@pytest.fixture
def built(minimal_built: Built) -> Built:
    """minimal, built once per session for x86_64, aarch64 and riscv64 (tests.integration.images_fixture)."""
    return minimal_built


def test_building_twice_in_two_directories_gives_identical_outputs(
        built: Built, sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    other_base = tmp_path_factory.mktemp("elsewhere") / "deeper" / "dir"
    other = build_minimal(other_base, sample_repo_base, other_base / "cache")  # a cold cache: everything rebuilt
    for arch in ("x86_64", "aarch64"):
        a, b = built.manifest(arch), other.manifest(arch)
        assert a["outputs"] == b["outputs"], f"{arch}: outputs differ between two builds"
        assert {o["name"] for o in a["outputs"]} == {"iso", "disk"}
        for name in ("sbom.spdx.json", "provenance.intoto.json"):
            assert (built.dir(arch) / name).read_bytes() == (other.dir(arch) / name).read_bytes()


def test_manifest_sbom_and_provenance(built: Built) -> None:
    m = built.manifest("x86_64")
    lock = json.loads((built.profiles / "minimal.lock").read_text())
    locked = {p["name"]: p["sha256"] for p in lock["architectures"]["x86_64"]}
    assert {"isolinux", "uki-stub", "linux", "busybox", "init"} <= set(locked)
    for o in m["outputs"]:
        for f in o["files"]:
            assert (built.dir("x86_64") / f["path"]).stat().st_size == f["size"]
    assert m["tools"]["mke2fs"].startswith("mke2fs")
    sbom = json.loads((built.dir("x86_64") / "sbom.spdx.json").read_text())
    assert sbom["spdxVersion"] == "SPDX-2.3"
    assert {p["name"]: p["checksums"][0]["checksumValue"] for p in sbom["packages"][1:]} == locked
    prov = json.loads((built.dir("x86_64") / "provenance.intoto.json").read_text())
    assert prov["predicateType"] == "https://slsa.dev/provenance/v1"
    deps = prov["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert {d["name"]: d["digest"]["sha256"] for d in deps} == locked
    assert {s["name"] for s in prov["subject"]} == {"iso.iso", "disk.qcow2"}


# Cells of the boot matrix (ARCH/OUTPUT/MEDIUM/FIRMWARE, composer/boot/matrix.py) booted in `make test`; every
# cell, in one `vcomp test` run, is `make test-boot-matrix` (tests/integration/test_boot_matrix.py).
BOOTS = [("x86_64", "iso", "cdrom", "bios"), ("x86_64", "iso", "cdrom", "uefi"), ("x86_64", "disk", "disk", "uefi"),
         ("x86_64", "disk", "disk", "bios"),  # syslinux: gptmbr.bin -> the legacy-BIOS-bootable ESP
         ("x86_64", "iso", "disk", "bios"),   # the hybrid ISO as a disk: the isohybrid MBR -> isolinux
         ("aarch64", "disk", "disk", "uefi"), ("aarch64", "iso", "cdrom", "uefi"),
         # riscv64 (docs/riscv64.md): OpenSBI -> U-Boot (S-mode, UEFI) -> the UKI; OpenSBI -> kernel + initramfs
         ("riscv64", "disk", "disk", "uefi"), ("riscv64", "initramfs", "kernel", "none")]


@pytest.mark.parametrize(("arch", "output", "medium", "firmware"), BOOTS, ids=["-".join(b) for b in BOOTS])
def test_boot(built: Built, arch: str, output: str, medium: str, firmware: str, tmp_path: Path) -> None:
    cases = run_boot(built.manifest(arch), built.dir(arch), output, firmware, logs=tmp_path, timeout=BOOT_TIMEOUT,
                     medium=medium)
    log = cases[0].watch.log
    assert all(c.passed for c in cases), f"{[c.reason() for c in cases]}\n{cases[0].watch.tail(40)}"
    assert {c.cell for c in cases} == {f"{arch}/{output}/{medium}/{firmware}"}
    for marker in ("VCOMP-CHECK: PASS 11-arch", "VCOMP-CHECK: PASS 12-drivers", "VCOMP-CHECK: PASS 13-root-mounted",
                   "VCOMP-MODULE: ok virtio_blk", "VCOMP-CHECKS: done pass=4 fail=0"):
        assert marker in log, f"{marker!r} missing:\n{cases[0].watch.tail(40)}"
    assert f"arch {arch})" in log
    if output == "disk":
        assert "VCOMP-BOOT: switching root to /dev/vda2 (ext4)" in log and "stage 2" in log
    if firmware == "bios":
        assert ("SYSLINUX 6.04" if output == "disk" else "ISOLINUX 6.04") in log, "the lock's syslinux booted it"


def test_the_image_database_records_every_package(variants_built: tuple[Path, Path], tmp_path: Path) -> None:
    import tarfile

    from composer.image.formats.fs import make_tar  # noqa: F401  (the rootfs output writer)
    # the root is not kept: the variant profile's rootfs output is the root to look inside
    prof, directory = variants_built
    lock = json.loads(prof.with_suffix(".lock").read_text())
    with tarfile.open(directory / "rootfs.tar") as tar:
        tar.extractall(tmp_path / "root", filter="tar")
    records = installed(tmp_path / "root")
    assert set(records) == {p["name"] for p in lock["architectures"]["x86_64"]}
    busybox = records["busybox"]
    assert busybox["sha256"] and any(f["path"] == "usr/bin/busybox" and len(f["sha256"]) == 64
                                     for f in busybox["files"])
    assert records["base-files"]["config"]["etc/passwd"]
    history = json.loads((tmp_path / "root" / "var/lib/vpk/history.json").read_text())
    assert history[0]["operation"] == "install" and len(history[0]["cause"]["lock"]) == 64
    conf = tmp_path / "root" / "etc" / "veridian"
    assert "virtio_blk" in (conf / "modules.load").read_text()
    assert "[packages.busybox]" in (conf / "capabilities.toml").read_text()
    assert (tmp_path / "root" / "etc" / "hostname").read_text() == "minimal\n"


def test_file_conflicts_name_both_packages_and_the_path(built: Built) -> None:
    from composer.pkgmgr.install import FileConflictError
    pkgs = sorted((built.base / "images" / "repo").resolve().parent.glob("packages/x86_64/busybox-[0-9]*.vpk"))
    assert pkgs
    header = read_header(pkgs[0])
    with pytest.raises(FileConflictError, match="bin/busybox: shipped by both 'a' and 'b'"):
        check_conflicts({"a": header, "b": header})


def test_a_stale_lock_or_a_wrong_hash_is_refused_and_previous_outputs_stay(
        built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "w"
    shutil.copytree(built.profiles, base / "profiles")
    (base / "images").mkdir()
    (base / "images" / "repo").symlink_to((built.base / "images" / "repo").resolve())
    images = base / "out"
    prof = base / "profiles" / "minimal.yaml"
    shutil.copytree(built.images, images)
    before = (images / "minimal" / "x86_64" / "manifest.json").read_bytes()
    lock = json.loads((base / "profiles" / "minimal.lock").read_text())
    busybox = next(p for p in lock["architectures"]["x86_64"] if p["name"] == "busybox")
    busybox["sha256"] = "ee" * 32
    (base / "profiles" / "minimal.lock").write_text(json.dumps(lock))
    capsys.readouterr()
    assert main(["build", str(prof), "--arch", "x86_64", "--images", str(images)]) == 1
    assert "busybox" in capsys.readouterr().err
    prof.write_text(prof.read_text().replace("hostname: minimal", "hostname: other"))
    assert main(["build", str(prof), "--arch", "x86_64", "--images", str(images)]) == 1
    err = capsys.readouterr().err
    assert "is stale: the profile changed" in err and "vcomp lock" in err
    assert (images / "minimal" / "x86_64" / "manifest.json").read_bytes() == before
    assert not [p for p in (images / "minimal").iterdir() if p.name.startswith(".")
                and p.name not in (".lock", ".gen")], "staging left behind"


def test_a_missing_host_tool_is_one_clear_line(built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    capsys.readouterr()
    assert main(["build", str(built.profiles / "minimal.yaml"), "--arch", "x86_64", "--images", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "host tool 'mkfs.fat' is not installed" in err and "apt-get install dosfstools" in err


def test_a_corrupted_cache_entry_is_detected_and_rebuilt(built: Built, tmp_path: Path) -> None:
    cache = built.base / "cache" / "images"
    entries = [p for p in cache.iterdir() if (p / "product.json").is_file()
               and json.loads((p / "product.json").read_text())["name"] == "iso"
               and (p / "iso.iso").is_file()]
    assert entries
    iso = entries[0] / "iso.iso"
    data = bytearray(iso.read_bytes())
    data[40000] ^= 0xFF
    iso.write_bytes(bytes(data))
    with with_cache(built.base / "cache"):
        assert main(["build", str(built.profiles / "minimal.yaml"), "--images", str(tmp_path)]) == 0
    for arch in ("x86_64", "aarch64"):
        assert read_manifest(tmp_path / "minimal" / arch)["outputs"] == built.manifest(arch)["outputs"]


def test_boot_refuses_a_firmware_the_output_cannot_use(built: Built, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    iso = built.dir("aarch64") / "iso.iso"
    assert main(["boot", str(iso), "--firmware", "bios"]) == 1
    assert "cannot boot with bios firmware" in capsys.readouterr().err


# The sample repository's network profile (what profiles/server.yaml was before it moved to the Debian closure).
NETWORK = """\
name: network
description: Minimal system plus the network capability, virtio-net, network tools and nano.
architectures: [x86_64]
repositories:
  - name: sample
    url: ../images/repo
    root: trust/sample-root.json
packages:
  - base-files
  - busybox
  - init
  - busybox-net
  - name: nano
    version: "8"
drivers: [virtio-blk, virtio-scsi, virtio-net, ext4]
capabilities: [network, filesystem]
kernel:
  package: linux
  cmdline: quiet
init: init
hostname: network
users:
  - name: admin
    uid: 1000
    groups: [wheel]
    shell: /bin/sh
outputs:
  - type: initramfs
    options: {compression: zstd}
boot-tests:
  - name: network-up
    expect: ["VCOMP-BOOT: init started", "VCOMP-NET: ", "VCOMP-BOOT: ready"]
    timeout: 180
policy:
  denied-packages: [telnetd]
  allowed-licenses: [GPL-2.0-only, GPL-2.0-or-later, GPL-3.0-or-later, Apache-2.0, MIT, LGPL-2.1-or-later]
  max-size-growth: "10%"
"""


def test_vcomp_test_boots_the_network_profile_and_writes_junit(
        built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import xml.etree.ElementTree as ET
    prof = built.profiles / "network.yaml"
    prof.write_text(NETWORK)
    assert main(["lock", str(prof)]) == 0
    junit = tmp_path / "junit.xml"
    capsys.readouterr()
    code = main(["test", str(prof), "--arch", "x86_64", "--output", "initramfs", "--images", str(tmp_path),
                 "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "x86_64/initramfs/kernel/none/network-up: PASS" in out
    log = (tmp_path / "network" / "x86_64" / "boot" / "x86_64-initramfs-none.log").read_text()
    for marker in ("VCOMP-NET: eth0 up 10.0.2.15/24", "VCOMP-CHECK: PASS 14-network",
                   "VCOMP-CHECKS: done pass=5 fail=0"):
        assert marker in log, log[-3000:]
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "1" and suite.get("failures") == "0"
    assert suite.find("testcase").get("name") == "network-up"  # type: ignore[union-attr]


def test_a_failing_boot_test_fails_with_the_console_tail(built: Built, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code = main(["boot", str(built.dir("x86_64") / "iso.iso"), "--firmware", "bios", "--expect",
                 "VCOMP-BOOT: init started", "--expect", "this line never appears", "--timeout", "60"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL" in out and "'this line never appears'" in out and "VCOMP-BOOT: ready" in out


@pytest.mark.parametrize("filesystem", READ_ONLY)
def test_a_read_only_root_disk_boots(variants_built: tuple[Path, Path], filesystem: str, tmp_path: Path) -> None:
    _, directory = variants_built
    cases = run_boot(read_manifest(directory), directory, f"disk-{filesystem}", "uefi", logs=tmp_path / "logs",
                     timeout=BOOT_TIMEOUT)
    log = cases[0].watch.log
    assert all(c.passed for c in cases), cases[0].watch.tail(40)
    assert f"VCOMP-BOOT: switching root to /dev/vda2 ({filesystem})" in log
    assert "VCOMP-CHECK: PASS 13-root-mounted" in log
