"""`vcomp repo vendor`: upstream packages in your repository, still verified by their upstream developers.

An upstream repository is read through its pinned root with the verifying client (repo/client.py, as
repo/mirror.py reads one), and for the asked names:

* each package is verified as any client verifies it (the upstream developer role's target info, the
  developer's signature, the index entry against the signed header) plus ``repo add``'s byte checks (safe
  paths, lint errors), then copied byte for byte to its content-addressed name under targets/;
* the upstream developer role's metadata (``N.ROLE.json``, and its hash bins ``N.ROLE.binsB-XX.json`` when it
  has them: composer/repo/devbins.py) is copied verbatim: its signatures are the upstream developer's, so no
  upstream private key is needed, and none is read;
* this repository's offline top-level targets delegates exactly the vendored package names (and the names
  they provide) to the upstream role's keys and threshold, under the upstream role's name. Not the upstream
  patterns: a package the upstream developer adds later gets no authority here until it is vendored, and
  your developers' names can be checked exactly. A role named like one of yours, or a name one of your
  developers' patterns covers, is refused (one key owns a name: docs/security/trust-model.md);
* the state (``state.db``) lists the vendored packages, so the next ``repo publish`` (online index key) indexes them.
  Clients of this repository verify them against the upstream developer's signatures, unchanged.

A second run is incremental: it re-vendors the names vendored before through the same upstream (so the role
and its packages stay in step), copies only targets not stored yet, and replaces the role by the upstream's
newer version; an older version is refused (rollback), and so is the same version with other bytes. The
top-level targets is signed again only when a delegation changes (new names, upstream key rotation): picking
up newer upstream versions of names already vendored needs no offline key.

Everything upstream is read and verified before anything is written, under this repository's lock; what is
written follows the repository's order (targets, the record, the role, the delegation, the state).
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from securesystemslib.signer import Key
from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import DelegatedRole, Metadata, Targets

from composer import limits
from composer.errors import ComposerError, UserError, VerificationError, combine
from composer.fsutil import atomic_copy, sha256_file
from composer.repo.client import RepositoryClient, describe, root_fingerprint
from composer.repo.edit import TOP_ROLES, UPLOAD_PREFIX, check_package, set_delegation
from composer.repo.guard import locked, reconcile_state
from composer.repo.index import IndexEntry, close_names, package_target_path
from composer.repo.publish import put_target_files, stored_target
from composer.repo.store import INDEX_ROLE, RepoStore, expires
from composer.repo.vendored import VendoredRole, read_vendored, write_vendored
from composer.trust.keys import PublicKey, SigningKey

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+:@-]*")   # a name that is no glob and no path in a delegation
ROLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")         # as 'repo delegate' names roles (N.ROLE.json)
UPSTREAM_HINT = "the copy in your repository is unchanged; check the upstream URL and its root, and run again"


@dataclass(frozen=True, slots=True, kw_only=True)
class VendorRequest:
    patterns: tuple[str, ...]          # package names or globs, as the upstream index names them
    arches: tuple[str, ...] = ()       # default: every architecture the repository serves
    with_dependencies: bool = False    # also the names the asked packages depend on (per architecture)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamRole:
    """One upstream developer role and its asked packages, verified through the pinned upstream root."""

    name: str
    data: bytes                             # the signed metadata, verbatim
    version: int
    bins: tuple[tuple[str, int, bytes], ...] = ()   # its hash bins (name, version, metadata verbatim): devbins.py
    keyids: tuple[str, ...]                 # the upstream delegation's keys and threshold
    threshold: int
    keys: Mapping[str, Key]
    names: tuple[str, ...]                  # the package names and the names they provide
    packages: tuple[tuple[IndexEntry, Path], ...]   # verified copies in the client's package cache


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleChange:
    name: str
    version: int
    previous: int                           # 0: vendored for the first time
    names: tuple[str, ...]                  # every name delegated to it now


@dataclass(frozen=True, slots=True, kw_only=True)
class Vendored:
    roles: tuple[RoleChange, ...]
    packages: tuple[IndexEntry, ...]        # every package of this run, by path
    copied: int                             # package files written (the others were stored already)
    targets_version: int                    # the top-level targets version (new when a delegation changed)
    delegation_changed: bool


@locked
def vendor(store: RepoStore, client: RepositoryClient, request: VendorRequest, *,
           targets_keys: Sequence[SigningKey] = ()) -> Vendored:
    """Vendor ``request`` from the upstream ``client`` reads into ``store`` (see the module docstring).
    ``targets_keys``: the offline top-level targets keys, needed when a delegation changes."""
    client.fallback = False   # a vendored copy is never made from a cache
    try:
        upstream = read_upstream(client, store, request)
    except (tuf_exc.RepositoryError, tuf_exc.DownloadError) as exc:
        raise VerificationError(f"vendor from {client.urls[0]}: {describe(exc)}", hint=UPSTREAM_HINT) from None
    record = checked_record(store, client, upstream)
    targets = store.load("targets", Targets)
    before = targets.signed.to_dict()
    for role in upstream:
        delegation = DelegatedRole(name=role.name, keyids=list(role.keyids), threshold=role.threshold,
                                   terminating=True, paths=[f"packages/{n}/*" for n in record[role.name].names])
        set_delegation(targets.signed, delegation, role.keys)
    changed = targets.signed.to_dict() != before
    signers = store.offline_signers("targets", targets_keys, option="--targets-key") if changed else []
    previous = {r.name: store.current_version(r.name) if store.has_role(r.name) else 0 for r in upstream}
    copied = store_packages(store, upstream)
    write_vendored(store.dir, record)
    for role in upstream:
        for bin_name, version, bin_data in role.bins:   # the bins before the role that points at them
            if not store.has_role(bin_name) or store.current_version(bin_name) != version:
                store.publisher.put_metadata(f"{version}.{bin_name}.json", bin_data)
        if previous[role.name] != role.version:
            store.publisher.put_metadata(f"{role.version}.{role.name}.json", role.data)
    if changed:
        targets.signed.version += 1
        targets.signed.expires = expires(store.config.expiry_days["targets"])
        store.sign_and_write(targets, "targets", signers)
    state = store.read_state()
    for role in upstream:
        state["packages"].update({entry.path: entry.to_dict() for entry, _ in role.packages})
    store.write_state(reconcile_state(store, state))   # drops what the replaced role versions no longer list
    return Vendored(roles=tuple(RoleChange(name=r.name, version=r.version, previous=previous[r.name],
                                           names=record[r.name].names) for r in upstream),
                    packages=tuple(sorted((e for r in upstream for e, _ in r.packages), key=lambda e: e.path)),
                    copied=copied, targets_version=int(targets.signed.version), delegation_changed=changed)


# ----------------------------------------------------------------- reading upstream (nothing written)

def read_upstream(client: RepositoryClient, store: RepoStore, request: VendorRequest) -> tuple[UpstreamRole, ...]:
    """The upstream roles and packages ``request`` names, each verified through the pinned upstream root."""
    client.refresh()
    arches = _arches(store, request.arches)
    if not request.arches:   # by default, those of your architectures the upstream serves
        arches = [a for a in arches if client.index_digest(a)]
    entries = {e.path: e for arch in arches for e in client.index(arch)}
    available = {e.name for e in entries.values()}
    ours = read_vendored(store.dir)
    again = {n for r in ours.values() if _same_upstream(r, client) for n in r.names} & available
    if not request.patterns and not again:
        raise UserError(f"{store.dir}: nothing vendored from {client.urls[0]} yet",
                        hint="name the packages to vendor (names or globs, e.g. 'hello' 'lib*')")
    names = select(entries.values(), request.patterns) | again
    if request.with_dependencies:
        names = dependency_closure(entries.values(), names)
    chosen = sorted((e for e in entries.values() if e.name in names), key=lambda e: e.path)
    bound = limits.current()
    if len(chosen) > bound.max_vendored_packages:
        raise limits.exceeded(bound, "max_vendored_packages", client.urls[0], f"{len(chosen)} packages to vendor")
    top = client.top_targets()
    groups: dict[str, list[IndexEntry]] = {}
    for entry in chosen:
        groups.setdefault(_owner(top, entry), []).append(entry)
    return tuple(_read_role(client, top, name, group) for name, group in sorted(groups.items()))


def _arches(store: RepoStore, asked: Sequence[str]) -> list[str]:
    served = store.config.architectures
    unknown = [a for a in asked if a not in served]
    if unknown:
        raise UserError(f"{store.dir}: does not serve {', '.join(unknown)} (it serves {', '.join(served)})",
                        hint="pass --arch with a served architecture, or add it to repo.toml")
    return list(asked) or list(served)


def select(entries: Iterable[IndexEntry], patterns: Sequence[str]) -> set[str]:
    """The package names matching ``patterns``; a pattern that matches nothing is an error (all reported)."""
    available = sorted({e.name for e in entries})
    chosen: set[str] = set()
    errors: list[ComposerError] = []
    for pattern in patterns:
        if not pattern or "/" in pattern:
            errors.append(UserError(f"invalid package name or pattern '{pattern}'",
                                    hint="name packages as the upstream index does, e.g. 'hello' or 'lib*'"))
            continue
        matched = fnmatch.filter(available, pattern)
        if not matched:
            close = close_names(pattern, available)
            errors.append(UserError(f"the upstream serves no package matching '{pattern}'",
                                    hint=f"did you mean: {', '.join(close)}" if close else
                                    "list what it serves: vcomp search '' with a profile using the upstream"))
        chosen.update(matched)
    if errors:
        raise combine(errors, summary=f"{len(errors)} of the asked names are not served upstream")
    return chosen


def dependency_closure(entries: Iterable[IndexEntry], names: Iterable[str]) -> set[str]:
    """``names`` and, transitively, the packages their dependencies name (by name, else by a provide) among
    ``entries``. A dependency the upstream does not serve is left to the lock (another repository may)."""
    listed = list(entries)
    served = {e.name for e in listed}
    providers: dict[str, set[str]] = {}
    needs: dict[str, set[str]] = {}
    for e in listed:
        needs.setdefault(e.name, set()).update(e.dependencies)
        for p in e.provides:
            providers.setdefault(p.partition(" = ")[0], set()).add(e.name)
    todo = sorted(set(names))
    seen = set(todo)
    while todo:
        for dep in sorted(needs.get(todo.pop(), ())):
            for name in sorted({dep} if dep in served else providers.get(dep, set())):
                if name not in seen:
                    seen.add(name)
                    todo.append(name)
    return seen


def _owner(top: Targets, entry: IndexEntry) -> str:
    """The upstream role clients follow for ``entry`` (the first delegation matching its path)."""
    roles = (top.delegations.roles or {}) if top.delegations else {}
    for role in roles.values():
        if role.is_delegated_path(entry.path) and role.name != INDEX_ROLE:
            return role.name
    raise VerificationError(f"{entry.path}: listed in the upstream index but delegated to no developer role",
                            hint=UPSTREAM_HINT)


def _read_role(client: RepositoryClient, top: Targets, name: str, group: Sequence[IndexEntry]) -> UpstreamRole:
    assert top.delegations is not None and top.delegations.roles is not None
    role = top.delegations.roles[name]
    packages: list[tuple[IndexEntry, Path]] = []
    provided: set[str] = set()
    for entry in group:
        if entry.signer not in role.keyids:
            raise VerificationError(f"{client.urls[0]}: {entry.path} is signed by key {entry.signer[:16]}, not by "
                                    f"a key of role '{name}' that the upstream delegates its name to",
                                    hint=UPSTREAM_HINT)
        path = client.fetch(entry)   # the role's target info, the developer's signature, the entry = the header
        key = PublicKey(key=top.delegations.keys[entry.signer])  # type: ignore[arg-type]
        _, _, provides = check_package(path, key)   # and repo add's checks: safe paths, lint
        provided.update(p.partition(" = ")[0] for p in provides)
        packages.append((entry, path))
    data = client.delegated_role(name)   # after the fetches: the version they were verified against
    md = Metadata[Targets].from_bytes(data)
    delegations = md.signed.delegations
    if delegations is not None and (delegations.roles or delegations.succinct_roles is None):
        raise VerificationError(f"{client.urls[0]}: role '{name}' delegates further; vendoring copies developer "
                                "roles that list their packages themselves or in hash bins",
                                hint="vendor from another role")
    bins = []
    for bin_name in client.load_delegations([name])[1:]:   # a binned role: every bin, verified, verbatim
        bin_data = client.delegated_role(bin_name)
        bins.append((bin_name, int(Metadata[Targets].from_bytes(bin_data).signed.version), bin_data))
    names = sorted({e.name for e in group} | provided)
    unsafe = [n for n in names if not SAFE_NAME.fullmatch(n)]
    if unsafe:
        raise VerificationError(f"{client.urls[0]}: role '{name}' provides names that cannot be delegated: "
                                f"{', '.join(repr(n) for n in unsafe)}", hint=UPSTREAM_HINT)
    return UpstreamRole(name=name, data=data, version=int(md.signed.version), bins=tuple(bins),
                        keyids=tuple(sorted(role.keyids)),
                        threshold=role.threshold, keys={k: top.delegations.keys[k] for k in role.keyids},
                        names=tuple(names), packages=tuple(packages))


def _same_upstream(record: VendoredRole, client: RepositoryClient) -> bool:
    return record.upstream == client.urls[0] or record.root == root_fingerprint(client.trusted_root)


# ----------------------------------------------------------------- checks against your repository

def checked_record(store: RepoStore, client: RepositoryClient,
                   upstream: Sequence[UpstreamRole]) -> dict[str, VendoredRole]:
    """The repository's record of vendored roles with ``upstream`` in it, after refusing (all at once) a role
    named like yours, a name your developers own or another vendored role owns, an offline key, a rollback."""
    record = read_vendored(store.dir)
    targets = store.load("targets", Targets).signed
    delegated = (targets.delegations.roles or {}) if targets.delegations else {}
    own = {n: r for n, r in delegated.items() if n != INDEX_ROLE and n not in record}
    owner = {n: role for role, r in record.items() if role not in {u.name for u in upstream} for n in r.names}
    offline = store.offline_keyids()
    errors: list[ComposerError] = []
    for role in upstream:
        errors.extend(_clashes(store, client, role, own, record))
        for n in role.names:
            mine = [r.name for r in own.values() if r.is_delegated_path(package_target_path(n, "0", "x"))]
            if mine:
                errors.append(UserError(f"'{n}' (upstream role '{role.name}') is a name your role '{mine[0]}' owns",
                                        hint="one key owns a name: vendor other names, or drop your developer's "
                                             "pattern for it first"))
            elif owner.setdefault(n, role.name) != role.name:
                errors.append(UserError(f"'{n}' (upstream role '{role.name}') is already delegated to the vendored "
                                        f"role '{owner[n]}'", hint="vendor each name from one upstream role"))
        errors.extend(UserError(f"upstream role '{role.name}': key {k[:16]} is your offline {offline[k]} key",
                                hint="refused: an offline key never signs packages")
                      for k in role.keyids if k in offline)
    if errors:
        raise combine(errors, summary=f"vendor into {store.dir} refused: {len(errors)} problems")
    fingerprint = root_fingerprint(client.trusted_root)
    names = {role.name: set(role.names) | set(record[role.name].names if role.name in record else ())
             for role in upstream}
    return {**record, **{role.name: VendoredRole(upstream=client.urls[0], root=fingerprint,
                                                 names=tuple(sorted(names[role.name]))) for role in upstream}}


def _clashes(store: RepoStore, client: RepositoryClient, role: UpstreamRole, own: Mapping[str, DelegatedRole],
             record: Mapping[str, VendoredRole]) -> list[ComposerError]:
    name = role.name
    if name in (*TOP_ROLES, INDEX_ROLE) or not ROLE_NAME.fullmatch(name):
        return [VerificationError(f"upstream role name '{name}' cannot be a delegation here", hint=UPSTREAM_HINT)]
    if name in own:
        return [UserError(f"upstream role '{name}' has the name of your own role '{name}'",
                          hint="your developers' roles keep their names: vendor from another upstream role")]
    if name in record and not _same_upstream(record[name], client):
        return [UserError(f"role '{name}' is already vendored from {record[name].upstream}, not {client.urls[0]}",
                          hint="vendor each role from one upstream (its URL or its pinned root)")]
    older = [b for b, version, _ in role.bins if store.has_role(b) and version < store.current_version(b)]
    if older:
        return [VerificationError(f"upstream role '{name}': hash bin {older[0]} is older than the vendored copy "
                                  "(rollback)", hint="the upstream or its mirror serves old metadata; your copy is "
                                                     "unchanged")]
    if not store.has_role(name):
        return []
    current = store.current_version(name)
    if role.version < current:
        return [VerificationError(f"upstream role '{name}' is version {role.version}, older than the vendored "
                                  f"version {current} (rollback)",
                                  hint="the upstream or its mirror serves old metadata; your copy is unchanged")]
    if role.version == current and (store.metadata_dir / f"{current}.{name}.json").read_bytes() != role.data:
        return [VerificationError(f"upstream role '{name}' version {current} differs from the vendored copy of "
                                  "the same version", hint="the upstream signed two different versions with one "
                                                           "number: ask its owner; your copy is unchanged")]
    return []


# ----------------------------------------------------------------- writing

def store_packages(store: RepoStore, upstream: Sequence[UpstreamRole]) -> int:
    """Copy the verified packages not stored yet to their content-addressed names; return how many."""
    area = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX, dir=store.dir))
    try:
        items: list[tuple[str, Path]] = []
        for role in upstream:
            for entry, source in role.packages:
                name = stored_target(entry.path, entry.sha256)
                if (store.targets_dir / name).is_file():
                    continue
                copy = area / f"{len(items)}.vpk"
                atomic_copy(source, copy, durable=False)
                if sha256_file(copy) != entry.sha256:   # what is stored is what was verified
                    raise VerificationError(f"{source}: changed after it was verified", hint=UPSTREAM_HINT)
                items.append((name, copy))
        put_target_files(store.publisher, items)
        return len(items)
    finally:
        shutil.rmtree(area, ignore_errors=True)
