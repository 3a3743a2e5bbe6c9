"""The deadlines and rates of one download, shared by every transport (see docs/security/transport.md).

The limits have defaults and are changed per run by ``VCOMP_HTTP_<FIELD>`` environment variables
(``VCOMP_HTTP_HEADER_SECONDS=30``), read through :data:`composer.settings.HTTP`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from composer import settings

ENV_PREFIX = settings.HTTP.name


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportLimits:
    """Deadlines and rates of one request (seconds, bytes, bytes per second)."""

    header_seconds: float = 10.0     # connect + send the request + receive the status line and headers
    window_seconds: float = 5.0      # the body must bring min_rate * window_seconds bytes in every window
    min_rate: float = 1024.0         # bytes per second, measured over windows of window_seconds
    max_seconds: float = 3600.0      # absolute cap on one request, headers and body
    drain_bytes: int = 64 << 10      # an error response body up to this size is read to keep the connection

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TransportLimits:
        """The defaults, overridden by ``VCOMP_HTTP_<FIELD>`` environment variables."""
        values: dict[str, float | int] = {}
        for f in dataclasses.fields(cls):
            value = settings.HTTP.get(f.name.upper(), environ=environ)
            if value is not None:
                values[f.name] = int(value) if f.type in ("int", int) else value
        return cls(**values)  # type: ignore[arg-type]
