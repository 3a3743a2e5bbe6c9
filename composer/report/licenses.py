"""A lock's licence text as an SPDX license expression, when it is one (pure; shared by SPDX and CycloneDX)."""

from __future__ import annotations

import re

# An SPDX license expression as the profile grammar accepts it: ids joined by AND / OR / WITH, parentheses
_TOKEN = r"\(*[A-Za-z0-9.+-]+\)*"
_EXPRESSION = re.compile(rf"{_TOKEN}(?: (?:AND|OR|WITH) {_TOKEN})*")
_REF = re.compile(r"LicenseRef-[A-Za-z0-9.-]+")
UNSTATED = frozenset({"", "NOASSERTION", "NONE", "UNKNOWN"})


def expression(text: str) -> str | None:
    """``text`` (stripped) when it reads as an SPDX license expression, else None."""
    text = text.strip()
    if _EXPRESSION.fullmatch(text) and text.count("(") == text.count(")"):
        return text
    return None


def unstated(text: str) -> bool:
    """No licence stated (empty, NOASSERTION, NONE, UNKNOWN)."""
    return text.strip().upper() in UNSTATED


def refs(text: str) -> list[str]:
    """The ``LicenseRef-`` ids an expression names."""
    return _REF.findall(text)
