"""One architecture's verified indexes as a libsolv pool, built once and cached in libsolv's own format.

Versions are letters-only libsolv EVRs (:func:`composer.solve.evr.deb_evr` for ``deb`` entries,
:func:`composer.solve.evr.native_evr` for native ones): libsolv's order of them is exactly the version order
(dpkg's for Debian versions, SemVer precedence then revision for native ones), so its "newest" is ours.
Every alternative of a relation is the exact set of candidates it accepts (:mod:`composer.solve.relations`),
an ``OR`` of the candidates' own ``NAME = EVR`` provides, never a libsolv range: Cargo's pre-release rule is
not an interval, an unversioned Debian provide must not satisfy a versioned relation, and such chains load from
a cache three times faster than range relations (measured: 0.06 s against 0.18 s at 100,000 packages). A
clause is the ``REL_OR`` of its alternatives, in clause order.

The cache, keyed by the digests of the verified indexes, the architecture, :data:`POOL_REVISION` and
the libsolv version, is three files: ``KEY.solv`` (``repo.write``, loaded with ``add_solv``), ``KEY.clauses``
(the clause table of :mod:`composer.solve.relations`: what the resolver's preferences read), both checked
against ``KEY.sha256`` first, and ``KEY.entries``: a table of (offset, blake2b-64) per solvable, in pool
order, then one JSON line ``[origin, entry]`` per solvable. A lock reads only the entries of the
packages it touches, each checked against its digest and its solvable's name.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib.metadata
import json
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import solv

from composer.arch import ARCHES
from composer.errors import ComposerError, VerificationError
from composer.fsutil import atomic_output, atomic_write
from composer.repo.index import IndexEntry
from composer.solve.clausetable import ClauseTable, RowClauses
from composer.solve.evr import Solvable, SolvPool, SolvRepo
from composer.solve.relations import (
    CONFLICT_KEYS,
    STAR,
    Catalog,
    Selector,
    TableMaker,
    doc_evr,
    evr_in,
    member_of,
    parse_requirement,
    parse_version,
    split_provide,
)

__all__ = ["POOL_REVISION", "STAR", "IndexData", "SolvIndex", "dependencies", "gc_paused", "parse_requirement",
           "parse_version"]

POOL_REVISION = 5  # bump when the encoding changes (5: Cargo requirements naming a revision); old caches unread


def _solv_version() -> str:
    """The libsolv binding's version (the .solv format belongs to the libsolv that wrote it): its package
    metadata, else (Debian's python3-solv ships none) a digest of the binding's files."""
    try:
        return importlib.metadata.version("solv")
    except importlib.metadata.PackageNotFoundError:
        here = Path(solv.__file__).parent
        digest = hashlib.sha256()
        for path in sorted([Path(solv.__file__), *here.glob("_solv*")]):
            digest.update(path.read_bytes())
        return f"sha256:{digest.hexdigest()}"


SOLV_VERSION = _solv_version()
_HEAD = struct.Struct("<QQ")  # entry count, length of the origins JSON
_ROW = struct.Struct("<QH8s")  # offset of the entry text, origin number, blake2b-64 of the text
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

Document = Mapping[str, Any]  # an index entry as the index carries it (see IndexEntry.to_dict)


def dependencies(entry: IndexEntry | Document, features: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(name, requirement) of the dependencies in force: required ones, plus optional ones a feature enables."""
    table = entry.features if isinstance(entry, IndexEntry) else entry["features"]
    deps = entry.dependencies if isinstance(entry, IndexEntry) else entry["dependencies"]
    enabled: set[str] = set()
    todo = list(features)
    while todo:
        f = todo.pop()
        for item in table.get(f, []):
            dep = str(item).split("/", 1)[0]
            if dep in table and dep not in enabled:
                todo.append(dep)
            enabled.add(dep)
    out = []
    for name, value in sorted(deps.items()):
        if isinstance(value, str):
            out.append((name, value))
        elif not value.get("optional", False) or name in enabled:
            out.append((name, value.get("version", "*")))
    return out


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile: parsing an index makes millions of acyclic objects, and
    the collector's full passes over them cost more than the parse itself (0.8 s -> 0.3 s at 100,000)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass(frozen=True, slots=True)
class IndexData:
    """A verified index as loaded: its decompressed JSON (when known) and its entry dicts."""

    raw: bytes | None
    docs: Sequence[Document]

    def texts(self) -> list[bytes] | None:
        """The JSON text of each entry, sliced out of ``raw`` without re-encoding: in the canonical
        index (sorted keys) every entry object, and nothing else, starts with ``{"arch":"`` (inside a
        string a quote is always escaped). None when ``raw`` does not have that shape."""
        raw = self.raw
        if raw is None:
            return None
        begin = raw.find(b'"packages":[')
        if begin < 0 or not raw.endswith(b"]}"):
            return None
        starts = []
        i = raw.find(_ENTRY_START, begin)
        while i >= 0:
            starts.append(i)
            i = raw.find(_ENTRY_START, i + 1)
        if len(starts) != len(self.docs):
            return None
        if not starts:
            return []   # an empty index: no entry texts
        ends = [j - 1 for j in starts[1:]] + [len(raw) - 2]
        return [raw[a:b] for a, b in zip(starts, ends, strict=True)]


_ENTRY_START = b'{"arch":"'
Row = tuple[str, Document, bytes | None]  # origin, entry, its JSON text when known


class EntryStore:
    """The ``KEY.entries`` file: random access to the entry of solvable i, checked on read.

    Layout: count (u64), origins JSON length (u64), origins JSON (a list of names), then count + 1
    rows of (offset u64, origin u16, blake2b-64 of the entry text), then the entry texts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None
        self.count = 0
        self.origins: list[str] = []
        self._table = 0

    def open(self) -> bool:
        try:
            f = self.path.open("rb")
            self.count, olen = _HEAD.unpack(f.read(_HEAD.size))
            self.origins = [str(o) for o in json.loads(f.read(olen))]
            size = os.fstat(f.fileno()).st_size
            self._table = _HEAD.size + olen
            f.seek(self._table + self.count * _ROW.size)
            (end, _, _) = _ROW.unpack(f.read(_ROW.size))
        except (OSError, ValueError, TypeError, struct.error):
            return False
        if self._table + (self.count + 1) * _ROW.size + end != size:
            f.close()
            return False
        self._file = f
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def read(self, i: int) -> tuple[str, dict[str, Any]] | None:
        f = self._file
        if f is None or not 0 <= i < self.count:
            return None
        f.seek(self._table + i * _ROW.size)
        row = f.read(2 * _ROW.size)
        (start, origin, digest), (end, _, _) = _ROW.unpack(row[:_ROW.size]), _ROW.unpack(row[_ROW.size:])
        f.seek(self._table + (self.count + 1) * _ROW.size + start)
        text = f.read(end - start)
        if len(text) != end - start or hashlib.blake2b(text, digest_size=8).digest() != digest:
            return None
        try:
            doc = json.loads(text)
            return self.origins[origin], doc
        except (ValueError, IndexError):
            return None

    def origin_list(self) -> list[str]:
        """The origin of every entry, in pool order, from the table alone (no entry is read)."""
        f = self._file
        if f is None:
            return []
        f.seek(self._table)
        table = f.read(self.count * _ROW.size)
        return [self.origins[o] for _, o, _ in _ROW.iter_unpack(table)]

    @staticmethod
    def write(path: Path, rows: Sequence[Row]) -> None:
        origins = sorted({r[0] for r in rows})
        number = {o: i for i, o in enumerate(origins)}
        texts = [text if text is not None else _ENCODE(doc).encode() for _, doc, text in rows]
        table, offset = [], 0
        for (origin, _, _), text in zip(rows, texts, strict=True):
            table.append(_ROW.pack(offset, number[origin], hashlib.blake2b(text, digest_size=8).digest()))
            offset += len(text)
        table.append(_ROW.pack(offset, 0, b"\0" * 8))
        names = json.dumps(origins).encode()
        with atomic_output(path, durable=False) as f:
            f.write(_HEAD.pack(len(rows), len(names)))
            f.write(names)
            f.write(b"".join(table))
            f.write(b"".join(texts))


def _deb_arch(arch: str) -> str:
    known = ARCHES.get(arch)
    return known.deb if known is not None else arch


class SolvIndex:
    """The pool, its one repository, the clause table, and lazy access to the entry behind each solvable."""

    def __init__(self, pool: SolvPool, repo: SolvRepo, arch: str, store: EntryStore | None = None,
                 table: ClauseTable | None = None) -> None:
        self.pool, self.repo, self.arch = pool, repo, arch
        self.store = store
        self.first = -1  # id of the first solvable (solvables are contiguous, in entry order)
        self._docs: dict[int, tuple[str, Document]] = {}
        self._entries: dict[int, IndexEntry] = {}
        self._rows: list[Row] = []  # what build() made, for write()
        self.installed: SolvRepo | None = None  # the @installed repository (a root's packages), when there is one
        self.table = table if table is not None else ClauseTable()
        self.catalog = Catalog(self._fill)
        self.maker = TableMaker(Selector(self.catalog, _deb_arch(arch)), self.table)
        self._alt_deps: dict[int, int] = {}
        self._clause_deps: dict[int, int] = {}
        self._described: dict[int, tuple[bool, int]] = {}   # dep id -> (is a clause, its number): the text on use
        # (name id, EVR id) per member while building, made on first use (the order libsolv ids are made in
        # is kept as it was: the .solv file, and any tie libsolv breaks by id, stay the same)
        self._pairs: list[tuple[int, int] | None] = []
        self._described_all = False

    # ---- building and the cache
    @classmethod
    def build(cls, sources: Sequence[tuple[str, IndexData | Sequence[IndexEntry]]], arch: str,
              installed: Sequence[Document] = ()) -> SolvIndex:
        """A pool of the entries of ``arch`` (and noarch). A package listed by two repositories is there
        twice, once per origin: which one may be used is the repository policy's decision
        (``composer.solve.policy``), never the order of the repositories."""
        rows: list[Row] = []
        seen: set[tuple[object, ...]] = set()
        for origin, items in sources:
            data = items if isinstance(items, IndexData) else IndexData(None, [e.to_dict() for e in items])
            texts = data.texts()
            for i, d in enumerate(data.docs):
                key = (origin, d["name"], d["version"], d.get("epoch", 0), d.get("revision", ""),
                       d.get("upstream_version", ""), d["arch"])
                if d["arch"] in (arch, "noarch") and key not in seen:
                    seen.add(key)
                    rows.append((origin, d, texts[i] if texts is not None else None))
        try:
            return cls._build(rows, arch, installed)
        except (KeyError, TypeError, ValueError, AttributeError, ComposerError) as exc:
            detail = exc.message if isinstance(exc, ComposerError) else f"{type(exc).__name__}: {exc}"
            raise VerificationError(f"malformed index entry for {arch} ({detail})",
                                    hint="the repository published an index this vcomp cannot read") from None

    @classmethod
    def _build(cls, rows: list[Row], arch: str, installed: Sequence[Document] = ()) -> SolvIndex:
        unsorted = [member_of(r[1]) for r in rows]
        keyed = sorted((m.name, m.scheme, m.evr, r[1]["arch"], r[0], i)
                       for i, (m, r) in enumerate(zip(unsorted, rows, strict=True)))
        rows[:] = [rows[k[-1]] for k in keyed]
        members = [unsorted[k[-1]] for k in keyed]
        pool = solv.Pool()
        pool.setarch(arch)
        repo = pool.add_repo("index")
        self = cls(pool, repo, arch)
        self.catalog = catalog = Catalog()
        self.maker = TableMaker(Selector(catalog, _deb_arch(arch)), self.table)
        docs = [d for _, d, _ in rows]
        everyone = [*members, *(member_of(d) for d in installed)]
        for k, (m, d) in enumerate(zip(everyone, [*docs, *installed], strict=True)):
            catalog.add(k, m, d["provides"])
        self._pairs = [None] * len(everyone)
        maker = self.maker
        for d in docs:
            self.table.add_row(maker.row(d.get("relations", {}), _in_force(d), priority=str(d.get("priority", "")),
                                         essential=bool(d.get("essential", False))))
        made = self._add(repo, docs, 0)
        self.first = made[0] if made else -1
        if installed:  # the root's packages: libsolv's installed repository (kept, upgraded, erased)
            local = pool.add_repo("@installed")
            for sid, d in zip(self._add(local, installed, len(docs)), installed, strict=True):
                self._docs[sid] = ("@installed", d)
            local.internalize()
            pool.installed = local
            self.installed = local
        repo.internalize()
        pool.createwhatprovides()
        self._rows = rows
        return self

    def _add(self, repo: SolvRepo, docs: Sequence[Document], base: int) -> list[int]:
        """One solvable per document (in order); member numbers start at ``base``."""
        pool, table, maker = self.pool, self.table, self.maker
        provides, requires, conflicts = solv.SOLVABLE_PROVIDES, solv.SOLVABLE_REQUIRES, solv.SOLVABLE_CONFLICTS
        add_solvable, str2id, rel2id, eq = repo.add_solvable, pool.str2id, pool.rel2id, solv.REL_EQ
        members, cdeps, clause_dep, clause = self.catalog.members, self._clause_deps, self.clause_dep, maker.clause
        recommends, suggests = solv.SOLVABLE_RECOMMENDS, solv.SOLVABLE_SUGGESTS
        pairs = self._pairs
        ids: dict[str, int] = {}  # str2id of EVRs and arches, which repeat

        def sid(text: str) -> int:
            got = ids.get(text)
            if got is None:
                got = ids[text] = str2id(text)
            return got

        made = []
        for i, d in enumerate(docs):
            m = members[base + i]
            s = add_solvable()
            made.append(s.id)
            pair = pairs[base + i]
            if pair is None:
                pair = pairs[base + i] = (str2id(m.name), sid(m.evr))
            nid, eid = pair
            s.nameid, s.evrid, s.archid = nid, eid, sid(d["arch"])
            s.add_deparray(provides, rel2id(nid, eid, eq))
            for p in d["provides"]:
                name, version = split_provide(p)
                evr = evr_in(m.scheme, version) if version is not None else None
                s.add_deparray(provides, rel2id(str2id(name), sid(evr), eq) if evr is not None else str2id(name))
            relations = d.get("relations") or {}
            row = table.row(base + i) if base + i < table.n_rows else maker.row(relations, _in_force(d))
            for c in row.requires:
                s.add_deparray(requires, cdeps.get(c) or clause_dep(c))
            for c in row.recommends:
                s.add_deparray(recommends, cdeps.get(c) or clause_dep(c))
            for c in row.suggests:
                s.add_deparray(suggests, cdeps.get(c) or clause_dep(c))
            for c in d["conflicts"]:
                s.add_deparray(conflicts, str2id(c))
            if relations:
                for key in CONFLICT_KEYS:
                    for text in relations.get(key, ()):
                        s.add_deparray(conflicts, clause_dep(clause(text)))
        return made

    # ---- dependency ids
    def alt_dep(self, a: int) -> int:
        """The libsolv dependency of alternative ``a`` of the clause table (memoized)."""
        dep = self._alt_deps.get(a)
        if dep is None:
            alt = self.table.alt(a)
            pool = self.pool
            if alt.cands is None:
                dep = int(pool.str2id(alt.name))
            elif not alt.cands:
                dep = int(pool.str2id(self.table.none(a)))   # libsolv reports "nothing provides <text>"
            else:
                rel2id = pool.rel2id
                dep = 0
                for name, evr in dict.fromkeys(self._pair(k) for k in alt.cands):
                    one = rel2id(name, evr, solv.REL_EQ)
                    dep = one if dep == 0 else rel2id(dep, one, solv.REL_OR)
                dep = int(dep)
            self._alt_deps[a] = dep
            self._described.setdefault(dep, (False, a))
        return dep

    def _pair(self, k: int) -> tuple[int, int]:
        """(name id, EVR id) of member ``k``: made once per member while building, from libsolv in a loaded pool."""
        pair = self._pairs[k] if k < len(self._pairs) else None
        if pair is not None:
            return pair
        m = self.catalog.members.get(k)
        if m is not None:
            pair = int(self.pool.str2id(m.name)), int(self.pool.str2id(m.evr))
            if k < len(self._pairs):
                self._pairs[k] = pair
            return pair
        s = self.pool.id2solvable(self.first + k)
        return int(s.nameid), int(s.evrid)

    def clause_dep(self, c: int) -> int:
        """The dependency of clause ``c``: the REL_OR of its alternatives, in clause order."""
        dep = self._clause_deps.get(c)
        if dep is None:
            alts = self.table.clause(c)
            dep = self.alt_dep(alts[0])
            for a in alts[1:]:
                dep = int(self.pool.rel2id(dep, self.alt_dep(a), solv.REL_OR))
            self._clause_deps[c] = dep
            self._described.setdefault(dep, (True, c))
        return dep

    def dep(self, name: str, req: str) -> int:
        """The dependency id of a requirement on ``name`` (requests, ``[dependencies]``): Cargo (``^1.2``), or a
        Debian relation ``(OP VERSION)`` (a profile pinning a Debian package: ``(= 1:2.36-9+deb12u7)``)."""
        text = req.strip()
        if text.startswith("("):
            return self.relation_dep(f"{name} {text}")
        return self.alt_dep(self.maker.cargo_alt(name, req))

    def request_job(self, name: str, req: str) -> Any:
        """The libsolv job that installs a request for ``name``: like a dependency on it (:meth:`dep`), but when
        real packages called ``name`` satisfy it, one of those only (apt installs the real package a user names,
        never one of its providers: ``apt-transport-https``, not ``apt`` which provides it). An explicit set of
        solvables, because under libsolv's RPM rules an unversioned provide satisfies even ``NAME = EVR``."""
        dep = self.dep(name, req)
        found = list(self.pool.whatprovides(dep))
        real = [s.id for s in found if s.name == name]
        if not real or len(real) == len(found):
            return self.pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE_PROVIDES, dep)
        return self.pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE_ONE_OF, self.pool.towhatprovides(real))

    def relation_dep(self, text: str) -> int:
        """The dependency id of a Debian relation clause (``libc6 (>= 2.36) | libc6-udeb``)."""
        return self.clause_dep(self.maker.clause(text))

    def describe_dep(self, dep: int) -> str | None:
        """The requirement a dependency id was made for, as the package wrote it ('nano ^7', 'libc6 (>= 2.36)',
        'default-mta | mail-transport-agent'), or None when the id was not made for a relation of this index.
        Two texts with the same candidates share one id: the first one made names it."""
        got = self._described.get(dep)
        if got is None and not self._described_all and self.table.n_clauses:
            self._described_all = True   # a pool loaded from the cache: make every clause's id once
            for c in range(self.table.n_clauses):
                self.clause_dep(c)
            got = self._described.get(dep)
        if got is None:
            return None
        clause, number = got
        if clause:
            return self.table.clause_text(number)
        alt = self.table.alt(number)
        return alt.name if alt.cands is None else self.table.text(number)

    def _fill(self, catalog: Catalog, name: str) -> None:
        """Add the members calling or providing ``name`` (a pool loaded from the cache: libsolv and the entries)."""
        for s in self.providers(name):
            k = self.member_number(s.id)
            if k is not None and k not in catalog.members:
                d = self._doc(s.id)[1]
                catalog.add(k, member_of(d), d["provides"])

    def member_number(self, sid: int) -> int | None:
        """The member (table row) number of an index solvable; None for an installed package."""
        if self.installed is not None and self.pool.id2solvable(sid).repo == self.installed:
            return None
        return sid - self.first

    def row_clauses(self, sid: int) -> RowClauses | None:
        """The clause table row of an index solvable (None for an installed package)."""
        k = self.member_number(sid)
        return self.table.row(k) if k is not None and 0 <= k < self.table.n_rows else None

    @classmethod
    def load(cls, path: Path, arch: str) -> SolvIndex | None:
        """The cached pool at ``path``, or None when it is missing, altered or unreadable (then rebuild)."""
        try:
            blob = path.read_bytes()
            clauses = path.with_suffix(".clauses").read_bytes()
            expected = path.with_suffix(".sha256").read_text().split()
        except OSError:
            return None
        if expected != [hashlib.sha256(blob).hexdigest(), hashlib.sha256(clauses).hexdigest()]:
            return None
        try:
            table = ClauseTable.from_bytes(clauses)
        except (ValueError, KeyError, TypeError, IndexError, struct.error):
            return None
        store = EntryStore(path.with_suffix(".entries"))
        if not store.open():
            return None
        pool = solv.Pool()
        pool.setarch(arch)
        repo = pool.add_repo("index")
        f = solv.xfopen(str(path))
        ok = f is not None and repo.add_solv(f)
        if f is not None:
            f.close()
        first = 2  # ids 0 and 1 are libsolv's own; one repository in a fresh pool starts at 2
        if (not ok or repo.nsolvables != store.count or table.n_rows != store.count
                or (store.count and pool.id2solvable(first).repo != repo)):
            store.close()
            return None
        pool.createwhatprovides()
        self = cls(pool, repo, arch, store, table)
        self.first = first
        return self

    def write(self, path: Path) -> None:
        """Store the pool in libsolv's format with its entries and clauses, atomically; .sha256 is written last."""
        path.parent.mkdir(parents=True, exist_ok=True)
        EntryStore.write(path.with_suffix(".entries"), self._rows)
        clauses = self.table.to_bytes()
        atomic_write(path.with_suffix(".clauses"), clauses, durable=False)
        with atomic_output(path, durable=False) as out:
            f = solv.xfopen_fd(str(path), out.fileno(), "w")
            self.repo.write(f)
            f.close()
        blob = path.read_bytes()
        atomic_write(path.with_suffix(".sha256"), (hashlib.sha256(blob).hexdigest() + " "
                                                   + hashlib.sha256(clauses).hexdigest() + "\n").encode(),
                     durable=False)

    @classmethod
    def cached(cls, cache: Path | None, arch: str,
               sources: Sequence[tuple[str, str, Callable[[], IndexData | Sequence[IndexEntry]]]]) -> SolvIndex:
        """The pool of ``sources`` (origin, index digest, loader): from ``cache`` when it is there and
        intact, else built from the loaders' entries and stored there."""
        key = hashlib.sha256(json.dumps([POOL_REVISION, SOLV_VERSION, arch, [(o, d) for o, d, _ in sources]])
                             .encode()).hexdigest()
        path = cache / f"{arch}-{key[:32]}.solv" if cache is not None else None
        if path is not None:
            loaded = cls.load(path, arch)
            if loaded is not None:
                return loaded
        with gc_paused():
            built = cls.build([(origin, load()) for origin, _, load in sources], arch)
            if path is None:
                return built
            built.write(path)
            # Answer from what was just written, and free the parsed index now (by reference counting),
            # so no later collector pass walks its millions of objects; the load costs ~0.06 s at 100,000.
            del built
            reloaded = cls.load(path, arch)
        if reloaded is None:
            raise VerificationError(f"the pool cache {path} could not be read back", hint="check the disk")
        return reloaded

    # ---- lookups
    def _doc(self, sid: int) -> tuple[str, Document]:
        if self._rows and self.first <= sid < self.first + len(self._rows):
            origin, doc, _ = self._rows[sid - self.first]
            return origin, doc
        if sid not in self._docs:
            got = self.store.read(sid - self.first) if self.store is not None else None
            s = self.pool.id2solvable(sid)
            if got is None or got[1].get("name") != s.name or _evr_or_none(got[1]) != s.evr:
                raise VerificationError(f"the cached pool of {self.arch} is damaged at {s}",
                                        hint="delete the pools cache directory (it is rebuilt on the next run)")
            self._docs[sid] = got
        return self._docs[sid]

    def entry(self, sid: int) -> IndexEntry:
        if sid not in self._entries:
            self._entries[sid] = IndexEntry.from_dict(self._doc(sid)[1])
        return self._entries[sid]

    def origin(self, sid: int) -> str:
        return self._doc(sid)[0]

    def origin_names(self) -> set[str]:
        """The repositories the index was built from (cheap: no per-solvable work)."""
        if self._rows:
            return {r[0] for r in self._rows}
        return set(self.store.origins) if self.store is not None else set()

    def origins(self) -> dict[int, str]:
        """The repository of every solvable of the index (not of the installed packages), by id."""
        if self._rows:
            return {self.first + i: r[0] for i, r in enumerate(self._rows)}
        if self.store is not None:
            return {self.first + i: o for i, o in enumerate(self.store.origin_list())}
        return {}

    def providers(self, name: str) -> list[Solvable]:
        """Solvables that are called ``name`` or provide it (pool order: by name, then version)."""
        return list(self.pool.whatprovides(self.pool.str2id(name)))

    def named(self, name: str) -> list[Solvable]:
        return [s for s in self.providers(name) if s.name == name]

    def versions_of(self, name: str) -> list[str]:
        """The version texts of the packages called ``name`` (pool order: oldest first)."""
        return [self.entry(s.id).version_text for s in self.named(name)]

    def virtuals_of(self, name: str) -> list[tuple[str, str]]:
        return [(s.name, self.entry(s.id).version_text) for s in self.providers(name) if s.name != name]

    def names(self) -> set[str]:
        """Every package name and provide (slow at scale: for error hints only)."""
        out: set[str] = set()
        for s in self.repo.solvables_iter():
            out.add(s.name)
            out.update(str(d).partition(" ")[0] for d in s.lookup_deparray(solv.SOLVABLE_PROVIDES))
        return out


def _evr_or_none(d: Document) -> str | None:
    try:
        return doc_evr(d)
    except (KeyError, TypeError, ValueError):
        return None


def _in_force(d: Document) -> list[tuple[str, str]]:
    deps = d["dependencies"]
    return sorted(deps.items()) if all(type(v) is str for v in deps.values()) else dependencies(d)
