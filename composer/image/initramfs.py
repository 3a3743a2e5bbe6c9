"""An initramfs straight from packages (a preview of the image stage): extract, configure, pack.

Packages are verified and extracted with the safe extractor; the init configuration files
(modules to load, boot checks, power-off) are written; the tree is packed as a newc cpio with
the console and null device nodes, deterministically.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from composer.fsutil import atomic_output
from composer.image.formats.cpio import CpioEntry, entries_from_tree, write_cpio
from composer.package.archive import read_header
from composer.package.extract import extract_package
from composer.rootfs import Root
from composer.trust.keys import PublicKey

DEVICES = (CpioEntry(path="dev/console", mode=stat.S_IFCHR | 0o600, rdev=(5, 1)),
           CpioEntry(path="dev/null", mode=stat.S_IFCHR | 0o666, rdev=(1, 3)))


def assemble_root(packages: Sequence[Path], root: Path, *, trusted: PublicKey | None,
                  checks: Mapping[str, str] = {}, capabilities: Sequence[str] = ()) -> None:
    """Extract ``packages`` into ``root`` and write init's configuration (modules from driver packages)."""
    modules: list[str] = []
    with Root.open(root, create=True) as tree:
        for pkg in packages:
            extract_package(pkg, tree, trusted=trusted)
            modules += read_header(pkg).metadata.driver.get("modules", [])
        tree.makedirs("etc/veridian/checks.d")
        tree.write_text("etc/veridian/modules.load", "".join(f"{m}\n" for m in modules))
        tree.write_text("etc/veridian/capabilities", "".join(f"{c}\n" for c in sorted(capabilities)))
        for name, body in sorted(checks.items()):
            tree.write_text(f"etc/veridian/checks.d/{name}", body, mode=0o755)


def write_initramfs(root: Path, out: Path, *, epoch: int) -> int:
    with atomic_output(out) as f:
        return write_cpio(entries_from_tree(root, devices=DEVICES), f, epoch)
