"""Semantic versions (SemVer 2.0.0) and Cargo-style version requirements.

Pure data and arithmetic: no I/O, no global state.

* :class:`Version` -- a SemVer 2.0.0 version, parsed strictly per https://semver.org.
  Equality and hashing are plain field equality (``1.0.0+a != 1.0.0+b``); the ordering
  operators compare *precedence* only (build metadata ignored), see
  :meth:`Version.precedence_key` and :meth:`Version.same_precedence`.
* :class:`Requirement` -- a comma-separated (AND) list of :class:`Comparator` objects in
  Cargo syntax (``^1.2``, ``~1.2.3``, ``>=1.0, <2.0``, ``1.*``, ``*`` ...), matched with
  exactly the semantics of Cargo / the Rust ``semver`` crate, including its pre-release
  rules (see :class:`Requirement`).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from composer.debversion import (
    DebRange,
    DebRelation,
    DebVersion,
    RelationOp,
    VersionError,
    dpkg_compare,
    dpkg_key,
    verrevcmp,
)

__all__ = [
    "Bounds",
    "Comparator",
    "DebRange",
    "DebRelation",
    "DebVersion",
    "FullVersion",
    "Op",
    "PrecedenceKey",
    "RelationOp",
    "Requirement",
    "Version",
    "VersionError",
    "dpkg_compare",
    "dpkg_key",
    "semver_projection",
    "verrevcmp",
]


# Longer texts are refused before parsing (Python refuses to convert numbers over ~4,300 digits).
MAX_TEXT = 256

PreReleaseId: TypeAlias = str | int
"""One pre-release identifier: ``int`` when purely numeric, else a non-numeric ``str``."""

_IdKey: TypeAlias = tuple[int, int, str]
_PreKey: TypeAlias = tuple[int, tuple[_IdKey, ...]]
PrecedenceKey: TypeAlias = tuple[int, int, int, _PreKey]
"""Sort key of :meth:`Version.precedence_key`; only meaningful when compared with another."""

Bounds: TypeAlias = "tuple[Version | None, bool, Version | None, bool]"
"""``(lower, lower_inclusive, upper, upper_inclusive)``; ``None`` means unbounded."""

_DIGITS = frozenset("0123456789")
_IDENT_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-")
_WILDCARDS = frozenset("*xX")
_CORE_NAMES = ("major", "minor", "patch")

_EXPECTED_VERSION = "expected MAJOR.MINOR.PATCH like '1.2.3'"
_EXPECTED_PRE = "expected MAJOR.MINOR.PATCH-PRERELEASE like '1.2.3-alpha.1'"
_EXPECTED_BUILD = "expected MAJOR.MINOR.PATCH+BUILD like '1.2.3+build.5'"
_EXPECTED_REQUIREMENT = (
    "expected comma-separated comparators like '^1.2.3', '~1.2', '>=1.0, <2.0', '=1.2.3', "
    "'1.*' or a lone '*'"
)


# --------------------------------------------------------------------------- helpers


def _is_number(text: str) -> bool:
    """True for a non-empty run of ASCII digits (``str.isdigit`` also accepts e.g. '²')."""
    return bool(text) and all(ch in _DIGITS for ch in text)


def _bad_char(text: str) -> str | None:
    """The first character of ``text`` outside ``[0-9A-Za-z-]``, if any."""
    return next((ch for ch in text if ch not in _IDENT_CHARS), None)


def _check_field_number(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if value < 0:
        raise VersionError(f"invalid {what} {value}: must not be negative; {_EXPECTED_VERSION}")
    return value


def _check_pre_field(pre: object) -> None:
    if not isinstance(pre, tuple):
        raise TypeError(f"pre must be a tuple, got {type(pre).__name__}")
    for ident in pre:
        if isinstance(ident, bool) or not isinstance(ident, int | str):
            raise TypeError(f"pre-release identifiers must be int or str, got {type(ident).__name__}")
        if isinstance(ident, int):
            _check_field_number(ident, "numeric pre-release identifier")
            continue
        problem = _ident_problem(ident, "pre-release", allow_leading_zero=False)
        if problem is None and _is_number(ident):
            problem = f"pre-release identifier {ident!r} is numeric and must be given as an int"
        if problem is not None:
            raise VersionError(f"invalid pre-release identifier {ident!r}: {problem}; {_EXPECTED_PRE}")


def _check_build_field(build: object) -> None:
    if not isinstance(build, tuple):
        raise TypeError(f"build must be a tuple, got {type(build).__name__}")
    for ident in build:
        if not isinstance(ident, str):
            raise TypeError(f"build identifiers must be str, got {type(ident).__name__}")
        problem = _ident_problem(ident, "build", allow_leading_zero=True)
        if problem is not None:
            raise VersionError(f"invalid build identifier {ident!r}: {problem}; {_EXPECTED_BUILD}")


def _ident_problem(ident: str, kind: str, *, allow_leading_zero: bool, index: int = 0) -> str | None:
    """What is wrong with one dot-separated identifier, or None when it is fine."""
    if not ident:
        where = f" #{index}" if index else ""
        return f"{kind} identifier{where} is empty"
    bad = _bad_char(ident)
    if bad is not None:
        return f"{kind} identifier {ident!r} contains {bad!r}; identifiers may only use [0-9A-Za-z-]"
    if not allow_leading_zero and len(ident) > 1 and ident[0] == "0" and _is_number(ident):
        return f"numeric {kind} identifier {ident!r} has a leading zero"
    return None


def _split_identifiers(
    text: str, kind: str, *, allow_leading_zero: bool
) -> tuple[tuple[str, ...], str | None]:
    """Split a dot-separated identifier list; returns (identifiers, problem-or-None)."""
    if not text:
        return (), f"the {kind} part is empty"
    idents = tuple(text.split("."))
    for index, ident in enumerate(idents, start=1):
        problem = _ident_problem(ident, kind, allow_leading_zero=allow_leading_zero, index=index)
        if problem is not None:
            return (), problem
    return idents, None


def _to_pre(idents: tuple[str, ...]) -> tuple[PreReleaseId, ...]:
    return tuple(int(i) if _is_number(i) else i for i in idents)


def _pre_key(pre: tuple[PreReleaseId, ...]) -> _PreKey:
    """Precedence key of a pre-release tag; no tag sorts above every tag (semver.org 11.3).

    Identifier keys put numeric ids (0, n, "") below alphanumeric ones (1, 0, s); tuple
    comparison then gives "a larger set of fields has higher precedence" (11.4.4).
    """
    if not pre:
        return (1, ())
    return (0, tuple((0, i, "") if isinstance(i, int) else (1, 0, i) for i in pre))


def _pre_text(pre: tuple[PreReleaseId, ...]) -> str:
    return ".".join(str(i) for i in pre)


# --------------------------------------------------------------------------- Version


@dataclass(frozen=True, slots=True, kw_only=True, order=False)
class Version:
    """A SemVer 2.0.0 version.

    ``==`` and ``hash`` compare all fields, build metadata included, so ``1.0.0+a`` and
    ``1.0.0+b`` are different objects that nevertheless have the same precedence:
    ``<``, ``<=``, ``>``, ``>=`` compare precedence only (semver.org section 11), and
    :meth:`same_precedence` is the matching equivalence. Sorting is therefore stable with
    respect to build metadata (ties keep their input order).
    """

    major: int
    minor: int
    patch: int
    pre: tuple[PreReleaseId, ...] = ()
    build: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in _CORE_NAMES:
            _check_field_number(getattr(self, name), name)
        _check_pre_field(self.pre)
        _check_build_field(self.build)

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`` strictly; raise VersionError."""
        if isinstance(text, str) and len(text) > MAX_TEXT:
            raise VersionError(f"invalid version '{text[:40]}...': longer than {MAX_TEXT} characters",
                               hint="versions are short, like '1.2.3'")
        return _parse_version(text)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += "-" + _pre_text(self.pre)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    @property
    def is_prerelease(self) -> bool:
        return bool(self.pre)

    def precedence_key(self) -> PrecedenceKey:
        """A key whose natural ordering is SemVer precedence; build metadata is ignored."""
        return (self.major, self.minor, self.patch, _pre_key(self.pre))

    def same_precedence(self, other: Version) -> bool:
        """True when neither version has higher precedence (only build metadata may differ)."""
        return self.precedence_key() == other.precedence_key()

    def __lt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.precedence_key() < other.precedence_key()

    def __le__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.precedence_key() <= other.precedence_key()

    def __gt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.precedence_key() > other.precedence_key()

    def __ge__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.precedence_key() >= other.precedence_key()


def _parse_version(text: str) -> Version:
    if not isinstance(text, str):
        raise TypeError(f"version must be a str, got {type(text).__name__}")

    def fail(problem: str, expected: str = _EXPECTED_VERSION, hint: str = "") -> VersionError:
        return VersionError(f"invalid version {text!r}: {problem}; {expected}", hint=hint)

    if not text:
        raise fail("the text is empty")
    if text != text.strip():
        raise fail("it has leading or trailing whitespace", hint=f"write {text.strip()!r}")
    if text[0] not in _DIGITS:
        if text[0] in "vV" and text[1:2] in _DIGITS:
            raise fail(f"it starts with {text[0]!r}; a version has no prefix", hint=f"write {text[1:]!r}")
        if text[0] in "=^~<>*":
            raise fail(
                f"it starts with {text[0]!r}; operators and wildcards belong in a version requirement, "
                "not in a version"
            )
        raise fail(f"it must start with the numeric 'major' part, found {text[0]!r}")

    rest, plus, build_text = text.partition("+")
    core_text, dash, pre_text = rest.partition("-")

    parts = core_text.split(".")
    if len(parts) != 3:
        hint = ""
        if len(parts) < 3 and all(_is_number(p) for p in parts):
            padded = ".".join([*(str(int(p)) for p in parts), *(["0"] * (3 - len(parts)))])
            hint = f"write {padded + text[len(core_text):]!r}"
        if len(parts) < 3:
            missing = " and ".join(repr(n) for n in _CORE_NAMES[len(parts) :])
            raise fail(f"the numeric part {missing} is missing" if len(parts) == 2
                       else f"the numeric parts {missing} are missing", hint=hint)
        raise fail(f"it has {len(parts)} dot-separated numeric parts, but exactly three are allowed")

    numbers: list[int] = []
    for name, part in zip(_CORE_NAMES, parts, strict=True):
        if not part:
            raise fail(f"numeric part {name!r} is empty")
        if not _is_number(part):
            raise fail(f"numeric part {name!r} is {part!r}, which is not a non-negative integer")
        if len(part) > 1 and part[0] == "0":
            fixed = ".".join(str(int(p)) if _is_number(p) else p for p in parts)
            raise fail(
                f"numeric part {name!r} has a leading zero",
                hint=f"write {fixed + text[len(core_text):]!r}",
            )
        numbers.append(int(part))

    pre: tuple[PreReleaseId, ...] = ()
    if dash:
        idents, problem = _split_identifiers(pre_text, "pre-release", allow_leading_zero=False)
        if problem is not None:
            raise fail(problem, _EXPECTED_PRE)
        pre = _to_pre(idents)

    build: tuple[str, ...] = ()
    if plus:
        build, problem = _split_identifiers(build_text, "build", allow_leading_zero=True)
        if problem is not None:
            raise fail(problem, _EXPECTED_BUILD)

    return Version(major=numbers[0], minor=numbers[1], patch=numbers[2], pre=pre, build=build)


# --------------------------------------------------------------------------- requirements


class Op(enum.Enum):
    """Comparator operator; the value is its spelling in a normalised requirement."""

    EXACT = "="
    GREATER = ">"
    GREATER_EQ = ">="
    LESS = "<"
    LESS_EQ = "<="
    TILDE = "~"
    CARET = "^"
    WILDCARD = "*"  # ``1.*`` / ``1.2.*``; spelled as the version with a ``.*`` suffix


# Longest spellings first so that ">=" wins over ">".
_OP_SPELLINGS: tuple[tuple[str, Op], ...] = (
    (">=", Op.GREATER_EQ),
    ("<=", Op.LESS_EQ),
    (">", Op.GREATER),
    ("<", Op.LESS),
    ("=", Op.EXACT),
    ("~", Op.TILDE),
    ("^", Op.CARET),
)


def _plain(major: int, minor: int = 0, patch: int = 0) -> Version:
    return Version(major=major, minor=minor, patch=patch)


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparator:
    """One ``op version`` term of a requirement; ``minor``/``patch`` are None when omitted.

    A pre-release tag is only possible with a full ``MAJOR.MINOR.PATCH``; build metadata in a
    requirement is accepted by :meth:`parse` but ignored (as Cargo does), so it is not stored.
    ``Op.WILDCARD`` needs a partial version (``1.*``, ``1.2.*``); the lone ``*`` requirement
    is a :class:`Requirement` with no comparators.

    ``epoch`` and ``revision`` (design14 section 1.2) are None when not written (``E:`` / ``-rN``): a
    comparator without them ignores the version's epoch / revision. A revision needs a full
    MAJOR.MINOR.PATCH and one of ``= > >= < <= ^ ~`` (``^1.2.3-r4`` is ``>=1.2.3-r4, <2.0.0``).
    """

    op: Op
    major: int
    minor: int | None = None
    patch: int | None = None
    pre: tuple[PreReleaseId, ...] = ()
    epoch: int | None = None
    revision: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.op, Op):
            raise TypeError(f"op must be an Op, got {type(self.op).__name__}")
        _check_field_number(self.major, "major")
        if self.minor is not None:
            _check_field_number(self.minor, "minor")
        if self.patch is not None:
            _check_field_number(self.patch, "patch")
            if self.minor is None:
                raise VersionError("invalid comparator: a patch number needs a minor number")
        _check_pre_field(self.pre)
        if self.pre and self.patch is None:
            raise VersionError("invalid comparator: a pre-release tag needs a full MAJOR.MINOR.PATCH")
        if self.op is Op.WILDCARD and self.patch is not None:
            raise VersionError("invalid comparator: a wildcard needs a partial version like '1.*' or '1.2.*'")
        if self.epoch is not None and _check_field_number(self.epoch, "epoch") > _EPOCH_MAX:
            raise VersionError(f"invalid comparator: epoch {self.epoch} is larger than {_EPOCH_MAX}")
        if self.revision is not None:
            problem = _revision_problem(self.revision, full=self.patch is not None)
            if problem:
                raise VersionError(f"invalid comparator: {problem}")

    @property
    def plain(self) -> bool:
        """True when the comparator names no epoch and no revision (Cargo's own comparators)."""
        return self.epoch is None and self.revision is None

    @classmethod
    def parse(cls, text: str) -> Comparator:
        """Parse a single comparator such as ``>=1.2`` or ``~1.2.3-beta``."""
        if not isinstance(text, str):
            raise TypeError(f"comparator must be a str, got {type(text).__name__}")
        stripped = text.strip()
        if stripped in _WILDCARDS:
            raise VersionError(
                f"invalid comparator {text!r}: a lone {stripped!r} is a whole requirement, not a "
                f"comparator; {_EXPECTED_REQUIREMENT}"
            )
        problem, comparator = _parse_comparator(stripped)
        if comparator is None:
            raise VersionError(f"invalid comparator {text!r}: {problem}; {_EXPECTED_REQUIREMENT}")
        return comparator

    def __str__(self) -> str:
        text = ("" if self.op is Op.WILDCARD else self.op.value)
        text += ("" if self.epoch is None else f"{self.epoch}:") + str(self.major)
        if self.minor is None:
            return text + (".*" if self.op is Op.WILDCARD else "")
        text += f".{self.minor}"
        if self.patch is None:
            return text + (".*" if self.op is Op.WILDCARD else "")
        text += f".{self.patch}"
        if self.pre:
            text += "-" + _pre_text(self.pre)
        return text if self.revision is None else f"{text}-r{self.revision}"

    def matches(self, version: Version) -> bool:
        """This comparator alone as a requirement (pre-release rule included)."""
        return _admits_full(self, 0, version, "") and (not version.pre or _pre_opt_in(self, version))

    def bounds(self) -> Bounds:
        """The comparator as an interval ``(lower, lower_inclusive, upper, upper_inclusive)``.

        ``None`` marks an unbounded side (its flag is then False). Bounds are plain versions
        (never ``-0`` tricks): ``^1.2.3`` is ``[1.2.3, 2.0.0)``, ``>1.2`` is ``[1.3.0, inf)``,
        ``<=1.2`` is ``(-inf, 1.3.0)``, ``=1.2.3-rc.1`` is ``[1.2.3-rc.1, 1.2.3-rc.1]``.

        For a release version ``v``, ``self.matches(v)`` iff ``v`` lies in the interval. A
        pre-release version is tested against the interval as-is only by a full comparator on
        its own MAJOR.MINOR.PATCH; every other comparator tests its release triple instead
        (``^1.2.3`` rejects ``2.0.0-alpha``, ``>1.2`` admits ``1.3.0-alpha``), partial
        comparators other than caret reject pre-releases inside the partial version, and the
        requirement must opt in. See :class:`Requirement` for these rules.

        With an epoch or a revision the interval is the SemVer hull of what the comparator admits (at any
        epoch and revision): ``>1.2.3-r4`` is ``[1.2.3, inf)``, ``<1.2.3-r4`` ``(-inf, 1.2.3]``, and a range
        operator with an epoch (``>=1:1.0.0``: ``2:0.1.0`` is admitted) is unbounded.
        """
        major, minor, patch, op = self.major, self.minor, self.patch, self.op
        if self.epoch is not None and op in _RANGE_OPS:
            return (None, False, None, False)
        if self.revision is not None:
            op = _RELAXED.get(op, op)
        exact = Version(major=major, minor=minor or 0, patch=patch or 0, pre=self.pre)
        # The half-open span a partial version covers: 1 -> [1.0.0, 2.0.0), 1.2 -> [1.2.0, 1.3.0).
        if minor is None:
            span_hi = _plain(major + 1)
        elif patch is None:
            span_hi = _plain(major, minor + 1)
        else:
            span_hi = exact  # unused for full versions
        full = patch is not None

        if op in (Op.EXACT, Op.WILDCARD):
            return (exact, True, exact, True) if full else (exact, True, span_hi, False)
        if op is Op.GREATER:
            return (exact, False, None, False) if full else (span_hi, True, None, False)
        if op is Op.GREATER_EQ:
            return (exact, True, None, False)
        if op is Op.LESS:
            return (None, False, exact, False)
        if op is Op.LESS_EQ:
            return (None, False, exact, True) if full else (None, False, span_hi, False)
        if op is Op.TILDE:
            upper = _plain(major, minor + 1) if minor is not None else _plain(major + 1)
            return (exact, True, upper, False)
        # Caret: bump the left-most non-zero part among those given (the last given if all zero).
        if major > 0 or minor is None:
            upper = _plain(major + 1)
        elif minor > 0 or patch is None:
            upper = _plain(0, minor + 1)
        else:
            upper = _plain(0, 0, patch + 1)
        return (exact, True, upper, False)


def _parse_number(text: str, pos: int, name: str) -> tuple[int | None, int, str]:
    """Read an ASCII number at ``pos``; returns (value-or-None, new pos, problem)."""
    end = pos
    while end < len(text) and text[end] in _DIGITS:
        end += 1
    digits = text[pos:end]
    if not digits:
        found = repr(text[pos]) if pos < len(text) else "nothing"
        return None, pos, f"expected the numeric {name!r} part, found {found}"
    if len(digits) > 1 and digits[0] == "0":
        return None, pos, f"numeric part {name!r} ({digits!r}) has a leading zero"
    return int(digits), end, ""


def _parse_comparator(text: str) -> tuple[str, Comparator | None]:
    """Parse one stripped comparator; returns ("", comparator) or (problem, None).

    Mirrors the ``semver`` crate's grammar: optional operator, whitespace, ``MAJOR[.MINOR
    [.PATCH[-PRE][+BUILD]]]`` where ``MINOR``/``PATCH`` may be a wildcard (``*``, ``x``, ``X``);
    a bare wildcard version turns the default (caret) operator into ``Op.WILDCARD``.
    """
    op = Op.CARET
    explicit = False
    rest = text
    for spelling, candidate in _OP_SPELLINGS:
        if text.startswith(spelling):
            op, explicit, rest = candidate, True, text[len(spelling) :].lstrip()
            break
    if not rest:
        return "an operator needs a version after it", None
    epoch: int | None = None
    epoch_match = _COMPARATOR_EPOCH.match(rest)
    if epoch_match is not None:
        epoch, rest = int(epoch_match["epoch"]), rest[epoch_match.end():]
        if epoch > _EPOCH_MAX:
            return f"the epoch {epoch} is larger than {_EPOCH_MAX}", None
        if not rest:
            return "an epoch needs a version after it", None
    revision: str | None = None
    revision_match = _NATIVE_REVISION.match(rest)
    if revision_match is not None:
        rest, revision = revision_match["rest"], revision_match["revision"]
        if _REVISION_START.search(rest):
            return (f"a pre-release or build identifier of {rest!r} starts with 'r' and a digit, which reads as a "
                    "revision; only the last '-rN' is the revision"), None
    if _wildcard_at(rest, 0):
        return f"{rest[0]!r} cannot be the major part; a lone '*' must be the whole requirement", None

    major, pos, problem = _parse_number(rest, 0, "major")
    if major is None:
        return problem, None
    minor: int | None = None
    patch: int | None = None
    wildcard = False

    if rest.startswith(".", pos):
        pos += 1
        if _wildcard_at(rest, pos):
            pos, wildcard = pos + 1, True
        else:
            minor, pos, problem = _parse_number(rest, pos, "minor")
            if minor is None:
                return problem, None
    if rest.startswith(".", pos):
        pos += 1
        if _wildcard_at(rest, pos):
            pos, wildcard = pos + 1, True
        elif wildcard:
            return "a version number cannot follow a wildcard", None
        else:
            patch, pos, problem = _parse_number(rest, pos, "patch")
            if patch is None:
                return problem, None
    if wildcard and not explicit:
        op = Op.WILDCARD

    pre: tuple[PreReleaseId, ...] = ()
    if patch is not None and rest.startswith("-", pos):
        end = _scan_identifiers(rest, pos + 1)
        idents, bad = _split_identifiers(rest[pos + 1 : end], "pre-release", allow_leading_zero=False)
        if bad is not None:
            return bad, None
        pre, pos = _to_pre(idents), end
    if patch is not None and rest.startswith("+", pos):
        end = _scan_identifiers(rest, pos + 1)
        _, bad = _split_identifiers(rest[pos + 1 : end], "build", allow_leading_zero=True)
        if bad is not None:
            return bad, None
        pos = end  # build metadata is ignored by requirements

    trailing = rest[pos:]
    if trailing:
        if trailing[0] in "-+" and patch is None:
            return "a pre-release or build suffix needs a full MAJOR.MINOR.PATCH version", None
        if trailing[0].isspace():
            return f"{trailing.strip()!r} follows the version; separate comparators with ','", None
        return f"unexpected {trailing!r} after the version", None
    if revision is not None:
        problem = _revision_problem(revision, full=patch is not None, op=op)
        if problem and patch is None:
            spelled = op.value if explicit else ""
            epoch_text = "" if epoch is None else f"{epoch}:"
            problem += (" (a wildcard admits every build already)" if wildcard else
                        f": write '{spelled}{epoch_text}{major}.{minor or 0}.0-r{revision}'")
        if problem:
            return problem, None
    return "", Comparator(op=op, major=major, minor=minor, patch=patch, pre=pre, epoch=epoch, revision=revision)


def _revision_problem(revision: str, *, full: bool, op: Op | None = None) -> str:
    """What is wrong with a comparator's revision, or "" (design14 section 1.2)."""
    if not isinstance(revision, str):
        raise TypeError(f"revision must be a str, got {type(revision).__name__}")
    bad = next((c for c in revision if c not in _REVISION_CHARS), None)
    if not revision or revision[0] not in _DIGITS or bad is not None:
        return f"the revision {revision!r} must start with a digit and use [0-9A-Za-z.+~]"
    if not full:
        return "a revision ('-rN') needs a full MAJOR.MINOR.PATCH version"
    if op is Op.WILDCARD:
        return "a wildcard cannot carry a revision"
    return ""


def _wildcard_at(text: str, pos: int) -> bool:
    """A wildcard at ``pos``: ``*``, or an ``x``/``X`` that does not start a word like ``xyz``."""
    char, following = text[pos : pos + 1], text[pos + 1 : pos + 2]
    return char == "*" or (char in ("x", "X") and not (following.isascii() and following.isalnum()))


def _scan_identifiers(text: str, pos: int) -> int:
    end = pos
    while end < len(text) and (text[end] in _IDENT_CHARS or text[end] == "."):
        end += 1
    return end


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    """A Cargo version requirement: comparators joined by commas, all of which must hold.

    Operators (https://doc.rust-lang.org/cargo/reference/specifying-dependencies.html):

    ======================  ===================================================
    ``1.2.3`` / ``^1.2.3``  ``>=1.2.3, <2.0.0`` (caret is the default operator)
    ``^1.2`` / ``^1``       ``>=1.2.0, <2.0.0`` / ``>=1.0.0, <2.0.0``
    ``^0.2.3``              ``>=0.2.3, <0.3.0``
    ``^0.0.3``              ``>=0.0.3, <0.0.4``
    ``^0.0`` / ``^0``       ``>=0.0.0, <0.1.0`` / ``>=0.0.0, <1.0.0``
    ``~1.2.3`` / ``~1.2``   ``>=1.2.3, <1.3.0`` / ``>=1.2.0, <1.3.0``
    ``~1``                  ``>=1.0.0, <2.0.0``
    ``=1.2.3``              exactly 1.2.3 (build metadata ignored)
    ``=1.2`` / ``1.2.*``    ``>=1.2.0, <1.3.0`` (a partial ``=`` is a wildcard)
    ``=1`` / ``1.*``        ``>=1.0.0, <2.0.0``
    ``>1.2`` / ``>1``       ``>=1.3.0`` / ``>=2.0.0``
    ``>=1.2``               ``>=1.2.0``
    ``<1.2``                ``<1.2.0``
    ``<=1.2`` / ``<=1``     ``<1.3.0`` / ``<2.0.0``
    ``*``                   any version (but no pre-release, see below)
    ======================  ===================================================

    Pre-release versions follow the ``semver`` crate exactly:

    1. *Opt-in.* A version with a pre-release tag (``1.3.0-alpha``) matches only if some
       comparator of the requirement has a pre-release tag on the same MAJOR.MINOR.PATCH
       *and* the version satisfies every comparator. So ``*``, ``^1.2.3`` and ``<2.0.0`` never
       match ``2.0.0-alpha`` on their own, while ``>=1.0.0-alpha`` matches ``1.0.0-beta``
       but not ``1.1.0-alpha``.
    2. *Release triple.* Against a full comparator on the same MAJOR.MINOR.PATCH the version
       is compared exactly (``1.0.0-beta > 1.0.0-alpha``); against any other comparator it
       is judged by its release MAJOR.MINOR.PATCH. Hence ``^1.2.3, <=2.0.0-rc.1`` does not
       match ``2.0.0-alpha`` (2.0.0 is outside ``^1.2.3``) although ``2.0.0-alpha < 2.0.0``.
    3. *Partials.* A partial comparator other than caret (``=1.2``, ``1.2.*``, ``~1.2``,
       ``>=1.2``, ``<=1.2``, ...) never matches a pre-release whose release lies inside the
       partial version (``1.2.x``): e.g. ``>=1.2, <1.2.5-rc.1`` does not match ``1.2.5-beta``.

    For release versions the comparators are exactly the intervals of
    :meth:`Comparator.bounds`.

    Epochs and revisions (design14 section 1.2, :meth:`matches_full`): a comparator may write
    ``E:`` before its version and ``-rN...`` after a full one (``=6.1.192-r3``,
    ``>=1:1.2.3-r4, <2``, ``^1.2.3-r4`` = ``>=1.2.3-r4, <2.0.0``). A part that is not
    written is ignored (``=1.2.3`` matches every revision of 1.2.3); a written one is
    compared in :meth:`FullVersion.order_key` order. A plain :class:`Version` has epoch 0 and
    no revision.

    Syntax details (as the crate): whitespace is allowed around operators and commas; ``x``
    and ``X`` are accepted as wildcards and printed as ``*``; build metadata on a comparator
    (``=1.2.3+b``) is accepted and ignored; an operator with a wildcard (``>=1.*``) means the
    same as the partial version (``>=1``); a lone ``*`` must be the whole requirement and
    has no comparators. ``str()`` writes the normalised form (``^`` spelled out, comparators
    joined with ``", "``) and ``Requirement.parse(str(r)) == r``.
    """

    comparators: tuple[Comparator, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.comparators, tuple) or not all(
            isinstance(c, Comparator) for c in self.comparators
        ):
            raise TypeError("comparators must be a tuple of Comparator")

    @classmethod
    def parse(cls, text: str) -> Requirement:
        """Parse Cargo requirement syntax; raise VersionError naming the bad comparator."""
        if not isinstance(text, str):
            raise TypeError(f"version requirement must be a str, got {type(text).__name__}")
        if len(text) > MAX_TEXT:
            raise VersionError(f"invalid version requirement '{text[:40]}...': longer than {MAX_TEXT} characters",
                               hint="requirements are short, like '^1.2'")

        def fail(problem: str, hint: str = "") -> VersionError:
            return VersionError(
                f"invalid version requirement {text!r}: {problem}; {_EXPECTED_REQUIREMENT}", hint=hint
            )

        stripped = text.strip()
        if not stripped:
            raise fail("it is empty", hint="use '*' to accept any release")
        if stripped in _WILDCARDS:
            return cls(comparators=())
        parts = [part.strip() for part in stripped.split(",")]
        comparators: list[Comparator] = []
        for index, part in enumerate(parts, start=1):
            if not part:
                raise fail(f"comparator #{index} is empty (stray ',')")
            if part in _WILDCARDS:
                raise fail(f"comparator {part!r}: a wildcard '*' must be the only comparator")
            problem, comparator = _parse_comparator(part)
            if comparator is None:
                raise fail(f"comparator {part!r}: {problem}")
            comparators.append(comparator)
        return cls(comparators=tuple(comparators))

    def __str__(self) -> str:
        return ", ".join(str(c) for c in self.comparators) if self.comparators else "*"

    @property
    def plain(self) -> bool:
        """True when no comparator names an epoch or a revision (the SemVer-only fast paths apply)."""
        return all(c.plain for c in self.comparators)

    def matches(self, version: Version) -> bool:
        """Whether ``version`` satisfies every comparator (pre-release rules in the class doc).

        A plain :class:`Version` has epoch 0 and no revision (``>=1:1.0.0`` matches none)."""
        return self._matches(0, version, "")

    def matches_full(self, version: FullVersion) -> bool:
        """Whether a :class:`FullVersion` satisfies the requirement (design14 section 1.2).

        A comparator without a revision ignores the version's revision (``=1.2.3`` matches every revision of
        1.2.3, ``>1.2.3`` none of them, ``<=1.2.3`` all of them); with one it compares (SemVer, revision) in
        :meth:`FullVersion.order_key` order (``>=1.2.3-r4`` admits ``1.2.3-r5`` and ``1.2.4``). A comparator
        without an epoch ignores the epoch (rpm's rule: a Cargo range is written for one upstream series); with
        ``E:`` it compares the epoch first. A ``deb`` version is seen as (epoch, :func:`semver_projection`,
        revision). The pre-release opt-in rule is Cargo's, on the SemVer.
        """
        upstream = version.upstream
        semver = upstream if isinstance(upstream, Version) else semver_projection(upstream)
        return self._matches(version.epoch, semver, version.revision)

    def _matches(self, epoch: int, version: Version, revision: str) -> bool:
        if not all(_admits_full(c, epoch, version, revision) for c in self.comparators):
            return False
        if not version.pre:
            return True
        return any(_pre_opt_in(c, version) for c in self.comparators)

    def is_empty(self) -> bool:
        """True when no version at all (release or pre-release) satisfies the requirement.

        Exact, by testing the few versions that can be the least match: for releases, the least release
        at or above each comparator's lower bound (release matching is the intersection of
        :meth:`Comparator.bounds`, so if any release matches, the least one above the highest lower
        bound does); for pre-releases (only those on a MAJOR.MINOR.PATCH some comparator opts in to can
        match), ``T-0`` and each comparator's pre-release and its immediate successor (``alpha`` ->
        ``alpha.0``). ``>2.39.5, <2.39.5``, ``>2, <1`` and ``=1.0.0, =2.0.0`` are empty; ``>=1, <2`` is not.
        """
        if self.plain:
            return not any(self.matches(v) for v in self._least_candidates())
        epochs = {0} | {e for c in self.comparators if c.epoch is not None for e in (c.epoch, c.epoch + 1)}
        return not any(self._revisions_meet(e, v) for e in sorted(epochs) for v in self._least_candidates())

    def _least_candidates(self) -> list[Version]:
        found = [_plain(0)]
        for comparator in self.comparators:
            lower, inclusive, _, _ = comparator.bounds()
            if lower is not None:
                found.append(_least_release_from(lower, inclusive))
            if comparator.epoch is not None:
                # at the comparator's own epoch its version bounds apply
                lower, inclusive, _, _ = dataclasses.replace(comparator, epoch=None).bounds()
                if lower is not None:
                    found.append(_least_release_from(lower, inclusive))
            if not comparator.plain:
                # the comparator's own release (and the next one): its epoch or revision may rule it out
                own = _plain(comparator.major, comparator.minor or 0, comparator.patch or 0)
                found += [own, _least_release_from(own, False)]
            if comparator.pre:
                triple = (comparator.major, comparator.minor or 0, comparator.patch or 0)
                for pre in ((0,), comparator.pre, (*comparator.pre, 0)):
                    found.append(Version(major=triple[0], minor=triple[1], patch=triple[2], pre=pre))
        return found

    def _revisions_meet(self, epoch: int, version: Version) -> bool:
        """Whether some revision makes (epoch, version, revision) match: each comparator admits all revisions,
        none, or (on its own version) an interval of them; revisions (digit first, ``[0-9A-Za-z.+~]``) are
        dense in dpkg order and have no least element (``0 > 0~ > 0~~``), so the intervals meet unless their
        bounds cross, or touch without both being inclusive."""
        if version.pre and not any(_pre_opt_in(c, version) for c in self.comparators):
            return False
        low: tuple[str, bool] | None = None
        high: tuple[str, bool] | None = None
        for c in self.comparators:
            if c.revision is None or (c.epoch is not None and c.epoch != epoch) or _compare_parts(c, version):
                if not _admits_full(c, epoch, version, "0"):   # the revision does not matter here
                    return False
                continue
            if c.op in _LOWER_OPS or c.op is Op.EXACT:
                low = _tighter(low, (c.revision, c.op is not Op.GREATER), 1)
            if c.op in _UPPER_OPS or c.op is Op.EXACT:
                high = _tighter(high, (c.revision, c.op is not Op.LESS), -1)
        if low is None or high is None:
            return True
        order = verrevcmp(low[0], high[0])
        return order < 0 or (order == 0 and low[1] and high[1])


def _tighter(a: tuple[str, bool] | None, b: tuple[str, bool], sign: int) -> tuple[str, bool]:
    """Of two revision bounds, the tighter (``sign`` 1: lower bounds, -1: upper bounds)."""
    if a is None:
        return b
    order = verrevcmp(a[0], b[0]) * sign
    if order == 0:
        return (a[0], a[1] and b[1])
    return a if order > 0 else b


def _least_release_from(lower: Version, inclusive: bool) -> Version:
    """The least release version at (``inclusive``) or above ``lower``."""
    if lower.pre:
        return _plain(lower.major, lower.minor, lower.patch)
    return lower if inclusive else _plain(lower.major, lower.minor, lower.patch + 1)


# --------------------------------------------------------------------------- matching
#
# A transcription of the semver crate's ``eval.rs`` (matches_exact/greater/less/tilde/caret
# and pre_is_compatible), so that edge cases with pre-releases agree with Cargo exactly.


def _pre_opt_in(c: Comparator, v: Version) -> bool:
    return bool(c.pre) and c.major == v.major and c.minor == v.minor and c.patch == v.patch


_RANGE_OPS = frozenset({Op.GREATER, Op.GREATER_EQ, Op.LESS, Op.LESS_EQ})
_LOWER_OPS = frozenset({Op.GREATER, Op.GREATER_EQ, Op.CARET, Op.TILDE})
_UPPER_OPS = frozenset({Op.LESS, Op.LESS_EQ})
_RELAXED = {Op.GREATER: Op.GREATER_EQ, Op.LESS: Op.LESS_EQ}
_SIGN_OK: Mapping[Op, Callable[[int], bool]] = {
    Op.EXACT: lambda s: s == 0, Op.GREATER: lambda s: s > 0, Op.GREATER_EQ: lambda s: s >= 0,
    Op.LESS: lambda s: s < 0, Op.LESS_EQ: lambda s: s <= 0, Op.CARET: lambda s: s >= 0, Op.TILDE: lambda s: s >= 0}


def _admits_full(c: Comparator, epoch: int, v: Version, revision: str) -> bool:
    """Comparator ``c`` on (epoch, SemVer, revision), design14 section 1.2 (pre-release opt-in aside).

    Without epoch or revision this is Cargo's :func:`_admits`. With ``E:`` a different epoch decides alone
    (a range operator admits every version of a higher / lower epoch; ``= ^ ~ *`` none). With a revision
    (full comparators only) the (SemVer, revision) order decides, and ``^``/``~`` keep their upper bound.
    """
    if c.epoch is not None and epoch != c.epoch:
        if c.op in (Op.GREATER, Op.GREATER_EQ):
            return epoch > c.epoch
        if c.op in (Op.LESS, Op.LESS_EQ):
            return epoch < c.epoch
        return False
    if c.revision is None:
        return _admits(c, v)
    sign = _compare_parts(c, v) or verrevcmp(revision, c.revision)
    return _SIGN_OK[c.op](sign) and (c.op not in (Op.CARET, Op.TILDE) or _admits(c, v))


def _admits(c: Comparator, v: Version) -> bool:
    op = c.op
    if op in (Op.EXACT, Op.WILDCARD):
        return _matches_exact(c, v)
    if op is Op.GREATER:
        return _matches_greater(c, v)
    if op is Op.GREATER_EQ:
        return _matches_exact(c, v) or _matches_greater(c, v)
    if op is Op.LESS:
        return _matches_less(c, v)
    if op is Op.LESS_EQ:
        return _matches_exact(c, v) or _matches_less(c, v)
    if op is Op.TILDE:
        return _matches_tilde(c, v)
    return _matches_caret(c, v)


def _matches_exact(c: Comparator, v: Version) -> bool:
    if v.major != c.major:
        return False
    if c.minor is not None and v.minor != c.minor:
        return False
    if c.patch is not None and v.patch != c.patch:
        return False
    return v.pre == c.pre


def _compare_parts(c: Comparator, v: Version) -> int | None:
    """Sign of v - c on the parts ``c`` gives; None when they tie but ``c`` is partial."""
    if v.major != c.major:
        return 1 if v.major > c.major else -1
    if c.minor is None:
        return None
    if v.minor != c.minor:
        return 1 if v.minor > c.minor else -1
    if c.patch is None:
        return None
    if v.patch != c.patch:
        return 1 if v.patch > c.patch else -1
    vk, ck = _pre_key(v.pre), _pre_key(c.pre)
    return (vk > ck) - (vk < ck)


def _matches_greater(c: Comparator, v: Version) -> bool:
    return _compare_parts(c, v) == 1


def _matches_less(c: Comparator, v: Version) -> bool:
    return _compare_parts(c, v) == -1


def _matches_tilde(c: Comparator, v: Version) -> bool:
    if v.major != c.major:
        return False
    if c.minor is not None and v.minor != c.minor:
        return False
    if c.patch is not None and v.patch != c.patch:
        return v.patch > c.patch
    return _pre_key(v.pre) >= _pre_key(c.pre)


def _matches_caret(c: Comparator, v: Version) -> bool:
    if v.major != c.major:
        return False
    if c.minor is None:
        return True
    if c.patch is None:
        return v.minor >= c.minor if c.major > 0 else v.minor == c.minor
    if c.major > 0:
        if v.minor != c.minor:
            return v.minor > c.minor
        if v.patch != c.patch:
            return v.patch > c.patch
    elif c.minor > 0:
        if v.minor != c.minor:
            return False
        if v.patch != c.patch:
            return v.patch > c.patch
    elif v.minor != c.minor or v.patch != c.patch:
        return False
    return _pre_key(v.pre) >= _pre_key(c.pre)


# --------------------------------------------------------------------------- full versions
#
# design14 section 1.1: (epoch, upstream, revision) with a scheme saying how the upstream is ordered.

OrderKey: TypeAlias = "tuple[int, PrecedenceKey | str, str]"
"""Sort key of :meth:`FullVersion.order_key`; keys of different schemes do not compare."""

_EPOCH_MAX = 2**31 - 1
_COMPARATOR_EPOCH = re.compile(r"^(?P<epoch>[0-9]+):")
_NATIVE_REVISION = re.compile(r"^(?P<rest>.*)-r(?P<revision>[0-9][0-9A-Za-z.+~]*)$")
_REVISION_START = re.compile(r"-r[0-9]")
_REVISION_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.+~")


def _parse_semver_full(text: str) -> tuple[int, Version | str, str]:
    epoch, rest = 0, text
    head, colon, tail = text.partition(":")
    if colon:
        if not _is_number(head):
            raise VersionError(f"invalid version {text!r}: the epoch {head!r} before ':' is not a number; "
                               "expected [EPOCH:]SEMVER[-rREVISION] like '1:1.2.3-r4'")
        epoch, rest = int(head), tail
    revision = ""
    match = _NATIVE_REVISION.match(rest)
    if match is not None:
        rest, revision = match["rest"], match["revision"]
    return epoch, Version.parse(rest), revision


def _parse_deb_full(text: str) -> tuple[int, Version | str, str]:
    deb = DebVersion(text=text)
    return deb.epoch, deb.upstream, deb.revision


def _check_semver_upstream(upstream: Version | str, revision: str) -> None:
    if not isinstance(upstream, Version):
        raise TypeError(f"a 'semver' upstream must be a Version, got {type(upstream).__name__}")
    if _REVISION_START.search(str(upstream)):
        raise VersionError(f"invalid version {str(upstream)!r}: a pre-release or build identifier after '-' "
                           "starts with 'r' and a digit, which the text form reads as a revision",
                           hint="rename the identifier (e.g. 'rel2' or 'p2'), or give the revision separately")


def _check_deb_upstream(upstream: Version | str, revision: str) -> None:
    if not isinstance(upstream, str):
        raise TypeError(f"a 'deb' upstream must be a str, got {type(upstream).__name__}")
    if "-" in upstream and not revision:
        raise VersionError(f"invalid Debian upstream version {upstream!r}: it contains '-' but there is no "
                           "revision (dpkg would split it there)", hint=f"write '{upstream}-0' or drop the '-'")
    DebVersion(text=f"0:{upstream}-0")


def _semver_key(upstream: Version | str) -> PrecedenceKey | str:
    assert isinstance(upstream, Version)
    return upstream.precedence_key()


def _deb_key(upstream: Version | str) -> PrecedenceKey | str:
    return dpkg_key(str(upstream))


@dataclass(frozen=True, slots=True)
class _Scheme:
    parse: Callable[[str], tuple[int, Version | str, str]]
    check_upstream: Callable[[Version | str, str], None]
    upstream_key: Callable[[Version | str], PrecedenceKey | str]
    revision_mark: str  # what separates upstream and revision in the text form
    revision_starts_with_digit: bool


SCHEMES: Mapping[str, _Scheme] = {
    "semver": _Scheme(parse=_parse_semver_full, check_upstream=_check_semver_upstream, upstream_key=_semver_key,
                      revision_mark="-r", revision_starts_with_digit=True),
    "deb": _Scheme(parse=_parse_deb_full, check_upstream=_check_deb_upstream, upstream_key=_deb_key,
                   revision_mark="-", revision_starts_with_digit=False),
}
"""Version schemes by name: how the upstream parses, orders and prints (registry; later apk, rpm, arch)."""


@dataclass(frozen=True, slots=True, kw_only=True, order=False)
class FullVersion:
    """A package version ``(epoch, upstream, revision)`` of a ``scheme`` (design14 section 1.1).

    Order (:meth:`order_key` and ``<``/``<=``/``>``/``>=``): epoch, then the upstream (SemVer precedence
    for ``semver``, dpkg's ``verrevcmp`` for ``deb``), then the revision by dpkg's ``verrevcmp`` (no
    revision = ``0``; ``1 < 1+b1 < 1+deb12u2 < 1+deb12u5 < 2``). For ``deb`` this is exactly dpkg's order.
    ``==`` and ``hash`` compare fields (so ``1.0.0+a`` and ``1.0.0+b`` differ but tie in order, as
    :class:`Version`). Text form (``str``): ``semver`` ``[EPOCH:]SEMVER[-rREVISION]`` (``1:1.2.3-r4``);
    ``deb`` ``[EPOCH:]UPSTREAM[-REVISION]`` (dpkg's form; an epoch 0 is not written).
    """

    epoch: int = 0
    upstream: Version | str
    revision: str = ""
    scheme: str = "semver"

    def __post_init__(self) -> None:
        scheme = SCHEMES.get(self.scheme)
        if scheme is None:
            raise VersionError(f"unknown version scheme {self.scheme!r}",
                               hint="use one of: " + ", ".join(sorted(SCHEMES)))
        epoch = _check_field_number(self.epoch, "epoch")
        if epoch > _EPOCH_MAX:
            raise VersionError(f"invalid epoch {epoch}: larger than {_EPOCH_MAX}")
        if not isinstance(self.revision, str):
            raise TypeError(f"revision must be a str, got {type(self.revision).__name__}")
        scheme.check_upstream(self.upstream, self.revision)
        bad = next((c for c in self.revision if c not in _REVISION_CHARS), None)
        if bad is not None:
            raise VersionError(f"invalid revision {self.revision!r}: it contains {bad!r}; a revision uses "
                               "[0-9A-Za-z.+~]", hint="Debian revisions look like '9+deb12u7', Alpine 'r4' is '4'")
        if self.revision and scheme.revision_starts_with_digit and self.revision[0] not in _DIGITS:
            raise VersionError(f"invalid revision {self.revision!r}: a {self.scheme!r} revision starts with a digit",
                               hint="write the number only, e.g. '4' for 'r4'")

    @classmethod
    def parse(cls, text: str, scheme: str = "semver") -> FullVersion:
        """Parse the text form of ``scheme``; raise VersionError naming the problem."""
        if not isinstance(text, str):
            raise TypeError(f"version must be a str, got {type(text).__name__}")
        if len(text) > MAX_TEXT:
            raise VersionError(f"invalid version '{text[:40]}...': longer than {MAX_TEXT} characters")
        known = SCHEMES.get(scheme)
        if known is None:
            raise VersionError(f"unknown version scheme {scheme!r}", hint="use one of: " + ", ".join(sorted(SCHEMES)))
        epoch, upstream, revision = known.parse(text)
        return cls(epoch=epoch, upstream=upstream, revision=revision, scheme=scheme)

    def __str__(self) -> str:
        upstream = str(self.upstream)
        text = f"{self.epoch}:{upstream}" if self.epoch or ":" in upstream else upstream
        return text + SCHEMES[self.scheme].revision_mark + self.revision if self.revision else text

    def order_key(self) -> OrderKey:
        """A key whose natural order is the version order; equal keys = equal in order."""
        return (self.epoch, SCHEMES[self.scheme].upstream_key(self.upstream), dpkg_key(self.revision))

    def __lt__(self, other: FullVersion) -> bool:
        if not isinstance(other, FullVersion):
            return NotImplemented
        return self.order_key() < other.order_key()

    def __le__(self, other: FullVersion) -> bool:
        if not isinstance(other, FullVersion):
            return NotImplemented
        return self.order_key() <= other.order_key()

    def __gt__(self, other: FullVersion) -> bool:
        if not isinstance(other, FullVersion):
            return NotImplemented
        return self.order_key() > other.order_key()

    def __ge__(self, other: FullVersion) -> bool:
        if not isinstance(other, FullVersion):
            return NotImplemented
        return self.order_key() >= other.order_key()


# --------------------------------------------------------------------------- SemVer projection of deb versions

_LEADING_NUMBERS = re.compile(r"^([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?")
_ESCAPES = {"~": "-7e", "+": "-2b", "-": "-2d", ":": "-3a"}


def _escape_piece(piece: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in piece) if piece else "-"


def semver_projection(upstream: str) -> Version:
    """The SemVer stored for a ``deb`` upstream (design14 section 1.1): only for native Cargo requirements.

    The leading ``N(.N){0,2}`` padded with ``.0``, no pre-release (so ``*`` matches ``1.0~rc1``); when the
    upstream has more, build metadata ``deb.<rest>`` with ``~ + - :`` escaped as ``-7e -2b -2d -3a`` and an
    empty ``.``-piece written ``-``: the escaping of the rest is injective (a piece is ``-`` only when empty;
    otherwise every ``-`` starts a 3-character escape). The padding is not (``1.0`` and ``1.0.0`` both give
    ``1.0.0``), which is why the original text is kept beside it. Monotone in dpkg order except when the first
    or second ``.`` is followed by a non-digit (``0.11.dfsg1``) or the upstream does not start with a digit.
    """
    match = _LEADING_NUMBERS.match(upstream)
    numbers = [int(g) if g else 0 for g in match.groups()] if match else [0, 0, 0]
    rest = upstream[match.end():] if match else upstream
    build = ("deb", *(_escape_piece(p) for p in rest.split("."))) if rest else ()
    return Version(major=numbers[0], minor=numbers[1], patch=numbers[2], build=build)


def package_version(*, version: str, epoch: int = 0, revision: str = "", upstream_version: str = "",
                    scheme: str = "semver") -> FullVersion:
    """The full version of a package as its metadata (or index entry) stores it: a ``deb`` package by its
    original ``upstream-version``, a native one by its SemVer ``version`` with ``epoch`` and ``revision``."""
    if scheme == "deb":
        return FullVersion.parse(upstream_version, "deb")
    return FullVersion(epoch=epoch, upstream=Version.parse(version), revision=revision)
