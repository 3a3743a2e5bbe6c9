"""The site's HTML pages (pure: a :class:`SiteModel` in, text out).

Everything that comes from the repository goes through :func:`esc` (names, descriptions, licences, file paths,
advisory texts) and links are relative (``../`` from packages/), so the site works from any directory of any
server or CDN. No timestamps: the same repository gives the same bytes.
"""

from __future__ import annotations

import html
import json
import urllib.parse
from collections.abc import Iterable, Sequence

from composer.graph.svg import human
from composer.site.data import Advisory
from composer.site.model import PackageView, SiteModel, slug

CSS = """body{font-family:"DejaVu Sans",sans-serif;margin:0;color:#1d232b;background:#fafbfc}
header{background:#24435f;color:#fff;padding:10px 24px}header a{color:#fff;margin-right:18px;text-decoration:none}
main{padding:16px 24px;max-width:1100px}table{border-collapse:collapse;margin:8px 0 16px}
td,th{border-bottom:1px solid #dde3ea;padding:3px 10px;text-align:left;vertical-align:top;font-size:14px}
th{background:#eef2f6}code{font-size:13px}.muted{color:#68737f}.sev-high,.sev-critical{color:#b00020}
input#q{font-size:16px;padding:6px;width:340px}#results li{margin:3px 0}
img.graph{max-width:100%;border:1px solid #dde3ea}
"""

SEARCH_JS = """// The site's search: the JSON index, filtered in the page (no server).
// index.html?q=TEXT searches on load.
(function () {
  var box = document.getElementById("q"), list = document.getElementById("results");
  var count = document.getElementById("count"), entries = [];
  function show(text) {
    var q = text.trim().toLowerCase();
    while (list.firstChild) { list.removeChild(list.firstChild); }
    if (!q) { count.textContent = ""; return; }
    var found = entries.filter(function (e) {
      return e.name.toLowerCase().indexOf(q) >= 0 || e.description.toLowerCase().indexOf(q) >= 0 ||
        e.provides.some(function (p) { return p.toLowerCase().indexOf(q) >= 0; });
    });
    found.slice(0, 200).forEach(function (e) {
      var li = document.createElement("li"), a = document.createElement("a");
      a.href = e.page; a.textContent = e.name + " " + e.version; a.className = "hit";
      li.appendChild(a); li.appendChild(document.createTextNode(" \\u2014 " + e.description));
      list.appendChild(li);
    });
    count.textContent = found.length + (found.length === 1 ? " package" : " packages");
  }
  fetch("search-index.json").then(function (r) { return r.json(); }).then(function (doc) {
    entries = doc.packages;
    var q = new URLSearchParams(window.location.search).get("q");
    if (q) { box.value = q; }
    show(box.value);
    document.body.setAttribute("data-search-ready", "1");
  });
  box.addEventListener("input", function () { show(box.value); });
})();
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def href(path: str) -> str:
    """A relative link, percent-encoded (a slug is plain, but be strict anyway)."""
    return esc(urllib.parse.quote(path, safe="/.#-_~+"))


def page(title: str, body: Sequence[str], *, up: str = "", site: str = "") -> str:
    nav = "".join(f'<a href="{href(up + target)}">{esc(label)}</a>' for target, label in
                  (("index.html", "Packages"), ("advisories.html", "Advisories"), ("stats.html", "Statistics")))
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)} \u2014 {esc(site)}</title>", f'<link rel="stylesheet" href="{href(up + "style.css")}">',
        "</head>", "<body>", f"<header><strong>{esc(site)}</strong> &nbsp; {nav}</header>", "<main>",
        f"<h1>{esc(title)}</h1>", *body, "</main>", "</body>", "</html>"]) + "\n"


def table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table; ``rows`` cells are HTML already (escape text with :func:`esc`)."""
    out = ["<table>", "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    out.append("</table>")
    return "\n".join(out)


def package_link(name: str, up: str = "") -> str:
    return f'<a href="{href(f"{up}packages/{slug(name)}.html")}">{esc(name)}</a>'


def index_page(m: SiteModel) -> str:
    body = [f'<p>{len(m.packages)} packages for {esc(", ".join(m.architectures))}.</p>',
            '<p><label for="q">Search </label><input id="q" type="search" placeholder="name, description, provides" '
            'autocomplete="off"> <span id="count" class="muted"></span></p>', '<ul id="results"></ul>',
            table(["package", "version", "architectures", "description"],
                  [[package_link(p.name), esc(p.newest.version_text), esc(" ".join(p.architectures)),
                    esc(p.description)] for p in m.packages]),
            '<script src="search.js"></script>']
    return page("Packages", body, site=m.title)


def search_index(m: SiteModel) -> str:
    doc = {"packages": [{"name": p.name, "version": p.newest.version_text, "description": p.description,
                         "provides": sorted(p.newest.provides), "architectures": list(p.architectures),
                         "page": f"packages/{slug(p.name)}.html"} for p in m.packages]}
    # ensure_ascii and no '<': the file is data, but it must stay inert if a server sends it as text/html
    return json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=True).replace("<", "\\u003c") + "\n"


def _advisory_rows(advisories: Sequence[Advisory], up: str) -> list[list[str]]:
    return [[f'<a href="{href(f"{up}advisories.html#{slug(a.id)}")}">{esc(a.id)}</a>',
             package_link(a.package, up), f'<span class="sev-{esc(a.severity.lower())}">{esc(a.severity or "?")}'
             "</span>", esc(", ".join(a.affected)), esc(a.fixed or "not yet"), esc(a.summary)] for a in advisories]


ADVISORY_HEAD = ["advisory", "package", "severity", "affected", "fixed in", "summary"]


def package_page(p: PackageView, m: SiteModel) -> str:
    e = p.newest
    up = "../"
    facts = [("version", esc(e.version_text)), ("architectures", esc(" ".join(p.architectures))),
             ("type", esc(e.type)), ("licence", esc(e.license or "not stated")),
             ("provides", esc(", ".join(e.provides) or "\u2014")),
             ("downloads", f'{p.downloads_total} (<a href="{href(up + "stats.html")}">statistics</a>)')]
    body = [f"<p>{esc(p.description)}</p>", table(["", ""], [[esc(k), v] for k, v in facts])]
    body.append("<h2>Versions</h2>")
    body.append(table(["version", "arch", "size", "installed", "sha256", "signer"],
                      [[esc(v.version_text), esc(v.arch), esc(human(v.size)), esc(human(v.installed_size)),
                        f"<code>{esc(v.sha256[:16])}</code>", f"<code>{esc(v.signer[:16])}</code>"]
                       for v in p.versions]))
    body.append("<h2>Dependencies</h2>")
    deps = [f"<li>{package_link(d.name, up) if d.page else esc(d.name)}"
            f"{' <span class=muted>(recommends)</span>' if d.kind == 'recommends' else ''}</li>" for d in p.depends]
    body.append(f"<ul id=\"depends\">{''.join(deps)}</ul>" if deps else "<p class=muted>none</p>")
    body.append("<h2>Reverse dependencies</h2>")
    rdeps = [f"<li>{package_link(n, up)}</li>" for n in p.rdepends]
    body.append(f"<ul id=\"rdepends\">{''.join(rdeps)}</ul>" if rdeps else "<p class=muted>none in this repository</p>")
    body.append(f"<h2>Dependency graph ({esc(p.graph_arch)})</h2>")
    body.append(f'<p><img class="graph" src="{href(p.slug + ".svg")}" alt="dependency graph of {esc(p.name)}"></p>')
    body.append("<h2>Advisories</h2>")
    body.append(table(ADVISORY_HEAD, _advisory_rows(p.advisories, up)) if p.advisories else
                "<p class=muted>none published</p>")
    body.append("<h2>Quality</h2>")
    body.append(table(["metric", "value"], [[esc(q.label), esc(q.value)] for q in p.metrics]) if p.metrics else
                "<p class=muted>no metrics published</p>")
    if p.downloads:
        body.append("<h2>Downloads per build</h2>")
        body.append(table(["build", "downloads"], [[esc(k), str(n)] for k, n in p.downloads]))
    body.append(f"<h2>Files{' of ' + esc(p.files_of) if p.files_of else ''}</h2>")
    if p.files:
        body.append(table(["path", "type", "mode", "size"], [[f"<code>{esc(f.path)}</code>", esc(f.type), esc(f.mode),
                                                             esc(human(f.size)) if f.type == "file" else ""]
                                                            for f in p.files]))
        if p.files_total > len(p.files):
            body.append(f"<p class=muted>and {p.files_total - len(p.files)} more</p>")
    else:
        body.append("<p class=muted>no files listed</p>")
    return page(p.name, body, up=up, site=m.title)


def advisories_page(m: SiteModel) -> str:
    if not m.advisories:
        return page("Advisories", ["<p class=muted>No advisories are published for this repository.</p>"],
                    site=m.title)
    body = [table(ADVISORY_HEAD, _advisory_rows(m.advisories, ""))]
    for a in m.advisories:
        refs = "".join(f'<li><a href="{esc(r)}" rel="nofollow noopener">{esc(r)}</a></li>' if
                       r.startswith(("https://", "http://")) else f"<li>{esc(r)}</li>" for r in a.references)
        body.append(f'<h2 id="{esc(slug(a.id))}">{esc(a.id)}: {package_link(a.package)}</h2>'
                    f"<p>{esc(a.summary)}</p><ul>{refs}</ul>")
    return page("Advisories", body, site=m.title)


def stats_page(m: SiteModel) -> str:
    s = m.stats
    if not s.downloads:
        summary = "<p class=muted>No downloads recorded (pass access logs with --access-log).</p>"
    else:
        summary = f"<p>{len(s.downloads)} downloads, {esc(human(sum(d.size for d in s.downloads)))}.</p>"
    body = [summary, f"<p class=muted>{s.lines} log lines read, {sum(s.malformed.values())} malformed lines "
                     f"skipped, {s.other} other requests.</p>"]
    for name, title in (("day", "Downloads per day"), ("package", "Downloads per package"),
                        ("arch", "Downloads per architecture")):
        body.append(f"<h2>{esc(title)}</h2>")
        body.append(f'<p><img src="{href(f"stats-{name}.svg")}" alt="{esc(title)}"></p>')
    return page("Statistics", body, site=m.title)
