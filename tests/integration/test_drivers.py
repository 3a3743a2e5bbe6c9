"""The four driver families boot-tested (docs/drivers.md): tests/integration/profiles/drivers.yaml built from the
sample repository and its disk booted with the named hardware nvme-root, virtio-gpu, virtio-keyboard, usb-keyboard
and e1000e attached. The profile's checks print what the guest sees (``VCOMP-HW:`` lines) and its boot test
expects each of them. x86_64 runs in ``make test``; aarch64 and riscv64 carry the ``drivers`` marker
(``make test-drivers``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from composer.boot.session import run_boot
from composer.cli.main import main
from composer.compose.build import read_manifest
from tests.integration.conftest import copy_profiles

PROFILE = Path(__file__).parent / "profiles" / "drivers.yaml"
# A boot of the drivers disk under TCG with the 2 cores shared (the profile allows 300 s).
BOOT_TIMEOUT = 300
EVIDENCE = ("VCOMP-BOOT: switching root to /dev/nvme0n1p2 (ext4)",
            "VCOMP-HW: network eth0 driver e1000e lease 10.0.2.15/24",
            "VCOMP-HW: graphics /proc/fb: 0 virtio_gpudrmfb",
            "VCOMP-HW: storage / is /dev/nvme0n1p2 (ext4)",
            'VCOMP-HW: input "QEMU QEMU USB Keyboard" (usbhid)',
            'VCOMP-HW: input "QEMU Virtio Keyboard" (virtio_input)',
            "VCOMP-MODULE: ok virtio-gpu", "VCOMP-MODULE: ok nvme", "VCOMP-MODULE: ok xhci-pci",
            "VCOMP-MODULE: ok e1000e")

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("drivers-images")]


@pytest.fixture(scope="module")
def drivers_locked(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the drivers profile, locked, beside the sample profiles; the images directory to build into)."""
    base = tmp_path_factory.mktemp("drivers")
    profiles = copy_profiles(sample_repo_base, base)
    shutil.copy(PROFILE, profiles / PROFILE.name)
    assert main(["lock", str(profiles / PROFILE.name)]) == 0
    return profiles / PROFILE.name, base / "images-out"


def build_and_boot(drivers_locked: tuple[Path, Path], arch: str, logs: Path) -> str:
    prof, images = drivers_locked
    assert main(["build", str(prof), "--images", str(images), "--arch", arch]) == 0
    directory = images / "drivers" / arch
    cases = run_boot(read_manifest(directory), directory, "disk", "uefi", logs=logs, timeout=BOOT_TIMEOUT)
    log = cases[0].watch.log
    assert all(c.passed for c in cases), f"{[c.reason() for c in cases]}\n{cases[0].watch.tail(60)}"
    for line in EVIDENCE:
        assert line in log, f"{line!r} missing:\n{cases[0].watch.tail(60)}"
    print(f"{arch}: drivers boot passed in {cases[0].watch.seconds:.0f} s")
    return log


def test_x86_64_boots_with_every_driver_family(drivers_locked: tuple[Path, Path], tmp_path: Path) -> None:
    build_and_boot(drivers_locked, "x86_64", tmp_path)


@pytest.mark.drivers
@pytest.mark.parametrize("arch", ["aarch64", "riscv64"])
def test_every_driver_family_boots_on(drivers_locked: tuple[Path, Path], arch: str, tmp_path: Path) -> None:
    build_and_boot(drivers_locked, arch, tmp_path)
