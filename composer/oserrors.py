"""Operating-system faults as one clear line: the path, what failed and what to do.

A registry from errno to (what happened, how to fix it). The CLI turns every ``OSError`` that
escapes a command into a :class:`SystemFault` through :func:`describe`; inner code that knows
*which operation* failed wraps with :func:`fault` to add it (``writing the package cache``).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from composer.errors import SystemFault


@dataclass(frozen=True, slots=True, kw_only=True)
class Advice:
    what: str
    hint: str


ADVICE: dict[int, Advice] = {
    errno.ENOSPC: Advice(what="no space left on the device",
                         hint="free space on that file system (or set VCOMP_CACHE / choose another output directory) "
                              "and run again; the previous state is intact"),
    errno.EDQUOT: Advice(what="disk quota exceeded", hint="free space within your quota and run again"),
    errno.EROFS: Advice(what="the file system is read-only",
                        hint="remount it read-write or choose a writable directory"),
    errno.EACCES: Advice(what="permission denied",
                         hint="check the owner and mode of that path, or run as a user who may write there"),
    errno.EPERM: Advice(what="operation not permitted",
                        hint="check the owner, mode and attributes (chattr) of that path, or run as root"),
    errno.EXDEV: Advice(what="it is on another file system than its destination",
                        hint="keep the working directory, cache and output on one file system"),
    errno.ENOTDIR: Advice(what="a component of the path is a file where a directory is needed",
                          hint="move that file out of the way and run again"),
    errno.EISDIR: Advice(what="it is a directory where a file is needed",
                         hint="move that directory out of the way and run again"),
    errno.ENOENT: Advice(what="no such file or directory", hint="check the path; create it or fix the setting"),
    errno.EEXIST: Advice(what="it already exists", hint="move it out of the way and run again"),
    errno.ENOTEMPTY: Advice(what="the directory is not empty", hint="empty or move it and run again"),
    errno.EMFILE: Advice(what="too many open files in this process",
                         hint="raise the limit (ulimit -n 4096) and run again"),
    errno.ENFILE: Advice(what="too many open files on the system", hint="close other programs and run again"),
    errno.ELOOP: Advice(what="a symbolic link stands where vcomp refuses to follow one",
                        hint="replace the symlink with a real directory or file"),
    errno.ENAMETOOLONG: Advice(what="the path is too long", hint="use a shorter directory"),
    errno.EIO: Advice(what="input/output error from the device", hint="check the disk (dmesg) and run again"),
    errno.ENOMEM: Advice(what="out of memory", hint="close other programs or lower the VCOMP_LIMIT_* limits"),
    errno.ETXTBSY: Advice(what="the file is being executed", hint="stop the program that runs it and run again"),
    errno.EBUSY: Advice(what="the device or resource is busy", hint="unmount or stop what uses it and run again"),
    errno.EFBIG: Advice(what="the file is larger than this file system or RLIMIT_FSIZE allows",
                        hint="choose a file system that holds large files (not FAT) or raise the limit (ulimit -f)"),
    errno.ENOEXEC: Advice(what="it is not an executable for this machine",
                          hint="reinstall that program (its package), or fix PATH to find the right one"),
    errno.ESTALE: Advice(what="a stale network file handle", hint="remount the network file system and run again"),
}


def printable(name: object) -> str:
    """A path as text on one line: undecodable bytes and control characters escaped."""
    text = os.fsdecode(name) if isinstance(name, (str, bytes)) else str(name)
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode()
                   for c in text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


def place(exc: OSError) -> str:
    names = [n for n in (exc.filename, exc.filename2) if n is not None]
    if exc.errno == errno.ENOTDIR and len(names) == 1 and isinstance(names[0], (str, bytes)):
        names = [_file_in_the_way(os.fsdecode(names[0]))]
    return " -> ".join(printable(n) for n in names)


def _file_in_the_way(path: str) -> str:
    """For ENOTDIR the kernel names the whole path; name the component that is a file instead (the cache
    directory that is a regular file, not the cache entry below it)."""
    parts = path.split(os.sep)
    for i in range(1, len(parts)):
        prefix = os.sep.join(parts[:i]) or os.sep
        try:
            if not os.path.isdir(prefix) and os.path.lexists(prefix):
                return prefix
        except (OSError, ValueError):
            break
    return path


def _plain(exc: OSError) -> str:
    """What happened, for an errno outside the registry or an OSError raised with only a message."""
    if exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    text = " ".join(str(a) for a in exc.args) if exc.args else ""
    return " ".join(text.split())[:300] or type(exc).__name__


def describe(exc: OSError, doing: str = "") -> SystemFault:
    """One line for ``exc``: ``PATH: DOING: WHAT (strerror)`` with the hint from the registry."""
    advice = ADVICE.get(exc.errno or 0)
    what = advice.what if advice else _plain(exc)
    detail = f" [{errno.errorcode.get(exc.errno or 0, exc.errno)}]" if exc.errno else ""
    where = place(exc)
    parts = [p for p in (where, doing, f"{what}{detail}") if p]
    hint = advice.hint if advice else "check the path and run again"
    if not where:  # a bare write() or a library that dropped the name: say how to find out
        hint += " (the system did not say which file: rerun with --debug to see where)"
    return SystemFault(": ".join(parts), hint=hint)


def fault(exc: OSError, doing: str) -> SystemFault:
    """For ``raise fault(exc, "writing the image") from None`` where the operation is known."""
    return describe(exc, doing)
