"""Writing the update bundle an A/B disk output puts beside the disk (``NAME.bundle/``: bundle.json and root.img,
verity.img, uki-a.efi, uki-b.efi), which ``vcomp release`` publishes as a generation of a channel. The document and
its checks are :class:`composer.update.channel.Bundle` (contract17.md, docs/updates/ab-slots.md); this is the edge
that writes one.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from composer.fsutil import atomic_write, sha256_file
from composer.update.channel import BUNDLE_JSON, ROLES, Bundle, BundleFile

FILE_NAMES = {"root": "root.img", "verity": "verity.img", "uki-a": "uki-a.efi", "uki-b": "uki-b.efi"}


def write_bundle(directory: Path, *, profile: str, arch: str, output: str, slot_size: int, roothash: str | None,
                 sources: Mapping[str, Path]) -> Bundle:
    """Copy ``sources`` (role -> file) into ``directory`` (made anew) under their fixed names, write bundle.json."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    files = []
    for role in (r for r in ROLES if r in sources):
        dest = directory / FILE_NAMES[role]
        shutil.copyfile(sources[role], dest)
        files.append(BundleFile(role=role, path=dest.name, sha256=sha256_file(dest), size=dest.stat().st_size))
    bundle = Bundle(profile=profile, arch=arch, output=output, slot_size=slot_size, roothash=roothash,
                    files=tuple(files))
    data = bundle.to_bytes()
    Bundle.from_bytes(data, str(directory / BUNDLE_JSON))   # what is written can be read: a bad name fails here
    atomic_write(directory / BUNDLE_JSON, data)
    return bundle
