"""The sample repository's web site, for real: `vcomp repo serve` writes an access log while real clients download
packages, `vcomp repo stats` and `vcomp repo site` read it, and the site is served over HTTP on 127.0.0.1.

In `make test`: every link of every page resolves (a crawler over HTTP), the site is the same bytes when built
twice, and the statistics show the downloads. Behind the ``site`` marker (`make test-site`): headless Chromium
(Debian's ``chromium``) renders the pages, the search finds a package, and screenshots are written to the test's
directory (and to ``$VCOMP_SITE_SHOTS`` when set).
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.repo.client import RepositoryClient
from composer.run import run
from tests.conftest import REPO

pytestmark = pytest.mark.integration
DOWNLOADED = (("nano", "x86_64"), ("busybox", "x86_64"), ("nano", "aarch64"))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served_logs(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`vcomp repo serve --access-log` (the real CLI, in a subprocess) while real clients download packages."""
    repo = sample_repo_base / "images" / "repo"
    log = tmp_path_factory.mktemp("logs") / "access.log"
    proc = subprocess.Popen([sys.executable, "-m", "composer", "repo", "serve", str(repo), "--port", "0",
                             "--access-log", str(log)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" at ", 1)[1].split(" ", 1)[0].rstrip("/")
        for i, (name, arch) in enumerate(DOWNLOADED):
            cache = tmp_path_factory.mktemp(f"client-{i}")
            client = RepositoryClient(url, (repo / "metadata" / "root.json").read_bytes(), cache)
            client.fetch(client.metadata(name, arch), cache / "out")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return log


@pytest.fixture(scope="module")
def site(sample_repo_base: Path, served_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    assert main(["repo", "site", str(sample_repo_base / "images" / "repo"), "--out", str(out),
                 "--access-log", str(served_logs), "--title", "Veridian sample"]) == 0
    return out


@pytest.fixture(scope="module")
def site_url(site: Path) -> Iterator[str]:
    """The site on a plain static server (any would do: the site has no server code)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [v for k, v in attrs if k in ("href", "src") and v]


def crawl(base: str) -> dict[str, bytes]:
    """Every page and picture reachable from index.html; a link that does not resolve fails the test."""
    seen: dict[str, bytes] = {}
    todo = [urllib.parse.urljoin(base, "index.html")]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        with urllib.request.urlopen(url, timeout=30) as r:   # raises on a 404
            seen[url] = r.read()
        if url.endswith(".html"):
            parser = _Links()
            parser.feed(seen[url].decode())
            for link in parser.links:
                target = urllib.parse.urljoin(url, link).split("#")[0]
                if target.startswith(base):
                    todo.append(target)
    return seen


def test_serve_logs_and_stats_count_the_downloads(sample_repo_base: Path, served_logs: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    lines = served_logs.read_text().splitlines()
    assert sum(".vpk HTTP/1.1\" 200 " in line for line in lines) == len(DOWNLOADED)
    assert main(["repo", "stats", str(served_logs), "--repo", str(sample_repo_base / "images" / "repo"),
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["downloads"] == 3 and doc["malformed"] == {}
    assert {r["key"]: r["downloads"] for r in doc["rows"]} == {"nano": 2, "busybox": 1}


def test_every_link_of_the_site_resolves_over_http(site: Path, site_url: str) -> None:
    pages = crawl(site_url)
    names = {p.name for p in (site / "packages").glob("*.html")}
    assert {u.rsplit("/", 1)[1] for u in pages if "/packages/" in u and u.endswith(".html")} == names
    assert len(names) > 30 and all(u.endswith((".html", ".css", ".js", ".svg")) for u in pages)
    nano = pages[urllib.parse.urljoin(site_url, "packages/nano.html")].decode()
    assert "libncursesw6.html" in nano and "Downloads per build" in nano
    libc = pages[urllib.parse.urljoin(site_url, "packages/libc6.html")].decode()
    assert 'href="../packages/nano.html"' in libc      # a reverse dependency
    graph = pages[urllib.parse.urljoin(site_url, "packages/nano.svg")]
    assert graph.startswith(b"<?xml") and b"libtinfo6" in graph
    with urllib.request.urlopen(urllib.parse.urljoin(site_url, "search-index.json"), timeout=30) as r:
        assert "nano" in {p["name"] for p in json.load(r)["packages"]}


def test_the_site_is_the_same_bytes_when_built_again(sample_repo_base: Path, served_logs: Path, site: Path,
                                                      tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert main(["repo", "site", str(sample_repo_base / "images" / "repo"), "--out", str(again),
                 "--access-log", str(served_logs), "--title", "Veridian sample"]) == 0

    def tree(d: Path) -> dict[str, bytes]:
        return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}
    assert tree(again) == tree(site)


# ---------------------------------------------------------------- a real browser (make test-site)

def chromium(profile: Path, *args: str) -> bytes:
    sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []   # Chromium refuses its sandbox as root
    return run(["chromium", "--headless", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
                "--virtual-time-budget=5000", *sandbox, *args], timeout=120).stdout


@pytest.mark.site
def test_chromium_renders_the_pages_and_the_search_finds_a_package(site_url: str, tmp_path: Path) -> None:
    profile = tmp_path / "chromium-profile"
    pages = [u for u in crawl(site_url) if u.endswith(".html")]
    for url in sorted(pages):
        dom = chromium(profile, "--dump-dom", url).decode()
        assert "<h1>" in dom and "</main>" in dom, url      # rendered by the browser, not just served
    dom = chromium(profile, "--dump-dom", urllib.parse.urljoin(site_url, "index.html?q=ncurses")).decode()
    assert 'data-search-ready="1"' in dom
    assert '<a href="packages/libncursesw6.html" class="hit">' in dom and "2 packages" in dom
    shots = {"index-search.png": "index.html?q=nano", "package-nano.png": "packages/nano.html",
             "package-libc6.png": "packages/libc6.html", "stats.png": "stats.html",
             "advisories.png": "advisories.html"}
    for name, page in shots.items():
        chromium(profile, f"--screenshot={tmp_path / name}", "--window-size=1100,1400",
                 urllib.parse.urljoin(site_url, page))
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG"), name
    keep = os.environ.get("VCOMP_SITE_SHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for name in shots:
            shutil.copy(tmp_path / name, Path(keep) / name)


def test_graph_and_size_of_the_minimal_profile(sample_repo_base: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from tests.integration.conftest import copy_profiles
    minimal = str(copy_profiles(sample_repo_base, tmp_path) / "minimal.yaml")
    assert main(["lock", minimal]) == 0
    capsys.readouterr()
    assert main(["graph", minimal, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = {n["name"] for n in doc["nodes"]}
    assert {"busybox", "init", "linux", "base-files"} <= names and "busybox" in doc["roots"]
    assert {"from": "busybox-sysv", "to": "busybox", "kind": "depends"} in doc["edges"]
    dots = []
    for _ in range(2):
        assert main(["graph", minimal, "--format", "dot"]) == 0
        dots.append(capsys.readouterr().out)
    assert dots[0] == dots[1] and dots[0].startswith('digraph "minimal" {')
    assert main(["graph", minimal, "--format", "svg", "--out", str(tmp_path / "g.svg")]) == 0
    assert (tmp_path / "g.svg").read_bytes().startswith(b"<?xml")
    capsys.readouterr()
    assert main(["size", minimal, "--json"]) == 0
    sizes = json.loads(capsys.readouterr().out)
    assert sizes["packages"][0]["name"] == "linux" and sizes["largest_files"][0]["path"] == "/boot/vmlinuz"
    assert sizes["installed_size"] == sum(p["installed_size"] for p in sizes["packages"])
    assert main(["size", minimal, "--format", "svg", "--out", str(tmp_path / "s.svg")]) == 0
    assert (tmp_path / "s.svg").read_text().startswith("<svg")
    capsys.readouterr()
    assert main(["graph", "busybox", "--repo", str(sample_repo_base / "images" / "repo"), "--reverse",
                 "--depth", "1", "--json"]) == 0
    rdeps = json.loads(capsys.readouterr().out)
    assert {"busybox-sysv", "busybox-net", "init"} <= {n["name"] for n in rdeps["nodes"]} and rdeps["reverse"]
