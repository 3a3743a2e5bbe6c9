"""``repo add``'s link, ABI and security checks over a whole upload (docs/elf-checks.md).

Each uploaded package is scanned once (:func:`composer.package.payloadscan.scan_package`); its index entry gets
the ``elf`` table derived from the payload when its metadata has none (a package built before issue 19). After
every package of the upload is scanned (a library and its user may come together), each package's NEEDED sonames
are checked against its dependency closure in the repository (by name, every version, through provides), a new
version of a library is compared with the newest published version of its name-arch (exported symbols per
soname; ``abidiff`` adds the detail where installed) and the repository policy judges the findings.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from composer.errors import InvalidPackage, ToolError
from composer.package.linkcheck import (
    AbiBreak,
    LinkInfo,
    abi_breaks,
    abidiff_summary,
    closure_names,
    dependents,
    exports_by_soname,
    files_by_soname,
    link_info,
    link_info_of,
    missing_needed,
)
from composer.package.payloadscan import PackageScan, read_files, scan_package
from composer.package.secrets import RULES_DIR, compile_rules
from composer.repo.elfgate import RepoPolicy, Verdict, judge
from composer.repo.index import IndexEntry
from composer.repo.index import dependency_names as index_dependency_names
from composer.repo.publish import stored_target
from composer.repo.sparse import provided_name
from composer.repo.statedb import StateDB
from composer.run import run


@dataclass(frozen=True, slots=True, kw_only=True)
class Scanned:
    pkg: Path
    entry: IndexEntry
    scan: PackageScan
    setuid: tuple[str, ...]


def scan_upload(pkg: Path, entry: IndexEntry, rules: Any) -> Scanned:
    """Scan one uploaded package; its entry carries the derived ``elf`` table when the metadata had none.
    ``pkg`` is the repository's private copy that ``verify_package`` checked moments ago (schema, signature,
    every hash): its metadata is not validated again (a third of an archive import's time)."""
    header, scan = scan_package(pkg, rules, validated=True)
    if not entry.elf:
        entry = replace(entry, elf=MappingProxyType(link_info(scan.elves).to_dict()))
    setuid = tuple(e.path for e in header.manifest.entries if e.type == "file" and e.mode & 0o6000)
    return Scanned(pkg=pkg, entry=entry, scan=scan, setuid=setuid)


def policy_rules(policy: RepoPolicy, repo_dir: Path) -> Any:
    """The bundled YARA rules and the repository's own (None without yara-python)."""
    return compile_rules(tuple(sorted(RULES_DIR.glob("*.yar"))) + tuple(repo_dir / p for p in policy.yara_rules))


def dependency_names(e: IndexEntry) -> list[str]:
    return index_dependency_names(e.dependencies, e.relations)


@dataclass(slots=True, kw_only=True)
class RepoView:
    """The repository's packages of one architecture (and noarch) with the upload's, looked up by name in the
    state (composer/repo/statedb.py: indexed queries), so a check costs what the package's closure holds, not
    what the repository holds."""

    repo_dir: Path
    state: StateDB
    arches: tuple[str, ...]
    fresh: dict[str, IndexEntry]                                         # path -> the upload's entries
    derived: dict[str, LinkInfo | None] = field(default_factory=dict)   # path -> from the stored payload
    _named: dict[str, list[IndexEntry]] = field(default_factory=dict)

    def named(self, name: str) -> list[IndexEntry]:
        if name not in self._named:
            stored = [IndexEntry.from_dict(d) for d in self.state.named(name, self.arches)
                      if d.get("path") not in self.fresh]
            self._named[name] = stored + [e for e in self.fresh.values() if e.name == name]
        return self._named[name]

    def providers(self, name: str) -> set[str]:
        """The package names satisfying ``name``: itself when a package is so called, and its providers."""
        out = {name} if self.named(name) else set()
        out |= set(self.state.linked("provides", name, self.arches))
        out |= {e.name for e in self.fresh.values() if name in map(provided_name, e.provides)}
        return out

    def edges(self, name: str) -> list[str]:
        """The package names ``name`` depends on (dependencies and requires, through provides)."""
        return sorted({p for e in self.named(name) for d in dependency_names(e) for p in self.providers(d)})

    def reverse(self, name: str) -> list[str]:
        """The package names depending on ``name`` (on it, or on a name it provides)."""
        targets = {name} | {provided_name(p) for e in self.named(name) for p in e.provides}
        users = {n for t in sorted(targets) for n in self.state.linked("requires", t, self.arches)}
        users |= {e.name for e in self.fresh.values() if targets & set(dependency_names(e))}
        return sorted(users)

    def link(self, e: IndexEntry) -> LinkInfo | None:
        """The entry's LinkInfo: its ``elf`` table, else derived from its stored payload (None: unknown)."""
        known = link_info_of(e.elf)
        if known is not None:
            return known
        if e.path not in self.derived:
            stored = self.repo_dir / "targets" / stored_target(e.path, e.sha256)
            try:
                found = scan_package(stored, content=False)[1].elves if stored.is_file() else None
                self.derived[e.path] = None if found is None else link_info(found)
            except InvalidPackage:
                self.derived[e.path] = None
        return self.derived[e.path]


def closure_missing(view: RepoView, s: Scanned) -> list[str]:
    """The NEEDED lines of ``s`` its dependency closure leaves unprovided (none when a member is unknown)."""
    own = link_info_of(s.entry.elf)
    if own is None or not own.needed:
        return []
    names = closure_names(s.entry.name, view.edges) - {s.entry.name}
    providers = [view.link(e) for n in sorted(names) for e in view.named(n)]
    if any(p is None for p in providers):
        return []
    shown = ", ".join(sorted(names)[:6]) + (" ..." if len(names) > 6 else "")
    where = f"its dependency closure ({shown})" if names else "the package (it declares no dependency)"
    return [m.message(where) for m in missing_needed({s.entry.name: own}, [p for p in providers if p])]


def abi_findings(view: RepoView, s: Scanned, published: Sequence[IndexEntry]) -> list[tuple[AbiBreak, list[str]]]:
    """Each ABI break of ``s`` against the newest published version of its name-arch (``published``: that
    name-arch's published versions), with the packages depending on it (transitively) that NEED the soname."""
    older = [e for e in published if e.path != s.entry.path and e.order_key() < s.entry.order_key()]
    old = max(older, key=lambda e: e.order_key(), default=None)
    known = None if old is None else link_info_of(old.elf)
    if old is None or (known is not None and not known.sonames):   # nothing the old version provided can break
        return []
    stored = view.repo_dir / "targets" / stored_target(old.path, old.sha256)
    if not stored.is_file():
        return []
    old_elves = scan_package(stored, content=False)[1].elves
    breaks = abi_breaks(exports_by_soname(old_elves), exports_by_soname(s.scan.elves))
    if not breaks:
        return []
    if shutil.which("abidiff"):
        breaks = with_abidiff(breaks, (stored, files_by_soname(old_elves)), (s.pkg, files_by_soname(s.scan.elves)))
    users = closure_names(s.entry.name, view.reverse) - {s.entry.name}
    links = {n: li for n in sorted(users) for e in view.named(n) if (li := view.link(e)) is not None}
    return [(b, dependents(b.soname, links)) for b in breaks]


ABIDIFF_TIMEOUT = 120   # seconds per library


def with_abidiff(breaks: Sequence[AbiBreak], old: tuple[Path, Mapping[str, str]],
                 new: tuple[Path, Mapping[str, str]]) -> list[AbiBreak]:
    """``breaks`` with abidiff's summary of each library that is in both versions (abigail-tools)."""
    pairs = {b.soname: (old[1][b.soname], new[1][b.soname]) for b in breaks
             if b.soname in old[1] and b.soname in new[1]}
    if not pairs:
        return list(breaks)
    old_bytes = read_files(old[0], {o for o, _n in pairs.values()})
    new_bytes = read_files(new[0], {n for _o, n in pairs.values()})
    out = []
    with tempfile.TemporaryDirectory(prefix="vcomp-abidiff-") as tmp:
        for b in breaks:
            o, n = pairs.get(b.soname, ("", ""))
            if o not in old_bytes or n not in new_bytes:
                out.append(b)
                continue
            (Path(tmp) / "old").write_bytes(old_bytes[o])
            (Path(tmp) / "new").write_bytes(new_bytes[n])
            try:   # exit status: a bit field of what changed, not a failure
                found = run(["abidiff", Path(tmp) / "old", Path(tmp) / "new"], check=False, timeout=ABIDIFF_TIMEOUT)
                out.append(replace(b, detail=abidiff_summary(found.stdout.decode(errors="replace"))))
            except ToolError:
                out.append(b)
    return out


def check_upload(repo_dir: Path, policy: RepoPolicy, scanned: Sequence[Scanned], state: StateDB,
                 ) -> dict[str, Verdict]:
    """The policy's verdict on every scanned package (by index path), the repository read from ``state``."""
    out: dict[str, Verdict] = {}
    views: dict[str, RepoView] = {}
    for s in scanned:
        arch = s.entry.arch
        if arch not in views:
            fresh = {x.entry.path: x.entry for x in scanned if x.entry.arch in (arch, "noarch")}
            views[arch] = RepoView(repo_dir=repo_dir, state=state, arches=(arch, "noarch"), fresh=fresh)
        view = views[arch]
        published = [IndexEntry.from_dict(d) for d in state.versions(s.entry.name, s.entry.arch)]
        out[s.entry.path] = judge(policy, nva=s.entry.nva, scan=s.scan, setuid=s.setuid,
                                  missing=closure_missing(view, s), breaks=abi_findings(view, s, published))
    return out
