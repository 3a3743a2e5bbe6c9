"""The advisory feed of a repository: every OSV document, sorted by id, in one zstd-compressed canonical JSON
target (``advisories/osv.json.zst``) that the ``advisories`` delegated role signs (composer/repo/advisories.py).

Pure: :func:`encode` and :func:`decode` turn advisories into bytes and back (bounded), :func:`merge` adds
advisories to a feed with the refusals of ``vcomp advisory add``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import zstandard

from composer import limits
from composer.advisory.osv import Advisory, check_unique
from composer.errors import UserError, VerificationError, combine
from composer.fsutil import canonical_json

FEED_PATH = "advisories/osv.json.zst"   # the target (its TUF path; stored content-addressed)
FEED_FORMAT = 1
MAX_FEED_BYTES = 256 << 20              # decompressed
MAX_ADVISORIES = 200_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Feed:
    advisories: tuple[Advisory, ...] = ()

    def by_id(self) -> dict[str, Advisory]:
        return {a.id: a for a in self.advisories}

    def rows(self, package: str = "") -> list[dict[str, object]]:
        """One JSON row per advisory, sorted by id (``vcomp advisory list --json``'s ``advisories``, and what a
        repository site shows: schemas/advisory-list.schema.json); only those naming ``package`` when given."""
        return [row(a) for a in sorted(self.advisories, key=lambda a: a.id)
                if not package or any(x.name == package for x in a.affected)]


def row(a: Advisory) -> dict[str, object]:
    """An advisory as a row of schemas/advisory-list.schema.json (pure)."""
    return {"id": a.id, "aliases": list(a.aliases), "severity": a.severity, "summary": a.title,
            "modified": a.modified, "withdrawn": a.withdrawn,
            "affected": [{"ecosystem": x.ecosystem, "name": x.name, "fixed": list(x.fixed),
                          "versions": list(x.versions)} for x in a.affected]}


def encode(feed: Feed) -> bytes:
    """Deterministic bytes: canonical JSON sorted by id, zstd level 19 (no content size frame flag varies)."""
    doc = {"format": FEED_FORMAT, "advisories": [a.to_dict() for a in sorted(feed.advisories, key=lambda a: a.id)]}
    return zstandard.ZstdCompressor(level=19).compress(canonical_json(doc))


def decode(data: bytes, origin: str) -> Feed:
    """A feed from verified (or local) bytes; a malformed one is a VerificationError naming the place."""
    try:
        raw = limits.unzstd(data, MAX_FEED_BYTES)
        doc = limits.load_json(raw, origin)
    except (zstandard.ZstdError, ValueError) as exc:
        raise VerificationError(f"{origin}: malformed advisory feed ({exc})",
                                hint="the repository's advisories/osv.json.zst is damaged") from None
    if not isinstance(doc, dict) or doc.get("format") != FEED_FORMAT or not isinstance(doc.get("advisories"), list):
        raise VerificationError(f"{origin}: not an advisory feed of format {FEED_FORMAT}", hint="upgrade vcomp")
    docs = doc["advisories"]
    if len(docs) > MAX_ADVISORIES:
        raise VerificationError(f"{origin}: {len(docs)} advisories, more than {MAX_ADVISORIES}")
    try:
        advisories = tuple(Advisory.from_dict(d, f"{origin}: advisories[{i}]") if isinstance(d, dict) else
                           _not_object(origin, i) for i, d in enumerate(docs))
        check_unique(advisories, origin)
    except UserError as exc:
        raise VerificationError(exc.message, hint="the feed's publisher must fix it") from None
    return Feed(advisories=advisories)


def _not_object(origin: str, i: int) -> Advisory:
    raise UserError(f"{origin}: advisories[{i}] is not an object")


def merge(feed: Feed, new: Sequence[Advisory], *, replace: bool = False) -> Feed:
    """``feed`` with ``new`` added. An id already in the feed is refused (all at once) unless ``replace``, and
    then only by a document whose ``modified`` is later; an identical document is no change."""
    check_unique(new, "the advisories given")
    known = feed.by_id()
    errors = []
    for a in new:
        old = known.get(a.id)
        if old is None or old.source == a.source:
            continue
        if not replace:
            errors.append(UserError(f"advisory {a.id} is already in the feed (modified {old.modified})",
                                    hint="to publish a corrected version, raise its 'modified' date and pass "
                                         "--replace"))
        elif a.modified <= old.modified:
            errors.append(UserError(f"advisory {a.id}: 'modified' {a.modified} is not later than the published "
                                    f"{old.modified}", hint="set 'modified' to now (RFC 3339) in the new version"))
    if errors:
        raise combine(errors, summary=f"{len(errors)} advisories refused")
    return Feed(advisories=tuple(sorted({**known, **{a.id: a for a in new}}.values(), key=lambda a: a.id)))


def newer(feed: Feed, new: Sequence[Advisory]) -> list[Advisory]:
    """The advisories of ``new`` that ``merge(feed, ..., replace=True)`` takes without a refusal: ids not in the
    feed, and published ids whose document changed with a later 'modified' (a derived feed imported again keeps
    the published copy of everything else, a maintainer's correction included)."""
    known = feed.by_id()
    return [a for a in new
            if (old := known.get(a.id)) is None or (old.source != a.source and a.modified > old.modified)]


def union(feeds: Iterable[Feed]) -> Feed:
    """Several repositories' feeds as one (the first repository's copy of an id wins)."""
    seen: dict[str, Advisory] = {}
    for feed in feeds:
        for a in feed.advisories:
            seen.setdefault(a.id, a)
    return Feed(advisories=tuple(sorted(seen.values(), key=lambda a: a.id)))
