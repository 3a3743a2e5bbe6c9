"""The image cache as the build uses it: a built output stored and found again by its key (entries are
verified and atomic: :mod:`composer.caches.store`), and the size cap applied after a build."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from composer import oserrors
from composer.caches import store
from composer.compose.layout import CONTENTS, LICENSE_TEXTS
from composer.farm import imageshare
from composer.farm.imageshare import SharedImages
from composer.fsutil import sha256_file
from composer.image.workshop import BuiltOutput
from composer.notices import Say, notice

ROOT_FILES = (CONTENTS, LICENSE_TEXTS)   # what the build writes of the installed root, stored with every output


def root_files(contents: Path) -> list[Path]:
    """The root's files beside an output (``contents.json``, and the licence texts list when they were shipped)."""
    return [contents, *(p for p in [contents.parent / LICENSE_TEXTS] if p.is_file())]


def from_cache(cache: Path, key: str, out: Path, *, warn: Say = notice) -> BuiltOutput | None:
    """The cached product of ``key`` copied into ``out`` with the ``contents.json`` of its root (every
    file checked against the entry's record while copied), or None: missing or damaged, rebuild."""
    record = store.read(cache, key, out, say=warn)
    if record is None:
        return None
    try:
        return BuiltOutput(name=str(record["name"]), type=str(record["type"]),
                       files=tuple(out / f["path"] for f in record["files"] if f["path"] not in ROOT_FILES),
                       firmware=tuple(map(str, record["firmware"])), boot={str(k): str(v) for k, v in
                                                                            dict(record["boot"]).items()})
    except (KeyError, TypeError, ValueError):
        warn(f"warning: cache entry {cache / key}: its record is malformed; rebuilding")
        return None


def to_cache(cache: Path, key: str, product: BuiltOutput, contents: Path, *, warn: Say = notice) -> None:
    """Store a product (and its root's contents.json); a cache that cannot be written is a warning."""
    meta = {"name": product.name, "type": product.type, "firmware": list(product.firmware),
            "boot": dict(product.boot)}
    try:
        store.write(cache, key, [*product.files, *root_files(contents)], meta)
    except OSError as exc:
        where = "" if exc.filename is not None else f"{cache}: "
        warn(f"warning: {where}{oserrors.describe(exc, 'writing the image cache').message}; the output is not "
             "cached")


def from_shared(shared: SharedImages | None, cache: Path, key: str, out: Path, *, name: str, type_: str,
                warn: Say = notice) -> BuiltOutput | None:
    """The product of ``key`` (the output ``name`` of type ``type_``) from the shared cache
    (composer/farm/imageshare.py) into ``out``, also kept in the local cache; None: no shared cache, absent or
    refused (then it is built)."""
    if shared is None:
        return None
    record = imageshare.fetch(shared, key, out, warn=warn, expect={"name": name, "type": type_})
    if record is None:
        return None
    try:
        product = BuiltOutput(name=str(record["name"]), type=str(record["type"]),
                              files=tuple(out / f["path"] for f in record["files"] if f["path"] not in ROOT_FILES),
                              firmware=tuple(map(str, record["firmware"])),
                              boot={str(k): str(v) for k, v in dict(record["boot"]).items()})
    except (KeyError, TypeError, ValueError):   # (the record's fields are checked by imageshare.fetch)
        return None
    if (out / CONTENTS).is_file():
        to_cache(cache, key, product, out / CONTENTS, warn=warn)
    return product


def to_shared(shared: SharedImages | None, key: str, product: BuiltOutput, contents: Path, *,
              warn: Say = notice) -> None:
    """Share a built product (and its root's contents.json) when a shared cache with a signing key is set."""
    if shared is not None:
        meta = {"name": product.name, "type": product.type, "firmware": list(product.firmware),
                "boot": dict(product.boot)}
        imageshare.push(shared, key, meta, [*product.files, *root_files(contents)], warn=warn)


def describe(product: BuiltOutput) -> dict[str, Any]:
    return {"name": product.name, "type": product.type, "firmware": list(product.firmware),
            "boot": dict(product.boot),
            "files": [{"path": f.name, "sha256": sha256_file(f), "size": f.stat().st_size} for f in product.files]}


def cap_caches(cache_root: Path, say: Callable[[str], None]) -> None:
    """The automatic size cap after a build (VCOMP_CACHE_MAX), least recently used entries first, over every
    cache kind."""
    from composer.caches import ops, policy
    from composer.caches.registry import KINDS
    done = ops.collect(KINDS, cache_root, max_size=ops.cap_from_env())
    if done.removed:
        size = policy.human(sum(e.size for e in done.removed))
        say(f"cache: evicted {len(done.removed)} least recently used entries ({size}) to stay under {ops.MAX_ENV}")
