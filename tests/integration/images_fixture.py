"""Built images shared by the boot tests: each profile is locked and built once per test session (per xdist
worker; the tests that use them carry the ``xdist_group`` mark IMAGES so that one worker builds them), and
each boot test boots an output once and reads everything it asserts from that boot's log.

- :func:`minimal_built`: profiles/minimal.yaml for x86_64 and aarch64 (ISO, qcow2 ext4 disk) and riscv64
  (qcow2 ext4 disk, initramfs), with a cache of its own (``built.base / "cache"``);
- :func:`variants_built`: one x86_64 variant of it with a rootfs tar and two read-only root disks (erofs and
  squashfs), one lock and one build for the three.

BOOT_TIMEOUT is what a boot needs, measured, with room for a loaded 2-core machine; a boot that hangs fails
in that time instead of the profile's 180 s.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composer.cli.main import main
from composer.compose.build import read_manifest

IMAGES = pytest.mark.xdist_group("minimal-images")
# Measured (docs/architecture/suite-timing.md): a boot of minimal took 11-32 s on a quiet machine and at most
# 70 s while whole suites ran on the 2 shared cores (TCG); the small BIOS ISO of test_iso.py 7-31 s.
BOOT_TIMEOUT = 120  # seconds, was the profile's 180
ISO_BOOT_TIMEOUT = 60  # seconds
READ_ONLY = ("erofs", "squashfs")


class Built:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.profiles = base / "profiles"
        self.images = base / "images-out"

    def dir(self, arch: str, profile: str = "minimal") -> Path:
        return self.images / profile / arch

    def manifest(self, arch: str, profile: str = "minimal") -> dict[str, Any]:
        return read_manifest(self.dir(arch, profile))


@contextlib.contextmanager
def with_cache(cache: Path) -> Iterator[None]:
    old = os.environ.get("VCOMP_CACHE")
    os.environ["VCOMP_CACHE"] = str(cache)
    try:
        yield
    finally:
        if old is None:
            del os.environ["VCOMP_CACHE"]
        else:
            os.environ["VCOMP_CACHE"] = old


def build_minimal(base: Path, sample_repo_base: Path, cache: Path, *extra: str) -> Built:
    from tests.integration.conftest import copy_profiles  # (the conftest imports this module)
    copy_profiles(sample_repo_base, base)
    b = Built(base)
    with with_cache(cache):
        assert main(["lock", str(b.profiles / "minimal.yaml")]) == 0
        assert main(["build", str(b.profiles / "minimal.yaml"), "--images", str(b.images), *extra]) == 0
    return b


def variants_profile(minimal: str) -> str:
    """minimal.yaml for x86_64 with a rootfs tar and one raw disk per read-only root file system."""
    drivers = "drivers: [virtio-blk, virtio-scsi, ext4]"
    assert drivers in minimal and "  - type: iso\n" in minimal
    text = minimal.replace(drivers, f"drivers: [virtio-blk, {', '.join(READ_ONLY)}]")
    disks = "".join(f"  - type: disk\n    name: disk-{fs}\n    options: {{format: raw, filesystem: {fs}}}\n"
                    for fs in READ_ONLY)
    head, _, tail = text.partition("outputs:\n")
    tail = tail[tail.index("boot-tests:"):]
    arches = next(line for line in head.splitlines() if line.startswith("architectures: "))
    return (head.replace(arches, "architectures: [x86_64]")
            + "outputs:\n  - type: rootfs\n" + disks + tail)


@pytest.fixture(scope="session")
def minimal_built(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """minimal, built for x86_64, aarch64 and riscv64 with a cache of its own."""
    base = tmp_path_factory.mktemp("build-a")
    return build_minimal(base, sample_repo_base, base / "cache")


@pytest.fixture(scope="session")
def variants_built(minimal_built: Built, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the variant profile, the directory of its x86_64 outputs), locked and built once."""
    prof = minimal_built.profiles / "minimal-variants.yaml"
    prof.write_text(variants_profile((minimal_built.profiles / "minimal.yaml").read_text()))
    images = tmp_path_factory.mktemp("variants")
    assert main(["lock", str(prof)]) == 0
    assert main(["build", str(prof), "--images", str(images)]) == 0
    return prof, images / "minimal" / "x86_64"
