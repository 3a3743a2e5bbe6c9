"""The ``rootfs`` output: the root file system as a tar."""

from __future__ import annotations

from pathlib import Path

from composer.image.formats import fs
from composer.image.workshop import Product, Target, Workshop

EXTENSION = ".tar"


def build(w: Workshop, t: Target, out: Path) -> Product:
    path = out / f"{t.name}{EXTENSION}"
    fs.make_tar(w.root, path, epoch=w.epoch)
    return Product(name=t.name, type=t.type, files=(path,), firmware=())
