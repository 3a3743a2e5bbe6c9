"""A/B image updates, the Done-when of issue 17 item 2 (docs/updates/ab-slots.md), in one QEMU run that reboots:

profiles/device.yaml (two dm-verity root slots, systemd-boot, vpk on Debian 13's python3) is built three times:
generation 1 (hostname device-g1), generation 2 (hostname device-g2: the same length, a one-file change) and
generation 3 (generation 2 plus a health check that fails). The sample repository (the device's pinned root) is
served on 127.0.0.1 at the port of the profile's device-url; generations are published into it with
``release_bundle`` (vcomp release's API). Then a writable copy of generation 1's disk boots in QEMU (OVMF):

1. slot a, generation 1; init's update timer runs ``vpk update --reboot``: generation 2 is written into slot b;
2. systemd-boot tries slot b (+3-0 -> +2-1); its health checks pass; init commits it (no counter);
3. the test releases generation 3; the timer fetches it into slot a; the trial's health check fails; init marks
   it bad (+0-1) and reboots; systemd-boot sorts it last and boots slot b: ``running generation 2 slot b
   (fallback from 3)``; the next update refuses generation 3.

The bytes the device downloaded for generation 1 -> 2 are reported against the size of the images.
Marker ``ab_update`` (``make test-ab-update``): three builds and minutes of boots.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import pytest
import yaml

from composer.boot.session import run_boot
from composer.boot.verdict import Seen
from composer.cli.main import main
from composer.compose.build import read_manifest
from composer.image.formats.gpt import read_gpt
from composer.repo.debianset import build_debian_repo
from composer.repo.sample import SampleCheckout
from composer.repo.store import RepoStore
from composer.run import run
from composer.update.release import release_bundle
from tests.conftest import REPO
from tests.httpserve import Quiet, serving
from tests.integration.conftest import copy_profiles
from tests.integration.images_fixture import with_cache

pytestmark = [pytest.mark.integration, pytest.mark.ab_update]
BOOT_TIMEOUT = 2400     # seconds: five boots and two updates under TCG on a loaded machine
INTERVAL = 20           # the update timer's interval in the test's generations
CHANNEL = "stable"

EXPECT = ["VCOMP-UPDATE: running generation 1 slot a",
          "VCOMP-UPDATE: wrote generation 2 to slot b (vcomp-2-b+3-0.efi)",
          "VCOMP-UPDATE: trial boot of generation 2 slot b (tries left 2, done 1)",
          "VCOMP-UPDATE: committed generation 2 slot b",
          "VCOMP-UPDATE: wrote generation 3 to slot a (vcomp-3-a+3-0.efi)",
          "VCOMP-UPDATE: trial boot of generation 3 slot a (tries left 2, done 1)",
          "VCOMP-HEALTH: FAIL broken",
          "VCOMP-UPDATE: health failed (1 of 3 checks) for generation 3 slot a; falling back",
          "VCOMP-UPDATE: running generation 2 slot b (fallback from 3)",
          "generation 3 failed its trial boot on this device"]


class Counting(Quiet):
    """Serves the images directory and counts the bytes of the chunks it sends (the update's transfer)."""

    sent: ClassVar[dict[str, int]] = {"chunks": 0, "all": 0}

    def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
        data = source.read()
        outputfile.write(data)
        Counting.sent["all"] += len(data)
        if "/targets/chunks/" in self.path:
            Counting.sent["chunks"] += len(data)


def device_port() -> int:
    doc = yaml.safe_load((REPO / "profiles" / "device.yaml").read_text())
    ports = {urlsplit(r["device-url"]).port for r in doc["repositories"]}
    assert len(ports) == 1 and None not in ports, ports
    return int(ports.pop())


@pytest.fixture(scope="module")
def served(sample_repo_base: Path) -> Iterator[Path]:
    """The sample repositories (with the Debian closure for x86_64) served on 127.0.0.1 at the device-url's port."""
    build_debian_repo(sample_repo_base / "images" / "debian", sample_repo_base / "images" / "debian-packages",
                      checkout=SampleCheckout(root=REPO), arches=("x86_64",))
    with serving(sample_repo_base / "images", port=device_port(), handler=Counting):
        yield sample_repo_base


def generation_profile(n: int) -> str:
    """profiles/device.yaml as generation ``n``: its hostname, the timer's interval, gen 3's failing check."""
    doc = yaml.safe_load((REPO / "profiles" / "device.yaml").read_text())
    doc["hostname"] = f"device-g{n}"
    doc["updates"]["interval"] = INTERVAL
    if n >= 3:
        doc["updates"]["health"]["checks"]["broken"] = "echo 'generation 3 is broken on purpose'; exit 1"
    doc.pop("boot-tests", None)
    return str(yaml.safe_dump(doc, sort_keys=False, width=1000))


def build_generation(served: Path, base: Path, n: int) -> Path:
    profiles = copy_profiles(served, base)
    (profiles / "device.yaml").write_text(generation_profile(n))
    start = time.monotonic()
    with with_cache(base / "cache"):
        assert main(["lock", str(profiles / "device.yaml")]) == 0
        assert main(["build", str(profiles / "device.yaml"), "--images", str(base / "images-out")]) == 0
    print(f"generation {n}: lock+build {time.monotonic() - start:.0f} s")
    return base / "images-out" / "device" / "x86_64"


@pytest.fixture(scope="module")
def generations(served: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    return {n: build_generation(served, tmp_path_factory.mktemp(f"g{n}"), n) for n in (1, 2, 3)}


def test_the_ab_disk_is_the_same_bytes_when_built_again(served: Path, generations: dict[int, Path],
                                                        tmp_path: Path) -> None:
    again = build_generation(served, tmp_path, 1)
    assert (again / "disk.raw").read_bytes() == (generations[1] / "disk.raw").read_bytes()
    for f in sorted((generations[1] / "disk.bundle").iterdir()):
        assert (again / "disk.bundle" / f.name).read_bytes() == f.read_bytes(), f.name
    names = [p.name for p in read_gpt(again / "disk.raw")]
    assert names == ["ESP", "root-a", "root-a-verity", "root-b", "root-b-verity"]


def test_the_device_updates_commits_and_falls_back_on_its_own(served: Path, generations: dict[int, Path],
                                                              tmp_path: Path) -> None:
    store = RepoStore(served / "images" / "repo")
    for n in (1, 2):
        release_bundle(store, generations[n] / "disk.bundle", CHANNEL, n, None)
    device = tmp_path / "device"
    device.mkdir()
    for f in generations[1].iterdir():      # a writable copy: the guest changes its disk
        if f.is_file():
            run(["cp", "--sparse=always", f, device / f.name])
    Counting.sent.update(chunks=0, all=0)
    phases: dict[str, int] = {}

    def on_line(seen: Seen) -> None:
        if seen.line.startswith(("VCOMP-UPDATE", "VCOMP-HEALTH", "[vpk]")) or "VCOMP-UPDATE" in seen.line:
            print(f"  {seen.line}", flush=True)
        if "committed generation 2 slot b" in seen.line and "gen2" not in phases:
            phases["gen2"] = Counting.sent["chunks"]
            start = time.monotonic()
            release_bundle(store, generations[3] / "disk.bundle", CHANNEL, 3, None)
            print(f"  (generation 3 released in {time.monotonic() - start:.0f} s)", flush=True)

    start = time.monotonic()
    (case,) = run_boot(read_manifest(device), device, "disk", "uefi", logs=tmp_path / "logs", expect=EXPECT,
                       timeout=BOOT_TIMEOUT, echo=on_line, reboots=True)
    print(f"boots, updates and fallback: {time.monotonic() - start:.0f} s")
    assert case.passed, f"{case.reason()}; console tail:\n{case.watch.tail(80)}"
    wrote = next(line for line in case.watch.log.splitlines() if "wrote generation 2 to slot b" in line)
    m = re.search(r"transferred (\d+) bytes for (\d+) bytes of images", wrote)
    assert m is not None, wrote
    transferred, images = int(m.group(1)), int(m.group(2))
    disk = (generations[1] / "disk.raw").stat().st_size
    print(f"generation 1 -> 2: the device reported {transferred} bytes transferred for {images} bytes of images "
          f"({100 * transferred / images:.1f} %); the server sent {phases['gen2']} bytes of chunks; "
          f"the disk image is {disk} bytes")
    assert transferred < images / 2
    esp = f"{device / 'disk.raw'}@@{read_gpt(device / 'disk.raw')[0].offset}"
    entries = run(["mdir", "-b", "-i", esp, "::EFI/Linux"]).stdout.decode().split()
    assert sorted(e.rsplit("/", 1)[-1] for e in entries) == ["vcomp-2-b.efi", "vcomp-3-a+0-1.efi"]
    shutil.rmtree(device)


SIGNED_AB = """\
name: absigned
description: a small A/B disk signed for Secure Boot (test_ab_update.py)
architectures: [x86_64]
repositories:
  - name: sample
    url: ../images/repo
    root: trust/sample-root.json
packages: [base-files, busybox, init]
drivers: [virtio-blk, ext4, vfat]
kernel: {package: linux, cmdline: quiet}
init: init
hostname: absigned
secure-boot:
  key: ../keys/sample/INSECURE-SAMPLE-db.key
  certificate: ../keys/sample/INSECURE-SAMPLE-db.crt
outputs:
  - type: disk
    options: {format: raw, filesystem: ext4, slots: ab, slot-size: 64M, firmware: [uefi]}
"""


def test_a_signed_ab_disk_boots_under_secure_boot_and_another_key_refuses_it(sample_repo_base: Path,
                                                                             tmp_path: Path) -> None:
    """systemd-boot and each slot's UKI are signed with the profile's key: enforced Secure Boot boots slot a;
    with only another key enrolled the firmware refuses systemd-boot."""
    from composer.boot.session import secure_boot_certificate
    from composer.image.secureboot import verify
    profiles = copy_profiles(sample_repo_base, tmp_path)
    shutil.copytree(REPO / "keys" / "sample", tmp_path / "keys" / "sample")
    (profiles / "absigned.yaml").write_text(SIGNED_AB)
    with with_cache(tmp_path / "cache"):
        assert main(["lock", str(profiles / "absigned.yaml")]) == 0
        assert main(["build", str(profiles / "absigned.yaml"), "--images", str(tmp_path / "out")]) == 0
    built = tmp_path / "out" / "absigned" / "x86_64"
    cert = built / "secure-boot-db.crt"
    esp = f"{built / 'disk.raw'}@@{read_gpt(built / 'disk.raw')[0].offset}"
    for name in ("EFI/BOOT/BOOTX64.EFI", "EFI/Linux/vcomp-1-a.efi"):
        run(["mcopy", "-n", "-i", esp, f"::{name}", tmp_path / "copy.efi"])
        assert verify(tmp_path / "copy.efi", cert), name
    assert verify(built / "disk.bundle" / "uki-b.efi", cert)
    manifest = read_manifest(built)
    expect = ["VCOMP-UPDATE: running generation 1 slot a", "VCOMP-BOOT: ready"]
    (good,) = run_boot(manifest, built, "disk", "uefi", logs=tmp_path / "logs", expect=expect, timeout=300,
                       secure_boot=secure_boot_certificate(manifest, built, None))
    assert good.passed, f"{good.reason()}\n{good.watch.tail(40)}"
    other = REPO / "keys" / "sample" / "INSECURE-SAMPLE-other-db.crt"
    (refused,) = run_boot(manifest, built, "disk", "uefi", logs=tmp_path / "logs-other", expect=expect, timeout=300,
                          secure_boot=secure_boot_certificate(manifest, built, other))
    assert not refused.passed and "Access Denied" in refused.watch.log, refused.watch.tail(20)
    assert "VCOMP-BOOT" not in refused.watch.log
