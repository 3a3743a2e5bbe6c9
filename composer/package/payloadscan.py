"""Read a package's files once for the ELF, secret and YARA checks (the I/O edge of those pure checks).

Bounded: a file's first :data:`composer.package.secrets.SCAN_BYTES` are scanned for secrets and YARA rules; an
ELF file is read whole up to :data:`composer.package.elfinfo.MAX_ELF_BYTES` (a larger one is listed in
``skipped``); the payload itself is capped by the package reader (decompression bombs, the manifest's sizes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from composer.package.archive import Header, open_package
from composer.package.elfinfo import MAX_ELF_BYTES, ElfInfo, is_elf, read_elf
from composer.package.secrets import SCAN_BYTES, Match, bundled_rules, find_secrets, yara_matches


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageScan:
    elves: tuple[ElfInfo, ...] = ()
    secrets: tuple[Match, ...] = ()
    yara: tuple[Match, ...] = ()
    skipped: tuple[str, ...] = ()      # "PATH: why" for files not scanned whole


@dataclass(slots=True)
class _Collector:
    rules: Any
    elves: list[ElfInfo]
    secrets: list[Match]
    yara: list[Match]
    skipped: list[str]
    content: bool = True               # secrets and YARA too (else ELF files only)

    def add(self, path: str, f: IO[bytes]) -> None:
        head = f.read(SCAN_BYTES)
        data = head
        if is_elf(head):
            data = head + f.read(MAX_ELF_BYTES + 1 - len(head))
            if len(data) > MAX_ELF_BYTES:
                self.skipped.append(f"{path}: ELF file over {MAX_ELF_BYTES >> 20} MiB, not read")
            else:
                info = read_elf(data, path)
                if info is not None:
                    self.elves.append(info)
        if self.content:
            self.secrets += find_secrets(head, path)
            self.yara += yara_matches(self.rules, head, path)

    def result(self) -> PackageScan:
        return PackageScan(elves=tuple(self.elves), secrets=tuple(self.secrets), yara=tuple(self.yara),
                           skipped=tuple(self.skipped))


def _collector(rules: Any, content: bool = True) -> _Collector:
    return _Collector(rules=bundled_rules() if rules is None and content else rules, elves=[], secrets=[], yara=[],
                      skipped=[], content=content)


def scan_package(path: Path, rules: Any = None, *, content: bool = True,
                 validated: bool = False) -> tuple[Header, PackageScan]:
    """The header and the scan of the package file at ``path`` (its payload checked against the manifest);
    ``rules``: compiled YARA rules (default: the bundled ones); without ``content``, ELF files only;
    ``validated``: see :func:`composer.package.archive.open_package`."""
    c = _collector(rules, content)
    with open_package(path, validated=validated) as reader:
        header = reader.header
        if not header.manifest.entries:     # a metadata-only package: nothing to read
            return header, c.result()
        with reader.payload() as stream:
            for entry, f in stream.members():
                if f is not None:
                    c.add(entry.path, f)
    return header, c.result()


def read_files(path: Path, wanted: set[str]) -> dict[str, bytes]:
    """The bytes of the files ``wanted`` (package paths) of the package at ``path``, each up to MAX_ELF_BYTES."""
    out: dict[str, bytes] = {}
    with open_package(path) as reader, reader.payload() as stream:
        for entry, f in stream.members():
            if f is not None and entry.path in wanted:
                data = f.read(MAX_ELF_BYTES + 1)
                if len(data) <= MAX_ELF_BYTES:
                    out[entry.path] = data
    return out
