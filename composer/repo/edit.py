"""Repository operations: init, delegate, add (with upload verification), publish, refresh, migrate.

init, delegate and migrate need the offline top-level targets key (passed in, never stored); add,
publish and refresh use only the online keys of repo.toml (index, snapshot, timestamp) and the
developers' keys.

Each writes new metadata versions beside the old ones (consistent snapshots), and ``timestamp.json``
last, so a client reading during a publish sees either the old or the new repository.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from securesystemslib.signer import Key
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    Root,
    TargetFile,
    Targets,
)

from composer.arch import DEFAULT_ARCHES, get_arch
from composer.errors import ComposerError, InvalidPackage, UserError, VerificationError, combine
from composer.fsutil import atomic_copy, atomic_write, sha256_file
from composer.package.archive import verify_package
from composer.package.extract import check_entries
from composer.package.lint import lint_header
from composer.repo.devbins import DeveloperRole
from composer.repo.guard import ROLES_KEY, locked, locked_directory, remove_temporaries, repair
from composer.repo.incremental import metafile
from composer.repo.index import IndexEntry, package_target_path
from composer.repo.publish import LocalDirectory, put_target_files, stored_target
from composer.repo.publishing import (  # re-exported (__all__): publishing is part of the editing API
    listed_bins,
    publish,
    publish_unlocked,
    publishes_sparse,
    refresh,
    sign_bins,
)
from composer.repo.statedb import StateDB
from composer.repo.store import (
    CONFIG,
    DEFAULT_EXPIRY_DAYS,
    INDEX_PATHS,
    INDEX_ROLE,
    ONLINE_ROLES,
    SERVICE_ROLES,
    RepoConfig,
    RepoStore,
    expires,
    new_snapshot,
    new_targets,
    new_timestamp,
    write_signed,
)
from composer.repo.vendored import read_vendored
from composer.run import run
from composer.trust.keys import PublicKey, SigningKey

TOP_ROLES = ("root", "targets", "snapshot", "timestamp")


# ----------------------------------------------------------------- init

def init(directory: Path, **kwargs: Any) -> Path:
    """Create a repository (the directory too) under its lock: see :func:`create`. A refused init leaves
    no directory behind."""
    made = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        return create(directory, **kwargs)
    except BaseException:
        if made and not (directory / CONFIG).exists():  # we made it and it is no repository: nothing to keep
            shutil.rmtree(directory, ignore_errors=True)
        raise


@locked_directory
def create(directory: Path, *, root_keys: Sequence[SigningKey], root_threshold: int,
         targets_keys: Sequence[SigningKey], online: dict[str, Sequence[SigningKey]],
         online_paths: dict[str, list[str]], expiry_days: dict[str, int] | None = None,
         architectures: Sequence[str] = DEFAULT_ARCHES, root_expires: str = "") -> Path:
    """Create a repository; return the root.json path.

    root (k-of-n) and the top-level targets role are offline: their keys sign now and are not recorded.
    targets delegates index/* to the online ``index`` role; ``online`` holds the index, snapshot and
    timestamp keys, whose files ``online_paths`` records in repo.toml.
    """
    if (directory / CONFIG).exists():
        raise UserError(f"{directory} is already a repository", hint="pick another directory")
    remove_temporaries(directory)   # what a killed init left (it wrote no repo.toml: not a repository yet)
    if not 1 <= root_threshold <= len(root_keys):
        raise UserError(f"root threshold {root_threshold} needs between 1 and {len(root_keys)} root keys",
                        hint="pass --root-key once per key and --root-threshold K with K <= that number")
    if not targets_keys:
        raise UserError("repo init needs the offline top-level targets key",
                        hint="pass --targets-key (it signs the delegations and is not stored in repo.toml)")
    _refuse_offline_online(root_keys, targets_keys, online)
    config = RepoConfig(keys={role: list(online_paths.get(role, [])) for role in ONLINE_ROLES},
                        architectures=list(architectures))
    if expiry_days:
        config.expiry_days.update(expiry_days)
    days = config.expiry_days
    root = Root(version=1, expires=_parse_expiry(root_expires) if root_expires else expires(days["root"]),
                consistent_snapshot=True)
    for key in root_keys:
        root.add_key(key.public.key, "root")
    root.roles["root"].threshold = root_threshold
    for key in targets_keys:
        root.add_key(key.public.key, "targets")
    for role in ("snapshot", "timestamp"):
        for key in online[role]:
            root.add_key(key.public.key, role)
    # repo.toml is written last: a killed init leaves no repository (and may simply be run again)
    (directory / "metadata").mkdir(parents=True, exist_ok=True)
    (directory / "targets").mkdir(exist_ok=True)
    meta = LocalDirectory(root=directory)
    write_signed(meta, Metadata(root), "root", root_keys)
    targets = new_targets(days["targets"])
    targets.signed.delegations = Delegations(keys={}, roles={})
    _delegate_index(targets.signed, [k.public for k in online[INDEX_ROLE]])
    targets_bytes = write_signed(meta, targets, "targets", targets_keys)
    index_bytes = write_signed(meta, Metadata(Targets(version=1, expires=expires(days["index"]))), INDEX_ROLE,
                               online[INDEX_ROLE])
    snapshot = new_snapshot(days["snapshot"])
    snapshot.signed.meta = {"targets.json": metafile(1, targets_bytes),
                            f"{INDEX_ROLE}.json": metafile(1, index_bytes)}
    snap_bytes = write_signed(meta, snapshot, "snapshot", online["snapshot"])
    timestamp = new_timestamp(days["timestamp"])
    timestamp.signed.snapshot_meta = metafile(1, snap_bytes)
    write_signed(meta, timestamp, "timestamp", online["timestamp"])
    atomic_write(directory / CONFIG, config.to_toml())
    return directory / "metadata" / "root.json"


def _refuse_offline_online(root_keys: Sequence[SigningKey], targets_keys: Sequence[SigningKey],
                           online: dict[str, Sequence[SigningKey]]) -> None:
    offline = {**{k.keyid: "targets" for k in targets_keys}, **{k.keyid: "root" for k in root_keys}}
    for role in ONLINE_ROLES:
        if not online.get(role):
            raise UserError(f"repo init needs a {role} key", hint=f"pass --{role}-key (make one with: vcomp key "
                                                                  f"generate {role})")
        for key in online[role]:
            if key.keyid in offline:
                raise UserError(f"the {role} key {key.keyid[:16]} is also the offline {offline[key.keyid]} key",
                                hint=f"give {role} its own key: an online key must never be an offline one")


def _delegate_index(targets: Targets, keys: Sequence[PublicKey], threshold: int = 1) -> None:
    """Delegate index/* (and nothing else) to the online index role, first in the delegation order."""
    delegations = targets.delegations or Delegations(keys={}, roles={})
    roles = dict(delegations.roles or {})
    for key in keys:
        delegations.keys[key.keyid] = key.key
    role = DelegatedRole(name=INDEX_ROLE, keyids=sorted(k.keyid for k in keys), threshold=threshold,
                         terminating=True, paths=list(INDEX_PATHS))
    delegations.roles = {INDEX_ROLE: role, **{n: r for n, r in roles.items() if n != INDEX_ROLE}}
    _drop_unused_keys(delegations)
    targets.delegations = delegations


def _drop_unused_keys(delegations: Delegations) -> None:
    used = {k for r in (delegations.roles or {}).values() for k in r.keyids}
    delegations.keys = {k: v for k, v in delegations.keys.items() if k in used}


@locked_directory
def migrate(directory: Path, *, index_key: SigningKey, index_path: str,
            targets_keys: Sequence[SigningKey] = ()) -> list[str]:
    """Move a repository whose repo.toml lists the top-level targets key to the current layout.

    The top-level targets delegates index/* to a new online ``index`` role (``index_key``) and lists no
    target itself; repo.toml then records the index key instead of the targets key, and the repository
    is published. Return the targets key files that must now be moved offline.
    """
    store = RepoStore(directory, legacy=True)
    repair(store)
    if not store.config.legacy:
        raise UserError(f"{directory}: already in the current layout (no targets key in {CONFIG})",
                        hint="nothing to migrate")
    legacy_paths = store.config.keys.pop("targets")
    signers = store.offline_signers("targets", [*targets_keys, *store.key_files(legacy_paths)],
                                    option="--targets-key")
    if index_key.keyid in store.offline_keyids():
        raise UserError(f"the index key {index_key.keyid[:16]} is an offline key",
                        hint="make a new key for the index role: vcomp key generate index")
    md = store.load("targets", Targets)
    md.signed.targets = {}  # the indexes move to the index role
    _delegate_index(md.signed, [index_key.public])
    md.signed.version += 1
    md.signed.expires = expires(store.config.expiry_days["targets"])
    store.sign_and_write(md, "targets", signers)
    if not store.has_role(INDEX_ROLE):
        store.sign_and_write(Metadata(Targets(version=1, expires=expires(1))), INDEX_ROLE, [index_key])
    store.config = RepoConfig(keys={**store.config.keys, INDEX_ROLE: [index_path]},
                              expiry_days={**store.config.expiry_days, "targets": DEFAULT_EXPIRY_DAYS["targets"]},
                              architectures=store.config.architectures, scanner=store.config.scanner)
    atomic_write(directory / CONFIG, store.config.to_toml())
    publish_unlocked(RepoStore(directory, publisher=store.publisher))
    return legacy_paths


@locked_directory
def serve_architectures(directory: Path, architectures: Sequence[str]) -> list[str]:
    """Let the repository serve ``architectures`` too: the ones repo.toml does not list yet are added (the
    indexes of every listed architecture are published by the next publish; the signed metadata does not name
    architectures, so no key is needed). Return the added ones, in the order given."""
    for arch in architectures:
        get_arch(arch)
    store = RepoStore(directory, legacy=True)
    added = [a for a in dict.fromkeys(architectures) if a not in store.config.architectures]
    if added:
        store.config.architectures = [*store.config.architectures, *added]
        atomic_write(directory / CONFIG, store.config.to_toml())
    return added


def _parse_expiry(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError:
        raise UserError(f"invalid expiry date '{text}'", hint="use ISO 8601, e.g. 2036-01-01T00:00:00Z") from None


# ----------------------------------------------------------------- delegate

@locked
def delegate(store: RepoStore, name: str, keys: Sequence[PublicKey], patterns: Sequence[str],
             threshold: int = 1, *, targets_keys: Sequence[SigningKey]) -> None:
    """Delegate package names matching ``patterns`` to developer ``keys`` (a delegated targets role).

    Signed with the offline top-level targets keys (``targets_keys``): the online keys cannot do it.
    The next ``publish`` makes it visible.
    """
    if name in (*TOP_ROLES, *SERVICE_ROLES) or not name.replace("-", "").replace("_", "").isalnum():
        raise UserError(f"invalid role name '{name}'", hint="use a plain name such as 'alice' or 'kernel-team'")
    if not 1 <= threshold <= len(keys):
        raise UserError(f"threshold {threshold} needs between 1 and {len(keys)} keys")
    for p in patterns:
        if "/" in p or not p:
            raise UserError(f"invalid package pattern '{p}'", hint="patterns match package names, e.g. 'lib*'")
    offline = store.offline_keyids()
    for key in keys:
        if key.keyid in offline:
            raise UserError(f"key {key.keyid[:16]} is the offline {offline[key.keyid]} key, not a developer key",
                            hint="delegate to the developer's own key (vcomp key generate NAME)")
    signers = store.offline_signers("targets", targets_keys, option="--targets-key")
    role = DelegatedRole(name=name, keyids=sorted(k.keyid for k in keys), threshold=threshold, terminating=True,
                         paths=[f"packages/{p}/*" for p in patterns])
    _refuse_vendored(store, role)
    targets = store.load("targets", Targets)
    set_delegation(targets.signed, role, {k.keyid: k.key for k in keys})
    targets.signed.version += 1
    targets.signed.expires = expires(store.config.expiry_days["targets"])
    store.sign_and_write(targets, "targets", signers)


def set_delegation(targets: Targets, role: DelegatedRole, keys: Mapping[str, Key]) -> None:
    """Delegate ``role`` (replacing one of the same name) to ``keys`` (keyid -> key) in ``targets``."""
    delegations = targets.delegations or Delegations(keys={}, roles={})
    assert delegations.roles is not None
    delegations.keys.update({k: keys[k] for k in role.keyids})
    delegations.roles[role.name] = role
    _drop_unused_keys(delegations)
    targets.delegations = delegations


def _refuse_vendored(store: RepoStore, role: DelegatedRole) -> None:
    """Your developers' names stay theirs, a vendored role's names its upstream developer's (docs/upstream.md)."""
    for name, record in read_vendored(store.dir).items():
        if name == role.name:
            raise UserError(f"role '{name}' is vendored from {record.upstream}: its delegation follows the "
                            "upstream developer's keys", hint="pick another role name; the vendored role changes "
                                                              "with: vcomp repo vendor")
        taken = [n for n in record.names if role.is_delegated_path(package_target_path(n, "0", "x"))]
        if taken:
            raise UserError(f"the patterns {', '.join(role.paths or [])} of '{role.name}' match "
                            f"{', '.join(taken)}, vendored from {record.upstream} (role '{name}')",
                            hint="one key owns a name: pick patterns that leave the vendored names out")


@locked
def resign_targets(store: RepoStore, *, targets_keys: Sequence[SigningKey], within_days: int | None = None) -> int:
    """Re-sign the offline top-level targets metadata with a new expiry (it changes only on delegate and
    rotate, so it must be renewed before it expires); return its version. With ``within_days``, only if
    it expires within that many days. The next ``publish`` makes it visible."""
    md = store.load("targets", Targets)
    if within_days is not None and md.signed.expires > expires(within_days):
        return int(md.signed.version)
    signers = store.offline_signers("targets", targets_keys, option="--targets-key")
    md.signed.version += 1
    md.signed.expires = expires(store.config.expiry_days["targets"])
    store.sign_and_write(md, "targets", signers)
    return int(md.signed.version)


def authorised_roles(targets: Targets, name: str, keyid: str) -> list[DelegatedRole]:
    """Delegated roles that let ``keyid`` publish package ``name``."""
    if targets.delegations is None or targets.delegations.roles is None:
        return []
    path = package_target_path(name, "0", "x")
    return [r for r in targets.delegations.roles.values()
            if keyid in r.keyids and r.is_delegated_path(path)]


def _patterns(targets: Targets) -> str:
    if targets.delegations is None or targets.delegations.roles is None:
        return "none"
    return "; ".join(f"{r.name}: {', '.join(p.split('/')[1] for p in (r.paths or []))}"
                     for r in targets.delegations.roles.values() if r.name not in SERVICE_ROLES) or "none"


# ----------------------------------------------------------------- add

@dataclass(frozen=True, slots=True, kw_only=True)
class Added:
    entry: IndexEntry
    role: str
    new: bool
    warnings: tuple[str, ...] = ()   # what the repository policy flags without refusing (ABI breaks, ...)


ADD_CHUNK = 5000   # packages per role signature and state write in add_many (design14 §4.4)
Progress = Callable[[int, int], None]


@locked
def add(store: RepoStore, packages: Sequence[Path], signers: Sequence[SigningKey]) -> list[Added]:
    """Verify and store packages; update the developers' delegated role metadata (signed with ``signers``).

    Every package is checked before anything is written: container, schema, signature, every hash,
    lint errors, architecture, the delegation authorising its signer for its name, immutability of
    name-version-arch, no tie in version order with a published version of its name-arch and no change of
    version scheme, and the repository's scanner. One failure rejects the whole upload.
    """
    return _add_chunks(store, packages, signers, chunk=max(1, len(packages)), jobs=1, progress=None)


@locked
def add_many(store: RepoStore, packages: Sequence[Path], signers: Sequence[SigningKey], *, jobs: int = 2,
             chunk: int = ADD_CHUNK, progress: Progress | None = None) -> list[Added]:
    """:func:`add` for many packages (an archive import): in chunks of ``chunk`` packages, each verified in
    ``jobs`` worker processes (a pure function of the bytes; this process keeps the order and every write),
    then stored with one signature of each role it touches, one sync and one state transaction. A failure
    rejects its chunk; the chunks before it stay added (a crash leaves whole chunks). ``progress(done, total)``
    after each chunk."""
    return _add_chunks(store, packages, signers, chunk=chunk, jobs=jobs, progress=progress)


def _add_chunks(store: RepoStore, packages: Sequence[Path], signers: Sequence[SigningKey], *, chunk: int,
                jobs: int, progress: Progress | None) -> list[Added]:
    offline = store.offline_keyids()
    for key in signers:
        if key.keyid in offline:
            raise UserError(f"key {key.keyid[:16]} is the offline {offline[key.keyid]} key: 'repo add' signs only "
                            "with developer keys", hint="keep the offline keys off the publishing machine; pass the "
                                                        "developer's key with --key")
    upload = _Upload(store=store, signers=signers, targets=store.load("targets", Targets).signed,
                     state=store.writable_state())
    results: list[Added] = []
    pool = multiprocessing.get_context("fork").Pool(jobs) if jobs > 1 and len(packages) > 1 else None
    try:
        for start in range(0, len(packages), chunk):
            area = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX, dir=store.dir))
            try:
                results.extend(upload.chunk(packages[start:start + chunk], area, pool))
            finally:
                shutil.rmtree(area, ignore_errors=True)
            if progress is not None:
                progress(len(results), len(packages))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return results


UPLOAD_PREFIX = ".upload-"   # REPO/.upload-*/: private copies of an upload in progress (never served)


def _copy_in(pkg: Path, copy: Path) -> None:
    """Read the upload once, into the repository's private area: what is verified is what is stored."""
    try:
        atomic_copy(pkg, copy, durable=False)
    except FileNotFoundError:
        raise UserError(f"{pkg}: no such file", hint="pass the path of a built .vpk") from None
    except IsADirectoryError:
        raise UserError(f"{pkg}: is a directory, not a package", hint="pass the path of a built .vpk") from None


# (entry, signer, provides), or the error as (its class, message, hint): classes cross processes by name
_Verified = tuple[dict[str, Any], str, tuple[str, ...]] | tuple[type[ComposerError], str, str]


def check_package(copy: Path, key: PublicKey | None = None) -> tuple[IndexEntry, str, tuple[str, ...]]:
    """The checks that depend on the package's bytes alone: container, schema, signature (by ``key`` when
    given), every hash, safe paths, lint errors; return the index entry, the signer and the provided names."""
    verified = verify_package(copy, key)       # container, schema, signature, manifest, every file hash
    header = verified.header
    if header.manifest.entries:   # (a metadata-only package has nothing to check)
        check_entries(header.manifest.entries, str(copy))  # no path or link may escape an image root
    errors = [f for f in lint_header(header) if f.level == "error"]
    if errors:
        raise InvalidPackage(f"{copy}: lint errors: " + "; ".join(f"{f.code}: {f.message}" for f in errors),
                             hint="fix the recipe and rebuild (see vcomp pkg lint)")
    entry = IndexEntry.from_header(header, size=copy.stat().st_size, sha256=sha256_file(copy))
    return entry, verified.signer.keyid, header.metadata.provides


def _verify_copy(copy: Path) -> _Verified:
    """:func:`check_package` in a worker: its answer, or its error as (class, message, hint)."""
    try:
        entry, keyid, provides = check_package(copy)
        return entry.to_dict(), keyid, provides
    except (InvalidPackage, UserError) as exc:
        return type(exc), exc.message, exc.hint


def _verify_all(copies: Sequence[Path], pool: Any) -> list[_Verified]:
    if pool is None:
        return [_verify_copy(c) for c in copies]
    return list(pool.imap(_verify_copy, copies, chunksize=max(1, len(copies) // 16)))


def version_conflict(entry: IndexEntry, published: Sequence[IndexEntry]) -> str:
    """Why ``entry`` cannot join ``published`` (the other versions of its name-arch), or ``""``: a different
    version scheme, or a version that ties in order with a published one under another text (``1.0-0`` after
    ``1.0``: the resolver could not tell them apart). design14 §3."""
    for other in published:
        if other.path == entry.path:
            continue
        if other.version_scheme != entry.version_scheme:
            return (f"{entry.nva} is version scheme '{entry.version_scheme}' but {other.nva} is published with "
                    f"'{other.version_scheme}'; a name-arch keeps one scheme")
        if other.order_key() == entry.order_key():
            return (f"{entry.nva}: version {entry.version_text} ties in version order with the published "
                    f"{other.version_text} (a different text for the same version)")
    return ""


@dataclass(slots=True, kw_only=True)
class _Upload:
    """One add: the repository's targets and state, the role metadata being updated."""

    store: RepoStore
    signers: Sequence[SigningKey]
    targets: Targets
    state: StateDB                       # queried per package: nothing loads the whole state
    roles: dict[str, DeveloperRole] = field(default_factory=dict)   # the developer roles being written
    rules: Any = None                    # compiled YARA rules (bundled + the repository's), on first use
    warnings: dict[str, tuple[str, ...]] = field(default_factory=dict)   # index path -> policy warnings

    def versions(self, name: str, arch: str) -> list[IndexEntry]:
        return [IndexEntry.from_dict(e) for e in self.state.versions(name, arch)]

    def chunk(self, packages: Sequence[Path], area: Path, pool: Any) -> list[Added]:
        copies = [area / f"{i}.vpk" for i in range(len(packages))]
        errors: list[ComposerError] = []
        for pkg, copy in zip(packages, copies, strict=True):
            try:
                _copy_in(pkg, copy)
            except UserError as exc:
                errors.append(exc)
        if errors:
            raise combine(errors, summary=f"upload refused: {len(errors)} of {len(packages)} packages failed checks")
        accepted: list[tuple[Path, IndexEntry, DelegatedRole]] = []
        pending: dict[tuple[str, str], list[IndexEntry]] = {}
        for pkg, copy, verified in zip(packages, copies, _verify_all(copies, pool), strict=True):
            try:
                accepted.append(self.check(copy, verified, pending))
            except (InvalidPackage, UserError) as exc:
                exc.message = exc.message.replace(str(copy), str(pkg))   # name the user's file, not our copy
                exc.args = (exc.message,)
                errors.append(exc)
        if not errors:
            accepted, errors = self.gate(accepted)
            for refused in errors:   # name the user's files, not our copies
                for pkg, copy in zip(packages, copies, strict=True):
                    refused.message = refused.message.replace(str(copy), str(pkg))
                refused.args = (refused.message,)
        if errors:
            raise combine(errors, summary=f"upload refused: {len(errors)} of {len(packages)} packages failed checks")
        return self.store_all(accepted)

    def gate(self, accepted: Sequence[tuple[Path, IndexEntry, DelegatedRole]],
             ) -> tuple[list[tuple[Path, IndexEntry, DelegatedRole]], list[ComposerError]]:
        """The ELF and security checks of the whole upload (composer.repo.addcheck) under the repository policy;
        each entry gets the ``elf`` table derived from its payload when its metadata has none."""
        from composer.repo.addcheck import check_upload, policy_rules, scan_upload
        policy = self.store.config.policy
        if self.rules is None:
            self.rules = policy_rules(policy, self.store.dir)
        scanned = [scan_upload(pkg, entry, self.rules) for pkg, entry, _role in accepted]
        verdicts = check_upload(self.store.dir, policy, scanned, self.state)   # by name: indexed queries
        errors: list[ComposerError] = []
        for s in scanned:
            v = verdicts[s.entry.path]
            self.warnings[s.entry.path] = v.warnings
            if v.errors:
                errors.append(InvalidPackage(f"{s.pkg}: refused by the repository policy: " + "; ".join(v.errors),
                                             hint="fix the package, or change [policy] in repo.toml "
                                                  "(docs/elf-checks.md)"))
        return [(pkg, s.entry, role) for (pkg, _e, role), s in zip(accepted, scanned, strict=True)], errors

    def check(self, pkg: Path, verified: _Verified, pending: dict[tuple[str, str], list[IndexEntry]],
              ) -> tuple[Path, IndexEntry, DelegatedRole]:
        if isinstance(verified[0], type):
            kind, message, hint = verified
            assert isinstance(message, str) and isinstance(hint, str)
            raise kind(message, hint=hint)
        doc, keyid, provides = verified
        assert isinstance(keyid, str) and isinstance(provides, tuple)
        entry = IndexEntry.from_dict(doc)
        store, targets = self.store, self.targets
        if entry.arch != "noarch" and entry.arch not in store.config.architectures:
            raise InvalidPackage(f"{pkg}: architecture {entry.arch} is not served by this repository "
                                 f"({', '.join(store.config.architectures)})", hint="add it to repo.toml")
        roles = authorised_roles(targets, entry.name, keyid)
        if not roles:
            raise VerificationError(f"{pkg}: key {keyid[:16]} is not authorised to publish "
                                    f"'{entry.name}' (delegations: {_patterns(targets)})",
                                    hint="ask the repository owner for a delegation: vcomp repo delegate")
        # virtual names are names too: a developer may not provide a name outside their delegation
        # (else a package could hijack 'hello' or 'driver:virtio-net' in resolution)
        allowed = {r.name for r in roles}
        outside = [p for p in provides
                   if not {r.name for r in authorised_roles(targets, p.partition(" = ")[0], keyid)} & allowed]
        if outside:
            raise VerificationError(f"{pkg}: '{entry.name}' provides {', '.join(repr(p) for p in outside)}, which "
                                    f"key {keyid[:16]} is not delegated (delegations: {_patterns(targets)})",
                                    hint="delegation patterns cover provided names too, e.g. 'driver:*'")
        existing = self.state.get(entry.path)
        if existing is not None and existing["sha256"] != entry.sha256:
            raise InvalidPackage(f"{pkg}: {entry.nva} is already published with different content "
                                 f"(sha256 {str(existing['sha256'])[:16]}...); published packages are immutable",
                                 hint="bump the version to publish a change")
        same = pending.setdefault((entry.name, entry.arch), self.versions(entry.name, entry.arch))
        conflict = version_conflict(entry, same)
        if conflict:
            raise InvalidPackage(f"{pkg}: {conflict}",
                                 hint="publish a version that orders differently (a new revision), or keep the "
                                      "published one")
        same.append(entry)
        if store.config.scanner:
            _scan(store, pkg, entry)
        return pkg, entry, roles[0]

    def store_all(self, accepted: Sequence[tuple[Path, IndexEntry, DelegatedRole]]) -> list[Added]:
        """Store the targets, then list them in the state (one transaction), then sign each role. The state
        records the role versions it expects (``roles``): a failure or kill before a role is signed leaves
        them different from the roles on disk, and the next writer's repair reconciles the state with the
        roles (the entries no role lists are dropped). The roles, what clients trust, never list more
        than the state and the stored targets hold."""
        results: list[Added] = []
        marker = self.state.meta(ROLES_KEY)   # the role versions the state agrees with (set by the repair)
        by_role: dict[str, list[tuple[Path, IndexEntry]]] = {}
        for pkg, entry, role in accepted:
            by_role.setdefault(role.name, []).append((pkg, entry))
        signing: list[tuple[DeveloperRole, list[SigningKey]]] = []
        for role_name, items in sorted(by_role.items()):
            role = next(r for _, _, r in accepted if r.name == role_name)
            keys = [k for k in self.signers if k.keyid in role.keyids]
            if len(keys) < role.threshold:
                raise UserError(f"role '{role_name}' needs {role.threshold} of its keys to sign its metadata; "
                                f"{len(keys)} given", hint="pass the developer's private key(s) with --key")
            dev = self.role(role)
            new = [not dev.lists(entry.path) for _, entry in items]
            put_target_files(self.store.publisher,
                             [(stored_target(entry.path, entry.sha256), pkg) for pkg, entry in items])
            # the hash and size were computed during the checks: no need to read the package again
            dev.add({entry.path: TargetFile(length=entry.size, hashes={"sha256": entry.sha256}, path=entry.path)
                     for _, entry in items})
            for (_pkg, entry), fresh in zip(items, new, strict=True):
                results.append(Added(entry=entry, role=role_name, new=fresh,
                                     warnings=self.warnings.get(entry.path, ())))
            signing.append((dev, keys))
            if isinstance(marker, dict):
                marker.update({name: md.signed.version for name, md in dev.pending()})
        self.state.put([r.entry.to_dict() for r in results],
                       meta={ROLES_KEY: dict(sorted(marker.items()))} if isinstance(marker, dict) else None)
        for dev, keys in signing:   # each developer's bins first, its role last (docs/repo-devbins.md)
            for name, md in dev.pending():
                self.store.sign_and_write(md, name, keys)
            dev.signed()   # the next chunk writes the next versions
        return results

    def role(self, delegated: DelegatedRole) -> DeveloperRole:
        if delegated.name not in self.roles:
            keys = self.targets.delegations.keys if self.targets.delegations else {}
            self.roles[delegated.name] = DeveloperRole.open(self.store, delegated.name, delegated, keys,
                                                            self.store.config.expiry_days["delegated"])
        return self.roles[delegated.name]


def _scan(store: RepoStore, pkg: Path, entry: IndexEntry) -> None:
    from composer.errors import ToolError
    from composer.package.extract import extract_package
    with tempfile.TemporaryDirectory(prefix="vcomp-scan-") as tmp:
        extract_package(pkg, Path(tmp))
        try:
            run([*store.config.scanner, tmp], cwd=store.dir, env={"VCOMP_PACKAGE": entry.nva})
        except ToolError as exc:
            raise InvalidPackage(f"{pkg}: rejected by the repository scanner: {exc.message}",
                                 hint="see the scanner's message above") from None


__all__ = [  # the editing API, publishing included (composer/repo/publishing.py)
    "ADD_CHUNK",
    "TOP_ROLES",
    "UPLOAD_PREFIX",
    "Added",
    "add",
    "add_many",
    "authorised_roles",
    "check_package",
    "create",
    "delegate",
    "init",
    "listed_bins",
    "migrate",
    "publish",
    "publish_unlocked",
    "publishes_sparse",
    "refresh",
    "resign_targets",
    "serve_architectures",
    "set_delegation",
    "sign_bins",
    "version_conflict",
]
