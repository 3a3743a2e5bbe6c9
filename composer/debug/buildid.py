"""The GNU build-id of an ELF file (its ``NT_GNU_BUILD_ID`` note), read with pyelftools."""

from __future__ import annotations

import re
from typing import IO

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import NoteSection
from elftools.elf.segments import NoteSegment

ELF_MAGIC = b"\x7fELF"
MIN_ID_HEX = 2      # a build-id is usually 20 bytes (sha1) or 16 (md5); debuginfod bounds it too
MAX_ID_HEX = 128
DEBUG_DIR = "usr/lib/debug/.build-id/"
_DEBUG_PATH = re.compile(r"usr/lib/debug/\.build-id/([0-9a-f]{2})/([0-9a-f]{1,126})\.debug")


def read_build_id(f: IO[bytes]) -> str | None:
    """The build-id of the ELF file ``f`` (seekable) as lowercase hex, None when it is not ELF or has none."""
    try:
        elf = ELFFile(f)
        for section in elf.iter_sections():
            if isinstance(section, NoteSection):
                found = _in_notes(section.iter_notes())
                if found:
                    return found
        for segment in elf.iter_segments():
            if isinstance(segment, NoteSegment):
                found = _in_notes(segment.iter_notes())
                if found:
                    return found
    except (ELFError, ValueError, KeyError, EOFError, OSError, AssertionError):
        return None
    return None


MAX_SECTION_BYTES = 1 << 30


def read_section(f: IO[bytes], name: str) -> bytes | None:
    """The contents of the ELF file ``f``'s section ``name``; None when it is not ELF, has no such section, the
    section has no bytes in the file (NOBITS: a debug file's .text) or is over :data:`MAX_SECTION_BYTES`."""
    try:
        section = ELFFile(f).get_section_by_name(name)
        if section is None or section["sh_type"] == "SHT_NOBITS" or section["sh_size"] > MAX_SECTION_BYTES:
            return None
        f.seek(section["sh_offset"])
        data = f.read(section["sh_size"])   # as stored (a compressed section stays compressed, as elfutils')
    except (ELFError, ValueError, KeyError, EOFError, OSError, AssertionError):
        return None
    return data if len(data) == section["sh_size"] else None


def _in_notes(notes: object) -> str | None:
    for note in notes:  # type: ignore[attr-defined]
        if note["n_type"] == "NT_GNU_BUILD_ID" and note["n_name"] == "GNU":
            desc = str(note["n_desc"]).lower()
            if is_build_id(desc):
                return desc
    return None


def is_build_id(text: str) -> bool:
    """Lowercase hex of an even length within the bounds (what a request's build-id must be)."""
    return (MIN_ID_HEX <= len(text) <= MAX_ID_HEX and len(text) % 2 == 0
            and all(c in "0123456789abcdef" for c in text))


def id_of_debug_path(path: str) -> str | None:
    """The build-id a GNU build-id layout path names (``usr/lib/debug/.build-id/ab/cdef.debug`` -> abcdef)."""
    m = _DEBUG_PATH.fullmatch(path)
    if m is None:
        return None
    found = m.group(1) + m.group(2)
    return found if is_build_id(found) else None


def debug_path_of(build_id: str) -> str:
    """Where a build-id's detached debug information lives in a ``-dbg`` package."""
    return f"{DEBUG_DIR}{build_id[:2]}/{build_id[2:]}.debug"
