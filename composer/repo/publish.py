"""Where a repository's signed files go: the :class:`Publisher` seam.

A repository has a working directory, the one ``vcomp repo`` commands are given: repo.toml, the state (state.db), the
upload area, and the metadata it reads back to sign the next versions (:class:`~composer.repo.store.RepoStore`).
What clients download are the *served* files, under two names:

    metadata/NAME    N.root.json, N.targets.json, N.<role>.json, N.snapshot.json, root.json, timestamp.json
    targets/NAME     content-addressed (consistent snapshots): see :func:`stored_target`

Every write of a served file goes through a publisher, in the order a client can follow at any moment:
targets before the metadata that lists them, the metadata of a version before the snapshot naming it,
and ``timestamp.json`` last. A publisher makes each file appear whole (never a partial file under its
final name) and durable before it returns, so a client sees the old or the new repository and a crash
leaves a repository that ``repair`` (repo/guard.py) recognises.

:class:`LocalDirectory` (the working directory itself, written in place and atomically) is the one
implementation. A remote publisher (S3, docs/architecture/seams.md) wraps it: it must keep the working
directory current, since the next command reads the metadata back from there, and then upload each file
under the same name, keeping the order above (``timestamp.json`` uploaded last, after every file it
reaches); content-addressed targets never change, so one that is already there is not sent again.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from composer.fsutil import atomic_copy, atomic_write

METADATA = "metadata"
TARGETS = "targets"


class Publisher(Protocol):
    """The served files of one repository: each put makes one file appear whole and durable."""

    def put_metadata(self, name: str, data: bytes) -> None:
        """metadata/``name`` (a signed TUF document), replacing an older one of the same name."""

    def put_target(self, name: str, data: bytes) -> None:
        """targets/``name``, a small content-addressed target (an index)."""

    def put_target_file(self, name: str, source: Path) -> None:
        """targets/``name``, the verified file at ``source`` (a package), handed over: the publisher may
        move it. A target already stored under ``name`` is kept (the name holds its hash)."""


def stored_target(path: str, sha256: str) -> str:
    """The name under targets/ of target ``path`` with that hash: ``packages/hello/<sha256>.hello-1.0.0-x86_64.vpk``
    (TUF consistent snapshots: a client asks for exactly the bytes its metadata names)."""
    directory, _, base = path.rpartition("/")
    return f"{directory}/{sha256}.{base}" if directory else f"{sha256}.{base}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalDirectory:
    """The repository's own directory: ``root``/metadata and ``root``/targets, written atomically in place.

    Every temporary file is made at the top of metadata/ or targets/ (``.NAME.*.tmp``) and renamed into its
    directory, so what a killed writer leaves is found by listing those two directories, not by walking
    targets/ (a directory per package name: a million of them in a large repository; composer/repo/guard.py)."""

    root: Path

    def put_metadata(self, name: str, data: bytes) -> None:   # snapshot-patches/N.json: in a subdirectory
        atomic_write(self.root / METADATA / name, data, tmp_dir=self.root / METADATA)

    def put_target(self, name: str, data: bytes) -> None:
        atomic_write(self.root / TARGETS / name, data, tmp_dir=self.root / TARGETS)

    def put_target_file(self, name: str, source: Path) -> None:
        dest = self.root / TARGETS / name
        if dest.exists():
            return
        with source.open("rb") as f:
            os.fsync(f.fileno())    # durable before any metadata points at it
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, dest)   # the verified copy itself (same file system: the repository)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            atomic_copy(source, dest, tmp_dir=self.root / TARGETS)   # targets/ on another file system: copy
        _fsync_dir(dest.parent)


@dataclass(frozen=True, slots=True)
class TrackedPublisher:
    """A store's publisher (composer/repo/store.py): every metadata file put through it is also reported to
    ``seen`` (the store's listing of role versions), and ``before`` is called before it is written (the
    store marks its state's listing of metadata/ not clean: composer/repo/listing.py)."""

    inner: Publisher
    seen: Callable[[str], None]
    before: Callable[[], None] = lambda: None   # called before each metadata file is put

    def put_metadata(self, name: str, data: bytes) -> None:
        self.before()
        self.inner.put_metadata(name, data)
        self.seen(name)

    def put_target(self, name: str, data: bytes) -> None:
        self.inner.put_target(name, data)

    def put_target_file(self, name: str, source: Path) -> None:
        self.inner.put_target_file(name, source)


def untracked(publisher: Publisher) -> Publisher:
    """The publisher itself, not a store's tracking wrapper of it."""
    return publisher.inner if isinstance(publisher, TrackedPublisher) else publisher


def put_target_files(publisher: Publisher, items: Sequence[tuple[str, Path]]) -> None:
    """Hand many verified packages over (``(name, source)`` pairs, as :meth:`Publisher.put_target_file`).

    The local directory moves them all and makes them durable with one ``os.sync()`` and one fsync per
    directory, instead of two fsyncs per file (an archive import adds tens of thousands); another publisher
    gets them one by one."""
    publisher = untracked(publisher)
    if not isinstance(publisher, LocalDirectory):
        for name, source in items:
            publisher.put_target_file(name, source)
        return
    directories: set[Path] = set()
    for name, source in items:
        dest = publisher.root / TARGETS / name
        if dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            atomic_copy(source, dest, durable=False, tmp_dir=publisher.root / TARGETS)
        directories.add(dest.parent)
    os.sync()   # every moved file's data and name, before any metadata points at them
    for directory in sorted(directories):
        _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
