"""Key rotation: root (signed by the old and the new threshold), online roles, developer delegations."""

from __future__ import annotations

from collections.abc import Sequence

from tuf.api.metadata import Root, Targets

from composer.errors import UserError
from composer.repo.edit import publish
from composer.repo.store import ONLINE_ROLES, RepoStore, expires
from composer.trust.keys import PublicKey, SigningKey


def rotate(store: RepoStore, role: str, *, add: Sequence[SigningKey | PublicKey], remove: Sequence[PublicKey],
           root_keys: Sequence[SigningKey], threshold: int | None = None,
           add_paths: Sequence[str] = ()) -> str:
    """Change the keys of ``role``; return a one-line summary.

    root and the online roles (targets, snapshot, timestamp) are listed in root metadata: a new root
    version is written, signed by a threshold of the current root keys and, for root, also by a
    threshold of the new root keys (so clients can verify the chain N -> N+1). For online roles the
    repository configuration then points at the new key files and the role is re-signed (publish).
    Any other role name is a developer delegation in targets metadata.
    """
    if role == "root" or role in ONLINE_ROLES:
        return _rotate_top(store, role, add, remove, root_keys, threshold, add_paths)
    return _rotate_delegation(store, role, add, remove, threshold)


def _public(k: SigningKey | PublicKey) -> PublicKey:
    return k.public if isinstance(k, SigningKey) else k


def _rotate_top(store: RepoStore, role: str, add: Sequence[SigningKey | PublicKey], remove: Sequence[PublicKey],
                root_keys: Sequence[SigningKey], threshold: int | None, add_paths: Sequence[str]) -> str:
    md = store.root()
    root: Root = md.signed
    old_root_ids = set(root.roles["root"].keyids)
    old_threshold = root.roles["root"].threshold
    signing_old = [k for k in root_keys if k.keyid in old_root_ids]
    if len(signing_old) < old_threshold:
        raise UserError(f"rotating '{role}' needs {old_threshold} of the current root keys; "
                        f"{len(signing_old)} given", hint="pass the current root private keys with --root-key")
    for key in add:
        root.add_key(_public(key).key, role)
    for key in remove:
        if key.keyid not in root.roles[role].keyids:
            raise UserError(f"key {key.keyid[:16]} is not a '{role}' key", hint="check the --remove-key file")
        root.revoke_key(key.keyid, role)
    if threshold is not None:
        root.roles[role].threshold = threshold
    if not 1 <= root.roles[role].threshold <= len(root.roles[role].keyids):
        raise UserError(f"'{role}' would have {len(root.roles[role].keyids)} keys for threshold "
                        f"{root.roles[role].threshold}", hint="adjust --threshold or the keys")
    root.version += 1
    root.expires = expires(store.config.expiry_days["root"])
    signers = list(signing_old)
    if role == "root":
        new_ids = set(root.roles["root"].keyids)
        new_signers = [k for k in [*root_keys, *add] if isinstance(k, SigningKey) and k.keyid in new_ids]
        new_signers = list({k.keyid: k for k in new_signers}.values())
        if len(new_signers) < root.roles["root"].threshold:
            raise UserError("the new root must also be signed by a threshold of the new root keys",
                            hint="pass the new root keys as private keys (.key) with --add-key or --root-key")
        signers = list({k.keyid: k for k in [*signing_old, *new_signers]}.values())
    store.sign_and_write(md, "root", signers)
    if role in ONLINE_ROLES:
        if add_paths:
            keep = [p for p in store.config.keys[role]
                    if not any(_same_key(p, store, r) for r in remove)]
            store.config.keys[role] = [*keep, *add_paths]
            from composer.fsutil import atomic_write
            atomic_write(store.dir / "repo.toml", store.config.to_toml())
        publish(store)
    return f"root v{root.version}: '{role}' has {len(root.roles[role].keyids)} key(s), threshold " \
           f"{root.roles[role].threshold}"


def _same_key(path: str, store: RepoStore, key: PublicKey) -> bool:
    from pathlib import Path

    from composer.trust.keys import load_signing_key
    p = Path(path) if Path(path).is_absolute() else store.dir / path
    try:
        return load_signing_key(p).keyid == key.keyid
    except UserError:
        return False


def _rotate_delegation(store: RepoStore, role: str, add: Sequence[SigningKey | PublicKey],
                       remove: Sequence[PublicKey], threshold: int | None) -> str:
    md = store.load("targets", Targets)
    delegations = md.signed.delegations
    if delegations is None or delegations.roles is None or role not in delegations.roles:
        raise UserError(f"no role '{role}' in this repository",
                        hint="roles are root, targets, snapshot, timestamp or a delegation name")
    drole = delegations.roles[role]
    for key in add:
        pub = _public(key)
        delegations.keys[pub.keyid] = pub.key
        if pub.keyid not in drole.keyids:
            drole.keyids.append(pub.keyid)
    for key in remove:
        if key.keyid not in drole.keyids:
            raise UserError(f"key {key.keyid[:16]} is not a key of '{role}'")
        drole.keyids.remove(key.keyid)
    drole.keyids.sort()
    if threshold is not None:
        drole.threshold = threshold
    if not 1 <= drole.threshold <= len(drole.keyids):
        raise UserError(f"'{role}' would have {len(drole.keyids)} keys for threshold {drole.threshold}")
    used = {k for r in delegations.roles.values() for k in r.keyids}
    delegations.keys = {k: v for k, v in delegations.keys.items() if k in used}
    md.signed.version += 1
    md.signed.expires = expires(store.config.expiry_days["targets"])
    store.sign_and_write(md, "targets", store.online_keys("targets"))
    publish(store)
    return f"delegation '{role}' has {len(drole.keyids)} key(s), threshold {drole.threshold}; its metadata " \
           "must be re-signed by the new keys at the next 'repo add'"
