"""The file:// transport (a row of :data:`composer.repo.transports.TRANSPORTS`): a local repository directory.

A missing file is a 404, as python-tuf's ngclient expects; a FIFO or a device is refused, never read (it
could block for ever or never end). Local reads have no deadline: the limits are for the network.
"""

from __future__ import annotations

import os
import stat
import urllib.parse
from collections.abc import Callable, Iterator

from tuf.api import exceptions as tuf_exc

from composer.fsutil import CHUNK
from composer.repo.deadlines import TransportLimits


def open_file(limits: TransportLimits) -> Callable[[str], Iterator[bytes]]:
    """The fetch function of the file row."""
    del limits  # a local read has no deadline
    return fetch_file


def fetch_file(url: str) -> Iterator[bytes]:
    """A regular file, opened at once (a missing one is a 404); a FIFO or device is refused, not read."""
    path = urllib.parse.unquote(urllib.parse.urlparse(url).path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise tuf_exc.DownloadHTTPError(f"{url}: not found", 404) from None
    except OSError as exc:
        raise tuf_exc.DownloadError(f"{url}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise tuf_exc.DownloadError(f"{url}: not a regular file")
    os.set_blocking(fd, True)
    return _read_fd(fd)


def _read_fd(fd: int) -> Iterator[bytes]:
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk
