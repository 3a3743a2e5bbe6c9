"""Repository pins in a profile: which repository a package name (or glob of names) may come from.

Each repository may list ``packages:`` (names or fnmatch globs). A name that matches a repository's
list may come only from that repository (as a package name or as a provide). A name matched by the
lists of two repositories is ambiguous and refused here, when the profile is loaded.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence

Report = Callable[[Sequence[str | int], str, str], None]


def pin_errors(repositories: Sequence[Mapping[str, object]], report: Report) -> None:
    """Two repositories may not pin the same pattern; a plain name pinned twice is an error too."""
    owner: dict[str, tuple[str, int]] = {}
    for i, r in enumerate(repositories):
        for j, pattern in enumerate(_listed(r.get("packages"))):
            if not isinstance(pattern, str):
                continue
            first = owner.get(pattern)
            if first is not None and first[0] != r.get("name"):
                report(("repositories", i, "packages", j),
                       f"'{pattern}' is pinned to both '{first[0]}' and '{r.get('name')}'",
                       "pin a name to one repository")
            owner.setdefault(pattern, (str(r.get("name")), i))
    for pattern, (repo, _) in sorted(owner.items()):  # a literal name matched by another repository's glob
        if any(ch in pattern for ch in "*?["):
            continue
        for i, r in enumerate(repositories):
            if r.get("name") != repo and any(fnmatch.fnmatchcase(pattern, p) for p in _listed(r.get("packages"))
                                             if isinstance(p, str)):
                report(("repositories", i, "packages"),
                       f"'{pattern}' (pinned to '{repo}') also matches a pattern of '{r.get('name')}'",
                       "make the globs disjoint so each name has one repository")


def _listed(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []
