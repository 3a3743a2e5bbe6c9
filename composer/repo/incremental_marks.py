"""How the index role marks a whole index that is behind the sparse index (composer/repo/incremental.py):
``custom: {"current": false}`` in its signed target entry. Pure; shared by the publisher and the client."""

from __future__ import annotations

from tuf.api.metadata import TargetFile

CURRENT = "current"


def whole_current(info: TargetFile) -> bool:
    """False only when the entry says the whole index is behind (an entry without the mark is current)."""
    custom = info.custom if isinstance(info.custom, dict) else {}
    return custom.get(CURRENT) is not False


def marked_behind(info: TargetFile) -> TargetFile:
    """``info`` marked as behind (same bytes, same hashes)."""
    return TargetFile(length=info.length, hashes=dict(info.hashes), path=info.path,
                      unrecognized_fields={"custom": {CURRENT: False}})
