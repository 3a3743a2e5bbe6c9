"""Reading access logs (the I/O edge of :mod:`composer.stats.clf`): bounded lines, gzip-rotated files too."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

from composer.errors import UserError
from composer.stats.clf import MAX_LINE

MAX_LOG_BYTES = 4 << 30   # per file, decompressed: a runaway (or hostile) log is refused, not read forever


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))   # the caller's with-block closes it
    return path.open("rb")


def read_lines(path: Path) -> Iterator[bytes]:
    """The lines of a log file (``.gz`` decompressed); a line longer than MAX_LINE is cut to MAX_LINE + 1
    bytes (so the parser counts it as too long) and the rest of it skipped without buffering it."""
    try:
        raw = _open(path)
    except OSError as exc:
        raise UserError(f"{path}: cannot read the access log ({exc.strerror})",
                        hint="pass the access log file(s) of 'vcomp repo serve' or of your web server") from None
    total = 0
    with raw:
        try:
            while line := raw.readline(MAX_LINE + 2):
                total += len(line)
                if total > MAX_LOG_BYTES:
                    raise UserError(f"{path}: more than {MAX_LOG_BYTES >> 30} GiB of log",
                                    hint="split it (logrotate) and pass the parts")
                if not line.endswith(b"\n") and len(line) > MAX_LINE:
                    while (rest := raw.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                        total += len(rest)
                yield line
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise UserError(f"{path}: unreadable access log ({exc})",
                            hint="a truncated .gz? pass the files that decompress") from None
