"""The repository web site: static HTML, a JSON search index and SVG pictures (docs/site.md)."""
