"""A Debian ``copyright`` file as an SPDX license expression (pure: bytes in, text out; docs/licences.md).

A machine-readable file (DEP-5, ``Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/``)
names the license of each ``Files:`` paragraph by Debian short names (``GPL-2+``, ``BSD-3-clause``, ``Expat``,
``GPL-2+ or Artistic``, ``GPL-2 with Linux-syscall-note exception``). Each is mapped to SPDX: the GNU family by
version and ``+`` (``GPL-2+`` -> ``GPL-2.0-or-later``), a table of Debian names (``Expat`` -> ``MIT``), then
the SPDX list itself, case-insensitively (``BSD-3-clause`` -> ``BSD-3-Clause``); a name it cannot map
becomes ``LicenseRef-Debian-NAME``. A binary package ships files of every paragraph, so the package's
expression is the AND of its paragraphs' distinct licenses, sorted.

The other outcomes: a free-form (not DEP-5) file -> :data:`FREE_FORM` (``LicenseRef-Debian-copyright``: see
the file); no file -> ``NOASSERTION``; an expression over :data:`MAX_EXPRESSION` characters (glibc, Linux)
-> :data:`FREE_FORM` too. Input is bounded: :data:`MAX_BYTES` of the file, :data:`MAX_PARAGRAPHS`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from composer import spdx as licenses

FREE_FORM = "LicenseRef-Debian-copyright"
NONE = "NOASSERTION"
MAX_BYTES = 512 << 10
MAX_PARAGRAPHS = 4000
MAX_EXPRESSION = 500          # the package schema's license maxLength
FORMAT = re.compile(r"^Format:\s*\S*copyright-format/1\.0", re.MULTILINE | re.IGNORECASE)

GNU = {"GPL": "GPL", "LGPL": "LGPL", "AGPL": "AGPL", "GFDL": "GFDL", "GFDL-NIV": "GFDL"}   # -> SPDX stem
# Debian short names that are not SPDX ids (docs: the DEP-5 spec's table of short names)
DEBIAN_NAMES: Mapping[str, str] = {
    "expat": "MIT", "mit": "MIT", "zlib": "Zlib", "isc": "ISC", "apache-2": "Apache-2.0", "apache-2.0": "Apache-2.0",
    "perl": "Artistic-1.0-Perl OR GPL-1.0-or-later", "artistic": "Artistic-1.0", "artistic-2": "Artistic-2.0",
    "python": "Python-2.0", "psf-2": "PSF-2.0", "mpl-1.1": "MPL-1.1", "mpl-2": "MPL-2.0", "mpl-2.0": "MPL-2.0",
    "cc0": "CC0-1.0", "cc0-1": "CC0-1.0", "bsd-2": "BSD-2-Clause", "bsd-3": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause", "zope-2.1": "ZPL-2.1", "gpl-2+-or-x11": "GPL-2.0-or-later OR X11",
}
_NAME = re.compile(r"(?P<stem>[A-Za-z][A-Za-z0-9.-]*?)(?:-(?P<version>[0-9][0-9.]*))?(?P<plus>\+)?")
_WITH = re.compile(r"(?P<license>\S+)\s+with\s+(?P<exception>\S+)\s+exception", re.IGNORECASE)
_SAFE = re.compile(r"[^A-Za-z0-9.-]+")


def paragraphs(text: str) -> list[dict[str, str]]:
    """The paragraphs of a deb822 text: field (lower-case) -> its first line (continuation lines dropped)."""
    out: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                out.append(current)
                current = {}
            if len(out) >= MAX_PARAGRAPHS:
                break
        elif not line[0].isspace() and ":" in line:
            name, _, value = line.partition(":")
            current.setdefault(name.strip().lower(), value.strip())
    if current and len(out) < MAX_PARAGRAPHS:
        out.append(current)
    return out


def _gnu(stem: str, version: str, plus: bool) -> str | None:
    if stem.upper() not in GNU or not version:
        return None
    version = version.rstrip(".")
    version = version if "." in version else f"{version}.0"
    niv = "-no-invariants" if stem.upper() == "GFDL-NIV" else ""
    candidate = f"{GNU[stem.upper()]}-{version}{niv}-{'or-later' if plus else 'only'}"
    return candidate if licenses.expression(candidate) else None


def _spdx_id(name: str) -> str | None:
    """The SPDX id the library knows for ``name`` (case-insensitive), or None."""
    known = licenses.expression(name)
    return known if known and " " not in known else None


def ref(name: str) -> str:
    """``LicenseRef-Debian-NAME`` for a Debian name nothing maps (``+`` spelled ``plus``)."""
    return "LicenseRef-Debian-" + (_SAFE.sub("-", name.replace("+", "-plus")).strip("-") or "unnamed")


def short_name(name: str) -> str:
    """One Debian short name (perhaps ``X with Y exception``) as an SPDX expression."""
    name = name.strip()
    m = _WITH.fullmatch(name)
    if m:
        base, exception = short_name(m.group("license")), m.group("exception")
        combined = f"{base} WITH {exception}"
        if " " not in base and licenses.expression(combined):
            return licenses.expression(combined) or combined
        return ref(name)
    if name.lower() in DEBIAN_NAMES:
        return DEBIAN_NAMES[name.lower()]
    parts = _NAME.fullmatch(name)
    if parts:
        gnu = _gnu(parts.group("stem"), parts.group("version") or "", bool(parts.group("plus")))
        if gnu:
            return gnu
    return _spdx_id(name) or ref(name)


def _group(text: str, word: str) -> list[str]:
    return [p for p in re.split(rf"\s+{word}\s+", text, flags=re.IGNORECASE) if p.strip()]


def license_line(text: str) -> str:
    """A ``License:`` first line as an SPDX expression: ``,`` binds loosest, then ``or``, then ``and``
    (DEP-5: ``GPL-2+ or Artistic, and BSD-3-clause``)."""
    pieces = [p.strip() for p in text.split(",") if p.strip()]
    groups: list[str] = []
    for piece in pieces:
        piece = re.sub(r"^(and|or)\s+", "", piece, flags=re.IGNORECASE)
        alternatives = [_join(" AND ", [short_name(n) for n in _group(alt, "and")]) for alt in _group(piece, "or")]
        groups.append(_join(" OR ", alternatives))
    return _join(" AND ", groups)


def _wrap(expr: str) -> str:
    return f"({expr})" if " AND " in expr or " OR " in expr else expr


def _join(operator: str, parts: list[str]) -> str:
    """``parts`` joined, each compound part in parentheses; one part as it is."""
    return parts[0] if len(parts) == 1 else operator.join(_wrap(p) for p in parts) if parts else ""


def to_spdx(data: bytes | None) -> str:
    """The SPDX expression of a copyright file's bytes (None: the package has none); see the module doc."""
    if data is None:
        return NONE
    text = data[:MAX_BYTES].decode("utf-8", errors="replace")
    if not FORMAT.search(text.split("\n\n", 1)[0]):
        return FREE_FORM
    found = sorted({license_line(p["license"]) for p in paragraphs(text) if "files" in p and p.get("license")})
    found = [f for f in found if f]
    if not found:
        return FREE_FORM
    expression = _join(" AND ", found)
    if len(expression) > MAX_EXPRESSION or not licenses.expression(expression):
        return FREE_FORM
    return expression
