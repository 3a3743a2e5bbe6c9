"""The per-architecture package index: what resolution needs, canonical JSON, zstd-compressed.

It is a TUF target of the top-level targets role, so trust flows
root -> timestamp -> snapshot -> targets -> index -> package (sha256 in each entry).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import zstandard

from composer import limits
from composer.errors import VerificationError
from composer.fsutil import canonical_json
from composer.package.archive import Header
from composer.version import Version

INDEX_FORMAT = 1
INDEX_LEVEL = 16  # 19 was ~80 % of publish time for ~5 % smaller indexes
MAX_INDEX_BYTES = 512 << 20  # decompressed


def close_names(name: str, names: Iterable[str]) -> list[str]:
    """Names close to ``name`` (for 'did you mean' hints)."""
    import difflib
    return difflib.get_close_matches(name, sorted(set(names)), n=3, cutoff=0.6)


def package_target_path(name: str, version: str, arch: str) -> str:
    return f"packages/{name}/{name}-{version}-{arch}.vpk"


def index_target_path(arch: str) -> str:
    return f"index/{arch}.json.zst"


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexEntry:
    name: str
    version: str
    arch: str
    type: str
    description: str
    license: str
    dependencies: Mapping[str, Any]
    provides: tuple[str, ...]
    conflicts: tuple[str, ...]
    features: Mapping[str, Any]
    capabilities: Mapping[str, Any]
    driver: Mapping[str, Any]
    size: int
    installed_size: int
    sha256: str
    path: str
    signer: str

    @classmethod
    def from_header(cls, header: Header, *, size: int, sha256: str) -> IndexEntry:
        m = header.metadata
        d = m.to_dict()
        return cls(name=m.name, version=m.version, arch=m.arch, type=m.type, description=m.description,
                   license=m.license, dependencies=d.get("dependencies", {}), provides=m.provides,
                   conflicts=m.conflicts, features=d.get("features", {}), capabilities=d.get("capabilities", {}),
                   driver=d.get("driver", {}), size=size, installed_size=header.manifest.installed_size,
                   sha256=sha256, path=package_target_path(m.name, m.version, m.arch), signer=m.security.signer)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "arch": self.arch, "type": self.type,
                "description": self.description, "license": self.license,
                "dependencies": dict(self.dependencies), "provides": list(self.provides),
                "conflicts": list(self.conflicts), "features": dict(self.features),
                "capabilities": dict(self.capabilities), "driver": dict(self.driver), "size": self.size,
                "installed_size": self.installed_size, "sha256": self.sha256, "path": self.path,
                "signer": self.signer}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IndexEntry:
        return cls(name=d["name"], version=d["version"], arch=d["arch"], type=d["type"],
                   description=d["description"], license=d["license"], dependencies=d["dependencies"],
                   provides=tuple(d["provides"]), conflicts=tuple(d["conflicts"]), features=d["features"],
                   capabilities=d["capabilities"], driver=d["driver"], size=int(d["size"]),
                   installed_size=int(d["installed_size"]), sha256=d["sha256"], path=d["path"],
                   signer=d["signer"])

    @property
    def nva(self) -> str:
        return f"{self.name}-{self.version}-{self.arch}"


def _order(e: IndexEntry) -> tuple[str, Any, str]:
    return (e.name, Version.parse(e.version).precedence_key(), e.arch)


def build_index(arch: str, entries: Iterable[IndexEntry]) -> bytes:
    """Canonical, compressed index bytes for ``arch`` (noarch packages included in every index)."""
    chosen = sorted((e for e in entries if e.arch in (arch, "noarch")), key=_order)
    raw = canonical_json({"format": INDEX_FORMAT, "arch": arch, "packages": [e.to_dict() for e in chosen]})
    return zstandard.ZstdCompressor(level=INDEX_LEVEL, write_checksum=True).compress(raw)


def index_documents(data: bytes, origin: str) -> list[dict[str, Any]]:
    """The package dicts of an index (decompressed, format checked, every entry an object with the fields)."""
    return decode_index(data, origin)[1]


def decode_index(data: bytes, origin: str) -> tuple[bytes, list[dict[str, Any]]]:
    """The decompressed JSON of an index and its checked package dicts."""
    try:
        raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_INDEX_BYTES)
        doc = limits.load_json(raw, origin, error=limits.PackageLimitExceeded)
    except (zstandard.ZstdError, ValueError) as exc:
        raise VerificationError(f"{origin}: malformed index ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise VerificationError(f"{origin}: index format {found} is not supported", hint="upgrade vcomp")
    packages = doc.get("packages")
    if not isinstance(packages, list):
        raise VerificationError(f"{origin}: malformed index (no 'packages' list)")
    for i, e in enumerate(packages):
        if not isinstance(e, dict) or not _FIELDS.issubset(e):
            missing = sorted(_FIELDS - set(e)) if isinstance(e, dict) else ["(not an object)"]
            raise VerificationError(f"{origin}: malformed index: packages[{i}] lacks {', '.join(missing)}")
    return raw, packages


_FIELDS = frozenset(IndexEntry.__slots__)


def parse_index(data: bytes, origin: str) -> list[IndexEntry]:
    docs = index_documents(data, origin)
    try:
        return [IndexEntry.from_dict(e) for e in docs]
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"{origin}: malformed index ({exc})") from None
