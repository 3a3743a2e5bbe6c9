"""Queries over a root's package database: list, info, files, owns, depends, rdepends, orphans, verify.

Every function takes the records (name -> record, as ``composer.pkgmgr.install.package_record`` writes them)
and returns frozen values with ``to_dict()`` for ``--json``; only ``verify`` reads the root. Output is sorted,
and paths are shown absolute (``/usr/bin/x``) although records store them relative.

Dependencies in force are the required ones plus the optional ones that an enabled feature turns on; a record
may list its enabled features under ``features`` (none when absent). A dependency is satisfied by an installed
package of that name or one that provides it; versions are not compared (the lock already chose them).

``verify`` never follows a symlink: it reads the root through ``composer.rootfs.Root`` (every parent directory
opened with ``O_NOFOLLOW`` from the root's descriptor, files opened with ``O_NOFOLLOW``), so a planted
``etc -> /`` cannot make it read outside the root. Device nodes and FIFOs are skipped: the installer does not
create them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import os
import posixpath
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.errors import UserError
from composer.fsutil import CHUNK
from composer.package.actions import RUNTIME
from composer.package.metadata import Dependency
from composer.repo.index import close_names
from composer.rootfs import Root, UnsafePath

Record = Mapping[str, Any]
Records = Mapping[str, Record]
NOT_CREATED = ("chardev", "blockdev", "fifo")  # the installer records them but does not create them


class _Plain:
    """``to_dict()`` for the result dataclasses below (JSON-ready: tuples become lists)."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _plain(self)
        return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageRow(_Plain):
    name: str
    version: str
    arch: str
    manual: bool
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageInfo(_Plain):
    name: str
    version: str
    arch: str
    description: str
    license: str
    reason: str
    manual: bool
    repository: str
    signer: str
    sha256: str
    size: int
    installed_size: int
    dependencies: tuple[Dependency, ...]
    provides: tuple[str, ...]
    capabilities: tuple[str, ...]
    files: int
    config_files: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        out = _Plain.to_dict(self)
        out["dependencies"] = {d.name: d.to_value() for d in self.dependencies}
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class FileRow(_Plain):
    path: str
    type: str
    target: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Owners(_Plain):
    path: str
    packages: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Need(_Plain):
    """One dependency in force and the installed packages that satisfy it (none: unresolved)."""

    dependency: str
    requirement: str
    providers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependencies(_Plain):
    name: str
    resolved: tuple[Need, ...]
    unresolved: tuple[Need, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependent(_Plain):
    """``package`` depends on ``dependency``, which the queried package is or provides."""

    package: str
    dependency: str
    requirement: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReverseDependencies(_Plain):
    name: str
    dependents: tuple[Dependent, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem(_Plain):
    path: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageCheck(_Plain):
    """What differs from a package's record. Changed config files are listed but leave the package clean;
    a missing one (config or not) does not."""

    name: str
    changed: tuple[Problem, ...] = ()
    missing: tuple[Problem, ...] = ()
    config_changed: tuple[Problem, ...] = ()
    extra: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not (self.changed or self.missing or self.extra)

    def to_dict(self) -> dict[str, Any]:
        return {**_Plain.to_dict(self), "clean": self.clean}


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport(_Plain):
    packages: tuple[PackageCheck, ...]

    @property
    def clean(self) -> bool:
        return all(p.clean for p in self.packages)

    def to_dict(self) -> dict[str, Any]:
        return {"packages": [p.to_dict() for p in self.packages], "clean": self.clean}


# ---------------------------------------------------------------- reading records


def _require(records: Records, name: str) -> Record:
    if name in records:
        return records[name]
    close = close_names(name, records)
    raise UserError(f"package '{name}' is not installed in this root",
                    hint=f"did you mean {' or '.join(close)}?" if close else "list the installed packages")


def _package_field(record: Record, key: str, default: Any) -> Any:
    """A ``[package]`` field of the metadata (``metadata.package.KEY``, or ``metadata.KEY`` when flat)."""
    meta = record.get("metadata") or {}
    return (meta.get("package") or {}).get(key, meta.get(key, default))


def _dependencies(record: Record) -> tuple[Dependency, ...]:
    deps = (record.get("metadata") or {}).get("dependencies") or {}
    return tuple(Dependency.from_value(name, value) for name, value in sorted(deps.items()))


def _enabled(record: Record) -> frozenset[str]:
    """The dependency names the record's enabled features turn on (features may enable other features)."""
    table = (record.get("metadata") or {}).get("features") or {}
    todo, seen, names = list(record.get("features") or ()), set[str](), set[str]()
    while todo:
        feature = todo.pop()
        if feature in seen:
            continue
        seen.add(feature)
        for item in table.get(feature, ()):
            name = str(item).split("/", 1)[0]
            names.add(name)
            todo.append(name)
    return frozenset(names)


def _in_force(record: Record) -> tuple[Dependency, ...]:
    enabled = _enabled(record)
    return tuple(d for d in _dependencies(record) if not d.optional or d.name in enabled)


def _providers(records: Records) -> dict[str, tuple[str, ...]]:
    """Name -> the installed packages called so or providing it."""
    table: dict[str, set[str]] = {}
    for name, record in records.items():
        for provided in (name, *_package_field(record, "provides", ())):
            table.setdefault(str(provided), set()).add(name)
    return {k: tuple(sorted(v)) for k, v in table.items()}


def _row(name: str, record: Record) -> PackageRow:
    return PackageRow(name=name, version=str(record.get("version", "")), arch=str(record.get("arch", "")),
                      manual=bool(record.get("manual", False)), reason=str(record.get("reason", "")))


def _show(path: str) -> str:
    return "/" + path


# ---------------------------------------------------------------- list, info, files, owns


def list_packages(records: Records, *, manual: bool | None = None) -> tuple[PackageRow, ...]:
    """Every installed package, or only the manual (True) or automatic (False) ones."""
    rows = (_row(name, records[name]) for name in sorted(records))
    return tuple(r for r in rows if manual is None or r.manual is manual)


def info(records: Records, name: str) -> PackageInfo:
    record = _require(records, name)
    entries = record.get("files") or ()
    return PackageInfo(
        name=name, version=str(record.get("version", "")), arch=str(record.get("arch", "")),
        description=str(_package_field(record, "description", "")), license=str(_package_field(record, "license", "")),
        reason=str(record.get("reason", "")), manual=bool(record.get("manual", False)),
        repository=str(record.get("repository", "")), signer=str(record.get("signer", "")),
        sha256=str(record.get("sha256", "")), size=int(record.get("size", 0)),
        installed_size=int(record.get("installed_size", sum(int(e.get("size", 0)) for e in entries))),
        dependencies=_dependencies(record), provides=tuple(sorted(_package_field(record, "provides", ()))),
        capabilities=tuple(sorted(record.get("capabilities") or ())), files=len(entries),
        config_files=tuple(sorted(_show(p) for p in record.get("config") or {})))


def files(records: Records, name: str) -> tuple[FileRow, ...]:
    entries = _require(records, name).get("files") or ()
    rows = (FileRow(path=_show(e["path"]), type=e["type"], target=e.get("target", "")) for e in entries)
    return tuple(sorted(rows, key=lambda r: r.path))


def _owners(records: Records) -> dict[str, tuple[str, ...]]:
    """Relative path -> the packages listing it (directories may have several)."""
    table: dict[str, set[str]] = {}
    for name, record in records.items():
        for entry in record.get("files") or ():
            table.setdefault(entry["path"], set()).add(name)
    return {k: tuple(sorted(v)) for k, v in table.items()}


def normalise(path: str) -> str:
    """A path as records store it: relative, no ``.``, ``..`` or duplicate slashes ('' for the root)."""
    return posixpath.normpath("/" + path.lstrip("/")).lstrip("/")


def owns(records: Records, path: str) -> Owners:
    rel = normalise(path)
    table = _owners(records)
    if rel not in table:
        raise UserError(f"no package owns {_show(rel)}", hint=_unowned_hint(rel, table))
    return Owners(path=_show(rel), packages=table[rel])


def _unowned_hint(rel: str, table: Mapping[str, tuple[str, ...]]) -> str:
    parent = posixpath.dirname(rel)
    siblings = [p for p in table if posixpath.dirname(p) == parent]
    close = close_names(rel, siblings)
    if close:
        return "did you mean " + " or ".join(_show(p) for p in close) + "?"
    while parent and parent not in table:
        parent = posixpath.dirname(parent)
    if parent:
        return (f"the nearest owned directory, {_show(parent)}, belongs to {', '.join(table[parent])}; "
                "the path was made after installation")
    return "no installed package lists it: it was made after installation, or the path is mistyped"


# ---------------------------------------------------------------- dependencies


def depends(records: Records, name: str) -> Dependencies:
    """The installed packages that satisfy ``name``'s dependencies in force; unresolved ones apart."""
    providers = _providers(records)
    needs = [Need(dependency=d.name, requirement=d.requirement, providers=providers.get(d.name, ()))
             for d in _in_force(_require(records, name))]
    return Dependencies(name=name, resolved=tuple(n for n in needs if n.providers),
                        unresolved=tuple(n for n in needs if not n.providers))


def rdepends(records: Records, name: str) -> ReverseDependencies:
    """The installed packages with a dependency in force that ``name`` is or provides."""
    record = _require(records, name)
    satisfies = {name, *map(str, _package_field(record, "provides", ()))}
    found = [Dependent(package=other, dependency=d.name, requirement=d.requirement)
             for other in sorted(records) for d in _in_force(records[other]) if d.name in satisfies]
    return ReverseDependencies(name=name, dependents=tuple(found))


def orphans(records: Records) -> tuple[PackageRow, ...]:
    """Automatic packages that no manual package needs, through any chain of dependencies or provides."""
    providers = _providers(records)
    reached = {name for name, record in records.items() if record.get("manual", False)}
    todo = sorted(reached)
    while todo:
        for dep in _in_force(records[todo.pop()]):
            fresh = [p for p in providers.get(dep.name, ()) if p not in reached]
            reached.update(fresh)
            todo.extend(fresh)
    return tuple(_row(name, records[name]) for name in sorted(records) if name not in reached)


# ---------------------------------------------------------------- verify: reading the root without following links


_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"), (stat.S_ISCHR, "chardev"),
    (stat.S_ISBLK, "blockdev"), (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"))


class _Unreachable(Exception):
    """A parent component is a symlink or not a directory: the path cannot be reached safely."""


def _kind(st: os.stat_result) -> str:
    return next((name for test, name in _KINDS if test(st.st_mode)), "unknown")


@contextlib.contextmanager
def _reach(root: Root) -> Iterator[None]:
    """Turn the layer's refusal into verify's own words (``/etc is a symlink, not a directory``)."""
    try:
        yield
    except UnsafePath as exc:
        what = {"symlink": "a symlink", "notdir": "not a directory"}.get(exc.kind, "")
        if exc.kind == "symlink":
            raise _Unreachable(f"{_show(exc.component)} is a symlink, not a directory (not followed)") from None
        if what:
            raise _Unreachable(f"{_show(exc.component)} is {what}") from None
        raise _Unreachable(exc.message.removeprefix(f"{root.shown}: ")) from None


def _lstat(root: Root, rel: str) -> os.stat_result | None:
    with _reach(root):
        return root.lstat(rel)


def _readlink(root: Root, rel: str) -> str:
    with _reach(root):
        return root.readlink(rel)


def _sha256(root: Root, rel: str, st: os.stat_result) -> str:
    """The hash of the regular file ``rel`` (the one ``st`` describes), never through a symlink."""
    with _reach(root), root.open_read(rel) as f:
        now = os.fstat(f.fileno())
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            raise OSError(errno.ESTALE, "replaced while verifying")
        h = hashlib.sha256()
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _listdir(root: Root, rel: str) -> list[str]:
    with _reach(root):
        return root.listdir(rel)


# ---------------------------------------------------------------- verify: comparing entries


def _mode_problems(entry: Mapping[str, Any], st: os.stat_result) -> list[str]:
    want, have = int(str(entry["mode"]), 8), stat.S_IMODE(st.st_mode)
    return [] if want == have else [f"mode {have:04o}, expected {want:04o}"]


def _check_file(root: Root, entry: Mapping[str, Any], st: os.stat_result, digest: str) -> list[str]:
    out = _mode_problems(entry, st)
    if st.st_size != int(entry.get("size", 0)):
        return [*out, f"size {st.st_size}, expected {entry.get('size', 0)}"]
    try:
        if _sha256(root, entry["path"], st) != digest:
            out.append("sha256 differs")
    except (OSError, _Unreachable) as exc:
        out.append(f"cannot be read ({exc})")
    return out


def _check_dir(_root: Root, entry: Mapping[str, Any], st: os.stat_result, _digest: str) -> list[str]:
    return _mode_problems(entry, st)


def _check_symlink(root: Root, entry: Mapping[str, Any], _st: os.stat_result, _digest: str) -> list[str]:
    target = _readlink(root, entry["path"])
    return [] if target == entry.get("target", "") else [f"points to {target}, expected {entry.get('target', '')}"]


def _check_hardlink(root: Root, entry: Mapping[str, Any], st: os.stat_result, _digest: str) -> list[str]:
    try:
        other = _lstat(root, entry["target"])
    except _Unreachable:
        other = None
    if other is None or (other.st_dev, other.st_ino) != (st.st_dev, st.st_ino):
        return [f"is no longer a hard link to {_show(entry['target'])}"]
    return []


_Check = Callable[[Root, Mapping[str, Any], os.stat_result, str], list[str]]
_CHECKS: dict[str, _Check] = {"file": _check_file, "dir": _check_dir, "symlink": _check_symlink,
                              "hardlink": _check_hardlink}
_DISK_KIND = {"hardlink": "file"}  # what each entry type looks like on disk, when not itself


def _check_entry(root: Root, entry: Mapping[str, Any], digest: str) -> tuple[str, Problem] | None:
    """("missing" | "changed", problem) for one manifest entry, or None when it matches."""
    path = entry["path"]
    try:
        st = _lstat(root, path)
    except _Unreachable as exc:
        return "missing", Problem(path=_show(path), detail=f"not reachable: {exc}")
    except OSError as exc:
        return "missing", Problem(path=_show(path), detail=f"cannot be inspected ({exc.strerror})")
    if st is None:
        return "missing", Problem(path=_show(path), detail="not found")
    want, have = _DISK_KIND.get(entry["type"], entry["type"]), _kind(st)
    if want != have:
        return "changed", Problem(path=_show(path), detail=f"is a {have}, expected a {want}")
    try:
        details = _CHECKS[entry["type"]](root, entry, st, digest)
    except (OSError, _Unreachable) as exc:
        details = [f"cannot be read ({exc})"]
    return ("changed", Problem(path=_show(path), detail="; ".join(details))) if details else None


def _extra(root: Root, directory: str, owned: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The members of ``directory`` no package owns (none when it cannot be listed safely)."""
    try:
        names = _listdir(root, directory)
    except (OSError, _Unreachable):
        return []
    return [_show(f"{directory}/{n}") for n in names if f"{directory}/{n}" not in owned]


def _system_state(directory: str) -> bool:
    """What the running system keeps there is not extra: the run-time directories (/proc, /run, /tmp...) and
    /var (a service's data: nginx makes /var/lib/nginx/body when it starts)."""
    top = directory.split("/", 1)[0]
    return top in RUNTIME or top == "var"


def declared_modes(records: Records) -> dict[str, str]:
    """The modes the packages' tmpfiles actions give existing paths (``z``, and ``d`` on a shipped directory):
    what the build applied, so what an installed file's mode is expected to be (pure)."""
    modes: dict[str, str] = {}
    for record in records.values():
        for t in (record.get("metadata") or {}).get("actions", {}).get("tmpfiles", ()):
            if t.get("type") in ("z", "d") and "mode" in t:
                modes[str(t["path"]).strip("/")] = str(t["mode"])
    return modes


def _verify_package(root: Root, name: str, record: Record, owned: Mapping[str, tuple[str, ...]],
                    modes: Mapping[str, str]) -> PackageCheck:
    config: Mapping[str, str] = record.get("config") or {}
    found: dict[str, list[Problem]] = {"changed": [], "missing": [], "config_changed": []}
    extra: list[str] = []
    for entry in record.get("files") or ():
        if entry["type"] in NOT_CREATED:
            continue
        path = entry["path"]
        if path in modes:
            entry = {**entry, "mode": modes[path]}
        result = _check_entry(root, entry, config.get(path, entry.get("sha256", "")))
        if path in RUNTIME and result is not None and result[1].detail.startswith("mode "):
            result = None   # a mount point (/proc, /tmp...): its mode is the mounted file system's
        if result is not None:
            found["config_changed" if path in config and result[0] == "changed" else result[0]].append(result[1])
        if entry["type"] == "dir" and owned.get(path) == (name,) and (result is None or result[0] != "missing") \
                and not _system_state(path):
            extra += _extra(root, path, owned)
    return PackageCheck(name=name, changed=_sorted(found["changed"]), missing=_sorted(found["missing"]),
                        config_changed=_sorted(found["config_changed"]), extra=tuple(sorted(extra)))


def _sorted(problems: Iterable[Problem]) -> tuple[Problem, ...]:
    return tuple(sorted(problems, key=lambda p: (p.path, p.detail)))


def verify(root: Path, records: Records, names: Sequence[str] = ()) -> VerifyReport:
    """Compare the root with the records of ``names`` (every package when empty)."""
    unknown = sorted({n for n in names if n not in records})
    if unknown:
        close = sorted({c for n in unknown for c in close_names(n, records)})
        raise UserError(f"not installed in this root: {', '.join(unknown)}",
                        hint=f"did you mean {' or '.join(close)}?" if close else "list the installed packages")
    owned, modes = _owners(records), declared_modes(records)
    with Root.open(root) as tree:
        checks = [_verify_package(tree, n, records[n], owned, modes) for n in sorted(set(names) or records)]
    return VerifyReport(packages=tuple(checks))
