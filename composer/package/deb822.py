"""Debian control data, read with bounds: the stanzas of a ``Packages`` file and the relation fields in them.

Pure: bytes in, frozen values out. Written here rather than taken from python-debian because the importer needs
only the plain deb822 subset of ``Packages`` files, with hard limits on hostile input and errors that name the
file and line (python-debian has neither; design14 §4.1 measured the plain reader at 1.4 s for bookworm).

A stanza is fields ``Name: value`` with continuation lines starting with a space or a tab; stanzas are separated
by blank lines. A relation field is clauses separated by ``,``; a clause is alternatives separated by ``|``; an
alternative is ``NAME[:ARCH] [(OP VERSION)] [[ARCH ...]] [<PROFILE ...> ...]``. Anything else is refused with
the stanza, the field and the clause.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from composer.errors import InvalidPackage


class Deb822Error(InvalidPackage):
    """A Debian index (a ``Packages`` file) that is malformed, or over a limit: corrupt or hostile."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Deb822Limits:
    """Upper bounds on one ``Packages`` file (bookworm main amd64: 63,440 stanzas, 50 MB, longest line 75 KB)."""

    max_stanzas: int = 250_000
    max_field_bytes: int = 1 << 20
    max_total_bytes: int = 512 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Stanza:
    """One paragraph: its fields in file order, where it starts, and where each field starts.

    A multi-line value keeps its continuation lines after a ``\\n``, each with its leading whitespace.
    """

    origin: str
    line: int
    fields: Mapping[str, str]
    lines: Mapping[str, int]

    def place(self, field: str) -> Callable[[], str]:
        """:meth:`where`, built only when an error needs it."""
        return lambda: self.where(field)

    def where(self, field: str | None = None) -> str:
        """``Packages:120 (bash) Depends``: how errors and reports name a place."""
        line = self.lines.get(field, self.line) if field else self.line
        name = self.fields.get("Package")
        return f"{self.origin}:{line}" + (f" ({one_line(name, 64)})" if name else "") + (f" {field}" if field else "")


def one_line(text: str, limit: int = 80) -> str:
    """Input text for an error or report line: white space collapsed (no newline), at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


_FIELD_NAME = re.compile(r"[!-9;-~][!-9;-~]*")   # deb822: printable US-ASCII except ':' and space


def _error(origin: str, line: int, what: str, hint: str) -> Deb822Error:
    return Deb822Error(f"{origin}:{line}: {what}", hint=hint)


def _decode(data: bytes, origin: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise _error(origin, line, f"not UTF-8 (byte {data[e.start]:#04x})",
                     "Debian control data is UTF-8; the file is corrupt or not a Packages file") from None


class _Reader:
    """The state of one parse: the stanza being read and the limits."""

    def __init__(self, origin: str, limits: Deb822Limits) -> None:
        self.origin = origin
        self.limits = limits
        self.stanzas: list[Stanza] = []
        self.fields: dict[str, str] = {}
        self.lines: dict[str, int] = {}
        self.last: str | None = None
        self.start = 0

    def field(self, number: int, text: str) -> None:
        name, colon, value = text.partition(":")
        if not colon or not _FIELD_NAME.fullmatch(name) or name[0] in "#-":
            raise _error(self.origin, number, f"not a field line: {text[:60]!r}",
                         "a stanza line is 'Name: value' or a continuation starting with a space")
        if name in self.fields:
            raise _error(self.origin, number, f"field {name} appears twice in the stanza",
                         "each field appears once per stanza")
        if not self.fields:
            self.start = number
        self.fields[name] = value.strip()
        self.lines[name] = number
        self.last = name
        self.check_size(number, name)

    def continuation(self, number: int, text: str) -> None:
        if self.last is None:
            raise _error(self.origin, number, "continuation line outside a field",
                         "a line starting with a space continues the field above it")
        self.fields[self.last] += "\n" + text.rstrip()
        self.check_size(number, self.last)

    def check_size(self, number: int, name: str) -> None:
        if len(self.fields[name]) > self.limits.max_field_bytes:
            raise _error(self.origin, number, f"field {name} is over max_field_bytes={self.limits.max_field_bytes}",
                         "the index is hostile or corrupt")

    def end(self, number: int) -> None:
        if not self.fields:
            return
        if len(self.stanzas) >= self.limits.max_stanzas:
            raise _error(self.origin, self.start, f"more than max_stanzas={self.limits.max_stanzas} stanzas",
                         "the index is hostile or corrupt")
        self.stanzas.append(Stanza(origin=self.origin, line=self.start, fields=self.fields, lines=self.lines))
        self.fields, self.lines, self.last = {}, {}, None


def parse_stanzas(data: bytes, origin: str, limits: Deb822Limits | None = None) -> tuple[Stanza, ...]:
    """The stanzas of a ``Packages`` file, in file order; one :class:`Deb822Error` naming ``origin:line``."""
    limits = limits or Deb822Limits()
    if len(data) > limits.max_total_bytes:
        raise _error(origin, 1, f"{len(data)} bytes, over max_total_bytes={limits.max_total_bytes}",
                     "the index is hostile or corrupt")
    reader = _Reader(origin, limits)
    number = 0
    for number, line in enumerate(_decode(data, origin).split("\n"), 1):
        if not line.strip():
            reader.end(number)
        elif line[0] in " \t":
            reader.continuation(number, line)
        elif line[0] == "#":
            continue
        else:
            reader.field(number, line)
    reader.end(number)
    return tuple(reader.stanzas)


# ---------------------------------------------------------------------------------------------------------------
# Relations

OPERATORS = ("<<", "<=", "=", ">=", ">>")

_ALT = re.compile(r"""
    \s*(?P<name>[a-z0-9][a-z0-9.+-]*)
    (?::(?P<arch>[a-z0-9][a-z0-9-]*))?
    \s*(?:\(\s*(?P<op><<|<=|=|>=|>>|<|>)\s*(?P<version>[0-9][A-Za-z0-9.+~:-]*)\s*\))?
    \s*(?:\[(?P<archs>\s*!?[a-z0-9][a-z0-9-]*(?:\s+!?[a-z0-9][a-z0-9-]*)*\s*)\])?
    (?P<profiles>(?:\s*<\s*!?[a-z0-9][a-z0-9.+-]*(?:\s+!?[a-z0-9][a-z0-9.+-]*)*\s*>)*)
    \s*""", re.VERBOSE)
_PROFILE = re.compile(r"<([^>]*)>")


@dataclass(frozen=True, slots=True, kw_only=True)
class Alternative:
    """``NAME[:ARCH] [(OP VERSION)] [[ARCHS]] [<PROFILES>...]``: one alternative of a clause."""

    name: str
    arch: str | None = None
    op: str | None = None
    version: str | None = None
    archs: tuple[str, ...] = ()
    profiles: tuple[tuple[str, ...], ...] = ()

    def text(self) -> str:
        """The normalized text: single spaces, ``name:arch (op version) [a b] <p q>``."""
        out = self.name + (f":{self.arch}" if self.arch else "")
        if self.op:
            out += f" ({self.op} {self.version})"
        if self.archs:
            out += f" [{' '.join(self.archs)}]"
        return out + "".join(f" <{' '.join(p)}>" for p in self.profiles)


Clause = tuple[Alternative, ...]
Where = str | Callable[[], str]   # the place for errors; a callable builds it only when there is an error


def where_text(where: Where) -> str:
    return where if isinstance(where, str) else where()


def clause_text(clause: Clause) -> str:
    return " | ".join(a.text() for a in clause)


def _alternative(text: str, where: Where, clause: str) -> Alternative:
    m = _ALT.fullmatch(text)
    if not m:
        raise Deb822Error(f"{where_text(where)}: clause '{one_line(clause)}': '{one_line(text)}' is not "
                          "NAME[:ARCH] [(OP VERSION)] [[ARCH ...]] [<PROFILE ...>]",
                          hint="a Debian relation is 'name', 'name (>= 1.0)', 'name:any', alternatives with '|'")
    if m["op"] in ("<", ">"):
        raise Deb822Error(f"{where_text(where)}: clause '{one_line(clause)}': obsolete operator '{m['op']}'",
                          hint="dpkg reads '<' as '<=' and '>' as '>='; the package should say '<<', '<=', '>=' "
                               "or '>>'")
    return Alternative(name=m["name"], arch=m["arch"], op=m["op"], version=m["version"],
                       archs=tuple(m["archs"].split()) if m["archs"] else (),
                       profiles=tuple(tuple(p.split()) for p in _PROFILE.findall(m["profiles"])))


def parse_relations(text: str, where: Where) -> tuple[Clause, ...]:
    """The clauses of a relation field; ``where`` names the stanza and field (see :meth:`Stanza.where`)."""
    clauses: list[Clause] = []
    if not text.strip():
        return ()
    for number, clause in enumerate(text.split(","), 1):
        if not clause.strip():
            raise Deb822Error(f"{where_text(where)}: clause {number} is empty",
                              hint="clauses are separated by exactly one ','")
        clauses.append(tuple(_alternative(alt, where, clause) for alt in clause.split("|")))
    return tuple(clauses)
