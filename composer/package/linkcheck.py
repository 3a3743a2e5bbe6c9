"""Link and ABI checks over packages' ELF summaries: pure functions over data, no I/O.

A package's link summary (:class:`LinkInfo`, the ``[elf]`` table of its metadata) lists the sonames it provides
(every shared object's ``DT_SONAME``, and the file name of a shared object without one) and the ``NEEDED`` sonames
of each ELF file. :func:`missing_needed` says which NEEDED sonames a set of packages (a dependency closure, a
lock's closure) leaves unprovided; :func:`abi_breaks` compares two versions of a library package's exported
dynamic symbols; :func:`rpath_problems` flags unsafe search paths. See docs/elf-checks.md.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from composer.package.elfinfo import ElfInfo

ELF_FORMAT = 1                  # the [elf] table's format (a package built before has no [elf] table)
MAX_NEEDED_FILES = 4096         # ELF files whose NEEDED lists the metadata keeps (beyond: derived from the payload)
SO_PREFIX = "so:"               # how a soname provide is written in messages and docs: so:libssl.so.3
ALLOWED_RPATH_PREFIXES = ("/usr/", "/lib", "/opt/")


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkInfo:
    """What a package provides to and needs from the dynamic linker."""

    sonames: tuple[str, ...] = ()
    needed: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": ELF_FORMAT}
        if self.sonames:
            out["sonames"] = list(self.sonames)
        if self.needed:
            out["needed"] = {k: list(v) for k, v in sorted(self.needed.items())}
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LinkInfo:
        return cls(sonames=tuple(d.get("sonames", ())),
                   needed=MappingProxyType({str(k): tuple(v) for k, v in dict(d.get("needed", {})).items()}))


def checked_elf(value: Any) -> dict[str, Any]:
    """An index entry's ``elf`` table with its types checked (ValueError otherwise): the index is read from the
    network, and the schema bounds only what a package's metadata holds."""
    if not isinstance(value, Mapping):
        raise ValueError("'elf' is not an object")
    sonames, needed = value.get("sonames", []), value.get("needed", {})
    if not isinstance(sonames, list) or not all(isinstance(x, str) for x in sonames):
        raise ValueError("'elf.sonames' is not a list of strings")
    if not isinstance(needed, Mapping) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
            for k, v in needed.items()):
        raise ValueError("'elf.needed' is not an object of string lists")
    return dict(value)


def link_info_of(elf: Mapping[str, Any]) -> LinkInfo | None:
    """The LinkInfo of a metadata's or index entry's ``elf`` table, None when absent (unknown)."""
    return LinkInfo.from_dict(elf) if elf else None


def provided_names(info: ElfInfo) -> list[str]:
    """The names a NEEDED entry can use for this file: its soname, or a shared object's file name."""
    if info.hardening is None or not info.hardening.shared:
        return []
    if info.soname:
        return [info.soname]
    base = posixpath.basename(info.path)
    return [base] if ".so" in base else []


def link_info(infos: Iterable[ElfInfo]) -> LinkInfo:
    """The package's link summary from its ELF files (sorted: deterministic metadata)."""
    sonames: set[str] = set()
    needed: dict[str, tuple[str, ...]] = {}
    for info in infos:
        sonames.update(provided_names(info))
        if info.needed:
            needed[info.path] = tuple(sorted(set(info.needed)))
    if len(needed) > MAX_NEEDED_FILES:
        needed = {}
    return LinkInfo(sonames=tuple(sorted(sonames)), needed=MappingProxyType(dict(sorted(needed.items()))))


@dataclass(frozen=True, slots=True, kw_only=True)
class Missing:
    package: str
    path: str
    soname: str

    def message(self, where: str) -> str:
        return (f"package '{self.package}': /{self.path} needs {self.soname}, which {where} does not provide "
                f"({SO_PREFIX}{self.soname})")


def missing_needed(needers: Mapping[str, LinkInfo], providers: Iterable[LinkInfo]) -> list[Missing]:
    """The NEEDED sonames of ``needers`` (package name -> summary) that neither the package itself nor any of
    ``providers`` provides, sorted."""
    provided: set[str] = set()
    for p in providers:
        provided.update(p.sonames)
    out = []
    for name, info in sorted(needers.items()):
        own = set(info.sonames)
        for path, sonames in sorted(info.needed.items()):
            out += [Missing(package=name, path=path, soname=s) for s in sonames if s not in own and s not in provided]
    return out


def rpath_problems(info: ElfInfo) -> list[str]:
    """Unsafe RPATH/RUNPATH entries: relative paths, absolute paths outside /usr, /lib and /opt, build paths
    (/tmp, /home, /build, ...), and ``$ORIGIN`` paths that climb out of the image root."""
    out = []
    depth = info.path.count("/")   # directories above the file, up to the root
    for kind, paths in (("RPATH", info.rpath), ("RUNPATH", info.runpath)):
        for p in paths:
            if p.startswith(("$ORIGIN", "${ORIGIN}")):
                rest = p.split("/", 1)[1] if "/" in p else ""
                ups = 0
                for part in rest.split("/"):
                    ups += -1 if part == ".." else (1 if part not in ("", ".") else 0)
                    if -ups > depth:
                        out.append(f"/{info.path}: {kind} '{p}' climbs out of the image root")
                        break
            elif not p.startswith("/"):
                out.append(f"/{info.path}: {kind} '{p}' is relative to the working directory (a library "
                           "injection hole); use $ORIGIN or an absolute path")
            elif not p.startswith(ALLOWED_RPATH_PREFIXES) or p.startswith(("/usr/src", "/usr/local/src")):
                out.append(f"/{info.path}: {kind} '{p}' is outside /usr, /lib and /opt (a build path?)")
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class AbiBreak:
    """What a new version of a library package breaks for the packages linked against the old one."""

    soname: str
    dropped: tuple[str, ...] = ()       # exported symbols of ``soname`` gone in the new version
    renamed_to: str = ""                # the soname changed (the old soname is gone)
    detail: str = ""                    # abidiff's summary, where abigail-tools is installed

    def describe(self) -> str:
        if self.renamed_to:
            return f"{self.soname} is gone (the new version provides {self.renamed_to})"
        shown = ", ".join(self.dropped[:8]) + (f" and {len(self.dropped) - 8} more" if len(self.dropped) > 8 else "")
        detail = f" (abidiff: {self.detail})" if self.detail else ""
        return f"{self.soname} drops {len(self.dropped)} exported symbols: {shown}{detail}"


def files_by_soname(infos: Iterable[ElfInfo]) -> dict[str, str]:
    """soname -> the package path of the shared object that provides it (the first by path)."""
    out: dict[str, str] = {}
    for info in sorted(infos, key=lambda i: i.path):
        for name in provided_names(info):
            out.setdefault(name, info.path)
    return out


def abidiff_summary(output: str) -> str:
    """The non-zero lines of abidiff's change summaries ("1 Removed, 0 Added function symbol ..."), joined."""
    lines = [line.split(":", 1)[1].strip() for line in output.splitlines()[:200] if "changes summary:" in line]
    return "; ".join(x for x in lines if re.search(r"\b[1-9][0-9]*\b", x))


def exports_by_soname(infos: Iterable[ElfInfo]) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for info in infos:
        for name in provided_names(info):
            out[name] = out.get(name, frozenset()) | info.exported
    return out


def abi_breaks(old: Mapping[str, frozenset[str]], new: Mapping[str, frozenset[str]]) -> list[AbiBreak]:
    """Compare two versions' exported symbols per soname (from :func:`exports_by_soname`)."""
    out = []
    added = sorted(set(new) - set(old))
    for soname, symbols in sorted(old.items()):
        if soname not in new:
            out.append(AbiBreak(soname=soname, renamed_to=", ".join(added) or "no library"))
            continue
        dropped = tuple(sorted(symbols - new[soname]))
        if dropped:
            out.append(AbiBreak(soname=soname, dropped=dropped))
    return out


def dependents(soname: str, packages: Mapping[str, LinkInfo]) -> list[str]:
    """The packages (name -> summary) that NEED ``soname``, sorted."""
    return sorted(n for n, info in packages.items() if any(soname in s for s in info.needed.values()))


def closure_names(start: str, step: Callable[[str], Iterable[str]], limit: int = 100_000) -> set[str]:
    """The names reachable from ``start`` through ``step`` (name -> the names it leads to), itself included;
    bounded by ``limit`` names."""
    seen = {start}
    todo = [start]
    while todo and len(seen) < limit:
        for n in step(todo.pop()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen
