"""The file manifest of a package: every payload member with its type, mode, size, hash and role."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from composer import limits as limits_mod
from composer.errors import InvalidPackage, UnsafeArchive
from composer.fsutil import canonical_json
from composer.limits import Limits, PackageLimitExceeded, exceeded
from composer.reserved import RESERVED_HINT
from composer.rootfs.paths import reserved_problem

MANIFEST_FORMAT = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
TYPES = ("file", "dir", "symlink", "hardlink", "chardev", "blockdev", "fifo")
ROLES = ("binary", "config", "doc", "asset")


def check_relpath(path: str) -> str | None:
    """Why ``path`` is not a clean relative POSIX path, or None when it is."""
    if not path or path.startswith("/"):
        return "is absolute or empty"
    if "\\" in path or "\x00" in path:
        return "contains a backslash or NUL"
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "has an empty, '.' or '..' component"
    if posixpath.normpath(path) != path:
        return "is not normalised"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    path: str
    type: str
    mode: int
    size: int = 0
    sha256: str = ""
    target: str = ""
    role: str = "asset"
    device: tuple[int, int] = (0, 0)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "type": self.type, "mode": f"{self.mode:04o}"}
        if self.type == "file":
            out.update(size=self.size, sha256=self.sha256, role=self.role)
        if self.type in ("symlink", "hardlink"):
            out["target"] = self.target
        if self.type in ("chardev", "blockdev"):
            out["device"] = list(self.device)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> Entry:
        try:
            path, typ, mode = str(d["path"]), str(d["type"]), int(str(d["mode"]), 8)
            size, sha, dev = d.get("size", 0), str(d.get("sha256", "")), d.get("device", [0, 0])
            device = (int(dev[0]), int(dev[1]))
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
            raise InvalidPackage(f"{where}: malformed entry ({exc})") from None
        why = check_relpath(path)
        if why:
            raise InvalidPackage(f"{where}: path '{path}' {why}")
        if typ not in TYPES:
            raise InvalidPackage(f"{where}: '{path}' has unknown type '{typ}'")
        if not 0 <= mode <= 0o7777:
            raise InvalidPackage(f"{where}: '{path}' has invalid mode {mode:o}")
        role = str(d.get("role", "asset"))
        if role not in ROLES:
            raise InvalidPackage(f"{where}: '{path}' has unknown role '{role}'")
        if typ == "file" and (type(size) is not int or size < 0 or not _HEX64.fullmatch(sha)):
            raise InvalidPackage(f"{where}: file '{path}' needs a size and a sha256")
        return cls(path=path, type=typ, mode=mode, size=int(size), sha256=sha, target=str(d.get("target", "")),
                   role=role, device=device)


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    entries: tuple[Entry, ...]
    payload_sha256: str
    payload_size: int
    compression: str = "zstd"

    @property
    def installed_size(self) -> int:
        return sum(e.size for e in self.entries)

    def to_bytes(self) -> bytes:
        return canonical_json({
            "format": MANIFEST_FORMAT,
            "payload": {"sha256": self.payload_sha256, "size": self.payload_size,
                        "compression": self.compression},
            "files": [e.to_dict() for e in self.entries],
        })

    @classmethod
    def from_bytes(cls, data: bytes, origin: str = "manifest.json", limits: Limits | None = None) -> Manifest:
        """Parse and check a manifest, including the limits on members, file size and total size."""
        limits = limits or limits_mod.current()
        try:
            raw = limits_mod.load_json(data, origin, limits, error=PackageLimitExceeded)
            fmt = raw["format"]
            payload = raw["payload"]
            files = raw["files"]
            if not isinstance(files, list):
                raise TypeError("$.files is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidPackage(f"{origin}: not a manifest ({exc})") from None
        if type(fmt) is not int or fmt != MANIFEST_FORMAT:
            raise InvalidPackage(f"{origin}: manifest format {str(fmt)[:32]} is not supported (this composer "
                                 f"reads {MANIFEST_FORMAT})", hint="upgrade vcomp")
        if len(files) > limits.max_members:
            raise exceeded(limits, "max_members", origin, f"{len(files)} members", PackageLimitExceeded)
        entries = tuple(Entry.from_dict(f, f"{origin}: $.files[{i}]") for i, f in enumerate(files))
        check_sizes(entries, origin, limits)
        paths = [e.path for e in entries]
        if paths != sorted(paths) or len(set(paths)) != len(paths):
            raise InvalidPackage(f"{origin}: files are not sorted by path or contain duplicates")
        try:
            compression, sha, size = payload["compression"], str(payload["sha256"]), payload["size"]
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidPackage(f"{origin}: $.payload is malformed ({exc!r})") from None
        if compression != "zstd":
            raise InvalidPackage(f"{origin}: unsupported payload compression {compression!r}")
        if not _HEX64.fullmatch(sha) or type(size) is not int or size < 0:
            raise InvalidPackage(f"{origin}: $.payload needs a sha256 and a size")
        return cls(entries=entries, payload_sha256=sha, payload_size=size)


def check_sizes(entries: Sequence[Entry], origin: str, limits: Limits) -> None:
    """Refuse a file larger than ``max_file_bytes`` or a package larger than ``max_installed_bytes``."""
    for e in entries:
        if e.size > limits.max_file_bytes:
            raise exceeded(limits, "max_file_bytes", origin, f"'{e.path}' declares {e.size} bytes",
                           PackageLimitExceeded)
    total = sum(e.size for e in entries)
    if total > limits.max_installed_bytes:
        raise exceeded(limits, "max_installed_bytes", origin, f"the files declare {total} bytes in all",
                       PackageLimitExceeded)


def reserved_reason(entry: Entry) -> str | None:
    """Why a package may not ship ``entry`` (a path vcomp owns in a root), or None: the one rule the
    extractor applies too (composer.rootfs.paths.reserved_problem)."""
    return reserved_problem(entry.path, entry.type)


def reserved_errors(entries: Sequence[Entry], package: str, origin: str) -> list[InvalidPackage]:
    """One error per entry that is, or is in, a path vcomp owns in a root (see composer.reserved)."""
    out: list[InvalidPackage] = []
    reported: list[str] = []
    for e in entries:  # sorted by path: a reserved directory comes before what it holds
        why = reserved_reason(e)
        if why and not any(e.path.startswith(r + "/") for r in reported):
            reported.append(e.path)
            out.append(UnsafeArchive(f"{origin}: package '{package}' ships '{e.path}': it {why}", hint=RESERVED_HINT))
    return out
