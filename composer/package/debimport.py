"""A Debian ``Packages`` stanza as ``.vpk`` metadata (design14 §2.1, §4.2), what cannot be expressed, and closures.

Pure: :class:`~composer.package.deb822.Stanza` values in, frozen :class:`DebMetadata` values and a
:class:`Report` out. The version is split into epoch, upstream and revision as plain text; ordering versions is
the job of :mod:`composer.version`, not of this module. What the ``.vpk`` model cannot say (foreign-architecture
qualifiers, ``[arch]``/``<profile>`` restrictions, fields without a place, names over the name pattern's length)
is counted in the report, never silently dropped.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from composer.arch import ARCHES, NOARCH
from composer.package.deb822 import (
    Alternative,
    Clause,
    Deb822Error,
    Stanza,
    Where,
    clause_text,
    one_line,
    parse_relations,
    where_text,
)
from composer.version import FullVersion, OrderKey, VersionError, semver_projection

# Debian architecture -> ours (the ARCHES registry names both); "all" is noarch.
ARCH_FROM_DEB: Mapping[str, str] = {**{a.deb: a.name for a in ARCHES.values()}, "all": NOARCH}

# Debian relation field -> the key under [relations] (design14 §2.1). Provides is separate: it is not clauses.
RELATION_KEYS: Mapping[str, str] = {
    "Depends": "requires", "Pre-Depends": "pre-requires", "Recommends": "recommends", "Suggests": "suggests",
    "Conflicts": "conflicts", "Breaks": "breaks", "Replaces": "replaces", "Enhances": "enhances",
}

# Section (without its "contrib/" or "non-free/" area) -> package type; every other section is an application.
SECTION_TYPES: Mapping[str, str] = {
    "libs": "library", "oldlibs": "library", "kernel": "system", "devel": "development", "libdevel": "development",
}
DEFAULT_TYPE = "application"
SYSTEM_PRIORITIES = frozenset({"required"})   # Essential packages and these are "system"

PRIORITIES = frozenset({"required", "important", "standard", "optional", "extra"})
MULTI_ARCH = frozenset({"same", "foreign", "allowed", "no"})
NATIVE_QUALIFIERS = frozenset({"any", "native"})
NO_ALTERNATIVES = frozenset({"Conflicts", "Breaks", "Replaces"})   # as dpkg: a clause here is one name

MAPPED_FIELDS = frozenset({
    "Package", "Version", "Architecture", "Provides", "Essential", "Priority", "Multi-Arch", "Description",
    "Homepage", "Maintainer", "Section", "SHA256", "Size", "Filename", "Installed-Size", *RELATION_KEYS,
})
REQUIRED_FIELDS = ("Package", "Version", "Architecture", "Filename", "SHA256", "Size")

LICENSE = "LicenseRef-Debian-copyright"   # metadata-only: the real license is in the .deb's copyright file
MAX_NAME = 64                             # schemas/package.schema.json: name and provide patterns
MAX_DESCRIPTION = 1000

_DEB_NAME = re.compile(r"[a-z0-9][a-z0-9.+-]+")
_EPOCH = re.compile(r"[0-9]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DIGITS = re.compile(r"[0-9]+")
_CONTEXT_CHARS = str.maketrans({"-": "_", ".": "_", "+": "_"})


@dataclass(frozen=True, slots=True, kw_only=True)
class DebSource:
    """Where the package's ``.deb`` is: the provenance of an imported package (from the signed index)."""

    name: str
    version: str
    arch: str               # the Debian architecture, as in the index
    sha256: str
    path: str               # Filename, relative to the mirror
    size: int
    installed_size: int | None = None   # KiB, as Debian counts

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": "deb", "name": self.name, "version": self.version, "arch": self.arch,
                                  "sha256": self.sha256, "path": self.path, "size": self.size}
        if self.installed_size is not None:
            out["installed-size"] = self.installed_size
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Relations:
    """The ``[relations]`` table: ordered clauses, each normalized text ``ALT ( | ALT )*``."""

    requires: tuple[str, ...] = ()
    pre_requires: tuple[str, ...] = ()
    recommends: tuple[str, ...] = ()
    suggests: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    breaks: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    enhances: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, list[str]]:
        """Non-empty keys only, in the order of the table."""
        return {key: list(getattr(self, key.replace("-", "_")))
                for key in RELATION_KEYS.values() if getattr(self, key.replace("-", "_"))}


@dataclass(frozen=True, slots=True, kw_only=True)
class DebMetadata:
    """The metadata of design14 §2.1 for one Debian binary package."""

    name: str
    arch: str
    upstream_version: str     # the Debian Version, verbatim: the identity and (through composer.version) the order
    epoch: int
    upstream: str             # the part between the epoch and the revision
    revision: str             # "" when the version has no "-"
    essential: bool
    priority: str | None
    multi_arch: str
    description: str
    homepage: str | None
    authors: tuple[str, ...]
    type: str
    license: str
    context: str
    provides: tuple[str, ...]
    relations: Relations
    source: DebSource

    def to_dict(self) -> dict[str, object]:
        """The ``[package]``, ``[relations]``, ``[security]`` and ``[provenance]`` tables (the projection
        ``version`` is not here: it belongs to the version model)."""
        package: dict[str, object] = {
            "name": self.name, "epoch": self.epoch, "revision": self.revision,
            "upstream-version": self.upstream_version, "version-scheme": "deb", "description": self.description,
            "license": self.license, "type": self.type, "arch": self.arch,
            "essential": self.essential, "multi-arch": self.multi_arch,
        }
        if self.priority:
            package["priority"] = self.priority
        if self.homepage:
            package["homepage"] = self.homepage
        if self.authors:
            package["authors"] = list(self.authors)
        if self.provides:
            package["provides"] = list(self.provides)
        return {"package": package, "relations": self.relations.to_dict(), "security": {"context": self.context},
                "provenance": {"sources": [self.source.to_dict()]}}

    def metadata_dict(self) -> dict[str, object]:
        """The whole metadata document (``Metadata.from_dict`` reads it): :meth:`to_dict` plus ``version``, the
        SemVer projection of the upstream (design14 §1.1; only native Cargo requirements use it)."""
        d = self.to_dict()
        package = d["package"]
        assert isinstance(package, dict)
        d["package"] = {"name": self.name, "version": str(semver_projection(self.upstream)),
                        **{k: v for k, v in package.items() if k != "revision" or v}}   # the schema: no ""
        if not d["relations"]:
            del d["relations"]
        return d

    def full_version(self) -> FullVersion:
        return FullVersion.parse(self.upstream_version, "deb")

    @property
    def text(self) -> str:
        """``name version arch`` as reports show it."""
        return f"{self.name} {self.upstream_version} {self.arch}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """What could not be expressed, counted by kind (``unmapped field Source``, ``foreign arch qualifier``...)."""

    stanzas: int = 0
    mapped: int = 0
    counts: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"stanzas": self.stanzas, "mapped": self.mapped, "counts": dict(sorted(self.counts.items()))}

    def lines(self) -> tuple[str, ...]:
        """One line per kind, sorted: ``   4,059  unmapped field Source``."""
        return tuple(f"{n:>8,}  {kind}" for kind, n in sorted(self.counts.items()))


@dataclass(frozen=True, slots=True, kw_only=True)
class Imported:
    packages: tuple[DebMetadata, ...]
    report: Report


def split_version(version: str, where: Where) -> tuple[int, str, str]:
    """``1:2.36-9+deb12u7`` -> ``(1, "2.36", "9+deb12u7")``: dpkg's split (the last ``-`` starts the revision)."""
    epoch, colon, rest = version.partition(":")
    if not colon:
        epoch, rest = "0", version
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    if not _EPOCH.fullmatch(epoch) or not upstream or (dash and not revision) or any(c.isspace() for c in version):
        raise Deb822Error(f"{where_text(where)}: '{one_line(version)}' is not a Debian version "
                          "[EPOCH:]UPSTREAM[-REVISION]", hint="the index is corrupt")
    return int(epoch), upstream, revision


def _require(stanza: Stanza, name: str) -> str:
    value = stanza.fields.get(name, "")
    if not value:
        raise Deb822Error(f"{stanza.where()}: no {name} field",
                          hint="every stanza of a Packages file has Package, Version, Architecture, Filename, "
                               "SHA256 and Size")
    return value


def _int(stanza: Stanza, name: str) -> int:
    value = stanza.fields[name]
    if not _DIGITS.fullmatch(value):
        raise Deb822Error(f"{stanza.where(name)}: '{one_line(value)}' is not a number", hint="the index is corrupt")
    return int(value)


def _alternative_findings(alt: Alternative, own_arch: str) -> Iterable[str]:
    if alt.arch and alt.arch not in NATIVE_QUALIFIERS and alt.arch != own_arch:
        yield "foreign arch qualifier"
    if alt.archs:
        yield "[arch] restriction"
    if alt.profiles:
        yield "<profile> restriction"
    if len(alt.name) > MAX_NAME:
        yield f"relation name over {MAX_NAME} characters"


def _relations(stanza: Stanza, findings: list[str]) -> Relations:
    own = stanza.fields["Architecture"]
    values: dict[str, tuple[str, ...]] = {}
    for deb_field, key in RELATION_KEYS.items():
        text = stanza.fields.get(deb_field)
        if text is None:
            continue
        clauses = parse_relations(text, stanza.place(deb_field))
        for clause in clauses:
            if len(clause) > 1 and deb_field in NO_ALTERNATIVES:
                raise Deb822Error(f"{stanza.where(deb_field)}: '{clause_text(clause)}': alternatives in {deb_field}",
                                  hint=f"dpkg refuses '|' in {deb_field}; each clause names one package")
            for alt in clause:
                findings.extend(_alternative_findings(alt, own))
        values[key.replace("-", "_")] = tuple(clause_text(c) for c in clauses)
    return Relations(**values)


def _provide(clause: Clause, where: Where, findings: list[str]) -> str | None:
    """``NAME`` or ``NAME = VERSION``; ``None`` (dropped, counted) for a name over the provide pattern's 64
    characters: the metadata could not carry it."""
    alt = clause[0]
    if len(clause) > 1 or alt.arch or alt.archs or alt.profiles or alt.op not in (None, "="):
        raise Deb822Error(f"{where_text(where)}: '{clause_text(clause)}' is not NAME or NAME (= VERSION)",
                          hint="a Debian Provides clause has one name and at most an exact version")
    if len(alt.name) > MAX_NAME:
        findings.append(f"provide name over {MAX_NAME} characters (dropped)")
        return None
    if alt.op:
        try:
            FullVersion.parse(alt.version or "", "deb")
        except VersionError as exc:
            raise Deb822Error(f"{where_text(where)}: '{clause_text(clause)}': {exc}",
                              hint="a versioned Provides carries a valid Debian version") from None
    return alt.name + (f" = {alt.version}" if alt.op else "")


def _context(name: str) -> str:
    """``libstdc++6`` -> ``libstdc__6_t``; a name starting with a digit gets ``deb_`` (``0ad`` -> ``deb_0ad_t``):
    the schema's context pattern starts with a letter."""
    context = name.translate(_CONTEXT_CHARS) + "_t"
    return context if context[0].isalpha() else "deb_" + context


def _package_type(section: str, essential: bool, priority: str | None) -> str:
    if essential or priority in SYSTEM_PRIORITIES:
        return "system"
    return SECTION_TYPES.get(section.rpartition("/")[2], DEFAULT_TYPE)


def _description(stanza: Stanza, findings: list[str]) -> str:
    first = stanza.fields.get("Description", "").partition("\n")[0].strip()
    if not first:
        findings.append("no Description (the name is used)")
        return stanza.fields["Package"]
    if len(first) > MAX_DESCRIPTION:
        findings.append(f"description over {MAX_DESCRIPTION} characters (cut)")
        return first[:MAX_DESCRIPTION]
    return first


def _choice(stanza: Stanza, name: str, allowed: frozenset[str], default: str | None,
            findings: list[str]) -> str | None:
    value = stanza.fields.get(name)
    if value is None:
        return default
    if value not in allowed:
        findings.append(f"{name} '{one_line(value)}' not mapped")
        return default
    return value


def _essential(stanza: Stanza) -> bool:
    value = stanza.fields.get("Essential", "no")
    if value not in ("yes", "no"):
        raise Deb822Error(f"{stanza.where('Essential')}: '{one_line(value)}' is not yes or no",
                          hint="the index is corrupt")
    return value == "yes"


def map_stanza(stanza: Stanza) -> tuple[DebMetadata | None, tuple[str, ...]]:
    """The metadata of one stanza (``None`` when it cannot be a package at all) and what was not expressed.

    Malformed input (a missing required field, a bad version or relation) raises one :class:`Deb822Error`
    naming the file, line, stanza and field.
    """
    for name in REQUIRED_FIELDS:
        _require(stanza, name)
    findings = [f"unmapped field {f}" for f in stanza.fields if f not in MAPPED_FIELDS]
    name, version, deb_arch = stanza.fields["Package"], stanza.fields["Version"], stanza.fields["Architecture"]
    if not _DEB_NAME.fullmatch(name):
        raise Deb822Error(f"{stanza.where('Package')}: '{one_line(name)}' is not a Debian package name",
                          hint="Debian names are lower-case letters, digits and '.+-', at least 2 characters")
    epoch, upstream, revision = split_version(version, stanza.place("Version"))
    sha256 = stanza.fields["SHA256"]
    if not _SHA256.fullmatch(sha256):
        raise Deb822Error(f"{stanza.where('SHA256')}: not a sha256 digest", hint="the index is corrupt")
    relations = _relations(stanza, findings)
    provides = tuple(p for c in parse_relations(stanza.fields.get("Provides", ""), stanza.place("Provides"))
                     if (p := _provide(c, stanza.place("Provides"), findings)) is not None)
    arch = ARCH_FROM_DEB.get(deb_arch)
    if arch is None:
        return None, (*findings, f"architecture {one_line(deb_arch)} not mapped (skipped)")
    if len(name) > MAX_NAME:
        return None, (*findings, f"package name over {MAX_NAME} characters (skipped)")
    essential = _essential(stanza)
    priority = _choice(stanza, "Priority", PRIORITIES, None, findings)
    installed = stanza.fields.get("Installed-Size")
    source = DebSource(name=name, version=version, arch=deb_arch, sha256=sha256, path=stanza.fields["Filename"],
                       size=_int(stanza, "Size"),
                       installed_size=_int(stanza, "Installed-Size") if installed is not None else None)
    meta = DebMetadata(
        name=name, arch=arch, upstream_version=version, epoch=epoch, upstream=upstream, revision=revision,
        essential=essential, priority=priority,
        multi_arch=_choice(stanza, "Multi-Arch", MULTI_ARCH, "no", findings) or "no",
        description=_description(stanza, findings), homepage=stanza.fields.get("Homepage") or None,
        authors=(stanza.fields["Maintainer"],) if stanza.fields.get("Maintainer") else (),
        type=_package_type(stanza.fields.get("Section", ""), essential, priority), license=LICENSE,
        context=_context(name), provides=provides, relations=relations, source=source)
    return meta, tuple(findings)


def map_stanzas(stanzas: Sequence[Stanza]) -> Imported:
    """Every stanza that can be a package, in index order, and the counts of what could not be expressed."""
    counts: collections.Counter[str] = collections.Counter()
    packages: list[DebMetadata] = []
    for stanza in stanzas:
        meta, findings = map_stanza(stanza)
        counts.update(findings)
        if meta is not None:
            packages.append(meta)
    return Imported(packages=tuple(packages),
                    report=Report(stanzas=len(stanzas), mapped=len(packages), counts=dict(counts)))


# ---------------------------------------------------------------------------------------------------------------
# Versions: which of the stanzas of several suites become packages

_LEADING = re.compile(r"[0-9]+(?:\.[0-9]+){0,2}")


def projection_monotone(upstream: str) -> bool:
    """Whether the SemVer projection of ``upstream`` keeps dpkg's order against every other version
    (design14 §1.1): not when it does not start with a digit, nor when fewer than three leading numbers are
    followed by ``.`` and a non-digit (``0.11.dfsg1`` sorts after ``0.11.1`` for dpkg, its projection
    ``0.11.0`` before ``0.11.1``)."""
    match = _LEADING.match(upstream)
    if match is None:
        return False
    rest = upstream[match.end():]
    return not (match.group().count(".") < 2 and rest.startswith(".") and not rest[1:2].isdigit())


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """The packages to build, sorted by (name, arch, version order), and what was left out, counted."""

    packages: tuple[DebMetadata, ...]
    counts: Mapping[str, int]
    skipped: tuple[str, ...] = ()    # "name version arch: why" of each dpkg-equal duplicate left out


def select_versions(packages: Iterable[DebMetadata], *, newest_only: bool = False) -> Selection:
    """One package per (name, arch, version) across suites (apt's candidate rule orders them: the newest version
    wins, a security update by the version order alone). The same version text twice (a package in two suites)
    is kept once; a version that ties in dpkg order with another of its name-arch under a different text
    (``1.0`` and ``1.0-0``) is skipped and counted, since ``repo add`` refuses ties (design14 §3).
    ``newest_only`` keeps only the newest version of each name-arch."""
    counts: collections.Counter[str] = collections.Counter()
    groups: dict[tuple[str, str], dict[OrderKey, DebMetadata]] = {}
    skipped: list[str] = []
    for meta in packages:
        versions = groups.setdefault((meta.name, meta.arch), {})
        key = meta.full_version().order_key()
        kept = versions.get(key)
        if kept is None:
            versions[key] = meta
        elif kept.upstream_version == meta.upstream_version:
            counts["same version in several suites (kept once)"] += 1
            if kept.source.sha256 != meta.source.sha256:
                counts["same version, different .deb in another suite (first kept)"] += 1
        else:
            counts["dpkg-equal duplicate version (skipped)"] += 1
            skipped.append(f"{meta.text}: ties in dpkg order with {kept.upstream_version}")
    chosen: list[DebMetadata] = []
    for (_name, _arch), versions in sorted(groups.items()):
        ordered = [versions[k] for k in sorted(versions)]
        if newest_only:
            counts["older version left out (--newest-only)"] += len(ordered) - 1
            ordered = ordered[-1:]
        chosen.extend(ordered)
    for meta in chosen:
        if not projection_monotone(meta.upstream):
            counts["SemVer projection not monotone (native requirements may misjudge)"] += 1
    return Selection(packages=tuple(chosen), counts=dict(counts), skipped=tuple(skipped))


def equal_version_classes(packages: Iterable[DebMetadata]) -> int:
    """How many dpkg-order classes hold more than one version text over all names (``0.1-2`` = ``0.01-2``): each
    keeps its own text and gets one order (design14 §0: 631 in bookworm main amd64)."""
    texts: dict[OrderKey, set[str]] = collections.defaultdict(set)
    for meta in packages:
        texts[meta.full_version().order_key()].add(meta.upstream_version)
    return sum(1 for t in texts.values() if len(t) > 1)


# ---------------------------------------------------------------------------------------------------------------
# Closure

CLOSURE_FIELDS = ("Pre-Depends", "Depends")


@dataclass(frozen=True, slots=True, kw_only=True)
class Closure:
    """The packages reachable from a request (sorted), and the names reached that nothing has or provides."""

    names: tuple[str, ...]
    missing: tuple[str, ...]


def _providers(stanzas: Iterable[Stanza]) -> dict[str, list[str]]:
    """Relation name -> the packages that are it or provide it, real package first, then index order."""
    real: dict[str, list[str]] = collections.defaultdict(list)
    virtual: dict[str, list[str]] = collections.defaultdict(list)
    for stanza in stanzas:
        name = _require(stanza, "Package")
        real[name].append(name)
        for clause in parse_relations(stanza.fields.get("Provides", ""), stanza.place("Provides")):
            virtual[clause[0].name].append(name)
    return {n: list(dict.fromkeys(real.get(n, []) + virtual.get(n, []))) for n in {*real, *virtual}}


def closure(stanzas: Sequence[Stanza], names: Iterable[str], *, recommends: bool = False,
            fields: Sequence[str] | None = None) -> Closure:
    """Everything reachable from ``names`` through Pre-Depends and Depends (and Recommends if asked; or exactly
    ``fields``), taking every alternative of a clause and every provider of a name, over all versions of a
    package."""
    if fields is None:
        fields = (*CLOSURE_FIELDS, "Recommends") if recommends else CLOSURE_FIELDS
    by_name: dict[str, list[Stanza]] = collections.defaultdict(list)
    for stanza in stanzas:
        by_name[_require(stanza, "Package")].append(stanza)
    providers = _providers(stanzas)
    seen: set[str] = set()
    missing: set[str] = set()
    todo = list(names)
    while todo:
        wanted = todo.pop()
        if wanted not in providers:
            missing.add(wanted)
        for package in providers.get(wanted, ()):
            if package in seen:
                continue
            seen.add(package)
            for stanza in by_name[package]:
                for deb_field in fields:
                    for clause in parse_relations(stanza.fields.get(deb_field, ""), stanza.place(deb_field)):
                        todo.extend(alt.name for alt in clause)
    return Closure(names=tuple(sorted(seen)), missing=tuple(sorted(missing)))
