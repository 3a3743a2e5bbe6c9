"""Push a repository's served files to a remote publisher, in the order that keeps its readers consistent.

A repository's working directory (or a mirror's destination) holds the served files under metadata/ and
targets/ (composer/repo/publish.py). :func:`push` copies them to another :class:`RemotePublisher` (an S3
bucket, a WebDAV server, another directory: :mod:`composer.repo.remotes`) in this order:

1. targets/ (content-addressed: the name holds the hash, so one already there is not sent again);
2. versioned metadata ``N.ROLE.json`` of every role but root and snapshot (the targets and the delegated roles,
   the index): each names a version, so one already there is not sent again;
3. ``N.snapshot.json``, then the versioned roots ``N.root.json`` and ``root.json``;
4. ``timestamp.json`` last, always.

Of the versioned metadata only what the current timestamp reaches is sent (its snapshot and the role
versions that snapshot names), and every ``N.root.json`` (clients walk the root chain); every target is sent.

A reader (TUF consistent snapshots) starts from timestamp.json and follows names that never change, so at
any moment between two uploads it finds either the old timestamp and everything it reaches (a push never
deletes nor overwrites a name) or the new one with everything it reaches (uploaded before it). A push that
stops halfway is finished by running it again: what is there is skipped.

:func:`superseded` is the pruning rule (``--prune-after``): a role's old metadata version the current state
no longer reaches, once a newer version of the role has been there for longer than the grace period.
Roots, root.json, timestamp.json and targets are never pruned (docs/publishing.md).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from tuf.api.exceptions import RepositoryError
from tuf.api.metadata import Metadata, Snapshot, Timestamp

from composer.errors import UserError
from composer.repo.publish import METADATA, TARGETS, Publisher

VERSIONED = re.compile(r"(?P<version>[1-9][0-9]{0,9})\.(?P<role>[^/]+)\.json")
LAST = ("root.json", "timestamp.json")    # unversioned names, uploaded every time, timestamp.json last


class RemotePublisher(Publisher, Protocol):
    """A publisher somewhere else that can say which of the served files it already holds."""

    @property
    def where(self) -> str:
        """The destination as the user wrote it (for messages)."""

    def present(self, keys: Iterable[str]) -> frozenset[str]:
        """Which of ``keys`` (``metadata/NAME``, ``targets/NAME``) the destination already holds."""


@runtime_checkable
class Prunable(Protocol):
    """A destination that can list its metadata (with the time each was stored) and delete."""

    def listing(self, kind: str) -> Mapping[str, dt.datetime]:
        """``kind``/NAME -> when it was stored (UTC), for every object under ``kind`` (metadata or targets)."""

    def delete(self, keys: Iterable[str]) -> None:
        """Remove ``keys`` (a missing one is fine)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Upload:
    """One served file: its key (``metadata/NAME`` or ``targets/NAME``) and where it is locally."""

    key: str
    path: Path
    always: bool            # sent even if present (root.json, timestamp.json: the names that change)

    @property
    def kind(self) -> str:
        return self.key.partition("/")[0]

    @property
    def name(self) -> str:
        return self.key.partition("/")[2]


@dataclass(frozen=True, slots=True, kw_only=True)
class PushResult:
    uploaded: int
    skipped: int
    bytes: int


def plan(root: Path) -> list[Upload]:
    """The served files under ``root``, in upload order (see the module's docstring); temporary files skipped."""
    meta, targets = root / METADATA, root / TARGETS
    if not (meta / "timestamp.json").is_file():
        raise UserError(f"{root}: no metadata/timestamp.json: not a published repository",
                        hint="publish it first (vcomp repo publish DIR) or name the repository's directory")
    files = sorted(p for p in targets.rglob("*") if p.is_file() and not p.name.startswith(".")) \
        if targets.is_dir() else []
    uploads = [Upload(key=f"{TARGETS}/{p.relative_to(targets).as_posix()}", path=p, always=False) for p in files]
    current = current_metadata(root)
    versioned: dict[str, list[tuple[int, Path]]] = {}
    for p in meta.iterdir():
        m = VERSIONED.fullmatch(p.name)
        if m and p.is_file() and (m["role"] == "root" or p.name in current):
            versioned.setdefault(m["role"], []).append((int(m["version"]), p))
    order = sorted(versioned, key=lambda role: ({"snapshot": 1, "root": 2}.get(role, 0), role))
    for role in order:
        uploads += [Upload(key=f"{METADATA}/{p.name}", path=p, always=False) for _, p in sorted(versioned[role])]
    uploads += [Upload(key=f"{METADATA}/{name}", path=meta / name, always=True)
                for name in LAST if (meta / name).is_file()]
    return uploads


def current_metadata(root: Path) -> frozenset[str]:
    """The versioned metadata names the current ``timestamp.json`` under ``root`` reaches: its snapshot and
    the role versions the snapshot names (``7.snapshot.json``, ``3.targets.json``, ``2.alice.json``, ...)."""
    meta = root / METADATA
    try:
        version = Metadata[Timestamp].from_bytes((meta / "timestamp.json").read_bytes()).signed.snapshot_meta.version
        snapshot = f"{version}.snapshot.json"
        roles = Metadata[Snapshot].from_bytes((meta / snapshot).read_bytes()).signed.meta
    except (OSError, ValueError, RepositoryError) as exc:
        raise UserError(f"{meta}: the current timestamp and snapshot cannot be read ({exc})",
                        hint="repair the repository first (vcomp repo publish DIR)") from None
    return frozenset({snapshot, *(f"{m.version}.{name}" for name, m in roles.items())})


def superseded(stored: Mapping[str, dt.datetime], current: frozenset[str], *, grace: dt.timedelta,
               now: dt.datetime) -> list[str]:
    """The metadata keys of ``stored`` (``metadata/NAME`` -> when stored) to prune (pure): a version of a role
    other than root that ``current`` does not name, when a later version of that role was stored more than
    ``grace`` before ``now`` (it has been out of the current state at least that long)."""
    versions: dict[str, list[tuple[int, str]]] = {}
    for key in stored:
        m = VERSIONED.fullmatch(key.removeprefix(f"{METADATA}/"))
        if key.startswith(f"{METADATA}/") and m and m["role"] != "root":
            versions.setdefault(m["role"], []).append((int(m["version"]), key))
    old: list[str] = []
    for found in versions.values():
        found.sort()
        for i, (_, key) in enumerate(found[:-1]):
            successor = found[i + 1][1]
            if key.removeprefix(f"{METADATA}/") not in current and now - stored[successor] > grace:
                old.append(key)
    return sorted(old)


def prune(root: Path, remote: RemotePublisher, *, grace: dt.timedelta, now: dt.datetime) -> list[str]:
    """Delete from ``remote`` the metadata :func:`superseded` names (after a push of ``root``); the keys."""
    if not isinstance(remote, Prunable):
        raise UserError(f"{remote.where}: this destination cannot list what it holds, so it cannot be pruned",
                        hint="leave out --prune-after (old versions stay; docs/publishing.md), or prune on the server")
    old = superseded(remote.listing(METADATA), current_metadata(root), grace=grace, now=now)
    remote.delete(old)
    return old


def push(root: Path, remote: RemotePublisher, *, after: Callable[[Upload], None] = lambda u: None) -> PushResult:
    """Upload what ``remote`` lacks of the served files under ``root``, in :func:`plan`'s order; ``after`` is
    called after each upload (progress; the tests refresh a reader there)."""
    uploads = plan(root)
    have = remote.present(u.key for u in uploads if not u.always)
    sent = size = 0
    for u in uploads:
        if not u.always and u.key in have:
            continue
        if u.kind == METADATA:
            remote.put_metadata(u.name, u.path.read_bytes())
        else:
            remote.put_target_file(u.name, u.path)
        sent += 1
        size += u.path.stat().st_size
        after(u)
    return PushResult(uploaded=sent, skipped=len(uploads) - sent, bytes=size)
