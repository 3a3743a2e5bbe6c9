"""DIB's ``tar`` made a copy of the root, not of the build host: vcomp rewrites it once DIB is done.

DIB archives its mounted tree while the host's ``/dev`` is still bind-mounted there, with ``--xattrs`` (pax
headers carrying every file's atime and ctime of the build). The rewrite keeps every member in DIB's order and
with its xattrs, drops the ``dev/`` entries the lock's root does not have (the host's device nodes: 116 on this
machine kind), drops the atime/ctime records and clamps each mtime to the build's epoch (the tree's own mtimes
are the epoch already; DIB's steps touch a few directories and /etc/fstab). The result is a pax tar.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable
from typing import BinaryIO

DROPPED_PAX = ("atime", "ctime", "mtime")  # the times of the build (mtime is the member's, clamped)


def root_dev_entries(names: Iterable[str]) -> frozenset[str]:
    """The ``dev/`` entries the lock's root has, as DIB's tar names them (``./dev/...``)."""
    return frozenset({"./dev", *(f"./dev/{n}" for n in names)})


def keep(name: str, dev: frozenset[str]) -> bool:
    return not (name == "./dev" or name.startswith("./dev/")) or name in dev


def normalise(src: BinaryIO, dst: BinaryIO, *, dev: frozenset[str], epoch: int) -> int:
    """Copy DIB's tar ``src`` to ``dst`` without the host's ``dev/`` entries and the build's times; returns
    how many members were dropped."""
    dropped = 0
    with tarfile.open(fileobj=src, mode="r:") as tin, \
            tarfile.open(fileobj=dst, mode="w:", format=tarfile.PAX_FORMAT) as tout:
        for member in tin:
            name = member.name if member.name.startswith("./") or member.name == "." else f"./{member.name}"
            if name == ".":
                name = "./"
            if not keep(name.rstrip("/") if name != "./" else name, dev):
                dropped += 1
                continue
            member.mtime = min(int(member.mtime), epoch)
            member.pax_headers = {k: v for k, v in member.pax_headers.items() if k not in DROPPED_PAX}
            data = tin.extractfile(member) if member.isreg() else None
            tout.addfile(member, data)
    return dropped
