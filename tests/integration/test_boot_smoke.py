"""The sample package set boots: a profile's initramfs output, built by `vcomp build` and booted by `vcomp boot`'s
code (composer.boot.session), per architecture, in QEMU (TCG).

A smoke test of the packages (kernel, drivers, busybox, base-files, init, nano and its libraries, hello) through
the same code paths as a user's build and boot: lock, fetch and verify, install, configure (init's modules,
capabilities and boot checks), the initramfs builder, the direct kernel boot and the console watch.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from composer.arch import DEFAULT_ARCHES, get_arch
from composer.boot.session import boots_of, run_boot
from composer.cli.main import main
from composer.compose.build import read_manifest
from tests.integration.conftest import copy_profiles
from tests.integration.images_fixture import with_cache

pytestmark = pytest.mark.integration

PROFILE = """\
name: smoke
description: The sample package set as an initramfs, booted directly (kernel + initrd), powering off.
architectures: [x86_64, aarch64, riscv64]
repositories:
  - name: sample
    url: ../images/repo
    root: trust/sample-root.json
packages: [base-files, busybox, init, nano, hello]
drivers: [virtio-blk]
kernel:
  package: linux
  cmdline: quiet panic=-1 vcomp.poweroff=1
init: init
hostname: smoke
outputs:
  - type: initramfs
    options: {compression: gzip}
boot-tests:
  - name: smoke
    timeout: 240
    checks:
      nano: nano --version | head -n 1
      virtio-blk: grep -q '^virtio_blk ' /proc/modules
      hello: hello | grep -q "built for $(uname -m), running on Linux $(uname -m)"
      must-fail: |-
        echo 'this check fails on purpose'
        exit 7
    expect:
      - "VCOMP-BOOT: init started"
      - "VCOMP-MODULE: ok virtio_blk"
      - "VCOMP-NET: disabled"
      - "VCOMP-CHECK: PASS 10-rootfs"
      - "VCOMP-CHECK: PASS 11-arch"
      - "VCOMP-CHECK: PASS 12-drivers"
      - "VCOMP-CHECK: PASS 13-root-mounted"
      - "VCOMP-CHECK: PASS 50-hello"
      - "VCOMP-CHECK: FAIL 50-must-fail (exit 7)"
      - "VCOMP-CHECK: PASS 50-nano"
      - "VCOMP-CHECK: PASS 50-virtio-blk"
      - "VCOMP-CHECKS: done pass=7 fail=1"
      - "VCOMP-BOOT: ready"
      - "VCOMP-BOOT: powering off"
"""


def _build(sample_repo_base: Path, base: Path) -> Path:
    """profiles/smoke.yaml locked and built (a cold cache of its own) as `vcomp lock` and `vcomp build` do."""
    profiles = copy_profiles(sample_repo_base, base)
    (profiles / "smoke.yaml").write_text(PROFILE)
    with with_cache(base / "cache"):
        assert main(["lock", str(profiles / "smoke.yaml")]) == 0
        assert main(["build", str(profiles / "smoke.yaml"), "--images", str(base / "images-out")]) == 0
    return base / "images-out" / "smoke"


@pytest.fixture(scope="module")
def smoke(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(sample_repo_base, tmp_path_factory.mktemp("smoke"))


@pytest.mark.parametrize("arch", [*DEFAULT_ARCHES, "riscv64"])   # riscv64: OpenSBI, then the kernel
def test_the_sample_set_boots_in_qemu(arch: str, smoke: Path, tmp_path: Path) -> None:
    if shutil.which(get_arch(arch).qemu) is None:
        pytest.fail(f"{get_arch(arch).qemu} is missing: run scripts/setup.sh")
    manifest = read_manifest(smoke / arch)
    assert boots_of(manifest) == [("initramfs", "none")], "vcomp test boots the initramfs directly"
    [case] = run_boot(manifest, smoke / arch, "initramfs", "", logs=tmp_path)
    log = case.watch.log
    assert case.missing == (), f"missing {case.missing}; console tail:\n{case.watch.tail(40)}"
    assert case.watch.failures == ("VCOMP-CHECK: FAIL 50-must-fail (exit 7)",), case.watch.tail(40)
    assert not case.passed, "a failing boot check fails the boot test"
    assert "    this check fails on purpose" in log, "a failing check's output is on the console"
    assert (tmp_path / f"{arch}-initramfs-none.log").read_text().strip() == log.strip()


def test_a_missing_marker_fails_the_boot(smoke: Path, tmp_path: Path) -> None:
    manifest = read_manifest(smoke / "aarch64")
    [case] = run_boot(manifest, smoke / "aarch64", "initramfs", "", logs=tmp_path,
                      expect=["VCOMP-BOOT: init started", "VCOMP-BOOT: powering off", "NEVER PRINTED"], timeout=240)
    assert not case.passed and case.missing == ("NEVER PRINTED",)
    assert not case.watch.timed_out, "the image powers off: the watch ends with QEMU, not at the timeout"


def test_a_missing_line_after_ready_fails_in_seconds_not_at_the_timeout(smoke: Path, tmp_path: Path) -> None:
    """Without vcomp.poweroff=1 init starts its shell after ready and QEMU runs on: the watch stops there
    (the verdict is certain), not at the 240 s timeout."""
    manifest = copy.deepcopy(read_manifest(smoke / "x86_64"))
    for o in manifest["outputs"]:
        o["boot"]["cmdline"] = o["boot"].get("cmdline", "").replace("vcomp.poweroff=1", "")
    [case] = run_boot(manifest, smoke / "x86_64", "initramfs", "", logs=tmp_path,
                      expect=["VCOMP-BOOT: init started", "NEVER PRINTED"], timeout=240)
    assert not case.passed and case.missing == ("NEVER PRINTED",)
    assert not case.watch.timed_out and case.watch.seconds < 200, case.watch.seconds
    assert case.watch.log.splitlines()[-1].startswith("VCOMP-BOOT: starting shell"), case.watch.tail(5)


def test_the_initramfs_is_reproducible(smoke: Path, sample_repo_base: Path,
                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    """The same lock gives the same initramfs bytes: built again elsewhere with a cold cache."""
    other = _build(sample_repo_base, tmp_path_factory.mktemp("elsewhere") / "deeper")
    for arch in DEFAULT_ARCHES:
        a, b = read_manifest(smoke / arch), read_manifest(other / arch)
        assert a["outputs"] == b["outputs"], f"{arch}: the initramfs differs between two builds"
