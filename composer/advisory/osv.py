"""Advisories in OSV format (https://ossf.github.io/osv-schema/): parsed, validated and bounded once, at the
boundary, into frozen values; the document itself is kept (canonical JSON) so a feed republishes it unchanged.

Pure: bytes and dicts in, values out. The schema is schemas/osv.schema.json (OSV 1.6 with size bounds).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from composer import limits, schema
from composer.errors import UserError, combine
from composer.fsutil import canonical_json

SCHEMA = "osv.schema.json"
MAX_ADVISORY_BYTES = 256 * 1024      # one OSV document (the largest real ones are ~100 KiB)
# Severity levels in order; "unknown" ranks lowest and only a gate that asks for it counts it.
SEVERITIES = ("unknown", "low", "medium", "high", "critical")
SEVERITY_ALIASES: Mapping[str, str] = {"moderate": "medium", "important": "high", "negligible": "low"}


def severity_rank(level: str) -> int:
    return SEVERITIES.index(level)


def parse_severity(text: str, origin: str) -> str:
    """A severity level from the command line or a profile (``high``, ``MODERATE``): one of :data:`SEVERITIES`."""
    level = SEVERITY_ALIASES.get(text.lower(), text.lower())
    if level not in SEVERITIES:
        raise UserError(f"{origin}: unknown severity '{text}'", hint="use one of: " + ", ".join(SEVERITIES))
    return level


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One event of an OSV range: exactly one of the fields is set."""

    introduced: str = ""
    fixed: str = ""
    last_affected: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Affected:
    """One ``affected`` entry: a package of an ecosystem, its ranges (ECOSYSTEM/SEMVER events) and versions."""

    ecosystem: str
    name: str
    ranges: tuple[tuple[Event, ...], ...] = ()
    versions: tuple[str, ...] = ()

    @property
    def fixed(self) -> tuple[str, ...]:
        """Every version a range names as the fix."""
        return tuple(e.fixed for r in self.ranges for e in r if e.fixed)


@dataclass(frozen=True, slots=True, kw_only=True)
class Advisory:
    id: str
    modified: str
    summary: str
    severity: str                    # one of SEVERITIES
    aliases: tuple[str, ...]
    affected: tuple[Affected, ...]
    withdrawn: bool
    source: bytes                    # the document, canonical JSON

    @property
    def title(self) -> str:
        """The summary, else the first line of the details, else the id."""
        if self.summary:
            return self.summary
        details = str(self.to_dict().get("details", "")).strip()
        return details.splitlines()[0][:200] if details else self.id

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.source)
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], origin: str) -> Advisory:
        """A checked OSV document (schemas/osv.schema.json); every schema error at once, with its JSON path."""
        schema.check(doc, SCHEMA, origin=origin, locate=lambda _p: (1, 1))
        affected = tuple(_affected(a) for a in doc.get("affected") or ())
        return cls(id=str(doc["id"]), modified=str(doc["modified"]), summary=str(doc.get("summary", "")),
                   severity=_severity(doc), aliases=tuple(str(a) for a in doc.get("aliases") or ()),
                   affected=affected, withdrawn=bool(doc.get("withdrawn")), source=canonical_json(dict(doc)))


def _affected(doc: Mapping[str, Any]) -> Affected:
    package = doc.get("package", {})
    ranges = tuple(tuple(Event(introduced=str(e.get("introduced", "")), fixed=str(e.get("fixed", "")),
                               last_affected=str(e.get("last_affected", ""))) for e in r["events"])
                   for r in doc.get("ranges", ()) if r.get("type") in ("ECOSYSTEM", "SEMVER"))
    return Affected(ecosystem=str(package.get("ecosystem", "")), name=str(package.get("name", "")),
                    ranges=ranges, versions=tuple(str(v) for v in doc.get("versions", ())))


def _severity(doc: Mapping[str, Any]) -> str:
    """database_specific.severity (GitHub's and vcomp's convention), else the highest of the affected entries'
    ecosystem_specific/database_specific severities, else unknown (CVSS vectors are not scored: docs/advisories.md)."""
    levels = [doc.get("database_specific", {}).get("severity")]
    for a in doc.get("affected") or ():
        for part in ("ecosystem_specific", "database_specific"):
            levels.append((a.get(part) or {}).get("severity"))
    known = [SEVERITY_ALIASES.get(v.lower(), v.lower()) for v in levels if isinstance(v, str)]
    known = [v for v in known if v in SEVERITIES]
    return max(known, key=severity_rank) if known else "unknown"


def parse_advisory(data: bytes, origin: str) -> Advisory:
    """One OSV document from untrusted bytes: size, depth and JSON checked, then the schema."""
    if len(data) > MAX_ADVISORY_BYTES:
        raise UserError(f"{origin}: {len(data)} bytes, more than an advisory may have ({MAX_ADVISORY_BYTES})",
                        hint="an OSV document is a few KiB: is this the right file?")
    try:
        doc = limits.load_json(data, origin)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{origin}: not JSON ({exc})", hint="an advisory is one OSV JSON document") from None
    if not isinstance(doc, dict):
        raise UserError(f"{origin}: an OSV document is a JSON object, not {type(doc).__name__}",
                        hint="one advisory per file")
    return Advisory.from_dict(doc, origin)


def check_unique(advisories: Sequence[Advisory], origin: str) -> None:
    """Every id once (all duplicates named at once)."""
    seen: set[str] = set()
    errors = []
    for a in advisories:
        if a.id in seen:
            errors.append(UserError(f"{origin}: advisory {a.id} is listed twice", hint="one document per id"))
        seen.add(a.id)
    if errors:
        raise combine(errors, summary=f"{origin}: {len(errors)} duplicate advisories")
