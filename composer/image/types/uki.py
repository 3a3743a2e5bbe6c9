"""The ``uki`` output: a Unified Kernel Image (kernel, initramfs, command line on the systemd EFI stub)."""

from __future__ import annotations

import shutil
from pathlib import Path

from composer.image.workshop import BuiltOutput, OutputJob, Workshop

EXTENSION = ".efi"


def build(w: Workshop, t: OutputJob, out: Path) -> BuiltOutput:
    path = out / f"{t.name}{EXTENSION}"
    shutil.copyfile(w.uki(w.cmdline, t.name), path)
    return BuiltOutput(name=t.name, type=t.type, files=(path,), firmware=("uefi",), boot={"media": "uki"})
