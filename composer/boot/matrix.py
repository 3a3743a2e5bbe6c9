"""The boot matrix: every cell (architecture x output x medium x firmware) a build's outputs support.

Pure: a manifest in, cells out. An output boots on its own medium (its registry row's: ``cdrom``, ``disk``,
``kernel``) and on the ``alt-media`` its builder recorded (a hybrid ISO also boots as a ``disk``), with each
firmware kind it was built for (a direct kernel boot has none: ``none``). The profile restricts the matrix
through the outputs' options (``firmware: [uefi]``, ``hybrid: false``); ``vcomp test --cell`` picks cells
by glob (``x86_64/*/disk/*``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from composer.errors import UserError
from composer.image.outputs import OUTPUT_TYPES

KERNEL = "kernel"   # a direct kernel boot: QEMU's -kernel/-initrd, no firmware of ours
NO_FIRMWARE = "none"
MEDIA = ("cdrom", "disk", KERNEL)
MAX_PATTERNS = 64


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Cell:
    """One boot: an output of an architecture attached as ``medium``, started by ``firmware``."""

    arch: str
    output: str
    medium: str
    firmware: str

    @property
    def id(self) -> str:
        return f"{self.arch}/{self.output}/{self.medium}/{self.firmware}"


def media_of(output: Mapping[str, Any]) -> tuple[str, ...]:
    """The media a manifest output boots on: its own first, then its ``alt-media`` (space-separated)."""
    boot = output.get("boot", {})
    first = boot.get("media", "")
    media = [first, *str(boot.get("alt-media", "")).split()]
    return tuple(m for m in dict.fromkeys(media) if m in MEDIA)


def cells_of(manifest: Mapping[str, Any]) -> list[Cell]:
    """Every cell of one architecture's build that `vcomp test` boots: the outputs whose type's registry row
    says it is booted on its own, on each of its media, with each of its firmware kinds."""
    cells = []
    for o in manifest["outputs"]:
        kind = OUTPUT_TYPES.get(o["type"])
        if kind is None or not kind.tested:
            continue
        for medium in media_of(o):
            kinds = [NO_FIRMWARE] if medium == KERNEL else list(o["firmware"])
            cells += [Cell(arch=manifest["arch"], output=o["name"], medium=medium, firmware=fw) for fw in kinds]
    return cells


def select(cells: Sequence[Cell], patterns: Sequence[str]) -> list[Cell]:
    """The cells whose id matches one of the glob ``patterns`` (all cells when none is given); a pattern that
    matches no cell is an error naming the cells there are."""
    if not patterns:
        return list(cells)
    if len(patterns) > MAX_PATTERNS:
        raise UserError(f"{len(patterns)} --cell patterns: at most {MAX_PATTERNS}", hint="use globs such as '*/disk/*'")
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(c.id, p) for c in cells)]
    if unmatched:
        known = ", ".join(c.id for c in cells) or "none"
        raise UserError(f"--cell {', '.join(repr(p) for p in unmatched)} matches no boot cell of this build",
                        hint=f"cells (ARCH/OUTPUT/MEDIUM/FIRMWARE, globs allowed): {known}")
    return [c for c in cells if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]


def precheck(pairs: Sequence[tuple[str, str]], firmware: Sequence[str], patterns: Sequence[str]) -> None:
    """Before a build: each pattern must match a cell the profile could have, (architecture, output name) from
    ``pairs`` on any medium with any of ``firmware`` (or none), so that a mistyped ``--cell`` fails in a second
    and not after the build. (Which media and firmware an output really boots on is known after the build:
    :func:`select` checks that.)"""
    if len(patterns) > MAX_PATTERNS:
        raise UserError(f"{len(patterns)} --cell patterns: at most {MAX_PATTERNS}", hint="use globs such as '*/disk/*'")
    possible = [f"{arch}/{output}/{m}/{fw}" for arch, output in pairs for m in MEDIA
                for fw in (*firmware, NO_FIRMWARE)]
    for p in patterns:
        if not any(fnmatch.fnmatchcase(c, p) for c in possible):
            raise UserError(f"--cell {p!r} matches no cell this profile can have",
                            hint="cells are ARCH/OUTPUT/MEDIUM/FIRMWARE (globs allowed); this profile builds "
                                 + (", ".join(f"{a}/{o}/*" for a, o in pairs) or "no outputs"))
