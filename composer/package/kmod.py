"""Kernel modules: read ``depends=`` from a module's ELF ``.modinfo`` and order modules for loading.

Pure Python, so it works for any architecture's modules without depmod on the host.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from composer.errors import UserError


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
    paths: Mapping[str, str]           # module name -> path relative to lib/modules/RELEASE
    builtin: frozenset[str]

    @classmethod
    def scan(cls, root: Path) -> ModuleTree:
        base = root / "lib" / "modules"
        releases = sorted(p.name for p in base.iterdir()) if base.is_dir() else []
        if len(releases) != 1:
            raise UserError(f"expected one kernel release under lib/modules, found {releases or 'none'}",
                            hint="point the kmod source at a linux-image package")
        rel = base / releases[0]
        paths = {canonical(p.name.removesuffix(".ko")): str(p.relative_to(rel))
                 for p in sorted(rel.rglob("*.ko"))}
        builtin_file = rel / "modules.builtin"
        builtin = frozenset(canonical(Path(line).name.removesuffix(".ko"))
                            for line in builtin_file.read_text().split()) if builtin_file.exists() else frozenset()
        return cls(release=releases[0], paths=paths, builtin=builtin)

    def depends(self, root: Path, name: str) -> list[str]:
        data = (root / "lib" / "modules" / self.release / self.paths[name]).read_bytes()
        return [canonical(d) for d in modinfo(data).get("depends", "").split(",") if d]


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
