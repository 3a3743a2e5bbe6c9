"""What every plugin returns, and the version of the interface (re-exported by :mod:`composer.plugins.api`).

Kept apart from :mod:`composer.plugins.api` so that the registries (which import this through
:mod:`composer.plugins.registry`) do not import the row types of each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

API_VERSION = 1
"""The version of the plugin interface this vcomp offers (docs/plugins.md says what a version promises)."""

R_co = TypeVar("R_co", covariant=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plugin(Generic[R_co]):
    """What an entry point names: the row a plugin adds to one registry, and the interface it was written for.

    ``api_version`` is the :data:`API_VERSION` the plugin was written against (write the literal, not
    ``api.API_VERSION``: it is the plugin's promise, checked when it loads). ``row`` is an instance of the row
    type of the entry point's group (:data:`composer.plugins.api.GROUPS`), its name equal to the entry point's.
    """

    api_version: int
    row: R_co
