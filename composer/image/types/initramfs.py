"""The ``initramfs`` output: the root as a newc cpio (compressed), with the kernel beside it."""

from __future__ import annotations

import shutil
from pathlib import Path

from composer.image.workshop import COMPRESSORS, BuiltOutput, OutputJob, Workshop

EXTENSION = COMPRESSORS["zstd"][0]  # with the default compression


def build(w: Workshop, t: OutputJob, out: Path) -> BuiltOutput:
    compression = str(t.options.get("compression", "zstd"))
    path = out / f"{t.name}{COMPRESSORS[compression][0]}"
    shutil.copyfile(w.initramfs(compression), path)
    kernel = out / f"{t.name}.vmlinuz"  # beside it, so it boots directly (-kernel -initrd)
    shutil.copyfile(w.kernel, kernel)
    return BuiltOutput(name=t.name, type=t.type, files=(path, kernel), firmware=(),
                   boot={"media": "kernel", "cmdline": w.cmdline})
