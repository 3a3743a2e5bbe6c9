"""BIOS boot of a GPT disk (composer/image/formats/syslinux.py): the host's syslinux installs into a FAT image
file, rootless, and the result is the same bytes in any directory at any time; write-reopen-check of what it
wrote (boot sector code over the kept BPB, ldlinux.sys hidden and dated from the epoch). The boot itself is
tests/integration/test_images.py's x86_64-disk-disk-bios."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from composer.errors import UserError
from composer.image.formats import fat, syslinux
from composer.image.formats.fat import MTOOLS_ENV
from composer.run import run

pytestmark = pytest.mark.integration
EPOCH = 1700000000


def _esp(where: Path) -> Path:
    where.mkdir(parents=True)
    (where / "vmlinuz").write_bytes(b"k" * 100_000)
    (where / "syslinux.cfg").write_text(syslinux.boot_config("quiet console=ttyS0"))
    image = where / "esp.fat"
    fat.make_fat(image, {"boot/vmlinuz": where / "vmlinuz", syslinux.CONFIG: where / "syslinux.cfg"}, epoch=EPOCH,
                 volume_id=0x1234ABCD, reserve=syslinux.LDLINUX_SYS_RESERVE)
    syslinux.install(image, epoch=EPOCH)
    return image


@pytest.mark.skipif(shutil.which("syslinux") is None, reason="syslinux is not installed (apt-get install syslinux)")
def test_install_is_rootless_and_reproducible(tmp_path: Path) -> None:
    a = _esp(tmp_path / "a")
    b = _esp(tmp_path / "b" / "deeper")
    assert a.read_bytes() == b.read_bytes(), "two installs of the same FAT differ"
    data = a.read_bytes()
    assert data[510:512] == b"\x55\xaa" and b"SYSLINUX" in data[:512], "syslinux's boot sector"
    assert int.from_bytes(data[39:43], "little") == 0x1234ABCD, "the volume id (BPB) is kept"
    env = {**MTOOLS_ENV, "TZ": "UTC", "HOME": str(tmp_path)}
    listing = run(["mdir", "-a", "-i", a, "::/"], env=env, clean_env=True).stdout.decode()
    line = next(x for x in listing.splitlines() if x.lower().startswith("ldlinux  sys"))
    assert "2023-11-14" in line, f"ldlinux.sys dated from the epoch: {line}"
    run(["fsck.fat", "-n", a], env=env, clean_env=True)


def test_config_and_mbr_code_are_checked() -> None:
    with pytest.raises(UserError, match="line break"):
        syslinux.boot_config("quiet\nDEFAULT evil")
    assert "APPEND quiet" in syslinux.boot_config("quiet")
    with pytest.raises(UserError, match="gptmbr: 512 bytes, not the 440"):
        syslinux.check_gptmbr(bytes(512), where="gptmbr")
    assert syslinux.check_gptmbr(bytes(440), where="gptmbr") == bytes(440)
