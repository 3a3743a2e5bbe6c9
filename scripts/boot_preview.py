"""Boot the sample package set in QEMU: a preview of the image stage, used by `make demo` and the tests.

usage: python scripts/boot_preview.py PACKAGES_DIR ARCH TRUSTED_KEY.pub WORKDIR
       python scripts/boot_preview.py --repo URL --root ROOT.json ARCH TRUSTED_KEY.pub WORKDIR
With --repo the packages are fetched and verified through the repository client (TUF) first.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path

from composer.arch import get_arch
from composer.boot.qemu import BootResult, boot, direct_kernel_command
from composer.image.initramfs import assemble_root, write_initramfs
from composer.package.archive import read_header
from composer.package.extract import extract_package
from composer.trust.keys import PublicKey, load_public_key

EPOCH = 1700000000
ROOT_PACKAGES = ("base-files", "busybox", "init", "driver-virtio", "driver-virtio-blk", "libc6", "libtinfo6",
                 "libncursesw6", "ncurses-base", "nano", "hello")
CHECKS = {
    "20-nano": "#!/bin/sh\nnano --version | head -n 1\n",
    "30-virtio-blk": "#!/bin/sh\ngrep -q '^virtio_blk ' /proc/modules\n",
    "35-hello": "#!/bin/sh\nhello | grep -q \"built for $(uname -m), running on Linux $(uname -m)\"\n",
}
EXPECTED = ["VCOMP-BOOT: init started", "VCOMP-MODULE: ok virtio_blk", "VCOMP-NET: disabled",
            "VCOMP-CHECK: PASS 10-rootfs", "VCOMP-CHECK: PASS 20-nano", "VCOMP-CHECK: PASS 30-virtio-blk",
            "VCOMP-CHECK: PASS 35-hello", "VCOMP-CHECKS: done pass=4 fail=0", "VCOMP-BOOT: ready",
            "VCOMP-BOOT: powering off"]


def packages_by_name(directory: Path) -> dict[str, Path]:
    return {read_header(p).metadata.name: p for p in sorted(directory.glob("*.vpk"))}


def build_initramfs(pkgs: Mapping[str, Path], work: Path, trusted: PublicKey,
                    checks: Mapping[str, str] = CHECKS) -> tuple[Path, Path]:
    root, kernel_root = work / "root", work / "kernel"
    assemble_root([pkgs[n] for n in ROOT_PACKAGES], root, trusted=trusted, checks=checks)
    write_initramfs(root, work / "initrd.cpio", epoch=EPOCH)
    kernel_root.mkdir(parents=True)
    extract_package(pkgs["linux"], kernel_root, trusted=trusted)
    return kernel_root / "boot" / "vmlinuz", work / "initrd.cpio"


def preview(packages: Path, arch_name: str, trusted: PublicKey, work: Path,
            checks: Mapping[str, str] = CHECKS, expected: list[str] = EXPECTED) -> BootResult:
    kernel, initrd = build_initramfs(packages_by_name(packages), work, trusted, checks)
    cmd = direct_kernel_command(get_arch(arch_name), kernel, initrd, "quiet panic=-1 vcomp.poweroff=1")
    return boot(cmd, expected, timeout=300)


def fetch_from_repo(url: str, root: Path, arch: str, out: Path) -> Path:
    """Fetch the packages the preview needs through the verifying repository client."""
    from composer.package.build import default_cache
    from composer.repo.client import RepositoryClient, load_trusted_root
    client = RepositoryClient(url, load_trusted_root(root), default_cache() / "repos")
    for name in (*ROOT_PACKAGES, "linux"):
        client.fetch(client.metadata(name, arch), out)
    return out


def main() -> int:
    args = sys.argv[1:]
    if args[0] == "--repo":
        url, root = args[1], Path(args[3])
        arch, key, work = args[4], load_public_key(Path(args[5])), Path(args[6])
        packages = fetch_from_repo(url, root, arch, work / "fetched")
        print(f"   fetched and verified {len(list(packages.glob('*.vpk')))} packages from {url}")
    else:
        packages, arch, key, work = Path(args[0]), args[1], load_public_key(Path(args[2])), Path(args[3])
    start = time.monotonic()
    result = preview(packages, arch, key, work)
    (work / "console.log").write_text(result.log)
    for line in result.log.splitlines():
        if line.startswith(("VCOMP-", "    GNU nano")):
            print(f"   {line}")
    status = "PASS" if result.passed else f"FAIL (missing: {', '.join(result.missing)})"
    print(f"   {arch}: boot {status} in {time.monotonic() - start:.1f} s; console log: {work / 'console.log'}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
