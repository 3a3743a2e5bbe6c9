"""The debuginfod protocol, pure: a request's URL path -> what it asks for, and the build-id index it is
answered from. No I/O: :mod:`composer.debug.index` builds a :class:`BuildIdIndex`, :mod:`composer.debug.server`
answers HTTP with :func:`resolve`.

A request is ``/buildid/HEX/debuginfo``, ``/buildid/HEX/executable``, ``/buildid/HEX/source/PATH`` or
``/buildid/HEX/section/NAME`` (one ELF section's contents, from the debug file or else the executable: gdb fetches
``.gdb_index`` this way before it wants the whole file; elfutils' debuginfod-client, gdb, ...). Everything else,
and every hostile form (a build-id that is not lowercase-able hex within the bounds, a path with ``..``, a NUL or
over :data:`MAX_SOURCE_PATH` bytes), is None: the server answers 404 without looking anything up.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from composer.debug.buildid import is_build_id

KINDS = ("debuginfo", "executable", "source", "section")
_SECTION = re.compile(r"[A-Za-z0-9._$-]{1,128}")   # an ELF section name (.gdb_index, .debug_info, ...)
MAX_URL_PATH = 8192
MAX_SOURCE_PATH = 4096
SOURCE_DIR = "usr/src/debug/"   # where a -dbg package ships sources (gcc -fdebug-prefix-map=...=/usr/src/debug/..)


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    build_id: str
    kind: str            # one of KINDS
    source: str = ""     # kind "source": the absolute path the DWARF names, normalised
    section: str = ""    # kind "section": the ELF section's name


@dataclass(frozen=True, slots=True, kw_only=True)
class Located:
    """A file of a verified package: which package, its path in it, and its content (sha256, size)."""

    package: str      # name=version/arch
    path: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, object]:
        return {"package": self.package, "path": self.path, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Located:
        return cls(package=str(d["package"]), path=str(d["path"]), sha256=str(d["sha256"]),
                   size=int(str(d["size"])))


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildIdIndex:
    """build-id -> its detached debug information and its executable; package -> its source files."""

    debuginfo: Mapping[str, Located]
    executable: Mapping[str, Located]
    sources: Mapping[str, Mapping[str, Located]]   # package -> path under usr/src/debug/ -> file

    def to_json(self) -> bytes:
        doc = {"debuginfo": {k: v.to_dict() for k, v in sorted(self.debuginfo.items())},
               "executable": {k: v.to_dict() for k, v in sorted(self.executable.items())},
               "sources": {p: {k: v.to_dict() for k, v in sorted(s.items())} for p, s in sorted(self.sources.items())}}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @property
    def size(self) -> int:
        return len(self.debuginfo) + len(self.executable)


def parse_request(url_path: str) -> Request | None:
    """What a request path asks for; None for anything that is not a well-formed debuginfod request."""
    if len(url_path) > MAX_URL_PATH or not url_path.startswith("/buildid/"):
        return None
    path = url_path.split("?", 1)[0]
    parts = path[len("/buildid/"):].split("/", 2)
    if len(parts) < 2:
        return None
    build_id, kind = parts[0].lower(), parts[1]
    if not is_build_id(build_id) or kind not in KINDS:
        return None
    if kind == "section":
        name = urllib.parse.unquote(parts[2]) if len(parts) == 3 else ""
        return Request(build_id=build_id, kind=kind, section=name) if _SECTION.fullmatch(name) else None
    if kind != "source":
        return Request(build_id=build_id, kind=kind) if len(parts) == 2 else None
    if len(parts) != 3:
        return None
    source = _source_path(parts[2])
    return Request(build_id=build_id, kind=kind, source=source) if source else None


def _source_path(escaped: str) -> str | None:
    """The source path of a request (percent-decoded, absolute, without ``.``/``..``), None when hostile."""
    try:
        raw = urllib.parse.unquote(escaped, errors="strict")
    except UnicodeDecodeError:
        return None
    if not raw or len(raw.encode()) > MAX_SOURCE_PATH or "\0" in raw or "\\" in raw:
        return None
    parts = [p for p in raw.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        return None
    return "/" + "/".join(parts)


def section_sources(index: BuildIdIndex, request: Request) -> tuple[Located, ...]:
    """Where a section request's section is looked for, in order: the debug file, then the executable (a
    section the debug file has as NOBITS, such as .text, is only in the executable)."""
    found = (index.debuginfo.get(request.build_id), index.executable.get(request.build_id))
    return tuple(f for f in found if f is not None)


def resolve(index: BuildIdIndex, request: Request) -> Located | None:
    """The file that answers ``request``, None (404) when the index has none (a section request: the first
    file of :func:`section_sources`)."""
    if request.kind == "section":
        return next(iter(section_sources(index, request)), None)
    if request.kind == "debuginfo":
        return index.debuginfo.get(request.build_id)
    if request.kind == "executable":
        return index.executable.get(request.build_id)
    owner = index.debuginfo.get(request.build_id) or index.executable.get(request.build_id)
    if owner is None:
        return None
    files = index.sources.get(owner.package, {})
    rel = request.source.lstrip("/")
    return files.get(rel.removeprefix(SOURCE_DIR)) or files.get(rel)


def merge(found: Iterable[tuple[str, str, str, Located]]) -> BuildIdIndex:
    """The index of ``(kind, key, package, file)`` rows (kind debuginfo/executable: key a build-id; kind
    source: key the path under usr/src/debug/); the first row of a key wins (give them in a stable order)."""
    tables: dict[str, dict[str, Located]] = {"debuginfo": {}, "executable": {}}
    sources: dict[str, dict[str, Located]] = {}
    for kind, key, package, located in found:
        table = sources.setdefault(package, {}) if kind == "source" else tables[kind]
        table.setdefault(key, located)
    return BuildIdIndex(debuginfo=tables["debuginfo"], executable=tables["executable"], sources=sources)
