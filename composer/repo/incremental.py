"""Incremental publish: what ``repo publish`` costs after a change is proportional to the change.

A full publish rebuilds every index file from every entry: the whole per-architecture indexes, every sparse
per-name file, every hash bin. After a ``repo add`` of one package, what actually changes is the sparse files
of the names that package touches (its own, the names it provides, the base set when it is in it: the state
records them in its ``changes`` table in the add's own transaction, composer/repo/statedb.py), the hash bins
listing those files, the index role, the snapshot and the timestamp. An incremental publish rebuilds exactly
those, from indexed queries of the state:

* the sparse files of the changed names (``name_file``/``base_file``, the same functions a full publish uses,
  so both make the same bytes), written when their bytes changed;
* the bins listing them (read, updated, re-signed: ~256 files each), nothing else;
* the index role (its whole-index and image listings kept or updated) and the snapshot (the entries of the
  roles whose version changed; the others' lengths and hashes carried over, not re-read).

The **whole per-architecture indexes** are O(n) to build whatever changed, so at scale (``WHOLE_DEFER_FROM``
packages and more) an incremental publish rebuilds them only once ``max(WHOLE_MIN_BACKLOG, n / 64)`` changes
accumulated since they were built (amortised: O(64) entries a change), as Debian rebuilds its Packages files
per archive run, not per upload. Until then each whole index target keeps its file and says in the signed
index role how many changes it is behind (``custom.behind``, composer/repo/index.py). Readers that need the
current state read the sparse files whenever a whole index is behind (``RepositoryClient.prefers_sparse``):
resolution, fetching the locked packages, ``outdated``, the moved-package check, device and root upgrades and
mirrors; listings (``search``, catalogs, vendoring) read the whole index and may lag by that backlog. A full
publish always rebuilds them.

A publish is **full** when the state has no record of the last publish (a new or migrated state, or one
written by an older vcomp), when ``--full`` is given, when the architectures changed, when more names changed
than ``max(MAX_INCREMENTAL, n / 8)``, when the bin count must change (the number of sparse files crossed a
power of two: ``bin_bits``), and once the ``renew_by`` date passed: every bin was signed at least half its
validity before that date, so a full publish then re-signs the ones that would expire within half their
period before any expires (``sign_bin``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tuf.api.metadata import MetaFile, TargetFile, Targets

from composer.repo import snapshotdoc
from composer.repo.hashbins import bin_bits, sign_bin
from composer.repo.index import IndexEntry
from composer.repo.publish import stored_target
from composer.repo.sparse import MAX_NAME, base_file, base_target_path, name_file, sparse_target_path
from composer.repo.statedb import BASE_NAME, StateDB
from composer.repo.store import RepoStore, utcnow
from composer.trust.keys import SigningKey

RECORD_KEY = "published"     # state.db meta: what the last publish left (Record)
RECORD_FORMAT = 3   # 3: the whole indexes' backlog (2: none; a record of format 1 means a full publish)
READABLE_RECORDS = frozenset({2, 3})
MAX_INCREMENTAL = 10_000     # changed names an incremental publish takes at least (above n / 8 as well: full)
WHOLE_DEFER_FROM = 5_000     # packages from which an incremental publish may leave the whole indexes behind
WHOLE_MIN_BACKLOG = 1_000    # changes they may be behind at least (and n / 64)
WHOLE_MAX_AGE = dt.timedelta(hours=6)   # and for how long at most (Debian's archive runs four times a day)


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """What the last publish left: the sparse bins' prefix bits and file count, the architectures, when a
    full publish is due (ISO 8601, UTC), and how many changes the whole indexes are behind."""

    bits: int
    files: int
    arches: tuple[str, ...]
    renew_by: str
    behind: int = 0
    behind_since: str = ""   # when the whole indexes fell behind (ISO 8601, UTC; "" when they are current)

    def to_dict(self) -> dict[str, object]:
        return {"format": RECORD_FORMAT, "bits": self.bits, "files": self.files, "arches": list(self.arches),
                "renew_by": self.renew_by, "behind": self.behind, "behind_since": self.behind_since}

    @classmethod
    def from_value(cls, value: object) -> Record | None:
        """The record, or None for a missing or unexpected one (the next publish is then full)."""
        if not isinstance(value, Mapping) or value.get("format") not in READABLE_RECORDS:
            return None
        try:
            arches = value["arches"]
            if not isinstance(arches, list) or not all(isinstance(a, str) for a in arches):
                return None
            renew = str(value["renew_by"])
            dt.datetime.fromisoformat(renew)
            behind = int(value.get("behind", 0))
            since = str(value.get("behind_since", ""))
            if since:
                dt.datetime.fromisoformat(since)
            return cls(bits=int(value["bits"]), files=int(value["files"]), arches=tuple(arches), renew_by=renew,
                       behind=max(behind, 0), behind_since=since if behind > 0 else "")
        except (KeyError, TypeError, ValueError):
            return None


STARTED = "publishing"   # a key of the record while a publish runs: a kill leaves it, the next publish is full


def started(raw: object) -> bool:
    """Whether the stored record (``raw``, as read) is marked by a publish that started and did not finish."""
    return isinstance(raw, Mapping) and raw.get(STARTED) is True


def mark_started(raw: object) -> dict[str, object]:
    """The stored record marked as a publish's start (written before it signs anything; the record it writes
    after the timestamp replaces it)."""
    return {**(raw if isinstance(raw, Mapping) else {}), STARTED: True}


def renew_date(index_days: int) -> str:
    """A full publish's renewal date: a quarter of the index validity from now (every bin then has at least a
    quarter of its validity left, and the full publish re-signs those within half of it)."""
    return (utcnow() + dt.timedelta(days=max(index_days, 1) / 4)).isoformat()


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What this publish does: ``changes`` (None: a full publish), and why a publish is full."""

    changes: list[tuple[str, str]] | None
    record: Record | None
    why: str   # "" when incremental


def plan(db: StateDB, record: Record | None, *, arches: Sequence[str], bits: int | None, full: bool,
         interrupted: bool, packages: int) -> Plan:
    """Decide between a full and an incremental publish (see the module docstring); ``interrupted``: the
    metadata shows a publish that did not finish (a bin or the index role newer than the snapshot lists)."""
    why = ("requested" if full else "no record of the last publish" if record is None
           else "the last publish did not finish" if interrupted
           else "the architectures changed" if record.arches != tuple(arches)
           else "the hash bins changed" if bits is None or bits != record.bits
           else "the bins' renewal date passed" if dt.datetime.fromisoformat(record.renew_by) <= utcnow()
           else "")
    changes = None if why else db.changes(max(MAX_INCREMENTAL, packages // 8))
    if changes is None:
        return Plan(changes=None, record=record, why=why or "too many changes")
    return Plan(changes=changes, record=record, why="")


@dataclass(frozen=True, slots=True, kw_only=True)
class Backlog:
    """The whole indexes left as they are: how many changes behind, since when (ISO 8601, UTC)."""

    behind: int
    since: str


def whole_backlog(record: Record | None, changes: Sequence[tuple[str, str]] | None, packages: int, *,
                  listed: bool) -> Backlog | None:
    """The whole indexes' backlog after this publish if it leaves them as they are, or None when it must
    rebuild them: a full publish (``changes`` None), a small repository, a backlog past its budget of changes
    or older than WHOLE_MAX_AGE, or a whole index not ``listed`` in the index role."""
    if changes is None or record is None or not listed or not whole_budget(packages):
        return None
    behind = record.behind + len(changes)
    since = record.behind_since if record.behind and record.behind_since else utcnow().isoformat()
    if behind > whole_budget(packages) or dt.datetime.fromisoformat(since) + WHOLE_MAX_AGE <= utcnow():
        return None
    return Backlog(behind=behind, since=since if behind else "")


def whole_budget(packages: int) -> int:
    """How many changes the whole indexes of a repository of ``packages`` may be behind (0: none, it is small):
    a rebuild every ``n / 64`` changes or more costs O(64) entries a change, amortised."""
    return max(WHOLE_MIN_BACKLOG, packages // 64) if packages >= WHOLE_DEFER_FROM else 0


def changed_files(db: StateDB, changes: Iterable[tuple[str, str]], arches: Sequence[str]) -> dict[str, bytes | None]:
    """path -> new bytes (None: the file goes away) of every sparse file the ``changes`` touch."""
    out: dict[str, bytes | None] = {}
    for name, changed_arch in changes:
        for arch in arches:
            if changed_arch not in (arch, "noarch"):
                continue
            both = (arch, "noarch")
            if name == BASE_NAME:
                out[base_target_path(arch)] = base_file(arch, db.base_names("essential", both),
                                                        db.base_names("required", both))
            elif 0 < len(name) <= MAX_NAME:   # (no file is made for a longer name: as in a full build)
                out[sparse_target_path(arch, name)] = name_file(
                    arch, name, [IndexEntry.from_dict(d) for d in db.named(name, both)],
                    db.linked("provides", name, both))
    return out


def update_bins(store: RepoStore, index: Targets, files: Mapping[str, bytes | None], record: Record,
                keys: Sequence[SigningKey], *, days: int) -> tuple[int, list[str]] | None:
    """Write the changed sparse files and re-sign the bins listing them; return the new file count and the
    bins signed, or None (nothing written) when that count needs another number of bins (then the publish is
    a full one)."""
    succinct = index.delegations.succinct_roles if index.delegations else None
    if succinct is None:
        return None
    grouped: dict[str, dict[str, bytes | None]] = {}
    for path, data in files.items():
        grouped.setdefault(succinct.get_role_for_target(path), {})[path] = data
    total = record.files
    listings: dict[str, dict[str, TargetFile]] = {}
    puts: dict[str, bytes] = {}
    for bin_name, changed in sorted(grouped.items()):
        listed = dict(store.load(bin_name, Targets).signed.targets) if store.has_role(bin_name) else {}
        for path, data in sorted(changed.items()):
            if data is None:
                total -= path in listed
                listed.pop(path, None)
                continue
            info = TargetFile.from_data(path, data, ["sha256"])
            total += path not in listed
            if listed.get(path) != info:
                puts[stored_target(path, info.hashes["sha256"])] = data
            listed[path] = info
        listings[bin_name] = listed
    if bin_bits(total) != succinct.bit_length:
        return None
    for name, data in sorted(puts.items()):
        store.publisher.put_target(name, data)
    return total, [name for name, listed in listings.items() if sign_bin(store, name, listed, keys, days=days)]


def metafile(version: int, data: bytes) -> MetaFile:
    """A snapshot or timestamp entry: the version, the length and the sha256 of ``data``."""
    return MetaFile.from_dict(snapshotdoc.file_entry(version, data))
