"""Pure-Python wheels installed into a package's tree (the ``python`` source kind, docs/packages/python.md).

Pure: bytes in, files out. :func:`read_wheel` checks a wheel as hostile input (bounded members and sizes; a path
that is absolute, escapes with ``..``, or is a symbolic link or special file is refused with one line naming it)
and reads its metadata; :func:`install` lays it out as Debian does for the image's ``python3``
(``usr/lib/python3/dist-packages``, console scripts in ``usr/bin``) with a sorted ``RECORD`` of what it installed,
so the same wheel contents give the same files whatever order the zip held them in.
"""

from __future__ import annotations

import base64
import hashlib
import io
import posixpath
import re
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from email.parser import HeaderParser

from composer.errors import UnsafeArchive, UserError
from composer.package.manifest import check_relpath

SITE = "usr/lib/python3/dist-packages"      # Debian's python3 (3.13 in Debian 13) reads this
BINDIR = "usr/bin"
PYTHON = "/usr/bin/python3"
INSTALLER = b"vcomp\n"

MAX_MEMBERS = 20_000
MAX_BYTES = 256 * 2**20            # all members, uncompressed
MAX_METADATA = 2**20               # METADATA, WHEEL, entry_points.txt each
MAX_SCRIPTS = 256
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$")          # PEP 508, bounded
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]{0,63}$")
_SCRIPT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_OBJECT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
                     r"(?::([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*))?$")
PURE_TAG = re.compile(r"^py[0-9.]*(?:\.py[0-9]+)*-none-any$")
# where each ``NAME.data/KEY/`` directory of a wheel goes (relative to the package root)
DATA_DIRS = {"purelib": SITE, "platlib": SITE, "scripts": BINDIR, "data": "usr"}


@dataclass(frozen=True, slots=True, kw_only=True)
class WheelFile:
    path: str           # the member's path in the wheel
    data: bytes
    executable: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryPoint:
    name: str           # the script's name (usr/bin/NAME)
    module: str
    attr: str           # "" when the entry point names a module (run as python3 -m)


@dataclass(frozen=True, slots=True, kw_only=True)
class Wheel:
    name: str
    version: str
    dist_info: str      # NAME-VERSION.dist-info
    tags: tuple[str, ...]
    requires_python: str
    requires_dist: tuple[str, ...]
    scripts: tuple[EntryPoint, ...]
    files: tuple[WheelFile, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Installed:
    path: str           # relative to the package root
    data: bytes
    mode: int


def _member_problem(info: zipfile.ZipInfo) -> str:
    why = check_relpath(info.filename.rstrip("/"))
    if why:
        return f"path {why}"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "is a symbolic link"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "is a special file"
    if any(ord(c) < 32 for c in info.filename) or "," in info.filename:
        return "has a control character or comma in its name"
    return ""


def _members(data: bytes, origin: str) -> list[WheelFile]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise UnsafeArchive(f"{origin}: not a wheel (zip): {exc}", hint="build the project again") from None
    if len(infos) > MAX_MEMBERS:
        raise UnsafeArchive(f"{origin}: more than {MAX_MEMBERS} members", hint="split the project")
    files: list[WheelFile] = []
    seen: set[str] = set()
    total = 0
    for info in infos:
        problem = _member_problem(info)
        if problem:
            raise UnsafeArchive(f"{origin}: member {info.filename!r} {problem}",
                                hint="a wheel holds relative paths of regular files only; fix the project's packaging")
        if info.is_dir():
            continue
        if info.filename in seen:
            raise UnsafeArchive(f"{origin}: member {info.filename!r} is there twice", hint="build the wheel again")
        seen.add(info.filename)
        total += info.file_size
        if total > MAX_BYTES:
            raise UnsafeArchive(f"{origin}: more than {MAX_BYTES // 2**20} MiB uncompressed",
                                hint="leave data files out of the wheel")
        try:
            with archive.open(info) as member:
                body = member.read(info.file_size + 1)
        except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError) as exc:
            raise UnsafeArchive(f"{origin}: member {info.filename!r} cannot be read: {exc}",
                                hint="build the wheel again") from None
        if len(body) != info.file_size:
            raise UnsafeArchive(f"{origin}: member {info.filename!r} is not the size its header says",
                                hint="build the wheel again")
        files.append(WheelFile(path=info.filename, data=body, executable=bool((info.external_attr >> 16) & 0o111)))
    return files


def _text(files: Mapping[str, WheelFile], path: str, origin: str, *, required: bool = True) -> str:
    found = files.get(path)
    if found is None:
        if required:
            raise UnsafeArchive(f"{origin}: no {path}", hint="a wheel has NAME-VERSION.dist-info/METADATA and WHEEL")
        return ""
    if len(found.data) > MAX_METADATA:
        raise UnsafeArchive(f"{origin}: {path} is larger than {MAX_METADATA // 1024} KiB",
                            hint="keep the long description out of the metadata (readme)")
    try:
        return found.data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeArchive(f"{origin}: {path} is not UTF-8", hint="fix the project's metadata") from None


def _dist_info(files: list[WheelFile], origin: str) -> str:
    tops = sorted({f.path.split("/", 1)[0] for f in files if f.path.split("/", 1)[0].endswith(".dist-info")})
    if len(tops) != 1:
        raise UnsafeArchive(f"{origin}: {len(tops)} .dist-info directories ({', '.join(tops) or 'none'})",
                            hint="a wheel has exactly one NAME-VERSION.dist-info")
    return tops[0]


def _entry_points(text: str, origin: str) -> tuple[EntryPoint, ...]:
    """console_scripts and gui_scripts of entry_points.txt (an INI file; other groups are the program's own)."""
    found: dict[str, EntryPoint] = {}
    group = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            group = line.strip("[] ")
            continue
        if group not in ("console_scripts", "gui_scripts"):
            continue
        name, sep, value = (p.strip() for p in line.partition("="))
        value = value.split("[", 1)[0].strip()         # extras do not change what is run
        target = _OBJECT.match(value)
        if not sep or not _SCRIPT.match(name) or target is None:
            raise UnsafeArchive(f"{origin}: entry_points.txt line {number}: {line[:80]!r} is not NAME = module:attr",
                                hint="script names are 1-64 of A-Z a-z 0-9 . _ -, targets a module path")
        if name in found:
            raise UnsafeArchive(f"{origin}: entry_points.txt line {number}: script {name!r} twice",
                                hint="give each script one entry point")
        found[name] = EntryPoint(name=name, module=target.group(1), attr=target.group(2) or "")
        if len(found) > MAX_SCRIPTS:
            raise UnsafeArchive(f"{origin}: more than {MAX_SCRIPTS} scripts", hint="fewer console_scripts")
    return tuple(found[n] for n in sorted(found))


def read_wheel(data: bytes, origin: str) -> Wheel:
    """The checked contents and metadata of a pure-Python wheel (``origin`` names it in errors)."""
    files = _members(data, origin)
    by_path = {f.path: f for f in files}
    info = _dist_info(files, origin)
    wheel = HeaderParser().parsestr(_text(by_path, f"{info}/WHEEL", origin))
    meta = HeaderParser().parsestr(_text(by_path, f"{info}/METADATA", origin))
    name, version = str(meta.get("Name", "")).strip(), str(meta.get("Version", "")).strip()
    if not _NAME.match(name) or not _VERSION.match(version):
        raise UnsafeArchive(f"{origin}: METADATA Name {name[:80]!r} or Version {version[:80]!r} is not valid",
                            hint="a project name is 1-128 of A-Z a-z 0-9 . _ -; a version 1-64 characters")
    tags = tuple(str(t).strip() for t in wheel.get_all("Tag", []))
    if str(wheel.get("Root-Is-Purelib", "")).strip().lower() != "true" or not tags \
            or not all(PURE_TAG.match(t) for t in tags):
        raise UserError(f"{origin}: not a pure-Python wheel (Tag: {', '.join(tags)[:120] or 'none'})",
                        hint="compiled extensions are built for the target by a command source with the SDK "
                             "(docs/sdk.md); the python source kind packages pure-Python projects")
    data_dir = f"{info.removesuffix('.dist-info')}.data"
    for f in files:
        if f.path.startswith(data_dir + "/") and f.path.split("/")[1] not in DATA_DIRS:
            raise UserError(f"{origin}: {f.path}: .data/{f.path.split('/')[1]} is not installed by vcomp",
                            hint=f"a wheel's .data may hold {', '.join(sorted(DATA_DIRS))}")
    return Wheel(name=name, version=version, dist_info=info, tags=tags,
                 requires_python=str(meta.get("Requires-Python", "")).strip()[:200],
                 requires_dist=tuple(str(r).strip()[:200] for r in meta.get_all("Requires-Dist", []))[:1000],
                 scripts=_entry_points(_text(by_path, f"{info}/entry_points.txt", origin, required=False), origin),
                 files=tuple(sorted(files, key=lambda f: f.path)))


def script(entry: EntryPoint, python: str = PYTHON) -> bytes:
    """The ``usr/bin`` script of a console entry point (what pip writes, with the image's interpreter)."""
    if not entry.attr:
        return (f"#!{python}\nimport runpy\n\nif __name__ == \"__main__\":\n"
                f"    runpy.run_module({entry.module!r}, run_name=\"__main__\", alter_sys=True)\n").encode()
    head, _, _ = entry.attr.partition(".")
    return (f"#!{python}\nimport sys\nfrom {entry.module} import {head}\n\nif __name__ == \"__main__\":\n"
            f"    sys.exit({entry.attr}())\n").encode()


def _target(wheel: Wheel, path: str, site: str) -> str:
    data_dir = f"{wheel.dist_info.removesuffix('.dist-info')}.data/"
    if path.startswith(data_dir):
        key, _, rest = path[len(data_dir):].partition("/")
        return f"{DATA_DIRS[key]}/{rest}"
    return f"{site}/{path}"


def _shebang(data: bytes, python: str) -> bytes:
    """A wheel's scripts say ``#!python``: the installer names the interpreter."""
    if data.startswith((b"#!python\n", b"#!python ", b"#!pythonw")):
        return f"#!{python}".encode() + data[data.index(b"\n"):] if b"\n" in data else f"#!{python}\n".encode()
    return data


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def install(wheel: Wheel, *, site: str = SITE, python: str = PYTHON) -> tuple[Installed, ...]:
    """The files of ``wheel`` installed (sorted by path): its modules in ``site``, its scripts in usr/bin, a new
    INSTALLER and a RECORD listing them all, sorted; the wheel's own RECORD and its signatures are replaced."""
    dropped = {f"{wheel.dist_info}/{n}" for n in ("RECORD", "RECORD.jws", "RECORD.p7s", "INSTALLER")}
    out: dict[str, Installed] = {}
    for f in wheel.files:
        if f.path in dropped:
            continue
        target = _target(wheel, f.path, site)
        scripted = target.startswith(BINDIR + "/")
        data = _shebang(f.data, python) if scripted else f.data
        out[target] = Installed(path=target, data=data, mode=0o755 if scripted or f.executable else 0o644)
    for entry in wheel.scripts:
        path = f"{BINDIR}/{entry.name}"
        if path in out:
            raise UserError(f"{wheel.dist_info}: script {entry.name} is both an entry point and a file",
                            hint="keep one of them")
        out[path] = Installed(path=path, data=script(entry, python), mode=0o755)
    info = f"{site}/{wheel.dist_info}"
    out[f"{info}/INSTALLER"] = Installed(path=f"{info}/INSTALLER", data=INSTALLER, mode=0o644)
    record = f"{info}/RECORD"
    lines = sorted([*(f"{posixpath.relpath(p, site)},{_record_hash(i.data)},{len(i.data)}" for p, i in out.items()),
                    f"{posixpath.relpath(record, site)},,"])
    out[record] = Installed(path=record, data=("\n".join(lines) + "\n").encode(), mode=0o644)
    for path in out:
        why = check_relpath(path)
        if why:
            raise UnsafeArchive(f"{wheel.dist_info}: installed path {path!r} {why}", hint="fix the wheel's paths")
    return tuple(out[p] for p in sorted(out))


def record_digest(files: tuple[Installed, ...]) -> str:
    """The sha256 of what was installed (its RECORD names every file's hash): a package's provenance."""
    record = next(f for f in files if f.path.endswith(".dist-info/RECORD"))
    return hashlib.sha256(record.data).hexdigest()
