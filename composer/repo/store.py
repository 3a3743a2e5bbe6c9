"""A repository directory: its configuration and its TUF metadata files (python-tuf Metadata API).

    DIR/repo.toml        configuration: online role key files, expiry, architectures, scanner
    DIR/state.json       index entries of every stored package (a cache; rebuilt from targets)
    DIR/metadata/        TUF metadata, consistent snapshots: N.root.json, N.targets.json, N.<role>.json,
                         N.snapshot.json, timestamp.json (+ root.json, the latest root, for pinning)
    DIR/targets/         content-addressed targets: packages/NAME/<sha256>.NAME-VERSION-ARCH.vpk,
                         index/<sha256>.ARCH.json.zst

Only metadata/ and targets/ are served. Root keys never appear in repo.toml: they stay offline.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from tuf.api.metadata import Metadata, Root, Signed, Snapshot, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from composer.errors import UserError, VerificationError
from composer.fsutil import atomic_write
from composer.trust.keys import SigningKey, load_signing_key

CONFIG = "repo.toml"
STATE = "state.json"
DEFAULT_EXPIRY_DAYS: Mapping[str, int] = {"root": 365, "targets": 90, "snapshot": 7, "timestamp": 1,
                                          "delegated": 90}
ONLINE_ROLES = ("targets", "snapshot", "timestamp")
SERIALIZER = JSONSerializer(compact=True)


def utcnow() -> dt.datetime:
    """Now, for expiry dates (VCOMP_REPO_NOW=ISO-8601 overrides it for tests and reproducible roots)."""
    raw = os.environ.get("VCOMP_REPO_NOW")
    if raw:
        return dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(dt.UTC)
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(slots=True, kw_only=True)
class RepoConfig:
    keys: dict[str, list[str]]
    expiry_days: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_EXPIRY_DAYS))
    architectures: list[str] = field(default_factory=lambda: ["x86_64", "aarch64"])
    scanner: list[str] = field(default_factory=list)

    def to_toml(self) -> bytes:
        doc: dict[str, Any] = {"architectures": self.architectures, "keys": self.keys,
                               "expiry-days": self.expiry_days}
        if self.scanner:
            doc["scanner"] = {"command": self.scanner}
        return tomli_w.dumps(doc).encode()

    @classmethod
    def from_toml(cls, data: bytes, origin: str) -> RepoConfig:
        try:
            raw = tomllib.loads(data.decode())
            keys = {role: [str(p) for p in raw["keys"][role]] for role in ONLINE_ROLES}
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise UserError(f"{origin}: not a valid repository configuration ({exc})",
                            hint="repo.toml is written by 'vcomp repo init'") from None
        return cls(keys=keys, expiry_days={**DEFAULT_EXPIRY_DAYS, **raw.get("expiry-days", {})},
                   architectures=list(raw.get("architectures", ["x86_64", "aarch64"])),
                   scanner=list(raw.get("scanner", {}).get("command", [])))


class RepoStore:
    """Read and write one repository directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.metadata_dir = directory / "metadata"
        self.targets_dir = directory / "targets"
        config = directory / CONFIG
        if not config.is_file() or not (self.metadata_dir / "timestamp.json").is_file():
            raise UserError(f"{directory} is not a repository (no {CONFIG} or metadata/timestamp.json)",
                            hint="create one with: vcomp repo init DIR --root-key ... ")
        self.config = RepoConfig.from_toml(config.read_bytes(), str(config))

    # ---- keys
    def online_keys(self, role: str) -> list[SigningKey]:
        keys = []
        for p in self.config.keys[role]:
            path = Path(p) if Path(p).is_absolute() else self.dir / p
            keys.append(load_signing_key(path))
        return keys

    # ---- metadata files
    def load(self, role: str, cls: type[Signed], version: int | None = None) -> Metadata[Any]:
        if role == "timestamp":
            path = self.metadata_dir / "timestamp.json"
        else:
            version = version if version is not None else self.current_version(role)
            path = self.metadata_dir / f"{version}.{role}.json"
        try:
            md: Metadata[Any] = Metadata.from_bytes(path.read_bytes())
        except FileNotFoundError:
            raise UserError(f"{path} is missing", hint="the repository is incomplete") from None
        except Exception as exc:  # python-tuf raises several deserialization errors
            raise VerificationError(f"{path}: unreadable metadata ({exc})") from None
        if not isinstance(md.signed, cls):
            raise VerificationError(f"{path}: expected {cls.type} metadata, found {md.signed.type}")
        return md

    def current_version(self, role: str) -> int:
        versions = [int(p.name.split(".", 1)[0]) for p in self.metadata_dir.glob(f"*.{role}.json")
                    if p.name.split(".", 1)[0].isdigit()]
        if not versions:
            raise UserError(f"{self.dir}: no metadata for role '{role}'", hint="publish the repository first")
        return max(versions)

    def has_role(self, role: str) -> bool:
        return any(self.metadata_dir.glob(f"*.{role}.json"))

    def root(self) -> Metadata[Root]:
        return self.load("root", Root)

    def sign_and_write(self, md: Metadata[Any], role: str, keys: Sequence[SigningKey]) -> bytes:
        return write_signed(self.metadata_dir, md, role, keys)

    # ---- state: index entries of stored packages
    def read_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads((self.dir / STATE).read_bytes())
            return state
        except FileNotFoundError:
            return {"packages": {}}

    def write_state(self, state: Mapping[str, Any]) -> None:
        atomic_write(self.dir / STATE, json.dumps(state, sort_keys=True, separators=(",", ":")).encode())


def write_signed(metadata_dir: Path, md: Metadata[Any], role: str, keys: Sequence[SigningKey]) -> bytes:
    """Sign ``md`` with ``keys`` and write it under its consistent-snapshot name; return the bytes."""
    md.signatures.clear()
    for key in keys:
        md.sign(key.tuf_signer(), append=True)
    data = md.to_bytes(SERIALIZER)
    if role == "timestamp":
        atomic_write(metadata_dir / "timestamp.json", data)
    else:
        atomic_write(metadata_dir / f"{md.signed.version}.{role}.json", data)
        if role == "root":
            atomic_write(metadata_dir / "root.json", data)
    return data


def expires(days: int) -> dt.datetime:
    return utcnow() + dt.timedelta(days=days)


def new_targets(days: int) -> Metadata[Targets]:
    return Metadata(Targets(version=1, expires=expires(days)))


def new_snapshot(days: int) -> Metadata[Snapshot]:
    return Metadata(Snapshot(version=1, expires=expires(days)))


def new_timestamp(days: int) -> Metadata[Timestamp]:
    return Metadata(Timestamp(version=1, expires=expires(days)))
