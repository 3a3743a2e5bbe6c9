"""The record of the developer roles a repository vendors from upstream repositories (``REPO/vendored.json``).

A vendored role is an upstream developer's delegated targets metadata copied verbatim (``N.ROLE.json``, signed by
the upstream developer), delegated by this repository's offline top-level targets to the upstream keys for the
names recorded here (see composer/repo/vendor.py and docs/upstream.md). The record is not served (it is beside
repo.toml and the state (state.db)): it tells the writers of this repository which roles are not its own developers':

* ``repair`` (repo/guard.py) indexes only the targets of a vendored role that are stored (the upstream role
  lists every package of its developer; this repository holds the ones that were vendored);
* ``repo delegate`` refuses to give one of your developers a vendored role's name or one of its package names
  (and ``repo vendor`` refuses a name one of your developers owns): the authority over a name stays with one key.

    {"format": 1, "roles": {"alice": {"upstream": "https://...", "root": "<sha256 of the pinned upstream root>",
                                      "names": ["hello", "libfoo"]}}}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer import limits
from composer.errors import UserError
from composer.fsutil import atomic_write, canonical_json

RECORD = "vendored.json"
FORMAT = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class VendoredRole:
    """One vendored upstream role: where it comes from and the package names this repository delegates to it."""

    upstream: str            # the URL it was vendored from (as normalised by the client)
    root: str                # sha256 of the pinned upstream root.json: the trust it was verified through
    names: tuple[str, ...]   # sorted: the vendored package names and the names they provide

    def to_dict(self) -> dict[str, Any]:
        return {"upstream": self.upstream, "root": self.root, "names": list(self.names)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VendoredRole:
        names = d["names"]
        if not isinstance(d["upstream"], str) or not isinstance(d["root"], str) or not isinstance(names, list) \
                or not all(isinstance(n, str) for n in names):
            raise TypeError("'upstream' and 'root' must be strings, 'names' a list of strings")
        return cls(upstream=d["upstream"], root=d["root"], names=tuple(sorted(names)))


def read_vendored(directory: Path) -> dict[str, VendoredRole]:
    """role name -> its record (none: the repository vendors nothing)."""
    path = directory / RECORD
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        doc = limits.load_json(data, str(path))
        if doc.get("format") != FORMAT:
            raise TypeError(f"format {doc.get('format')!r}, expected {FORMAT}")
        return {str(name): VendoredRole.from_dict(r) for name, r in dict(doc["roles"]).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise UserError(f"{path}: not a valid record of vendored roles ({what})",
                        hint="it is written by 'vcomp repo vendor': restore it from a backup, or run the vendor "
                             "command of each upstream again") from None


def write_vendored(directory: Path, roles: Mapping[str, VendoredRole]) -> None:
    doc = {"format": FORMAT, "roles": {name: roles[name].to_dict() for name in sorted(roles)}}
    atomic_write(directory / RECORD, canonical_json(doc) + b"\n")
