"""The sample package set, built for real from Debian trixie (13) binaries for x86_64, aarch64 and riscv64."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.errors import FetchError
from composer.package.archive import read_header, verify_package
from composer.package.build import Built, build, build_all, default_cache
from composer.package.lint import lint_package
from composer.trust.keys import SigningKey, generate, load_signing_key
from tests.conftest import REPO, write_recipe

pytestmark = pytest.mark.integration
RECIPES = REPO / "recipes"
COMMON = {"linux", "busybox", "busybox-net", "busybox-sysv", "busybox-lean", "base-files", "init", "libc6", "libtinfo6",
          "libncursesw6", "ncurses-base", "nano", "uki-stub", "driver-virtio", "driver-virtio-blk", "driver-virtio-net",
          "driver-virtio-scsi", "driver-scsi", "driver-ext4", "driver-erofs", "driver-squashfs", "driver-ahci",
          "driver-isofs", "driver-nvme", "driver-virtio-gpu", "driver-virtio-input", "driver-usb-hid",
          "driver-e1000e", "hello", "hello-web",
          # the verified boot chain (docs/verified-boot.md): dm-verity and dmsetup with its closure
          "driver-dm-verity", "dmsetup", "libdevmapper1.02.1", "libselinux1", "libpcre2-8-0", "libudev1", "libcap2",
          # the ESP of A/B disks is mounted by init (vfat)
          "driver-vfat"}
# systemd-boot boots A/B disks (docs/updates/ab-slots.md) on x86_64 and aarch64 (riscv64's UEFI here is U-Boot's);
# vpk (docs/updates/vpk-on-device.md) is noarch, built on the x86_64 pass and served in every index
EXPECTED = {"x86_64": COMMON | {"isolinux", "driver-e1000", "vpk", "systemd-boot"},
            "aarch64": COMMON | {"systemd-boot"}, "riscv64": COMMON}


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    d = tmp_path_factory.mktemp("k")
    generate("sample", d)
    return load_signing_key(d / "sample.key")


@pytest.fixture(scope="module", params=["x86_64", "aarch64", "riscv64"])
def sample(request: pytest.FixtureRequest, key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> \
        tuple[str, Path, dict[str, Built]]:
    arch = str(request.param)
    out = tmp_path_factory.mktemp(f"pk-{arch}")
    built = build_all(RECIPES, arch, key, out, cache=default_cache())
    return arch, out, {b.metadata.name: b for b in built}


def test_whole_set_builds_verifies_and_lints_clean(sample: tuple[str, Path, dict[str, Built]],
                                                    key: SigningKey) -> None:
    arch, _, pkgs = sample
    assert set(pkgs) == EXPECTED[arch]
    for b in pkgs.values():
        assert b.metadata.arch in (arch, "noarch")
        verify_package(b.path, key.public)
        errors = [f for f in lint_package(b.path) if f.level == "error"]
        assert errors == [], (b.path.name, errors)


def test_second_run_skips_everything(sample: tuple[str, Path, dict[str, Built]], key: SigningKey) -> None:
    arch, out, pkgs = sample
    again = build_all(RECIPES, arch, key, out, cache=default_cache())
    assert all(b.skipped for b in again)
    assert {b.metadata.name: b.sha256 for b in again} == {n: b.sha256 for n, b in pkgs.items()}


def test_rebuild_elsewhere_is_bit_identical(sample: tuple[str, Path, dict[str, Built]], key: SigningKey,
                                            tmp_path: Path) -> None:
    arch, _, pkgs = sample
    for name in ("linux", "busybox", "nano", "driver-ext4", "base-files"):
        again = build(RECIPES / name, arch, key, tmp_path / "again", cache=default_cache())
        assert again.sha256 == pkgs[name].sha256, name


def test_kernel_and_driver_metadata(sample: tuple[str, Path, dict[str, Built]]) -> None:
    arch, _, pkgs = sample
    linux = read_header(pkgs["linux"].path)
    release = linux.metadata.kernel["release"]
    assert release.endswith({"x86_64": "-amd64", "aarch64": "-arm64", "riscv64": "-riscv64"}[arch])
    assert "boot/vmlinuz" in {e.path for e in linux.manifest.entries}
    for name in ("driver-virtio-blk", "driver-ext4", "driver-virtio"):
        m = read_header(pkgs[name].path).metadata
        assert m.type == "driver" and f"driver:{name.removeprefix('driver-')}" in m.provides
        assert m.driver["kernel"] == release
        assert any(d.name == "linux" and d.requirement == f"={linux.metadata.semver.major}."
                   f"{linux.metadata.semver.minor}.{linux.metadata.semver.patch}" for d in m.dependencies)
        assert linux.metadata.version_scheme == "deb" == m.version_scheme
        assert m.full_version == linux.metadata.full_version
        assert f"linux (= {linux.metadata.upstream_version})" in m.relations["requires"]  # exactly this build
    ext4 = [p.rsplit("/", 1)[-1] for p in read_header(pkgs["driver-ext4"].path).metadata.driver["modules"]]
    assert ext4[0] == "crc32c_generic.ko.xz" and ext4[-1] == "ext4.ko.xz"   # Debian 13: xz-compressed modules
    assert ext4.index("jbd2.ko.xz") < ext4.index("ext4.ko.xz")
    assert ext4.index("mbcache.ko.xz") < ext4.index("ext4.ko.xz")
    virtio = read_header(pkgs["driver-virtio"].path).metadata.driver
    # virtio, virtio_ring and virtio_pci are built into the trixie kernels of every architecture
    assert virtio["builtin"] == ["virtio_pci"] and virtio["modules"] == ["kernel/drivers/virtio/virtio_mmio.ko.xz"]
    blk = read_header(pkgs["driver-virtio-blk"].path)
    assert blk.metadata.driver["modules"] == ["kernel/drivers/block/virtio_blk.ko.xz"]
    assert f"usr/lib/modules/{release}/kernel/drivers/block/virtio_blk.ko.xz" in {e.path for e in blk.manifest.entries}

    # the drivers of issue 16 item 8 (docs/drivers.md): each module after the modules it depends on
    def shipped(name: str) -> list[str]:
        paths = read_header(pkgs[name].path).metadata.driver["modules"]
        return [p.rsplit("/", 1)[-1].removesuffix(".ko.xz") for p in paths]

    assert shipped("driver-nvme") == ["nvme-auth", "nvme-core", "nvme"]
    gpu = shipped("driver-virtio-gpu")
    assert gpu[-1] == "virtio-gpu" and {"drm", "drm_kms_helper"} <= set(gpu)
    assert shipped("driver-virtio-input") == ["virtio_input"] and shipped("driver-e1000e") == ["e1000e"]
    usb = shipped("driver-usb-hid")
    assert usb.index("usbcore") < usb.index("xhci-hcd") < usb.index("xhci-pci")
    assert usb.index("hid") < usb.index("usbhid")


def test_dependency_chain_and_capabilities(sample: tuple[str, Path, dict[str, Built]]) -> None:
    _, _, pkgs = sample
    deps = {n: {d.name for d in b.metadata.dependencies} for n, b in pkgs.items()}
    assert {"libc6", "libncursesw6", "libtinfo6"} <= deps["nano"]
    assert {"libtinfo6", "libc6"} <= deps["libncursesw6"]
    assert "libc6" in deps["libtinfo6"]
    assert pkgs["busybox-net"].metadata.capabilities_required == ("network",)
    src = pkgs["nano"].metadata.provenance["sources"][0]
    assert src["kind"] == "deb" and src["name"] == "nano" and len(src["sha256"]) == 64


def test_unknown_debian_package_is_one_clear_error(tmp_path: Path, key: SigningKey) -> None:
    rdir = write_recipe(tmp_path / "r", """
        [package]
        name = "ghost"
        version = "1.0.0"
        description = "does not exist"
        license = "MIT"
        type = "application"
        [[source]]
        kind = "deb"
        package = "vcomp-no-such-package"
    """)
    with pytest.raises(FetchError, match="'vcomp-no-such-package' does not exist for arm64 in trixie"):
        build(rdir, "aarch64", key, tmp_path / "out", cache=default_cache())
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.vpk"))
