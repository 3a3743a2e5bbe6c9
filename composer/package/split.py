"""Split a recipe's output into the runtime package, ``NAME-dev`` and ``NAME-dbg`` (issue 18 items 2 and 5).

``[split]`` in recipe.toml::

    [split]
    dev = ["usr/include/**", "usr/lib/**/*.a", "usr/lib/**/pkgconfig/**", "usr/lib/**/lib*.so"]
    dbg = true

``dev`` globs move matching files (and symlinks) from the staging tree into ``NAME-dev``; ``dbg`` splits the
debug information of every ELF file left in the runtime package into ``NAME-dbg`` in the GNU build-id layout
(``usr/lib/debug/.build-id/xx/yyyy….debug``, what gdb and debuginfod look up), and strips the runtime file with a
``.gnu_debuglink`` to it. The ELF note parser and the partition are pure; objcopy runs through composer.run.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.arch import Arch
from composer.errors import UserError
from composer.package import globs
from composer.run import run

DEV_SUFFIX = "-dev"
DBG_SUFFIX = "-dbg"
DEBUG_ROOT = "usr/lib/debug/.build-id"
NT_GNU_BUILD_ID = 3
SHT_NOTE = 7
MAX_NOTES_BYTES = 1 << 20        # a build-id note is 36 bytes; bound what a hostile file makes us read
MAX_SECTIONS = 1 << 16


@dataclass(frozen=True, slots=True, kw_only=True)
class SplitRules:
    dev: tuple[str, ...] = ()
    dbg: bool = False

    @classmethod
    def from_recipe(cls, data: Mapping[str, Any]) -> SplitRules:
        split = data.get("split", {})
        return cls(dev=tuple(split.get("dev", ())), dbg=bool(split.get("dbg", False)))

    @property
    def active(self) -> bool:
        return bool(self.dev) or self.dbg


# ------------------------------------------------------------------ pure: ELF build-id

def build_id(data: bytes) -> str | None:
    """The GNU build-id of an ELF image as lowercase hex, or None (not ELF, no note, or malformed)."""
    if len(data) < 52 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    try:
        if wide:
            shoff, = struct.unpack_from(order + "Q", data, 0x28)
            shentsize, shnum = struct.unpack_from(order + "HH", data, 0x3A)
        else:
            shoff, = struct.unpack_from(order + "I", data, 0x20)
            shentsize, shnum = struct.unpack_from(order + "HH", data, 0x2E)
        for i in range(min(shnum, MAX_SECTIONS)):
            base = shoff + i * shentsize
            if wide:
                sh_type, = struct.unpack_from(order + "I", data, base + 4)
                offset, size = struct.unpack_from(order + "QQ", data, base + 0x18)
            else:
                sh_type, = struct.unpack_from(order + "I", data, base + 4)
                offset, size = struct.unpack_from(order + "II", data, base + 0x10)
            if sh_type == SHT_NOTE and size <= MAX_NOTES_BYTES:
                found = _note_build_id(data[offset:offset + size], order)
                if found:
                    return found
    except struct.error:
        return None
    return None


def _note_build_id(notes: bytes, order: str) -> str | None:
    pos = 0
    while pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from(order + "III", notes, pos)
        name_end = pos + 12 + ((namesz + 3) & ~3)
        desc_end = name_end + ((descsz + 3) & ~3)
        if desc_end > len(notes):
            return None
        if ntype == NT_GNU_BUILD_ID and notes[pos + 12:pos + 12 + namesz].rstrip(b"\0") == b"GNU":
            return notes[name_end:name_end + descsz].hex() or None
        pos = desc_end
    return None


def debug_path(build_id_hex: str) -> str:
    """``usr/lib/debug/.build-id/xx/rest.debug``: the layout gdb's debug-file-directory and debuginfod use."""
    return f"{DEBUG_ROOT}/{build_id_hex[:2]}/{build_id_hex[2:]}.debug"


# ------------------------------------------------------------------ pure: which paths go where

def partition(paths: Sequence[str], dev_globs: Sequence[str]) -> tuple[list[str], list[str]]:
    """(runtime, dev) of the staged non-directory paths; sorted, each path in exactly one list."""
    dev = sorted(p for p in paths if globs.matches(p, dev_globs))
    chosen = set(dev)
    return sorted(p for p in paths if p not in chosen), dev


def sub_metadata(main: Mapping[str, Any], suffix: str, what: str) -> dict[str, Any]:
    """Metadata dict of ``NAME-dev``/``NAME-dbg``: the runtime package's identity, type development, requiring
    exactly the runtime package's build; no boot, actions, driver, kernel, features or capabilities."""
    pkg = dict(main["package"])
    name = str(pkg["name"])
    pkg.update({"name": name + suffix, "type": "development",
                "description": f"{pkg['description']} ({what})"[:200]})
    pkg.pop("provides", None)
    pkg.pop("conflicts", None)
    pkg.pop("essential", None)
    out: dict[str, Any] = {"package": pkg, "dependencies": {name: "=" + str(pkg["version"])},
                           "security": {"context": main["security"]["context"]}}
    if "provenance" in main:
        out["provenance"] = main["provenance"]
    return out


# ------------------------------------------------------------------ I/O: move files and split debug info

def _files(root: Path) -> list[str]:
    out = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            out.append(str((Path(dirpath) / name).relative_to(root)))
    return sorted(out)


def move_dev(staging: Path, dev_root: Path, dev_globs: Sequence[str], where: str) -> list[str]:
    """Move the dev files into ``dev_root`` (same relative paths); refuse globs that match nothing."""
    _, dev = partition(_files(staging), dev_globs)
    if not dev:
        raise UserError(f"{where}: [split].dev matches no file of the package",
                        hint="fix the globs (paths are relative to the package root, e.g. usr/include/**)")
    for rel in dev:
        target = dev_root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / rel, target)
    _prune_empty(staging)
    return dev


def _prune_empty(root: Path) -> None:
    for dirpath, _, _ in sorted(os.walk(root, topdown=False), key=lambda t: -len(t[0])):
        d = Path(dirpath)
        if d != root and not any(d.iterdir()):
            d.rmdir()


def split_debug(staging: Path, dbg_root: Path, arch: Arch, where: str) -> list[str]:
    """Split every ELF file with debug sections; returns the runtime paths split. Deterministic: objcopy is."""
    objcopy = f"{arch.triple}-objcopy"
    done: list[str] = []
    for rel in _files(staging):
        full = staging / rel
        if full.is_symlink():
            continue
        with full.open("rb") as f:
            head = f.read(4)
        if head != b"\x7fELF":
            continue
        ident = build_id(full.read_bytes())
        if ident is None:
            raise UserError(f"{where}: {rel} has no GNU build-id, so its debug file cannot be found",
                            hint="link with -Wl,--build-id (gcc's default on Debian) or drop [split].dbg")
        debug_rel = debug_path(ident)
        target = dbg_root / debug_rel
        if target.exists():
            raise UserError(f"{where}: {rel} shares build-id {ident} with another file",
                            hint="each binary needs its own build-id (do not copy one file twice)")
        target.parent.mkdir(parents=True, exist_ok=True)
        run([objcopy, "--only-keep-debug", "--compress-debug-sections=none", full, target])
        mode = full.stat().st_mode
        stripped = full.with_name(full.name + ".vcomp-stripped")
        # --add-gnu-debuglink reads the debug file by the name it records: run it from the debug directory
        run([objcopy, "--strip-debug", "--remove-section=.comment", f"--add-gnu-debuglink={target.name}",
             full, stripped], cwd=target.parent)
        os.replace(stripped, full)
        os.chmod(full, mode & 0o7777)
        os.chmod(target, 0o644)
        done.append(rel)
    if not done:
        raise UserError(f"{where}: [split].dbg is set but the package has no ELF file",
                        hint="drop [split].dbg")
    return done
