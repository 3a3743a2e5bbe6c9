"""`vcomp repo serve`'s access log: one Common Log Format line per request, written when the response is complete
(status and length known), with what a client sent escaped (composer.repo.serve.AccessLog)."""

from __future__ import annotations

import datetime as dt
import http.client
import io
from pathlib import Path

from composer.repo.serve import AccessLog, serve_in_thread
from composer.stats import clf

WHEN = dt.datetime(2026, 12, 5, 4, 0, tzinfo=dt.UTC)


def test_every_request_is_one_parsable_line(tmp_path: Path) -> None:
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "timestamp.json").write_bytes(b"{}" * 10)
    (tmp_path / "repo.toml").write_text("secret")
    sink = io.StringIO()
    server, url = serve_in_thread(tmp_path, access_log=AccessLog(sink, clock=lambda: WHEN))
    try:
        conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
        for method, path in (("GET", "/metadata/timestamp.json"), ("HEAD", "/metadata/timestamp.json"),
                             ("GET", "/repo.toml"), ("GET", '/metadata/"x\\y')):
            conn.request(method, path)
            conn.getresponse().read()
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
    lines = sink.getvalue().splitlines()
    assert lines[:3] == ['127.0.0.1 - - [05/Dec/2026:04:00:00 +0000] "GET /metadata/timestamp.json HTTP/1.1" 200 20',
                         '127.0.0.1 - - [05/Dec/2026:04:00:00 +0000] "HEAD /metadata/timestamp.json HTTP/1.1" 200 0',
                         '127.0.0.1 - - [05/Dec/2026:04:00:00 +0000] "GET /repo.toml HTTP/1.1" 404 10']
    assert lines[3].endswith('"GET /metadata/\\"x\\\\y HTTP/1.1" 404 10')
    parsed = clf.parse_lines(line.encode() for line in lines)
    assert parsed.skipped == 0 and [h.path for h in parsed.hits][3] == '/metadata/\\"x\\\\y'
