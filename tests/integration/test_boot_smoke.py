"""The sample package set boots: packages -> safe extraction -> initramfs -> QEMU (TCG), per arch.

A smoke test of the packages (kernel, drivers, busybox, base-files, init, nano and its libraries)
through scripts/boot_preview.py, the same code `make demo` runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from composer.arch import get_arch
from composer.package.build import Built
from composer.trust.keys import SigningKey
from tests.conftest import REPO
from tests.integration.conftest import sample_set

pytestmark = pytest.mark.integration


def _preview_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("boot_preview", REPO / "scripts" / "boot_preview.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["boot_preview"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_sample_set_boots_in_qemu(arch: str, sample_key: SigningKey, sample_sets: dict[str, tuple[Path, dict[str,
                                  Built]]], tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    if shutil.which(get_arch(arch).qemu) is None:
        pytest.fail(f"{get_arch(arch).qemu} is missing: run scripts/setup.sh")
    bp = _preview_module()
    out, _ = sample_set(arch, sample_sets, sample_key, tmp_path_factory)
    checks = {**bp.CHECKS, "40-must-fail": "#!/bin/sh\necho 'this check fails on purpose'\nexit 7\n"}
    expected = [*bp.EXPECTED[:7], "VCOMP-CHECK: FAIL 40-must-fail (exit 7)", "VCOMP-CHECKS: done pass=4 fail=1",
                *bp.EXPECTED[8:]]
    result = bp.preview(out, arch, sample_key.public, tmp_path / "a", checks=checks, expected=expected)
    (tmp_path / "console.log").write_text(result.log)
    assert result.missing == (), f"missing {result.missing}; console tail:\n{result.tail()}"
    assert "this check fails on purpose" in result.log
    assert result.returncode == 0
    # deterministic: the same packages give the same initramfs bytes
    bp.build_initramfs(bp.packages_by_name(out), tmp_path / "b", sample_key.public, checks)
    digest = [hashlib.sha256((tmp_path / d / "initrd.cpio").read_bytes()).hexdigest() for d in ("a", "b")]
    assert digest[0] == digest[1]


def test_a_missing_marker_fails_the_boot(sample_key: SigningKey, sample_sets: dict[str, tuple[Path, dict[str,
                                         Built]]], tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    bp = _preview_module()
    out, _ = sample_set("aarch64", sample_sets, sample_key, tmp_path_factory)
    result = bp.preview(out, "aarch64", sample_key.public, tmp_path, expected=[*bp.EXPECTED, "NEVER PRINTED"])
    assert not result.passed and result.missing == ("NEVER PRINTED",)
