"""A signing ceremony for the root role, whose keys are held by different people (as tuf-on-ci and RSTUF do).

    vcomp repo rotate DIR --role root --add-key carol.pub --threshold 2 --stage   # writes DIR/staged-root.json
    vcomp repo sign-root DIR --key alice.key --staged alice-copy.json              # on Alice's machine
    vcomp repo sign-root DIR --key bob.key --staged bob-copy.json                  # on Bob's machine
    vcomp repo sign-root DIR --merge alice-copy.json --merge bob-copy.json         # published when complete

A staged root is the next root version, unsigned at first. Each holder adds a signature to a copy; the copies
merge (only signatures over exactly the same root, by a key of the current or the new root role, are taken).
The root is published only when it carries a threshold of the current root keys (what clients check to move
from the old root) and a threshold of its own root keys; the staged file is then removed. It is never served:
only metadata/ and targets/ are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from securesystemslib.signer import Key, Signature
from tuf.api.metadata import Metadata, Root

from composer.errors import UserError, VerificationError
from composer.fsutil import atomic_write
from composer.repo.guard import locked
from composer.repo.publishing import publish_unlocked
from composer.repo.rotate import changed_root
from composer.repo.store import SERIALIZER, RepoStore
from composer.trust.keys import PublicKey, SigningKey

STAGED = "staged-root.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class CeremonyStatus:
    version: int
    old_signed: int        # valid signatures by keys of the current root's root role
    old_threshold: int
    new_signed: int        # valid signatures by keys of the staged root's root role
    new_threshold: int
    published: bool
    staged: Path

    @property
    def complete(self) -> bool:
        return self.old_signed >= self.old_threshold and self.new_signed >= self.new_threshold

    def summary(self) -> str:
        head = f"root v{self.version}: {self.old_signed} of {self.old_threshold} current root signatures, " \
               f"{self.new_signed} of {self.new_threshold} new root signatures"
        if self.published:
            return f"{head}; published"
        if self.complete:
            return f"{head}; complete (not published: --no-publish)"
        return f"{head}; staged in {self.staged} (more holders must sign: vcomp repo sign-root)"


def staged_path(store: RepoStore, given: Path | None) -> Path:
    return given if given is not None else store.dir / STAGED


@locked
def stage_root(store: RepoStore, *, add: Sequence[PublicKey], remove: Sequence[PublicKey], threshold: int | None,
               keys: Sequence[SigningKey] = (), staged: Path | None = None) -> CeremonyStatus:
    """Write the next root version with the root role's keys changed, signed by ``keys`` (possibly none)."""
    path = staged_path(store, staged)
    if path.exists():
        raise UserError(f"{path}: a staged root already exists",
                        hint="sign it with 'vcomp repo sign-root', or delete it to start again")
    md = changed_root(store, "root", add=add, remove=remove, threshold=threshold)
    return _sign_and_save(store, md, keys, path, publish=False)


@locked
def sign_root(store: RepoStore, *, keys: Sequence[SigningKey] = (), merge: Sequence[Path] = (),
              staged: Path | None = None, publish: bool = True) -> CeremonyStatus:
    """Add signatures (``keys``, and those of the copies in ``merge``) to the staged root; publish it when
    both thresholds are met (unless ``publish`` is false)."""
    path = staged_path(store, staged)
    md = _load(path)
    current = store.root().signed
    if md.signed.version != current.version + 1:
        raise UserError(f"{path}: stale: it stages root v{md.signed.version} but the repository is at "
                        f"root v{current.version}", hint="delete it and stage the change again")
    allowed = {**_root_keys(current), **_root_keys(md.signed)}
    for copy in merge:
        other = _load(copy)
        if other.signed.to_dict() != md.signed.to_dict():
            raise UserError(f"{copy}: a different staged root than {path}",
                            hint="merge only copies of the same staged file")
        for keyid, sig in other.signatures.items():
            if keyid in allowed and _verifies(allowed[keyid], md, sig):
                md.signatures[keyid] = sig
            else:
                raise VerificationError(f"{copy}: the signature by {keyid[:16]} is not a valid root signature",
                                        hint="the copy was modified, or signed with a key that is not a root key")
    for key in keys:
        if key.keyid not in allowed:
            raise UserError(f"key {key.keyid[:16]} is not a root key of root v{current.version} or "
                            f"v{md.signed.version}", hint="sign with your root private key (.key)")
    return _sign_and_save(store, md, keys, path, publish=publish)


def _sign_and_save(store: RepoStore, md: Metadata[Root], keys: Sequence[SigningKey], path: Path, *,
                   publish: bool) -> CeremonyStatus:
    for key in keys:
        md.sign(key.tuf_signer(), append=True)
    current = store.root().signed
    data = md.to_bytes(SERIALIZER)
    old = current.get_verification_result("root", md.signed_bytes, md.signatures)
    new = md.signed.get_verification_result("root", md.signed_bytes, md.signatures)
    status = CeremonyStatus(version=md.signed.version, old_signed=len(old.signed), old_threshold=old.threshold,
                            new_signed=len(new.signed), new_threshold=new.threshold, published=False, staged=path)
    if status.complete and publish:
        store.publisher.put_metadata(f"{md.signed.version}.root.json", data)
        store.publisher.put_metadata("root.json", data)
        publish_unlocked(RepoStore(store.dir, publisher=store.publisher))
        path.unlink(missing_ok=True)
        return dataclasses.replace(status, published=True)
    atomic_write(path, data)
    return status


def _root_keys(root: Root) -> dict[str, Key]:
    return {k: root.keys[k] for k in root.roles["root"].keyids}


def _verifies(key: Key, md: Metadata[Root], signature: Signature) -> bool:
    try:
        key.verify_signature(signature, md.signed_bytes)
    except Exception:  # securesystemslib raises UnverifiedSignatureError and VerificationError
        return False
    return True


def _load(path: Path) -> Metadata[Root]:
    try:
        md: Metadata[Any] = Metadata.from_bytes(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"{path}: no staged root",
                        hint="stage one with: vcomp repo rotate DIR --role root ... --stage") from None
    except Exception as exc:  # python-tuf raises several deserialization errors
        raise VerificationError(f"{path}: not a staged root ({exc})", hint="pass the staged-root.json file") \
            from None
    if not isinstance(md.signed, Root):
        raise VerificationError(f"{path}: expected root metadata, found {md.signed.type}")
    return md
