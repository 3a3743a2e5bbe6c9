"""The trimmed Debian fixture: a closure of real bookworm stanzas small enough to commit (design14 §5.3).

Pure functions over Packages text (deb822): read stanzas, follow relation names through every alternative
and every provider, keep only the fields the importer maps (design14 §4.2), write them back. The requests
of the apt agreement (design14 §5.2) are :data:`REQUESTS`; ``scripts/debian_fixture.py`` records apt's
answer for each of them on the trimmed file (:mod:`composer.package.aptsim`).

Stanzas and relations are read by the importer's bounded reader (:mod:`composer.package.deb822`) and the
closure is the importer's (:func:`composer.package.debimport.closure`); a kept field keeps its first line (none
of them has continuation lines in a binary Packages file).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import zstandard

from composer import settings
from composer.arch import Arch
from composer.errors import UserError
from composer.package import deb822, debimport
from composer.package.aptsim import SIMULATE_OPTS, AptAnswer, AptSimulator
from composer.package.debian import DebianArchive
from composer.run import run

# The fields of design14 §4.2's table, in the order they are written. Description keeps its first line
# (binary Packages files only carry that line; the long text lives in Translation-*).
FIXTURE_FIELDS: tuple[str, ...] = (
    "Package", "Version", "Architecture", "Essential", "Priority", "Multi-Arch", "Section", "Maintainer",
    "Homepage", "Description", "Installed-Size", "Depends", "Pre-Depends", "Recommends", "Suggests",
    "Provides", "Conflicts", "Breaks", "Replaces", "Enhances", "Filename", "Size", "SHA256",
)
# The fields the closure follows: what apt may install with --no-install-recommends, plus Recommends so a
# later "recommends on" request finds its targets too.
CLOSURE_FIELDS: tuple[str, ...] = ("Depends", "Pre-Depends", "Recommends")

Stanza = Mapping[str, str]



@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One apt agreement request: a label, the names asked for, and whether the base set is added."""

    label: str
    names: tuple[str, ...]
    with_essential: bool = False
    why: str = ""

    def all_names(self, essential: Sequence[str]) -> tuple[str, ...]:
        """The names given to apt: the request's, then the Essential names it does not already have."""
        extra = [n for n in essential if n not in self.names] if self.with_essential else []
        return (*self.names, *extra)


# design14 §5.2 (apt runs with an empty status: it adds no Essential package on its own)
REQUESTS: tuple[Request, ...] = (
    Request(label="shell-editor", names=("bash", "nano")),
    Request(label="ssh-server", names=("openssh-server",)),
    Request(label="python", names=("python3",)),
    Request(label="toolchain", names=("build-essential",)),
    Request(label="web", names=("nginx",)),
    Request(label="database", names=("postgresql",)),
    Request(label="desktop", names=("xfce4",)),
    Request(label="essential", names=(), with_essential=True, why="the base set alone (base: essential)"),
    Request(label="desktop-essential", names=("xfce4",), with_essential=True, why="desktop + the base set"),
    Request(label="two-mtas", names=("postfix", "exim4-daemon-light"),
            why="fails: both conflict with mail-transport-agent"),
    Request(label="default-mta", names=("default-mta",), why="a virtual name with one provider"),
    Request(label="mail-transport-agent", names=("mail-transport-agent",),
            why="a virtual name with several providers: refused, listing them"),
)


def _parsed(text: str, origin: str) -> tuple[deb822.Stanza, ...]:
    stanzas = deb822.parse_stanzas(text.encode(), origin)
    for s in stanzas:
        if "Package" not in s.fields or "Version" not in s.fields:
            raise UserError(f"{s.where()}: a paragraph without Package/Version ({sorted(s.fields)[:4]})",
                            hint="give a Debian Packages file (deb822 paragraphs)")
    return stanzas


def _view(stanza: deb822.Stanza) -> dict[str, str]:
    return {k: v.split("\n", 1)[0].strip() for k, v in stanza.fields.items()}


def read_stanzas(text: str, *, origin: str = "Packages") -> list[dict[str, str]]:
    """The stanzas of a Packages file as field -> first line of the value (deb822's bounded reader)."""
    return [_view(s) for s in _parsed(text, origin)]


def relation_names(value: str) -> list[str]:
    """Every package name a relation field mentions, over all clauses and alternatives, in order."""
    return [alt.name for clause in deb822.parse_relations(value, "relation") for alt in clause]


def provide_names(stanza: Stanza) -> list[str]:
    return relation_names(stanza.get("Provides", ""))


def essential_names(stanzas: Iterable[Stanza]) -> list[str]:
    """The ``Essential: yes`` package names, sorted (the base set of design14 §2.5)."""
    return sorted({s["Package"] for s in stanzas if s.get("Essential") == "yes"})


def closure(stanzas: Sequence[Stanza], roots: Iterable[str],
            fields: Sequence[str] = CLOSURE_FIELDS) -> set[str]:
    """Package names reachable from ``roots`` through ``fields``: every alternative, and for each name both
    its real package(s) and every package that provides it (:func:`composer.package.debimport.closure`)."""
    parsed = tuple(deb822.Stanza(origin="Packages", line=0, fields=s, lines={}) for s in stanzas)
    return set(debimport.closure(parsed, roots, fields=fields).names)


def trim(stanza: Stanza) -> dict[str, str]:
    """Only :data:`FIXTURE_FIELDS`, in their order."""
    return {f: stanza[f] for f in FIXTURE_FIELDS if f in stanza}


def write_stanzas(stanzas: Iterable[Stanza]) -> str:
    return "".join("".join(f"{k}: {v}\n" for k, v in s.items()) + "\n" for s in stanzas)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fixture:
    text: str                    # the trimmed Packages file
    packages: int                # stanzas in it
    source_packages: int         # stanzas in the source file
    essential: tuple[str, ...]


def build_fixture(source_text: str, requests: Sequence[Request] = REQUESTS) -> Fixture:
    """The closure of every request's names and the Essential set, trimmed, sorted by (name, version text)."""
    parsed = _parsed(source_text, "Packages")
    stanzas = [_view(s) for s in parsed]
    essential = essential_names(stanzas)
    roots = {n for r in requests for n in r.names} | set(essential)
    keep = set(debimport.closure(parsed, sorted(roots), fields=CLOSURE_FIELDS).names)
    chosen = sorted((trim(s) for s in stanzas if s["Package"] in keep),
                    key=lambda s: (s["Package"], s["Version"], s.get("Architecture", "")))
    return Fixture(text=write_stanzas(chosen), packages=len(chosen), source_packages=len(stanzas),
                   essential=tuple(essential))


# ----------------------------------------------------------------- apt's answers on the trimmed file

EXPECTED_FORMAT = 1


def answer_record(request: Request, names: tuple[str, ...], answer: AptAnswer) -> dict[str, object]:
    """One request's entry of expected.json."""
    record: dict[str, object] = {"names": list(request.names), "with-essential": request.with_essential,
                                 "exit": answer.exit_code, "count": len(answer.installed)}
    if request.why:
        record["why"] = request.why
    if answer.ok:
        record["installed"] = [{"name": i.name, "version": i.version, "arch": i.arch} for i in answer.installed]
    else:
        record["message"] = answer.message
    if answer.providers:
        record["providers"] = list(answer.providers)
    if names != request.names:
        record["apt-names"] = len(names)
    return record


def record_expected(fixture: Fixture, workdir: Path, arch: Arch, *, source: Provenance | None = None,
                    requests: Sequence[Request] = REQUESTS) -> dict[str, object]:
    """Run apt on the trimmed file itself (``file:`` source) for every request: expected.json's content.

    ``source`` names the index the fixture was cut from (its sha256 lets the archive test know whether
    today's suite is still that one)."""
    sim = AptSimulator.for_packages(fixture.text.encode(), workdir, arch)
    answers: dict[str, object] = {}
    for request in requests:
        names = request.all_names(fixture.essential)
        answers[request.label] = answer_record(request, names, sim.install(names))
    expected: dict[str, object] = {"format": EXPECTED_FORMAT}
    if source is not None:
        expected["source"] = {"suite": source.suite, "date": source.release_date,
                              "inrelease-sha256": source.inrelease_sha256,
                              "packages-sha256": source.packages_sha256}
    expected.update({"apt-options": [*SIMULATE_OPTS, "install", "--no-install-recommends"],
                     "essential": list(fixture.essential), "packages": fixture.packages, "requests": answers})
    return expected


_ROW = re.compile(r'\{\n\s+("name": "[^"]*"),\n\s+("version": "[^"]*"),\n\s+("arch": "[^"]*")\n\s+\}')


def expected_json(expected: Mapping[str, object]) -> str:
    """Indented JSON with one line per installed package (reviewable diffs when the fixture is regenerated)."""
    return _ROW.sub(r"{\1, \2, \3}", json.dumps(expected, indent=1, ensure_ascii=False)) + "\n"


# ----------------------------------------------------------------- the source index and its provenance

APT_HELPER = "/usr/lib/apt/apt-helper"
FIXTURE_SUITE = "bookworm"   # the committed fixture (tests/data/debian-bookworm-amd64) stays on Debian 12


def archive_packages(archive: DebianArchive, arch: Arch, *, suite: str = "") -> tuple[bytes, bytes]:
    """(Packages, InRelease) of ``suite`` (a pocket of the archive's release; default the release itself) main
    for ``arch`` from DebianArchive's private state (updated first; apt checked the signatures). apt keeps lists
    compressed (lz4): ``apt-helper cat-file`` reads them."""
    suite = suite or archive.suite
    archive.update(arch)
    lists = archive._root(arch) / "lists"
    found = sorted(lists.glob(f"*_dists_{suite}_main_binary-{arch.deb}_Packages*"))
    inrelease = sorted(lists.glob(f"*_dists_{suite}_InRelease"))
    if not found or not inrelease:
        raise UserError(f"{lists}: no {suite} main {arch.deb} Packages/InRelease after apt-get update",
                        hint=f"check the mirror ({settings.DEBIAN_MIRROR.name}) and the network")
    return run([APT_HELPER, "cat-file", str(found[0])], timeout=300).stdout, inrelease[0].read_bytes()


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    suite: str                 # "bookworm (oldstable 12.15, main amd64)"
    release_date: str          # the InRelease Date
    inrelease_sha256: str      # "" when unknown
    packages_sha256: str       # of the uncompressed source Packages
    packages_listed: bool      # the source Packages is the one InRelease lists (its sha256 appears there)


def provenance(packages: bytes, inrelease: bytes | None, arch: Arch) -> Provenance:
    digest = hashlib.sha256(packages).hexdigest()
    if inrelease is None:
        return Provenance(suite=f"{FIXTURE_SUITE} main {arch.deb} (InRelease unknown)", release_date="unknown",
                          inrelease_sha256="", packages_sha256=digest, packages_listed=False)
    text = inrelease.decode(errors="replace")
    fields = {m.group(1): m.group(2).strip() for m in re.finditer(r"^([A-Za-z-]+): ?(.*)$", text, re.M)}
    listed = re.search(rf"^ {digest}\s+{len(packages)}\s+main/binary-{arch.deb}/Packages$", text, re.M) is not None
    return Provenance(
        suite=f"{fields.get('Codename', FIXTURE_SUITE)} ({fields.get('Suite', '?')} {fields.get('Version', '?')}, "
              f"main {arch.deb})",
        release_date=fields.get("Date", "unknown"), inrelease_sha256=hashlib.sha256(inrelease).hexdigest(),
        packages_sha256=digest, packages_listed=listed)


def provenance_markdown(p: Provenance, fixture: Fixture, expected: Mapping[str, object], *, recorded: str,
                        apt_version: str, compressed_bytes: int) -> str:
    requests = expected.get("requests")
    rows = []
    if isinstance(requests, dict):
        for label, r in requests.items():
            rows.append(f"| {label} | {' '.join(r['names']) or '(none)'}{' + Essential' if r['with-essential'] else ''}"
                        f" | {r['exit']} | {r['count']} |")
    return "\n".join([
        "# Provenance of the trimmed Debian fixture",
        "",
        "Generated by `scripts/debian_fixture.py` (`make debian-fixture`); do not edit by hand.",
        "",
        f"- Suite: {p.suite}, one suite only (no -updates, no -security).",
        f"- Release date (InRelease `Date`): {p.release_date}",
        f"- InRelease sha256: `{p.inrelease_sha256 or 'unknown'}`",
        f"- Source Packages (uncompressed) sha256: `{p.packages_sha256}`"
        + (" (listed in that InRelease as main/binary-amd64/Packages)" if p.packages_listed else ""),
        f"- Source stanzas: {fixture.source_packages}; kept: {fixture.packages} "
        f"({len(fixture.text.encode())} bytes of text, {compressed_bytes} bytes zstd -{ZSTD_LEVEL})",
        f"- Recorded: {recorded}, with {apt_version}",
        "- Kept: the closure of every request's names, the Essential set, `default-mta` and "
        "`mail-transport-agent` over " + ", ".join(CLOSURE_FIELDS) + ", all alternatives and all providers.",
        "- Fields kept (design14 §4.2): " + ", ".join(FIXTURE_FIELDS) + " (Description: its first line).",
        "",
        "`expected.json` is apt's answer for each request, recorded on the TRIMMED file itself through a",
        "`deb [trusted=yes] file:DIR ./` source with a generated Release, a private apt state and an empty",
        "status (`composer/package/aptsim.py`; options in docs/packages/apt-agreement.md).",
        "",
        "| request | names | apt exit | Inst lines |",
        "|---|---|---|---|",
        *rows,
        "",
        "Regenerate: `make debian-fixture` (network: DebianArchive's private apt state), or offline from a",
        "Packages file: `.venv/bin/python scripts/debian_fixture.py --packages Packages --inrelease InRelease`.",
        "",
    ])


ZSTD_LEVEL = 19


def compress(text: str) -> bytes:
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(text.encode())


def decompress(data: bytes, *, limit: int) -> str:
    """The fixture's text, refusing more than ``limit`` bytes (the frame states its size)."""
    chunks: list[bytes] = []
    size = 0
    with zstandard.ZstdDecompressor().stream_reader(data) as reader:
        while size <= limit and (chunk := reader.read(1 << 20)):
            chunks.append(chunk)
            size += len(chunk)
    out = b"".join(chunks)
    if size > limit:
        raise UserError(f"the fixture decompresses to {len(out)} bytes, over the limit of {limit}",
                        hint="regenerate it with make debian-fixture")
    return out.decode()
