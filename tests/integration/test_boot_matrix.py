"""`make test-boot-matrix`: every cell of the boot matrix, booted by one `vcomp test` run (issue 16 item 7).

profiles/minimal.yaml is built once (tests/integration/images_fixture.py, the images `make test` shares) for
x86_64, aarch64 and riscv64; `vcomp test` then boots every cell its outputs support, ARCH/OUTPUT/MEDIUM/FIRMWARE
(composer/boot/matrix.py), writes the JUnit (VCOMP_BOOT_MATRIX_OUT/junit.xml, else the test's temporary
directory) and this test prints the table: cell, result, seconds. Not in `make test` (minutes of TCG on two
cores); the cheap cells are in tests/integration/test_images.py::test_boot.
"""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from composer.cli.main import main
from tests.integration.images_fixture import IMAGES, Built, with_cache

pytestmark = [pytest.mark.integration, pytest.mark.boot_matrix, IMAGES]

# The matrix of the issue, as profiles/minimal.yaml builds it (riscv64's UKI is not booted directly: OpenSBI
# jumps to the first byte of its payload, and a systemd-stub PE starts "MZ" then zeros, not a RISC-V Image
# header; the UKI boots through U-Boot's UEFI in riscv64/disk/disk/uefi).
MATRIX = ("x86_64/iso/cdrom/bios", "x86_64/iso/cdrom/uefi", "x86_64/iso/disk/bios", "x86_64/iso/disk/uefi",
          "x86_64/disk/disk/bios", "x86_64/disk/disk/uefi", "aarch64/iso/cdrom/uefi", "aarch64/disk/disk/uefi",
          "riscv64/disk/disk/uefi", "riscv64/initramfs/kernel/none")


def rows(junit: Path) -> list[tuple[str, str, str, float]]:
    """(cell, test, PASS/FAIL, seconds) of each test case of a `vcomp test` JUnit file, in order."""
    out = []
    for tc in ET.parse(junit).getroot().iter("testcase"):
        cell = "/".join((tc.get("classname") or "").split(".")[-4:])
        result = "FAIL" if tc.find("failure") is not None else "PASS"
        out.append((cell, tc.get("name") or "", result, float(tc.get("time") or 0)))
    return out


def test_every_cell_of_the_matrix_boots(minimal_built: Built, tmp_path: Path) -> None:
    out = Path(os.environ.get("VCOMP_BOOT_MATRIX_OUT") or tmp_path).absolute()
    out.mkdir(parents=True, exist_ok=True)
    junit = out / "junit.xml"
    started = time.monotonic()
    with with_cache(minimal_built.base / "cache"):  # the outputs come from the shared build's cache
        code = main(["test", str(minimal_built.profiles / "minimal.yaml"), "--images", str(minimal_built.images),
                     "--junit", str(junit)])
    wall = time.monotonic() - started
    found = rows(junit)
    width = max(len(c) for c, *_ in found)
    print(f"\nboot matrix of profiles/minimal.yaml ({len(found)} cells, {wall:.0f} s wall clock; JUnit {junit})")
    print(f"{'cell':<{width}}  result  seconds")
    for cell, _test, result, seconds in found:
        print(f"{cell:<{width}}  {result:<6}  {seconds:7.1f}")
    assert tuple(c for c, *_ in found) == MATRIX, "the matrix's cells changed"
    failed = [c for c, _t, r, _s in found if r != "PASS"]
    assert code == 0 and not failed, f"cells failed: {failed} (console logs: {minimal_built.images}/minimal/*/boot)"
