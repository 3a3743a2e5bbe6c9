"""The per-architecture package index: what resolution needs, canonical JSON, zstd-compressed.

It is a TUF target of the top-level targets role, so trust flows
root -> timestamp -> snapshot -> targets -> index -> package (sha256 in each entry).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import zstandard

from composer import limits
from composer.errors import VerificationError
from composer.fsutil import canonical_json
from composer.package.archive import Header
from composer.package.linkcheck import checked_elf
from composer.package.metadata import Metadata, thaw
from composer.version import FullVersion, OrderKey, package_version

INDEX_FORMAT = 2  # 2: entries carry epoch, revision, the original version and its scheme, relations, the base set
READABLE_FORMATS = frozenset({1, 2})  # a format-1 entry reads with the defaults of the new fields
INDEX_LEVEL = 16  # 19 was ~80 % of publish time for ~5 % smaller indexes
LARGE_INDEX_LEVEL = 9   # above LARGE_INDEX_BYTES of JSON: 53 MiB (a Debian suite) 1.1 s for 3.6 MiB, 16 took 15.6 s
LARGE_INDEX_BYTES = 16 << 20
MAX_INDEX_BYTES = 512 << 20  # decompressed


def close_names(name: str, names: Iterable[str]) -> list[str]:
    """Names close to ``name`` (for 'did you mean' hints)."""
    import difflib
    return difflib.get_close_matches(name, sorted(set(names)), n=3, cutoff=0.6)


def package_target_path(name: str, version: str, arch: str) -> str:
    """Where a package lives in the repository; ``version`` is its text form (an epoch's ':' is written
    '%3a', as Debian's pool names .debs, so the path is one URL segment on every file system)."""
    return f"packages/{name}/{name}-{version.replace(':', '%3a')}-{arch}.vpk"


def index_target_path(arch: str) -> str:
    return f"index/{arch}.json.zst"


BEHIND = "behind"   # the whole index target's custom field: names changed since it was built (signed)


def behind_custom(count: int) -> dict[str, Any]:
    """The target's ``custom`` of a whole index ``count`` changed names behind the sparse files (none: current)."""
    return {BEHIND: count} if count else {}


def whole_behind(custom: object) -> int:
    """Names changed since the whole index was built, from its target's ``custom`` (signed by the index role):
    0 when it says nothing; a malformed value counts as behind (the sparse files are then read: always current)."""
    if not isinstance(custom, Mapping) or BEHIND not in custom:
        return 0
    value = custom[BEHIND]
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 1


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
    # format 2 (issue 14): see docs/vpk-format.md; the defaults are a format-1 entry's values
    epoch: int = 0
    revision: str = ""
    upstream_version: str = ""      # the original version of an imported package (version_scheme says how)
    version_scheme: str = "semver"
    essential: bool = False
    priority: str = ""
    multi_arch: str = ""
    relations: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    # issue 19: the package's [elf] table (soname provides, NEEDED lists), or derived by 'repo add' from the
    # payload of a package built before; empty: unknown (docs/elf-checks.md)
    elf: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_header(cls, header: Header, *, size: int, sha256: str) -> IndexEntry:
        return cls.from_metadata(header.metadata, size=size, installed_size=header.manifest.installed_size,
                                 sha256=sha256)

    @classmethod
    def from_metadata(cls, m: Metadata, *, size: int, installed_size: int, sha256: str) -> IndexEntry:
        """The entry of a package with metadata ``m`` (also for in-memory indexes of imported metadata)."""
        d = m.to_dict()
        text = str(m.full_version)
        return cls(name=m.name, version=m.version, arch=m.arch, type=m.type, description=m.description,
                   license=m.license, dependencies=d.get("dependencies", {}), provides=m.provides,
                   conflicts=m.conflicts, features=d.get("features", {}), capabilities=d.get("capabilities", {}),
                   driver=d.get("driver", {}), size=size, installed_size=installed_size,
                   sha256=sha256, path=package_target_path(m.name, text, m.arch), signer=m.security.signer,
                   epoch=m.epoch, revision=m.revision, upstream_version=m.upstream_version,
                   version_scheme=m.version_scheme, essential=m.essential, priority=m.priority,
                   multi_arch=m.multi_arch, relations=m.relations, elf=m.elf)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "arch": self.arch, "type": self.type,
                "description": self.description, "license": self.license,
                "dependencies": dict(self.dependencies), "provides": list(self.provides),
                "conflicts": list(self.conflicts), "features": dict(self.features),
                "capabilities": dict(self.capabilities), "driver": dict(self.driver), "size": self.size,
                "installed_size": self.installed_size, "sha256": self.sha256, "path": self.path,
                "signer": self.signer, "epoch": self.epoch, "revision": self.revision,
                "upstream_version": self.upstream_version, "version_scheme": self.version_scheme,
                "essential": self.essential, "priority": self.priority, "multi_arch": self.multi_arch,
                "relations": {k: list(v) for k, v in sorted(self.relations.items())},
                **({"elf": thaw(self.elf)} if self.elf else {})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IndexEntry:
        return cls(name=d["name"], version=d["version"], arch=d["arch"], type=d["type"],
                   description=d["description"], license=d["license"], dependencies=d["dependencies"],
                   provides=tuple(d["provides"]), conflicts=tuple(d["conflicts"]), features=d["features"],
                   capabilities=d["capabilities"], driver=d["driver"], size=int(d["size"]),
                   installed_size=int(d["installed_size"]), sha256=d["sha256"], path=d["path"],
                   signer=d["signer"], epoch=int(d.get("epoch", 0)), revision=str(d.get("revision", "")),
                   upstream_version=str(d.get("upstream_version", "")),
                   version_scheme=str(d.get("version_scheme", "semver")), essential=bool(d.get("essential", False)),
                   priority=str(d.get("priority", "")), multi_arch=str(d.get("multi_arch", "")),
                   relations=MappingProxyType({str(k): tuple(str(c) for c in v)
                                               for k, v in dict(d.get("relations", {})).items()}),
                   elf=MappingProxyType(checked_elf(d.get("elf", {}))))

    @property
    def full_version(self) -> FullVersion:
        """(epoch, upstream, revision) in the entry's scheme: the order of its versions."""
        return package_version(version=self.version, epoch=self.epoch, revision=self.revision,
                               upstream_version=self.upstream_version, scheme=self.version_scheme)

    @property
    def version_text(self) -> str:
        """The version as people and locks write it: ``1:2.36-9+deb12u7`` (deb), ``1:1.2.3-r4`` (native)."""
        if self.version_scheme == "deb":
            return self.upstream_version
        if not (self.epoch or self.revision):
            return self.version
        return str(self.full_version)

    def order_key(self) -> tuple[str, OrderKey]:
        """Sort key among the versions of one name: the scheme, then the full order."""
        return (self.version_scheme, self.full_version.order_key())

    @property
    def nva(self) -> str:
        return f"{self.name}-{self.version_text}-{self.arch}"


_CLAUSE_NAME = re.compile(r"\s*([a-z0-9][a-z0-9.+-]*)")
DEP_RELATIONS = ("requires", "pre-requires")   # the relations whose names a package needs installed


def dependency_names(dependencies: Iterable[str], relations: Mapping[str, Iterable[str]]) -> list[str]:
    """The names a package depends on: its dependencies' names and every alternative of its requires."""
    names = list(dependencies)
    for kind in DEP_RELATIONS:
        for clause in relations.get(kind, ()):
            for alt in str(clause).split("|"):
                m = _CLAUSE_NAME.match(alt)
                if m:
                    names.append(m.group(1))
    return names


def _order(e: IndexEntry) -> tuple[str, tuple[str, OrderKey], str]:
    return (e.name, e.order_key(), e.arch)


def in_index_order(entries: Iterable[IndexEntry]) -> list[IndexEntry]:
    """``entries`` sorted as an index lists them (name, version order, arch): the version is parsed only for
    names with more than one entry (most names have one: parsing every version was a fifth of a publish)."""
    named: dict[str, list[IndexEntry]] = {}
    for e in entries:
        named.setdefault(e.name, []).append(e)
    out: list[IndexEntry] = []
    for name in sorted(named):
        group = named[name]
        out.extend(sorted(group, key=_order) if len(group) > 1 else group)
    return out


def build_index(arch: str, entries: Iterable[IndexEntry]) -> bytes:
    """Canonical, compressed index bytes for ``arch`` (noarch packages included in every index)."""
    chosen = in_index_order(e for e in entries if e.arch in (arch, "noarch"))
    raw = canonical_json({"format": INDEX_FORMAT, "arch": arch, "packages": [e.to_dict() for e in chosen]})
    return zstandard.ZstdCompressor(level=index_level(len(raw)), write_checksum=True).compress(raw)


def index_level(size: int) -> int:
    """The zstd level for an index of ``size`` bytes of JSON: 16, or 9 above 16 MiB (design14 §4.4)."""
    return LARGE_INDEX_LEVEL if size > LARGE_INDEX_BYTES else INDEX_LEVEL


def index_documents(data: bytes, origin: str) -> list[dict[str, Any]]:
    """The package dicts of an index (decompressed, format checked, every entry an object with the fields)."""
    return decode_index(data, origin)[1]


def decode_index(data: bytes, origin: str) -> tuple[bytes, list[dict[str, Any]]]:
    """The decompressed JSON of an index and its checked package dicts."""
    try:
        declared = zstandard.frame_content_size(data)
    except zstandard.ZstdError as exc:
        raise VerificationError(f"{origin}: malformed index ({exc})") from None
    if declared > MAX_INDEX_BYTES:
        raise limits.PackageLimitExceeded(
            f"{origin}: the index decompresses to {declared} bytes, more than the {MAX_INDEX_BYTES} a client reads",
            hint="at this size read the repository's sparse index (VCOMP_INDEX=auto or sparse: docs/repo-sparse.md)")
    try:
        raw = limits.unzstd(data, MAX_INDEX_BYTES)
        doc = limits.load_json(raw, origin, error=limits.PackageLimitExceeded)
    except (zstandard.ZstdError, ValueError) as exc:
        raise VerificationError(f"{origin}: malformed index ({exc})") from None
    fmt = doc.get("format") if isinstance(doc, dict) else None
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt not in READABLE_FORMATS:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise VerificationError(f"{origin}: index format {found} is not supported", hint="upgrade vcomp")
    packages = doc.get("packages")
    if not isinstance(packages, list):
        raise VerificationError(f"{origin}: malformed index (no 'packages' list)")
    for i, e in enumerate(packages):
        if not isinstance(e, dict) or not _FIELDS.issubset(e):
            missing = sorted(_FIELDS - set(e)) if isinstance(e, dict) else ["(not an object)"]
            raise VerificationError(f"{origin}: malformed index: packages[{i}] lacks {', '.join(missing)}")
        if "elf" in e:
            try:
                checked_elf(e["elf"])
            except ValueError as exc:
                raise VerificationError(f"{origin}: malformed index: packages[{i}]: {exc}") from None
    return raw, packages


_FIELDS = frozenset(IndexEntry.__slots__) - {"epoch", "revision", "upstream_version", "version_scheme", "essential",
                                             "priority", "multi_arch", "relations",   # absent in format 1
                                             "elf"}   # optional (issue 19): absent when unknown


def parse_index(data: bytes, origin: str) -> list[IndexEntry]:
    docs = index_documents(data, origin)
    try:
        return [IndexEntry.from_dict(e) for e in docs]
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"{origin}: malformed index ({exc})") from None
