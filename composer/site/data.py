"""The seam through which the site shows what other parts know about a package: advisories (issue 19 item 1),
quality metrics and licence details (items 3 to 6).

A provider implements :class:`SiteData`; :data:`PROVIDERS` lists the factories the site asks, in order, and
their answers are concatenated. Until those parts exist the only provider is :class:`NoData`, which answers
nothing, and the pages say "none published". Plugging one in is one row here: a factory taking the repository
client (to read its signed advisory feed, for instance) and returning a :class:`SiteData`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from composer.repo.client import RepositoryClient
    from composer.repo.index import IndexEntry


@dataclass(frozen=True, slots=True, kw_only=True)
class Advisory:
    """One advisory as the site shows it (OSV's fields that matter to a reader)."""

    id: str                     # e.g. CVE-2025-1234 or an OSV id
    package: str
    summary: str
    severity: str               # e.g. "high"; "" when unknown
    affected: tuple[str, ...]   # versions of the package it affects, as the repository writes them
    fixed: str                  # the version that fixes it ("" when none yet)
    references: tuple[str, ...] = ()   # URLs (shown as text links only when http(s))


@dataclass(frozen=True, slots=True, kw_only=True)
class Metric:
    """One quality figure of a package version: a label and its value as text (e.g. "hardening", "4/5")."""

    label: str
    value: str


class SiteData(Protocol):
    def advisories(self, name: str) -> Sequence[Advisory]:
        """Every advisory about package ``name`` (any version)."""
        ...

    def metrics(self, entry: IndexEntry) -> Sequence[Metric]:
        """Quality metrics of one package version (lint findings, hardening, reproducibility, ...)."""
        ...


class NoData:
    """The provider of nothing: the pages still render, saying that none is published."""

    def advisories(self, name: str) -> Sequence[Advisory]:
        del name
        return ()

    def metrics(self, entry: IndexEntry) -> Sequence[Metric]:
        del entry
        return ()


Factory = Callable[["RepositoryClient | None"], SiteData]
PROVIDERS: list[Factory] = []
"""More providers the site asks (a plugin's, say), after the advisory feed and the quality metrics
(composer/site/providers.py: ``site_data``)."""


@dataclass(frozen=True, slots=True)
class Combined:
    """Several providers as one (their answers concatenated, in order)."""

    parts: tuple[SiteData, ...]

    def advisories(self, name: str) -> Sequence[Advisory]:
        return tuple(a for p in self.parts for a in p.advisories(name))

    def metrics(self, entry: IndexEntry) -> Sequence[Metric]:
        return tuple(m for p in self.parts for m in p.metrics(entry))
