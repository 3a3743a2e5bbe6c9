"""What a build or an install needs from the repositories: verified indexes and the clients that fetch.

:class:`Sources` is the protocol; ``composer.solve.lock.RepositorySources`` (a profile's repositories)
and ``composer.pkgmgr.ops.RootSources`` (a root's recorded repositories) implement it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from composer.repo.client import RepositoryClient
from composer.solve.pool import SolvIndex


class Sources(Protocol):
    @property
    def clients(self) -> Mapping[str, RepositoryClient]:
        """repository name -> its verifying client"""
        ...

    def index(self, arch: str) -> SolvIndex:
        """The pool of every repository's verified index of ``arch``."""
        ...

    def lookup(self, arch: str, names: Iterable[str]) -> SolvIndex:
        """A pool with at least every entry called one of ``names`` (read from the sparse files when a
        repository's whole index is behind them or large)."""
        ...
