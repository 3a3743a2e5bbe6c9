"""The guest kernel's symbols for gdb: the vmlinux with DWARF from Debian's ``linux-image-RELEASE-dbg``.

The profile's kernel (recipes/linux) is Debian's ``linux-image-RELEASE``; Debian ships its unstripped vmlinux
as ``usr/lib/debug/boot/vmlinux-RELEASE`` in ``linux-image-RELEASE-dbg`` (about 1 GB compressed for amd64:
the vmlinux and the debug files of every module). Debian's own ``/boot/System.map`` is a stub pointing there,
so this package is the one source of kernel symbols. It is fetched once with apt (the Debian cache of the
composer; 40 s here) and only the vmlinux is kept, in ``$VCOMP_CACHE/debug-kernels/RELEASE/vmlinux`` (360 MB
for 6.12.118+deb13-amd64; the .deb is removed once it is read).

The release is read from the profile's sysroot (the linux package ships ``boot/config-RELEASE``).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from composer.errors import InvalidPackage, UserError
from composer.fsutil import ensure_dir

VMLINUX = "usr/lib/debug/boot/vmlinux-{release}"
MAX_VMLINUX = 4 << 30            # bytes: Debian's amd64 vmlinux with DWARF is some 500 MB
_AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60
_MAX_AR_MEMBERS = 16


def dbg_package(release: str) -> str:
    """Debian's package of the unstripped vmlinux of ``release`` (e.g. 6.12.118+deb13-amd64)."""
    return f"linux-image-{release}-dbg"


def kernel_release(sysroot: Path) -> str:
    """The kernel release of a profile's sysroot: its one ``boot/config-RELEASE``."""
    found = sorted(p.name.removeprefix("config-") for p in (sysroot / "boot").glob("config-*"))
    if len(found) != 1:
        raise UserError(f"{sysroot}: {len(found)} kernels (boot/config-*) in the profile's packages, not one",
                        hint="the profile's kernel package (kernel.package) must be Debian's linux-image "
                             "(recipes/linux)")
    return found[0]


def data_member(deb: BinaryIO, where: str) -> tuple[str, int]:
    """The name and size of a .deb's ``data.tar.*`` member, ``deb`` left at its first byte."""
    if deb.read(len(_AR_MAGIC)) != _AR_MAGIC:
        raise InvalidPackage(f"{where}: not a Debian package (no ar header)", hint="download it again")
    for _ in range(_MAX_AR_MEMBERS):
        header = deb.read(_AR_HEADER)
        if len(header) < _AR_HEADER:
            break
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise InvalidPackage(f"{where}: damaged ar member header", hint="download it again") from None
        if name.startswith("data.tar"):
            return name, size
        deb.seek(size + size % 2, os.SEEK_CUR)
    raise InvalidPackage(f"{where}: no data.tar member", hint="download it again")


def extract_vmlinux(deb: Path, release: str, dest: Path) -> Path:
    """Stream ``deb``'s data archive and write its vmlinux to ``dest`` (atomically); the other members are
    decompressed and skipped, never written."""
    wanted = {"./" + VMLINUX.format(release=release), VMLINUX.format(release=release)}
    with deb.open("rb") as f:
        name, _size = data_member(f, str(deb))
        mode = {"data.tar.xz": "r|xz", "data.tar.gz": "r|gz", "data.tar.bz2": "r|bz2", "data.tar": "r|"}.get(name)
        if mode is None:
            raise InvalidPackage(f"{deb}: {name} is not a compression this reader knows",
                                 hint="extract it by hand: dpkg-deb -x")
        with tarfile.open(fileobj=f, mode=mode) as tar:  # type: ignore[call-overload]
            for member in tar:
                if member.name not in wanted:
                    continue
                if not member.isfile() or member.size > MAX_VMLINUX:
                    raise InvalidPackage(f"{deb}: {member.name} is not a file under {MAX_VMLINUX} bytes",
                                         hint="check the package")
                source = tar.extractfile(member)
                assert source is not None
                ensure_dir(dest.parent)
                fd, tmp = tempfile.mkstemp(prefix=".vmlinux.", dir=dest.parent)
                try:
                    with os.fdopen(fd, "wb") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
                    os.replace(tmp, dest)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
                return dest
    raise InvalidPackage(f"{deb}: no {VMLINUX.format(release=release)}",
                         hint=f"is it {dbg_package(release)}?")


def kernel_vmlinux(sysroot: Path, arch: str, cache: Path, say: Callable[[str], None] = lambda _m: None) -> Path:
    """The vmlinux with symbols of the kernel in ``sysroot`` (fetched and extracted once into the cache)."""
    from composer.arch import get_arch
    from composer.package.debian import DebianArchive
    release = kernel_release(sysroot)
    dest = cache / "debug-kernels" / release / "vmlinux"
    if dest.is_file():
        return dest
    name = dbg_package(release)
    say(f"fetching {name} from Debian (about 1 GB for amd64: the kernel's and its modules' debug files; once)")
    archive, a = DebianArchive(cache), get_arch(arch)
    _ref, deb = archive.download(a, archive.resolve(a, name))   # not unpacked: only the vmlinux is wanted
    say(f"extracting {VMLINUX.format(release=release)} from {deb.name}")
    found = extract_vmlinux(deb, release, dest)
    deb.unlink()   # the modules' debug files are not used: the vmlinux alone stays (some 360 MB for amd64)
    return found
