"""The clause table: per index row its requires, recommends and suggests clauses, as numbers (design14 §2.3).

Made by :class:`composer.solve.relations.TableMaker` while the pool is built; read by the resolver's favor
search, its post-solve loop and the weak dependencies without parsing an entry; stored beside the pool cache
(``KEY.clauses``) as int arrays with the names and texts, and read back lazily (a pool of the whole bookworm
archive opens in milliseconds).
"""

from __future__ import annotations

import json
import re
import struct
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate, chain

Candidates = tuple[int, ...] | None   # member numbers; None: the bare name; (): nothing satisfies it
REQUIRED_RANK = 3   # composer.solve.relations.PRIORITY_RANK["required"]


@dataclass(frozen=True, slots=True)
class Alt:
    """One alternative: its name, its candidates, and whether the name has both a real package and providers
    (its text, and the id text libsolv reports when nothing satisfies it, are in the table)."""

    name: str
    cands: Candidates
    mixed: bool

    @property
    def satisfiable(self) -> bool:
        return self.cands is None or bool(self.cands)


@dataclass(frozen=True, slots=True)
class RowClauses:
    requires: tuple[int, ...]
    recommends: tuple[int, ...]
    suggests: tuple[int, ...]
    priority: int = 0
    essential: bool = False

    def weak(self, kind: str) -> tuple[int, ...]:
        return self.recommends if kind == "recommends" else self.suggests


_MAGIC = b"vcomp-clauses/1\n"
_LEN = struct.Struct("<Q")
_ARRAYS = ("alt_name", "alt_flags", "alt_cands", "cands", "clause_start", "clause_alts", "row_req", "req",
           "row_rec", "rec", "row_sug", "sug", "row_prio")
_BARE, _MIXED = 1, 2


class ClauseTable:
    """Alternatives, clauses (alternative numbers, in clause order) and per index row its clauses.

    Built with :meth:`add_alt`, :meth:`add_clause`, :meth:`add_row`; stored as int arrays plus the names and
    texts (:meth:`to_bytes`), and read back lazily: a loaded table decodes an alternative, clause or row when
    it is asked for, so a cached pool of the whole archive opens in milliseconds."""

    def __init__(self) -> None:
        self._alts: dict[int, Alt] = {}
        self._clauses: dict[int, tuple[int, ...]] = {}
        self._rows: dict[int, RowClauses] = {}
        self._texts: list[str] | None = []
        self._texts_blob = b""
        self._extra_texts: dict[int, str] = {}
        self._nones: dict[int, str] = {}
        self._nones_raw: dict[str, str] = {}   # a loaded table's, as stored (keys: alternative numbers as text)
        self._arrays: dict[str, array[int]] | None = None
        self._names: list[str] = []
        self.n_alts = self.n_clauses = self.n_rows = 0
        self.choices = False   # some clause has alternatives, or some name a real package and providers
        self._info: dict[int, tuple[int | None, tuple[str, ...], tuple[str, ...]]] = {}

    # ---- building
    def add_alt(self, alt: Alt, text: str, none: str) -> int:
        a = self.n_alts
        self._alts[a] = alt
        self.choices = self.choices or alt.mixed
        if self._texts is None:   # a loaded table: keep its texts undecoded
            self._extra_texts[a] = text
        else:
            self._texts.append(text)
        if none != text:
            self._nones[a] = none
        self.n_alts += 1
        return a

    def add_clause(self, alts: tuple[int, ...]) -> int:
        self._clauses[self.n_clauses] = alts
        self.choices = self.choices or len(alts) > 1
        self.n_clauses += 1
        return self.n_clauses - 1

    def add_row(self, row: RowClauses) -> None:
        self._rows[self.n_rows] = row
        self.n_rows += 1

    # ---- reading
    def texts(self) -> list[str]:
        if self._texts is None:
            self._texts = [str(t) for t in json.loads(self._texts_blob)]
        return self._texts

    def text(self, a: int) -> str:
        got = self._extra_texts.get(a)
        return got if got is not None else self.texts()[a]

    def none(self, a: int) -> str:
        """The id text of an alternative nothing satisfies (libsolv says "nothing provides <it>")."""
        return self._nones.get(a) or self._nones_raw.get(str(a)) or self.text(a)

    def clause_text(self, c: int) -> str:
        return " | ".join(self.text(a) for a in self.clause(c))

    def alt(self, a: int) -> Alt:
        got = self._alts.get(a)
        if got is None:
            arr = self._loaded()
            flags = arr["alt_flags"][a]
            cands = None if flags & _BARE else tuple(arr["cands"][arr["alt_cands"][a]:arr["alt_cands"][a + 1]])
            got = self._alts[a] = Alt(name=str(self._names[arr["alt_name"][a]]), cands=cands,
                                      mixed=bool(flags & _MIXED))
        return got

    def clause(self, c: int) -> tuple[int, ...]:
        got = self._clauses.get(c)
        if got is None:
            arr = self._loaded()
            got = self._clauses[c] = tuple(arr["clause_alts"][arr["clause_start"][c]:arr["clause_start"][c + 1]])
        return got

    def row(self, k: int) -> RowClauses:
        got = self._rows.get(k)
        if got is None:
            arr = self._loaded()

            def part(start: str, items: str) -> tuple[int, ...]:
                return tuple(arr[items][arr[start][k]:arr[start][k + 1]])

            prio = arr["row_prio"][k]
            got = self._rows[k] = RowClauses(requires=part("row_req", "req"), recommends=part("row_rec", "rec"),
                                             suggests=part("row_sug", "sug"), priority=prio & 0x7F,
                                             essential=bool(prio & 0x80))
        return got

    def requires(self, k: int) -> tuple[int, ...]:
        """The requires clauses of row ``k`` (without decoding the rest of the row)."""
        got = self._rows.get(k)
        if got is not None:
            return got.requires
        arr = self._loaded()
        return tuple(arr["req"][arr["row_req"][k]:arr["row_req"][k + 1]])

    def clause_info(self, c: int) -> tuple[int | None, tuple[str, ...], tuple[str, ...]]:
        """What the favor search needs of clause ``c``: its first satisfiable alternative when it has several
        (else None), its alternatives' names, and those names that have a real package and providers."""
        got = self._info.get(c)
        if got is None:
            alts = self.clause(c)
            first = next((a for a in alts if self.alt(a).satisfiable), None) if len(alts) > 1 else None
            names = tuple(self.alt(a).name for a in alts)
            got = self._info[c] = (first, names, tuple(self.alt(a).name for a in alts if self.alt(a).mixed))
        return got

    def ranked(self) -> list[tuple[int, int]]:
        """(priority rank, row) of the rows with a Priority apt prefers, weakest first."""
        if self._arrays is not None:
            prios = self._arrays["row_prio"]
            return sorted((prios[k] & 0x7F, k) for k in _nonzero(prios) if prios[k] & 0x7F)
        return sorted((self.row(k).priority, k) for k in range(self.n_rows) if self.row(k).priority)

    def essential_rows(self, *, required: bool) -> list[int]:
        if self._arrays is not None:
            prios = self._arrays["row_prio"]
            return [k for k in _nonzero(prios) if prios[k] & 0x80 or (required and prios[k] & 0x7F == REQUIRED_RANK)]
        return [k for k in range(self.n_rows)
                if self.row(k).essential or (required and self.row(k).priority == REQUIRED_RANK)]

    def _nones_map(self) -> dict[int, str]:
        return {**{int(k): str(v) for k, v in self._nones_raw.items()}, **self._nones}

    def _loaded(self) -> dict[str, array[int]]:
        if self._arrays is None:
            raise KeyError("not in the clause table")
        return self._arrays

    # ---- storing
    def to_bytes(self) -> bytes:
        """The table as bytes: a JSON head, the texts, then the int arrays (each built in one pass)."""
        alt, clause, row = self.alt, self.clause, self.row
        alts = [self._alts.get(a) or alt(a) for a in range(self.n_alts)]
        clauses = [self._clauses.get(c) or clause(c) for c in range(self.n_clauses)]
        rows = [self._rows.get(k) or row(k) for k in range(self.n_rows)]
        names: dict[str, int] = {}
        out: dict[str, array[int]] = {
            "alt_name": array("i", [names.setdefault(x.name, len(names)) for x in alts]),
            "alt_flags": array("b", [(_BARE if x.cands is None else 0) | (_MIXED if x.mixed else 0) for x in alts]),
            "alt_cands": _starts(len(x.cands or ()) for x in alts),
            "cands": array("i", chain.from_iterable(x.cands or () for x in alts)),
            "clause_start": _starts(map(len, clauses)),
            "clause_alts": array("i", chain.from_iterable(clauses)),
            "row_prio": array("B", [r.priority | (0x80 if r.essential else 0) for r in rows])}
        for start, items, field in (("row_req", "req", "requires"), ("row_rec", "rec", "recommends"),
                                    ("row_sug", "sug", "suggests")):
            parts = [getattr(r, field) for r in rows]
            out[start] = _starts(map(len, parts))
            out[items] = array("i", chain.from_iterable(parts))
        head = json.dumps({"names": list(names), "nones": {str(k): v for k, v in self._nones_map().items()},
                           "counts": [self.n_alts, self.n_clauses, self.n_rows], "choices": self.choices},
                          separators=(",", ":")).encode()
        texts = json.dumps(self.texts(), separators=(",", ":")).encode()
        parts_ = [head, texts, *(out[k].tobytes() for k in _ARRAYS)]
        return _MAGIC + b"".join(_LEN.pack(len(p)) + p for p in parts_)

    @classmethod
    def from_bytes(cls, blob: bytes) -> ClauseTable:
        if not blob.startswith(_MAGIC):
            raise ValueError("not a clause table")
        parts, at = [], len(_MAGIC)
        while at < len(blob):
            (n,) = _LEN.unpack_from(blob, at)
            parts.append(blob[at + _LEN.size:at + _LEN.size + n])
            at += _LEN.size + n
        if len(parts) != 2 + len(_ARRAYS):
            raise ValueError("truncated clause table")
        head = json.loads(parts[0])
        self = cls()
        self._names, self._nones_raw = head["names"], head["nones"]   # read as they are, on use
        self.n_alts, self.n_clauses, self.n_rows = (int(x) for x in head["counts"])
        self.choices = bool(head["choices"])
        self._texts, self._texts_blob = None, parts[1]
        arrays: dict[str, array[int]] = {}
        for name, raw in zip(_ARRAYS, parts[2:], strict=True):
            arr = array("b" if name == "alt_flags" else "B" if name == "row_prio" else "i")
            arr.frombytes(raw)
            arrays[name] = arr
        if len(arrays["alt_name"]) != self.n_alts or len(arrays["row_prio"]) != self.n_rows \
                or len(arrays["clause_start"]) != self.n_clauses + 1:
            raise ValueError("inconsistent clause table")
        self._arrays = arrays
        return self


def _starts(lengths: Iterable[int]) -> array[int]:
    """Offsets of consecutive slices of the given lengths, with the end: [0, l0, l0 + l1, ...]."""
    return array("i", accumulate(lengths, initial=0))


_NONZERO = re.compile(rb"[^\x00]")


def _nonzero(values: array[int]) -> list[int]:
    """The positions of the non-zero bytes of a byte array, found in C (most rows have no Priority)."""
    return [m.start() for m in _NONZERO.finditer(values.tobytes())]
