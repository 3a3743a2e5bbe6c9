"""The install engine: the locked packages of one architecture, fetched, verified and installed into a root.

Every package comes through the repository client (its hash from the TUF metadata must equal the
lock's), its signature is checked against its developer's delegated key, and it is extracted with
the safe extractor. No maintainer scripts run. File conflicts between packages are found before
anything is written. The package database goes to ``/var/lib/vpk/`` in the root:

``db.json`` (every package's record: metadata, reason, manual/auto, repository, signer, sha256, the
manifest with every path's type, mode and sha256, the config files with their original hashes) and
``history.json`` (here one transaction: ``install`` with the profile and lock digests); see
``composer.pkgmgr.db``.

Everything is sorted and timestamped with SOURCE_DATE_EPOCH, so the database is deterministic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.errors import UserError, VerificationError
from composer.package.archive import Header, read_header
from composer.package.extract import extract_package
from composer.pkgmgr import db
from composer.rootfs import Root
from composer.solve.lockmodel import Lock, LockedPackage
from composer.solve.sources import Sources
from composer.trust.keys import PublicKey


class FileConflictError(UserError):
    """Two packages of the lock ship the same path."""


class StaleLockError(UserError):
    """The lock names a package the repositories do not serve (or serve with another hash)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetched:
    """A locked package on disk, verified, with the key that must have signed it."""

    locked: LockedPackage
    path: Path
    key: PublicKey


def locked_packages(lock: Lock, arch: str) -> list[LockedPackage]:
    if arch not in lock.architectures:
        raise UserError(f"the lock has no packages for {arch}", hint="run: vcomp lock PROFILE")
    return sorted(lock.architectures[arch], key=lambda p: p.name)


def fetch_locked(sources: Sources, packages: Sequence[LockedPackage], arch: str) -> list[Fetched]:
    """Each locked package through its repository's verifying client."""
    index = sources.lookup(arch, [p.name for p in packages])
    out = []
    for p in packages:
        entry = next((e for e in (index.entry(s.id) for s in index.named(p.name))
                      if e.name == p.name and e.version_text == p.version and e.sha256 == p.sha256), None)
        if entry is None or p.repository not in sources.clients:
            raise StaleLockError(f"{arch}: {p.name} {p.version} (sha256 {p.sha256[:12]}) is not served by "
                                 f"repository '{p.repository}'", hint="the lock is stale: run vcomp lock PROFILE")
        client = sources.clients[p.repository]
        path = client.fetch(entry)
        if hashlib.sha256(path.read_bytes()).hexdigest() != p.sha256:  # the client checked TUF's hash already
            raise VerificationError(f"{p.name} {p.version}: the fetched package's sha256 differs from the lock")
        out.append(Fetched(locked=p, path=path, key=client.delegated_key(entry)))
    return out


def check_conflicts(headers: Mapping[str, Header]) -> None:
    """Refuse two packages that ship the same non-directory path (or a file where another has a directory)."""
    owner: dict[str, tuple[str, str]] = {}
    problems = []
    for name in sorted(headers):
        for e in headers[name].manifest.entries:
            path = e.path.strip("/")
            if path in owner:
                other, kind = owner[path]
                if e.type == "dir" and kind == "dir":
                    continue
                problems.append(f"{path}: shipped by both '{other}' and '{name}'")
            else:
                owner[path] = (name, e.type)
    if problems:
        raise FileConflictError("file conflicts between packages of the lock:\n    " + "\n    ".join(problems),
                                hint="drop one of the packages from the profile, or fix the packages")


def install(root: Path, fetched: Sequence[Fetched], *, profile_digest: str, lock_digest: str, epoch: int) -> None:
    """Extract every package into ``root`` (which must be empty or absent) and write the database.

    The root is opened once (``composer.rootfs.Root``) and every write goes through it; the database records
    the key each package's signature was verified with."""
    headers = {f.locked.name: read_header(f.path) for f in fetched}
    check_conflicts(headers)
    signers: dict[str, str] = {}
    with Root.open(root, create=True) as r:
        for f in fetched:
            result = extract_package(f.path, r, trusted=f.key)
            if result.metadata.name != f.locked.name or str(result.metadata.full_version) != f.locked.version:
                raise VerificationError(f"{f.path}: the package inside is {result.metadata.nva}, the lock says "
                                        f"{f.locked.name} {f.locked.version}")
            signers[f.locked.name] = result.signer.keyid
        write_database(r, fetched, headers, signers=signers, profile_digest=profile_digest, lock_digest=lock_digest,
                       epoch=epoch)


def package_record(f: Fetched, header: Header, *, signer: str) -> dict[str, Any]:
    """The database record of a package; ``signer`` is the key id extraction verified (not the lock's claim)."""
    m = header.metadata
    entries = [e.to_dict() for e in header.manifest.entries]
    config = {e.path: e.sha256 for e in header.manifest.entries if e.type == "file" and e.role == "config"}
    return {"name": m.name, "version": str(m.full_version), "arch": m.arch, "metadata": m.to_dict(),
            "reason": f.locked.reason.text, "manual": f.locked.reason.explicit,
            "repository": f.locked.repository, "signer": signer, "sha256": f.locked.sha256,
            "size": f.locked.size, "capabilities": list(f.locked.capabilities), "files": entries, "config": config}


def write_database(root: Path | Root, fetched: Sequence[Fetched], headers: Mapping[str, Header], *,
                   signers: Mapping[str, str], profile_digest: str, lock_digest: str, epoch: int) -> None:
    """``signers``: package name -> the key id its extraction verified."""
    packages = {f.locked.name: package_record(f, headers[f.locked.name], signer=signers[f.locked.name])
                for f in fetched}
    history = [{"id": 1, "time": epoch, "operation": "install", "cause": {"profile": profile_digest,
                                                                         "lock": lock_digest},
                "packages": [{"name": f.locked.name, "version": f.locked.version, "action": "install"}
                             for f in fetched]}]
    db.save(root, packages, history, 1)


def installed(root: Path) -> dict[str, dict[str, Any]]:
    """The package records of a root's database (name -> record)."""
    return {k: dict(v) for k, v in db.load(root).packages.items()}
