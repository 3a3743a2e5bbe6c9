"""Exclusive locks between vcomp processes, apt/dpkg style.

One lock file per protected thing (a repository, a root, an images directory, a cache entry):
``flock(2)`` on it, so a lock dies with its process and a stale lock is simply taken over. The
holder writes ``PID command`` into the file so a second writer can say whom it waits for:
``waiting for the lock on repository 'repo' held by PID 123 (vcomp repo add ...)``. With
``--no-wait`` (or ``VCOMP_NO_WAIT=1``) it fails at once instead. Locks are not re-entrant: a
process must not take the same lock twice.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from composer import oserrors, settings
from composer.errors import LockBusy, UserError
from composer.fsutil import ensure_dir
from composer.notices import notice

NO_WAIT_ENV = settings.NO_WAIT.name
TIMEOUT_ENV = settings.LOCK_TIMEOUT.name     # seconds to wait before giving up; unset = wait forever
_POLL = 0.1

_settings = {"wait": True}


def configure(*, wait: bool) -> None:
    """Set by the CLI from ``--no-wait``; the environment variable also turns waiting off."""
    _settings["wait"] = wait


def waiting_allowed() -> bool:
    return _settings["wait"] and not settings.NO_WAIT.get()


def command_line() -> str:
    args = " ".join(sys.argv[1:])
    return (f"vcomp {args}" if args else "vcomp")[:200].replace("\n", " ")


def _holder(fd: int) -> str:
    try:
        raw = os.pread(fd, 256, 0).decode(errors="replace").strip()
    except OSError:
        return "another process"
    pid, _, cmd = raw.partition(" ")
    if not (pid.isascii() and pid.isdigit()):
        return "another process"
    cmd = oserrors.printable(cmd)[:200]  # another process wrote it: no escape sequences onto our terminal
    return f"PID {pid} ({cmd})" if cmd else f"PID {pid}"


def _timeout() -> float | None:
    return settings.LOCK_TIMEOUT.get()


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True


@contextlib.contextmanager
def hold(fd: int, what: str, *, say: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on the open file ``fd`` (which the caller closes afterwards)."""
    if not _try(fd):
        holder = _holder(fd)
        if not waiting_allowed():
            raise LockBusy(f"{what} is locked by {holder}",
                           hint="wait for it to finish, or run again without --no-wait to wait for it")
        (say or notice)(f"waiting for the lock on {what} held by {holder}")
        deadline = _timeout()
        start = time.monotonic()
        while not _try(fd):
            if deadline is not None and time.monotonic() - start > deadline:
                raise LockBusy(f"{what} is still locked by {_holder(fd)} after {deadline:g} s",
                               hint=f"wait for it to finish or raise {TIMEOUT_ENV}")
            time.sleep(_POLL)
    try:
        _note_holder(fd)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)


def _note_holder(fd: int) -> None:
    """Write ``PID command`` for the next waiter; only informative (the flock is the lock), so a full or
    quota-limited disk does not stop the operation here: it fails where it writes its data, if at all."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command_line()}\n".encode(), 0)


def _open(path: str | Path, what: str, dir_fd: int | None = None, *, shown: str | None = None) -> int:
    """The lock file, opened without following a symlink; a refusal as one line naming it."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
    except OSError as exc:
        if shown is not None:
            exc.filename, path = shown, shown
        if exc.errno == errno.ELOOP:
            raise UserError(f"{path}: the lock file of {what} is a symbolic link; vcomp refuses to follow it",
                           hint=f"remove the symlink {path} (vcomp recreates the lock file) and run again") from None
        raise oserrors.fault(exc, f"opening the lock file of {what}") from None


@contextlib.contextmanager
def exclusive_at(dir_fd: int, name: str, what: str, *, say: Callable[[str], None] | None = None,
                 shown: str | None = None) -> Iterator[None]:
    """The lock file ``name`` inside the directory ``dir_fd`` (a symlink there is refused); ``shown`` is the
    path errors name (default ``name``)."""
    fd = _open(name, what, dir_fd, shown=shown)
    try:
        with hold(fd, what, say=say):
            yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive(path: Path, what: str, *, say: Callable[[str], None] | None = None) -> Iterator[None]:
    """The lock file ``path`` (its directory is created; a symlinked lock file is refused)."""
    try:
        ensure_dir(path.parent)
    except OSError as exc:
        raise oserrors.fault(exc, f"creating the directory of the lock file of {what}") from None
    fd = _open(path, what)
    try:
        with hold(fd, what, say=say):
            yield
    finally:
        os.close(fd)
