"""The ``tarball`` output type: the installed root as a deterministic ``.tar.zst`` with numeric owners.

A vcomp plugin (plugin API version 1, docs/plugins.md): registered by the ``vcomp.outputs`` entry point of
this distribution only; it imports nothing of vcomp but :mod:`composer.plugins.api`.

The archive: POSIX (pax) tar, entries in byte order of their paths ("./" first, then depth first), owners
written as numbers only (uid/gid from the root, no user or group names), every mtime the build's epoch
(SOURCE_DATE_EPOCH), no atime/ctime, compressed by zstd at a fixed level in one thread: the same root gives
the same bytes. Option ``level`` (1-19, default 19) sets the zstd level.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import zstandard

from composer.plugins import api

EXTENSION = ".tar.zst"
DEFAULT_LEVEL = 19


def entries(root: Path) -> Iterator[tuple[str, Path]]:
    """(archive name, path) of every entry under ``root``: "." first, then depth first in byte order."""
    yield ".", root
    names = sorted(os.listdir(root), key=os.fsencode)
    for name in names:
        path = root / name
        if path.is_dir() and not path.is_symlink():
            for sub, subpath in entries(path):
                yield f"{name}/{sub}" if sub != "." else name, subpath
        else:
            yield name, path


def tar_info(name: str, path: Path, epoch: int) -> tarfile.TarInfo:
    """The header of one entry: numeric owners, the epoch as mtime, the permission bits of the file."""
    st = path.lstat()
    info = tarfile.TarInfo("./" if name == "." else f"./{name}")
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid, info.uname, info.gname = st.st_uid, st.st_gid, "", ""
    info.mtime = epoch
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
    else:
        raise api.UserError(f"{path}: a special file (device, fifo or socket) in the root cannot go into a tarball",
                            hint="remove it from the package that installs it, or use the rootfs output")
    return info


def write(root: Path, out: Path, *, epoch: int, level: int) -> None:
    """``root`` as a .tar.zst at ``out`` (written through a temporary file, renamed on success)."""
    compressor = zstandard.ZstdCompressor(level=level, threads=0, write_checksum=True)
    with api.atomic_output(out) as f, compressor.stream_writer(f, closefd=False) as z, \
            tarfile.open(fileobj=z, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for name, path in entries(root):
            info = tar_info(name, path, epoch)
            if info.type == tarfile.REGTYPE:
                with path.open("rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)


def build(w: api.Workshop, job: api.OutputJob, out: Path) -> api.BuiltOutput:
    """The builder of the output type: one file, OUT/NAME.tar.zst."""
    path = out / f"{job.name}{EXTENSION}"
    write(w.root, path, epoch=w.epoch, level=int(job.options.get("level", DEFAULT_LEVEL)))
    return api.BuiltOutput(name=job.name, type=job.type, files=(path,), firmware=())


TARBALL = api.OutputType(
    name="tarball",
    description="the root file system as a deterministic .tar.zst (numeric owners; plugin vcomp-output-tar)",
    arches=frozenset(api.ARCH_NAMES),
    firmware={},
    options={"level": {"type": "integer", "minimum": 1, "maximum": 19, "default": DEFAULT_LEVEL,
                       "description": "the zstd compression level"}},
    builder=build,
    extension=EXTENSION,
)

PLUGIN = api.Plugin(api_version=1, row=TARBALL)
