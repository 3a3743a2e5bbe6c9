"""The sparse index (Cargo's sparse protocol, in TUF): one small signed file per name, beside the whole index.

``index/sparse/ARCH/PP/NAME.json`` holds every entry called NAME for ARCH (and noarch), in the whole index's
order, and ``providers``: the names of the packages whose ``provides`` list NAME. A virtual name (one only
provided, e.g. ``driver:virtio-net``) has a file too, with no entries. So one lookup answers "what satisfies
NAME" without a global provides map: a change of a package touches its own file and the files of the names it
provides, nothing else. ``index/sparse/ARCH/base.json`` lists the base set's names (``essential`` and
``priority: required``), what a profile's ``base`` asks for before any name is known.

Every file is a TUF target of the online ``index`` role (hashes and lengths in its signed metadata), so a
client verifies each file it reads and caches it by sha256: only the names whose files changed are fetched
again. PP is the first two characters of the encoded name, each not a letter or digit written ``_`` (and
``_``-padded: ``a`` -> ``a_``, ``..`` -> ``__``). Names are encoded so that a file
name is one safe path segment on every file system: ``[a-z0-9._+-]`` stay, every other byte is ``%XX``
(uppercase, ``:``, ``/``, ``..`` cannot escape the directory: ``.`` alone stays a file name, never a segment).
This module is pure: bytes in, bytes out (see docs/repo-sparse.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from composer import limits
from composer.errors import UserError, VerificationError
from composer.fsutil import canonical_json
from composer.repo.hashbins import FILES_PER_BIN, MAX_BIN_BITS  # noqa: F401 (re-exported: bench/sparse.py)
from composer.repo.index import IndexEntry, in_index_order

SPARSE_FORMAT = 1
SPARSE_ROOT = "index/sparse"
SPARSE_PATHS = ("index/sparse/*/*", "index/sparse/*/*/*")   # base.json, PP/NAME.json (python-tuf: per segment)
SPARSE_BIN_PREFIX = "index-sparse"   # the hash bins (TAP 15 succinct roles) the index role delegates them to
MAX_NAME = 200           # characters of a name a sparse path is made for
MAX_PROVIDERS = 100_000  # names in one file's providers list
AUTO_SPARSE_BYTES = 2 << 20
"""auto: the sparse index only when the whole indexes of an architecture are at least this long (compressed).
Below, the whole index costs fewer bytes than a lock's hash bins and files (docs/repo-sparse.md, measured).
A publish rebuilds a whole index this small every time (composer/repo/incremental.py)."""
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._+-")


def encode_name(name: str) -> str:
    """The file-name form of ``name`` (see the module docstring); refuse an empty or overlong name."""
    if not name or len(name) > MAX_NAME:
        raise UserError(f"sparse index: a name of {len(name)} characters has no sparse file",
                        hint=f"package and provided names are 1 to {MAX_NAME} characters")
    out = "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in name)
    return out if out not in (".", "..") else out.replace(".", "%2E")


def sparse_target_path(arch: str, name: str) -> str:
    """``index/sparse/ARCH/PP/NAME.json`` for ``name``."""
    enc = encode_name(name)
    prefix = "".join(c if c.isalnum() else "_" for c in enc[:2]).ljust(2, "_")   # never '.', '..' or '%'
    return f"{SPARSE_ROOT}/{arch}/{prefix}/{enc}.json"


def base_target_path(arch: str) -> str:
    return f"{SPARSE_ROOT}/{arch}/base.json"


def provided_name(text: str) -> str:
    """``NAME`` of a provide ``NAME`` or ``NAME = VERSION``."""
    return text.partition("=")[0].strip()


# ----------------------------------------------------------------- writing

def build_sparse(arch: str, entries: Iterable[IndexEntry]) -> dict[str, bytes]:
    """Every sparse file of ``arch`` (path -> canonical JSON bytes), base.json included."""
    chosen = [e for e in entries if e.arch in (arch, "noarch")]
    named: dict[str, list[IndexEntry]] = {}
    providers: dict[str, set[str]] = {}
    for e in chosen:
        named.setdefault(e.name, []).append(e)
        for p in e.provides:
            providers.setdefault(provided_name(p), set()).add(e.name)
    files: dict[str, bytes] = {}
    for name in sorted(named.keys() | providers.keys()):
        data = name_file(arch, name, named.get(name, []), providers.get(name, ()))
        if data is not None:
            files[sparse_target_path(arch, name)] = data
    files[base_target_path(arch)] = base_file(arch, {e.name for e in chosen if e.essential},
                                              {e.name for e in chosen if e.priority == "required"})
    return files


def name_file(arch: str, name: str, entries: Iterable[IndexEntry], providers: Iterable[str]) -> bytes | None:
    """The sparse file of ``name`` for ``arch``: ``entries`` (those called ``name``, of ``arch`` or noarch) in
    the whole index's order, and the names providing it; None when there is no such file (no entry and no
    provider, or a name no file is made for). The one writer of a name's file: a full and an incremental
    publish (composer/repo/incremental.py) make the same bytes."""
    if not name or len(name) > MAX_NAME:
        return None   # metadata validation refuses such names; a provide this long is never asked for
    packages = in_index_order(entries)
    listed = sorted(set(providers))
    if not packages and not listed:
        return None
    return canonical_json({"format": SPARSE_FORMAT, "arch": arch, "name": name,
                           "packages": [e.to_dict() for e in packages], "providers": listed})


def base_file(arch: str, essential: Iterable[str], required: Iterable[str]) -> bytes:
    """``base.json`` of ``arch``: the base set's names."""
    return canonical_json({"format": SPARSE_FORMAT, "arch": arch, "essential": sorted(set(essential)),
                           "required": sorted(set(required))})


def sparse_paths(arch: str, entries: Iterable[IndexEntry]) -> list[str]:
    """The paths of every sparse file of ``arch`` a repository with ``entries`` publishes (what a mirror copies)."""
    names = {n for e in entries if e.arch in (arch, "noarch") for n in (e.name, *map(provided_name, e.provides))}
    return [base_target_path(arch), *sorted(sparse_target_path(arch, n) for n in names if 0 < len(n) <= MAX_NAME)]


# ----------------------------------------------------------------- reading

@dataclass(frozen=True, slots=True, kw_only=True)
class SparseFile:
    """One verified, checked sparse file: the entries called ``name`` and the names providing it."""

    name: str
    packages: tuple[Mapping[str, Any], ...]
    providers: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SparseBase:
    essential: tuple[str, ...]
    required: tuple[str, ...]


def _load(data: bytes, origin: str, arch: str) -> dict[str, Any]:
    try:
        doc = limits.load_json(data, origin, error=limits.PackageLimitExceeded)
    except ValueError as exc:
        raise VerificationError(f"{origin}: malformed sparse index file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != SPARSE_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise VerificationError(f"{origin}: sparse index format {found} is not supported", hint="upgrade vcomp")
    if doc.get("arch") != arch:
        raise VerificationError(f"{origin}: a sparse file of {doc.get('arch')!r} served for {arch}",
                                hint="the repository is inconsistent: do not use it")
    return doc


def _names(value: object, origin: str, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_PROVIDERS or \
            not all(isinstance(n, str) and 0 < len(n) <= MAX_NAME for n in value):
        raise VerificationError(f"{origin}: malformed sparse index file ('{field}' is not a list of names)")
    return tuple(value)


def parse_sparse(data: bytes, origin: str, *, arch: str, name: str) -> SparseFile:
    """The checked content of the sparse file of ``name``: its entries must be called ``name`` and be of
    ``arch`` or noarch (a file cannot smuggle another name's packages)."""
    doc = _load(data, origin, arch)
    packages = doc.get("packages")
    if doc.get("name") != name or not isinstance(packages, list):
        raise VerificationError(f"{origin}: the sparse file of {name!r} is about {doc.get('name')!r}",
                                hint="the repository is inconsistent: do not use it")
    for i, d in enumerate(packages):
        try:
            e = IndexEntry.from_dict(d)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise VerificationError(f"{origin}: malformed sparse index file: packages[{i}] ({exc})") from None
        if e.name != name or e.arch not in (arch, "noarch"):
            raise VerificationError(f"{origin}: packages[{i}] is {e.name} for {e.arch}, not {name} for {arch}",
                                    hint="the repository is inconsistent: do not use it")
    return SparseFile(name=name, packages=tuple(packages), providers=_names(doc.get("providers"), origin,
                                                                             "providers"))


def parse_base(data: bytes, origin: str, *, arch: str) -> SparseBase:
    doc = _load(data, origin, arch)
    return SparseBase(essential=_names(doc.get("essential"), origin, "essential"),
                      required=_names(doc.get("required"), origin, "required"))
