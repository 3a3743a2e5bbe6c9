"""The update bundle an A/B disk output writes beside the disk (contract: /work/brief/contract17.md, docs/updates/
ab-slots.md): ``NAME.bundle/bundle.json`` and the files a slot is made of (root.img, verity.img, uki-a.efi,
uki-b.efi), which ``vcomp release`` publishes as a generation of a channel.

    {"format": "vcomp-update-bundle", "version": 1, "profile": P, "arch": A, "output": NAME,
     "slot-size": BYTES, "roothash": HEX|null,
     "files": {"root": F, "verity": F (only with verity), "uki-a": F, "uki-b": F}}     F = {"path", "sha256", "size"}

Parsing is pure and bounded (:meth:`Bundle.from_bytes`); :func:`write_bundle` and :func:`read_bundle` are the edges.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.errors import VerificationError
from composer.fsutil import atomic_write, canonical_json

FORMAT = "vcomp-update-bundle"
VERSION = 1
JSON_NAME = "bundle.json"
MAX_JSON = 64 * 1024
MAX_FILE = 1 << 40                      # 1 TiB: no slot is larger
ROLES = ("root", "verity", "uki-a", "uki-b")
FILE_NAMES = {"root": "root.img", "verity": "verity.img", "uki-a": "uki-a.efi", "uki-b": "uki-b.efi"}
_HEX = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_PATH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleFile:
    path: str       # relative to the bundle directory, one segment
    sha256: str
    size: int

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True, slots=True, kw_only=True)
class Bundle:
    profile: str
    arch: str
    output: str
    slot_size: int
    roothash: str | None
    files: Mapping[str, BundleFile]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "profile": self.profile, "arch": self.arch,
                "output": self.output, "slot-size": self.slot_size, "roothash": self.roothash,
                "files": {role: f.to_dict() for role, f in sorted(self.files.items())}}

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes, origin: str) -> Bundle:
        if len(data) > MAX_JSON:
            raise _bad(origin, "$", f"{len(data)} bytes: a bundle document is at most {MAX_JSON}")
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _bad(origin, "$", f"not JSON ({exc})") from None
        return cls.from_dict(doc, origin)

    @classmethod
    def from_dict(cls, doc: object, origin: str) -> Bundle:
        if not isinstance(doc, dict):
            raise _bad(origin, "$", "not an object")
        if doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise _bad(origin, "$.format", f"not a {FORMAT} version {VERSION} document")
        extra = sorted(set(doc) - {"format", "version", "profile", "arch", "output", "slot-size", "roothash",
                                   "files"})
        if extra:
            raise _bad(origin, f"$.{extra[0]}", "unknown key")
        names = {k: _name(doc.get(k), origin, f"$.{k}") for k in ("profile", "arch", "output")}
        slot_size = _size(doc.get("slot-size"), origin, "$.slot-size")
        roothash = doc.get("roothash")
        if roothash is not None:
            roothash = _hex(roothash, origin, "$.roothash")
        files = doc.get("files")
        if not isinstance(files, dict):
            raise _bad(origin, "$.files", "not an object")
        wanted = {"root", "uki-a", "uki-b"} | ({"verity"} if roothash is not None else set())
        if set(files) != wanted:
            raise _bad(origin, "$.files", f"has {sorted(files)}; expected {sorted(wanted)} (verity only with a "
                                          "roothash)")
        parsed = {role: _file(files[role], origin, f"$.files.{role}") for role in sorted(files)}
        if parsed["root"].size > slot_size:
            raise _bad(origin, "$.files.root.size", f"{parsed['root'].size} bytes do not fit the slot-size "
                                                    f"{slot_size}")
        return cls(profile=names["profile"], arch=names["arch"], output=names["output"], slot_size=slot_size,
                   roothash=roothash, files=parsed)


def _bad(origin: str, path: str, what: str) -> VerificationError:
    return VerificationError(f"{origin}: {path}: {what}",
                             hint="the bundle is damaged or not one an A/B disk output wrote; build it again")


def _name(value: object, origin: str, path: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise _bad(origin, path, f"{value!r} is not a name of [a-z0-9][a-z0-9_-]*")
    return value


def _size(value: object, origin: str, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_FILE:
        raise _bad(origin, path, f"{value!r} is not a size between 1 and {MAX_FILE}")
    return value


def _hex(value: object, origin: str, path: str) -> str:
    if not isinstance(value, str) or not _HEX.match(value):
        raise _bad(origin, path, f"{value!r} is not 64 lower-case hex digits")
    return value


def _file(value: object, origin: str, path: str) -> BundleFile:
    if not isinstance(value, dict) or set(value) != {"path", "sha256", "size"}:
        raise _bad(origin, path, "not an object of path, sha256 and size")
    name = value["path"]
    if not isinstance(name, str) or not _PATH.match(name) or name in (".", ".."):
        raise _bad(origin, f"{path}.path", f"{name!r} is not one path segment")
    return BundleFile(path=name, sha256=_hex(value["sha256"], origin, f"{path}.sha256"),
                      size=_size(value["size"], origin, f"{path}.size"))


# ---------------------------------------------------------------- edges


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def write_bundle(directory: Path, *, profile: str, arch: str, output: str, slot_size: int, roothash: str | None,
                 sources: Mapping[str, Path]) -> Bundle:
    """Copy ``sources`` (role -> file) into ``directory`` under their fixed names and write bundle.json."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    files = {}
    for role, src in sorted(sources.items()):
        dest = directory / FILE_NAMES[role]
        shutil.copyfile(src, dest)
        files[role] = BundleFile(path=dest.name, sha256=file_sha256(dest), size=dest.stat().st_size)
    bundle = Bundle(profile=profile, arch=arch, output=output, slot_size=slot_size, roothash=roothash, files=files)
    Bundle.from_bytes(bundle.to_bytes(), str(directory))   # what we write, we can read
    atomic_write(directory / JSON_NAME, bundle.to_bytes())
    return bundle


def read_bundle(directory: Path, *, check_files: bool = True) -> Bundle:
    """The bundle in ``directory``, each file's size (and with ``check_files`` its sha256) checked."""
    doc = directory / JSON_NAME
    origin = str(doc)
    try:
        with doc.open("rb") as f:
            data = f.read(MAX_JSON + 1)
    except OSError as exc:
        raise VerificationError(f"{origin}: cannot read the bundle ({exc.strerror})",
                                hint="give the NAME.bundle directory an A/B disk output wrote") from None
    bundle = Bundle.from_bytes(data, origin)
    for role, entry in sorted(bundle.files.items()):
        path = directory / entry.path
        if not path.is_file() or path.is_symlink() or path.stat().st_size != entry.size:
            raise _bad(origin, f"$.files.{role}", f"{path} is missing or not {entry.size} bytes")
        if check_files and file_sha256(path) != entry.sha256:
            raise _bad(origin, f"$.files.{role}", f"{path} does not have the sha256 {entry.sha256}")
    return bundle
