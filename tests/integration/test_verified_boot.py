"""The verified boot chain (docs/verified-boot.md), booted in QEMU with Secure Boot enforced: profiles/verified.yaml
(a UKI signed with the INSECURE sample db key, an ext4 root under dm-verity) built from the sample repository.

- the signed image boots, its root mapped through dm-verity (``make test``: one boot);
- a UKI with one byte changed on the ESP, and the image booted with another key enrolled, are refused by the
  firmware: init never starts;
- a root with one byte changed fails verity: init cannot mount it, the boot checks never run.

The last three, and aarch64's signed boot and refusal (AAVMF), carry the ``verified_boot`` marker
(``make test-verified-boot``)."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

from composer.boot.session import Case, run_boot, secure_boot_certificate
from composer.cli.main import main
from composer.compose.build import read_manifest
from composer.image.secureboot import verify
from composer.run import run
from tests.conftest import REPO
from tests.integration.conftest import copy_profiles
from tests.integration.images_fixture import with_cache

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("verified-images")]

BOOT_TIMEOUT = 180   # a good boot takes 10-20 s (TCG); a refused one ends at the firmware's "no bootable option"
OTHER_CERT = REPO / "keys" / "sample" / "INSECURE-SAMPLE-other-db.crt"
UKI = "::EFI/BOOT/BOOTX64.EFI"
SECTOR = 512


@pytest.fixture(scope="module")
def profile(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """profiles/verified.yaml beside the sample profiles, locked."""
    base = tmp_path_factory.mktemp("verified")
    profiles = copy_profiles(sample_repo_base, base)
    # the profile names the sample keys relative to itself: ../keys/sample/
    shutil.copytree(REPO / "keys" / "sample", base / "keys" / "sample")
    assert main(["lock", str(profiles / "verified.yaml")]) == 0
    return profiles / "verified.yaml"


@pytest.fixture(scope="module")
def images(profile: Path) -> Path:
    """The images directory of profiles/verified.yaml (x86_64 and aarch64), built once."""
    out = profile.parent.parent / "images-out"
    assert main(["build", str(profile), "--images", str(out)]) == 0
    return out / "verified"


@pytest.fixture(scope="module")
def verified(images: Path) -> Path:
    return images / "x86_64"


def test_the_signed_verity_disk_is_the_same_bytes_when_built_again(profile: Path, tmp_path: Path) -> None:
    """Two builds, each with a cache of its own (no output reused: the UKI signed again, the hash tree made
    again), give the same disk. (The shared image cache is not used: its entries are keyed by the packages, not
    by the lock file's digest, which the root's history records.)"""
    disks = []
    for name in ("one", "two"):
        with with_cache(tmp_path / f"cache-{name}"):
            assert main(["build", str(profile), "--arch", "x86_64", "--images", str(tmp_path / name)]) == 0
        disks.append(tmp_path / name / "verified" / "x86_64")
    assert (disks[0] / "disk.raw").read_bytes() == (disks[1] / "disk.raw").read_bytes()
    cert = (REPO / "keys/sample/INSECURE-SAMPLE-db.crt").read_bytes()
    assert (disks[0] / "secure-boot-db.crt").read_bytes() == cert
    key_line = (REPO / "keys/sample/INSECURE-SAMPLE-db.key").read_text().splitlines()[1].encode()
    assert not any(key_line in f.read_bytes() for f in disks[0].iterdir() if f.is_file()), "the key is never copied"


def tampered(directory: Path, tmp: Path) -> Path:
    """A copy of the built image directory to change bytes in (the shared one stays intact)."""
    copy = tmp / "image"
    shutil.copytree(directory, copy)
    return copy


def partition_start(disk: Path, number: int) -> int:
    """The byte offset of GPT partition ``number`` (1-based): its entry's first LBA."""
    with disk.open("rb") as f:
        f.seek(2 * SECTOR + (number - 1) * 128 + 32)
        (first_lba,) = struct.unpack("<Q", f.read(8))
    return int(first_lba) * SECTOR


def flip_byte(path: Path, offset: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


def boot(directory: Path, logs: Path, cert: Path | None = None) -> tuple[list[Case], str]:
    manifest: dict[str, Any] = read_manifest(directory)
    cases = run_boot(manifest, directory, "disk", "uefi", logs=logs, timeout=BOOT_TIMEOUT,
                     secure_boot=secure_boot_certificate(manifest, directory, cert))
    print(f"boot: {'passed' if all(c.passed for c in cases) else 'failed'} in {cases[0].watch.seconds:.1f} s")
    return cases, cases[0].watch.log


def assert_refused_by_firmware(cases: list[Case], log: str) -> None:
    assert not any(c.passed for c in cases)
    assert "Access Denied" in log or "Security Violation" in log, cases[0].watch.tail(20)
    assert "VCOMP-BOOT" not in log, cases[0].watch.tail(20)


def test_signed_image_boots_with_secure_boot_enforced(verified: Path, tmp_path: Path) -> None:
    cases, log = boot(verified, tmp_path)
    assert all(c.passed for c in cases), f"{[c.reason() for c in cases]}\n{cases[0].watch.tail(40)}"
    assert "VCOMP-BOOT: verity root /dev/vda2 (hash tree /dev/vda3" in log
    assert "VCOMP-CHECK: PASS 50-verity" in log       # dmsetup status: the verity target reports V (verified)


@pytest.mark.verified_boot
def test_uki_with_one_byte_changed_is_refused(verified: Path, tmp_path: Path) -> None:
    image = tampered(verified, tmp_path)
    disk = image / "disk.raw"
    esp = f"{disk}@@{partition_start(disk, 1)}"
    uki = tmp_path / "uki.efi"
    run(["mcopy", "-n", "-i", esp, UKI, uki])
    flip_byte(uki, uki.stat().st_size // 2)            # inside the kernel section
    assert not verify(uki, image / "secure-boot-db.crt")
    run(["mcopy", "-o", "-i", esp, uki, UKI])
    cases, log = boot(image, tmp_path / "logs")
    assert_refused_by_firmware(cases, log)


@pytest.mark.verified_boot
def test_uki_signed_by_another_key_is_refused(verified: Path, tmp_path: Path) -> None:
    cases, log = boot(verified, tmp_path, cert=OTHER_CERT)   # the firmware trusts only the other key
    assert_refused_by_firmware(cases, log)


@pytest.mark.verified_boot
def test_root_with_one_byte_changed_fails_verity(verified: Path, tmp_path: Path) -> None:
    image = tampered(verified, tmp_path)
    disk = image / "disk.raw"
    flip_byte(disk, partition_start(disk, 2) + 1024 + 0x78)   # the ext4 superblock's volume name
    cases, log = boot(image, tmp_path / "logs")
    assert not any(c.passed for c in cases)
    assert "device-mapper: verity" in log and "is corrupted" in log, cases[0].watch.tail(30)
    assert "VCOMP-BOOT: FAIL cannot mount root /dev/vda2" in log
    assert "VCOMP-CHECK" not in log and "stage 2" not in log


@pytest.mark.verified_boot
def test_aarch64_signed_image_boots_and_another_key_is_refused(images: Path, tmp_path: Path) -> None:
    cases, log = boot(images / "aarch64", tmp_path / "good")
    assert all(c.passed for c in cases), f"{[c.reason() for c in cases]}\n{cases[0].watch.tail(40)}"
    assert "VCOMP-CHECK: PASS 50-verity" in log
    cases, log = boot(images / "aarch64", tmp_path / "other", cert=OTHER_CERT)
    assert_refused_by_firmware(cases, log)
