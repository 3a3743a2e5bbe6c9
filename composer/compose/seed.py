"""The digests of a build: its inputs (the id seed and the cache key) and each output's cache key.

The id seed (UUIDs, volume ids inside images) follows the content only: the profile, its overlay, the locked
packages, the architecture and SOURCE_DATE_EPOCH. The cache key adds the host tools' versions and the digest of
vcomp's whole code (:func:`code_digest`), so the cache never returns outputs of older code.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from composer.errors import ToolError
from composer.fsutil import canonical_json
from composer.image.outputs import OUTPUT_TYPES
from composer.image.workshop import OutputJob
from composer.pkgmgr.install import locked_packages
from composer.profile.model import Profile
from composer.run import run
from composer.solve.lockmodel import Lock

BUILD_REVISION = 1

VERSION_COMMANDS: Mapping[str, tuple[str, ...]] = {
    "mke2fs": ("mke2fs", "-V"), "mkfs.fat": ("mkfs.fat", "--help"), "mtools": ("mcopy", "--version"),
    "qemu-img": ("qemu-img", "--version"), "mkfs.erofs": ("mkfs.erofs", "--help"),
    "mksquashfs": ("mksquashfs", "-version"), "syslinux": ("syslinux", "--version"),
}


def tool_versions() -> dict[str, str]:
    out = {}
    for name, cmd in sorted(VERSION_COMMANDS.items()):
        try:
            r = run(cmd, check=False)
        except ToolError:
            out[name] = "missing"
            continue
        text = (r.stdout + r.stderr).decode(errors="replace").strip().splitlines()
        out[name] = next((line.strip() for line in text if any(c.isdigit() for c in line)), "unknown")
    from importlib.metadata import version

    import pycdlib  # noqa: F401  (its version decides ISO bytes too)
    out["pycdlib"] = version("pycdlib")
    return out


def tree_digest(path: Path) -> str:
    """sha256 over the relative paths, modes and contents of a directory (the profile's overlay).

    Never follows a symlink: os.walk does not descend into one, and a symlink (to a file or a directory) is
    hashed as its target text, as the overlay copy writes it."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        links = [d for d in dirnames if (Path(dirpath) / d).is_symlink()]
        for name in sorted([*filenames, *links]):
            full = Path(dirpath) / name
            rel = full.relative_to(path).as_posix()
            body = os.readlink(full).encode() if full.is_symlink() else full.read_bytes()
            h.update(f"{rel}\0{full.lstat().st_mode:o}\0{len(body)}\0".encode() + body)
    return h.hexdigest()


COMPOSER = Path(__file__).resolve().parents[1]


def code_files() -> list[Path]:
    """Every source of the composer package (and the schemas beside it when installed from a checkout):
    the extractor, the database writer, ``arch.py``... all change outputs, not only ``image/``."""
    files = sorted(COMPOSER.rglob("*.py"))
    schemas = COMPOSER.parent / "schemas"
    return files + (sorted(schemas.glob("*.json")) if schemas.is_dir() else [])


def code_digest() -> str:
    """sha256 of vcomp's own sources: any change to the code that makes images invalidates the cache (the
    ids inside images do not depend on it: outputs stay bit-identical across versions that make them so)."""
    h = hashlib.sha256()
    for path in code_files():
        h.update(path.relative_to(COMPOSER.parent).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def build_seed(profile: Profile, lock: Lock, arch: str, epoch: int,
               tools: Mapping[str, str] | None = None, lock_digest: str = "") -> str:
    """The digest of a build's inputs. Without ``tools`` it is the id seed (UUIDs, volume ids: they
    follow the content only); with them, and this package's code, it keys the cache, and so does the lock
    file's digest (``lock_digest``), which the root's package database records."""
    overlay = profile.files
    inputs = {"revision": BUILD_REVISION, "arch": arch, "profile": profile.digest, "epoch": epoch,
              "tools": None if tools is None else {**tools, "vcomp-image-code": code_digest()},
              **({"lock": lock_digest} if lock_digest else {}),
              "overlay": tree_digest(profile.path.parent / overlay) if overlay else None,
              "packages": [[p.name, p.version, p.sha256] for p in locked_packages(lock, arch)]}
    return hashlib.sha256(canonical_json(inputs)).hexdigest()


def output_key(seed: str, t: OutputJob) -> str:
    """The cache key of one output: the build's seed and the output's job; for a plugin's output type also the
    plugin's distribution and version (its code is not in the seed's code digest); for a type with an external
    backend its version (dib: diskimage-builder's)."""
    spec: dict[str, object] = {"seed": seed, "name": t.name, "type": t.type, "options": dict(t.options),
                               "firmware": list(t.firmware)}
    plugin = OUTPUT_TYPES.origin(t.type)
    if plugin is not None:
        spec["plugin"] = [plugin.distribution, plugin.version, plugin.target]
    kind = OUTPUT_TYPES.get(t.type)
    if kind is not None and kind.backend is not None:
        spec["backend"] = kind.backend()
    return hashlib.sha256(canonical_json(spec)).hexdigest()
