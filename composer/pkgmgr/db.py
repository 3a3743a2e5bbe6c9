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

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.errors import UserError
from composer.fsutil import atomic_write, canonical_json

DB_DIR = Path("var/lib/vpk")
DB_FORMAT = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Database:
    packages: Mapping[str, Mapping[str, Any]]
    history: Sequence[Mapping[str, Any]]
    transaction: int
    repositories: Sequence[Mapping[str, Any]] = ()


def db_dir(root: Path) -> Path:
    return root / DB_DIR


def load(root: Path) -> Database:
    path = db_dir(root) / "db.json"
    if not path.is_file():
        raise UserError(f"{root} is not a root managed by vcomp (no {DB_DIR}/db.json)",
                        hint="give the root of an image built by vcomp build (its rootfs output, extracted)")
    try:
        doc = json.loads(path.read_bytes())
        fmt = int(doc.get("format", 0))
    except (ValueError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: corrupt package database ({exc})") from None
    if fmt > DB_FORMAT:
        raise UserError(f"{path}: database format {fmt} is newer than this vcomp understands ({DB_FORMAT})",
                        hint="upgrade vcomp; it never rewrites a database it does not understand")
    history = _json(db_dir(root) / "history.json", [])
    repos = _json(db_dir(root) / "repositories.json", [])
    n = int(doc.get("transaction", 0))
    return Database(packages=doc["packages"], history=[h for h in history if int(h["id"]) <= n], transaction=n,
                    repositories=repos)


def _json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return default
    except ValueError as exc:
        raise UserError(f"{path}: corrupt ({exc})") from None


def save(root: Path, packages: Mapping[str, Mapping[str, Any]], history: Sequence[Mapping[str, Any]],
         transaction: int, between: Callable[[], None] = lambda: None) -> None:
    """History first, then db.json: the rename of db.json commits the transaction."""
    d = db_dir(root)
    d.mkdir(parents=True, exist_ok=True)
    atomic_write(d / "history.json", json.dumps(list(history), indent=1, sort_keys=True).encode() + b"\n")
    between()
    doc = {"format": DB_FORMAT, "transaction": transaction, "packages": dict(sorted(packages.items()))}
    atomic_write(d / "db.json", canonical_json(doc) + b"\n")


def save_repositories(root: Path, repositories: Sequence[Mapping[str, Any]]) -> None:
    atomic_write(db_dir(root) / "repositories.json",
                 json.dumps(list(repositories), indent=1, sort_keys=True).encode() + b"\n")
