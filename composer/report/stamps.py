"""Times in attestations: SOURCE_DATE_EPOCH as RFC 3339 UTC (the only time a build states)."""

from __future__ import annotations

import datetime


def iso_time(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
