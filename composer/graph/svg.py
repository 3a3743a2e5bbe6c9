"""Small SVG charts written by hand (pure, deterministic): horizontal bars and a column chart.

Every text is XML-escaped; numbers are formatted with fixed precision so the bytes never depend on float noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

ROW = 18
LABEL = 260
WIDTH = 720
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d")


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    label: str
    value: int
    note: str = ""    # printed after the bar (e.g. "1.2 MiB")


def _attr(text: str) -> str:
    return escape(text, {'"': "&quot;"})


def human(n: int) -> str:
    """Bytes as people read them: 512 B, 12.0 KiB, 3.4 MiB."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _head(width: int, height: int, title: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{_attr(title)}">',
            f"<title>{escape(title)}</title>",
            '<style>text{font-family:"DejaVu Sans",sans-serif;font-size:11px;fill:#222}</style>']


def bars(title: str, rows: Sequence[Bar]) -> str:
    """Horizontal bars, one per row, in the given order, scaled to the largest value."""
    top = max((r.value for r in rows), default=0) or 1
    span = WIDTH - LABEL - 110
    height = ROW * len(rows) + 30
    out = _head(WIDTH, height, title)
    out.append(f'<text x="4" y="14" style="font-weight:bold">{escape(title)}</text>')
    for i, r in enumerate(rows):
        y = 24 + i * ROW
        w = max(1, r.value * span // top) if r.value else 0
        label = r.label if len(r.label) <= 40 else "\u2026" + r.label[-39:]
        out.append(f'<text x="{LABEL - 6}" y="{y + 12}" text-anchor="end">{escape(label)}</text>')
        out.append(f'<rect x="{LABEL}" y="{y + 2}" width="{w}" height="{ROW - 5}" '
                   f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(r.label)}: {escape(r.note or str(r.value))}'
                   "</title></rect>")
        out.append(f'<text x="{LABEL + w + 6}" y="{y + 12}">{escape(r.note or str(r.value))}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def columns(title: str, rows: Sequence[Bar], height: int = 200) -> str:
    """A column per row (e.g. downloads per day), left to right in the given order."""
    top = max((r.value for r in rows), default=0) or 1
    step = max(8, min(40, (WIDTH - 60) // max(1, len(rows))))
    width = max(WIDTH, 60 + step * len(rows))
    plot = height - 90   # room below for the labels, written at 45 degrees
    out = _head(width, height, title)
    out.append(f'<text x="4" y="14" style="font-weight:bold">{escape(title)}</text>')
    out.append(f'<line x1="40" y1="{20 + plot}" x2="{width - 10}" y2="{20 + plot}" stroke="#999"/>')
    out.append(f'<text x="36" y="28" text-anchor="end">{top}</text>')
    for i, r in enumerate(rows):
        h = r.value * plot // top
        x = 44 + i * step
        out.append(f'<rect x="{x}" y="{20 + plot - h}" width="{step - 4}" height="{h}" fill="{PALETTE[0]}">'
                   f"<title>{escape(r.label)}: {r.value}</title></rect>")
        out.append(f'<text x="{x + (step - 4) // 2}" y="{34 + plot}" text-anchor="end" '
                   f'transform="rotate(-45 {x + (step - 4) // 2} {34 + plot})">{escape(r.label[-10:])}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
