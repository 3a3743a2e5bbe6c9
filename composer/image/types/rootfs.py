"""The ``rootfs`` output: the root file system as a tar."""

from __future__ import annotations

from pathlib import Path

from composer.image.formats import fs
from composer.image.workshop import BuiltOutput, OutputJob, Workshop

EXTENSION = ".tar"


def build(w: Workshop, t: OutputJob, out: Path) -> BuiltOutput:
    path = out / f"{t.name}{EXTENSION}"
    fs.make_tar(w.root, path, epoch=w.epoch)
    return BuiltOutput(name=t.name, type=t.type, files=(path,), firmware=())
