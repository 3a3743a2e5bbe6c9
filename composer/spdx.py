"""SPDX license expressions, parsed and validated with the ``license-expression`` library (pure; shared by the
SBOMs, ``pkg lint``, the policy gates and the licence report; docs/licences.md).

An expression is valid when it parses (``AND``, ``OR``, ``WITH``, parentheses; operators in any case), every
license is an id of the SPDX license list (deprecated ids such as ``GPL-2.0`` read as their current form) or a
``LicenseRef-IDSTRING``, and every ``WITH`` names an exception of the SPDX exception list. The normalised form
is what the library renders: canonical ids, upper-case operators (``gpl-2.0+ or mit`` -> ``GPL-2.0-or-later OR
MIT``). Hostile input is bounded: at most :data:`MAX_TEXT` characters, at most :data:`MAX_CHOICES` alternatives
when the expression is expanded into the license sets one may choose from.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from license_expression import (
    AND,
    OR,
    ExpressionError,
    LicenseSymbol,
    LicenseWithExceptionSymbol,
    Licensing,
    get_spdx_licensing,
)

UNSTATED = frozenset({"", "NOASSERTION", "NONE", "UNKNOWN"})
MAX_TEXT = 1000          # characters of an expression
MAX_CHOICES = 256        # license sets an expression may expand to (A OR B) AND (C OR D) ... = 4, 8, ...
_IDSTRING = re.compile(r"[A-Za-z0-9.+-]+")
_REF = re.compile(r"(?:DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+")
_REF_IN_TEXT = re.compile(r"LicenseRef-[A-Za-z0-9.-]+")


@functools.cache
def licensing() -> Licensing:
    """The SPDX licensing of the library (its license and exception lists; built once)."""
    return get_spdx_licensing()


@dataclass(frozen=True, slots=True, kw_only=True)
class Term:
    """One license of a choice: an SPDX id or ``LicenseRef-``, with the exception it is granted ``WITH``."""

    license: str
    exception: str = ""

    @property
    def text(self) -> str:
        return f"{self.license} WITH {self.exception}" if self.exception else self.license


@dataclass(frozen=True, slots=True, kw_only=True)
class Parsed:
    """A valid expression: its normalised text and the license sets one may choose from (an OR is a choice
    between its branches, an AND needs all its parts), each set sorted, the sets in a stable order."""

    normalized: str
    choices: tuple[tuple[Term, ...], ...]

    @property
    def terms(self) -> tuple[Term, ...]:
        """Every license the expression names, once, sorted."""
        return tuple(sorted({t for c in self.choices for t in c}, key=lambda t: t.text))


class LicenseError(ValueError):
    """Why a text is not a valid SPDX expression (one line)."""


def _terms(node: Any) -> list[frozenset[Term]]:
    if isinstance(node, LicenseWithExceptionSymbol):
        return [frozenset({Term(license=node.license_symbol.key, exception=node.exception_symbol.key)})]
    if isinstance(node, LicenseSymbol):
        return [frozenset({Term(license=node.key)})]
    if isinstance(node, OR):
        out = [c for arg in node.args for c in _terms(arg)]
    elif isinstance(node, AND):
        out = [frozenset().union(*combo) for combo in itertools.product(*(_terms(a) for a in node.args))]
    else:   # the library's tree has no other node kinds
        raise LicenseError(f"unexpected part '{node}'")
    if len(out) > MAX_CHOICES:
        raise LicenseError(f"expands to more than {MAX_CHOICES} alternatives; simplify it")
    return out


def _check_symbols(lic: Licensing, tree: Any) -> None:
    unknown = [k for k in lic.unknown_license_keys(tree) if not _REF.fullmatch(k)]
    if unknown:
        raise LicenseError(f"unknown license id {', '.join(repr(k) for k in unknown)} (not on the SPDX license "
                           "list; a license of your own is LicenseRef-NAME)")
    bad = [s.key for s in lic.license_symbols(tree, decompose=True) if not _IDSTRING.fullmatch(s.key)
           and not _REF.fullmatch(s.key)]
    if bad:
        raise LicenseError(f"{', '.join(repr(k) for k in bad)} is not an SPDX id (letters, digits, '.', '-', '+')")


_REASONS = (   # the library's words -> ours
    ("cannot be used as an exception", "after WITH comes an SPDX exception id (e.g. Classpath-exception-2.0)"),
    ("can only be used as an exception", "an exception id stands only after WITH"),
)


def _reason(text: str) -> str:
    return next((ours for words, ours in _REASONS if words in text),
                text.split(" for token")[0].rstrip(".") or "does not parse")


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Parsed:
    """The parsed expression, or :class:`LicenseError` saying what is wrong (pure; cached)."""
    text = text.strip()
    if not text:
        raise LicenseError("empty")
    if len(text) > MAX_TEXT:
        raise LicenseError(f"longer than {MAX_TEXT} characters")
    lic = licensing()
    try:
        tree = lic.parse(text, validate=False, strict=True)
    except (ExpressionError, AttributeError, TypeError) as exc:   # the library's errors (and one of its bugs)
        raise LicenseError(_reason(str(exc))) from None
    if tree is None:
        raise LicenseError("empty")
    _check_symbols(lic, tree)
    choices = {tuple(sorted(c, key=lambda t: t.text)) for c in _terms(tree)}
    return Parsed(normalized=str(tree), choices=tuple(sorted(choices, key=lambda c: [t.text for t in c])))


def problem(text: str) -> str:
    """Why ``text`` is not a valid SPDX expression, "" when it is one."""
    try:
        parse(text)
    except LicenseError as exc:
        return str(exc)
    return ""


def expression(text: str) -> str | None:
    """The normalised expression when ``text`` is a valid SPDX expression, else None."""
    try:
        return parse(text).normalized
    except LicenseError:
        return None


def unstated(text: str) -> bool:
    """No licence stated (empty, NOASSERTION, NONE, UNKNOWN)."""
    return text.strip().upper() in UNSTATED


def refs(text: str) -> list[str]:
    """The ``LicenseRef-`` ids an expression names."""
    return _REF_IN_TEXT.findall(text)


# ----------------------------------------------------------------- lists of licenses (policy)

def term_of(entry: str) -> Term:
    """A list entry (``GPL-2.0-only``, ``GPL-2.0-only WITH Classpath-exception-2.0``, ``LicenseRef-x``) as the
    one term it names, normalised; :class:`LicenseError` when it is not exactly one license."""
    parsed = parse(entry)
    if len(parsed.choices) != 1 or len(parsed.choices[0]) != 1:
        raise LicenseError(f"'{entry}' is an expression; a list entry names one license")
    return parsed.choices[0][0]


def _matches(term: Term, listed: frozenset[Term]) -> bool:
    """A term is on a list when the list names it exactly or names its license without the exception."""
    return term in listed or Term(license=term.license) in listed


def allowed_choice(text: str, allowed: Iterable[str]) -> bool:
    """Whether one may choose licenses of ``text`` that are all on ``allowed`` (invalid entries are skipped:
    the profile validation refuses them)."""
    listed = _listed(allowed)
    return any(all(_matches(t, listed) for t in c) for c in parse(text).choices)


def avoidable(text: str, denied: Iterable[str]) -> bool:
    """Whether one may choose licenses of ``text`` none of which is on ``denied``: ``GPL-3.0-only OR MIT``
    avoids a deny of GPL-3.0-only (choose MIT), ``GPL-3.0-only AND MIT`` does not."""
    listed = _listed(denied)
    return any(not any(_matches(t, listed) for t in c) for c in parse(text).choices)


def denied_in(text: str, denied: Iterable[str]) -> list[str]:
    """The denied licenses ``text`` names (sorted), to say which in a violation."""
    listed = _listed(denied)
    return sorted({t.text for c in parse(text).choices for t in c if _matches(t, listed)})


def _listed(entries: Iterable[str]) -> frozenset[Term]:
    out = set()
    for e in entries:
        try:
            out.add(term_of(e))
        except LicenseError:
            continue
    return frozenset(out)


def entry_problems(entries: Sequence[str]) -> list[tuple[int, str]]:
    """(index, why) of each list entry that is not one valid license."""
    out = []
    for i, e in enumerate(entries):
        try:
            term_of(e)
        except LicenseError as exc:
            out.append((i, str(exc)))
    return out
