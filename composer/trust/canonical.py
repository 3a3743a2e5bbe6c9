"""OLPC canonical JSON, the bytes TUF signs, made by the C JSON encoder when that gives the very same bytes.

python-tuf signs and verifies ``encode_canonical(signed.to_dict())`` (securesystemslib), a pure-Python
encoder: 0.14 s for the 812 kB snapshot of a million-package repository (16,384 hash bins), paid by every
publish and, twice, by every client that verifies that snapshot. ``json.dumps`` with sorted keys, no
whitespace and no ASCII escaping writes the same text for every value made only of dicts with string keys,
lists, strings without control characters, ints, booleans and None; for anything else (a float, a
non-string key, a control character, a subclass) this module calls securesystemslib's encoder, so the output
(and every error) is exactly securesystemslib's. tests/unit/test_canonical.py checks the two agree on
arbitrary values.

:func:`install` makes python-tuf's canonical serializer (``tuf.api.serialization.json``, used by
``Metadata.sign`` and ``Metadata.signed_bytes``, hence by ngclient's verification) use it.
"""

from __future__ import annotations

import json
from typing import Any

import securesystemslib.formats
import tuf.api.serialization.json as tuf_json

_slow = securesystemslib.formats.encode_canonical
_dumps = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode
_NONE = type(None)
_MAX_DEPTH = 100   # deeper values go to securesystemslib (the C encoder's recursion limit is not its)
_MAX_NODES = 5_000_000   # containers walked at most (a value sharing sublists can be huge yet shallow)


def encode_canonical(value: Any, output_function: Any = None) -> str | None:
    """securesystemslib's ``encode_canonical``, fast for plain JSON values (see the module docstring)."""
    if output_function is None and _plain(value):
        try:
            text = _dumps(value)
        except RecursionError:
            return _slow(value, output_function)
        if "\\" not in text:   # nothing escaped: no control character, quote or backslash in any string
            return text
    return _slow(value, output_function)


def _plain(value: Any) -> bool:
    """Whether ``value`` holds only exact dicts with str keys, lists, tuples, strs, ints, bools and None, at most
    :data:`_MAX_DEPTH` deep and :data:`_MAX_NODES` containers (a cyclic value is too deep). Walked a level at a
    time; types are compared by identity: a metaclass can make any type compare equal to ``str``."""
    level: list[Any] = [value]
    seen = 0
    for _ in range(_MAX_DEPTH + 1):
        seen += len(level)
        if seen > _MAX_NODES:
            return False
        below: list[Any] = []
        for item in level:
            kind = type(item)
            if kind is dict:
                for key, child in item.items():
                    if type(key) is not str:
                        return False
                    ck = type(child)
                    if ck is dict or ck is list or ck is tuple:
                        below.append(child)
                    elif not (ck is str or ck is int or ck is bool or ck is _NONE):
                        return False
            elif kind is list or kind is tuple:
                for child in item:
                    ck = type(child)
                    if ck is dict or ck is list or ck is tuple:
                        below.append(child)
                    elif not (ck is str or ck is int or ck is bool or ck is _NONE):
                        return False
            elif not (kind is str or kind is int or kind is bool or kind is _NONE):
                return False
        if not below:
            return True
        level = below
    return False


def install() -> None:
    """Make python-tuf sign and verify with :func:`encode_canonical` (idempotent)."""
    tuf_json.encode_canonical = encode_canonical  # type: ignore[assignment]
