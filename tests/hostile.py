"""Build hostile ``.vpk`` packages for tests.

The packages are real: a canonical container, metadata signed with a real ed25519 key, and a
manifest computed from the (hostile) payload, so they get past the signature and manifest checks
and it is the code under test that must refuse them.

``Member`` describes one payload member and its manifest entry; ``hostile_package`` writes a
package of members; ``write_vpk`` wraps any payload bytes (see ``bomb_payload``);
``accept_hostile_manifests`` makes the manifest parser accept what it would refuse (``..``,
absolute paths, duplicates), to prove later checks refuse on their own; ``snapshot`` records a
tree to show that nothing changed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import zstandard
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from composer.fsutil import sha256_bytes
from composer.package import container
from composer.package.manifest import Entry, Manifest
from composer.package.metadata import Metadata, Security
from composer.trust.keys import SigningKey, public_from_crypto

EPOCH = 1_700_000_000
BLOCK = 512
_TAR_TYPES = {
    "file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
    "chardev": tarfile.CHRTYPE, "blockdev": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE,
}
_DEFAULT_MODES = {"file": 0o644, "dir": 0o755, "symlink": 0o777, "hardlink": 0o644, "chardev": 0o666,
                  "blockdev": 0o660, "fifo": 0o644}


def new_key() -> SigningKey:
    """An attacker's (or a developer's) own signing key, in memory."""
    private = Ed25519PrivateKey.generate()
    return SigningKey(private=private, public=public_from_crypto(private.public_key()))


def metadata(name: str = "hostile", version: str = "1.0.0") -> Metadata:
    return Metadata(name=name, version=version, description=f"{name} test package", license="MIT",
                    type="application", arch="x86_64", security=Security(context="system_t"))


# ---------------------------------------------------------------- members


@dataclass(frozen=True, slots=True)
class Member:
    """One payload member. The manifest entry says the same unless told to lie."""

    path: str
    type: str = "file"
    data: bytes = b""
    mode: int | None = None
    target: str = ""
    device: tuple[int, int] = (0, 0)
    header_size: int | None = None    # size in the tar header (default: len(data))
    manifest_size: int | None = None  # size in the manifest (default: len(data))

    def entry(self) -> Entry:
        mode = _DEFAULT_MODES[self.type] if self.mode is None else self.mode
        if self.type == "file":
            size = len(self.data) if self.manifest_size is None else self.manifest_size
            return Entry(path=self.path, type="file", mode=mode, size=size,
                         sha256=hashlib.sha256(self.data[:size]).hexdigest())
        return Entry(path=self.path, type=self.type, mode=mode, target=self.target, device=self.device)

    def tar_bytes(self, epoch: int = EPOCH) -> bytes:
        """The member's tar header(s) and padded data, exactly as given (no sanitising)."""
        entry = self.entry()
        ti = tarfile.TarInfo(self.path)
        ti.type = _TAR_TYPES[self.type]
        ti.mode, ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = entry.mode, epoch, 0, 0, "", ""
        ti.size = (len(self.data) if self.header_size is None else self.header_size) if self.type == "file" else 0
        ti.linkname = self.target
        ti.devmajor, ti.devminor = self.device
        buf = ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        data = self.data if self.type == "file" else b""
        return buf + data + b"\0" * (-len(data) % BLOCK)


def file(path: str, data: bytes = b"", mode: int = 0o644, **kw: Any) -> Member:
    return Member(path, "file", data, mode, **kw)


def directory(path: str, mode: int = 0o755) -> Member:
    return Member(path, "dir", mode=mode)


def symlink(path: str, target: str) -> Member:
    return Member(path, "symlink", target=target)


def hardlink(path: str, target: str, mode: int = 0o644) -> Member:
    return Member(path, "hardlink", mode=mode, target=target)


def device(path: str, kind: str = "chardev", dev: tuple[int, int] = (1, 3)) -> Member:
    return Member(path, kind, device=dev if kind != "fifo" else (0, 0))


def tar_stream(members: Iterable[Member], epoch: int = EPOCH, *, end: bool = True) -> bytes:
    """An uncompressed tar of ``members``, with the end-of-archive blocks unless ``end`` is False."""
    return b"".join(m.tar_bytes(epoch) for m in members) + (b"\0" * (2 * BLOCK) if end else b"")


def compress(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data)


def bomb_payload(size: int, *, kind: str = "pax", before: Sequence[Member] = (), epoch: int = EPOCH) -> bytes:
    """A small zstd payload that decompresses to a header announcing ``size`` bytes, then that many zeros.

    ``kind``: "pax" (a pax extended header), "longname" (a GNU long-name record) or "file" (a
    regular file 'bomb'). Nothing of that size is ever held in memory or written.
    """
    types = {"pax": tarfile.XHDTYPE, "longname": tarfile.GNUTYPE_LONGNAME, "file": tarfile.REGTYPE}
    ti = tarfile.TarInfo("././@PaxHeader" if kind == "pax" else "././@LongLink" if kind == "longname" else "bomb")
    ti.type, ti.size, ti.mode, ti.mtime = types[kind], size, 0o644, epoch
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=3, write_checksum=True).stream_writer(out, closefd=False) as zw:
        zw.write(tar_stream(before, epoch, end=False))
        zw.write(ti.tobuf(tarfile.GNU_FORMAT, "utf-8", "strict"))
        chunk = bytes(1 << 20)
        left = size + (-size % BLOCK)
        while left:
            n = min(left, len(chunk))
            zw.write(chunk[:n])
            left -= n
        zw.write(b"\0" * (2 * BLOCK))
    return out.getvalue()


# ---------------------------------------------------------------- packages


def write_vpk(path: Path, *, entries: Sequence[Entry], payload: bytes, key: SigningKey | None = None,
              epoch: int = EPOCH, meta: Metadata | None = None, payload_sha256: str | None = None) -> Path:
    """A signed package of ``payload`` whose manifest lists ``entries`` (nothing is checked)."""
    key = key or new_key()
    manifest = Manifest(entries=tuple(entries), payload_sha256=payload_sha256 or sha256_bytes(payload),
                        payload_size=len(payload))
    manifest_bytes = manifest.to_bytes()
    meta = meta or metadata()
    security = replace(meta.security, signer=key.keyid, public_key="ed25519:" + key.public.key.keyval["public"],
                       manifest="sha256:" + sha256_bytes(manifest_bytes), signature="")
    meta = replace(meta, security=security)
    meta = replace(meta, security=replace(security, signature=key.sign(meta.signed_bytes())))
    meta_bytes = meta.to_toml()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        for name, data in (("vpk-format", container.MAGIC), ("metadata.toml", meta_bytes),
                           ("manifest.json", manifest_bytes), ("payload.tar.zst", payload)):
            container.write_member(f, name, data, len(data), epoch)
        f.write(container.TRAILER)
    return path


def hostile_package(path: Path, members: Sequence[Member], *, key: SigningKey | None = None,
                    epoch: int = EPOCH, meta: Metadata | None = None) -> Path:
    """A signed package whose manifest matches its payload member for member."""
    return write_vpk(path, entries=[m.entry() for m in members], payload=compress(tar_stream(members, epoch)),
                     key=key, epoch=epoch, meta=meta)


def _lenient_from_bytes(cls: type[Manifest], data: bytes, origin: str = "manifest.json") -> Manifest:
    raw = json.loads(data)
    entries = tuple(
        Entry(path=f["path"], type=f["type"], mode=int(f["mode"], 8), size=int(f.get("size", 0)),
              sha256=f.get("sha256", ""), target=f.get("target", ""), role=f.get("role", "asset"),
              device=(int(f.get("device", (0, 0))[0]), int(f.get("device", (0, 0))[1])))
        for f in raw["files"])
    return cls(entries=entries, payload_sha256=raw["payload"]["sha256"], payload_size=raw["payload"]["size"])


def accept_hostile_manifests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``Manifest.from_bytes`` accept anything (paths with '..', absolute paths, duplicates)."""
    monkeypatch.setattr(Manifest, "from_bytes", classmethod(_lenient_from_bytes))


# ---------------------------------------------------------------- observing trees


def snapshot(base: Path) -> dict[str, tuple[Any, ...]]:
    """Every path below ``base`` (itself as '.'): type, mode, size, mtime, links, target, content hash.

    Never follows symlinks. Access times are left out: reading a file changes them.
    """
    out: dict[str, tuple[Any, ...]] = {}

    def record(p: Path) -> None:
        st = p.lstat()
        rel = os.path.relpath(p, base)
        extra: Any = None
        if stat.S_ISLNK(st.st_mode):
            extra = os.readlink(p)
        elif stat.S_ISREG(st.st_mode):
            extra = hashlib.sha256(p.read_bytes()).hexdigest()
        out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size if not stat.S_ISDIR(st.st_mode)
                    else None, st.st_mtime_ns, st.st_nlink, st.st_uid, st.st_gid, extra)

    record(base)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in sorted(dirnames + filenames):
            record(Path(dirpath) / name)
    return out


def tree_without_times(snap: Mapping[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    return {k: v[:3] + v[4:] for k, v in snap.items()}


def write_raw_vpk(path: Path, *, metadata_bytes: bytes, manifest_bytes: bytes, payload: bytes = b"",
                  epoch: int = EPOCH) -> Path:
    """A package container of exactly these member bytes (no signing, no checking): for reader limits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        for name, data in (("vpk-format", container.MAGIC), ("metadata.toml", metadata_bytes),
                           ("manifest.json", manifest_bytes), ("payload.tar.zst", payload)):
            container.write_member(f, name, data, len(data), epoch)
        f.write(container.TRAILER)
    return path


def raw_member(ti: tarfile.TarInfo, data: bytes = b"", fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """One tar member exactly as ``ti`` says (owner, names, times, pax records are kept as given)."""
    ti.size = len(data) if ti.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else ti.size
    return ti.tobuf(fmt, "utf-8", "surrogateescape") + data + b"\0" * (-len(data) % BLOCK)


def fetched(pkgs: Path, key: SigningKey, name: str, version: str, members: list[Member]) -> Any:
    """A signed package of ``members`` written under ``pkgs``, as the install engine receives it (``Fetched``)."""
    from composer.pkgmgr.install import Fetched
    from composer.solve.lockmodel import LockedPackage, Reason
    path = hostile_package(pkgs / f"{name}-{version}.vpk", sorted(members, key=lambda m: m.path), key=key,
                           meta=metadata(name, version))
    locked = LockedPackage(name=name, version=version, arch="x86_64",
                           sha256=hashlib.sha256(path.read_bytes()).hexdigest(), size=path.stat().st_size,
                           repository="test", signer=key.keyid, reason=Reason.parse("requested"), capabilities=())
    return Fetched(locked=locked, path=path, key=key.public)
