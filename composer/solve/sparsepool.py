"""A pool of only the names a resolution can reach, read from the repositories' sparse indexes.

From the profile's requested names and the base set's names, :func:`composer.repo.sparse.closure` follows every
dependency, relation alternative and provider until nothing new is reached; the entries of those names are the
pool. Packages outside that closure can never be installed (nothing reachable requires or provides them), and the
pool sorts its rows itself, so the resolver's answer is the whole index's (tests/unit/test_repo_sparse.py and
tests/integration/test_sparse_lock.py compare the locks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from composer import settings
from composer.errors import UserError
from composer.repo.client import RepositoryClient
from composer.repo.sparse import AUTO_SPARSE_BYTES, MAX_NAME, SparseFile, provided_name
from composer.solve.pool import IndexData, SolvIndex
from composer.solve.relations import REQUIRE_KEYS, WEAK_KEYS, parse_clause

Lookup = Callable[[Sequence[str]], Mapping[str, Sequence[SparseFile]]]


def reached_names(doc: Mapping[str, Any]) -> set[str]:
    """Every name an entry can make the resolver look at: its dependencies (optional ones too) and the
    alternatives of its requires, pre-requires, recommends and suggests (conflicts pull nothing in)."""
    out = {str(n) for n in doc.get("dependencies", {})}
    relations = doc.get("relations", {})
    for key in (*REQUIRE_KEYS, *WEAK_KEYS):
        for text in relations.get(key, ()):
            out.update(a.name for a in parse_clause(str(text)))
    return out


def closure(roots: Iterable[str], lookup: Lookup) -> dict[str, Sequence[SparseFile]]:
    """Names -> their files (one per repository), from ``roots`` following every reached name and every
    provider until nothing new is reached. ``lookup(names)`` returns name -> files for a batch."""
    found: dict[str, Sequence[SparseFile]] = {}
    todo = {n for n in roots if n}
    while todo:
        batch = sorted(n for n in todo if 0 < len(n) <= MAX_NAME)   # no file for other names: nothing
        todo = set()
        got: Mapping[str, Sequence[SparseFile]] = lookup(batch)
        for name in batch:
            files = got.get(name, ())
            found[name] = files
            for f in files:
                todo.update(f.providers)
                for d in f.packages:
                    todo.update(reached_names(d))
        todo -= found.keys()
    return found




def sparse_wanted(clients: Mapping[str, RepositoryClient], arch: str) -> bool:
    """Whether to resolve ``arch`` with the sparse index: VCOMP_INDEX=sparse; or auto when every repository
    publishes it and their whole indexes total AUTO_SPARSE_BYTES or more; or, whatever the mode, when a
    repository's whole index is behind its sparse files (the whole index is then not the repository's state:
    a lock made from it would not be the lock another machine makes). Repositories without sparse files then
    take part with their whole index (:func:`sparse_index`). Lengths and backlogs come from the signed
    metadata: deciding downloads nothing."""
    mode = settings.INDEX.get()
    if not clients:
        return False
    behind = any(c.whole_behind(arch) for c in clients.values())
    if mode == "whole" and not behind:
        return False
    missing = [name for name, c in clients.items() if not c.has_sparse(arch)]
    if missing and mode == "sparse":
        raise UserError(f"VCOMP_INDEX=sparse: repository {', '.join(missing)} publishes no sparse index for {arch}",
                        hint="unset VCOMP_INDEX (auto falls back to the whole index), or republish the repository "
                             "with a vcomp that writes it (docs/repo-sparse.md)")
    if behind:
        return True
    if missing:
        return False
    return mode == "sparse" or sum(c.index_length(arch) for c in clients.values()) >= AUTO_SPARSE_BYTES


def whole_files(docs: Sequence[Mapping[str, Any]], arch: str) -> tuple[dict[str, SparseFile], set[str]]:
    """A whole index's entries shaped as the sparse files it would have (name -> its entries and providers),
    and its base set's names: how a repository without sparse files takes part in a sparse pool."""
    named: dict[str, list[Mapping[str, Any]]] = {}
    providers: dict[str, set[str]] = {}
    base: set[str] = set()
    for d in docs:
        if d.get("arch") not in (arch, "noarch"):
            continue
        name = str(d.get("name", ""))
        named.setdefault(name, []).append(d)
        for p in d.get("provides", ()):
            providers.setdefault(provided_name(str(p)), set()).add(name)
        if d.get("essential") or d.get("priority") == "required":
            base.add(name)
    files = {n: SparseFile(name=n, packages=tuple(named.get(n, ())), providers=tuple(sorted(providers.get(n, ()))))
             for n in named.keys() | providers.keys()}
    return files, base


class _Source:
    """One repository in a sparse pool: its sparse files, or its whole index shaped as them."""

    def __init__(self, client: RepositoryClient, arch: str) -> None:
        self.client, self.arch = client, arch
        self.whole: tuple[dict[str, SparseFile], set[str]] | None = None
        if not client.has_sparse(arch):
            self.whole = whole_files(client.index_documents(arch)[1], arch)

    def files(self, names: Sequence[str]) -> dict[str, SparseFile]:
        if self.whole is None:
            return self.client.sparse_entries(self.arch, names)
        return {n: self.whole[0][n] for n in names if n in self.whole[0]}

    def base(self) -> set[str]:
        if self.whole is None:
            b = self.client.sparse_base(self.arch)
            return {*b.essential, *b.required}
        return self.whole[1]


def named_index(clients: Mapping[str, RepositoryClient], arch: str, names: Iterable[str]) -> SolvIndex:
    """The pool of the entries called ``names`` in every repository, each read from its sparse files or its
    whole index (``RepositoryClient.named_documents``): what looking locked or installed packages up needs."""
    wanted = sorted(set(names))
    return SolvIndex.build([(origin, IndexData(None, c.named_documents(arch, wanted)))
                            for origin, c in clients.items()], arch)


def prefers_sparse(clients: Mapping[str, RepositoryClient], arch: str) -> bool:
    """Whether a lookup by name should read sparse files (one repository's whole index is behind or large)."""
    return any(c.prefers_sparse(arch) for c in clients.values())


def sparse_index(clients: Mapping[str, RepositoryClient], arch: str, roots: Iterable[str],
                 installed: Sequence[Mapping[str, Any]] = ()) -> SolvIndex:
    """The pool of the closure of ``roots`` (and the base set) over every repository's sparse index, with the
    ``installed`` entries of a root when given."""
    per_repo: dict[str, list[SparseFile]] = {name: [] for name in clients}
    sources = {name: _Source(c, arch) for name, c in clients.items()}

    def lookup(names: Sequence[str]) -> dict[str, list[SparseFile]]:
        found: dict[str, list[SparseFile]] = {}
        for origin, source in sources.items():
            for name, f in source.files(names).items():
                found.setdefault(name, []).append(f)
                per_repo[origin].append(f)
        return found

    closure({*roots, *(n for source in sources.values() for n in source.base())}, lookup)
    return SolvIndex.build([(origin, IndexData(None, [d for f in files for d in f.packages]))
                            for origin, files in per_repo.items()], arch, installed=installed)
