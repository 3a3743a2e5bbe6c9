"""The site's providers (:mod:`composer.site.data`): the repository's signed advisory feed matched to the versions
it serves (issue 19 item 1), and each package version's quality metrics (items 4 to 6). Both read through the
verifying client, as the pages do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from composer.advisory.feed import Feed
from composer.advisory.match import Package, audit
from composer.site.data import PROVIDERS, Advisory, Combined, Metric, NoData, SiteData

if TYPE_CHECKING:
    from composer.repo.client import RepositoryClient
    from composer.repo.index import IndexEntry

MAX_REFERENCES = 8


@dataclass(frozen=True, slots=True)
class FeedData:
    """Every advisory naming a package, with the served versions it covers and the versions that fix it."""

    feed: Feed
    served: Sequence[IndexEntry]

    def advisories(self, name: str) -> Sequence[Advisory]:
        versions = {(e.version, e.version_scheme) for e in self.served if e.name == name}
        packages = [Package(name=name, version=v, scheme=s) for v, s in sorted(versions)]
        hits = audit(packages, self.feed.advisories)
        covered: dict[str, set[str]] = {}
        fixed: dict[str, set[str]] = {}
        for f in hits:
            covered.setdefault(f.id, set()).add(f.package.version)
            fixed.setdefault(f.id, set()).update(f.fixed)
        rows = []
        for a in self.feed.advisories:
            if a.withdrawn or not any(x.name == name for x in a.affected):
                continue
            refs = tuple(str(r.get("url", "")) for r in a.to_dict().get("references", ())[:MAX_REFERENCES]
                         if isinstance(r, dict))
            rows.append(Advisory(id=a.id, package=name, summary=a.title, severity=a.severity,
                                 affected=tuple(sorted(covered.get(a.id, ()))),
                                 fixed=", ".join(sorted(fixed.get(a.id, ()))), references=refs))
        return sorted(rows, key=lambda r: (not r.affected, r.id))

    def metrics(self, entry: IndexEntry) -> Sequence[Metric]:
        del entry
        return ()


@dataclass(slots=True)
class QualityData:
    """A package version's metrics (composer.report.quality), its advisories counted from the feed."""

    client: RepositoryClient
    feed: Feed
    _seen: dict[str, Sequence[Metric]] = field(default_factory=dict)

    def advisories(self, name: str) -> Sequence[Advisory]:
        del name
        return ()

    def metrics(self, entry: IndexEntry) -> Sequence[Metric]:
        if entry.sha256 not in self._seen:
            from composer.report.repoquality import quality_of_file
            q = quality_of_file(self.client.fetch(entry), feed=self.feed.advisories, rebuilds=None)
            self._seen[entry.sha256] = tuple(Metric(label=label, value=value) for label, value in q.rows())
        return self._seen[entry.sha256]


def feed_data(client: RepositoryClient | None) -> SiteData:
    from composer.advisory.client import client_feed
    from composer.repo.catalog import load_catalog
    if client is None:
        return FeedData(feed=Feed(), served=())
    return FeedData(feed=client_feed(client), served=load_catalog(client).entries)


def quality_data(client: RepositoryClient | None) -> SiteData:
    from composer.advisory.client import client_feed
    if client is None:
        return NoData()
    return QualityData(client=client, feed=client_feed(client))


def site_data(client: RepositoryClient | None) -> SiteData:
    """What the pages show beside the index: the feed's advisories, the metrics, then any further provider."""
    return Combined(tuple(factory(client) for factory in (feed_data, quality_data, *PROVIDERS)))
