"""Metadata-only ``.vpk`` packages in bulk: tens of thousands of signed packages without payload (design14 §4.3).

A metadata-only package is a complete ``.vpk`` (the same four members, signed the same way) whose manifest lists
no file and whose payload is the empty tar; ``verify_package`` and ``repo add`` treat it like any other. What
makes the bulk path fast, against :func:`composer.package.archive.write_package` per package (measured 10 ms):

- the empty payload and its manifest are computed once (:func:`empty_payload`);
- the metadata is validated once (schema and semantic checks), from the document itself: no TOML round trip
  and no second validation of what this module wrote (``repo add`` still verifies every package fully);
- files are written whole under a temporary name and renamed, without one ``fsync`` each: one ``os.sync()``
  per chunk makes a chunk durable (a crash loses at most the chunk being written, never leaves a partial file
  under its final name);
- ``jobs`` worker processes build chunks in parallel; the output (files and the returned list) is the same for
  any ``jobs``: each package's bytes depend only on its metadata, the key and the epoch (Ed25519 signatures are
  deterministic), and results come back in input order.
"""

from __future__ import annotations

import functools
import io
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from composer.fsutil import atomic_output, sha256_bytes
from composer.package import container
from composer.package.archive import write_payload
from composer.package.linkcheck import LinkInfo
from composer.package.manifest import Manifest
from composer.package.metadata import Metadata, validate_dict
from composer.trust.keys import SigningKey, public_from_crypto

EMPTY_ELF: Mapping[str, Any] = MappingProxyType(LinkInfo().to_dict())   # what write_package records for no ELF
CHUNK = 1000          # packages per worker task and per sync
Document = Mapping[str, Any]   # a metadata document (``Metadata.from_dict`` reads it)


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltFile:
    """One package written: its file name in the output directory, sha256 and size."""

    name: str
    sha256: str
    size: int
    untranslated: tuple[str, ...] = ()   # maintainer-script items an import could not translate into [actions]


@functools.cache
def empty_payload() -> tuple[bytes, bytes]:
    """(payload bytes, manifest bytes) of a package without files: an empty pax tar in one zstd frame."""
    buf = io.BytesIO()
    write_payload([], buf, 0)
    payload = buf.getvalue()
    manifest = Manifest(entries=(), payload_sha256=sha256_bytes(payload), payload_size=len(payload))
    return payload, manifest.to_bytes()


def file_name(meta: Metadata) -> str:
    return meta.file_name


def package_bytes(doc: Document, key: SigningKey, epoch: int, *, origin: str) -> tuple[Metadata, bytes]:
    """The signed ``.vpk`` of metadata document ``doc`` with the empty payload (validated once, here)."""
    validate_dict(doc, origin=origin, text="")
    meta = Metadata.from_dict(doc)
    meta = replace(meta, elf=EMPTY_ELF)   # no file, so no ELF file: known to need and provide no soname
    payload, manifest_bytes = empty_payload()
    security = replace(meta.security, signer=key.keyid, public_key="ed25519:" + key.public.key.keyval["public"],
                       manifest="sha256:" + sha256_bytes(manifest_bytes), signature="")
    meta = replace(meta, security=security)
    meta = replace(meta, security=replace(security, signature=key.sign(meta.signed_bytes())))
    meta_bytes = meta.to_toml()
    out = io.BytesIO()
    container.write_member(out, "vpk-format", container.MAGIC, len(container.MAGIC), epoch)
    container.write_member(out, "metadata.toml", meta_bytes, len(meta_bytes), epoch)
    container.write_member(out, "manifest.json", manifest_bytes, len(manifest_bytes), epoch)
    container.write_member(out, "payload.tar.zst", payload, len(payload), epoch)
    out.write(container.TRAILER)
    return meta, out.getvalue()


def _write_chunk(docs: Sequence[Document], key: SigningKey, epoch: int, out_dir: Path) -> list[BuiltFile]:
    built: list[BuiltFile] = []
    for doc in docs:
        package = doc["package"]
        origin = f"{package['name']} {package.get('upstream-version') or package['version']}"
        meta, data = package_bytes(doc, key, epoch, origin=origin)
        name = file_name(meta)
        with atomic_output(out_dir / name, durable=False) as f:
            f.write(data)
        built.append(BuiltFile(name=name, sha256=sha256_bytes(data), size=len(data)))
    os.sync()   # the chunk is durable before anyone is told about it
    return built


# ----------------------------------------------------------------- worker processes

_WORKER: dict[str, Any] = {}


def _raw_key(key: SigningKey) -> bytes:
    return key.private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption())


def _key_from_raw(raw: bytes) -> SigningKey:
    private = Ed25519PrivateKey.from_private_bytes(raw)
    return SigningKey(private=private, public=public_from_crypto(private.public_key()))


def _init_worker(raw: bytes, epoch: int, out_dir: str) -> None:
    _WORKER.update(key=_key_from_raw(raw), epoch=epoch, out_dir=Path(out_dir))


def _worker_chunk(docs: Sequence[Document]) -> list[BuiltFile]:
    return _write_chunk(docs, _WORKER["key"], _WORKER["epoch"], _WORKER["out_dir"])


def _chunks(docs: Sequence[Document], size: int) -> Iterator[Sequence[Document]]:
    for start in range(0, len(docs), size):
        yield docs[start:start + size]


def build_many(docs: Sequence[Document], *, key: SigningKey, epoch: int, out_dir: Path, jobs: int = 1,
               chunk: int = CHUNK, progress: Callable[[int, int], None] = lambda done, total: None,
               ) -> list[BuiltFile]:
    """Write a metadata-only package for every document into ``out_dir``; return them in ``docs`` order.

    ``progress(done, total)`` is called after each chunk. A document that does not validate raises the
    validation error (naming the package); the chunks written before it stay (each file whole).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    built: list[BuiltFile] = []
    if jobs <= 1 or len(docs) <= chunk:
        for part in _chunks(docs, chunk):
            built.extend(_write_chunk(part, key, epoch, out_dir))
            progress(len(built), len(docs))
        return built
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(jobs, initializer=_init_worker, initargs=(_raw_key(key), epoch, str(out_dir))) as pool:
        for written in pool.imap(_worker_chunk, _chunks(docs, chunk)):
            built.extend(written)
            progress(len(built), len(docs))
    return built
