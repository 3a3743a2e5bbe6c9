"""Kernel modules: read ``depends=`` from a module's ELF ``.modinfo`` and order modules for loading.

Pure Python, so it works for any architecture's modules without depmod on the host. A linux-image package keeps
its modules under ``lib/modules/RELEASE`` (Debian 12) or ``usr/lib/modules/RELEASE`` (Debian 13, merged /usr),
plain (``.ko``) or compressed (``.ko.xz`` in Debian 13; the kernel or busybox ``insmod`` loads them as they are):
only the host-side ``.modinfo`` reader decompresses.
"""

from __future__ import annotations

import gzip
import io
import lzma
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import zstandard

from composer.errors import UserError

# Where a kernel package keeps its modules, relative to the unpacked package (the first one present wins).
MODULE_DIRS = ("lib/modules", "usr/lib/modules")
MAX_MODULE_BYTES = 256 << 20   # one decompressed module (the largest Debian module is ~20 MB)


def _xz(data: bytes) -> bytes:
    return lzma.LZMADecompressor().decompress(data, max_length=MAX_MODULE_BYTES + 1)


def _gz(data: bytes) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        return f.read(MAX_MODULE_BYTES + 1)


def _zst(data: bytes) -> bytes:
    with zstandard.ZstdDecompressor().stream_reader(data) as reader:
        return reader.read(MAX_MODULE_BYTES + 1)


# Module file suffixes and how to get the ELF object back (the kernel's CONFIG_MODULE_COMPRESS_* choices).
SUFFIXES: Mapping[str, Callable[[bytes], bytes]] = {".ko": bytes, ".ko.xz": _xz, ".ko.gz": _gz, ".ko.zst": _zst}


def module_name(filename: str) -> str | None:
    """The canonical module name of a module file name (``nvme-core.ko.xz`` -> ``nvme_core``), else None."""
    suffix = next((s for s in SUFFIXES if filename.endswith(s)), None)
    return canonical(filename.removesuffix(suffix)) if suffix else None


def elf_of(filename: str, data: bytes) -> bytes:
    """The ELF object of a module file, decompressed by its suffix (bounded by MAX_MODULE_BYTES)."""
    suffix = next(s for s in sorted(SUFFIXES, key=len, reverse=True) if filename.endswith(s))
    elf = SUFFIXES[suffix](data)
    if len(elf) > MAX_MODULE_BYTES:
        raise UserError(f"{filename}: decompresses to more than {MAX_MODULE_BYTES} bytes",
                        hint="this is not a kernel module of a Debian linux-image package")
    return elf


def modinfo(elf: bytes) -> dict[str, str]:
    """Key/value pairs of the .modinfo section of an (uncompressed) ELF64 kernel module."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        raise ValueError("not an ELF64 object")
    end = "<" if elf[5] == 1 else ">"
    shoff, = struct.unpack_from(end + "Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", elf, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _t, _f, _a, off, size = struct.unpack_from(end + "IIQQQQ", elf, shoff + i * shentsize)
        return name, off, size

    _, stroff, _ = section(shstrndx)
    for i in range(shnum):
        name, off, size = section(i)
        sname = elf[stroff + name: elf.index(b"\0", stroff + name)]
        if sname == b".modinfo":
            out: dict[str, str] = {}
            for item in elf[off: off + size].split(b"\0"):
                if b"=" in item:
                    k, v = item.decode(errors="replace").split("=", 1)
                    out.setdefault(k, v)
            return out
    return {}


def canonical(name: str) -> str:
    return name.replace("-", "_")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModuleTree:
    release: str
    paths: Mapping[str, str]           # module name -> path relative to BASE/RELEASE
    builtin: frozenset[str]
    base: str = "lib/modules"          # where the package keeps them (one of MODULE_DIRS)

    @classmethod
    def scan(cls, root: Path) -> ModuleTree:
        base = next((d for d in MODULE_DIRS if (root / d).is_dir() and not (root / d).is_symlink()), MODULE_DIRS[0])
        releases = sorted(p.name for p in (root / base).iterdir()) if (root / base).is_dir() else []
        if len(releases) != 1:
            raise UserError(f"expected one kernel release under {' or '.join(MODULE_DIRS)}, found "
                            f"{releases or 'none'}", hint="point the kmod source at a linux-image package")
        rel = root / base / releases[0]
        paths: dict[str, str] = {}
        for p in sorted(rel.rglob("*.ko*")):
            name = module_name(p.name)
            if name is not None and p.is_file():
                paths.setdefault(name, str(p.relative_to(rel)))
        builtin_file = rel / "modules.builtin"
        builtin = frozenset(n for line in builtin_file.read_text().split() if (n := module_name(Path(line).name))
                            ) if builtin_file.exists() else frozenset()
        return cls(release=releases[0], paths=paths, builtin=builtin, base=base)

    def depends(self, root: Path, name: str) -> list[str]:
        path = self.paths[name]
        elf = elf_of(path, (root / self.base / self.release / path).read_bytes())
        return [canonical(d) for d in modinfo(elf).get("depends", "").split(",") if d]


def load_order(tree: ModuleTree, depends: Callable[[str], list[str]], wanted: Iterable[str],
               exclude: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """Module paths in load order (dependencies first) for ``wanted``, minus ``exclude``'s closure.

    Returns (paths, builtin names). Built-in modules need no loading; unknown names are an error.
    """
    order: list[str] = []
    builtin: list[str] = []
    seen: set[str] = set()
    cache: dict[str, list[str]] = {}

    def closure(name: str, acc: set[str]) -> None:
        if name in acc or name in tree.builtin:
            return
        acc.add(name)
        for dep in cache.setdefault(name, depends(name)):
            closure(dep, acc)

    skip: set[str] = set()
    for name in map(canonical, exclude):
        _require(tree, name)
        closure(name, skip)

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in seen or name in skip:
            return
        if name in tree.builtin:
            if name not in builtin:
                builtin.append(name)
            return
        if name in stack:
            raise UserError(f"kernel modules depend on each other in a cycle: {' -> '.join((*stack, name))}")
        for dep in cache.setdefault(name, depends(name)):
            visit(dep, (*stack, name))
        seen.add(name)
        order.append(tree.paths[name])

    for name in map(canonical, wanted):
        _require(tree, name)
        visit(name, ())
    return order, builtin


def _require(tree: ModuleTree, name: str) -> None:
    if name not in tree.paths and name not in tree.builtin:
        raise UserError(f"kernel module '{name}' is not in kernel {tree.release} (neither a module nor built in)",
                        hint="check the module name, e.g. with: modinfo NAME on a machine running that kernel")
