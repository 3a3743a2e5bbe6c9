"""The ``esp`` output: an EFI system partition image (FAT) holding the UKI as the default boot entry."""

from __future__ import annotations

import shutil
from pathlib import Path

from composer.image.workshop import BuiltOutput, OutputJob, Workshop

EXTENSION = ".fat"


def build(w: Workshop, t: OutputJob, out: Path) -> BuiltOutput:
    path = out / f"{t.name}{EXTENSION}"
    shutil.copyfile(w.esp(w.cmdline, t.name), path)
    return BuiltOutput(name=t.name, type=t.type, files=(path,), firmware=("uefi",),
                       boot={"media": "disk", "format": "raw"})
