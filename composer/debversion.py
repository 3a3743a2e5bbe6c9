"""Debian versions: dpkg's order, dpkg's validity rules, relations and a letters-only order key.

Pure data and arithmetic (rank 0, imports nothing from ``composer``). The public names are re-exported by
:mod:`composer.version`, which is where callers import them from.

* :func:`verrevcmp` -- a line-by-line port of ``verrevcmp`` in dpkg's ``lib/dpkg/version.c`` (dpkg 1.21):
  alternate non-digit runs (compared character by character with dpkg's ``order()``: ``~`` first, then the
  end of the string, then letters, then every other character by ASCII) and digit runs (compared as numbers).
* :func:`dpkg_compare` -- ``dpkg --compare-versions`` on two version strings: epoch (text before the first
  ``:``), upstream (up to the last ``-``), revision (after it). It never refuses a string, as ``verrevcmp``.
* :class:`DebVersion` -- a *valid* Debian version (dpkg's ``parseversion`` rules, warnings included: the
  error names the rule that is broken).
* :class:`DebRelation` -- ``(OP VERSION)`` of a ``Depends``-style field; :meth:`DebRelation.intersect` and
  :meth:`DebRange.is_empty` decide whether several relations on one name can hold together.
* :func:`dpkg_key` -- a letters-only string whose plain ``str`` order is ``verrevcmp``'s order (the encoding
  of design14 section 1.3; ``composer.solve.evr`` builds libsolv EVRs from it).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DebRange",
    "DebRelation",
    "DebVersion",
    "RelationOp",
    "VersionError",
    "dpkg_compare",
    "dpkg_key",
    "num_key",
    "split_deb",
    "verrevcmp",
]

MAX_DEB_TEXT: Final = 256
_DIGITS: Final = frozenset("0123456789")
_LETTERS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_UPSTREAM_CHARS: Final = _DIGITS | _LETTERS | frozenset(".-+~:")
_REVISION_CHARS: Final = _DIGITS | _LETTERS | frozenset(".+~")
_INT_MAX: Final = 2**31 - 1


class VersionError(ValueError):
    """A version or version requirement that does not parse (or is built from bad fields).

    ``message`` says what was given, what is wrong and the expected form; ``hint`` (possibly
    empty) suggests a concrete fix. (Defined here, the lowest version module; re-exported by
    :mod:`composer.version`, its documented home.)
    """

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------- the dpkg port


def _order(char: str) -> int:
    """dpkg's ``order()``: digits 0, letters by code, ``~`` -1, end of string 0, others code + 256."""
    if char in _DIGITS:
        return 0
    if char in _LETTERS:
        return ord(char)
    if char == "~":
        return -1
    return ord(char) + 256


def verrevcmp(a: str, b: str) -> int:
    """dpkg's ``verrevcmp`` on one part (upstream or revision): negative, zero or positive."""
    i = j = 0
    len_a, len_b = len(a), len(b)
    while i < len_a or j < len_b:
        first_diff = 0
        while (i < len_a and a[i] not in _DIGITS) or (j < len_b and b[j] not in _DIGITS):
            ac = _order(a[i]) if i < len_a and a[i] not in _DIGITS else 0
            bc = _order(b[j]) if j < len_b and b[j] not in _DIGITS else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len_a and a[i] == "0":
            i += 1
        while j < len_b and b[j] == "0":
            j += 1
        while i < len_a and a[i] in _DIGITS and j < len_b and b[j] in _DIGITS:
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len_a and a[i] in _DIGITS:
            return 1
        if j < len_b and b[j] in _DIGITS:
            return -1
        if first_diff:
            return first_diff
    return 0


def split_deb(text: str) -> tuple[int, str, str]:
    """dpkg's split: ``(epoch, upstream, revision)``; epoch = leading digits before the first ``:``.

    Lenient, as ``verrevcmp`` callers need it: a non-numeric epoch counts as 0 (use
    :meth:`DebVersion.parse` to validate).
    """
    head, colon, rest = text.partition(":")
    epoch = int(head) if colon and head and all(c in _DIGITS for c in head) else 0
    if not colon:
        rest = text
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    return epoch, upstream, revision


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def dpkg_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``dpkg --compare-versions a lt/eq/gt b`` (epoch, upstream, revision)."""
    epoch_a, up_a, rev_a = split_deb(a)
    epoch_b, up_b, rev_b = split_deb(b)
    if epoch_a != epoch_b:
        return _sign(epoch_a - epoch_b)
    return _sign(verrevcmp(up_a, up_b)) or _sign(verrevcmp(rev_a, rev_b))


# --------------------------------------------------------------------------- letters-only order key

_DIGIT_LETTERS: Final = str.maketrans("0123456789", "abcdefghij")
_TERM: Final = "B"
_CHAR_CODES: Final[dict[str, str]] = {
    "~": "A",
    **{u: "C" + u for u in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
    **{lo: "D" + lo for lo in "abcdefghijklmnopqrstuvwxyz"},
    **{c: "E" + code for c, code in zip("+-.:", "abcd", strict=True)},  # ASCII order = dpkg order
}
_TOKEN: Final = re.compile(r"([^0-9]*)([0-9]*)")


def num_key(number: int) -> str:
    """A non-negative integer as letters whose ``str`` order is numeric order (length-prefixed)."""
    digits = str(number)
    length = str(len(digits))
    return "z" * (len(length) - 1) + length.translate(_DIGIT_LETTERS) + digits.translate(_DIGIT_LETTERS)


def _tokens(part: str) -> list[tuple[str, int]]:
    """dpkg's alternation ``[(non-digits, number)]``; trailing ``('', 0)`` pairs dropped (canonical)."""
    out = [(m.group(1), int(m.group(2) or 0)) for m in _TOKEN.finditer(part) if m.group(0)]
    while out and out[-1] == ("", 0):
        out.pop()
    return out


def dpkg_key(part: str) -> str:
    """Letters-only key of one upstream or revision: ``dpkg_key(a) < dpkg_key(b)`` iff ``verrevcmp(a, b) < 0``.

    Each token is its non-digit characters (order-preserving prefix code: ``~`` ``A``, letters ``C?``/``D?``,
    ``+-.:`` ``E?``), the terminator ``B``, then its number (:func:`num_key`); the part ends with
    ``B num(0) B``, which compares against any further real token as dpkg's implicit ``('', 0)`` padding
    does (above ``~``, below letters and other characters, below a non-zero number). Characters dpkg
    does not allow in a version raise ``KeyError``.
    """
    body = "".join("".join(_CHAR_CODES[c] for c in text) + _TERM + num_key(n) for text, n in _tokens(part))
    return body + _TERM + num_key(0) + _TERM


# --------------------------------------------------------------------------- validated versions


def _deb_problem(text: str) -> str | None:
    """The dpkg ``parseversion`` rule ``text`` breaks (error or warning), or None when it is valid."""
    if not text:
        return "version string is empty"
    if len(text) > MAX_DEB_TEXT:
        return f"version string is longer than {MAX_DEB_TEXT} characters"
    if text != text.strip():
        return "version string has leading or trailing blanks (dpkg trims them; write the version alone)"
    if any(c.isspace() for c in text):
        return "version string has embedded spaces"
    head, colon, rest = text.partition(":")
    if colon:
        if not head or head[0] not in _DIGITS:
            return "epoch in version is empty"
        if not all(c in _DIGITS for c in head):
            return "epoch in version is not number"
        if int(head) > _INT_MAX:
            return "epoch in version is too big"
        if not rest:
            return "nothing after colon in version number"
    else:
        rest = text
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    elif not revision:
        return "revision number is empty"
    if not upstream:
        return "version number is empty"
    if upstream[0] not in _DIGITS:
        return "version number does not start with digit"
    if any(c not in _UPSTREAM_CHARS for c in upstream):
        return "invalid character in version number"
    if any(c not in _REVISION_CHARS for c in revision):
        return "invalid character in revision number"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class DebVersion:
    """A valid Debian version, split as dpkg splits it; ``text`` is the original string (its identity).

    Equality is textual (``1.0`` != ``1.0-0``); the order operators are dpkg's (``1.0`` and ``1.0-0`` are
    neither < nor > each other). dpkg's ``parseversion`` warnings (upstream not starting with a digit,
    characters outside ``[0-9A-Za-z.+~:-]`` / ``[0-9A-Za-z.+~]``) are errors here, as Debian policy says.
    Deliberate strictness: the epoch is ASCII digits only (dpkg's ``strtol`` would also take `` +1``), and
    leading or trailing blanks are refused (dpkg trims them).
    """

    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"a Debian version must be a str, got {type(self.text).__name__}")
        problem = _deb_problem(self.text)
        if problem is not None:
            raise VersionError(
                f"invalid Debian version {self.text[:60]!r}: {problem}; expected [EPOCH:]UPSTREAM[-REVISION] "
                "like '1:2.36-9+deb12u7'",
                hint="upstream starts with a digit and uses [0-9A-Za-z.+~:-]; the revision uses [0-9A-Za-z.+~]",
            )

    @classmethod
    def parse(cls, text: str) -> DebVersion:
        return cls(text=text)

    @property
    def epoch(self) -> int:
        return split_deb(self.text)[0]

    @property
    def upstream(self) -> str:
        return split_deb(self.text)[1]

    @property
    def revision(self) -> str:
        return split_deb(self.text)[2]

    def __str__(self) -> str:
        return self.text

    def compare(self, other: DebVersion) -> int:
        return dpkg_compare(self.text, other.text)

    def __lt__(self, other: DebVersion) -> bool:
        if not isinstance(other, DebVersion):
            return NotImplemented
        return self.compare(other) < 0

    def __le__(self, other: DebVersion) -> bool:
        if not isinstance(other, DebVersion):
            return NotImplemented
        return self.compare(other) <= 0

    def __gt__(self, other: DebVersion) -> bool:
        if not isinstance(other, DebVersion):
            return NotImplemented
        return self.compare(other) > 0

    def __ge__(self, other: DebVersion) -> bool:
        if not isinstance(other, DebVersion):
            return NotImplemented
        return self.compare(other) >= 0


# --------------------------------------------------------------------------- relations


class RelationOp(enum.Enum):
    """A Debian relation operator; the value is its canonical spelling."""

    EARLIER = "<<"
    EARLIER_EQ = "<="
    EXACT = "="
    LATER_EQ = ">="
    LATER = ">>"


# (operator, accepted signs of dpkg_compare(candidate, relation version)); '<'/'>' are dpkg's deprecated
# spellings of '<='/'>=' (lib/dpkg/fields.c: "'<' is obsolete, use '<=' or '<<'").
_OP_SIGNS: Final[dict[RelationOp, frozenset[int]]] = {
    RelationOp.EARLIER: frozenset({-1}),
    RelationOp.EARLIER_EQ: frozenset({-1, 0}),
    RelationOp.EXACT: frozenset({0}),
    RelationOp.LATER_EQ: frozenset({0, 1}),
    RelationOp.LATER: frozenset({1}),
}
_SPELLINGS: Final[dict[str, RelationOp]] = {
    **{op.value: op for op in RelationOp},
    "<": RelationOp.EARLIER_EQ,
    ">": RelationOp.LATER_EQ,
}
_DEPRECATED: Final = frozenset({"<", ">"})
_RELATION: Final = re.compile(r"^\(\s*(<<|<=|>=|>>|=|<|>)\s*([^\s()]+)\s*\)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class DebRelation:
    """``(OP VERSION)``: which versions of one name a Debian relation accepts, in dpkg order.

    A missing epoch is 0 and a missing revision sorts as dpkg says (equal to ``-0``, below ``-1``), so
    ``(>> 2.36)`` accepts ``2.36-9`` and ``(= 2.39.5-0+deb12u1)`` is exact. ``deprecated`` records the old
    ``<``/``>`` spelling (read as ``<=``/``>=``, as dpkg does) so a linter can warn.
    """

    op: RelationOp
    version: DebVersion
    deprecated: bool = False

    @classmethod
    def parse(cls, text: str) -> DebRelation:
        """Parse ``(OP VERSION)``; raise VersionError naming the problem."""
        match = _RELATION.match(text.strip())
        if match is None:
            raise VersionError(
                f"invalid Debian relation {text[:80]!r}: expected '(OP VERSION)' with OP one of << <= = >= >>",
                hint="write e.g. '(>= 2.36-9)'",
            )
        spelling, version = match.groups()
        return cls(op=_SPELLINGS[spelling], version=DebVersion(text=version), deprecated=spelling in _DEPRECATED)

    def __str__(self) -> str:
        return f"({self.op.value} {self.version})"

    def matches(self, version: DebVersion | str) -> bool:
        """Whether ``version`` (a DebVersion or a version string) satisfies the relation."""
        return dpkg_compare(str(version), self.version.text) in _OP_SIGNS[self.op]

    def as_range(self) -> DebRange:
        return _RANGES[self.op](self.version)

    @staticmethod
    def intersect(relations: Iterable[DebRelation]) -> DebRange:
        """The versions accepted by every relation (all on one name); no relation = every version."""
        result = DebRange()
        for relation in relations:
            result = result.intersect(relation.as_range())
        return result


@dataclass(frozen=True, slots=True, kw_only=True)
class DebRange:
    """An interval of dpkg order; ``None`` is an open end (its flag is then ignored).

    dpkg's order is dense with no least or greatest version: between two different versions there is
    always a third (``a < a+~ < ...``), and below any version there is another (append ``~``). So the range
    is empty exactly when its bounds cross, or meet (dpkg-equal) without both being inclusive.
    """

    lower: DebVersion | None = None
    lower_inclusive: bool = False
    upper: DebVersion | None = None
    upper_inclusive: bool = False

    def intersect(self, other: DebRange) -> DebRange:
        lower, lower_inc = _tighter(self.lower, self.lower_inclusive, other.lower, other.lower_inclusive, 1)
        upper, upper_inc = _tighter(self.upper, self.upper_inclusive, other.upper, other.upper_inclusive, -1)
        return DebRange(lower=lower, lower_inclusive=lower_inc, upper=upper, upper_inclusive=upper_inc)

    def is_empty(self) -> bool:
        if self.lower is None or self.upper is None:
            return False
        sign = self.lower.compare(self.upper)
        return sign > 0 or (sign == 0 and not (self.lower_inclusive and self.upper_inclusive))

    def contains(self, version: DebVersion | str) -> bool:
        text = str(version)
        if self.lower is not None:
            sign = dpkg_compare(text, self.lower.text)
            if sign < 0 or (sign == 0 and not self.lower_inclusive):
                return False
        if self.upper is not None:
            sign = dpkg_compare(text, self.upper.text)
            if sign > 0 or (sign == 0 and not self.upper_inclusive):
                return False
        return True


def _tighter(
    a: DebVersion | None, a_inc: bool, b: DebVersion | None, b_inc: bool, direction: int
) -> tuple[DebVersion | None, bool]:
    """The tighter of two bounds: the higher lower bound (direction 1) or the lower upper bound (-1)."""
    if a is None:
        return b, b_inc
    if b is None:
        return a, a_inc
    sign = a.compare(b) * direction
    if sign > 0:
        return a, a_inc
    if sign < 0:
        return b, b_inc
    return a, a_inc and b_inc


_RANGES: Final = {
    RelationOp.EARLIER: lambda v: DebRange(upper=v),
    RelationOp.EARLIER_EQ: lambda v: DebRange(upper=v, upper_inclusive=True),
    RelationOp.EXACT: lambda v: DebRange(lower=v, lower_inclusive=True, upper=v, upper_inclusive=True),
    RelationOp.LATER_EQ: lambda v: DebRange(lower=v, lower_inclusive=True),
    RelationOp.LATER: lambda v: DebRange(lower=v),
}
