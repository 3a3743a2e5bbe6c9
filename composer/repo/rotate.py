"""Key rotation: root (signed by the old and the new threshold), the top-level roles, the online index role
and developer delegations.

Who must sign what (docs/security/trust-model.md):

    root, targets, snapshot, timestamp   listed in root: a new root version, signed by a threshold of the
                                         current root keys (and, for root, of the new root keys)
    index, developer roles               listed in the top-level targets metadata: a new targets version,
                                         signed by the offline targets keys (``targets_keys``)
"""

from __future__ import annotations

from collections.abc import Sequence

from tuf.api.metadata import Metadata, Root, Targets

from composer.errors import UserError
from composer.fsutil import atomic_write
from composer.repo.guard import locked
from composer.repo.publishing import publish_unlocked
from composer.repo.store import CONFIG, INDEX_PATHS, INDEX_ROLE, ONLINE_ROLES, RepoStore, expires
from composer.repo.vendored import read_vendored
from composer.trust.keys import PublicKey, SigningKey, load_key_spec

ROOT_LISTED = ("root", "targets", "snapshot", "timestamp")


@locked
def rotate(store: RepoStore, role: str, *, add: Sequence[SigningKey | PublicKey], remove: Sequence[PublicKey],
           root_keys: Sequence[SigningKey] = (), targets_keys: Sequence[SigningKey] = (),
           threshold: int | None = None, add_paths: Sequence[str] = ()) -> str:
    """Change the keys of ``role``; return a one-line summary.

    For the online roles (index, snapshot, timestamp) repo.toml then points at the new key files
    (``add_paths``); the offline roles' keys (root, targets) are never written there. The repository
    is published at the end, so clients see the change at once.
    """
    if role in ROOT_LISTED:
        summary = _rotate_top(store, role, add, remove, root_keys, targets_keys, threshold)
    else:
        summary = _rotate_delegation(store, role, add, remove, targets_keys, threshold)
    if role in ONLINE_ROLES and add_paths:
        _record_online_keys(store, role, remove, add_paths)
    publish_unlocked(RepoStore(store.dir, publisher=store.publisher))
    return summary


def _public(k: SigningKey | PublicKey) -> PublicKey:
    return k.public if isinstance(k, SigningKey) else k


def _signing(keys: Sequence[SigningKey | PublicKey]) -> list[SigningKey]:
    return [k for k in keys if isinstance(k, SigningKey)]


def _rotate_top(store: RepoStore, role: str, add: Sequence[SigningKey | PublicKey], remove: Sequence[PublicKey],
                root_keys: Sequence[SigningKey], targets_keys: Sequence[SigningKey], threshold: int | None) -> str:
    signing_old = store.offline_signers("root", root_keys, option="--root-key")
    md = changed_root(store, role, add=[_public(k) for k in add], remove=remove, threshold=threshold)
    root: Root = md.signed
    signers = list(signing_old)
    if role == "root":
        new_ids = set(root.roles["root"].keyids)
        new_signers = list({k.keyid: k for k in [*root_keys, *_signing(add)] if k.keyid in new_ids}.values())
        if len(new_signers) < root.roles["root"].threshold:
            raise UserError("the new root must also be signed by a threshold of the new root keys",
                            hint="pass the new root keys as private keys (.key) with --add-key or --root-key")
        signers = list({k.keyid: k for k in [*signing_old, *new_signers]}.values())
    new_targets: list[SigningKey] = []
    if role == "targets":  # the top-level targets metadata is re-signed by the new targets keys
        new_ids = set(root.roles["targets"].keyids)
        new_targets = list({k.keyid: k for k in [*targets_keys, *_signing(add)] if k.keyid in new_ids}.values())
        if len(new_targets) < root.roles["targets"].threshold:
            raise UserError("the top-level targets metadata must be re-signed by the new targets keys",
                            hint="pass the new targets private key(s) (.key) with --add-key or --targets-key")
    store.sign_and_write(md, "root", signers)
    if role == "targets":
        targets = store.load("targets", Targets)
        _bump(store, targets.signed)
        store.sign_and_write(targets, "targets", new_targets)
    return f"root v{root.version}: '{role}' has {len(root.roles[role].keyids)} key(s), threshold " \
           f"{root.roles[role].threshold}"


def changed_root(store: RepoStore, role: str, *, add: Sequence[PublicKey], remove: Sequence[PublicKey],
                 threshold: int | None) -> Metadata[Root]:
    """The next root version with ``role``'s keys changed (not signed yet)."""
    md = store.root()
    root: Root = md.signed
    _refuse_offline_as_online(store, role, add)
    for key in add:
        root.add_key(key.key, role)
    for key in remove:
        if key.keyid not in root.roles[role].keyids:
            raise UserError(f"key {key.keyid[:16]} is not a '{role}' key", hint="check the --remove-key file")
        root.revoke_key(key.keyid, role)
    if threshold is not None:
        root.roles[role].threshold = threshold
    _check_threshold(role, len(root.roles[role].keyids), root.roles[role].threshold)
    root.version += 1
    root.expires = expires(store.config.expiry_days["root"])
    md.signatures.clear()
    return md


def _rotate_delegation(store: RepoStore, role: str, add: Sequence[SigningKey | PublicKey],
                       remove: Sequence[PublicKey], targets_keys: Sequence[SigningKey],
                       threshold: int | None) -> str:
    signers = store.offline_signers("targets", targets_keys, option="--targets-key")
    md = store.load("targets", Targets)
    delegations = md.signed.delegations
    if delegations is None or delegations.roles is None or role not in delegations.roles:
        raise UserError(f"no role '{role}' in this repository",
                        hint="roles are root, targets, snapshot, timestamp, index or a delegation name")
    if role == INDEX_ROLE:
        _refuse_offline_as_online(store, role, add)
    vendored = read_vendored(store.dir).get(role)
    if vendored is not None:
        raise UserError(f"role '{role}' is vendored from {vendored.upstream}: its keys are the upstream developer's",
                        hint="vcomp repo vendor takes the upstream's current keys for it (docs/upstream.md)")
    drole = delegations.roles[role]
    for key in add:
        pub = _public(key)
        delegations.keys[pub.keyid] = pub.key
        if pub.keyid not in drole.keyids:
            drole.keyids.append(pub.keyid)
    for key in remove:
        if key.keyid not in drole.keyids:
            raise UserError(f"key {key.keyid[:16]} is not a key of '{role}'", hint="check the --remove-key file")
        drole.keyids.remove(key.keyid)
    drole.keyids.sort()
    if role == INDEX_ROLE:   # a repository made before the sparse index gets its paths (docs/repo-sparse.md)
        drole.paths = list(dict.fromkeys([*(drole.paths or []), *INDEX_PATHS]))
    if threshold is not None:
        drole.threshold = threshold
    _check_threshold(role, len(drole.keyids), drole.threshold)
    used = {k for r in delegations.roles.values() for k in r.keyids}
    delegations.keys = {k: v for k, v in delegations.keys.items() if k in used}
    _bump(store, md.signed)
    store.sign_and_write(md, "targets", signers)
    after = "" if role == INDEX_ROLE else "; its metadata must be re-signed by the new keys at the next 'repo add'"
    return f"delegation '{role}' has {len(drole.keyids)} key(s), threshold {drole.threshold}{after}"


def _bump(store: RepoStore, targets: Targets) -> None:
    targets.version += 1
    targets.expires = expires(store.config.expiry_days["targets"])


def _check_threshold(role: str, keys: int, threshold: int) -> None:
    if not 1 <= threshold <= keys:
        raise UserError(f"'{role}' would have {keys} keys for threshold {threshold}",
                        hint="adjust --threshold or the keys")


def _refuse_offline_as_online(store: RepoStore, role: str, add: Sequence[SigningKey | PublicKey]) -> None:
    if role not in ONLINE_ROLES:
        return
    offline = store.offline_keyids()
    for key in add:
        if _public(key).keyid in offline:
            raise UserError(f"key {_public(key).keyid[:16]} is the offline {offline[_public(key).keyid]} key; the "
                            f"online '{role}' role needs its own key", hint="make one with: vcomp key generate NAME")


def _record_online_keys(store: RepoStore, role: str, remove: Sequence[PublicKey], add_paths: Sequence[str]) -> None:
    removed = {k.keyid for k in remove}
    keep = [p for p in store.config.keys[role] if _keyid(store, p) not in removed]
    store.config.keys[role] = [*keep, *add_paths]
    atomic_write(store.dir / CONFIG, store.config.to_toml())


def _keyid(store: RepoStore, path: str) -> str:
    try:
        return load_key_spec(path, base=store.dir, ask=lambda _: None).keyid
    except UserError:
        return ""
