"""Push a repository's served files to a remote publisher, in the order that keeps its readers consistent.

A repository's working directory (or a mirror's destination) holds the served files under metadata/ and
targets/ (composer/repo/publish.py). :func:`push` copies them to another :class:`RemotePublisher` (an S3
bucket, a WebDAV server, another directory: :mod:`composer.repo.remotes`) in this order:

1. targets/ (content-addressed: the name holds the hash, so one already there is not sent again);
2. versioned metadata ``N.ROLE.json`` of every role but root and snapshot (the targets and the delegated roles,
   the index): each names a version, so one already there is not sent again; then the buckets the snapshot
   names (``snapshot-bins/<sha256>.json``, content-addressed) and the snapshot patches
   ``snapshot-patches/N.json`` that lead to the current snapshot (untrusted: a client verifies what they give,
   composer/repo/snappatches.py; pruned like old metadata once out of the window);
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
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tuf.api.exceptions import RepositoryError
from tuf.api.metadata import Metadata, Snapshot, Timestamp

from composer.errors import UserError
from composer.repo import snapbins
from composer.repo.publish import METADATA, TARGETS, Publisher
from composer.repo.snappatches import PATCH_DIR, served_patches

VERSIONED = re.compile(r"(?P<version>[1-9][0-9]{0,9})\.(?P<role>[^/]+)\.json")
LAST = ("root.json", "timestamp.json")    # unversioned names, uploaded every time, timestamp.json last
LOG = "push-log.json"                     # beside metadata/ and targets/: when each state became current
LOG_MAX_BYTES = 64 << 20
LOG_MAX_ENTRIES = 1000                    # older entries are dropped: what only they name is never pruned


class RemotePublisher(Publisher, Protocol):
    """A publisher somewhere else that can say which of the served files it holds, keep the push log beside
    them, and delete (pruning)."""

    @property
    def where(self) -> str:
        """The destination as the user wrote it (for messages)."""

    def present(self, keys: Iterable[str]) -> frozenset[str]:
        """Which of ``keys`` (``metadata/NAME``, ``targets/NAME``) the destination already holds."""

    def get_log(self) -> bytes | None:
        """The push log (:data:`LOG`, beside metadata/ and targets/), None when there is none."""

    def put_log(self, data: bytes) -> None:
        """Replace the push log."""

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
class Pushed:
    """One entry of the push log: after ``time`` (UTC), the destination's timestamp.json reached ``current``."""

    time: dt.datetime
    current: frozenset[str]

    def to_dict(self) -> dict[str, object]:
        return {"time": self.time.isoformat(), "current": sorted(self.current)}


def parse_log(data: bytes, where: str) -> list[Pushed]:
    """The push log's entries, oldest first (bounded; anything else is one error naming the file)."""
    try:
        if len(data) > LOG_MAX_BYTES:
            raise ValueError(f"larger than {LOG_MAX_BYTES} bytes")
        doc = json.loads(data)
        entries = [Pushed(time=dt.datetime.fromisoformat(e["time"]).astimezone(dt.UTC),
                          current=frozenset(str(n) for n in e["current"])) for e in doc["pushes"]]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise UserError(f"{where}/{LOG}: not a push log ({exc})",
                        hint=f"delete {LOG} there: pruning starts again from the next push") from None
    return entries


def format_log(entries: Sequence[Pushed]) -> bytes:
    """Canonical bytes; consecutive entries naming the same state kept once (the earliest), the newest
    :data:`LOG_MAX_ENTRIES` kept."""
    kept: list[Pushed] = []
    for e in entries:
        if not kept or kept[-1].current != e.current:
            kept.append(e)
    doc = {"pushes": [e.to_dict() for e in kept[-LOG_MAX_ENTRIES:]]}
    return json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"


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
    patches = sorted((n for n in current if n.startswith(f"{PATCH_DIR}/")), key=lambda n: (len(n), n))
    buckets = sorted(n for n in current if n.startswith(f"{snapbins.DIR}/"))
    for role in order:
        if role == "snapshot":   # the buckets the snapshot names and its patches (untrusted) before the snapshots
            uploads += [Upload(key=f"{METADATA}/{n}", path=meta / n, always=False) for n in [*buckets, *patches]]
        uploads += [Upload(key=f"{METADATA}/{p.name}", path=p, always=False) for _, p in sorted(versioned[role])]
    uploads += [Upload(key=f"{METADATA}/{name}", path=meta / name, always=True)
                for name in LAST if (meta / name).is_file()]
    return uploads


def current_metadata(root: Path) -> frozenset[str]:
    """The versioned metadata names the current ``timestamp.json`` under ``root`` reaches: its snapshot and
    the role versions the snapshot names (``7.snapshot.json``, ``3.targets.json``, ``2.alice.json``, ...), and
    the patches that lead to that snapshot (``snapshot-patches/7.json``: the last KEEP there are), and the
    buckets it names with the bin versions they list (``snapshot-bins/<sha256>.json``, composer/repo/snapbins.py)."""
    meta = root / METADATA
    try:
        version = Metadata[Timestamp].from_bytes((meta / "timestamp.json").read_bytes()).signed.snapshot_meta.version
        snapshot = f"{version}.snapshot.json"
        signed = Metadata[Snapshot].from_bytes((meta / snapshot).read_bytes()).signed
        roles = {name: m.version for name, m in signed.meta.items()}
        table = snapbins.table(signed.unrecognized_fields) or {}
        buckets = []
        for bucket, named in sorted(table.items()):
            buckets.append(snapbins.file_name(named["hashes"]["sha256"]))
            with (meta / buckets[-1]).open("rb") as f:
                roles.update(snapbins.parse(f.read(snapbins.MAX_BUCKET_BYTES + 1), bucket, named))
    except (OSError, ValueError, RepositoryError) as exc:
        raise UserError(f"{meta}: the current timestamp and snapshot cannot be read ({exc})",
                        hint="repair the repository first (vcomp repo publish DIR)") from None
    return frozenset({snapshot, *(f"{v}.{name}" for name, v in roles.items()), *buckets,
                      *served_patches(meta, version)})   # untrusted snapshot patches (composer/repo/snappatches.py)


def superseded(log: Sequence[Pushed], *, grace: dt.timedelta, now: dt.datetime) -> list[str]:
    """The metadata keys to prune (pure): every name an entry of ``log`` reached that the newest entry does not,
    once the first entry without it (after the last one with it) is older than ``grace``. That entry was written
    after the timestamp.json that stopped reaching the name landed, so the name has been out of the current
    state at least that long. Roots are never in a log (clients walk the chain), nor are targets."""
    if not log:
        return []
    latest = log[-1].current
    last_with: dict[str, int] = {}
    for i, entry in enumerate(log):
        for name in entry.current:
            last_with[name] = i
    return sorted(f"{METADATA}/{name}" for name, i in last_with.items()
                  if name not in latest and now - log[i + 1].time > grace)


def prune(remote: RemotePublisher, *, grace: dt.timedelta, now: dt.datetime) -> list[str]:
    """Delete from ``remote`` the metadata :func:`superseded` names by its push log; the keys deleted."""
    raw = remote.get_log()
    if raw is None:
        return []
    log = parse_log(raw, remote.where)
    old = superseded(log, grace=grace, now=now)
    remote.delete(old)
    gone = frozenset(k.removeprefix(f"{METADATA}/") for k in old)
    remote.put_log(format_log([Pushed(time=e.time, current=e.current - gone) for e in log]))
    return old


def push(root: Path, remote: RemotePublisher, *, after: Callable[[Upload], None] = lambda u: None,
         clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> PushResult:
    """Upload what ``remote`` lacks of the served files under ``root``, in :func:`plan`'s order, then note the
    state it now serves in its push log (with ``clock``'s time); ``after`` is called after each upload
    (progress; the tests refresh a reader there)."""
    uploads = plan(root)
    current = current_metadata(root)
    raw = remote.get_log()
    log = parse_log(raw, remote.where) if raw is not None else []
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
    if not log or log[-1].current != current:
        remote.put_log(format_log([*log, Pushed(time=clock(), current=current)]))
    return PushResult(uploaded=sent, skipped=len(uploads) - sent, bytes=size)
