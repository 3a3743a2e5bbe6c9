"""Images as TUF targets: a chunk index signed by the repository's online index role, its chunks beside it.

    targets/index/<sha256>.NAME.caidx.json     the chunk index (a TUF target: ``index/NAME.caidx.json``)
    targets/chunks/<aa>/<sha256>.cacnk         the chunks (not TUF targets)

Only the index is a target: listing every chunk in signed metadata would make the index role's metadata as
large as the chunk list (a million entries for a large store), re-signed on every publish. It need not: the
signed target pins the index's sha256, and the index pins every chunk's sha256 and size, so a chunk fetched
from anywhere is verified before use (composer/update/assemble.py). The state (``state.db``) keeps the published
images (``images``: path -> length and sha256); every ``repo publish`` lists them again in the index role.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.errors import UserError
from composer.repo.guard import locked
from composer.repo.publish import stored_target
from composer.repo.publishing import publish_unlocked
from composer.repo.store import RepoStore
from composer.update.chunking import DEFAULT_PARAMS, ChunkParams
from composer.update.store import Stored, chunk_image

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
SUFFIX = ".caidx.json"


def image_target_path(name: str) -> str:
    """``index/NAME.caidx.json``: under the index role's ``index/*`` delegation (one path segment)."""
    if not _NAME.match(name):
        raise UserError(f"image name '{name}' is not valid",
                        hint="use lower-case letters, digits, '.', '_' and '-' (e.g. minimal-x86_64)")
    return f"index/{name}{SUFFIX}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Published:
    path: str
    sha256: str
    length: int
    stored: Stored


@locked
def add_image(store: RepoStore, image: Path, name: str, params: ChunkParams = DEFAULT_PARAMS) -> Published:
    """Chunk ``image`` into the repository's chunk store, list its index as a target and publish."""
    published = put_image(store, image, name, params)
    state = store.read_state()
    list_target(state, published.path, published.sha256, published.length)
    store.write_state(state)
    publish_unlocked(store)
    return published


def put_image(store: RepoStore, image: Path, name: str, params: ChunkParams = DEFAULT_PARAMS) -> Published:
    """Chunk ``image`` into the store and write its index as a stored target; list nothing, publish nothing
    (under the caller's lock: the caller lists it in the state (state.db) with :func:`list_target` and publishes)."""
    path = image_target_path(name)
    stored = chunk_image(image, store.targets_dir, params, put=store.publisher.put_target)
    data = stored.index.to_bytes()
    sha = hashlib.sha256(data).hexdigest()
    store.publisher.put_target(stored_target(path, sha), data)
    return Published(path=path, sha256=sha, length=len(data), stored=stored)


def list_target(state: dict[str, Any], path: str, sha256: str, length: int) -> None:
    """Note target ``path`` (an image's chunk index, or a channel document) in ``state``: every publish signs it
    under the index role."""
    state.setdefault("images", {})[path] = {"length": length, "sha256": sha256}
