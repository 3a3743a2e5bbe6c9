"""What every CLI module shares: stdout and the build settings from the environment (exit codes:
composer.errors, 0 no changes, 1 error, 2 changes, 3 policy violation; only the CLI chooses them)."""

from __future__ import annotations

import sys
from pathlib import Path

from composer.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_NO_CHANGES, EXIT_OK, EXIT_POLICY

__all__ = ["EXIT_CHANGES", "EXIT_ERROR", "EXIT_NO_CHANGES", "EXIT_OK", "EXIT_POLICY", "epoch", "image_cache", "out"]


def out(text: str = "") -> None:
    line = f"{text}\n"
    try:
        sys.stdout.write(line)
    except UnicodeEncodeError:  # a name that is not valid UTF-8 (surrogate-escaped bytes): shown escaped
        encoding = sys.stdout.encoding or "utf-8"
        sys.stdout.write(line.encode(encoding, "backslashreplace").decode(encoding))
    sys.stdout.flush()


def epoch() -> int:
    from composer.fsutil import source_date_epoch
    return source_date_epoch()


def image_cache() -> Path:
    from composer.package.build import default_cache
    return default_cache() / "images"
