"""Core dumps carried on the console (init's ``vcomp.cores=1``: usr/libexec/veridian/core-to-console), pure:
a console log's lines -> the cores in it, checked (size and sha256 of the gzip data), then decompressed with a
bound. ``vcomp boot`` writes them into its log directory (:func:`write_cores`, the I/O edge).

    VCOMP-CORE: begin NAME PID SIGNAL SIZE SHA256
    VCOMP-CORE-DATA: H4sIAAAAAAAAA+3d...
    VCOMP-CORE: end NAME PID
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from composer.fsutil import atomic_write

MAX_CORES = 32
MAX_GZIP_BYTES = 64 << 20          # of one core as carried (compressed)
MAX_CORE_BYTES = 1 << 30           # of one core decompressed
_BEGIN = re.compile(r"VCOMP-CORE: begin ([A-Za-z0-9._-]{1,32}) (\d{1,10}) (\d{1,3}) (\d{1,12}) ([0-9a-f]{64})\s*$")
_DATA = "VCOMP-CORE-DATA: "
_END = re.compile(r"VCOMP-CORE: end ([A-Za-z0-9._-]{1,32}) (\d{1,10})\s*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Core:
    name: str          # the crashed program's name (the kernel's %e, made file-name safe)
    pid: int
    signal: int
    gzip: bytes        # as carried, checked against the announced size and sha256

    @property
    def file_name(self) -> str:
        return f"core.{self.name}.{self.pid}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    cores: tuple[Core, ...]
    problems: tuple[str, ...]      # one line each: a core cut short, damaged, or over a bound


@dataclass(slots=True)
class _Open:
    name: str
    pid: int
    signal: int
    size: int
    sha256: str
    chunks: list[str] = field(default_factory=list)
    length: int = 0


def extract(lines: Iterable[str]) -> Found:
    """The cores of a console log (the ones that arrived whole and unmodified) and what went wrong with others."""
    cores: list[Core] = []
    problems: list[str] = []
    current: _Open | None = None
    for line in lines:
        if current is not None and _DATA in line:
            chunk = line.split(_DATA, 1)[1].strip()
            current.length += len(chunk)
            if current.length * 3 // 4 > min(current.size, MAX_GZIP_BYTES) + 4:
                problems.append(f"core of {current.name} (pid {current.pid}): more data than announced; dropped")
                current = None
            else:
                current.chunks.append(chunk)
            continue
        begin = _BEGIN.search(line)
        if begin:
            if current is not None:
                problems.append(f"core of {current.name} (pid {current.pid}): cut short by another core")
            current = _Open(name=begin.group(1), pid=int(begin.group(2)), signal=int(begin.group(3)),
                            size=int(begin.group(4)), sha256=begin.group(5))
            if current.size > MAX_GZIP_BYTES:
                problems.append(f"core of {current.name} (pid {current.pid}): {current.size} bytes compressed, over "
                                f"the bound of {MAX_GZIP_BYTES}; dropped")
                current = None
            continue
        end = _END.search(line)
        if end and current is not None and (end.group(1), int(end.group(2))) == (current.name, current.pid):
            _close(current, cores, problems)
            current = None
    if current is not None:
        problems.append(f"core of {current.name} (pid {current.pid}): the log ends inside it (the boot stopped "
                        "while it was printed)")
    if len(cores) > MAX_CORES:
        problems.append(f"{len(cores) - MAX_CORES} more cores not kept (over {MAX_CORES})")
    return Found(cores=tuple(cores[:MAX_CORES]), problems=tuple(problems))


def _close(c: _Open, cores: list[Core], problems: list[str]) -> None:
    try:
        data = base64.b64decode("".join(c.chunks), validate=True)
    except (binascii.Error, ValueError):
        problems.append(f"core of {c.name} (pid {c.pid}): damaged on the console (not base64); dropped")
        return
    if len(data) != c.size or hashlib.sha256(data).hexdigest() != c.sha256:
        problems.append(f"core of {c.name} (pid {c.pid}): {len(data)} bytes arrived, {c.size} announced, or its "
                        "sha256 differs (console output mixed into it); dropped")
        return
    cores.append(Core(name=c.name, pid=c.pid, signal=c.signal, gzip=data))


def decompress(core: Core, limit: int = MAX_CORE_BYTES) -> bytes:
    """The core file (ELF) of a carried core; ValueError when it is not gzip or exceeds ``limit``."""
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(core.gzip, limit)
    except zlib.error as exc:
        raise ValueError(f"core of {core.name} (pid {core.pid}): not gzip data ({exc})") from None
    if d.unconsumed_tail:
        raise ValueError(f"core of {core.name} (pid {core.pid}): over {limit} bytes decompressed")
    return out


def write_cores(found: Found, directory: Path) -> tuple[list[Path], list[str]]:
    """Write each core as ``directory/core.NAME.PID`` (the I/O edge); the paths and the problems."""
    written, problems = [], list(found.problems)
    for core in found.cores:
        try:
            data = decompress(core)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        path = directory / core.file_name
        atomic_write(path, data, durable=False)
        written.append(path)
    return written, problems
