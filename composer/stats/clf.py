"""The Common Log Format (and nginx's and Apache's "combined", which adds referrer and user agent): one line in,
one :class:`Hit` or one reason why not (pure).

    127.0.0.1 - - [05/Dec/2026:04:10:00 +0000] "GET /targets/packages/x/ab...x-1.0-x86_64.vpk HTTP/1.1" 200 9216

Every line is bounded (:data:`MAX_LINE` bytes; longer ones are malformed, never buffered whole by
:func:`composer.stats.logs.read_lines`), decoded as UTF-8 with replacement, and a malformed line is counted under
its reason and skipped: one bad line never stops a report.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

MAX_LINE = 8192
"""Bytes in one log line (nginx's and Apache's default request line limit is 8 KiB)."""

_LINE = re.compile(
    r'(?P<host>\S+) \S+ \S+ \[(?P<time>[^\]]{1,40})\] '
    r'"(?P<request>[^"\\]*(?:\\.[^"\\]*)*)" (?P<status>\d{3}) (?P<size>\d+|-)'
    r'(?: "[^"\\]*(?:\\.[^"\\]*)*" "[^"\\]*(?:\\.[^"\\]*)*")?\s*$')
_TIME = re.compile(r"(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$")
_MONTHS = MappingProxyType({m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)})

TOO_LONG = f"longer than {MAX_LINE} bytes"
NOT_CLF = "not in the common or combined log format"
BAD_TIME = "a timestamp that is not dd/Mon/yyyy:hh:mm:ss +zzzz"
BAD_REQUEST = "a request that is not 'METHOD PATH PROTOCOL'"


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    """One request of a log: who, when (UTC), what and how it was answered."""

    host: str
    when: dt.datetime
    method: str
    path: str
    status: int
    size: int

    @property
    def day(self) -> str:
        return self.when.date().isoformat()


@dataclass(frozen=True, slots=True, kw_only=True)
class Parsed:
    """The hits of some log lines and, per reason, how many lines were skipped as malformed."""

    hits: tuple[Hit, ...]
    lines: int
    malformed: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def skipped(self) -> int:
        return sum(self.malformed.values())


def parse_time(text: str) -> dt.datetime | None:
    """``05/Dec/2026:04:10:00 +0100`` as an aware UTC datetime, or None (no locale: month names are English)."""
    m = _TIME.match(text)
    if not m or m.group(2) not in _MONTHS:
        return None
    day, _, year, hh, mm, ss, sign, oh, om = m.groups()
    try:
        offset = dt.timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == "-" else 1)
        local = dt.datetime(int(year), _MONTHS[m.group(2)], int(day), int(hh), int(mm), int(ss),
                            tzinfo=dt.timezone(offset))
    except ValueError:
        return None
    return local.astimezone(dt.UTC)


def parse_line(raw: bytes) -> Hit | str:
    """The hit of one line (without its newline), or the reason it is malformed."""
    if len(raw) > MAX_LINE:
        return TOO_LONG
    m = _LINE.match(raw.decode("utf-8", errors="replace"))
    if not m:
        return NOT_CLF
    when = parse_time(m.group("time"))
    if when is None:
        return BAD_TIME
    parts = m.group("request").split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1].startswith("/"):
        return BAD_REQUEST
    size = m.group("size")
    return Hit(host=m.group("host"), when=when, method=parts[0], path=parts[1], status=int(m.group("status")),
               size=0 if size == "-" else int(size))


def parse_lines(lines: Iterable[bytes]) -> Parsed:
    """Every line parsed; blank lines are not counted."""
    hits: list[Hit] = []
    malformed: Counter[str] = Counter()
    count = 0
    for raw in lines:
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        count += 1
        parsed = parse_line(line)
        if isinstance(parsed, str):
            malformed[parsed] += 1
        else:
            hits.append(parsed)
    return Parsed(hits=tuple(hits), lines=count, malformed=MappingProxyType(dict(sorted(malformed.items()))))


def format_line(*, host: str, when: dt.datetime, request: str, status: int, size: int | None) -> str:
    """One line in the Common Log Format (what ``vcomp repo serve`` writes); ``request`` is quoted safely."""
    quoted = request.replace("\\", "\\\\").replace('"', '\\"')
    quoted = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in quoted)[:MAX_LINE // 2]
    month = next(m for m, i in _MONTHS.items() if i == when.month)   # no locale
    stamp = f"{when:%d}/{month}/{when:%Y:%H:%M:%S %z}"
    return f'{host} - - [{stamp}] "{quoted}" {status} {"-" if size is None else size}'
