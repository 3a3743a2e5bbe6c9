"""Extract a signed ``.vpk`` into an image root without ever writing outside it.

The installer's primitive. A package signed by an attacker's own key still passes
``check_signature()`` without a trusted key, and its manifest may list hostile paths that the
payload matches exactly, so extraction defends on its own, whatever the manifest says:

1. Open the package and check its signature before anything reads the payload.
2. Check the whole manifest before touching the disk: clean relative paths, no duplicates, no
   member below a symlink or a non-directory, symlink targets that stay inside the root (lexically
   and when following the package's and the root's own symlinks), hard links only to regular files
   extracted earlier from the same package.
3. Stream the payload into a staging directory inside the root (``.vpk-staging-*``), re-checking
   every member and walking every directory with ``O_NOFOLLOW`` so nothing can be written through
   a symlink. Device nodes and FIFOs are not created: they are returned for the package database.
4. Only when the whole payload verified (its sha256 included) merge the staging tree into the
   root: check every target first (a symlink in the root is never followed; an existing file is
   only replaced with ``overwrite=True``), then create missing directories and ``rename`` each
   file and symlink into place, keeping a journal. Any error rolls the root back to what it was
   (replaced files restored, created entries removed, directory times restored) and removes the
   staging directory.

Files and directories get their manifest mode (set-id bits included) and the package's
SOURCE_DATE_EPOCH as mtime, so the same packages always give the same tree. Ownership is not
changed: the installer runs as root and files stay root-owned.

The root must not be modified concurrently (the installer holds its lock); even then, a concurrent
writer cannot make extraction follow a symlink, because every directory is opened with
``O_NOFOLLOW`` relative to its verified parent.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import zstandard

from composer.errors import InvalidPackage, UnsafeArchive, UserError, VerificationError
from composer.fsutil import CHUNK
from composer.package import archive
from composer.package.manifest import TYPES, Entry, Manifest, check_relpath
from composer.package.metadata import Metadata
from composer.rootfs import Root
from composer.rootfs.paths import PATH_MAX, reserved_problem
from composer.rootfs.paths import path_problem as rootfs_path_problem
from composer.rootfs.walk import (
    DIR_FLAGS,
    NEW_FILE_FLAGS,
    Blocked,
    Walker,
    lstat_at,
    readlink_in,
    safe_name,
)
from composer.trust.keys import PublicKey

STAGING_PREFIX = ".vpk-staging-"
BACKUP_PREFIX = ".vpk-old-"
COPY_PREFIX = ".vpk-new-"
RESERVED_PREFIXES = (STAGING_PREFIX, BACKUP_PREFIX, COPY_PREFIX)
NOT_CREATED = ("chardev", "blockdev", "fifo")
MAX_SYMLINKS = 40  # the kernel's limit for one path lookup
HOSTILE_HINT = "the package is hostile or corrupt: do not install it and report it to its publisher"
CONFLICT_HINT = "another package or the user owns that path: remove it first, or extract with overwrite"


Parts = tuple[str, ...]


class FileConflict(InvalidPackage):
    """The package would replace something already in the root (a file, or a directory by a file)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtractResult:
    """What one extraction did. Paths are package-relative, in manifest order."""

    metadata: Metadata
    manifest: Manifest
    signer: PublicKey
    files: tuple[str, ...]          # regular files, symlinks and hard links placed in the root
    dirs_created: tuple[str, ...]   # directories that did not exist before (listed or implied)
    devices: tuple[Entry, ...]      # chardev, blockdev and fifo entries: recorded, not created
    bytes_written: int              # bytes of regular-file data


def extract_package(pkg_path: Path, root: Path | Root, *, trusted: PublicKey | None = None,
                    max_installed: int | None = None,
                    overwrite: bool = False) -> ExtractResult:
    """Verify ``pkg_path`` and install its files under ``root``; on any error leave ``root`` as it was."""
    origin = str(pkg_path)
    root_fd = _open_root(root)
    try:
        with archive.open_package(pkg_path) as reader:
            signer = reader.check_signature(trusted)
            header = reader.header
            epoch = reader.c.mtime
            if epoch is None:  # pragma: no cover - set by the first header read
                raise InvalidPackage(f"{origin}: no timestamp in the container")
            _preflight(header.manifest.entries, origin, root_fd)
            root_st = os.stat(root_fd)
            stage_name, stage_fd = _make_staging(root_fd)
            stager = _Stager(origin, stage_fd, epoch)
            shown = root if isinstance(root, Path) else Path(root.shown)
            committer = _Committer(origin=origin, root=shown, root_fd=root_fd, stage_fd=stage_fd, epoch=epoch,
                                   overwrite=overwrite, root_times=_times(root_st))
            try:
                try:
                    with reader.payload(max_installed) as stream:
                        for entry, fobj in stream.members():
                            stager.add(entry, fobj)
                finally:
                    stager.close()
                committer.commit(stager.placed)
            except BaseException as exc:
                with contextlib.suppress(OSError):
                    _remove_staging(root_fd, stage_name, stage_fd)
                with contextlib.suppress(OSError):
                    os.utime(root_fd, ns=_times(root_st))
                if isinstance(exc, OSError) and exc.filename is None:
                    # fd-relative writes carry no path: name the tree being written
                    raise OSError(exc.errno, exc.strerror, str(shown)) from exc
                raise
            _remove_staging(root_fd, stage_name, stage_fd)
            if not committer.changed_root:  # only the staging directory came and went
                with contextlib.suppress(OSError):
                    os.utime(root_fd, ns=_times(root_st))
    finally:
        os.close(root_fd)
    return ExtractResult(metadata=header.metadata, manifest=header.manifest, signer=signer,
                         files=tuple(committer.files), dirs_created=tuple(committer.dirs_created),
                         devices=tuple(stager.devices), bytes_written=stager.bytes_written)


# ---------------------------------------------------------------- checks on names


def show(path: str) -> str:
    """``path`` quoted for a message, control characters escaped."""
    return "'" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in path) + "'"


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a safe package-relative path, or None when it is."""
    why = rootfs_path_problem(path)
    if why:
        return why
    if any(p.startswith(RESERVED_PREFIXES) for p in path.split("/")):
        return "uses a name reserved for extraction (.vpk-staging-, .vpk-old-, .vpk-new-)"
    return check_relpath(path)


def symlink_problem(link: str, target: str, lookup: Callable[[str], str | None]) -> str | None:
    """Why the symlink ``link -> target`` could lead outside the root, or None.

    ``target`` is resolved from the link's directory (absolute targets from the root, since the
    tree is an image root): first lexically, then following symlinks through ``lookup``, which maps
    a root-relative path to its symlink target, or None when it is not a symlink.
    """
    if not target:
        return "is a symlink with an empty target"
    if "\x00" in target:
        return "is a symlink whose target contains a NUL byte"
    try:
        if len(target.encode("utf-8")) > PATH_MAX:
            return "is a symlink whose target is too long"
    except UnicodeEncodeError:
        return "is a symlink whose target is not valid UTF-8"
    base = link.split("/")[:-1]
    cur = [] if target.startswith("/") else list(base)
    for comp in target.split("/"):
        if comp in ("", "."):
            continue
        if comp != "..":
            cur.append(comp)
        elif cur:
            cur.pop()
        else:
            return f"is a symlink to {show(target)}, which points outside the root"
    cur = [] if target.startswith("/") else list(base)
    todo = list(reversed(target.split("/")))
    hops, via = 0, ""
    while todo:
        comp = todo.pop()
        if comp in ("", "."):
            continue
        if comp == "..":
            if not cur:
                return f"is a symlink to {show(target)}, which leads outside the root through the symlink {show(via)}"
            cur.pop()
            continue
        nxt = lookup("/".join([*cur, comp]))
        if nxt is None:
            cur.append(comp)
            continue
        hops += 1
        if hops > MAX_SYMLINKS:
            return f"is a symlink to {show(target)}, which is part of a symlink loop"
        via = "/".join([*cur, comp])
        if nxt.startswith("/"):
            cur = []
        todo.extend(reversed(nxt.split("/")))
    return None


def _unsafe(origin: str, path: str, reason: str) -> UnsafeArchive:
    return UnsafeArchive(f"{origin}: {show(path)} {reason}", hint=HOSTILE_HINT)


def _blocked(origin: str, path: str, exc: Blocked, where: str) -> UnsafeArchive:
    prefix = show("/".join(exc.parts))
    if exc.kind == "symlink":
        return _unsafe(origin, path, f"would be written through a symlink ({prefix} in {where}, never followed)")
    if exc.kind == "notdir":
        return _unsafe(origin, path, f"is below {prefix}, which is not a directory in {where}")
    return _unsafe(origin, path, f"has an unsafe component ({prefix}: empty, '.', '..' or absolute)")


def _no_symlinks(_path: str) -> str | None:
    return None


class _Tracker:
    """What the members seen so far make of each path; refuses any member that does not fit."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.kinds: dict[str, str] = {}  # path -> entry type, or "implied" for a parent not listed
        self.targets: dict[str, str] = {}

    def admit(self, entry: Entry, lookup: Callable[[str], str | None]) -> None:
        path, origin = entry.path, self.origin
        why = path_problem(path)
        if why:
            raise _unsafe(origin, path, why)
        if entry.type not in TYPES:
            raise _unsafe(origin, path, f"has an unknown type {entry.type!r}")
        why = reserved_problem(path, entry.type)
        if why:
            raise _unsafe(origin, path, why)
        if not 0 <= entry.mode <= 0o7777:
            raise _unsafe(origin, path, f"has an invalid mode {entry.mode:o}")
        parts = path.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            kind = self.kinds.get(prefix)
            if kind is None:
                self.kinds[prefix] = "implied"
            elif kind == "symlink":
                raise _unsafe(origin, path, "would be written through a symlink planted by an earlier member "
                              f"({show(prefix)} -> {show(self.targets[prefix])})")
            elif kind not in ("dir", "implied"):
                raise _unsafe(origin, path, f"is below {show(prefix)}, which is a {kind}, not a directory")
        prev = self.kinds.get(path)
        if prev == "implied" and entry.type != "dir":
            raise _unsafe(origin, path, f"is a {entry.type} but an earlier member needs it to be a directory")
        if prev is not None and prev != "implied":
            raise _unsafe(origin, path, "appears twice in the package (duplicate member)")
        if entry.type == "symlink":
            why = symlink_problem(path, entry.target, lookup)
            if why:
                raise _unsafe(origin, path, why)
            self.targets[path] = entry.target
        elif entry.type == "hardlink":
            if path_problem(entry.target):
                raise _unsafe(origin, path, f"is a hard link to {show(entry.target)}, which "
                              f"{path_problem(entry.target)}")
            if self.kinds.get(entry.target) not in ("file", "hardlink"):
                raise _unsafe(origin, path, f"is a hard link to {show(entry.target)}, which is not a regular "
                              "file extracted earlier from this package")
        self.kinds[path] = entry.type


def _preflight(entries: Sequence[Entry], origin: str, root_fd: int) -> None:
    """Refuse a hostile manifest before anything is read from the payload or written to disk."""
    links = {e.path: e.target for e in entries if e.type == "symlink"}
    package_paths: set[str] = set()
    for e in entries:
        parts = e.path.split("/")
        package_paths.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    in_root: dict[str, str | None] = {}

    def lookup(path: str) -> str | None:
        if path in package_paths:  # the package's own entry (or implied directory) wins
            return links.get(path)
        if path not in in_root:
            in_root[path] = readlink_in(root_fd, tuple(path.split("/")))
        return in_root[path]

    tracker = _Tracker(origin)
    for entry in entries:
        tracker.admit(entry, lookup)


# ---------------------------------------------------------------- walking without following symlinks


# The confined walk is composer.rootfs.walk's (Walker, Blocked, open_dir_at, ...), shared with every
# other operation on a root.


def _times(st: os.stat_result) -> tuple[int, int]:
    return st.st_atime_ns, st.st_mtime_ns


def _open_root(root: Path | Root) -> int:
    if isinstance(root, Root):  # already opened without following its last component
        return os.dup(root.fd)
    try:
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise UserError(f"{root}: cannot extract into it ({exc.strerror})",
                        hint="the extraction root must be an existing directory") from None


def _make_staging(root_fd: int) -> tuple[str, int]:
    for _ in range(100):
        name = STAGING_PREFIX + secrets.token_hex(8)
        try:
            os.mkdir(name, 0o700, dir_fd=root_fd)
        except FileExistsError:
            continue
        return name, os.open(name, DIR_FLAGS, dir_fd=root_fd)
    raise OSError(errno.EEXIST, "cannot create a staging directory")  # pragma: no cover


def _remove_staging(root_fd: int, name: str, fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    shutil.rmtree(name, dir_fd=root_fd)


# ---------------------------------------------------------------- staging


class _Stager:
    """Write payload members into the staging directory, re-checking each one."""

    def __init__(self, origin: str, stage_fd: int, epoch: int) -> None:
        self.origin, self.stage_fd = origin, stage_fd
        self.stamp = (epoch * 1_000_000_000, epoch * 1_000_000_000)  # atime, mtime in ns
        self.tracker = _Tracker(origin)
        self.walker = Walker(stage_fd)
        self.placed: list[Entry] = []
        self.devices: list[Entry] = []
        self.bytes_written = 0

    def close(self) -> None:
        self.walker.close()

    def blocked(self, path: str, exc: Blocked, where: str) -> UnsafeArchive:
        return _blocked(self.origin, path, exc, where)

    def add(self, entry: Entry, fobj: IO[bytes] | None) -> None:
        self.tracker.admit(entry, _no_symlinks)  # the same checks again, member by member
        if entry.type in NOT_CREATED:
            self.devices.append(entry)
            return
        parts = entry.path.split("/")
        if not all(map(safe_name, parts)):  # last line of defence, whatever the checks above said
            raise _unsafe(self.origin, entry.path, "has an empty, '.' or '..' component or is absolute")
        try:
            pfd = self.walker.open(parts[:-1], create=True)
        except Blocked as exc:
            raise self.blocked(entry.path, exc, "the staging tree") from None
        name = parts[-1]
        if entry.type == "dir":
            try:
                os.mkdir(name, 0o700, dir_fd=pfd)
            except FileExistsError:
                st = lstat_at(pfd, name)
                if st is None or not stat.S_ISDIR(st.st_mode):
                    raise _unsafe(self.origin, entry.path, "appears twice in the package (duplicate member)") \
                        from None
        elif lstat_at(pfd, name) is not None:  # O_EXCL, symlink() and link() would refuse too
            raise _unsafe(self.origin, entry.path, "appears twice in the package (duplicate member)")
        elif entry.type == "file":
            self._write(pfd, name, entry, fobj)
        elif entry.type == "symlink":
            os.symlink(entry.target, name, dir_fd=pfd)
            os.utime(name, ns=self.stamp, dir_fd=pfd, follow_symlinks=False)
        else:
            self._hardlink(pfd, name, entry)
        self.placed.append(entry)

    def _write(self, pfd: int, name: str, entry: Entry, fobj: IO[bytes] | None) -> None:
        if fobj is None:
            raise VerificationError(f"{self.origin}: {show(entry.path)} has no data in the payload")
        try:
            fd = os.open(name, NEW_FILE_FLAGS, 0o600, dir_fd=pfd)
        except FileExistsError:
            raise _unsafe(self.origin, entry.path, "appears twice in the package (duplicate member)") from None
        written = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := self._read(fobj, entry):
                written += len(chunk)
                if written > entry.size:
                    raise _unsafe(self.origin, entry.path, f"is larger than its manifest entry ({entry.size} "
                                  "bytes)")
                out.write(chunk)
            if written != entry.size:
                raise VerificationError(f"{self.origin}: {show(entry.path)} is {written} bytes, the manifest "
                                        f"says {entry.size}", hint="the package was modified or truncated")
            out.flush()
            os.fchmod(out.fileno(), entry.mode)
            os.utime(out.fileno(), ns=self.stamp)
        self.bytes_written += written

    def _read(self, fobj: IO[bytes], entry: Entry) -> bytes:
        # Errors raised while we read a member happen outside archive.py's generator, which cannot
        # translate them: do it here so they surface as InvalidPackage.
        try:
            return fobj.read(CHUNK)
        except InvalidPackage:
            raise
        except (zstandard.ZstdError, tarfile.TarError, EOFError, OSError) as exc:
            raise VerificationError(f"{self.origin}:payload.tar.zst: corrupt payload in {show(entry.path)} "
                                    f"({exc})", hint="the package was modified or truncated") from None

    def _hardlink(self, pfd: int, name: str, entry: Entry) -> None:
        # The target is looked up in the staging tree only: a hard link never reaches outside it.
        tparts = entry.target.split("/")
        with Walker(self.stage_fd) as walker:
            try:
                if not all(map(safe_name, tparts)):
                    raise Blocked("badname")
                tfd = walker.open(tparts[:-1])
                st = lstat_at(tfd, tparts[-1])
            except (Blocked, FileNotFoundError, NotADirectoryError):
                st = None
            if st is None or not stat.S_ISREG(st.st_mode):
                raise _unsafe(self.origin, entry.path, f"is a hard link to {show(entry.target)}, which is not a "
                              "regular file extracted earlier from this package")
            os.link(tparts[-1], name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)


# ---------------------------------------------------------------- committing into the root


@dataclass(slots=True)
class _Placed:
    parent: Parts
    name: str
    backup: tuple[str, str] | None = None  # ("stage" | "beside", name) of the replaced file's backup


class _Committer:
    """Merge the staging tree into the root; undo everything if any step fails."""

    def __init__(self, *, origin: str, root: Path, root_fd: int, stage_fd: int, epoch: int, overwrite: bool,
                 root_times: tuple[int, int]) -> None:
        self.origin, self.root, self.root_fd, self.stage_fd = origin, root, root_fd, stage_fd
        self.overwrite = overwrite
        self.stamp = (epoch * 1_000_000_000, epoch * 1_000_000_000)
        self.token = secrets.token_hex(6)
        self.counter = 0
        self.times: dict[Parts, tuple[int, int]] = {(): root_times}  # existing dirs we modify
        self.created: list[Parts] = []
        self.created_set: set[Parts] = set()
        self.journal: list[_Placed | Parts] = []  # _Placed, or the Parts of a created directory
        self.files: list[str] = []
        self.dirs_created: list[str] = []
        self.changed_root = False
        self.backup_fd: int | None = None
        self.chmodded = False
        self.stamped: set[Parts] = set()  # directories given the epoch as mtime

    # -- bookkeeping for rollback

    def _remember(self, parent: Parts, fd: int) -> None:
        if parent not in self.created_set and parent not in self.times:
            self.times[parent] = _times(os.stat(fd))
        if not parent:
            self.changed_root = True

    def _made(self, parts: Parts) -> None:
        self.created.append(parts)
        self.created_set.add(parts)
        self.journal.append(parts)
        self.dirs_created.append("/".join(parts))

    def _next_name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.token}-{self.counter}"

    def commit(self, entries: Sequence[Entry]) -> None:
        replace = self._plan(entries)
        try:
            with Walker(self.root_fd, before_mkdir=self._remember, made=self._made) as walker, \
                    Walker(self.stage_fd) as source:
                for entry in entries:
                    self._apply(entry, walker, source, entry.path in replace)
                self._finalize(entries, walker)
        except Blocked as exc:  # a directory swapped for a symlink under us, say
            error = _blocked(self.origin, "/".join(exc.parts), exc, str(self.root))
            for problem in self._rollback():
                error.add_note(f"rollback: {problem}")
            raise error from None
        except BaseException as exc:
            for problem in self._rollback():
                exc.add_note(f"rollback: {problem}")
            raise
        self._drop_backups()

    # -- plan: check every target before changing anything

    def _conflict(self, path: str, reason: str) -> FileConflict:
        return FileConflict(f"{self.origin}: {show(path)} {reason} in {self.root}", hint=CONFLICT_HINT)

    def _plan(self, entries: Sequence[Entry]) -> set[str]:
        state: dict[Parts, str] = {}  # "dir" | "missing" | "symlink" | "other"
        replace: set[str] = set()
        with Walker(self.root_fd) as walker:

            def probe(parts: Parts, path: str) -> str:
                if parts in state:
                    return state[parts]
                if parts[:-1] and state.get(parts[:-1]) == "missing":
                    kind = "missing"
                else:
                    try:
                        if not safe_name(parts[-1]):
                            raise Blocked("badname")
                        st = lstat_at(walker.open(parts[:-1]), parts[-1])
                    except Blocked as exc:
                        exc.parts = exc.parts or parts
                        raise _blocked(self.origin, path, exc, str(self.root)) from None
                    kind = ("missing" if st is None else "symlink" if stat.S_ISLNK(st.st_mode)
                            else "dir" if stat.S_ISDIR(st.st_mode) else "other")
                state[parts] = kind
                return kind

            for entry in entries:
                path, parts = entry.path, tuple(entry.path.split("/"))
                for i in range(1, len(parts)):
                    kind = probe(parts[:i], path)
                    prefix = "/".join(parts[:i])
                    if kind == "symlink":
                        raise _unsafe(self.origin, path, f"would be written through {show(prefix)}, a symlink "
                                      f"in {self.root} (symlinks in the root are never followed)")
                    if kind == "other":
                        raise self._conflict(path, f"needs {show(prefix)} to be a directory, but it is a file")
                kind = probe(parts, path)
                if entry.type == "dir":
                    if kind == "symlink":
                        raise _unsafe(self.origin, path, f"is a directory in the package but a symlink in "
                                      f"{self.root} (symlinks in the root are never followed)")
                    if kind == "other":
                        raise self._conflict(path, "is a directory in the package but a file")
                elif kind == "dir":
                    raise self._conflict(path, "would replace a directory")
                elif kind != "missing":
                    if not self.overwrite:
                        raise self._conflict(path, "would overwrite an existing file")
                    replace.add(path)
                if entry.type != "dir":
                    state[parts] = "planned"
        return replace

    # -- apply

    def _apply(self, entry: Entry, walker: Walker, source: Walker, replace: bool) -> None:
        path, parts = entry.path, tuple(entry.path.split("/"))
        parent, name = parts[:-1], parts[-1]
        if not all(map(safe_name, parts)):
            raise _unsafe(self.origin, path, "has an empty, '.' or '..' component or is absolute")
        try:
            pfd = walker.open(parent, create=True)
        except Blocked as exc:
            raise _blocked(self.origin, path, exc, str(self.root)) from None
        if entry.type == "dir":
            st = lstat_at(pfd, name)
            if st is not None and stat.S_ISDIR(st.st_mode):
                return
            if st is not None and stat.S_ISLNK(st.st_mode):
                raise _unsafe(self.origin, path, f"is a directory in the package but a symlink in {self.root} "
                              "(symlinks in the root are never followed)")
            if st is not None:
                raise self._conflict(path, "is a directory in the package but a file")
            walker.open(parts, create=True)  # creates it through before_mkdir/made
            return
        self._remember(parent, pfd)
        current = lstat_at(pfd, name)
        if current is not None and (not replace or stat.S_ISDIR(current.st_mode)):
            raise self._conflict(path, "would overwrite an existing file (it appeared during extraction)")
        sfd = source.open(parent)
        placed = _Placed(parent, name)
        if current is not None:
            placed.backup = self._backup(pfd, name)
            self.journal.append(placed)
        self._move(entry, sfd, pfd, name)
        if placed.backup is None:
            self.journal.append(placed)
        self.files.append(path)

    def _backup(self, pfd: int, name: str) -> tuple[str, str]:
        """Keep the file ``name`` is about to replace, for rollback: a hard link in the staging tree."""
        bname = self._next_name(BACKUP_PREFIX)
        try:
            if self.backup_fd is None:
                os.mkdir(BACKUP_PREFIX + "dir", 0o700, dir_fd=self.stage_fd)
                self.backup_fd = os.open(BACKUP_PREFIX + "dir", DIR_FLAGS, dir_fd=self.stage_fd)
            os.link(name, bname, src_dir_fd=pfd, dst_dir_fd=self.backup_fd, follow_symlinks=False)
            return ("stage", bname)
        except OSError:  # another file system, or no hard links: keep it beside, under a reserved name
            os.rename(name, bname, src_dir_fd=pfd, dst_dir_fd=pfd)
            return ("beside", bname)

    def _move(self, entry: Entry, sfd: int, pfd: int, name: str) -> None:
        try:
            os.replace(name, name, src_dir_fd=sfd, dst_dir_fd=pfd)
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
        # The target directory is on another file system (a mount inside the root): make a copy
        # beside the target, then rename it into place.
        tmp = self._next_name(COPY_PREFIX)
        try:
            if entry.type == "file":
                src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=sfd)
                with os.fdopen(src, "rb") as fin, \
                        os.fdopen(os.open(tmp, NEW_FILE_FLAGS, 0o600, dir_fd=pfd), "wb") as fout:
                    shutil.copyfileobj(fin, fout, CHUNK)
                    fout.flush()
                    os.fchmod(fout.fileno(), entry.mode)
                    os.utime(fout.fileno(), ns=self.stamp)
            elif entry.type == "symlink":
                os.symlink(entry.target, tmp, dir_fd=pfd)
                os.utime(tmp, ns=self.stamp, dir_fd=pfd, follow_symlinks=False)
            else:  # a hard link: link to the target already placed in the root
                tparts = entry.target.split("/")
                with Walker(self.root_fd) as walker:
                    tfd = walker.open(tparts[:-1])
                    st = lstat_at(tfd, tparts[-1])
                    if st is None or not stat.S_ISREG(st.st_mode):
                        raise _unsafe(self.origin, entry.path, f"is a hard link to {show(entry.target)}, which is "
                                      f"not a regular file in {self.root}")
                    os.link(tparts[-1], tmp, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            os.replace(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=pfd)
            raise

    def _finalize(self, entries: Sequence[Entry], walker: Walker) -> None:
        """Directory modes and times, once nothing more is written into them."""
        modes = {tuple(e.path.split("/")): e.mode for e in entries if e.type == "dir"}
        self.chmodded = True
        for parts in self.created:
            fd = walker.open(parts)
            os.fchmod(fd, modes.get(parts, 0o755))
            os.utime(fd, ns=self.stamp)
            self.stamped.add(parts)
        for parts in modes:
            if parts in self.created_set:
                continue
            fd = walker.open(parts)
            self._remember(parts, fd)
            with contextlib.suppress(PermissionError):  # not ours to restamp: keep its time
                os.utime(fd, ns=self.stamp)
                self.stamped.add(parts)

    def _drop_backups(self) -> None:
        """After success: forget the replaced files (staging backups go with the staging tree)."""
        if self.backup_fd is not None:
            os.close(self.backup_fd)
            self.backup_fd = None
        restamp: set[Parts] = set()
        with Walker(self.root_fd) as walker:
            for item in self.journal:
                if isinstance(item, _Placed) and item.backup and item.backup[0] == "beside":
                    with contextlib.suppress(OSError, Blocked):
                        os.unlink(item.backup[1], dir_fd=walker.open(item.parent))
                        restamp.add(item.parent)
            for parts in restamp & self.stamped:
                with contextlib.suppress(OSError, Blocked):
                    os.utime(walker.open(parts), ns=self.stamp)

    # -- rollback

    def _rollback(self) -> list[str]:
        problems: list[str] = []
        with Walker(self.root_fd) as walker:
            if self.chmodded:  # directories we made may no longer be writable
                for parts in self.created:
                    with contextlib.suppress(OSError, Blocked):
                        os.fchmod(walker.open(parts), 0o700)
            for item in reversed(self.journal):
                try:
                    if isinstance(item, _Placed):
                        fd = walker.open(item.parent)
                        if item.backup is None:
                            os.unlink(item.name, dir_fd=fd)
                        elif item.backup[0] == "beside":
                            os.replace(item.backup[1], item.name, src_dir_fd=fd, dst_dir_fd=fd)
                        else:
                            assert self.backup_fd is not None
                            os.replace(item.backup[1], item.name, src_dir_fd=self.backup_fd, dst_dir_fd=fd)
                    else:
                        os.rmdir(item[-1], dir_fd=walker.open(item[:-1]))
                except (OSError, Blocked) as exc:
                    what = "/".join((*item.parent, item.name) if isinstance(item, _Placed) else item)
                    problems.append(f"could not undo {show(what)}: {exc}")
            for parts, ns in sorted(self.times.items(), key=lambda kv: -len(kv[0])):
                with contextlib.suppress(OSError, Blocked):
                    os.utime(walker.open(parts), ns=ns)
        if self.backup_fd is not None:
            os.close(self.backup_fd)
            self.backup_fd = None
        return problems


def check_entries(entries: Sequence[Entry], origin: str) -> None:
    """The whole-manifest safety checks of extraction (paths, links, hard links), without extracting.

    Used at upload, so a repository refuses a package whose links would escape an image root.
    """
    import tempfile
    with tempfile.TemporaryDirectory(prefix="vcomp-check-") as tmp:
        fd = _open_root(Path(tmp))
        try:
            _preflight(entries, origin, fd)
        finally:
            os.close(fd)
