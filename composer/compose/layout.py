"""The images directory of one profile: whole-build generations switched by one rename, under one lock.

::

    images/NAME/.lock                 exclusive lock (build, test, reconcile, apply)
    images/NAME/.gen/ID/ARCH/...      a generation: a build writes a whole new one, every architecture
    images/NAME/current -> .gen/ID    THE switch: replaced with rename(2), all architectures at once
    images/NAME/ARCH -> current/ARCH  stable paths for users, boot, diff and history
    images/NAME/generations/          reconcile's records (composer.gitops.generations)

A killed build leaves at most a generation that ``current`` does not name; the next build (under the
lock) removes it, along with the ``.ARCH.staging-*`` / ``.ARCH.old-*`` directories of the format
before generations (an ``.ARCH.old-*`` whose ``ARCH`` is missing is renamed back first). An
``ARCH`` (or ``current``) that is still a real directory is first adopted into a generation of the
same outputs, each name swapped for its symlink with ``renameat2(RENAME_EXCHANGE)``: never missing,
never mixed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from composer import lockfile

LOCK = ".lock"
GENS = ".gen"
CURRENT = "current"
MANIFEST = "manifest.json"
LICENSE_TEXTS = "license-texts.json"   # licences.texts: the licence files vcomp added (compose/licensetexts.py)
CONTENTS = "contents.json"  # every installed package with its files (for vcomp diff)
NOT_ARCHES = frozenset({CURRENT, "generations", "junit.xml"})
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@contextlib.contextmanager
def locked(images: Path, name: str) -> Iterator[Path]:
    """Hold the lock of ``images/NAME``; yields that directory."""
    top = images / name
    with lockfile.exclusive(top / LOCK, f"images directory {top}"):
        yield top


def built_arches(top: Path) -> list[str]:
    """The architectures with a built directory (a manifest) under ``top``, by name."""
    if not top.is_dir():
        return []
    return sorted(p.name for p in top.iterdir()
                  if not p.name.startswith(".") and p.name not in NOT_ARCHES and (p / MANIFEST).is_file())


def current_generation(top: Path) -> Path | None:
    link = top / CURRENT
    if not link.is_symlink():
        return None
    target = os.readlink(link)
    head, _, gid = target.partition("/")
    if head != GENS or not gid or "/" in gid or gid in (".", ".."):
        return None
    return top / GENS / gid


def _make_generation(top: Path, suffix: str = "") -> Path:
    gen = top / GENS / f"{time.time_ns():016x}-{os.getpid()}{suffix}"
    gen.mkdir(parents=True)
    gen.chmod(0o755)
    return gen


def new_generation(top: Path) -> Path:
    """Clean what killed builds left, adopt an old layout, then make an empty generation directory."""
    recover(top)
    adopt(top)
    return _make_generation(top)


def adopt(top: Path) -> None:
    """Turn the layout before generations (real ``ARCH`` or ``current`` directories) into a generation of
    the *same* outputs, one name at a time: each step shows the same content, so a kill in between is
    harmless, and the build's own switch stays one rename for every architecture."""
    arches = built_arches(top)
    real = [a for a in arches if not (top / a).is_symlink()]
    if not real and current_generation(top) is not None:
        return
    if not arches:
        return
    adopted = _make_generation(top, "-adopted")
    for arch in arches:
        carry_tree(top / arch, adopted / arch)
    sync_tree(adopted)
    point(top, CURRENT, f"{GENS}/{adopted.name}")
    for arch in arches:
        if not (top / arch).is_symlink() or os.readlink(top / arch) != f"{CURRENT}/{arch}":
            point(top, arch, f"{CURRENT}/{arch}")
    recover(top)


def carry_tree(src: Path, dst: Path) -> None:
    """Copy a previous architecture's directory into a new generation: hard links for outputs (never
    written in place by vcomp), copies for anything that could be rewritten (boot logs)."""
    def link_or_copy(a: str, b: str) -> None:
        if Path(a).parent.name == "boot":
            shutil.copy2(a, b)
            return
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)
    shutil.copytree(src, dst, symlinks=True, copy_function=link_or_copy)


def exchange(a: Path, b: Path) -> None:
    """Swap two names atomically (renameat2 RENAME_EXCHANGE)."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", str(a))
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a), None, str(b))


def point(top: Path, name: str, target: str) -> None:
    """Make ``top/name`` the symlink ``target`` in one step, whatever stands there now."""
    tmp = top / f".{name}.link-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        _remove(tmp)
    os.symlink(target, tmp)
    dest = top / name
    if dest.is_dir() and not dest.is_symlink():
        try:
            exchange(tmp, dest)            # tmp now holds the old directory
        except OSError as exc:
            if exc.errno not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            aside = top / f".{name}.old-{os.getpid()}"
            dest.rename(aside)             # recover() renames it back if killed right here
            tmp.rename(dest)
            tmp = aside
        _remove(tmp)
    else:
        os.replace(tmp, dest)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def sync_tree(top: Path) -> None:
    """fsync every file and directory of a generation before it becomes current."""
    for dirpath, _dirs, files in os.walk(top):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def switch(top: Path, gen: Path) -> None:
    """Make ``gen`` current (one rename), link any new architecture, then drop the old generations."""
    sync_tree(gen)
    point(top, CURRENT, f"{GENS}/{gen.name}")
    for arch in sorted(p.name for p in gen.iterdir() if p.is_dir()):
        link = top / arch
        if not (link.is_symlink() and os.readlink(link) == f"{CURRENT}/{arch}"):
            point(top, arch, f"{CURRENT}/{arch}")
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    recover(top)


def recover(top: Path) -> None:
    """Under the lock: undo or remove what killed builds left (see the module docstring)."""
    if not top.is_dir():
        return
    current = current_generation(top)
    for aside in sorted(top.glob(".*.old-*")):
        name = aside.name[1:].rsplit(".old-", 1)[0]
        missing = bool(name) and not (top / name).exists() and not (top / name).is_symlink()
        if missing and not (current is not None and (current / name).is_dir()):
            aside.rename(top / name)       # the old outputs were only here: put them back
        else:
            _remove(aside)
    for leftover in [*top.glob(".*.staging-*"), *top.glob(".*.link-*")]:
        _remove(leftover)
    gens = top / GENS
    if gens.is_dir():
        for gen in gens.iterdir():
            if gen != current:
                _remove(gen)
    if current is not None and current.is_dir():
        for arch in sorted(p.name for p in current.iterdir() if p.is_dir()):
            if not (top / arch).exists() and not (top / arch).is_symlink():
                point(top, arch, f"{CURRENT}/{arch}")
