"""The chunk indexes an A/B device keeps of the images its slots hold, on the ESP (``vcomp/<slot>-<role>.caidx.json``):
an update seeds from the running slot through them, reading only the chunks it reuses (each verified when read)
instead of cutting the whole slot partition again (docs/updates/ab-slots.md). The disk build writes slot a's; an
update writes the new slot's after its images verified. A missing or unreadable one only makes seeding slower.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from composer.errors import VerificationError
from composer.update.chunking import DEFAULT_PARAMS, ChunkParams
from composer.update.index import MAX_INDEX_BYTES, Chunk, ChunkIndex
from composer.update.store import iter_chunks

SEED_DIR = "vcomp"


def seed_index_name(slot: str, role: str) -> str:
    """ESP path of the index of ``role`` (root, verity, uki) in ``slot``."""
    return f"{SEED_DIR}/{slot}-{role}.caidx.json"


def index_of(image: Path, params: ChunkParams = DEFAULT_PARAMS) -> ChunkIndex:
    """The chunk index of ``image`` (no store: its chunks are not kept)."""
    whole = hashlib.sha256()
    chunks = []
    for _, data in iter_chunks(image, params):
        whole.update(data)
        chunks.append(Chunk(sha256=hashlib.sha256(data).hexdigest(), size=len(data)))
    return ChunkIndex(params=params, size=sum(c.size for c in chunks), sha256=whole.hexdigest(),
                      chunks=tuple(chunks))


def read_seed_index(path: Path) -> ChunkIndex | None:
    """The kept index at ``path``, or None when it is missing or not a valid index (seeding then cuts the slot)."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_INDEX_BYTES + 1)
        return ChunkIndex.from_bytes(data, str(path))
    except (OSError, VerificationError):
        return None
