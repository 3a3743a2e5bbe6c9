"""Access logs: the Common/combined Log Format parser on hostile lines, bounded reading, and hits mapped to
package downloads through a real index entry's paths (composer.stats)."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path
from types import MappingProxyType

from composer.repo.index import IndexEntry, package_target_path
from composer.stats import clf
from composer.stats.downloads import BY, downloads, targets_of
from composer.stats.logs import read_lines

SHA = "ab" * 32


def entry(name: str, version: str, arch: str, sha: str = SHA) -> IndexEntry:
    return IndexEntry(name=name, version=version, arch=arch, type="application", description="", license="MIT",
                      dependencies={}, provides=(), conflicts=(), features={}, capabilities={}, driver={}, size=100,
                      installed_size=200, sha256=sha, path=package_target_path(name, version, arch), signer="00",
                      relations=MappingProxyType({}))


GOOD = b'10.0.0.1 - - [05/Dec/2026:04:10:00 +0100] "GET /targets/x HTTP/1.1" 200 9216'
COMBINED = (b'10.0.0.2 - bob [31/Jan/2026:23:59:59 -0030] "GET /a%20b?q=1 HTTP/2.0" 304 - '
            b'"https://example.org/\\"q\\"" "curl/8.0 \\"quoted\\""')


def test_common_and_combined_lines_parse_into_utc_hits() -> None:
    hit = clf.parse_line(GOOD)
    assert isinstance(hit, clf.Hit)
    assert (hit.host, hit.method, hit.path, hit.status, hit.size) == ("10.0.0.1", "GET", "/targets/x", 200, 9216)
    assert hit.when == dt.datetime(2026, 12, 5, 3, 10, tzinfo=dt.UTC) and hit.day == "2026-12-05"
    other = clf.parse_line(COMBINED)
    assert isinstance(other, clf.Hit)
    assert other.day == "2026-02-01" and other.size == 0 and other.status == 304   # -00:30 crosses midnight


def test_hostile_lines_are_counted_by_reason_and_skipped() -> None:
    lines = [GOOD, b"", b"   ", b"garbage", b"\xff\xfe\x00 binary",
             b"a" * (clf.MAX_LINE + 1),
             GOOD.replace(b"05/Dec/2026", b"05/Foo/2026"),                     # no such month
             GOOD.replace(b"05/Dec/2026", b"31/Feb/2026"),                     # no such day
             GOOD.replace(b"GET /targets/x HTTP/1.1", b"\\x16\\x03\\x01"),     # a TLS hello on the HTTP port
             GOOD.replace(b"GET /targets/x", b"GET targets/x"),                # not a path
             GOOD.replace(b"200 9216", b"200 12abc"),
             GOOD + b"\r\n", COMBINED + b"\n"]
    parsed = clf.parse_lines(lines)
    assert parsed.lines == 11 and len(parsed.hits) == 3
    assert dict(parsed.malformed) == {clf.BAD_REQUEST: 2, clf.BAD_TIME: 2, clf.NOT_CLF: 3, clf.TOO_LONG: 1}
    assert parsed.skipped == 8


def test_format_line_round_trips_and_quotes_what_a_client_sent() -> None:
    when = dt.datetime(2026, 3, 9, 8, 7, 6, tzinfo=dt.UTC)
    request = 'GET /x"y\\z\x1b[31m HTTP/1.1'
    line = clf.format_line(host="127.0.0.1", when=when, request=request, status=404, size=None)
    assert line == '127.0.0.1 - - [09/Mar/2026:08:07:06 +0000] "GET /x\\"y\\\\z\\x1b[31m HTTP/1.1" 404 -'
    hit = clf.parse_line(line.encode())
    assert isinstance(hit, clf.Hit) and hit.when == when and hit.status == 404


def test_read_lines_never_holds_a_huge_line(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(GOOD + b"\n" + b"x" * (10 * clf.MAX_LINE) + b"\n" + GOOD + b"\n" + GOOD)   # no final newline
    got = list(read_lines(log))
    assert len(got) == 4 and all(len(line) <= clf.MAX_LINE + 2 for line in got)
    parsed = clf.parse_lines(got)
    assert len(parsed.hits) == 3 and dict(parsed.malformed) == {clf.TOO_LONG: 1}
    rotated = tmp_path / "access.log.1.gz"
    rotated.write_bytes(gzip.compress(GOOD + b"\n"))
    assert len(clf.parse_lines(read_lines(rotated)).hits) == 1


def test_hits_map_to_downloads_by_digest_or_file_name() -> None:
    nano = entry("nano", "8.4", "x86_64", "11" * 32)
    busybox = entry("busybox", "1.37.0", "aarch64", "22" * 32)
    stamp = "[05/Dec/2026:04:10:00 +0000]"

    def line(request: str, status: int = 200) -> bytes:
        return f'1.2.3.4 - - {stamp} "{request} HTTP/1.1" {status} 100'.encode()
    logs = [
        line(f"GET /targets/packages/nano/{'11' * 32}.nano-8.4-x86_64.vpk"),
        line("GET /mirror/pool/nano-8.4-x86_64.vpk?x=1"),                   # another server's layout
        line(f"GET /targets/packages/busybox/{'22' * 32}.busybox-1.37.0-aarch64.vpk"),
        line(f"HEAD /targets/packages/nano/{'11' * 32}.nano-8.4-x86_64.vpk"),  # not a download
        line(f"GET /targets/packages/nano/{'11' * 32}.nano-8.4-x86_64.vpk", 404),
        line("GET /metadata/timestamp.json"), line("GET /targets/packages/x/unknown-1-x86_64.vpk"),
    ]
    stats = downloads([clf.parse_lines(logs)], targets_of([nano, busybox]))
    assert stats.other == 4 and stats.lines == 7 and len(stats.downloads) == 3
    assert stats.count(BY["package"]) == [("nano", 2, 200), ("busybox", 1, 100)]
    assert stats.count(BY["arch"]) == [("x86_64", 2, 200), ("aarch64", 1, 100)]
    assert stats.count(BY["day"]) == [("2026-12-05", 3, 300)]
    assert stats.count(BY["version"])[0] == ("nano 8.4", 2, 200)
