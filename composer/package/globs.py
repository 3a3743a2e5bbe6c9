"""Path globs: ``*`` and ``?`` stay inside one path component, ``**`` spans components."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable


@functools.cache
def compile_glob(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    pattern = pattern.strip("/")
    if pattern.endswith("/**"):  # 'dir/**' is the directory and everything in it
        pattern = pattern[:-3]
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
        i += 1
    return re.compile(out + "(?:/.*)?")  # a match on a directory covers what is inside it


def matches(path: str, patterns: Iterable[str]) -> bool:
    return any(compile_glob(p).fullmatch(path) for p in patterns)


def match_exact(path: str, pattern: str) -> bool:
    """Match without the implicit directory-contents rule."""
    return re.fullmatch(compile_glob(pattern).pattern.removesuffix("(?:/.*)?"), path) is not None
