"""What a packaged ELF file links against and exports, and how it was hardened: a pure, bounded reader.

Takes bytes (never a path) and returns an :class:`ElfInfo` or ``None`` (not ELF, or not a linkable object: a
relocatable ``.o``/``.ko``). Hostile input is bounded: the caller reads at most :data:`MAX_ELF_BYTES`, the
dynamic section is read up to :data:`MAX_DYNAMIC` tags, the symbol table up to :data:`MAX_SYMBOLS` symbols and
every string up to :data:`MAX_STRING` characters; a malformed file is reported as ``ElfInfo.problem`` (one line),
never as a traceback. pyelftools does the parsing (``composer.debug.buildid`` uses it the same way).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.elf.dynamic import DynamicSection, DynamicSegment
from elftools.elf.elffile import ELFFile

ELF_MAGIC = b"\x7fELF"
MAX_ELF_BYTES = 128 << 20     # larger ELF files are not scanned (reported as a finding)
MAX_DYNAMIC = 4096            # dynamic tags read
MAX_SYMBOLS = 200_000         # dynamic symbols read (glibc exports ~3,000)
MAX_STRING = 4096             # characters of a soname, NEEDED entry, RPATH or symbol name
MAX_NEEDED = 512              # NEEDED entries kept

DF_BIND_NOW = 0x8
DF_1_NOW = 0x1
DF_1_PIE = 0x08000000
PF_X = 0x1

# what pyelftools (and struct/bytes decoding inside it) raises on a malformed file
PARSE_ERRORS = (ELFError, ELFParseError, ValueError, KeyError, IndexError, EOFError, OSError, AssertionError,
                struct.error, UnicodeDecodeError, TypeError, AttributeError, RecursionError, OverflowError,
                MemoryError)
_EXPORTED_TYPES = frozenset({"STT_FUNC", "STT_OBJECT", "STT_TLS", "STT_GNU_IFUNC", "STT_COMMON", "STT_LOOS"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Hardening:
    """checksec's flags of one ELF file (``relro``: full | partial | none)."""

    pie: bool
    relro: str
    nx: bool
    canary: bool
    fortify: bool
    shared: bool = False        # a shared library: PIE does not apply (it is position-independent by nature)
    static: bool = False        # no dynamic symbols: canary and FORTIFY cannot be seen (not scored)

    def to_dict(self) -> dict[str, Any]:
        return {"pie": self.pie, "relro": self.relro, "nx": self.nx, "canary": self.canary,
                "fortify": self.fortify, "shared": self.shared, "static": self.static}


@dataclass(frozen=True, slots=True, kw_only=True)
class ElfInfo:
    """One ELF file of a package: its soname, NEEDED list, search paths, dynamic symbols and hardening."""

    path: str
    elf_class: int                               # 32 or 64
    machine: str
    type: str                                    # ET_EXEC | ET_DYN
    interpreter: bool                            # has PT_INTERP (a dynamically linked program)
    soname: str = ""
    needed: tuple[str, ...] = ()
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    exported: frozenset[str] = field(default_factory=frozenset)
    imported: frozenset[str] = field(default_factory=frozenset)
    hardening: Hardening | None = None
    problem: str = ""                            # why the file could not be read whole (malformed, too large)

    @property
    def dynamic(self) -> bool:
        return bool(self.needed or self.soname or self.interpreter)


def is_elf(head: bytes) -> bool:
    return head[:4] == ELF_MAGIC


def read_elf(data: bytes, path: str) -> ElfInfo | None:
    """The :class:`ElfInfo` of ``data`` (the file at ``path`` in a package), None when it is not a linkable ELF."""
    if not is_elf(data):
        return None
    try:
        elf = ELFFile(io.BytesIO(data))
        kind = str(elf.header["e_type"])
        if kind not in ("ET_EXEC", "ET_DYN"):
            return None
        base: dict[str, Any] = {"path": path, "elf_class": int(elf.elfclass),
                                "machine": str(elf.header["e_machine"]), "type": kind}
    except PARSE_ERRORS as exc:
        return ElfInfo(path=path, elf_class=0, machine="", type="", interpreter=False,
                       problem=f"not a readable ELF file ({type(exc).__name__}: {_short(str(exc))})")
    try:
        return _read(elf, base)
    except PARSE_ERRORS as exc:
        return ElfInfo(**base, interpreter=False,
                       problem=f"malformed ELF ({type(exc).__name__}: {_short(str(exc))})")


def _short(text: str) -> str:
    return text if len(text) <= 120 else text[:117] + "..."


def _bounded(text: object) -> str:
    s = str(text)
    if len(s) > MAX_STRING:
        raise ValueError(f"a dynamic string is longer than {MAX_STRING} characters")
    return s


def _read(elf: ELFFile, base: Mapping[str, Any]) -> ElfInfo:
    interp, relro, nx = False, False, False
    for segs, seg in enumerate(elf.iter_segments()):
        if segs >= 1024:
            raise ValueError("more than 1024 program headers")
        kind = seg["p_type"]
        if kind == "PT_INTERP":
            interp = True
        elif kind == "PT_GNU_RELRO":
            relro = True
        elif kind == "PT_GNU_STACK":
            nx = not seg["p_flags"] & PF_X
    tags = _dynamic_tags(elf)
    needed: list[str] = []
    soname, rpath, runpath = "", [], []
    flags, flags1, bind_now = 0, 0, False
    for tag in tags:
        name = tag.entry.d_tag
        if name == "DT_NEEDED" and len(needed) < MAX_NEEDED:
            needed.append(_bounded(tag.needed))
        elif name == "DT_SONAME":
            soname = _bounded(tag.soname)
        elif name == "DT_RPATH":
            rpath = [p for p in _bounded(tag.rpath).split(":") if p]
        elif name == "DT_RUNPATH":
            runpath = [p for p in _bounded(tag.runpath).split(":") if p]
        elif name == "DT_FLAGS":
            flags = int(tag.entry.d_val)
        elif name == "DT_FLAGS_1":
            flags1 = int(tag.entry.d_val)
        elif name == "DT_BIND_NOW":
            bind_now = True
    exported, imported = _symbols(elf)
    now = bind_now or bool(flags & DF_BIND_NOW) or bool(flags1 & DF_1_NOW)
    shared = base["type"] == "ET_DYN" and not flags1 & DF_1_PIE and (bool(soname) or not interp)
    pie = base["type"] == "ET_DYN"
    symbols = imported | exported    # the C library defines what others import
    hardening = Hardening(pie=pie, relro=("full" if now else "partial") if relro else "none", nx=nx,
                          canary=bool({"__stack_chk_fail", "__stack_chk_guard"} & symbols),
                          fortify=any(s.startswith("__") and s.endswith("_chk") and s != "__stack_chk_fail"
                                      for s in symbols), shared=shared, static=not tags and not symbols)
    return ElfInfo(**base, interpreter=interp, soname=soname, needed=tuple(needed), rpath=tuple(rpath),
                   runpath=tuple(runpath), exported=frozenset(exported), imported=frozenset(imported),
                   hardening=hardening)


def _dynamic_tags(elf: ELFFile) -> list[Any]:
    dyn: Any = next((s for s in elf.iter_sections() if isinstance(s, DynamicSection)), None) \
        if elf.num_sections() else None
    if dyn is None:
        dyn = next((s for s in elf.iter_segments() if isinstance(s, DynamicSegment)), None)
    if dyn is None:
        return []
    out = []
    for i, tag in enumerate(dyn.iter_tags()):
        if i >= MAX_DYNAMIC:
            raise ValueError(f"more than {MAX_DYNAMIC} dynamic tags")
        out.append(tag)
    return out


def _symbol_source(elf: ELFFile) -> Iterator[Any]:
    if elf.num_sections():
        table: Any = elf.get_section_by_name(".dynsym")
        if table is not None:
            yield from table.iter_symbols()
            return
    dyn = next((s for s in elf.iter_segments() if isinstance(s, DynamicSegment)), None)
    if dyn is not None:
        yield from dyn.iter_symbols()


# st_info binding and type, st_other visibility (the ELF gABI numbers)
_BINDS = frozenset({1, 2, 10})            # STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE
_TYPES = frozenset({1, 2, 5, 6, 10})      # STT_OBJECT, STT_FUNC, STT_COMMON, STT_TLS, STT_GNU_IFUNC
_VISIBLE = frozenset({0, 3})              # STV_DEFAULT, STV_PROTECTED
_SYM_FORMATS = {64: ("IBBHQQ", 24, (0, 1, 2, 3)), 32: ("IIIBBH", 16, (0, 3, 4, 5))}   # name, info, other, shndx


def _table_symbols(elf: ELFFile) -> tuple[set[str], set[str]] | None:
    """:func:`_symbols` from the ``.dynsym`` section's bytes with ``struct`` (pyelftools' per-symbol parsing is
    ~50 times slower); None without section headers (then pyelftools reads the dynamic segment)."""
    table: Any = elf.get_section_by_name(".dynsym") if elf.num_sections() else None
    if table is None:
        return None
    strtab: Any = elf.get_section(table["sh_link"])
    data, strings = table.data(), strtab.data()
    fmt, size, (i_name, i_info, i_other, i_shndx) = _SYM_FORMATS[elf.elfclass]
    if len(data) // size > MAX_SYMBOLS:
        raise ValueError(f"more than {MAX_SYMBOLS} dynamic symbols")
    exported: set[str] = set()
    imported: set[str] = set()
    for row in struct.iter_unpack(("<" if elf.little_endian else ">") + fmt, data[:len(data) - len(data) % size]):
        start = row[i_name]
        end = strings.find(b"\0", start, start + MAX_STRING + 1)
        if start >= len(strings) or end < 0:
            raise ValueError("a dynamic symbol's name is outside its string table or too long")
        name = strings[start:end].decode("utf-8", "replace")
        if not name:
            continue
        if row[i_shndx] == 0:
            imported.add(name)
        elif row[i_info] >> 4 in _BINDS and row[i_info] & 0xF in _TYPES and row[i_other] & 3 in _VISIBLE:
            exported.add(name)
    return exported, imported


def _symbols(elf: ELFFile) -> tuple[set[str], set[str]]:
    """(exported, imported) dynamic symbol names: defined global/weak default-visibility, and undefined."""
    fast = _table_symbols(elf)
    if fast is not None:
        return fast
    exported: set[str] = set()
    imported: set[str] = set()
    for i, sym in enumerate(_symbol_source(elf)):
        if i >= MAX_SYMBOLS:
            raise ValueError(f"more than {MAX_SYMBOLS} dynamic symbols")
        name = _bounded(sym.name)
        if not name:
            continue
        if sym["st_shndx"] == "SHN_UNDEF":
            imported.add(name)
        elif (sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK", "STB_GNU_UNIQUE", "STB_LOOS")
              and sym["st_other"]["visibility"] in ("STV_DEFAULT", "STV_PROTECTED")
              and sym["st_info"]["type"] in _EXPORTED_TYPES):
            exported.add(name)
    return exported, imported
