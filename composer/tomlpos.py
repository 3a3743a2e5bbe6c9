"""Map a key path inside a TOML document to its line and column (for error messages).

tomllib gives values without positions, so this scanner finds the line that defines a key:
it tracks ``[table]`` and ``[[array.of.tables]]`` headers and ``key = value`` lines. A path it
cannot place exactly falls back to its longest placeable prefix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r'^\s*((?:"[^"]*"|\'[^\']*\'|[A-Za-z0-9_.-]+)(?:\s*\.\s*(?:"[^"]*"|\'[^\']*\'|[A-Za-z0-9_-]+))*)\s*=')


def _split_dotted(text: str) -> list[str]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)', text)
    return [a or b or c for a, b, c in parts]


def locate(text: str, path: Sequence[str | int]) -> tuple[int, int]:
    """Return (line, column), 1-based, of the key at ``path``; (1, 1) when nothing matches."""
    best: tuple[int, tuple[int, int]] = (0, (1, 1))
    header: list[str | int] = []
    counters: dict[tuple[str | int, ...], int] = {}
    want = list(path)
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = _HEADER.match(line)
        if m:
            names: list[str | int] = list(_split_dotted(m.group(2)))
            if m.group(1) == "[[":
                key = tuple(names)
                counters[key] = counters.get(key, -1) + 1
                names.append(counters[key])
            else:
                # a [table] inside the latest [[array]] element keeps that element's index
                for arr, idx in counters.items():
                    if tuple(names[: len(arr)]) == arr and len(names) > len(arr):
                        names = [*arr, idx, *names[len(arr):]]
            header = names
            full = header
            col = line.index("[") + 1
        else:
            k = _KEY.match(line)
            if not k:
                continue
            full = [*header, *_split_dotted(k.group(1))]
            col = len(line) - len(line.lstrip()) + 1
        n = 0
        while n < len(full) and n < len(want) and full[n] == want[n]:
            n += 1
        if n == len(full) and n > best[0]:
            best = (n, (lineno, col))
    return best[1]
