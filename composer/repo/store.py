"""A repository directory: its configuration and its TUF metadata files (python-tuf Metadata API).

    DIR/repo.toml        configuration: ONLINE role key files (index, snapshot, timestamp), expiry,
                         architectures, scanner
    DIR/state.db         index entries of every stored package in SQLite (derived: rebuilt from the signed
                         roles and the stored targets; composer/repo/statedb.py)
    DIR/metadata/        TUF metadata, consistent snapshots: N.root.json, N.targets.json, N.<role>.json,
                         N.snapshot.json, timestamp.json (+ root.json, the latest root, for pinning)
    DIR/targets/         content-addressed targets: packages/NAME/<sha256>.NAME-VERSION-ARCH.vpk,
                         index/<sha256>.ARCH.json.zst

Only metadata/ and targets/ are served. Root keys and the top-level targets keys never appear in
repo.toml: they stay offline (see docs/security/trust-model.md). The top-level targets role only
delegates: the per-architecture indexes to the online ``index`` role, package names to developers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from tuf.api.metadata import Metadata, Root, Signed, Snapshot, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from composer import settings
from composer.arch import DEFAULT_ARCHES
from composer.errors import ComposerError, UserError, VerificationError
from composer.oserrors import fault
from composer.repo.elfgate import RepoPolicy
from composer.repo.listing import JournalListing, directory_mark, parse_name
from composer.repo.publish import LocalDirectory, Publisher, TrackedPublisher, untracked
from composer.repo.statedb import INTERNAL_META, LEGACY_STATE, LISTING_KEY, StateDB, open_state, read_legacy
from composer.trust import canonical
from composer.trust.keys import SigningKey, load_key_spec, parse_key_spec

CONFIG = "repo.toml"
STATE = LEGACY_STATE   # the pre-SQLite state file (imported and removed by the first writer)
DEFAULT_EXPIRY_DAYS: Mapping[str, int] = {"root": 365, "targets": 365, "index": 90, "snapshot": 7,
                                          "timestamp": 1, "delegated": 90}
INDEX_ROLE = "index"                 # the online delegated role that signs index/* (what changes on publish)
INDEX_PATHS = ("index/*", "index/sparse/*/*", "index/sparse/*/*/*")   # the sparse index: composer/repo/sparse.py
ADVISORY_ROLE = "advisories"         # the delegated role that signs advisories/* (composer/repo/advisories.py)
ADVISORY_PATHS = ("advisories/*",)
SERVICE_ROLES = (INDEX_ROLE, ADVISORY_ROLE)   # delegated roles that list no package
ONLINE_ROLES = (INDEX_ROLE, "snapshot", "timestamp")   # their keys are in repo.toml
OFFLINE_ROLES = ("root", "targets")                    # their keys never are
MIGRATE_HINT = ("move to the current layout: vcomp repo migrate DIR --index-key NEW-INDEX.key "
                "(then keep the targets key offline; see docs/security/trust-model.md)")
SERIALIZER = JSONSerializer(compact=True)


def utcnow() -> dt.datetime:
    """Now, for expiry dates (VCOMP_REPO_NOW=ISO-8601 overrides it for tests and reproducible roots)."""
    fixed = settings.REPO_NOW.get()
    if fixed is not None:
        return fixed
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(slots=True, kw_only=True)
class RepoConfig:
    keys: dict[str, list[str]]
    expiry_days: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_EXPIRY_DAYS))
    architectures: list[str] = field(default_factory=lambda: list(DEFAULT_ARCHES))
    scanner: list[str] = field(default_factory=list)
    policy: RepoPolicy = field(default_factory=RepoPolicy)   # [policy]: the ELF and security gate of repo add
    legacy: bool = False   # read from a repo.toml that still lists the top-level targets key

    def to_toml(self) -> bytes:
        doc: dict[str, Any] = {"architectures": self.architectures, "keys": self.keys,
                               "expiry-days": self.expiry_days}
        if self.scanner:
            doc["scanner"] = {"command": self.scanner}
        if self.policy.to_dict():
            doc["policy"] = self.policy.to_dict()
        return tomli_w.dumps(doc).encode()

    @classmethod
    def from_toml(cls, data: bytes, origin: str, *, legacy: bool = False) -> RepoConfig:
        """The configuration; a legacy one (the top-level targets key online, no index key) is refused
        unless ``legacy`` (for 'repo migrate', which reads its targets key one last time)."""
        try:
            raw = tomllib.loads(data.decode())
            listed = raw["keys"]
            is_legacy = "targets" in listed or INDEX_ROLE not in listed
            if is_legacy and not legacy:
                raise UserError(f"{origin}: lists the top-level targets key as an online key; the targets key "
                                "must stay offline (an online targets key lets whoever holds the server "
                                "change every developer's delegation)", hint=MIGRATE_HINT)
            roles = ("targets", "snapshot", "timestamp") if is_legacy else ONLINE_ROLES
            keys = {role: _strings(listed[role], f"keys.{role}") for role in roles}
            days = raw.get("expiry-days", {})
            if not isinstance(days, dict) or not all(isinstance(v, int) and v > 0 for v in days.values()):
                raise TypeError("'expiry-days' must map roles to positive whole numbers of days")
            arches = _strings(raw.get("architectures", list(DEFAULT_ARCHES)), "architectures")
            scanner = raw.get("scanner", {})
            command = _strings(scanner.get("command", []) if isinstance(scanner, dict) else None, "scanner.command")
            policy = RepoPolicy.from_dict(raw.get("policy", {}), origin)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
            what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise UserError(f"{origin}: not a valid repository configuration ({what})",
                            hint="repo.toml is written by 'vcomp repo init'; restore it from a backup") from None
        return cls(keys=keys, legacy=is_legacy, expiry_days={**DEFAULT_EXPIRY_DAYS, **days},
                   architectures=arches, scanner=command, policy=policy)


def config_key_path(repo_dir: Path, spec: str) -> str:
    """How repo.toml names the key ``spec`` (``KEYFILE`` or ``KEYFILE:VAR``, as given on the command line):
    relative to repo.toml when the file is inside the repository directory or beside it (under its parent),
    so a moved or cloned checkout still finds it; absolute otherwise."""
    parsed = parse_key_spec(spec)
    key, home = parsed.path.resolve(), repo_dir.resolve()
    shown = os.path.relpath(key, home) if key.is_relative_to(home.parent) else str(key)
    return f"{shown}:{parsed.passphrase_env}" if parsed.passphrase_env else shown


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"'{where}' must be a list of strings")
    return list(value)


class RepoStore:
    """Read and write one repository directory."""

    def __init__(self, directory: Path, *, legacy: bool = False, publisher: Publisher | None = None) -> None:
        self.dir = directory
        inner = LocalDirectory(root=directory) if publisher is None else untracked(publisher)
        # a store made from another's publisher: what it writes reaches both listings
        self._outer = publisher.seen if isinstance(publisher, TrackedPublisher) else None
        self._outer_before = publisher.before if isinstance(publisher, TrackedPublisher) else None
        self.publisher: Publisher = TrackedPublisher(inner, self._saw_metadata, self._writing_metadata)
        # role -> newest version in metadata/: one listing kept, or the state's (composer/repo/listing.py)
        self._listing: dict[str, int] | JournalListing | None = None
        self._names: list[str] | None = None
        self._written: dict[str, int] = {}   # role -> newest version this store's publisher wrote
        self.journal = False   # read and keep the listing in the state (a writer under the lock: guard.locked)
        self._marked = False   # the state's listing is marked not clean (before this store's first write)
        self._dir_after: dict[str, int] | None = None   # metadata/'s mark after the repair or this store's last write
        self.legacy_ok = legacy
        self._state_db: StateDB | None = None
        self._state_write = False
        self.metadata_dir = directory / "metadata"
        self.targets_dir = directory / "targets"
        config = directory / CONFIG
        if not config.is_file() or not (self.metadata_dir / "timestamp.json").is_file():
            raise UserError(f"{directory} is not a repository (no {CONFIG} or metadata/timestamp.json)",
                            hint="create one with: vcomp repo init DIR --root-key ... ")
        try:
            data = config.read_bytes()
        except OSError as exc:
            raise fault(exc, "reading the repository configuration") from None
        self.config = RepoConfig.from_toml(data, str(config), legacy=legacy)

    # ---- keys
    def online_keys(self, role: str) -> list[SigningKey]:
        """The keys repo.toml gives ``role``; an offline key (root, top-level targets) there is refused."""
        keys = self.key_files(self.config.keys[role])
        offline = self.offline_keyids()
        for key, p in zip(keys, self.config.keys[role], strict=True):
            if key.keyid in offline:
                raise UserError(f"{self.dir / CONFIG}: the {role} key {p} is the offline {offline[key.keyid]} key "
                                f"({key.keyid[:16]}); it must never be online",
                                hint=f"give the {role} role its own key: vcomp repo rotate {self.dir} --role {role} "
                                     "... and keep the offline key off this machine")
        return keys

    def key_files(self, paths: Sequence[str]) -> list[SigningKey]:
        """Private keys from files named in repo.toml (``KEYFILE`` or ``KEYFILE:VAR``, relative to repo.toml)."""
        return [load_key_spec(p, base=self.dir) for p in paths]

    def offline_keyids(self) -> dict[str, str]:
        """keyid -> role of every offline key (root, top-level targets) the current root lists."""
        root = self.root().signed
        return {k: role for role in reversed(OFFLINE_ROLES) for k in root.roles[role].keyids}

    def offline_signers(self, role: str, given: Sequence[SigningKey], *, option: str) -> list[SigningKey]:
        """A threshold of ``role``'s (root or targets) keys among ``given``, or a clear error."""
        spec = self.root().signed.roles[role]
        keys = list({k.keyid: k for k in given if k.keyid in spec.keyids}.values())
        if len(keys) < spec.threshold:
            raise UserError(f"{self.dir}: this needs {spec.threshold} of the offline {role} keys; {len(keys)} given",
                            hint=f"pass the offline {role} private key(s) with {option} (they are not in repo.toml)")
        return keys

    # ---- metadata files
    def load(self, role: str, cls: type[Signed], version: int | None = None) -> Metadata[Any]:
        if role == "timestamp":
            path = self.metadata_dir / "timestamp.json"
        else:
            version = version if version is not None else self.current_version(role)
            path = self.metadata_dir / f"{version}.{role}.json"
        try:
            md: Metadata[Any] = Metadata.from_bytes(path.read_bytes())
        except FileNotFoundError:
            raise UserError(f"{path} is missing", hint="the repository is incomplete") from None
        except Exception as exc:  # python-tuf raises several deserialization errors
            raise VerificationError(f"{path}: unreadable metadata ({exc})",
                                    hint="restore the file from a backup or a mirror of the repository; the "
                                         "repository's signing keys can re-create a developer role with "
                                         "'vcomp repo delegate'") from None
        if not isinstance(md.signed, cls):
            raise VerificationError(f"{path}: expected {cls.type} metadata, found {md.signed.type}")
        return md

    def current_version(self, role: str) -> int:
        version = self.latest_versions().get(role)
        if version is None:
            raise UserError(f"{self.dir}: no metadata for role '{role}'", hint="publish the repository first")
        return version

    def has_role(self, role: str) -> bool:
        return role in self.latest_versions()

    def latest_versions(self) -> Mapping[str, int]:
        """role -> the newest version ``N.ROLE.json`` in metadata/ (exactly ROLE: not ``N.OTHER.ROLE.json``, a
        hash bin of role OTHER whose suffix looks like ROLE, composer/repo/devbins.py).

        metadata/ is listed once per store (a repository at a million packages holds tens of thousands of role
        files, and publish asks for all of them), or, for a writer under the lock (``journal``), read role by
        role from the state when the last writer left it clean (composer/repo/listing.py); what this store's
        publisher puts is added. A store is made per command, under the lock for a writer. Read-only: do not
        change the mapping."""
        if self._listing is None:
            if self.journal and self._journal_clean():
                journal = JournalListing(self.writable_state())
                for role, version in self._written.items():
                    journal.add(role, version)
                self._listing = journal
            else:
                listing: dict[str, int] = {}
                for name in self.metadata_names():
                    _record(listing, name)
                self._listing = listing
        return self._listing

    def versions_except(self, prefix: str) -> dict[str, int]:
        """role -> newest version of every role whose name does not start with ``prefix``."""
        listing = self.latest_versions()
        if isinstance(listing, JournalListing):
            return listing.versions_except(prefix)
        return {role: v for role, v in listing.items() if not role.startswith(prefix)}

    def listed_from_state(self) -> bool:
        """Whether this store's listing of metadata/ is the state's (no writer was killed since the last one
        finished: there is nothing to repair in metadata/)."""
        return isinstance(self.latest_versions(), JournalListing)

    def _journal_clean(self) -> bool:
        mark = self.writable_state().meta(LISTING_KEY)
        try:
            now = directory_mark(self.metadata_dir)
        except OSError:
            return False
        return isinstance(mark, dict) and mark == {"clean": True, **now}

    def begin_writing(self) -> None:
        """A writer's start (after the repair): its listing is read while the state's mark is still the last
        writer's; the mark is set not clean before its first metadata write (:meth:`_writing_metadata`) until
        :meth:`finish_writing` (composer/repo/listing.py). A command that writes no metadata changes nothing."""
        self.latest_versions()
        self._dir_after = directory_mark(self.metadata_dir)

    def _writing_metadata(self) -> None:
        if self.journal and not self._marked:
            self.latest_versions()
            self.writable_state().set_listing({"clean": False})
            self._marked = True
        if self._outer_before is not None:   # (a store made from another's publisher: the other's state too)
            self._outer_before()

    def finish_writing(self) -> None:
        """A writer's successful end: the versions it wrote (or the whole listing, when it listed metadata/)
        and the clean mark with metadata/'s modification time, in one transaction (nothing when it read a
        clean listing and wrote nothing)."""
        listing = self.latest_versions()
        if isinstance(listing, JournalListing) and not self._marked:
            return
        try:
            now = directory_mark(self.metadata_dir)
            db = self.writable_state()
            if now != self._dir_after:   # something else wrote in metadata/ meanwhile: the next writer lists
                db.set_listing({"clean": False})
            elif isinstance(listing, JournalListing):
                db.record_listing(self._written, whole=False, mark={"clean": True, **now})
            else:
                db.record_listing(listing, whole=True, mark={"clean": True, **now})
        except (ComposerError, OSError, sqlite3.Error):
            pass   # the command is done; the mark stays not clean (set before its first write), so the next lists

    def metadata_names(self) -> list[str]:
        """The names in metadata/ (listed once per store, shared by the repair's removal of temporaries and
        :meth:`latest_versions`; what this store's publisher writes is added)."""
        if self._names is None:
            try:
                self._names = os.listdir(self.metadata_dir)
            except FileNotFoundError:
                self._names = []
        return self._names

    def _saw_metadata(self, name: str) -> None:
        if self._names is not None:
            self._names.append(name)
        if self.journal:
            with contextlib.suppress(OSError):
                self._dir_after = directory_mark(self.metadata_dir)   # (after this store's own write)
        parsed = parse_name(name)
        if parsed is not None:
            role, version = parsed
            if self._written.get(role, 0) < version:
                self._written[role] = version
            if isinstance(self._listing, JournalListing):
                self._listing.add(role, version)
            elif self._listing is not None:
                _record(self._listing, name)
        if self._outer is not None:
            self._outer(name)

    def root(self) -> Metadata[Root]:
        return self.load("root", Root)

    def sign_and_write(self, md: Metadata[Any], role: str, keys: Sequence[SigningKey]) -> bytes:
        return write_signed(self.publisher, md, role, keys)

    # ---- state: index entries of stored packages (composer/repo/statedb.py)
    def state_db(self, *, write: bool = True) -> StateDB | None:
        """The state database (opened once per store). ``write`` (under the repository lock): created, or
        migrated from state.json, on first use; a reader gets None when the repository has none yet."""
        db = self._state_db
        if db is None or (write and not self._state_write):
            self.close_state()
            db = open_state(self.dir, write=write)
            self._state_db, self._state_write = db, write
        return db

    def close_state(self) -> None:
        """Close the state database (SQLite then folds its WAL into state.db and removes the WAL files)."""
        if self._state_db is not None:
            self._state_db.close()
            self._state_db, self._state_write = None, False

    def writable_state(self) -> StateDB:
        db = self.state_db(write=True)
        assert db is not None
        return db

    def read_state(self) -> dict[str, Any]:
        """The whole state as one document (``packages``: path -> entry, plus ``images`` etc.): a
        compatibility view that loads every entry; the hot paths use :meth:`state_db` queries."""
        db = self._state_db or open_state(self.dir, write=False)
        if db is None:
            return read_legacy(self.dir / STATE)
        try:
            return {**{k: v for k, v in db.metas().items() if k not in INTERNAL_META}, "packages": db.packages()}
        finally:
            if db is not self._state_db:
                db.close()

    def write_state(self, state: Mapping[str, Any]) -> None:
        """Make the state ``state`` (a :meth:`read_state` document), changing only the rows that differ."""
        db = self.writable_state()
        extra = {k: v for k, v in state.items() if k != "packages"}
        stale = [k for k in db.metas() if k not in extra and k not in INTERNAL_META]
        db.replace(state.get("packages", {}), extra, drop_meta=stale)

def _record(listing: dict[str, int], name: str) -> None:
    """Add ``N.ROLE.json`` to a role -> newest version listing (other names are not versions of a role)."""
    parsed = parse_name(name)
    if parsed is not None and listing.get(parsed[0], 0) < parsed[1]:
        listing[parsed[0]] = parsed[1]


def write_signed(publisher: Publisher, md: Metadata[Any], role: str, keys: Sequence[SigningKey]) -> bytes:
    """Sign ``md`` with ``keys`` and publish it under its consistent-snapshot name; return the bytes."""
    canonical.install()
    md.signatures.clear()
    for key in keys:
        md.sign(key.tuf_signer(), append=True)
    data = md.to_bytes(SERIALIZER)
    if role == "timestamp":
        publisher.put_metadata("timestamp.json", data)
    else:
        publisher.put_metadata(f"{md.signed.version}.{role}.json", data)
        if role == "root":
            publisher.put_metadata("root.json", data)
    return data


def expires(days: int) -> dt.datetime:
    return utcnow() + dt.timedelta(days=days)


def new_targets(days: int) -> Metadata[Targets]:
    return Metadata(Targets(version=1, expires=expires(days)))


def new_snapshot(days: int) -> Metadata[Snapshot]:
    return Metadata(Snapshot(version=1, expires=expires(days)))


def new_timestamp(days: int) -> Metadata[Timestamp]:
    return Metadata(Timestamp(version=1, expires=expires(days)))
