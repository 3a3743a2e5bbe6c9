"""Limits on everything vcomp reads, and depth-safe parsers for JSON, TOML and YAML.

Every document that comes from outside (a package's metadata and manifest, an index, a lock, a root's
database, a profile, a recipe, repository metadata) is parsed through :func:`load_json`, :func:`load_toml`
or :func:`load_yaml`: they refuse documents larger than ``max_document_bytes`` and nested deeper than
``max_depth`` with one clear error naming the limit, instead of a Python ``RecursionError`` or an
unbounded parse.

Limits have sane defaults and can be changed per run with environment variables named
``VCOMP_LIMIT_<FIELD>`` in upper case, e.g. ``VCOMP_LIMIT_MAX_DEPTH=128``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass
from typing import Any

import zstandard

from composer import settings
from composer.errors import UserError, VerificationError

ENV_PREFIX = settings.LIMIT.name


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Upper bounds on input. Sizes are bytes."""

    max_depth: int = 64                      # nesting of any JSON/TOML/YAML document
    max_document_bytes: int = 256 << 20      # one JSON/TOML/YAML document
    max_pax_header_bytes: int = 64 << 10     # one pax extended header in a package payload
    max_members: int = 200_000               # entries in one package
    max_file_bytes: int = 4 << 30            # one file in a package
    max_installed_bytes: int = 16 << 30      # the sum of a package's declared file sizes
    max_vendored_packages: int = 10_000      # packages one 'repo vendor' copies from an upstream

    def describe(self, field: str) -> str:
        """``max_depth=64 (VCOMP_LIMIT_MAX_DEPTH)``: how errors name a limit and its knob."""
        return f"{field}={getattr(self, field)} ({ENV_PREFIX}{field.upper()})"


class LimitExceeded(UserError):
    """An input is larger or deeper than a configured limit."""


class PackageLimitExceeded(LimitExceeded, VerificationError):
    """A package is larger or deeper than a configured limit (a hostile or corrupt package)."""


def current() -> Limits:
    """The defaults, overridden by ``VCOMP_LIMIT_*`` environment variables."""
    values: dict[str, int] = {}
    for f in dataclasses.fields(Limits):
        value = settings.LIMIT.get(f.name.upper())
        if value is not None:
            values[f.name] = value
    return Limits(**values)


def exceeded(limits: Limits, field: str, origin: str, what: str,
             error: type[LimitExceeded] = LimitExceeded) -> LimitExceeded:
    return error(f"{origin}: {what}, over the limit {limits.describe(field)}",
                 hint=f"the input is hostile or corrupt; if it is genuine, raise {ENV_PREFIX}{field.upper()}")


_NOT_MARKS = bytes(b for b in range(256) if b not in b'"[]{}')
_PLAIN_STRINGS = re.compile(rb'"[^"]*"?')   # a string without escapes (unterminated: to the end)
_INNERMOST = re.compile(rb"\[\]|\{\}")


def json_depth(data: bytes | str) -> int:
    """The deepest nesting of arrays/objects in a JSON text, found without parsing (linear, no recursion).

    In C throughout: escapes and every byte but quotes and brackets deleted, strings cut out, then each pass
    removes the innermost pairs, so a balanced text of depth d is empty after d passes (a 53 MB index: 0.3 s
    instead of 3.2 s token by token). Past 64 passes, or when brackets do not pair, the brackets left are
    counted one by one."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if b"\\" in raw:   # no escaped quote is left
        raw = _drop_escapes(raw)
    # Quotes and brackets only; two adjacent quotes close one string and open the next (or make an empty one),
    # so dropping them keeps every other bracket inside or outside its string; the few strings left hold
    # brackets and go whole.
    marks = raw.translate(None, _NOT_MARKS).replace(b'""', b"")
    brackets = _PLAIN_STRINGS.sub(b"", marks) if b'"' in marks else marks
    passes = 0
    while brackets and passes < 64:
        shorter = _INNERMOST.sub(b"", brackets)
        if len(shorter) == len(brackets):
            break
        brackets, passes = shorter, passes + 1
    if not brackets:
        return passes
    return _count_depth(brackets, passes)


_ESCAPE = re.compile(rb"\\.", re.DOTALL)


def _drop_escapes(raw: bytes) -> bytes:
    """``raw`` without its escapes (a backslash and the byte after it), read left to right as a parser does:
    split at the backslashes (few in an index) and joined, else one regex pass."""
    parts = raw.split(b"\\")
    if len(parts) > 10_000:
        return _ESCAPE.sub(b"", raw)
    out, starts = [parts[0]], True   # whether the backslash before the part starts an escape
    for part in parts[1:]:
        if not starts:      # that backslash was the escaped byte: the part is plain text
            out.append(part)
            starts = True
        elif part:          # the part's first byte is the escaped one
            out.append(part[1:])
        else:               # the escaped byte is the next backslash
            starts = False
    return b"".join(out) + (b"" if starts else b"\\")   # a last backslash escapes nothing: kept


def _count_depth(brackets: bytes, base: int) -> int:
    """The old token walk over what is left; ``base`` levels were removed beneath every bracket left."""
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest + base if deepest else base


def value_depth(value: Any) -> int:
    """Nesting depth of a parsed value (containers count one level each), computed without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list | tuple):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _check_size(data: bytes | str, origin: str, limits: Limits, error: type[LimitExceeded]) -> None:
    if len(data) > limits.max_document_bytes:
        raise exceeded(limits, "max_document_bytes", origin, f"document of {len(data)} bytes", error)


def _check_value(value: Any, origin: str, limits: Limits, error: type[LimitExceeded]) -> Any:
    depth = value_depth(value)
    if depth > limits.max_depth:
        raise exceeded(limits, "max_depth", origin, f"nested {depth} levels deep", error)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:40]} is too large for a float")
    return value


def load_json(data: bytes | str, origin: str, limits: Limits | None = None, *,
              error: type[LimitExceeded] = LimitExceeded) -> Any:
    """Parse JSON from an untrusted source; ``ValueError`` for malformed text, ``error`` for limits.

    Also a ValueError: a number with more digits than Python converts (``sys.get_int_max_str_digits``),
    ``NaN``/``Infinity`` (not JSON, though Python's parser takes them) and a float that overflows to infinity.
    """
    limits = limits or current()
    _check_size(data, origin, limits, error)
    depth = json_depth(data)
    if depth > limits.max_depth:
        raise exceeded(limits, "max_depth", origin, f"nested {depth} levels deep", error)
    try:
        return json.loads(data, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:  # cannot happen below max_depth; kept so no input can raise it
        raise exceeded(limits, "max_depth", origin, "nested deeper than the parser can go", error) from None


def load_toml(data: bytes | str, origin: str, limits: Limits | None = None, *,
              error: type[LimitExceeded] = LimitExceeded) -> dict[str, Any]:
    """Parse TOML from an untrusted source; ``tomllib.TOMLDecodeError`` (a ValueError) for malformed text,
    ``UnicodeDecodeError`` (a ValueError too) for bytes that are not UTF-8."""
    limits = limits or current()
    _check_size(data, origin, limits, error)
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:
        doc = tomllib.loads(text)
    except RecursionError:
        raise exceeded(limits, "max_depth", origin, "nested deeper than the parser can go", error) from None
    except tomllib.TOMLDecodeError:
        raise
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise tomllib.TOMLDecodeError(str(exc)) from None
    return _check_value(doc, origin, limits, error)  # type: ignore[no-any-return]


def load_yaml(data: bytes | str, origin: str, limits: Limits | None = None, *,
              error: type[LimitExceeded] = LimitExceeded) -> Any:
    """Parse YAML (safe loader) from an untrusted source; ``yaml.YAMLError`` for malformed text."""
    import yaml

    limits = limits or current()
    _check_size(data, origin, limits, error)
    try:
        doc = yaml.safe_load(data)
    except RecursionError:
        raise exceeded(limits, "max_depth", origin, "nested deeper than the parser can go", error) from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise yaml.YAMLError(str(exc)) from None
    return _check_value(doc, origin, limits, error)


def check_depth(value: Any, origin: str, limits: Limits | None = None, *,
                error: type[LimitExceeded] = LimitExceeded) -> Any:
    """Refuse an already-built structure nested deeper than ``max_depth`` (for custom loaders)."""
    return _check_value(value, origin, limits or current(), error)


__all__ = ["LimitExceeded", "Limits", "PackageLimitExceeded", "check_depth", "current", "exceeded", "json_depth",
           "load_json", "load_toml", "load_yaml", "value_depth"]


def unzstd(data: bytes, limit: int, decompressor: zstandard.ZstdDecompressor | None = None) -> bytes:
    """One zstd frame decompressed into at most ``limit`` bytes. python-zstandard allocates the size a frame's
    header declares and then ignores ``max_output_size``: a hostile frame declaring a terabyte would be a
    MemoryError before any hash is checked, so the declared size is checked first. Raises ``zstandard.ZstdError``
    (a malformed frame, or one larger than ``limit``), which each caller turns into its own error or fallback."""
    declared = zstandard.frame_content_size(data)   # -1: not declared (then max_output_size bounds it)
    if declared > limit:
        raise zstandard.ZstdError(f"the frame declares {declared} bytes, more than the {limit} expected")
    out = (decompressor or zstandard.ZstdDecompressor()).decompress(data, max_output_size=limit)
    if len(out) > limit:
        raise zstandard.ZstdError(f"the frame holds more than the {limit} bytes expected")
    return out
