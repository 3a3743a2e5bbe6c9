"""A profile's sysroot for gdb: its locked packages of one architecture installed into a fresh root, as the
build installs them, kept in the cache by the lock's digest (``vcomp debug core --profile P``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from composer.errors import UserError
from composer.fsutil import ensure_dir
from composer.pkgmgr.install import fetch_locked, install, locked_packages
from composer.solve.relock import load_locked

COMPLETE = ".vcomp-sysroot-complete"


def profile_sysroot(profile_path: Path, arch: str, cache: Path, say: Callable[[str], None] = lambda _m: None) -> Path:
    """The installed root of ``profile_path``'s lock for ``arch`` (made once per lock digest)."""
    profile, lock, digest, sources = load_locked(profile_path)
    if arch not in profile.architectures:
        raise UserError(f"{arch} is not an architecture of {profile_path}",
                        hint=f"architectures: {', '.join(profile.architectures)}")
    dest = cache / "sysroots" / f"{profile.name}-{arch}-{digest[:16]}"
    if (dest / COMPLETE).is_file():
        return dest
    ensure_dir(dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        packages = locked_packages(lock, arch)
        say(f"{arch}: installing {len(packages)} locked packages into the sysroot {dest}")
        install(tmp / "root", fetch_locked(sources, packages, arch), profile_digest=profile.digest,
                lock_digest=digest, epoch=0)
        (tmp / "root" / COMPLETE).write_text(f"{profile_path} {arch} {digest}\n")
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp / "root", dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
