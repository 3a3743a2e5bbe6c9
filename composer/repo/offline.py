"""The last verified state of a repository, read from the client's cache without the network.

When the repository cannot be reached (or ``--offline`` forbids the network), a client answers from
what ngclient stored in its private cache during the last online session, checked again here:

* the root chain: from the pinned root, each ``root_history/N.root.json`` must be signed by a
  threshold of the previous root's keys and of its own (as python-tuf checks a rotation);
* ``targets.json`` must be signed by a threshold of the root's targets keys;
* each delegated role (``index.json``, a developer's ``NAME.json``) by a threshold of the keys the
  top-level targets metadata gives it, and only for the paths it is delegated.

What cannot be checked offline is freshness: expiry dates and the timestamp/snapshot versions are
not enforced (there is no newer timestamp to compare with). So offline use answers "what did this
repository sign the last time we looked", and never more than that; packages still go through the
same checks as online (the digest of the verified metadata or of the lock, the developer's
signature and the index entry against the signed header). See docs/reliability/repositories.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib import parse

from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, Root, TargetFile, Targets

from composer.errors import FetchError, VerificationError

MAX_ROOT_ROTATIONS = 256


class OfflineView:
    """Trusted metadata re-verified from the cache (signatures and delegations; not freshness)."""

    def __init__(self, metadata_dir: Path, pinned_root: bytes, origin: str) -> None:
        self.dir = metadata_dir
        self.origin = origin
        self.root = self._root_chain(pinned_root)
        self.targets: Metadata[Targets] = self._load("targets")
        self._verify(self.root, "targets", self.targets)
        self._roles: dict[str, Metadata[Targets]] = {}

    # ---- loading
    def _read(self, role: str) -> bytes:
        path = self.dir / f"{parse.quote(role, '')}.json"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise FetchError(f"{self.origin}: no cached '{role}' metadata to work offline with",
                             hint="run once online (without --offline) so the repository's metadata is cached")\
                from None
        except OSError as exc:
            raise FetchError(f"{path}: unreadable ({exc.strerror})", hint="check the cache directory") from None

    def _load(self, role: str) -> Metadata[Any]:
        try:
            return Metadata.from_bytes(self._read(role))
        except FetchError:
            raise
        except Exception as exc:  # python-tuf raises several deserialization errors
            raise VerificationError(f"{self.dir}/{role}.json: unreadable cached metadata ({exc})",
                                    hint="run once online to refresh the cache") from None

    def _verify(self, delegator: Metadata[Any], role: str, md: Metadata[Any]) -> None:
        try:
            delegator.verify_delegate(role, md)
        except UnsignedMetadataError as exc:
            raise VerificationError(f"{self.dir}: cached '{role}' metadata does not verify ({exc})",
                                    hint="run once online to refresh the cache") from None

    def _root_chain(self, pinned: bytes) -> Metadata[Root]:
        root: Metadata[Root] = Metadata.from_bytes(pinned)
        for version in range(root.signed.version + 1, root.signed.version + MAX_ROOT_ROTATIONS):
            path = self.dir / "root_history" / f"{version}.root.json"
            try:
                new: Metadata[Root] = Metadata.from_bytes(path.read_bytes())
            except FileNotFoundError:
                break
            except Exception as exc:
                raise VerificationError(f"{path}: unreadable cached root ({exc})",
                                        hint="run once online to refresh the cache") from None
            if not isinstance(new.signed, Root) or new.signed.version != version:
                raise VerificationError(f"{path}: not root version {version}", hint="run once online")
            self._verify(root, "root", new)
            self._verify(new, "root", new)
            root = new
        return root

    def role(self, name: str, delegator: Metadata[Targets] | None = None) -> Metadata[Targets]:
        if name not in self._roles:
            md: Metadata[Targets] = self._load(name)
            self._verify(self.targets if delegator is None else delegator, name, md)
            self._roles[name] = md
        return self._roles[name]

    def _in_bin(self, delegator: Metadata[Targets], path: str) -> TargetFile | None:
        """``path`` in the hash bin (TAP 15 succinct roles) ``delegator`` delegates it to (the sparse index)."""
        succinct = delegator.signed.delegations.succinct_roles if delegator.signed.delegations else None
        if succinct is None:
            return None
        return self.role(succinct.get_role_for_target(path), delegator).signed.targets.get(path)

    # ---- answers
    def get_targetinfo(self, path: str) -> TargetFile | None:
        """The target info of ``path`` from the delegated role that may list it (one level of delegation)."""
        delegations = self.targets.signed.delegations
        for role in (delegations.roles or {}).values() if delegations else []:
            if not role.is_delegated_path(path):
                continue
            try:
                md = self.role(role.name)
                info = md.signed.targets.get(path) or self._in_bin(md, path)
            except FetchError as exc:
                raise FetchError(f"{path} cannot be checked offline: {exc.message}", hint=exc.hint) from None
            if info is not None:
                return info
            if role.terminating:
                return None
        return self.targets.signed.targets.get(path)
