"""Write, read and verify ``.vpk`` packages. Everything streams: memory stays flat with package size."""

from __future__ import annotations

import contextlib
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import IO

import zstandard

from composer import limits as limits_mod
from composer.errors import InvalidPackage, VerificationError, combine
from composer.fsutil import HashingReader, atomic_output, sha256_bytes
from composer.limits import Limits
from composer.package import canonical, container
from composer.package.elfinfo import MAX_ELF_BYTES, ElfInfo, is_elf, read_elf
from composer.package.linkcheck import link_info
from composer.package.manifest import Entry, Manifest, reserved_errors
from composer.package.metadata import Metadata, parse_metadata
from composer.trust.keys import PublicKey, SigningKey, public_from_crypto

ZSTD_LEVEL = 9
# Decompressed payload beyond the files themselves: tar header, pax header and pax records per member.
TAR_OVERHEAD_PER_MEMBER = 3 * 512
DEFAULT_MAX_INSTALLED = Limits().max_installed_bytes

_TAR_TYPES = {
    "file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
    "chardev": tarfile.CHRTYPE, "blockdev": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE,
}
_TYPE_OF = {v: k for k, v in _TAR_TYPES.items()} | {tarfile.AREGTYPE: "file"}


# ---------------------------------------------------------------- writing

@dataclass(frozen=True, slots=True, kw_only=True)
class Staged:
    """One payload member to write: its manifest entry (hash/size filled in while writing) and source."""

    entry: Entry
    source: Path | None = None


def _tarinfo(entry: Entry, epoch: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(entry.path)
    ti.type = _TAR_TYPES[entry.type]
    ti.mode, ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = entry.mode, epoch, 0, 0, "", ""
    ti.size = entry.size if entry.type == "file" else 0
    ti.linkname = entry.target
    ti.devmajor, ti.devminor = entry.device
    return ti


def write_payload(staged: Sequence[Staged], out: IO[bytes], epoch: int) -> list[Entry]:
    """Write the zstd-compressed pax tar of ``staged`` (sorted by path) to ``out``; return final entries."""
    entries: list[Entry] = []
    cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True, write_content_size=False, threads=0)
    with cctx.stream_writer(out, closefd=False) as zw, \
            tarfile.open(fileobj=zw, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for item in sorted(staged, key=lambda s: s.entry.path):
            entry = item.entry
            if entry.type == "file":
                assert item.source is not None
                size = item.source.stat().st_size
                entry = replace(entry, size=size)
                with item.source.open("rb") as src:
                    reader = HashingReader(src)
                    tar.addfile(_tarinfo(entry, epoch), reader)
                if reader.count != size:
                    raise InvalidPackage(f"{item.source}: changed while it was being packed")
                entry = replace(entry, sha256=reader.hexdigest())
            else:
                tar.addfile(_tarinfo(entry, epoch))
            entries.append(entry)
    return entries


def staged_elves(staged: Sequence[Staged]) -> list[ElfInfo]:
    """The linkable ELF files of ``staged`` (each read whole up to MAX_ELF_BYTES; a larger one is skipped)."""
    out = []
    for item in sorted(staged, key=lambda s: s.entry.path):
        if item.entry.type != "file" or item.source is None:
            continue
        with item.source.open("rb") as f:
            head = f.read(4)
            if not is_elf(head):
                continue
            data = head + f.read(MAX_ELF_BYTES)
        info = read_elf(data, item.entry.path) if len(data) <= MAX_ELF_BYTES else None
        if info is not None:
            out.append(info)
    return out


def write_package(out_path: Path, *, metadata: Metadata, staged: Sequence[Staged], key: SigningKey,
                  epoch: int) -> tuple[Metadata, Manifest]:
    """Build, sign and atomically write a package. No partial file is left behind on failure.

    The metadata's ``[elf]`` table (soname provides, NEEDED lists) is derived here from the staged ELF files."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    metadata = replace(metadata, elf=MappingProxyType(link_info(staged_elves(staged)).to_dict()))
    with tempfile.TemporaryFile(dir=out_path.parent) as payload:
        hashing = _HashingWriter(payload)
        entries = write_payload(staged, hashing, epoch)  # type: ignore[arg-type]
        manifest = Manifest(entries=tuple(entries), payload_sha256=hashing.hash.hexdigest(),
                            payload_size=hashing.count)
        manifest_bytes = manifest.to_bytes()
        Manifest.from_bytes(manifest_bytes, f"{out_path.name}:manifest.json")  # within the limits we read
        security = replace(metadata.security, signer=key.keyid, public_key="ed25519:" + key.public.key.keyval["public"],
                           manifest="sha256:" + sha256_bytes(manifest_bytes), signature="")
        meta = replace(metadata, security=security)
        meta = replace(meta, security=replace(security, signature=key.sign(meta.signed_bytes())))
        meta_bytes = meta.to_toml()
        parse_metadata(meta_bytes, origin=f"{out_path.name}:metadata.toml")  # validate what we write
        payload.seek(0)
        with atomic_output(out_path) as f:
            container.write_member(f, "vpk-format", container.MAGIC, len(container.MAGIC), epoch)
            container.write_member(f, "metadata.toml", meta_bytes, len(meta_bytes), epoch)
            container.write_member(f, "manifest.json", manifest_bytes, len(manifest_bytes), epoch)
            container.write_member(f, "payload.tar.zst", payload, manifest.payload_size, epoch)
            f.write(container.TRAILER)
    return meta, manifest


class _HashingWriter:
    def __init__(self, raw: IO[bytes]) -> None:
        import hashlib
        self.raw, self.hash, self.count = raw, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.count += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


# ---------------------------------------------------------------- reading

@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    metadata: Metadata
    manifest: Manifest
    metadata_bytes: bytes
    manifest_bytes: bytes

    @property
    def signer(self) -> PublicKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        raw = bytes.fromhex(self.metadata.security.public_key.removeprefix("ed25519:"))
        return public_from_crypto(Ed25519PublicKey.from_public_bytes(raw))


class PackageReader:
    """Open a package: read and check its header members, then stream its payload members."""

    def __init__(self, f: IO[bytes], origin: str, *, validated: bool = False) -> None:
        self.origin = origin
        self.c = container.ContainerReader(f, origin)
        name, size = self.c.next_member()
        if self.c.read_member(name, size) != container.MAGIC:
            raise InvalidPackage(f"{origin}: unknown package format (vpk-format is not 'vpk 1')",
                                 hint="upgrade vcomp or rebuild the package")
        name, size = self.c.next_member()
        meta_bytes = self.c.read_member(name, size)
        metadata = parse_metadata(meta_bytes, origin=f"{origin}:metadata.toml", validate=not validated)
        name, size = self.c.next_member()
        manifest_bytes = self.c.read_member(name, size)
        self.limits = limits_mod.current()
        manifest = Manifest.from_bytes(manifest_bytes, f"{origin}:manifest.json")
        reserved = reserved_errors(manifest.entries, metadata.name, f"{origin}:manifest.json")
        if reserved:
            raise combine(reserved, summary=f"{origin}: package '{metadata.name}' ships {len(reserved)} paths "
                                            "reserved for vcomp")
        self.header = Header(metadata=metadata, manifest=manifest, metadata_bytes=meta_bytes,
                             manifest_bytes=manifest_bytes)

    def check_signature(self, trusted: PublicKey | None = None) -> PublicKey:
        """Check the signature and the manifest digest before anything reads the payload."""
        sec = self.header.metadata.security
        if not (sec.signature and sec.public_key and sec.signer and sec.manifest):
            raise VerificationError(f"{self.origin}: the package is not signed",
                                    hint="build it with 'vcomp pkg build --key KEY'")
        signer = self.header.signer
        if signer.keyid != sec.signer:
            raise VerificationError(f"{self.origin}:metadata.toml: security.signer does not match "
                                    "security.public-key (modified)")
        if trusted is not None and trusted.keyid != signer.keyid:
            raise VerificationError(f"{self.origin}: signed by key {signer.keyid[:16]}, not by the trusted key "
                                    f"{trusted.keyid[:16]}", hint="check which developer key should sign it")
        if not signer.verify(sec.signature, self.header.metadata.signed_bytes()):
            raise VerificationError(f"{self.origin}:metadata.toml: the signature does not verify "
                                    "(metadata modified after signing)")
        if "sha256:" + sha256_bytes(self.header.manifest_bytes) != sec.manifest:
            raise VerificationError(f"{self.origin}:manifest.json: digest differs from the one in the signed "
                                    "metadata (manifest modified)")
        return signer

    @contextlib.contextmanager
    def payload(self, max_installed: int | None = None) -> Iterator[PayloadStream]:
        """The payload's members; ``max_installed`` defaults to the configured max_installed_bytes."""
        if max_installed is None:
            max_installed = limits_mod.current().max_installed_bytes
        name, size = self.c.next_member()
        if size != self.header.manifest.payload_size:
            raise VerificationError(f"{self.origin}:payload.tar.zst: {size} bytes, the manifest says "
                                    f"{self.header.manifest.payload_size}")
        raw = self.c.stream(name, size)
        frames = canonical.FrameCheck(raw)  # type: ignore[arg-type]
        stream = PayloadStream(self, frames, max_installed)
        yield stream
        for _ in container.drain(frames):  # type: ignore[arg-type]
            pass
        self.c.end_member(name, size)
        self.c.finish()
        if raw.hexdigest() != self.header.manifest.payload_sha256:
            raise VerificationError(f"{self.origin}:payload.tar.zst: sha256 differs from the manifest "
                                    "(payload modified)")
        problem = frames.finish()
        if problem:
            raise canonical.frame_error(f"{self.origin}:payload.tar.zst", problem)


class _Capped:
    """The decompressed payload, capped; it ends for good at the end of the first zstd frame."""

    def __init__(self, raw: IO[bytes], cap: int, origin: str) -> None:
        self.raw, self.cap, self.count, self.origin, self.ended = raw, cap, 0, origin, False

    def read(self, n: int = -1) -> bytes:
        if self.ended:
            return b""
        data = self.raw.read(n)
        self.ended = not data and n != 0
        self.count += len(data)
        if self.count > self.cap:
            raise VerificationError(f"{self.origin}: decompresses to more than {self.cap} bytes "
                                    "(decompression bomb)", hint="the package is hostile or corrupt")
        return data


_READ_ERRORS = (zstandard.ZstdError, tarfile.TarError, EOFError, OSError)


class _Guarded:
    """A member's file object whose read errors become VerificationError (they happen in the caller)."""

    def __init__(self, raw: IO[bytes], origin: str, path: str) -> None:
        self.raw, self.origin, self.path = raw, origin, path

    def read(self, n: int = -1) -> bytes:
        try:
            return self.raw.read(n)
        except VerificationError:
            raise
        except _READ_ERRORS as exc:
            raise VerificationError(f"{self.origin}: corrupt payload in '{self.path}' ({exc})",
                                    hint="the package was modified or truncated") from None


class PayloadStream:
    """Iterate payload members, each checked against the manifest entry in the same position."""

    def __init__(self, reader: PackageReader, raw: canonical.FrameCheck, max_installed: int) -> None:
        self.reader, self.raw = reader, raw
        manifest = reader.header.manifest
        if manifest.installed_size > max_installed:
            raise VerificationError(f"{reader.origin}: installs {manifest.installed_size} bytes, over the limit "
                                    f"of {max_installed}", hint="raise the size limit if this is expected")
        self.cap = payload_cap(manifest)

    def members(self) -> Iterator[tuple[Entry, IO[bytes] | None]]:
        origin = f"{self.reader.origin}:payload.tar.zst"
        dctx = zstandard.ZstdDecompressor()
        try:
            with dctx.stream_reader(self.raw, read_across_frames=False, closefd=False) as zr:  # type: ignore[arg-type]
                capped = _Capped(zr, self.cap, origin)
                tarinfo = canonical.tarinfo_class(self.reader.limits, origin)
                with tarfile.open(fileobj=capped, mode="r|", tarinfo=tarinfo) as tar:  # type: ignore[call-overload]
                    expected = iter(self.reader.header.manifest.entries)
                    for ti in tar:
                        entry = next(expected, None)
                        _check_member(ti, entry, origin)
                        problem = canonical.member_problem(ti, self.reader.c.mtime)
                        if problem:
                            raise VerificationError(f"{origin}: '{ti.name}' {problem} (not canonical)",
                                                    hint="rebuild the package with 'vcomp pkg build'")
                        assert entry is not None
                        if entry.type == "file":
                            fobj = tar.extractfile(ti)
                            assert fobj is not None
                            checked = HashingReader(_Guarded(fobj, origin, entry.path), limit=entry.size)
                            yield entry, checked  # type: ignore[misc]
                            for _ in container.drain(checked):
                                pass
                            if checked.hexdigest() != entry.sha256:
                                raise VerificationError(f"{origin}: '{entry.path}' sha256 differs from the "
                                                        "manifest (file modified)")
                        else:
                            yield entry, None
                    missing = next(expected, None)
                    if missing is not None:
                        raise VerificationError(f"{origin}: '{missing.path}' is in the manifest but not in the "
                                                "payload")
                    canonical.check_tar_end(tar, origin)
        except _READ_ERRORS as exc:
            if self.raw.problem:  # the decompressor went past the frame: say why, not how it choked
                raise canonical.frame_error(origin, self.raw.problem) from None
            raise VerificationError(f"{origin}: corrupt payload ({exc})",
                                    hint="the package was modified or truncated") from None


def payload_cap(manifest: Manifest) -> int:
    """The most an honest payload of ``manifest`` decompresses to: data padded to blocks, a tar header, a
    pax header and its records per member, the end marker and a record of padding (bombs go over it)."""
    def block(n: int) -> int:
        return n + -n % canonical.BLOCK

    per_member = sum(block(e.size) + TAR_OVERHEAD_PER_MEMBER + block(len(e.path.encode()) + len(e.target.encode()))
                     for e in manifest.entries)
    return per_member + 2 * canonical.BLOCK + canonical.RECORD + (1 << 16)


def _check_member(ti: tarfile.TarInfo, entry: Entry | None, origin: str) -> None:
    if entry is None:
        raise VerificationError(f"{origin}: '{ti.name}' is not in the manifest (extra file)")
    name = ti.name.rstrip("/") if ti.isdir() else ti.name
    if name != entry.path:
        raise VerificationError(f"{origin}: member '{ti.name}' where the manifest expects '{entry.path}'")
    typ = _TYPE_OF.get(ti.type)
    if typ != entry.type:
        raise VerificationError(f"{origin}: '{entry.path}' is a {typ or 'special member'} in the payload, "
                                f"a {entry.type} in the manifest")
    if ti.mode != entry.mode:
        raise VerificationError(f"{origin}: '{entry.path}' has mode {ti.mode:04o}, the manifest says "
                                f"{entry.mode:04o}")
    if entry.type == "file" and ti.size != entry.size:
        raise VerificationError(f"{origin}: '{entry.path}' is {ti.size} bytes, the manifest says {entry.size}")
    if entry.type in ("chardev", "blockdev") and (ti.devmajor, ti.devminor) != entry.device:
        raise VerificationError(f"{origin}: '{entry.path}' is device {ti.devmajor}:{ti.devminor}, the manifest "
                                f"says {entry.device[0]}:{entry.device[1]}")
    if entry.type in ("symlink", "hardlink") and ti.linkname != entry.target:
        raise VerificationError(f"{origin}: '{entry.path}' points to '{ti.linkname}', the manifest says "
                                f"'{entry.target}'")


@contextlib.contextmanager
def open_package(path: Path, *, validated: bool = False) -> Iterator[PackageReader]:
    """The package at ``path``, its header read and checked (``validated``: its metadata was validated moments
    ago from these very bytes, in a private copy: see :func:`composer.package.metadata.parse_metadata`)."""
    try:
        f = path.open("rb")
    except OSError as exc:
        raise InvalidPackage(f"cannot open package {path}: {exc.strerror}") from None
    with f:
        yield PackageReader(f, str(path), validated=validated)


def read_header(path: Path) -> Header:
    with open_package(path) as r:
        return r.header


@dataclass(frozen=True, slots=True, kw_only=True)
class Verified:
    header: Header
    signer: PublicKey
    files: int
    bytes: int


def verify_package(path: Path, trusted: PublicKey | None = None) -> Verified:
    """Check container, schema, signature, manifest digest, payload digest and every file's hash."""
    files = total = 0
    with open_package(path) as r:
        signer = r.check_signature(trusted)
        with r.payload() as stream:
            for _entry, fobj in stream.members():
                if fobj is not None:
                    for n in container.drain(fobj):  # type: ignore[arg-type]
                        total += n
                files += 1
    return Verified(header=r.header, signer=signer, files=files, bytes=total)



