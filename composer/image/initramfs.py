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
from composer.image.cpio import CpioEntry, entries_from_tree, write_cpio
from composer.package.archive import read_header
from composer.package.extract import extract_package
from composer.trust.keys import PublicKey

DEVICES = (CpioEntry(path="dev/console", mode=stat.S_IFCHR | 0o600, rdev=(5, 1)),
           CpioEntry(path="dev/null", mode=stat.S_IFCHR | 0o666, rdev=(1, 3)))


def assemble_root(packages: Sequence[Path], root: Path, *, trusted: PublicKey | None,
                  checks: Mapping[str, str] = {}, capabilities: Sequence[str] = ()) -> None:
    """Extract ``packages`` into ``root`` and write init's configuration (modules from driver packages)."""
    root.mkdir(parents=True, exist_ok=True)
    modules: list[str] = []
    for pkg in packages:
        extract_package(pkg, root, trusted=trusted)
        modules += read_header(pkg).metadata.driver.get("modules", [])
    conf = root / "etc" / "veridian"
    (conf / "checks.d").mkdir(parents=True, exist_ok=True)
    (conf / "modules.load").write_text("".join(f"{m}\n" for m in modules))
    (conf / "capabilities").write_text("".join(f"{c}\n" for c in sorted(capabilities)))
    for name, body in sorted(checks.items()):
        p = conf / "checks.d" / name
        p.write_text(body)
        p.chmod(0o755)


def write_initramfs(root: Path, out: Path, *, epoch: int) -> int:
    with atomic_output(out) as f:
        return write_cpio(entries_from_tree(root, devices=DEVICES), f, epoch)
