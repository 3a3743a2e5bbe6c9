"""Advisories in a TUF repository (the I/O edge): the ``advisories`` delegated role and its one target, the
feed ``advisories/osv.json.zst`` (composer/advisory/feed.py).

The offline top-level targets key delegates ``advisories/*`` to the advisory signers' keys (``vcomp advisory
delegate REPO --key K.pub --targets-key T.key``, or :func:`delegate_advisories`); ``vcomp advisory add``
signs a new version of the role with one of those keys, and the repository's publish lists it in the
snapshot. A client reads the feed as it reads an index: a target whose length and hash the verified role
gives (:func:`client_feed`).
"""

from __future__ import annotations

from collections.abc import Sequence

from tuf.api.exceptions import LengthOrHashMismatchError
from tuf.api.metadata import DelegatedRole, Metadata, TargetFile, Targets

from composer.advisory.feed import FEED_PATH, Feed, decode, encode, merge
from composer.advisory.osv import Advisory
from composer.errors import UserError, VerificationError
from composer.repo.edit import set_delegation
from composer.repo.guard import locked
from composer.repo.publish import stored_target
from composer.repo.publishing import publish_unlocked
from composer.repo.store import ADVISORY_PATHS, ADVISORY_ROLE, RepoStore, expires
from composer.trust.keys import PublicKey, SigningKey

DELEGATE_HINT = ("delegate advisories/* once, with the offline targets key: vcomp advisory delegate REPO "
                 "--key SIGNER.pub --targets-key TARGETS.key")


def advisory_role(keys: Sequence[PublicKey], threshold: int = 1) -> DelegatedRole:
    return DelegatedRole(name=ADVISORY_ROLE, keyids=sorted(k.keyid for k in keys), threshold=threshold,
                         terminating=True, paths=list(ADVISORY_PATHS))


@locked
def delegate_advisories(store: RepoStore, keys: Sequence[PublicKey], *, targets_keys: Sequence[SigningKey],
                        threshold: int = 1) -> bool:
    """Delegate advisories/* to ``keys`` (signed with the offline targets keys); False when it already is."""
    targets = store.load("targets", Targets)
    role = advisory_role(keys, threshold)
    current = (targets.signed.delegations.roles or {}).get(ADVISORY_ROLE) if targets.signed.delegations else None
    if current is not None and current.keyids == role.keyids and current.threshold == role.threshold:
        return False
    signers = store.offline_signers("targets", targets_keys, option="--targets-key")
    set_delegation(targets.signed, role, {k.keyid: k.key for k in keys})
    targets.signed.version += 1
    targets.signed.expires = expires(store.config.expiry_days["targets"])
    store.sign_and_write(targets, "targets", signers)
    return True


def _role(store: RepoStore) -> DelegatedRole:
    targets = store.load("targets", Targets).signed
    role: DelegatedRole | None = ((targets.delegations.roles or {}).get(ADVISORY_ROLE)
                                  if targets.delegations else None)
    if role is None:
        raise UserError(f"{store.dir}: the repository delegates no '{ADVISORY_ROLE}' role", hint=DELEGATE_HINT)
    return role


def read_feed(store: RepoStore) -> Feed:
    """The feed the current advisories role lists (empty when none was published)."""
    if not store.has_role(ADVISORY_ROLE):
        return Feed()
    info = store.load(ADVISORY_ROLE, Targets).signed.targets.get(FEED_PATH)
    if info is None:
        return Feed()
    path = store.targets_dir / stored_target(FEED_PATH, str(info.hashes["sha256"]))
    try:
        data = path.read_bytes()
        info.verify_length_and_hashes(data)
    except (OSError, LengthOrHashMismatchError) as exc:
        raise VerificationError(f"{path}: the advisory feed the '{ADVISORY_ROLE}' role lists is missing or "
                                f"damaged ({exc})", hint="restore targets/ from a backup") from None
    return decode(data, str(path))


def write_feed(store: RepoStore, feed: Feed, keys: Sequence[SigningKey]) -> bool:
    """Sign a new version of the advisories role listing ``feed`` (unchanged bytes: nothing written, False).
    Under the repository lock; the caller publishes."""
    role = _role(store)
    signers = [k for k in keys if k.keyid in role.keyids]
    if len(signers) < role.threshold:
        raise UserError(f"{store.dir}: the '{ADVISORY_ROLE}' role needs {role.threshold} of its keys "
                        f"({', '.join(k[:16] for k in role.keyids)}); {len(signers)} given",
                        hint="pass the advisory signer's private key with --key")
    data = encode(feed)
    info = TargetFile.from_data(FEED_PATH, data, ["sha256"])
    if store.has_role(ADVISORY_ROLE):
        md = store.load(ADVISORY_ROLE, Targets)
        if md.signed.targets.get(FEED_PATH) == info:
            return False
        md.signed.version += 1
    else:
        md = Metadata(Targets(version=1, expires=expires(1)))
    store.publisher.put_target(stored_target(FEED_PATH, info.hashes["sha256"]), data)
    md.signed.targets = {FEED_PATH: info}
    md.signed.expires = expires(store.config.expiry_days["delegated"])
    store.sign_and_write(md, ADVISORY_ROLE, signers)
    return True


@locked
def add_advisories(store: RepoStore, advisories: Sequence[Advisory], keys: Sequence[SigningKey], *,
                   replace: bool = False) -> tuple[Feed, bool]:
    """Merge ``advisories`` into the feed (feed.merge's refusals), sign the role and publish the repository.
    Return the new feed and whether anything changed."""
    feed = merge(read_feed(store), advisories, replace=replace)
    changed = write_feed(store, feed, keys)
    if changed:
        publish_unlocked(store)
    return feed, changed


@locked
def set_feed(store: RepoStore, feed: Feed, keys: Sequence[SigningKey]) -> bool:
    """Replace the whole feed (a derived feed, such as the Debian import's) and publish when it changed."""
    changed = write_feed(store, feed, keys)
    if changed:
        publish_unlocked(store)
    return changed
