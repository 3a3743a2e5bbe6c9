"""One writer at a time on a repository, and the repair every writer runs first.

Every command that writes a repository (init, add, publish, refresh, rotate, delegate, sign-targets,
migrate) holds ``REPO/.lock`` (``composer.lockfile``: a second writer waits, ``--no-wait`` fails at
once, a dead holder's lock is released by the kernel). The lock file is not under ``metadata/`` or
``targets/``, so it is never served.

Writes are ordered so that a kill leaves the repository readable by clients (``timestamp.json`` is
replaced last; every file goes through a temporary name, fsync and rename). What a kill can leave
behind is repaired by the next writer, under the lock, before it does anything else:

* temporary files of an interrupted write (``.NAME.*.tmp``) are removed: the repository's publisher makes
  them at the top of metadata/ and targets/ only (composer/repo/publish.py), so the repair lists three
  directories and does not walk targets/ (O(1) in the repository's size; ``vcomp repo migrate`` walks it all,
  for what an older vcomp left deeper); metadata/ is not listed when the last writer left the state's listing
  of it clean (composer/repo/listing.py: no writer was killed since);
* the state database (``state.db``, composer/repo/statedb.py: the index entries of stored packages,
  derived data) is reconciled with the developers' signed role metadata, which is written first: a
  package a killed ``repo add`` already listed in its role gets its entry back from the stored target,
  so the next ``publish`` indexes it, and an
  entry no role lists any more is dropped (the index and the roles never disagree); a lost list of the
  published images and channel documents (composer/update/) is rebuilt from the index role. The database
  records the role versions it was last reconciled with (``roles``; ``repo add`` updates it in the same
  transaction as its entries), so when no role changed behind its back the repair reads no role at all
  and a writer's start costs O(roles), not O(packages).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from tuf.api.metadata import Targets

from composer import lockfile
from composer.errors import InvalidPackage, UserError
from composer.package.archive import read_header
from composer.repo.devbins import developer_targets
from composer.repo.index import IndexEntry
from composer.repo.publish import stored_target
from composer.repo.sparse import SPARSE_BIN_PREFIX
from composer.repo.statedb import remove_state
from composer.repo.store import INDEX_ROLE, SERVICE_ROLES, RepoStore
from composer.repo.vendored import RECORD as VENDORED_RECORD
from composer.repo.vendored import read_vendored

LOCK = ".lock"
IMAGE_SUFFIXES = (".caidx.json", ".channel.json")   # state.json "images": chunk indexes, channel documents
P = ParamSpec("P")
T = TypeVar("T")


@contextlib.contextmanager
def repo_lock(directory: Path) -> Iterator[None]:
    """Hold the repository's lock (``directory`` must exist: a typo is not created)."""
    if not directory.is_dir():
        raise UserError(f"{directory} is not a repository (no such directory)",
                        hint="create one with: vcomp repo init DIR --root-key ...")
    with lockfile.exclusive(directory / LOCK, f"repository '{directory}'"):
        yield


def locked(fn: Callable[Concatenate[RepoStore, P], T]) -> Callable[Concatenate[RepoStore, P], T]:
    """Run ``fn`` under the repository's lock, on a store re-read under the lock and repaired."""
    @functools.wraps(fn)
    def wrapper(store: RepoStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with repo_lock(store.dir):
            # what another writer changed meanwhile
            fresh = RepoStore(store.dir, legacy=store.legacy_ok, publisher=store.publisher)
            fresh.journal = not fresh.config.legacy   # metadata/'s listing kept in the state (repo/listing.py)
            try:
                repair(fresh)
                if fresh.journal:
                    fresh.begin_writing()
                out = fn(fresh, *args, **kwargs)
                if fresh.journal:
                    fresh.finish_writing()
                return out
            finally:
                fresh.close_state()
    return wrapper


def locked_directory(fn: Callable[Concatenate[Path, P], T]) -> Callable[Concatenate[Path, P], T]:
    """Run ``fn(directory, ...)`` under the lock of ``directory`` (for init and migrate, which open it)."""
    @functools.wraps(fn)
    def wrapper(directory: Path, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with repo_lock(directory):
            return fn(directory, *args, **kwargs)
    return wrapper


def repair(store: RepoStore, *, deep: bool = False) -> None:
    """Undo what a killed writer left half done (see the module docstring). Under the lock."""
    # (a state left clean by the last writer: no writer was killed since, no temporary file in metadata/)
    remove_temporaries(store.dir, deep=deep,
                       metadata_names=[] if store.journal and store.listed_from_state() else store.metadata_names())
    if store.config.legacy:
        return
    db = store.writable_state()
    versions = role_versions(store)
    if db.meta(ROLES_KEY) == versions:
        return   # the entries were written with these very roles: nothing to reconcile
    state = store.read_state()
    fixed = reconcile_state(store, state)
    if fixed != state:
        store.write_state(fixed)
    db.put((), meta={ROLES_KEY: versions})


ROLES_KEY = "roles"   # state.db meta: role -> version the packages table agrees with


def role_versions(store: RepoStore) -> dict[str, int]:
    """role -> current version of the top-level targets and every role in metadata/ (one directory listing),
    plus the vendored roles' file (a change to it changes what the developer roles contribute)."""
    # the sparse index's bins list no package (publish writes them: were they counted, every publish would
    # force a full reconcile); (the store's listing: publish asks it again)
    out = store.versions_except(f"{SPARSE_BIN_PREFIX}-")
    for role in ("root", "snapshot", *SERVICE_ROLES):   # publish's roles: they list no package
        out.pop(role, None)
    vendored = store.dir / VENDORED_RECORD
    if vendored.is_file():
        out[".vendored"] = vendored.stat().st_mtime_ns
    return dict(sorted(out.items()))


def remove_temporaries(directory: Path, *, deep: bool = False, metadata_names: Sequence[str] | None = None) -> None:
    """Delete ``.NAME.*.tmp`` files an interrupted write left (repository top, metadata/, targets/; with
    ``deep`` every directory below targets/) and the private upload copies (``.upload-*/``) of an
    interrupted ``repo add``. ``metadata_names``: metadata/'s listing when the caller has it (tens of
    thousands of names at a million packages: listed once)."""
    if directory.is_dir():
        for upload in directory.glob(".upload-*"):
            if upload.is_dir() and not upload.is_symlink():
                shutil.rmtree(upload, ignore_errors=True)
    tops = [(directory, False, None), (directory / "metadata", False, metadata_names),
            (directory / "targets", deep, None)]
    for top, deep, listed in tops:
        if not top.is_dir():
            continue
        walked = os.walk(top) if deep else [(str(top), [], listed if listed is not None else os.listdir(top))]
        for dirpath, _, names in walked:
            for name in names:
                if name.startswith(".") and name.endswith(".tmp"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(Path(dirpath) / name)


def listed_targets(store: RepoStore) -> dict[str, tuple[int, str]]:
    """path -> (length, sha256) of every package the current developer role metadata lists (themselves or
    through their hash bins, composer/repo/devbins.py).

    A vendored role (repo/vendored.py) is an upstream developer's metadata, copied as it is: it lists every
    package of that developer, of which this repository holds the ones it vendored (the delegated names, the
    stored targets)."""
    targets = store.load("targets", Targets).signed
    roles = (targets.delegations.roles or {}) if targets.delegations else {}
    vendored = read_vendored(store.dir)
    out: dict[str, tuple[int, str]] = {}
    for name in sorted(roles):
        if name in SERVICE_ROLES or not store.has_role(name):
            continue
        for path, info in developer_targets(store, name, roles[name]).items():   # bins too (devbins.py)
            digest = str(info.hashes.get("sha256", ""))
            if name in vendored and not (roles[name].is_delegated_path(path)
                                         and (store.targets_dir / stored_target(path, digest)).is_file()):
                continue
            out.setdefault(path, (info.length, digest))
    return out


def reconcile_state(store: RepoStore, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` made to list exactly the packages the developer roles list (entries rebuilt from targets)."""
    listed = listed_targets(store)
    packages: dict[str, Any] = {}
    for path, (length, digest) in sorted(listed.items()):
        known = state.get("packages", {}).get(path)
        if isinstance(known, dict) and known.get("sha256") == digest:
            packages[path] = known
            continue
        stored = store.targets_dir / stored_target(path, digest)
        try:
            header = read_header(stored)
        except (OSError, InvalidPackage) as exc:
            raise UserError(f"{store.dir}: {path} is listed by its developer role but its stored target {stored} "
                            f"is unreadable ({exc})",
                            hint="restore targets/ from a backup, or re-add the package: vcomp repo add") from None
        packages[path] = IndexEntry.from_header(header, size=length, sha256=digest).to_dict()
    images = state.get("images")
    if not isinstance(images, dict):
        images = listed_images(store)
    return {**state, "packages": packages, **({"images": images} if images else {})}


def listed_images(store: RepoStore) -> dict[str, dict[str, Any]]:
    """path -> length and sha256 of the image chunk indexes and channel documents (composer/update/) the current
    index role lists and the store holds: what state.json lists of them, rebuilt when state.json was lost (else
    the next publish would stop serving every image and channel)."""
    if not store.has_role(INDEX_ROLE):
        return {}
    out = {}
    for path, info in sorted(store.load(INDEX_ROLE, Targets).signed.targets.items()):
        digest = str(info.hashes.get("sha256", ""))
        if path.endswith(IMAGE_SUFFIXES) and (store.targets_dir / stored_target(path, digest)).is_file():
            out[path] = {"length": info.length, "sha256": digest}
    return out


@locked_directory
def migrate_state(directory: Path, *, rebuild: bool = False) -> int:
    """Move the repository's state to ``state.db`` (importing state.json), or with ``rebuild`` drop a damaged
    database first; then reconcile it with the signed roles. Return the number of package entries."""
    if rebuild:
        remove_state(directory)
    store = RepoStore(directory)
    try:
        repair(store, deep=True)   # opens (creates, imports) the database and reconciles it
        return store.writable_state().count()
    finally:
        store.close_state()
