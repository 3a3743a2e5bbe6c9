"""A boot's timeline from its console log, pure: kernel initcalls (``initcall_debug`` with printk times) and
init's per-service start and ready times (``VCOMP-TRACE`` lines, printed with ``vcomp.trace=1``), as text,
JSON and an SVG picture. No I/O: ``vcomp boot --trace`` and ``vcomp debug timeline`` read the log.

Lines understood (anywhere in a console line; everything else is ignored):

    [    0.512345] calling  pci_subsys_init+0x0/0x70 @ 1
    [    0.513001] initcall pci_subsys_init+0x0/0x70 returned 0 after 655 usecs
    VCOMP-TRACE: 2.31 init-start                  (seconds since the kernel started, /proc/uptime)
    VCOMP-TRACE: 2.40 service-start sshd
    VCOMP-TRACE: 3.05 service-up sshd             (or service-failed NAME)
    VCOMP-TRACE: 3.90 ready

Bounded: at most :data:`MAX_SPANS` spans are kept (the rest are counted), names are cut at :data:`MAX_NAME`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

KERNEL_ARGS = "initcall_debug printk.time=1 loglevel=8 vcomp.trace=1"   # what vcomp boot --trace adds (loglevel:
# initcall_debug prints at KERN_DEBUG, which a "quiet" command line hides)
MAX_SPANS = 20000
MAX_NAME = 120
_STAMP = r"\[\s*(\d{1,9}\.\d{1,9})\]"
_CALLING = re.compile(_STAMP + r"\s+calling\s+([^\s+]{1,200})(?:\+\S*)?\s+@\s+\d+")
_RETURNED = re.compile(_STAMP + r"\s+initcall\s+([^\s+]{1,200})(?:\+\S*)?\s+returned\s+(-?\d+)\s+after\s+"
                       r"(\d{1,12})\s+usecs")
_TRACE = re.compile(r"VCOMP-TRACE: (\d{1,9}(?:\.\d{1,9})?) ([a-z][a-z-]{0,30})(?: (\S{1,200}))?\s*$")
_PRINTK = re.compile(_STAMP)
EVENTS = ("init-start", "stage2", "services", "checks", "ready")


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    kind: str          # initcall | service
    name: str
    start: float       # seconds since the kernel started
    end: float
    status: str = "ok"   # ok | failed | pending (never ended) | the initcall's return value

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "start": round(self.start, 6), "end": round(self.end, 6),
                "seconds": round(self.seconds, 6), "status": self.status}


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    spans: tuple[Span, ...]
    events: Mapping[str, float]       # init's stages: init-start, ready, ...
    kernel_seconds: float | None      # when init started (else the last printk time; None: neither seen)
    dropped: int = 0                  # spans over MAX_SPANS

    def to_dict(self) -> dict[str, object]:
        return {"spans": [s.to_dict() for s in self.spans],
                "events": {k: round(v, 6) for k, v in sorted(self.events.items(), key=lambda kv: kv[1])},
                "kernel-seconds": None if self.kernel_seconds is None else round(self.kernel_seconds, 6),
                "dropped": self.dropped}

    def of(self, kind: str) -> list[Span]:
        return [s for s in self.spans if s.kind == kind]


@dataclass(slots=True)
class _Parse:
    spans: list[Span] = field(default_factory=list)
    calling: dict[str, float] = field(default_factory=dict)
    starting: dict[str, float] = field(default_factory=dict)
    events: dict[str, float] = field(default_factory=dict)
    last_printk: float | None = None
    dropped: int = 0

    def add(self, span: Span) -> None:
        if len(self.spans) < MAX_SPANS:
            self.spans.append(span)
        else:
            self.dropped += 1


def parse(lines: Iterable[str]) -> Timeline:
    """The timeline of a console log's lines."""
    p = _Parse()
    for line in lines:
        _line(p, line)
    for name, start in p.starting.items():   # started, never reported up or failed
        p.add(Span(kind="service", name=name, start=start, end=start, status="pending"))
    kernel = p.events.get("init-start", p.last_printk)
    spans = tuple(sorted(p.spans, key=lambda s: (s.start, s.kind, s.name)))
    return Timeline(spans=spans, events=dict(p.events), kernel_seconds=kernel, dropped=p.dropped)


def _line(p: _Parse, line: str) -> None:
    stamp = _PRINTK.search(line)
    if stamp and "init-start" not in p.events:
        p.last_printk = float(stamp.group(1))
    m = _CALLING.search(line)
    if m:
        p.calling[_name(m.group(2))] = float(m.group(1))
        return
    m = _RETURNED.search(line)
    if m:
        name, end = _name(m.group(2)), float(m.group(1))
        took = int(m.group(4)) / 1e6
        start = round(p.calling.pop(name, end - took), 6)
        p.add(Span(kind="initcall", name=name, start=start, end=round(max(end, start + took), 6),
                   status="ok" if m.group(3) == "0" else f"returned {m.group(3)}"))
        return
    m = _TRACE.search(line)
    if m:
        _trace(p, float(m.group(1)), m.group(2), _name(m.group(3) or ""))


def _trace(p: _Parse, at: float, event: str, name: str) -> None:
    if event == "service-start" and name:
        p.starting[name] = at
    elif event in ("service-up", "service-failed") and name:
        start = p.starting.pop(name, at)
        p.add(Span(kind="service", name=name, start=start, end=at, status="ok" if event == "service-up" else "failed"))
    elif event in EVENTS:
        p.events.setdefault(event, at)


def _name(text: str) -> str:
    return text[:MAX_NAME]


# ----------------------------------------------------------------- rendering

def render_text(t: Timeline, *, slowest: int = 15) -> str:
    """A summary: init's stages, every service, the slowest initcalls."""
    out = []
    if t.kernel_seconds is not None:
        out.append(f"kernel: {t.kernel_seconds:.3f} s until init")
    for name, at in sorted(t.events.items(), key=lambda kv: kv[1]):
        out.append(f"{at:9.3f} s  {name}")
    services = t.of("service")
    if services:
        out.append(f"services ({len(services)}):")
        out += [f"{s.start:9.3f} s  +{s.seconds:7.3f} s  {s.name} ({s.status})" for s in services]
    calls = sorted(t.of("initcall"), key=lambda s: (-s.seconds, s.start, s.name))
    if calls:
        total = sum(s.seconds for s in calls)
        out.append(f"initcalls: {len(calls)}, {total:.3f} s in all; the slowest {min(slowest, len(calls))}:")
        out += [f"{s.start:9.3f} s  +{s.seconds:7.3f} s  {s.name}" + ("" if s.status == "ok" else f" ({s.status})")
                for s in calls[:slowest]]
    if t.dropped:
        out.append(f"({t.dropped} more spans not kept: over {MAX_SPANS})")
    if not out:
        out.append("no timeline in this log: boot with vcomp boot --trace (initcall_debug, printk.time=1, "
                   "vcomp.trace=1)")
    return "\n".join(out) + "\n"


_COLOURS = {"initcall": "#4e79a7", "service": "#59a14f"}
_ROW, _LEFT, _WIDTH = 14, 260, 900


def render_svg(t: Timeline, *, min_seconds: float = 0.001) -> str:
    """Bars on a time axis: services, and the initcalls that took at least ``min_seconds``."""
    rows = [s for s in t.spans if s.kind == "service" or s.seconds >= min_seconds]
    end = max([s.end for s in rows] + list(t.events.values()) + [0.001])
    scale = _WIDTH / end
    height = (len(rows) + 3) * _ROW
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_LEFT + _WIDTH + 20}" height="{height}" '
             'font-family="monospace" font-size="10">',
             f'<text x="4" y="{_ROW - 3}">boot timeline: {end:.3f} s</text>']
    for name, at in sorted(t.events.items(), key=lambda kv: kv[1]):
        x = _LEFT + at * scale
        parts.append(f'<line x1="{x:.1f}" y1="{_ROW}" x2="{x:.1f}" y2="{height}" stroke="#e15759"/>'
                     f'<text x="{x + 2:.1f}" y="{height - 3}" fill="#e15759">{escape(name)}</text>')
    for i, s in enumerate(rows, 1):
        y = (i + 0.2) * _ROW
        width = max(1.0, s.seconds * scale)
        parts.append(f'<text x="4" y="{y + 9:.1f}">{escape(s.name[:40])}</text>'
                     f'<rect x="{_LEFT + s.start * scale:.1f}" y="{y:.1f}" width="{width:.1f}" height="{_ROW - 4}" '
                     f'fill="{_COLOURS.get(s.kind, "#999")}"><title>{escape(s.name)}: {s.seconds:.6f} s '
                     f'({escape(s.status)})</title></rect>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
