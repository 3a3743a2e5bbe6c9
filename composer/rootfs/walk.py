"""Walking below a directory descriptor one component at a time, never following a symlink.

``os.open(name, O_DIRECTORY|O_NOFOLLOW, dir_fd=parent)`` per component gives the semantics of
``openat2(RESOLVE_NO_SYMLINKS)`` (Python has no binding for it): a component that is a symlink or not a
directory raises :class:`Blocked`; a name that is empty, ``.``, ``..`` or holds a ``/`` is refused before
any system call. The extractor and :class:`composer.rootfs.Root` share this one implementation.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Sequence

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

Parts = tuple[str, ...]


class Blocked(Exception):
    """A path component is a symlink, not a directory, or not a plain name (``kind``: symlink, notdir, badname)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind
        self.parts: Parts = ()


def safe_name(name: str) -> bool:
    """One path component that cannot lead anywhere but into its directory."""
    return name not in ("", ".", "..") and "/" not in name and "\x00" not in name


def open_dir_at(parent_fd: int, name: str) -> int:
    """Open the directory ``name`` in ``parent_fd``; a symlink or a non-directory raises Blocked."""
    if not safe_name(name):
        raise Blocked("badname")
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        raise Blocked("symlink" if stat.S_ISLNK(st.st_mode) else "notdir") from None


def lstat_at(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


class Walker:
    """Open directories below ``base_fd`` one component at a time with O_NOFOLLOW.

    Keeps the last chain of directories open, so walking a sorted list of paths costs few system calls.
    ``before_mkdir(parent_parts, parent_fd)`` and ``made(parts)`` are told about every directory it creates
    (``create=True``); created directories get mode ``0o700`` until the caller sets their final mode.
    """

    def __init__(self, base_fd: int, *, before_mkdir: Callable[[Parts, int], None] | None = None,
                 made: Callable[[Parts], None] | None = None, new_mode: int = 0o700) -> None:
        self.base_fd = base_fd
        self.before_mkdir, self.made = before_mkdir, made
        self.new_mode = new_mode
        self.names: list[str] = []
        self.fds: list[int] = []

    def __enter__(self) -> Walker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, parts: Sequence[str], *, create: bool = False) -> int:
        n = 0
        while n < min(len(self.names), len(parts)) and self.names[n] == parts[n]:
            n += 1
        self._truncate(n)
        for i in range(n, len(parts)):
            parent = self.fds[-1] if self.fds else self.base_fd
            try:
                fd = self._child(parent, tuple(parts[:i]), parts[i], create)
            except Blocked as exc:
                exc.parts = tuple(parts[:i + 1])
                raise
            self.names.append(parts[i])
            self.fds.append(fd)
        return self.fds[-1] if self.fds else self.base_fd

    def _child(self, parent_fd: int, parent: Parts, name: str, create: bool) -> int:
        if not safe_name(name):
            raise Blocked("badname")
        try:
            return open_dir_at(parent_fd, name)
        except FileNotFoundError:
            if not create:
                raise
        if self.before_mkdir is not None:
            self.before_mkdir(parent, parent_fd)
        try:
            os.mkdir(name, self.new_mode, dir_fd=parent_fd)
        except FileExistsError:  # a dangling symlink, or made meanwhile: open it without following
            return open_dir_at(parent_fd, name)
        if self.made is not None:
            self.made((*parent, name))
        return open_dir_at(parent_fd, name)

    def _truncate(self, n: int) -> None:
        while len(self.fds) > n:
            os.close(self.fds.pop())
            self.names.pop()

    def close(self) -> None:
        self._truncate(0)


def readlink_in(base_fd: int, parts: Parts) -> str | None:
    """The target of ``parts`` below ``base_fd`` if it is a symlink reached without following one."""
    try:
        with Walker(base_fd) as walker:
            fd = walker.open(parts[:-1])
            if stat.S_ISLNK(os.stat(parts[-1], dir_fd=fd, follow_symlinks=False).st_mode):
                return os.readlink(parts[-1], dir_fd=fd)
    except (OSError, Blocked):
        pass
    return None
