"""The apt agreement harness (design14 §5, issue 14 Deliver 5): real Debian stanzas in, a comparison table out.

One module for everything the archive test (tests/archive/test_apt_agreement.py) and the real-archive bench
(``bench/resolve.py --archive``) share:

- :func:`suite_packages` / :func:`read_suites`: the Packages files of bookworm, bookworm-updates and
  bookworm-security from DebianArchive's private apt state (the same lists apt answers from);
- :func:`entries_of`: every stanza through the importer's mapping (``debimport.map_stanza`` -> ``Metadata`` ->
  ``IndexEntry.from_metadata``), in memory, no signing;
- :func:`ours` / :func:`apts`: one request (``debfixture.REQUESTS``, design14 §5.2) through our resolver and
  through ``apt-get -s install --no-install-recommends`` (``aptsim``), as an :class:`Outcome`;
- :func:`compare` against ``tests/archive/known_differences.toml`` and :func:`table`;
- the version-order checks (:func:`order_pairs`, :func:`order_mismatches`, :func:`dpkg_cli_mismatches`) and
  "security updates win" (:func:`security_versions`).

Requests, apt's options and its output parser are :mod:`composer.package.debfixture` and
:mod:`composer.package.aptsim`; nothing of them is repeated here.
"""

from __future__ import annotations

import itertools
import random
import time
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from composer.arch import Arch, get_arch
from composer.errors import UserError
from composer.package import deb822, debfixture, debimport
from composer.package.aptsim import AptSimulator
from composer.package.debian import DebianArchive, pockets
from composer.package.metadata import Metadata
from composer.repo.index import IndexEntry
from composer.run import run
from composer.solve.evr import deb_evr
from composer.solve.lockmodel import ESSENTIAL, REQUESTED
from composer.solve.resolve import Request, Resolver
from composer.version import FullVersion, dpkg_compare

ARCH: Arch = get_arch("x86_64")
RELEASE = debfixture.FIXTURE_SUITE          # the agreement study is on bookworm, as the fixture
SUITES: tuple[str, ...] = pockets(RELEASE)
SECURITY = f"{RELEASE}-security"
KNOWN_DIFFERENCES = Path(__file__).resolve().parents[1] / "archive" / "known_differences.toml"
FAILED = "(fails)"          # the "package" of a difference about the outcome itself (one side fails)
MESSAGE = "(message)"       # the "package" of a failure message that does not name what it must


# ---------------------------------------------------------------- the index: stanzas -> entries

def suite_packages(archive: DebianArchive, arch: Arch = ARCH) -> dict[str, bytes]:
    """suite -> its uncompressed main Packages, from DebianArchive's private state (updated first; apt checked
    the signatures). The same lists ``apt-get -s`` answers from."""
    archive = archive.for_suite(RELEASE)
    return {suite: debfixture.archive_packages(archive, arch, suite=suite)[0] for suite in SUITES}


@dataclass(frozen=True, slots=True, kw_only=True)
class Suites:
    """The stanzas of every suite, in suite order, and the suite of each (name, version, Debian arch)."""

    stanzas: tuple[deb822.Stanza, ...]
    suite_of: Mapping[tuple[str, str, str], str]   # first suite listing it (main before -updates/-security)
    counts: Mapping[str, int]                       # stanzas per suite

    def in_suite(self, suite: str) -> list[deb822.Stanza]:
        return [s for s in self.stanzas if self.suite_of[_key(s)] == suite]


def _key(s: deb822.Stanza) -> tuple[str, str, str]:
    return (s.fields["Package"], s.fields["Version"], s.fields["Architecture"])


def read_suites(packages: Mapping[str, bytes]) -> Suites:
    """Parse each suite's Packages (the importer's bounded reader); a stanza listed twice is kept once."""
    limits = deb822.Deb822Limits(max_total_bytes=1 << 30)
    kept: list[deb822.Stanza] = []
    suite_of: dict[tuple[str, str, str], str] = {}
    counts: dict[str, int] = {}
    for suite, data in packages.items():
        stanzas = deb822.parse_stanzas(data, f"{suite}/Packages", limits)
        counts[suite] = len(stanzas)
        for s in stanzas:
            if _key(s) not in suite_of:
                suite_of[_key(s)] = suite
                kept.append(s)
    return Suites(stanzas=tuple(kept), suite_of=suite_of, counts=counts)


def metadata_of(meta: debimport.DebMetadata) -> Metadata:
    """The package metadata of an imported stanza (the importer's document, with the SemVer projection as
    ``version``): what ``vcomp import debian --metadata-only`` signs."""
    return Metadata.from_dict(meta.metadata_dict())


def entry_of(meta: debimport.DebMetadata) -> IndexEntry:
    installed = meta.source.installed_size or 0
    return IndexEntry.from_metadata(metadata_of(meta), size=meta.source.size, installed_size=installed * 1024,
                                    sha256=meta.source.sha256)


@dataclass(frozen=True, slots=True, kw_only=True)
class Entries:
    entries: tuple[IndexEntry, ...]
    report: debimport.Report
    selection: Mapping[str, int]     # what the importer's version selection left out, counted
    seconds: float


def entries_of(stanzas: Sequence[deb822.Stanza]) -> Entries:
    """Every stanza that can be a package as an index entry, chosen across suites as the importer publishes them
    (``debimport.select_versions``: one per name-arch-version, dpkg-equal duplicates left out), and the
    importer's "cannot express" report."""
    t = time.perf_counter()
    imported = debimport.map_stanzas(stanzas)
    selection = debimport.select_versions(imported.packages)
    entries = tuple(entry_of(m) for m in selection.packages)
    return Entries(entries=entries, report=imported.report, selection=selection.counts,
                   seconds=time.perf_counter() - t)


def essential_names(stanzas: Iterable[deb822.Stanza]) -> tuple[str, ...]:
    """The ``Essential: yes`` names (the base set of design14 §2.5), sorted."""
    return tuple(sorted({s.fields["Package"] for s in stanzas if s.fields.get("Essential") == "yes"}))


# ---------------------------------------------------------------- one request, two answers

@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What one side answers for one request: the (name -> version) set, or a failure and its message."""

    ok: bool
    packages: Mapping[str, str] = field(default_factory=dict)
    message: str = ""
    providers: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def summary(self) -> str:
        return f"{len(self.packages)}" if self.ok else "fails"


def our_requests(request: debfixture.Request, essential: Sequence[str]) -> list[Request]:
    """The request as the resolver takes it: its names as requested, the base set (when asked) as essential."""
    extra = [n for n in request.all_names(essential) if n not in request.names]
    return ([Request(name=n, reason=REQUESTED) for n in request.names]
            + [Request(name=n, reason=ESSENTIAL) for n in extra])


def ours(resolver: Resolver, request: debfixture.Request, essential: Sequence[str]) -> Outcome:
    """Our resolver's answer (a refusal is a failed outcome carrying its message)."""
    t = time.perf_counter()
    try:
        chosen = resolver.solve(our_requests(request, essential))
    except UserError as exc:
        return Outcome(ok=False, message=f"{exc.message}\n{exc.hint or ''}", seconds=time.perf_counter() - t)
    return Outcome(ok=True, packages={c.entry.name: c.entry.version_text for c in chosen},
                   seconds=time.perf_counter() - t)


def apts(sim: AptSimulator, request: debfixture.Request, essential: Sequence[str]) -> Outcome:
    """apt's answer: ``apt-get -s install --no-install-recommends`` with the same names."""
    t = time.perf_counter()
    answer = sim.install(request.all_names(essential))
    took = time.perf_counter() - t
    return Outcome(ok=answer.ok, packages=answer.versions(), message=answer.message,
                   providers=answer.providers, seconds=took)


# ---------------------------------------------------------------- comparison

@dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    """One package whose presence or version differs (``package`` is FAILED or MESSAGE for the outcome)."""

    package: str
    ours: str       # our version, "" when we do not install it
    apt: str        # apt's version, "" when apt does not install it

    def __str__(self) -> str:
        return f"{self.package}: ours {self.ours or '-'}, apt {self.apt or '-'}"


# What a failure must say, per request label: the conflict for two-mtas (design14 §5.2); apt's providers are
# added for a refused virtual name.
MUST_MENTION: Mapping[str, tuple[str, ...]] = {"two-mtas": ("mail-transport-agent",)}


def compare(label: str, ours_: Outcome, apt: Outcome) -> list[Difference]:
    """Every difference between the two outcomes of one request."""
    if ours_.ok != apt.ok:
        return [Difference(package=FAILED, ours=ours_.summary, apt=apt.summary)]
    if not apt.ok:
        wanted = (*MUST_MENTION.get(label, ()), *apt.providers)
        missing = [w for w in wanted if w not in ours_.message]
        return [Difference(package=MESSAGE, ours="does not name " + " ".join(missing), apt="")] if missing else []
    out = []
    for name in sorted(set(ours_.packages) | set(apt.packages)):
        mine, theirs = ours_.packages.get(name, ""), apt.packages.get(name, "")
        if mine != theirs:
            out.append(Difference(package=name, ours=mine, apt=theirs))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Known:
    """An entry of known_differences.toml: a documented reason for one (request, package) difference."""

    request: str      # a label, or "*" for every request
    package: str
    reason: str

    def matches(self, label: str, d: Difference) -> bool:
        return self.request in (label, "*") and self.package == d.package


def read_known(path: Path = KNOWN_DIFFERENCES) -> tuple[Known, ...]:
    """``[[difference]]`` tables with request, package and a non-empty reason."""
    data = tomllib.loads(path.read_text()) if path.exists() else {}
    out = []
    for i, d in enumerate(data.get("difference", []), 1):
        if not (isinstance(d, dict) and all(isinstance(d.get(k), str) and d[k] for k in ("request", "package",
                                                                                            "reason"))):
            raise UserError(f"{path}: difference #{i} needs request, package and reason (non-empty strings)",
                            hint="see docs/packages/apt-agreement.md")
        out.append(Known(request=d["request"], package=d["package"], reason=d["reason"]))
    return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One request's line of the table."""

    label: str
    ours: Outcome
    apt: Outcome
    differences: tuple[Difference, ...]
    explained: tuple[tuple[Difference, Known], ...]
    unexplained: tuple[Difference, ...]


def row(label: str, ours_: Outcome, apt: Outcome, known: Sequence[Known]) -> Row:
    diffs = compare(label, ours_, apt)
    explained, unexplained = [], []
    for d in diffs:
        k = next((k for k in known if k.matches(label, d)), None)
        if k is None:
            unexplained.append(d)
        else:
            explained.append((d, k))
    return Row(label=label, ours=ours_, apt=apt, differences=tuple(diffs), explained=tuple(explained),
               unexplained=tuple(unexplained))


def table(rows: Sequence[Row]) -> str:
    """The markdown table of design14 §5.3 (request, ours, apt, differences, lock time, apt time), then every
    difference: the explained ones with their reason, the unexplained ones marked."""
    lines = ["| request | ours | apt | differences (unexplained) | our lock s | apt s |",
             "|---|---:|---:|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.label} | {r.ours.summary} | {r.apt.summary} | {len(r.differences)} "
                     f"({len(r.unexplained)}) | {r.ours.seconds:.3f} | {r.apt.seconds:.2f} |")
    notes = [f"- {r.label}: {d} -- UNEXPLAINED" for r in rows for d in r.unexplained]
    notes += [f"- {r.label}: {d} -- {k.reason}" for r in rows for d, k in r.explained]
    return "\n".join([*lines, "", *notes]) if notes else "\n".join(lines)


def unused(known: Sequence[Known], rows: Sequence[Row]) -> list[Known]:
    """Entries of known_differences.toml that no difference of this run needed (stale: remove them)."""
    used = {id(k) for r in rows for _, k in r.explained}
    return [k for k in known if id(k) not in used]


# ---------------------------------------------------------------- security updates win

def security_versions(suites: Suites) -> dict[str, str]:
    """name -> the newest (dpkg order) version of that name in bookworm-security (for our architecture)."""
    best: dict[str, str] = {}
    for s in suites.in_suite(SECURITY):
        if s.fields["Architecture"] not in (ARCH.deb, "all"):
            continue
        name, version = s.fields["Package"], s.fields["Version"]
        if name not in best or dpkg_compare(version, best[name]) > 0:
            best[name] = version
    return best


def newest_versions(entries: Iterable[IndexEntry]) -> dict[str, str]:
    """name -> its newest version text by our order (``IndexEntry.order_key``)."""
    best: dict[str, IndexEntry] = {}
    for e in entries:
        if e.name not in best or e.order_key() > best[e.name].order_key():
            best[e.name] = e
    return {n: e.version_text for n, e in best.items()}


# ---------------------------------------------------------------- dpkg's order on the whole index

def order_pairs(stanzas: Sequence[deb822.Stanza]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(every pair of distinct versions sharing a name, including versioned provides), (every versioned relation
    of every relation field against every version of its target, as (target version, relation version))."""
    versions: dict[str, set[str]] = defaultdict(set)
    for s in stanzas:
        versions[s.fields["Package"]].add(s.fields["Version"])
        for clause in deb822.parse_relations(s.fields.get("Provides", ""), s.place("Provides")):
            if clause[0].version:
                versions[clause[0].name].add(clause[0].version)
    same = [(a, b) for vs in versions.values() for a, b in itertools.combinations(sorted(vs), 2)]
    relations: set[tuple[str, str]] = set()
    for s in stanzas:
        for deb_field in debimport.RELATION_KEYS:
            for clause in deb822.parse_relations(s.fields.get(deb_field, ""), s.place(deb_field)):
                for alt in clause:
                    if alt.version:
                        relations.update((v, alt.version) for v in versions.get(alt.name, ()))
    return same, sorted(relations)


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)


def order_mismatches(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Pairs where our order (``FullVersion.order_key``) or the EVR given to libsolv (``deb_evr``, compared as
    libsolv does: one letters-only segment, byte order) disagrees with ``composer.version.dpkg_compare``."""
    key: dict[str, object] = {}
    evr: dict[str, str] = {}
    bad = []
    for a, b in pairs:
        for v in (a, b):
            if v not in key:
                key[v] = FullVersion.parse(v, "deb").order_key()
                evr[v] = deb_evr(v)
        want = _sign(dpkg_compare(a, b))
        ka, kb = key[a], key[b]
        got_key = (ka > kb) - (ka < kb)  # type: ignore[operator]
        got_evr = (evr[a] > evr[b]) - (evr[a] < evr[b])
        if got_key != want:
            bad.append((a, b, f"order_key {got_key} vs dpkg_compare {want}"))
        if got_evr != want:
            bad.append((a, b, f"deb_evr {got_evr} vs dpkg_compare {want}"))
    return bad


def libsolv_mismatches(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """The same pairs compared by libsolv itself (``XSolvable.evrcmp`` over ``deb_evr``), one pool for all."""
    import solv

    pool = solv.Pool()
    repo = pool.add_repo("order")
    solvable: dict[str, solv.XSolvable] = {}
    for v in {v for p in pairs for v in p}:
        s = repo.add_solvable()
        s.name, s.evr = "v", deb_evr(v)
        solvable[v] = s
    bad = []
    for a, b in pairs:
        want, got = _sign(dpkg_compare(a, b)), _sign(int(solvable[a].evrcmp(solvable[b])))
        if got != want:
            bad.append((a, b, f"libsolv {got} vs dpkg_compare {want}"))
    return bad


def dpkg_cli_mismatches(pairs: Sequence[tuple[str, str]], sample: int, seed: int = 14) -> tuple[int, list[str]]:
    """``dpkg --compare-versions`` on ``sample`` random pairs (one shell, one dpkg per pair) against
    ``dpkg_compare``: (pairs checked, mismatches)."""
    chosen = random.Random(seed).sample(list(pairs), min(sample, len(pairs)))
    script = ('while read -r a b; do if dpkg --compare-versions "$a" lt "$b"; then echo -1; '
              'elif dpkg --compare-versions "$a" eq "$b"; then echo 0; else echo 1; fi; done')
    out = run(["sh", "-c", script], stdin="".join(f"{a} {b}\n" for a, b in chosen).encode(), timeout=3600)
    answers = out.stdout.decode().split()
    if len(answers) != len(chosen):
        raise UserError(f"dpkg --compare-versions answered {len(answers)} of {len(chosen)} pairs",
                        hint="run it by hand on the first pairs")
    bad = [f"{a} vs {b}: dpkg {c}, ours {_sign(dpkg_compare(a, b))}"
           for (a, b), c in zip(chosen, answers, strict=True) if int(c) != _sign(dpkg_compare(a, b))]
    return len(chosen), bad


def recorded_outcome(record: Mapping[str, object]) -> Outcome:
    """An answer of the committed fixture's expected.json (apt's, recorded by scripts/debian_fixture.py) as an
    :class:`Outcome`, to compare our resolver on the trimmed fixture with :func:`row` (no apt run)."""
    installed = record.get("installed", [])
    providers = record.get("providers", [])
    assert isinstance(installed, list) and isinstance(providers, list)
    return Outcome(ok=record.get("exit") == 0, packages={str(i["name"]): str(i["version"]) for i in installed},
                   message=str(record.get("message", "")), providers=tuple(str(p) for p in providers))
