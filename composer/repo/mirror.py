"""A verifying, incremental mirror: every file is verified through the pinned root before it is written.

The copy is itself a servable repository (same layout, consistent snapshots). Content-addressed
targets already present are not downloaded again; timestamp.json is written last.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import Metadata, Root, TargetFile
from tuf.ngclient import UpdaterConfig

from composer.errors import VerificationError
from composer.fsutil import atomic_copy, atomic_write, sha256_file
from composer.limits import LimitExceeded
from composer.repo.client import RepositoryClient, describe
from composer.repo.index import index_target_path
from composer.repo.publish import stored_target
from composer.repo.snappatches import derive_patches
from composer.repo.sparse import SPARSE_ROOT, base_target_path, parse_sparse
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
    downloaded = skipped = 0
    copied: set[str] = set()

    def copy_target(path: str, *, listed: bool = True) -> bool:
        """Copy one verified target; False when it is no longer a target and ``listed`` is not required."""
        nonlocal downloaded, skipped
        info = updater.get_targetinfo(path)
        if info is None:
            if not listed:
                return False
            raise VerificationError(f"{path}: not a target of the repository")
        if present(path, info):
            skipped += 1
            return True
        src = client.download(path)  # verified length + hash, through the package cache
        atomic_copy(src, targets / stored_target(path, info.hashes["sha256"]))
        downloaded += 1
        return True

    def present(path: str, info: TargetFile) -> bool:
        out = targets / stored_target(path, info.hashes["sha256"])
        return out.exists() and sha256_file(out) == info.hashes["sha256"]

    def held(path: str) -> bool:
        """Whether the copy already holds this target (then, for a sparse file, its packages too: they are
        copied before it)."""
        info = updater.get_targetinfo(path)
        return info is not None and present(path, info)

    roles = client.load_delegations()   # every role and hash bin (empty ones too: a client may walk into any)
    for arch in arches:
        copy_target(index_target_path(arch))
        behind = client.whole_behind(arch)   # a whole index behind the sparse files (at scale): they are current
        try:
            entries = client.index(arch)
        except LimitExceeded:   # past what a client reads (a million packages): copied, not read
            if not client.has_sparse(arch):
                raise
            entries, behind = [], 1
        for entry in entries:
            if entry.path not in copied and copy_target(entry.path, listed=not behind):
                copied.add(entry.path)
        if client.has_sparse(arch):   # the sparse index too, as the bins list it
            for path in sparse_listing(client, roles, arch):
                if behind and path != base_target_path(arch) and not held(path):   # its packages first
                    for doc in _sparse_packages(client, arch, path):
                        if doc not in copied and copy_target(doc):
                            copied.add(doc)
                copy_target(path)
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
    for name, data in updater.buckets():   # the hash bins' buckets the snapshot names (composer/repo/snapbins.py)
        atomic_write(meta / name, data)
    derive_patches(meta)   # untrusted snapshot patches between the snapshots it holds (composer/repo/snappatches.py)
    atomic_write(meta / "timestamp.json", (client.metadata_dir / "timestamp.json").read_bytes())
    return MirrorResult(downloaded=downloaded, skipped=skipped, packages=len(copied))


def sparse_listing(client: RepositoryClient, roles: list[str], arch: str) -> list[str]:
    """Every sparse file of ``arch`` the loaded hash bins list, base.json first."""
    prefix = f"{SPARSE_ROOT}/{arch}/"
    paths = {p for role in roles for p in client.role_targets(role) if p.startswith(prefix)}
    base = base_target_path(arch)
    return [base, *sorted(paths - {base})] if base in paths else sorted(paths)


def _sparse_packages(client: RepositoryClient, arch: str, path: str) -> list[str]:
    """The package paths a verified sparse file lists (the name comes from the path it is a target at)."""
    name = unquote(path.rsplit("/", 1)[-1].removesuffix(".json"))
    found = parse_sparse(client.download(path).read_bytes(), f"{client.urls[0]}: {path}", arch=arch, name=name)
    return sorted({str(d["path"]) for d in found.packages})


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
