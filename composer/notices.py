"""Notices: the one way library code tells the user something that is not its result (a wait for a lock,
a repository that cannot be reached, a damaged cache entry rebuilt).

Library code never prints: it takes a ``say``/``warn`` callback, and where none is given it calls
:func:`notice`. The CLI installs its writer with :func:`use` (``composer.cli.main``); without one (the
library used directly, a test) a notice is written to stderr, here and nowhere else.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

Say = Callable[[str], None]

_writer: list[Say] = []


def use(writer: Say | None) -> None:
    """Send every notice to ``writer`` (None: back to the default, stderr)."""
    _writer[:] = [writer] if writer is not None else []


def notice(line: str) -> None:
    """One line for the user, through the installed writer."""
    if _writer:
        _writer[0](line)
        return
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
