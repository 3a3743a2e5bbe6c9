"""Regenerate tests/data/debian-versions.txt from a Debian ``Packages`` index (run by hand, not by the tests).

    python tests/data/debian-versions.py /work/scratch14/Packages > tests/data/debian-versions.txt

Lines are ``NAME VERSION`` (NAME: a package or a name it provides with ``(= VERSION)``), sorted. Kept: every
version of every name that has two or more (the same-name pairs of design14 section 0: versioned provides,
mostly), every version that is dpkg-equal to a textually different one (``1.0``/``1.0-0``, ``0.1``/``0.01``),
then random versions (seed 14) until 3,000 distinct versions. Deterministic for a given index.
"""

from __future__ import annotations

import random
import re
import sys
from collections import defaultdict
from functools import cmp_to_key
from itertools import pairwise

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from composer.version import dpkg_compare

TARGET = 3000
_PROVIDE = re.compile(r"^\s*([^\s(]+)\s*\(\s*=\s*([^\s)]+)\s*\)\s*$")


def read(path: str) -> dict[str, set[str]]:
    names: dict[str, set[str]] = defaultdict(set)
    with open(path, encoding="utf-8") as index:
        text = index.read()
    for stanza in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
        if "Package" not in fields:
            continue
        names[fields["Package"]].add(fields["Version"])
        for provide in fields.get("Provides", "").split(","):
            match = _PROVIDE.match(provide)
            if match:
                names[match[1]].add(match[2])
    return names


def main(path: str) -> None:
    names = read(path)
    rows = {(n, v) for n, vs in names.items() if len(vs) > 1 for v in vs}
    every = sorted({(v, n) for n, vs in names.items() for v in vs})
    by_version = {v: n for v, n in every}
    ordered = sorted(by_version, key=cmp_to_key(dpkg_compare))
    equal = {v for a, b in pairwise(ordered) if dpkg_compare(a, b) == 0 for v in (a, b)}
    rows |= {(by_version[v], v) for v in sorted(equal)[:400]}
    rng = random.Random(14)
    pool = sorted(by_version)
    rng.shuffle(pool)
    for version in pool:
        if len({v for _, v in rows}) >= TARGET:
            break
        rows.add((by_version[version], version))
    sys.stdout.write("".join(f"{n} {v}\n" for n, v in sorted(rows)))


if __name__ == "__main__":
    main(sys.argv[1])
