"""``Root``: a directory opened once, and every operation inside it by root-relative path, never by host path.

Every path is checked by :func:`composer.rootfs.paths.path_problem`, then walked one component at a time
from the root's descriptor with ``O_DIRECTORY|O_NOFOLLOW`` (:mod:`composer.rootfs.walk`): a symlinked
component is refused with an error naming the root-relative path, whatever it points to. The last
component is never followed either: ``lstat``, ``readlink``, ``unlink`` and ``rename`` act on a symlink
itself, reads open with ``O_NOFOLLOW``, ``chmod``/``chown`` refuse a symlink and a file with other hard links
(which may be outside the root), and writes never open an existing file: they write a temporary file in
the same directory and rename it over the target.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from composer import oserrors
from composer.errors import UserError
from composer.rootfs.paths import path_problem, show, split
from composer.rootfs.walk import DIR_FLAGS, NEW_FILE_FLAGS, READ_FLAGS, Blocked, Walker, lstat_at, open_dir_at

CHUNK = 1 << 20
# what stands in the root explains these; the others (no space, read-only, permissions...) are the machine's
CONTENT_ERRNOS = frozenset({errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR, errno.ELOOP})
TMP_PREFIX = ".vpk-tmp-"
MAX_SYMLINKS = 40  # the kernel's limit for one path lookup
SYMLINK_HINT = ("vcomp never follows a symlink inside a root, image or staging tree; replace the symlink by a real "
                "directory (or remove it) and run the command again")


class UnsafePath(UserError):
    """A path inside a root cannot be reached without following a symlink, or is not a path inside it.

    ``component`` is the root-relative component that stopped the walk, ``kind`` what it is (symlink, notdir,
    badname), for callers that report it in their own words (``vcomp pkg verify``)."""

    component: str = ""
    kind: str = ""


class RootOSError(UserError, OSError):
    """A system call inside a root failed (missing file, directory not empty, no space, ...).

    It is an ``OSError`` (``errno`` is the system's) so callers can still catch it as one, and a UserError
    whose message names the root and the root-relative path, so it reaches the user as one clear line."""


def _wrapped(where: str, exc: OSError) -> RootOSError:
    machine = oserrors.ADVICE.get(exc.errno or 0) if exc.errno not in CONTENT_ERRNOS else None
    error = RootOSError(f"{where}: {machine.what} [{errno.errorcode[exc.errno or 0]}]", hint=machine.hint) \
        if machine else RootOSError(f"{where}: {exc.strerror or exc}",
                                    hint="check what stands at that path in the root, then run the command again")
    error.errno, error.strerror = exc.errno, exc.strerror
    return error


class Root:
    """A directory opened once (``O_DIRECTORY|O_NOFOLLOW``); the descriptor is kept until :meth:`close`."""

    def __init__(self, fd: int, shown: str) -> None:
        self.fd = fd
        self.shown = shown

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> Root:
        """Open the directory ``path`` (made, with its parents, when ``create``); its last component must not
        be a symlink."""
        if create:
            with contextlib.suppress(FileExistsError):
                os.makedirs(path, 0o755)
        try:
            fd = os.open(path, DIR_FLAGS)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePath(f"{path} is a symlink", hint="give the real directory, not a link to it") from None
            raise UserError(f"{path}: cannot open the directory ({exc.strerror})",
                            hint="give an existing directory") from None
        return cls(fd, str(path))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subdir(self, rel: str) -> Root:
        """The directory ``rel`` as a Root of its own."""
        with self._at(rel) as (pfd, name):
            try:
                fd = open_dir_at(pfd, name)
            except Blocked as exc:
                exc.parts = split(rel)
                raise self._blocked(rel, exc) from None
        return Root(fd, f"{self.shown}/{rel}")

    # ---------------------------------------------------------------- errors and walking

    def where(self, rel: str) -> str:
        return f"{self.shown}: {show(rel)}"

    def check(self, rel: str) -> str:
        """``rel`` when it is a relative, normalised path inside the root; UnsafePath otherwise."""
        why = path_problem(rel)
        if why:
            raise UnsafePath(f"{self.where(rel)} {why}, not a relative path inside the root",
                             hint="only relative, normalised paths (no '..', no leading '/') name files in a root")
        return rel

    def _blocked(self, rel: str, exc: Blocked) -> UnsafePath:
        error = self._blocked_error(rel, exc)
        error.component, error.kind = "/".join(exc.parts) or rel, exc.kind
        return error

    def _blocked_error(self, rel: str, exc: Blocked) -> UnsafePath:
        prefix = "/".join(exc.parts) or rel
        if exc.kind == "symlink":
            target = self._peek_link(exc.parts)
            return UnsafePath(f"{self.where(rel)}: {show(prefix)} is a symlink{target}, which vcomp never follows "
                              "inside a root", hint=SYMLINK_HINT)
        if exc.kind == "notdir":
            return UnsafePath(f"{self.where(rel)}: {show(prefix)} is not a directory",
                              hint="a file stands where a directory is needed; remove it first")
        return UnsafePath(f"{self.where(rel)} has an unsafe component", hint="give a normalised relative path")

    def _peek_link(self, parts: tuple[str, ...]) -> str:
        with contextlib.suppress(OSError, Blocked), Walker(self.fd) as walker:
            return f" (to {show(os.readlink(parts[-1], dir_fd=walker.open(parts[:-1])))})"
        return ""

    @contextlib.contextmanager
    def _at(self, rel: str, *, create: bool = False) -> Iterator[tuple[int, str]]:
        """(descriptor of ``rel``'s parent, its last name); every directory opened without following."""
        parts = split(self.check(rel))
        with Walker(self.fd, new_mode=0o755) as walker:
            try:
                pfd = walker.open(parts[:-1], create=create)
            except Blocked as exc:
                raise self._blocked(rel, exc) from None
            except OSError as exc:
                raise _wrapped(self.where(rel), exc) from None
            try:
                yield pfd, parts[-1]
            except OSError as exc:
                if isinstance(exc, UserError):
                    raise
                raise _wrapped(self.where(rel), exc) from None

    def _fd_of(self, rel: str) -> int:
        """A new descriptor for the directory ``rel`` ('' for the root itself)."""
        if rel == "":
            return os.dup(self.fd)
        with self._at(rel) as (pfd, name):
            try:
                return open_dir_at(pfd, name)
            except Blocked as exc:
                exc.parts = split(rel)
                raise self._blocked(rel, exc) from None

    # ---------------------------------------------------------------- reading

    def lstat(self, rel: str) -> os.stat_result | None:
        """The entry itself (never its symlink target), None when missing; '' is the root."""
        if rel == "":
            return os.stat(self.fd)
        try:
            with self._at(rel) as (pfd, name):
                return lstat_at(pfd, name)
        except RootOSError as exc:
            if exc.errno == errno.ENOENT:  # a missing parent directory
                return None
            raise

    def exists(self, rel: str) -> bool:
        return self.lstat(rel) is not None

    def is_dir(self, rel: str) -> bool:
        st = self.lstat(rel)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def is_file(self, rel: str) -> bool:
        st = self.lstat(rel)
        return st is not None and stat.S_ISREG(st.st_mode)

    def open_read(self, rel: str) -> BinaryIO:
        """The regular file ``rel``, opened with O_NOFOLLOW (a symlink, FIFO or device is refused)."""
        with self._at(rel) as (pfd, name):
            try:
                fd = os.open(name, READ_FLAGS, dir_fd=pfd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise UnsafePath(f"{self.where(rel)} is a symlink, which vcomp never follows inside a root",
                                     hint=SYMLINK_HINT) from None
                raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UnsafePath(f"{self.where(rel)} is not a regular file", hint="remove what stands there")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def read_bytes(self, rel: str, limit: int | None = None) -> bytes:
        with self.open_read(rel) as f:
            if limit is None:
                data = f.read()
            else:  # never allocate the limit up front: read what is there, in chunks, up to limit + 1
                parts: list[bytes] = []
                got = 0
                while got <= limit and (chunk := f.read(min(CHUNK, limit + 1 - got))):
                    parts.append(chunk)
                    got += len(chunk)
                data = b"".join(parts)
        if limit is not None and len(data) > limit:
            raise UserError(f"{self.where(rel)} is larger than {limit} bytes", hint="the file is hostile or corrupt")
        return data

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode()

    def sha256(self, rel: str) -> str | None:
        """The sha256 of the regular file ``rel``; None when it is missing or not a regular file."""
        st = self.lstat(rel)
        if st is None or not stat.S_ISREG(st.st_mode):
            return None
        h = hashlib.sha256()
        with self.open_read(rel) as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        return h.hexdigest()

    def readlink(self, rel: str) -> str:
        with self._at(rel) as (pfd, name):
            return os.readlink(name, dir_fd=pfd)

    def listdir(self, rel: str = "") -> list[str]:
        fd = self._fd_of(rel)
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)

    def resolve(self, rel: str) -> str:
        """``rel`` with its symlinks resolved as if the root were ``/`` (``openat2``'s RESOLVE_IN_ROOT): an
        absolute target starts again at the root, ``..`` stops at the root. The result names no symlink."""
        todo = list(reversed(split(self.check(rel))))
        cur: list[str] = []
        hops = 0
        while todo:
            comp = todo.pop()
            if comp in ("", "."):
                continue
            if comp == "..":
                if cur:
                    cur.pop()
                continue
            candidate = "/".join([*cur, comp])
            st = self.lstat(candidate)
            if st is None or not stat.S_ISLNK(st.st_mode):
                cur.append(comp)
                continue
            hops += 1
            if hops > MAX_SYMLINKS:
                raise UnsafePath(f"{self.where(rel)} is part of a symlink loop", hint="fix the symlinks in the tree")
            target = self.readlink(candidate)
            if target.startswith("/"):
                cur = []
            todo.extend(reversed(target.split("/")))
        if not cur:
            raise UnsafePath(f"{self.where(rel)} resolves to the root directory itself", hint="name a file")
        return "/".join(cur)

    def read_in_root(self, rel: str, limit: int | None = None) -> bytes:
        """The bytes of the regular file ``rel`` names, its symlinks resolved inside the root (never outside)."""
        return self.read_bytes(self.resolve(rel), limit)

    # ---------------------------------------------------------------- writing

    def write_bytes(self, rel: str, data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
        """Replace ``rel`` atomically: a temporary file in the same directory, fsync, rename over it.

        Missing parent directories are made (0755). An existing symlink at ``rel`` is replaced, not followed."""
        with self._at(rel, create=True) as (pfd, name):
            tmp = TMP_PREFIX + secrets.token_hex(8)
            fd = os.open(tmp, NEW_FILE_FLAGS, 0o600, dir_fd=pfd)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fchmod(out.fileno(), mode)
                    if durable:
                        os.fsync(out.fileno())
                os.rename(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=pfd)
                raise
            if durable:
                os.fsync(pfd)

    def write_text(self, rel: str, text: str, *, mode: int = 0o644) -> None:
        self.write_bytes(rel, text.encode(), mode=mode)

    def mkdir(self, rel: str, mode: int = 0o755) -> None:
        with self._at(rel) as (pfd, name):
            os.mkdir(name, 0o700, dir_fd=pfd)
            fd = open_dir_at(pfd, name)
            try:
                os.fchmod(fd, mode)
            finally:
                os.close(fd)

    def makedirs(self, rel: str, mode: int = 0o755) -> list[str]:
        """Make ``rel`` and its missing parents; return the ones made (outermost first)."""
        made: list[tuple[str, ...]] = []
        parts = split(self.check(rel))
        with Walker(self.fd, made=made.append) as walker:
            try:
                walker.open(parts, create=True)
                for p in made:
                    os.fchmod(walker.open(p), mode)
            except Blocked as exc:
                raise self._blocked(rel, exc) from None
            except OSError as exc:
                raise _wrapped(self.where(rel), exc) from None
        return ["/".join(p) for p in made]

    def symlink(self, target: str, rel: str) -> None:
        """A symlink ``rel -> target`` (the target is data: it is never resolved here)."""
        with self._at(rel) as (pfd, name):
            os.symlink(target, name, dir_fd=pfd)

    def unlink(self, rel: str) -> None:
        with self._at(rel) as (pfd, name):
            os.unlink(name, dir_fd=pfd)

    def rmdir(self, rel: str) -> None:
        with self._at(rel) as (pfd, name):
            os.rmdir(name, dir_fd=pfd)

    def rmtree(self, rel: str) -> None:
        """Remove ``rel`` and everything below it without following any symlink (a symlink is unlinked)."""
        with self._at(rel) as (pfd, name):
            st = lstat_at(pfd, name)
            if st is None:
                return
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(name, dir_fd=pfd)  # the fd-based implementation: never follows a symlink
            else:
                os.unlink(name, dir_fd=pfd)

    def rename(self, src: str, dst: str) -> None:
        move(self, src, self, dst)

    def link(self, src: str, dst: str) -> None:
        """A hard link ``dst`` to the file ``src``, both inside this root (a symlink is linked, not followed)."""
        with self._at(src) as (sfd, sname), self._at(dst) as (dfd, dname):
            os.link(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)

    def _metadata_target(self, pfd: int, name: str, rel: str, what: str) -> os.stat_result:
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePath(f"{self.where(rel)} is a symlink: vcomp does not {what} through it", hint=SYMLINK_HINT)
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            raise UnsafePath(f"{self.where(rel)} has {st.st_nlink} hard links: vcomp does not {what} a file "
                             "shared with other paths (one may be outside the root)",
                             hint="replace the hard link by a copy of the file")
        return st

    def chmod(self, rel: str, mode: int) -> None:
        """Change the mode of ``rel`` itself: refused for a symlink and a file with several hard links."""
        if rel == "":
            os.fchmod(self.fd, mode)
            return
        with self._at(rel) as (pfd, name):
            self._metadata_target(pfd, name, rel, "chmod")
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                if stat.S_ISLNK(os.fstat(fd).st_mode):  # swapped for a symlink since the check above
                    raise UnsafePath(f"{self.where(rel)} is a symlink: vcomp does not chmod through it",
                                     hint=SYMLINK_HINT)
                try:
                    os.chmod(f"/proc/self/fd/{fd}", mode)  # the inode opened above: nothing is resolved again
                except FileNotFoundError:  # no /proc: the name, checked above not to be a symlink
                    os.chmod(name, mode, dir_fd=pfd)
            finally:
                os.close(fd)

    def chown(self, rel: str, uid: int, gid: int) -> None:
        """Change the owner of ``rel`` itself (never through a symlink; refused with several hard links)."""
        if rel == "":
            os.fchown(self.fd, uid, gid)
            return
        with self._at(rel) as (pfd, name):
            self._metadata_target(pfd, name, rel, "chown")
            os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)

    def utime(self, rel: str, ns: tuple[int, int]) -> None:
        """Set the times of ``rel`` itself (a symlink's own times, never its target's)."""
        if rel == "":
            os.utime(self.fd, ns=ns)
            return
        with self._at(rel) as (pfd, name):
            os.utime(name, ns=ns, dir_fd=pfd, follow_symlinks=False)


def move(src_root: Root, src: str, dst_root: Root, dst: str) -> None:
    """``rename(2)`` of ``src`` (in ``src_root``) to ``dst`` (in ``dst_root``); neither end is followed.

    An existing file or symlink at ``dst`` is replaced, a directory is not (the kernel refuses)."""
    with src_root._at(src) as (sfd, sname), dst_root._at(dst) as (dfd, dname):
        st = lstat_at(dfd, dname)
        if st is not None and stat.S_ISDIR(st.st_mode) and not stat.S_ISDIR(
                os.stat(sname, dir_fd=sfd, follow_symlinks=False).st_mode):
            raise UnsafePath(f"{dst_root.where(dst)} is a directory: vcomp does not replace it with a file",
                             hint="remove the directory first")
        os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
