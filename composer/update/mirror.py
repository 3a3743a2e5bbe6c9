"""Mirror the published images of a repository: each chunk index (a verified TUF target) and its chunks, each
chunk verified against the index before it is written. Runs before :func:`composer.repo.mirror.mirror` writes the
metadata, so a client of the mirror never sees an image listed whose index or chunks are not there yet."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import zstandard

from composer import limits
from composer.errors import VerificationError
from composer.fsutil import atomic_write
from composer.repo.client import RepositoryClient
from composer.repo.publish import stored_target
from composer.repo.store import INDEX_ROLE
from composer.update.index import ChunkIndex
from composer.update.publish import SUFFIX
from composer.update.remote import chunk_fetcher
from composer.update.store import chunk_name, max_compressed


@dataclass(frozen=True, slots=True, kw_only=True)
class MirroredImages:
    images: int
    chunks: int        # downloaded and verified
    present: int       # already in the mirror


def mirror_images(client: RepositoryClient, dest: Path, arch: str) -> MirroredImages:
    """Copy every image the index role lists into ``dest``/targets (``arch``: an architecture the repository
    serves, whose package index loads the index role)."""
    client.index_digest(arch)
    fetch = chunk_fetcher(client.urls[0])
    images = chunks = present = 0
    for path, info in sorted(client.role_targets(INDEX_ROLE).items()):
        if not path.endswith(SUFFIX):
            continue
        data = client.download(path).read_bytes()            # verified against the signed target
        index = ChunkIndex.from_bytes(data, f"{client.urls[0]}: {path}")
        for digest, size in index.unique().items():
            out = dest / "targets" / chunk_name(digest)
            if out.is_file():
                present += 1
                continue
            packed = fetch(digest, max_compressed(size))
            try:
                raw = limits.unzstd(packed, size)
            except zstandard.ZstdError:
                raw = b""
            if hashlib.sha256(raw).hexdigest() != digest:
                raise VerificationError(f"{client.urls[0]}: {path}: chunk {digest[:16]} does not have its indexed "
                                        "sha256", hint="the source's chunk store is corrupt or hostile; nothing "
                                                       "of that chunk was written")
            atomic_write(out, packed, durable=False)
            chunks += 1
        atomic_write(dest / "targets" / stored_target(path, str(info.hashes["sha256"])), data)
        images += 1
    return MirroredImages(images=images, chunks=chunks, present=present)
