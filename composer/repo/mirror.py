"""A verifying, incremental mirror: every file is verified through the pinned root before it is written.

The copy is itself a servable repository (same layout, consistent snapshots). Content-addressed
targets already present are not downloaded again; timestamp.json is written last.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import Metadata, Root
from tuf.ngclient import UpdaterConfig

from composer.errors import VerificationError
from composer.fsutil import atomic_copy, atomic_write, sha256_file
from composer.repo.client import RepositoryClient, describe
from composer.repo.index import index_target_path
from composer.repo.publish import stored_target
from composer.repo.snappatches import derive_patches
from composer.repo.sparse import sparse_paths
from composer.repo.transports import UrlFetcher

ROOT_MAX_LENGTH = UpdaterConfig().root_max_length  # a root is bounded like ngclient bounds it


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorResult:
    downloaded: int
    skipped: int
    packages: int


def mirror(client: RepositoryClient, dest: Path, arches: list[str]) -> MirrorResult:
    """Copy the repository's current verified state into ``dest``: targets first, then the metadata, with
    timestamp.json last (a client of ``dest`` sees the old or the new mirror). Needs the repository:
    a mirror is never made from a cache."""
    client.fallback = False
    try:
        return _mirror(client, dest, arches)
    except (tuf_exc.RepositoryError, tuf_exc.DownloadError) as exc:
        raise VerificationError(f"mirror of {client.urls[0]}: {describe(exc)}",
                                hint="check that the repository is reachable and run again; the mirror "
                                     "directory keeps its previous state") from None


def _mirror(client: RepositoryClient, dest: Path, arches: list[str]) -> MirrorResult:
    client.refresh()
    updater = client.updater
    meta = dest / "metadata"
    targets = dest / "targets"
    meta.mkdir(parents=True, exist_ok=True)
    targets.mkdir(parents=True, exist_ok=True)
    downloaded = skipped = packages = 0

    def copy_target(path: str) -> None:
        nonlocal downloaded, skipped
        info = updater.get_targetinfo(path)
        if info is None:
            raise VerificationError(f"{path}: not a target of the repository")
        out = targets / stored_target(path, info.hashes["sha256"])
        if out.exists() and sha256_file(out) == info.hashes["sha256"]:
            skipped += 1
            return
        src = client.download(path)  # verified length + hash, through the package cache
        atomic_copy(src, out)
        downloaded += 1

    for arch in arches:
        copy_target(index_target_path(arch))
        for entry in client.index(arch):
            copy_target(entry.path)
            packages += 1
        if client.has_sparse(arch):   # the sparse index too (its bins' metadata is then in the cache)
            for path in sparse_paths(arch, client.index(arch)):
                copy_target(path)
    client.load_delegations()   # every role and hash bin (empty ones too: a client may walk into any of them)
    for version, raw in _root_chain(client):
        atomic_write(meta / f"{version}.root.json", raw)
    atomic_write(meta / "root.json", (client.metadata_dir / "root.json").read_bytes())
    # the verified metadata ngclient stored, under their consistent-snapshot names
    for f in sorted(client.metadata_dir.glob("*.json")):
        if f.name in ("root.json", "timestamp.json"):
            continue
        data = f.read_bytes()
        version = Metadata.from_bytes(data).signed.version
        atomic_write(meta / f"{version}.{f.name}", data)
    derive_patches(meta)   # untrusted snapshot patches between the snapshots it holds (composer/repo/snappatches.py)
    atomic_write(meta / "timestamp.json", (client.metadata_dir / "timestamp.json").read_bytes())
    return MirrorResult(downloaded=downloaded, skipped=skipped, packages=packages)


def _root_chain(client: RepositoryClient) -> list[tuple[int, bytes]]:
    trusted = Metadata[Root].from_bytes(client.trusted_root)
    current_raw = (client.metadata_dir / "root.json").read_bytes()
    current = Metadata[Root].from_bytes(current_raw)
    chain = [(trusted.signed.version, client.trusted_root)]
    prev = trusted
    fetcher = UrlFetcher()
    for version in range(trusted.signed.version + 1, current.signed.version + 1):
        raw = current_raw if version == current.signed.version else \
            fetcher.download_bytes(f"{client.urls[0]}/metadata/{version}.root.json", ROOT_MAX_LENGTH)
        md = Metadata[Root].from_bytes(raw)
        prev.verify_delegate("root", md)  # a threshold of the previous root's keys
        md.verify_delegate("root", md)    # and of its own
        chain.append((version, raw))
        prev = md
    return chain
