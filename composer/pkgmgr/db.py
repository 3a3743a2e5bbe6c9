"""The package database of a root: ``/var/lib/vpk/``.

- ``db.json``: ``{"format": 1, "transaction": N, "packages": {name: record}}``, canonical JSON, replaced
  atomically: it is the commit point of every transaction;
- ``history.json``: the transactions (id, time, operation, packages and versions, cause); entries after
  ``db.json``'s ``transaction`` belong to a transaction that did not commit and are dropped on recovery;
- ``repositories.json``: the repositories the root was built from, with their pinned trust roots;
- ``journal.json``: present only while a transaction runs (see ``composer.pkgmgr.transaction``).

A record: name, version, arch, metadata, reason, manual, repository, signer, sha256, size,
capabilities, files (manifest entries with hashes), config (path -> original sha256).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.errors import UserError
from composer.fsutil import canonical_json
from composer.limits import LimitExceeded, current, load_json
from composer.pkgmgr import dbcheck
from composer.rootfs import Root

DB_DIR = Path("var/lib/vpk")
DB_REL = DB_DIR.as_posix()
DB_FORMAT = 1

RootLike = Path | Root


@dataclass(frozen=True, slots=True, kw_only=True)
class Database:
    packages: Mapping[str, Mapping[str, Any]]
    history: Sequence[Mapping[str, Any]]
    transaction: int
    repositories: Sequence[Mapping[str, Any]] = ()


def db_dir(root: Path) -> Path:
    return root / DB_DIR


@contextlib.contextmanager
def opened(root: RootLike) -> Iterator[Root]:
    """``root`` as a Root: opened here (and closed after) when given as a host path."""
    if isinstance(root, Root):
        yield root
        return
    with Root.open(root) as r:
        yield r


def read_document(root: Root, name: str, default: Any = None) -> tuple[Any, str]:
    """(parsed JSON of ``var/lib/vpk/NAME`` or ``default`` when absent, its name for messages)."""
    rel = f"{DB_REL}/{name}"
    origin = f"{root.shown}/{rel}"
    if not root.exists(rel):
        return default, origin
    try:
        return load_json(root.read_bytes(rel, current().max_document_bytes), origin), origin
    except LimitExceeded:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise dbcheck.DatabaseError(f"{origin}: corrupt ({exc})", hint=dbcheck.HINT) from None


def load(root: RootLike) -> Database:
    with opened(root) as r:
        return _load(r)


def _load(root: Root) -> Database:
    if not root.is_file(f"{DB_REL}/db.json"):
        raise UserError(f"{root.shown} is not a root managed by vcomp (no {DB_DIR}/db.json)",
                        hint="give the root of an image built by vcomp build (its rootfs output, extracted)")
    doc, origin = read_document(root, "db.json")
    fmt, n, packages = dbcheck.database(doc, origin)
    if fmt > DB_FORMAT:
        raise UserError(f"{origin}: database format {fmt} is newer than this vcomp understands ({DB_FORMAT})",
                        hint="upgrade vcomp; it never rewrites a database it does not understand")
    history = dbcheck.history(*read_document(root, "history.json", []))
    repos = dbcheck.repositories(*read_document(root, "repositories.json", []))
    return Database(packages=packages, history=[h for h in history if int(h["id"]) <= n], transaction=n,
                    repositories=repos)


@dataclass(frozen=True, slots=True, kw_only=True)
class Serialised:
    database: bytes
    history: bytes


def serialise(packages: Mapping[str, Mapping[str, Any]], history: Sequence[Mapping[str, Any]],
              transaction: int) -> Serialised:
    doc = {"format": DB_FORMAT, "transaction": transaction, "packages": dict(sorted(packages.items()))}
    return Serialised(database=canonical_json(doc) + b"\n",
                      history=json.dumps(list(history), indent=1, sort_keys=True).encode() + b"\n")


def save(root: RootLike, packages: Mapping[str, Mapping[str, Any]], history: Sequence[Mapping[str, Any]],
         transaction: int, between: Callable[[], None] = lambda: None) -> None:
    """History first, then db.json (each replaced atomically: readers never see half a file): the rename of
    db.json commits the transaction."""
    data = serialise(packages, history, transaction)
    with opened(root) as r:
        r.makedirs(DB_REL)
        r.write_bytes(f"{DB_REL}/history.json", data.history)
        between()
        r.write_bytes(f"{DB_REL}/db.json", data.database)


def save_repositories(root: RootLike, repositories: Sequence[Mapping[str, Any]]) -> None:
    with opened(root) as r:
        r.makedirs(DB_REL)
        r.write_bytes(f"{DB_REL}/repositories.json",
                      json.dumps(list(repositories), indent=1, sort_keys=True).encode() + b"\n")
