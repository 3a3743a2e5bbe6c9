"""The static site (composer.site): hostile repository text is escaped everywhere, links are relative and
resolve, file names cannot escape the site, the provider seam shows what it is given, and the bytes are the
same every time."""

from __future__ import annotations

import hashlib
import html.parser
import json
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import pytest

from composer.errors import UserError
from composer.graph.model import Graph
from composer.package.manifest import Entry, Manifest
from composer.repo.index import IndexEntry, package_target_path
from composer.site import build, data
from composer.site.model import build_model, listed_builds, slug
from composer.site.providers import site_data
from composer.stats import clf
from composer.stats.downloads import downloads, empty, targets_of

EVIL = '<script>alert("x")</script>'


def entry(name: str, version: str = "1.0.0", arch: str = "x86_64", *, description: str = "plain",
          deps: Mapping[str, str] | None = None, license: str = "MIT") -> IndexEntry:
    return IndexEntry(name=name, version=version, arch=arch, type="application", description=description,
                      license=license, dependencies=dict(deps or {}), provides=(), conflicts=(), features={},
                      capabilities={}, driver={}, size=10, installed_size=20,
                      sha256=hashlib.sha256(f"{name} {version} {arch}".encode()).hexdigest(),
                      path=package_target_path(name, version, arch), signer="ff" * 32,
                      relations=MappingProxyType({}))


ENTRIES = [entry("hello", description=EVIL, deps={"../../etc/passwd": "1", "libfoo": "1"}),
           entry("hello", "1.1.0", "aarch64", description=EVIL, deps={"libfoo": "1"}),
           entry("libfoo", "1.1.0", "noarch", license='MIT" onmouseover="x'),
           entry("../../etc/passwd", description="a hostile name"),
           entry("<img src=x onerror=alert(1)>", deps={"hello": "1"})]


class Evidence:
    """A provider with one advisory and one metric (what H4's and H6's parts will plug in)."""

    def advisories(self, name: str) -> Sequence[data.Advisory]:
        if name != "hello":
            return ()
        return (data.Advisory(id="CVE-2026-0001", package="hello", summary=EVIL, severity="high",
                              affected=("1.0.0",), fixed="1.1.0",
                              references=("https://example.org/a", "javascript:alert(1)")),)

    def metrics(self, entry: IndexEntry) -> Sequence[data.Metric]:
        return (data.Metric(label="hardening", value=f"4/5 <b>{entry.name}</b>"),)


def manifests(entries: Sequence[IndexEntry]) -> dict[str, Manifest]:
    return {e.sha256: Manifest(entries=(Entry(path=f"usr/share/{e.name.replace('/', '_')}/<x>.txt", type="file",
                                              mode=0o644, size=5, sha256="0" * 64),), payload_sha256="0" * 64,
                               payload_size=1) for e in listed_builds(entries, ("x86_64", "aarch64"))}


def site(provider: data.SiteData | None = None) -> dict[str, bytes]:
    log = b'1.1.1.1 - - [05/Dec/2026:01:00:00 +0000] "GET /targets/packages/hello/' + \
        ENTRIES[0].sha256.encode() + b'.hello-1.0.0-x86_64.vpk HTTP/1.1" 200 10'
    stats = downloads([clf.parse_lines([log, b"junk"])], targets_of(ENTRIES))
    m = build_model("<Repo>", ("x86_64", "aarch64"), ENTRIES, manifests(ENTRIES), stats, provider or data.NoData())

    def draw(g: Graph) -> bytes:
        return f"<svg><!-- {len(g.nodes)} --></svg>".encode()
    return build.render(m, ENTRIES, draw)


class Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.scripts: list[str] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for k, v in attrs:
            if k in ("href", "src") and v:
                self.links.append(v)
            if k.startswith("on"):
                self.handlers.append(f"{tag} {k}")
        if tag == "script":
            self.scripts.append(dict(attrs).get("src") or "")


def parse(page: bytes) -> Links:
    p = Links()
    p.feed(page.decode())
    return p


def test_hostile_text_is_escaped_on_every_page() -> None:
    files = site(Evidence())
    for name, body in files.items():
        if not name.endswith(".html"):
            continue
        text = body.decode()
        assert "<script>alert" not in text and "<img src=x" not in text and "<b>" not in text, name
        links = parse(body)
        assert links.handlers == [], name           # no attribute broke out of its quotes
        assert set(links.scripts) <= {"search.js"}, name
        assert not any(link.startswith("javascript:") for link in links.links), name
    hello = files[f"packages/{slug('hello')}.html"].decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in hello
    assert "CVE-2026-0001" in hello and "4/5 &lt;b&gt;hello&lt;/b&gt;" in hello and "1 (<a" in hello


def test_names_cannot_escape_the_site_and_every_link_resolves() -> None:
    files = site(Evidence())
    for name in files:
        assert name == posixpath.normpath(name) and not name.startswith(("/", "..")), name
    assert slug("../../etc/passwd").startswith("_") and "/" not in slug("../../etc/passwd")
    assert slug("a/b") != slug("a_b") and slug("nano") == "nano" and slug(".hidden") != ".hidden"
    for name, body in files.items():
        if name.endswith(".html"):
            for link in parse(body).links:
                if name == "advisories.html" and link.startswith("https://"):
                    continue    # an advisory's references: the only links out of the site
                assert "://" not in link and not link.startswith("/"), (name, link)
                target = posixpath.normpath(posixpath.join(posixpath.dirname(name), link.split("#")[0]))
                assert target.replace("%3C", "<").replace("%3E", ">") in files or target in files, (name, link)


def test_search_index_lists_every_package_and_stays_inert() -> None:
    files = site()
    doc = json.loads(files["search-index.json"])
    assert [p["name"] for p in doc["packages"]] == sorted(e.name for e in {e.name: e for e in ENTRIES}.values())
    assert b"<" not in files["search-index.json"]
    assert all(p["page"] in files for p in doc["packages"])


def test_without_providers_the_pages_say_none_published() -> None:
    files = site()
    hello = files[f"packages/{slug('hello')}.html"].decode()
    assert "none published" in hello and "no metrics published" in hello
    assert "No advisories are published" in files["advisories.html"].decode()
    assert site_data(None).advisories("hello") == ()


def test_the_same_repository_gives_the_same_bytes() -> None:
    assert site(Evidence()) == site(Evidence())


def test_write_tree_replaces_only_a_site(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build.write_tree(out, {"index.html": b"1", build.MARKER: b"", "packages/a.html": b"a"})
    build.write_tree(out, {"index.html": b"2", build.MARKER: b""})
    assert sorted(p.name for p in out.rglob("*")) == [build.MARKER, "index.html"]
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="not a site written by"):
        build.write_tree(other, {"index.html": b"1"})
    assert (other / "keep.txt").read_text() == "x"


def test_an_empty_log_gives_empty_charts() -> None:
    charts = build.charts(empty())
    assert set(charts) == {"stats-day.svg", "stats-package.svg", "stats-arch.svg"}
    assert all(c.startswith(b"<svg") for c in charts.values())


def test_the_feed_provider_names_the_served_versions_an_advisory_covers() -> None:
    import json

    from composer.advisory.feed import Feed
    from composer.advisory.osv import parse_advisory
    from composer.site.providers import FeedData
    doc = {"schema_version": "1.6.0", "id": "VER-2026-0007", "modified": "2026-12-01T00:00:00Z",
           "summary": "hello <b>flaw</b>", "references": [{"type": "WEB", "url": "https://example.org/a"}],
           "affected": [{"package": {"ecosystem": "Veridian", "name": "hello"},
                         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]}],
           "database_specific": {"severity": "high"}}
    feed = Feed(advisories=(parse_advisory(json.dumps(doc).encode(), "a.json"),))
    served = [entry("hello", "1.0.0"), entry("hello", "1.1.0", "aarch64"), entry("hello", "1.2.0"), entry("other")]
    (row,) = FeedData(feed=feed, served=served).advisories("hello")
    assert (row.id, row.severity, row.affected, row.fixed, row.references) == (
        "VER-2026-0007", "high", ("1.0.0", "1.1.0"), "1.2.0", ("https://example.org/a",))
    assert FeedData(feed=feed, served=served).advisories("other") == []
