"""The ``initramfs`` output: the root as a newc cpio (compressed), with the kernel beside it."""

from __future__ import annotations

import shutil
from pathlib import Path

from composer.image.workshop import COMPRESSORS, Product, Target, Workshop

EXTENSION = COMPRESSORS["zstd"][0]  # with the default compression


def build(w: Workshop, t: Target, out: Path) -> Product:
    compression = str(t.options.get("compression", "zstd"))
    path = out / f"{t.name}{COMPRESSORS[compression][0]}"
    shutil.copyfile(w.initramfs(compression), path)
    kernel = out / f"{t.name}.vmlinuz"  # beside it, so it boots directly (-kernel -initrd)
    shutil.copyfile(w.kernel, kernel)
    return Product(name=t.name, type=t.type, files=(path, kernel), firmware=(),
                   boot={"media": "kernel", "cmdline": w.cmdline})
