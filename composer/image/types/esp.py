"""The ``esp`` output: an EFI system partition image (FAT) holding the UKI as the default boot entry."""

from __future__ import annotations

import shutil
from pathlib import Path

from composer.image.workshop import Product, Target, Workshop

EXTENSION = ".fat"


def build(w: Workshop, t: Target, out: Path) -> Product:
    path = out / f"{t.name}{EXTENSION}"
    shutil.copyfile(w.esp(w.cmdline, t.name), path)
    return Product(name=t.name, type=t.type, files=(path,), firmware=("uefi",), boot={"media": "disk", "format": "raw"})
