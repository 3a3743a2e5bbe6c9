"""The repository client: python-tuf's ngclient over the transports of repo/transports.py, with mirrors and a cache.

Trust starts from a pinned root given by the user or the profile (no trust on first use), every time:
the updater is always bootstrapped from the pin and walks forward (a cached root.json is never the
trust anchor), and a cache directory that another user could change is refused. Every
metadata file is verified by ngclient (signatures and thresholds, versions, expiry, hashes and
lengths, root rotation); the index is a TUF target; a package must match its index entry, its TUF
target info from the developer's delegated role, and carry the signature of a key that delegation
authorises for its name; every field of the index entry that resolution used (path, arch, version,
dependencies, provides, conflicts, features, capabilities, ...) must equal the signed package header,
so the online index key cannot relabel a developer's package. Mirrors are untrusted: a mirror that fails
or serves bad metadata is skipped, and the local cache keeps its last trusted state (ngclient only stores
verified files).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import logging
import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import Metadata, Root, TargetFile, Targets
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig

from composer import gcpause, oserrors, settings
from composer.errors import FetchError, UserError, VerificationError
from composer.fsutil import atomic_copy, atomic_write, canonical_json
from composer.notices import notice
from composer.package.archive import Header, Verified, verify_package
from composer.repo.bucketed import BucketedUpdater
from composer.repo.deltas import apply_delta, delta_name
from composer.repo.index import (
    IndexEntry,
    close_names,
    decode_index,
    index_target_path,
    parse_index,
    whole_behind,
)
from composer.repo.offline import OfflineView
from composer.repo.pkgcache import ObjectStore, objects_dir
from composer.repo.snappatches import PatchingFetcher
from composer.repo.sparse import (
    AUTO_SPARSE_BYTES,
    MAX_NAME,
    SparseBase,
    SparseFile,
    base_target_path,
    parse_base,
    parse_sparse,
    sparse_target_path,
)
from composer.repo.transports import UrlFetcher
from composer.trust import canonical
from composer.trust.keys import PublicKey
from composer.version import Requirement, VersionError

OFFLINE_ENV = settings.OFFLINE.name
log = logging.getLogger("composer.repo.client")
_settings = {"offline": False}


def configure(*, offline: bool) -> None:
    """Set by the CLI from ``--offline``: every client then works from its cache only."""
    _settings["offline"] = offline


def offline_forced() -> bool:
    return _settings["offline"] or settings.OFFLINE.get()


OFFLINE_HINT = "run the command once online (without --offline / VCOMP_OFFLINE) so it is downloaded and cached"


def normalise_url(url: str) -> str:
    if "://" not in url:
        url = Path(url).resolve().as_uri()
    return url.rstrip("/")


def load_trusted_root(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        md = Metadata.from_bytes(data)
    except FileNotFoundError:
        raise UserError(f"trust root {path} does not exist",
                        hint="pass the root.json the repository owner published (metadata/root.json)") from None
    except Exception as exc:
        raise UserError(f"{path} is not TUF root metadata ({exc})", hint="pass the repository's root.json") \
            from None
    if not isinstance(md.signed, Root):
        raise UserError(f"{path} is TUF {md.signed.type} metadata, not a root",
                        hint="pass the repository's root.json (metadata/1.root.json or root.json)")
    return data


def root_identity(root: bytes) -> bytes:
    """The canonical JSON of a root document (its raw bytes when it is not JSON: refused later)."""
    try:
        return canonical_json(json.loads(root))
    except (ValueError, RecursionError):
        return root


def root_fingerprint(root: bytes) -> str:
    return hashlib.sha256(root).hexdigest()


# ----------------------------------------------------------------- trusted state on disk

def ensure_private_dir(path: Path) -> None:
    """Create ``path`` owner-only (0700) if missing; refuse one that is a symlink, not a directory, not
    owned by the current user, or writable by group or others (anyone else could plant trusted state)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    st = path.lstat()
    problem = ("is a symlink" if stat.S_ISLNK(st.st_mode) else
               "is not a directory" if not stat.S_ISDIR(st.st_mode) else
               f"is owned by uid {st.st_uid}, not by you (uid {os.geteuid()})" if st.st_uid != os.geteuid() else
               f"is writable by {'others' if st.st_mode & 0o002 else 'its group'} "
               f"(mode {stat.S_IMODE(st.st_mode):04o})" if st.st_mode & 0o022 else "")
    if problem:
        raise UserError(f"repository cache {path} {problem}: refusing to trust metadata stored there",
                        hint=f"remove it (rm -rf '{path}'); vcomp recreates it owner-only (0700) and "
                             "verifies everything again from the pinned root")


def make_updater(*, metadata_dir: Path, metadata_url: str, targets_url: str | None, root: bytes,
                 fetcher: FetcherInterface | None = None, target_dir: Path | None = None) -> BucketedUpdater:
    """A python-tuf Updater that always starts from ``root``, the pinned trust root, and walks forward.

    The cache (``metadata_dir``, ``target_dir``) must be private to the user (see ensure_private_dir).
    A root.json found there is never the anchor: only newer roots in root_history/ that verify from
    the pin are used (python-tuf checks each against its predecessor).
    """
    canonical.install()   # ngclient verifies each role's canonical JSON: the fast encoder (same bytes)
    ensure_private_dir(metadata_dir)
    ensure_private_dir(metadata_dir / "root_history")
    if target_dir is not None:
        ensure_private_dir(target_dir)
    anchor: dict[str, Any] = {"bootstrap": root}
    if not BOOTSTRAP:   # python-tuf < 6 (Debian 13 has 5.1): the anchor is metadata_dir/root.json, so the pin
        atomic_write(metadata_dir / "root.json", root)   # is written there each time (it walks forward again)
        anchor = {}
    return BucketedUpdater(metadata_dir=str(metadata_dir), metadata_base_url=metadata_url,
                   target_dir=str(target_dir) if target_dir is not None else None, target_base_url=targets_url,
                   fetcher=fetcher if fetcher is not None else UrlFetcher(), config=UpdaterConfig(), **anchor)


BOOTSTRAP = "bootstrap" in inspect.signature(Updater).parameters
"""python-tuf >= 6 takes the trusted root as ``bootstrap``; older ones read it from the metadata directory."""


# ----------------------------------------------------------------- index entries against package headers

# (field, what the signed header says): every field an index entry carries except the ones TUF checks
# (size, sha256) is compared with the package the developer signed.
CHECKED_FIELDS = ("path", "name", "version", "arch", "type", "dependencies", "provides", "conflicts", "features",
                  "capabilities", "driver", "installed_size", "signer", "description", "license", "epoch", "revision",
                  "upstream_version", "version_scheme", "essential", "priority", "multi_arch", "relations", "elf")


def entry_mismatches(entry: IndexEntry, header: Header) -> list[str]:
    """The fields in which ``entry`` differs from the signed ``header`` (none: the entry is honest)."""
    signed = IndexEntry.from_header(header, size=entry.size, sha256=entry.sha256).to_dict()
    given = entry.to_dict()
    # elf: a package built before the [elf] table has none; `repo add` derives it from the payload, and only the
    # index role signs that (docs/elf-checks.md): compared whenever the developer signed one
    return [f for f in CHECKED_FIELDS if signed.get(f) != given.get(f) and (f != "elf" or signed.get(f))]


def check_entry(entry: IndexEntry, header: Header) -> None:
    """Refuse an index entry that says something else than the signed package it names."""
    wrong = entry_mismatches(entry, header)
    if wrong:
        signed = IndexEntry.from_header(header, size=entry.size, sha256=entry.sha256).to_dict()
        first = wrong[0]
        raise VerificationError(
            f"{entry.path}: the index entry of '{entry.name}' differs from the signed package in "
            f"{', '.join(wrong)} ({first}: index says {entry.to_dict()[first]!r}, the package "
            f"{signed[first]!r})",
            hint="the index was altered after the developer signed the package (a compromised online index key "
                 "or mirror): do not use this repository until its owner republishes it")


class RepositoryClient:
    """search / metadata / fetch over a verified repository (shaped like the spec's ``Repository``)."""

    def __init__(self, url: str, trusted_root: bytes, cache: Path, *, mirrors: Sequence[str] = (),
                 offline: bool | None = None, fallback: bool = True,
                 say: Callable[[str], None] | None = None) -> None:
        """``offline``: never use the network (default: the ``--offline`` setting). ``fallback``: when every
        source is unreachable, answer from the last verified state in the cache (with a warning via
        ``say``) instead of failing; see :mod:`composer.repo.offline` for what is then checked."""
        self.urls = [normalise_url(url), *(normalise_url(m) for m in mirrors)]
        self.trusted_root = trusted_root
        # one cache per (repository, pinned root): a different trust root never reuses trusted state; the
        # root's canonical JSON, so a root recorded re-serialised (a root's repositories.json) shares it
        key = hashlib.sha256(self.urls[0].encode() + b"\0" + root_identity(trusted_root)).hexdigest()[:24]
        self.cache = cache / key
        self.metadata_dir = self.cache / "metadata"
        self.objects = ObjectStore(objects_dir(cache))   # downloaded targets, shared, content-addressed
        self.targets_dir = self.objects.dir
        self.offline = offline_forced() if offline is None else offline
        self.fallback = fallback
        self._say = say or notice
        self._updater: BucketedUpdater | None = None
        self._view: OfflineView | None = None      # set when answering from the cache without the network
        self.offline_reason = ""
        self._indexes: dict[str, list[IndexEntry]] = {}
        self._documents: dict[str, list[dict[str, Any]]] = {}   # index_documents' (a pool build's) entries
        self._folders: tuple[object, dict[str, list[IndexEntry]]] = (None, {})   # see _versions
        self._answered = ""  # the source that gave the trusted metadata: targets are asked from it first
        # what the downloads of this client transferred: full targets, packages rebuilt from deltas, fallbacks;
        # snapshots made from patches, the patch bytes downloaded, patches given up (composer/repo/snappatches.py)
        self.transfers = dict.fromkeys(("full", "full-bytes", "delta", "delta-bytes", "delta-fallbacks",
                                        "snapshot-patched", "snapshot-patch-bytes", "snapshot-patch-fallbacks",
                                        "snapshot-compressed", "snapshot-compressed-bytes",
                                        "snapshot-compressed-fallbacks"), 0)

    # ---- trust
    def _new_updater(self, base: str) -> BucketedUpdater:
        ensure_private_dir(self.cache)
        # the snapshot from patches when the cache holds an older one (composer/repo/snappatches.py)
        fetcher = PatchingFetcher(self._fetcher(), metadata_url=f"{base}/metadata/", cache=self.metadata_dir,
                                  note=self._count)
        return make_updater(metadata_dir=self.metadata_dir, metadata_url=f"{base}/metadata/",
                            targets_url=f"{base}/targets/", root=self.trusted_root, fetcher=fetcher,
                            target_dir=self.objects.dir)

    def _count(self, kind: str, n: int) -> None:
        self.transfers[kind] = self.transfers.get(kind, 0) + n

    def _fetcher(self) -> FetcherInterface:
        return UrlFetcher()

    def refresh(self) -> None:
        """Update the trusted metadata from the first source that gives valid metadata; when none can be
        reached (or offline), use the last verified state of the cache (see ``fallback``)."""
        if self.offline:
            self._go_offline("--offline forbids the network")
            return
        problems = []
        unreachable = True
        for base in self.urls:
            try:
                updater = self._new_updater(base)
                with gcpause.paused():   # (the snapshot's 20,480 entries at 1M: composer/gcpause.py)
                    updater.refresh()
            except (tuf_exc.RepositoryError, tuf_exc.DownloadError) as exc:
                problems.append(f"{base}: {describe(exc)}")
                unreachable = unreachable and is_unreachable(exc)
                continue
            except OSError as exc:  # python-tuf persists metadata with bare writes: name the cache
                if exc.filename is not None:
                    raise
                raise oserrors.fault(OSError(exc.errno, exc.strerror, str(self.metadata_dir)),
                                     "saving verified repository metadata") from None
            self._updater = updater
            self._view = None
            self._indexes.clear()
            self._documents.clear()
            self._folders = (None, {})
            self._answered = base
            return
        source = "the repository" if len(self.urls) == 1 else f"all {len(self.urls)} sources"
        sep = " " if len(problems) == 1 else "\n    "   # one source: one line
        if unreachable and self.fallback and self.metadata_dir.is_dir():
            with contextlib.suppress(FetchError, VerificationError):
                self._go_offline(f"{source} cannot be reached")
                self._say(f"warning: {self.urls[0]}: {source} cannot be reached ({problems[0]}); working offline "
                          "from the last verified metadata and the package cache")
                return
        raise FetchError(f"cannot get trusted metadata from {source}:{sep}" + sep.join(problems),
                         hint="the local cache keeps its last trusted state; check the URL, the mirrors and "
                              "that the repository's timestamp is refreshed")

    def _go_offline(self, reason: str) -> None:
        ensure_private_dir(self.cache)
        ensure_private_dir(self.objects.dir)
        self._view = OfflineView(self.metadata_dir, self.trusted_root, self.urls[0])
        self._updater = None
        self._indexes.clear()
        self._documents.clear()
        self._folders = (None, {})
        self.offline_reason = reason

    @property
    def is_offline(self) -> bool:
        """Whether this client answers from its cache (after :meth:`refresh`)."""
        return self._view is not None

    @property
    def updater(self) -> BucketedUpdater:
        """The online updater (refreshing first); an offline client has none."""
        if self._updater is None and self._view is None:
            self.refresh()
        if self._updater is None:
            raise FetchError(f"{self.urls[0]}: this needs the repository, and {self.offline_reason}",
                             hint=OFFLINE_HINT)
        return self._updater

    def _targetinfo(self, target_path: str) -> TargetFile | None:
        if self._updater is None and self._view is None:
            self.refresh()
        if self._view is not None:
            return self._view.get_targetinfo(target_path)
        return self.updater.get_targetinfo(target_path)

    def _top_targets(self) -> Targets:
        if self._updater is None and self._view is None:
            self.refresh()
        if self._view is not None:
            return self._view.targets.signed
        # the top-level targets the updater verified in this session (not a file of the cache)
        targets: Targets = self.updater._trusted_set.targets
        return targets

    def targetinfo(self, target_path: str) -> TargetFile | None:
        """The verified target info of ``target_path`` (None: no delegated role lists it)."""
        try:
            return self._targetinfo(target_path)
        except (tuf_exc.RepositoryError, tuf_exc.DownloadError) as exc:
            raise VerificationError(f"{self.urls[0]}: {target_path}: {describe(exc)}",
                                    hint="the repository metadata does not verify") from None

    def top_targets(self) -> Targets:
        """The verified top-level targets metadata (the delegations) of this session."""
        return self._top_targets()

    def role_targets(self, role: str) -> dict[str, TargetFile]:
        """The targets delegated role ``role`` lists, as verified in this session (empty when the session has
        not loaded it: ask for one of its targets first, e.g. :meth:`index_digest` for the index role)."""
        try:
            signed = self.updater._trusted_set[role]
        except KeyError:
            return {}
        return dict(signed.targets) if isinstance(signed, Targets) else {}

    def load_delegations(self, roles: Sequence[str] | None = None) -> list[str]:
        """Verify (and cache) the delegated roles ``roles`` of the top-level targets (default: all) and every hash
        bin each delegates to (TAP 15: a developer's bins, the sparse index's), empty bins too; return their
        names, each role before its bins. For a mirror, which serves every role a client may walk to."""
        updater = self.updater
        top = self._top_targets()
        names = sorted((top.delegations.roles or {}) if top.delegations else {}) if roles is None else roles
        listed = updater.listed_version   # a role delegated but never signed yet is not listed (bins: in buckets)
        out = []
        for role in (r for r in names if listed(r) is not None):
            signed = updater._load_targets(role, "targets")
            out.append(role)
            succinct = signed.delegations.succinct_roles if signed.delegations else None
            for name in (b for b in succinct.get_roles() if listed(b) is not None) if succinct else ():
                updater._load_targets(name, role)
                out.append(name)
        return out

    def delegated_role(self, role: str) -> bytes:
        """The bytes of delegated targets role ``role`` exactly as the repository serves them, verified in this
        session (through :meth:`fetch` of one of its targets): for copying it verbatim (``repo vendor``)."""
        trusted = self.updater._trusted_set
        try:
            self.updater.listed_version(role)   # (a bin listed in a bucket: its entry added to the snapshot's)
        except (tuf_exc.RepositoryError, tuf_exc.DownloadError) as exc:
            raise VerificationError(f"{self.urls[0]}: role '{role}': {describe(exc)}",
                                    hint="the repository metadata does not verify") from None
        listed = trusted.snapshot.meta.get(f"{role}.json")
        try:
            signed = trusted[role]
            data = (self.metadata_dir / f"{quote(role, safe='')}.json").read_bytes()
            if listed is None or Metadata.from_bytes(data).signed != signed:
                raise ValueError("not the metadata verified in this session")
            listed.verify_length_and_hashes(data)
        except (KeyError, OSError, ValueError, tuf_exc.RepositoryError) as exc:
            raise VerificationError(f"{self.urls[0]}: role '{role}': no verified metadata ({exc})",
                                    hint="run again: the repository changed while it was read") from None
        return data

    # ---- index and queries
    def index(self, arch: str) -> list[IndexEntry]:
        if arch not in self._indexes:
            path = index_target_path(arch)
            data = self._download(path)
            self._indexes[arch] = parse_index(data.read_bytes(), f"{self.urls[0]}: {path}")
        return self._indexes[arch]

    def index_documents(self, arch: str) -> tuple[bytes, list[dict[str, Any]]]:
        """The verified index of ``arch``: its JSON and its entries as plain dicts (cheaper than
        :meth:`index` for a pool build)."""
        path = index_target_path(arch)
        data, docs = decode_index(self._download(path).read_bytes(), f"{self.urls[0]}: {path}")
        self._documents[arch] = docs
        return data, docs

    def index_digest(self, arch: str) -> str:
        """sha256 of the verified index of ``arch`` (from the trusted targets metadata)."""
        try:
            info = self._targetinfo(index_target_path(arch))
        except (tuf_exc.RepositoryError, tuf_exc.DownloadError) as exc:
            raise VerificationError(f"{self.urls[0]}: {index_target_path(arch)}: {describe(exc)}",
                                    hint="the repository metadata does not verify") from None
        return str(info.hashes.get("sha256", "")) if info else ""

    def search(self, query: str, arch: str) -> list[IndexEntry]:
        q = query.lower()
        return [e for e in self.index(arch)
                if q in e.name.lower() or q in e.description.lower() or any(q in p for p in e.provides)]

    def metadata(self, name: str, arch: str, version: str = "") -> IndexEntry:
        """The newest entry for ``name`` (matching ``version``: exact, or a Cargo requirement).

        From the name's sparse file when the repository publishes the sparse index and its whole index is large
        (the rule ``lock`` follows: composer/solve/sparsepool.py): one small file instead of the whole index."""
        entries = self._named(name, arch)
        if not entries:
            close = close_names(name, (e.name for e in self.index(arch)))
            raise UserError(f"no package '{name}' for {arch} in {self.urls[0]}",
                            hint=f"did you mean: {', '.join(close)}" if close else "try: vcomp search")
        if version:
            exact = [e for e in entries if e.version_text == version]  # the text form: 1:2.36-9+deb12u7
            if exact:
                entries = exact
            else:
                try:
                    req = Requirement.parse(version if version[0] in "=<>^~*" else f"={version}")
                except VersionError as exc:
                    raise UserError(f"invalid version '{version}': {exc}") from None
                entries = [e for e in entries if req.matches_full(e.full_version)]
            if not entries:
                raise UserError(f"no version of '{name}' for {arch} matches '{version}'")
        return max(entries, key=lambda e: e.order_key())

    def _named(self, name: str, arch: str) -> list[IndexEntry]:
        """The entries called ``name``: from its sparse file when :meth:`prefers_sparse` (the whole index is behind
        the sparse files, or large: the rule of ``lock``'s auto mode, decided from the index role alone), else,
        or when offline without the sparse metadata, from the whole index."""
        if 0 < len(name) <= MAX_NAME:
            try:
                if self.prefers_sparse(arch):
                    found = self.sparse_entries(arch, [name]).get(name)
                    return [IndexEntry.from_dict(d) for d in found.packages] if found is not None else []
            except FetchError:
                if self._view is None:   # online: a real failure (offline, the bins may just not be cached)
                    raise
        return [e for e in self.index(arch) if e.name == name]

    # ---- the sparse index (composer/repo/sparse.py)
    def has_sparse(self, arch: str) -> bool:
        """Whether the repository publishes the sparse index of ``arch`` (its base.json is a signed target)."""
        return self._listed(base_target_path(arch)) is not None

    def whole_behind(self, arch: str) -> int:
        """How many names changed since the whole index of ``arch`` was built (0: it is current). At scale the
        publisher rebuilds the whole indexes every so many changes only (composer/repo/incremental.py) and
        says so in the signed index role; the sparse files are always current."""
        info = self._listed(index_target_path(arch))
        return whole_behind(info.custom) if info is not None else 0

    def prefers_sparse(self, arch: str) -> bool:
        """Whether lookups by name read the sparse files: the repository publishes them, and its whole index
        is behind them, or large (not with VCOMP_INDEX=whole) -- decided from the signed metadata alone."""
        if not self.whole_behind(arch) and (settings.INDEX.get() == "whole"
                                            or self.index_length(arch) < AUTO_SPARSE_BYTES):
            return False   # (the index role alone decides: nothing more is read for a small repository)
        return self.has_sparse(arch)

    def named_documents(self, arch: str, names: Iterable[str]) -> list[Mapping[str, Any]]:
        """The index entries (plain dicts) of exactly ``names``: from their sparse files when
        :meth:`prefers_sparse`, else from the whole index."""
        wanted = set(names)
        if self.prefers_sparse(arch):
            found = self.sparse_entries(arch, sorted(n for n in wanted if 0 < len(n) <= MAX_NAME))
            return [d for f in found.values() for d in f.packages]
        docs = self._documents.get(arch)
        if docs is None:
            docs = self.index_documents(arch)[1]
        return [d for d in docs if d.get("name") in wanted]

    def index_length(self, arch: str) -> int:
        """The signed length of the whole index of ``arch`` (0: none), from the metadata (nothing downloaded)."""
        info = self._listed(index_target_path(arch))
        return info.length if info is not None else 0

    def sparse_base(self, arch: str) -> SparseBase:
        path = base_target_path(arch)
        return parse_base(self._download(path).read_bytes(), f"{self.urls[0]}: {path}", arch=arch)

    def sparse_entries(self, arch: str, names: Iterable[str]) -> dict[str, SparseFile]:
        """The verified sparse files of ``names`` (a name the repository has no file for is left out). Each is
        a TUF target read from the content-addressed cache when its sha256 is there: only changed names are
        downloaded again."""
        out = {}
        for name in names:
            path = sparse_target_path(arch, name)
            if self._listed(path) is not None:
                out[name] = parse_sparse(self._download(path).read_bytes(), f"{self.urls[0]}: {path}", arch=arch,
                                         name=name)
        return out

    def _listed(self, target_path: str) -> TargetFile | None:
        try:
            return self._targetinfo(target_path)
        except (tuf_exc.RepositoryError, tuf_exc.DownloadError) as exc:
            raise VerificationError(f"{self.urls[0]}: {target_path}: {describe(exc)}",
                                    hint="the repository metadata does not verify") from None

    # ---- packages
    def fetch(self, entry: IndexEntry, out_dir: Path | None = None) -> Path:
        """Download, check against the index and the delegated role, verify the package, return its path."""
        try:
            info = self._targetinfo(entry.path)
        except (tuf_exc.RepositoryError, tuf_exc.DownloadError) as exc:
            raise VerificationError(f"{self.urls[0]}: {entry.path}: {describe(exc)}",
                                    hint="the developer's role metadata could not be downloaded or verified") \
                from None
        if info is None:
            raise VerificationError(f"{entry.path}: listed in the index but not by any delegated role",
                                    hint="the index and the developer metadata disagree (mix-and-match?)")
        if info.hashes.get("sha256") != entry.sha256 or info.length != entry.size:
            raise VerificationError(f"{entry.path}: the index and the delegated role disagree on its hash or "
                                    "size (mix-and-match)", hint="the repository is inconsistent: do not use it")
        path = self._download(entry.path)
        key = self.delegated_key(entry)
        verified: Verified = verify_package(path, key)
        check_entry(entry, verified.header)
        if out_dir is None:
            return path
        dest = out_dir / entry.path.rsplit("/", 1)[-1]
        atomic_copy(path, dest)
        return dest

    def delegated_key(self, entry: IndexEntry) -> PublicKey:
        delegations = self._top_targets().delegations
        if delegations is None or delegations.roles is None:
            raise VerificationError(f"{entry.path}: the repository delegates no package names")
        for role in delegations.roles.values():
            if entry.signer in role.keyids and role.is_delegated_path(entry.path):
                return PublicKey(key=delegations.keys[entry.signer])  # type: ignore[arg-type]
        raise VerificationError(f"{entry.path}: signed by key {entry.signer[:16]}, which no delegation authorises "
                                f"for '{entry.name}'", hint="the package was not published by its developer")

    def download(self, target_path: str) -> Path:
        """A verified target (a package or an index), from the package cache or the repository."""
        return self._download(target_path)

    def _download(self, target_path: str) -> Path:
        """A verified target (length and hash from trusted metadata): from the package cache (checked on
        every read), else from the first source that has it, written into the cache under the entry's lock."""
        try:
            info = self._targetinfo(target_path)
        except (tuf_exc.RepositoryError, tuf_exc.DownloadError) as exc:
            raise VerificationError(f"{self.urls[0]}: {target_path}: {describe(exc)}",
                                    hint="the repository metadata does not verify") from None
        if info is None:
            raise FetchError(f"{self.urls[0]}: no target '{target_path}'",
                             hint="the repository does not serve this architecture or package")
        digest = info.hashes.get("sha256")
        if digest is None:
            raise VerificationError(f"{self.urls[0]}: {target_path}: the metadata gives no sha256",
                                    hint="the repository is not one vcomp published")
        ensure_private_dir(self.objects.dir)
        cached = self.objects.get(digest, info.length)
        if cached is not None:
            return cached
        if self._view is not None:
            raise FetchError(f"{target_path} is not in the package cache and {self.offline_reason} "
                             f"({self.urls[0]})", hint=OFFLINE_HINT)
        return self.objects.put(digest, info.length, lambda tmp: self._download_into(info, target_path, tmp))

    def _download_into(self, info: TargetFile, target_path: str, tmp: Path) -> None:
        if self._from_delta(info, target_path, tmp):
            return
        # A target path is a name, a URL is percent-encoded: python-tuf joins the path as it is, so an epoch's
        # '%3a' (three characters of the file's name on the server) is sent as '%253a'; '+' and '~' stay.
        at_url = TargetFile(length=info.length, hashes=dict(info.hashes), path=quote(info.path, safe="/+~"))
        problems = []
        for base in sorted(self.urls, key=lambda u: u != self._answered):  # a stalled primary costs one deadline
            try:
                self.updater.download_target(at_url, filepath=str(tmp), target_base_url=f"{base}/targets/")
                self.transfers["full"] += 1
                self.transfers["full-bytes"] += info.length
                return
            except (tuf_exc.RepositoryError, tuf_exc.DownloadError) as exc:
                problems.append(f"{base}: {describe(exc)}")
        sep = " " if len(problems) == 1 else "\n    "   # one source: one line
        raise VerificationError(f"{target_path}: no source gave a verified copy:{sep}" + sep.join(problems),
                                hint="the file was tampered with, the mirrors are broken or the server went "
                                     "away: run again")


    # ---- package deltas (composer.repo.deltas.py)
    def _from_delta(self, info: TargetFile, target_path: str, tmp: Path) -> bool:
        """Write the package ``target_path`` to ``tmp`` from the cached previous version and the repository's
        delta, only when the result has the signed length and sha256; False (a full download follows) when
        there is no previous version in the cache, no delta, or anything goes wrong."""
        base = self._delta_base(target_path)
        if base is None:
            return False
        new_sha = str(info.hashes.get("sha256", ""))
        url = f"{self._answered or self.urls[0]}/targets/{delta_name(base[0], new_sha)}"
        try:
            delta = self._delta_fetcher.download_bytes(url, info.length)   # a delta as large is no gain
            data = apply_delta(base[1].read_bytes(), delta, info.length, origin=url)
            if hashlib.sha256(data).hexdigest() != new_sha:
                raise VerificationError(f"{url}: the patched package does not have the signed sha256")
            tmp.write_bytes(data)
        except tuf_exc.DownloadHTTPError as exc:
            if exc.status_code != 404:
                self.transfers["delta-fallbacks"] += 1
            return False
        except (tuf_exc.DownloadError, VerificationError, OSError) as exc:
            self.transfers["delta-fallbacks"] += 1
            log.info("%s: delta not used (%s); downloading the full package", target_path, exc)
            return False
        self.transfers["delta"] += 1
        self.transfers["delta-bytes"] += len(delta)
        log.info("%s: rebuilt from a %d-byte delta of the cached %s (%d bytes not downloaded)", target_path,
                 len(delta), base[0][:12], info.length - len(delta))
        return True

    def _delta_base(self, target_path: str) -> tuple[str, Path] | None:
        """(sha256, cached file) of the newest older version of the package at ``target_path`` in the package
        cache, among the indexes this client has read; None when there is none."""
        entries = self._versions().get(target_path.rpartition("/")[0], [])
        this = next((e for e in entries if e.path == target_path), None)
        if this is None:
            return None
        older = sorted((e for e in entries if e.name == this.name and e.arch == this.arch
                        and e.order_key() < this.order_key()), key=lambda e: e.order_key(), reverse=True)
        for entry in older:
            cached = self.objects.get(entry.sha256, entry.size)
            if cached is not None:
                return entry.sha256, cached
        return None

    def _versions(self) -> dict[str, list[IndexEntry]]:
        """packages/NAME -> the entries of every version (the indexes read so far), made once per set of indexes."""
        key = (tuple(self._indexes), tuple(self._documents))
        if self._folders[0] != key:
            folders: dict[str, list[IndexEntry]] = {}
            for index in self._indexes.values():
                for e in index:
                    folders.setdefault(e.path.rpartition("/")[0], []).append(e)
            for docs in self._documents.values():
                for d in docs:
                    folders.setdefault(str(d.get("path", "")).rpartition("/")[0], []).append(IndexEntry.from_dict(d))
            self._folders = (key, folders)
        return self._folders[1]

    @functools.cached_property
    def _delta_fetcher(self) -> UrlFetcher:
        return UrlFetcher()


def is_unreachable(exc: Exception) -> bool:
    """A source that could not be reached (connection refused or broken, HTTP error, missing file), as opposed
    to one that served something that does not verify, too much, or at a trickle (signs of an attack on
    the transport, which are never a reason to work offline)."""
    hostile = (tuf_exc.DownloadLengthMismatchError, tuf_exc.SlowRetrievalError)
    return isinstance(exc, tuf_exc.DownloadError) and not isinstance(exc, hostile)


def describe(exc: Exception) -> str:
    """A one-line description of a python-tuf error."""
    kinds = {
        tuf_exc.ExpiredMetadataError: "expired metadata",
        tuf_exc.BadVersionNumberError: "rollback attack or stale mirror (version older than trusted)",
        tuf_exc.UnsignedMetadataError: "signatures do not verify or below threshold",
        tuf_exc.LengthOrHashMismatchError: "length or hash mismatch (tampered or mix-and-match)",
        tuf_exc.DownloadLengthMismatchError: "file longer than allowed (endless data)",
        tuf_exc.SlowRetrievalError: "download too slow (slow retrieval attack?)",
        tuf_exc.DownloadHTTPError: "HTTP error",
        tuf_exc.DownloadError: "download failed",
        tuf_exc.RepositoryError: "invalid repository metadata",
    }
    kind = next((v for k, v in kinds.items() if isinstance(exc, k)), type(exc).__name__)
    cause = f" ({exc.__cause__})" if exc.__cause__ else ""
    return f"{kind}: {exc}{cause}"
