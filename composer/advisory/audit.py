"""``vcomp audit``: the packages of a lock, a built image or an installed root matched against the advisory feeds
of their repositories (read through the verifying TUF client). The matching is pure (composer/advisory/match.py);
this module gathers the packages and the feeds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer import limits
from composer.advisory.feed import Feed
from composer.advisory.match import Finding, Package, at_or_above, audit, lock_packages
from composer.advisory.osv import SEVERITIES, Advisory
from composer.errors import ComposerError, UserError
from composer.notices import notice

AUDIT_FORMAT = "1.0"


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """What one audit found: the subject, the findings and the feed size."""

    subject: str
    kind: str                         # profile, lock, image, root
    findings: tuple[Finding, ...]
    advisories: int                   # in the feeds read
    threshold: str = ""               # --severity given
    packages: int = 0

    @property
    def over(self) -> list[Finding]:
        return at_or_above(self.findings, self.threshold) if self.threshold else []

    def to_dict(self) -> dict[str, Any]:
        counts = {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}
        return {"format_version": AUDIT_FORMAT, "subject": self.subject, "kind": self.kind,
                "packages": self.packages, "advisories": self.advisories,
                "threshold": self.threshold or None, "over-threshold": len(self.over),
                "counts": counts, "findings": [f.to_dict() for f in self.findings]}


def record_packages(records: Iterable[Mapping[str, Any]], arch: str = "") -> list[Package]:
    """Packages from an installed root's database records or a built image's contents.json rows."""
    return sorted({Package(name=str(r["name"]), version=str(r["version"]), scheme=_scheme(r),
                           arch=arch or str(r.get("arch", ""))) for r in records},
                  key=lambda p: (p.name, p.arch, p.version))


def _scheme(record: Mapping[str, Any]) -> str:
    """A record's version scheme: contents.json's ``version-scheme``, or the installed package's metadata."""
    package = (record.get("metadata") or {}).get("package") or {}
    return str(record.get("version-scheme") or package.get("version-scheme") or "semver")


def report(subject: str, kind: str, packages: Sequence[Package], feed: Feed, threshold: str = "") -> Report:
    return Report(subject=subject, kind=kind, findings=tuple(audit(packages, feed.advisories)),
                  advisories=len(feed.advisories), threshold=threshold, packages=len(packages))


def profile_feed(profile_path: Path) -> Feed:
    """The feeds of every repository the profile names."""
    from composer.advisory.client import feeds
    from composer.profile.load import load_profile
    from composer.solve.lock import open_sources
    from composer.solve.relock import repos_cache
    sources = open_sources(load_profile(profile_path), repos_cache())
    return feeds(sources.clients.values())


def profile_of_lock(lock_file: Path) -> Path:
    for suffix in (".yaml", ".yml"):
        candidate = lock_file.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    raise UserError(f"{lock_file}: no profile beside it ({lock_file.with_suffix('.yaml').name})",
                    hint="audit the profile instead (vcomp audit PROFILE.yaml): its repositories give the feeds")


def audit_profile(path: Path, threshold: str = "") -> Report:
    """PROFILE.yaml (its lock beside it) or PROFILE.lock (its profile beside it)."""
    from composer.solve.lock import lock_path, read_lock
    is_lock = path.suffix == ".lock"
    profile = profile_of_lock(path) if is_lock else path
    target = path if is_lock else lock_path(profile)
    lock = read_lock(target)
    if lock is None:
        raise UserError(f"{profile} has no lock ({target})", hint=f"run: vcomp lock {profile}")
    return report(str(path), "lock" if is_lock else "profile", lock_packages(lock), profile_feed(profile), threshold)


def image_profile(image_dir: Path) -> Path:
    """The profile of images/NAME/ARCH: profiles/NAME.yaml beside images/ (or pass --profile)."""
    name = image_dir.resolve().parent.name
    for candidate in (image_dir.resolve().parents[2] / "profiles" / f"{name}.yaml", Path("profiles") / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    raise UserError(f"{image_dir}: cannot tell which profile built it (no profiles/{name}.yaml)",
                    hint="name it: vcomp audit IMAGE_DIR --profile PROFILE.yaml (its repositories give the feeds)")


def audit_image(image_dir: Path, profile: Path | None, threshold: str = "") -> Report:
    packages = image_packages(image_dir)
    return report(str(image_dir), "image", packages, profile_feed(profile or image_profile(image_dir)), threshold)


def image_packages(image_dir: Path) -> list[Package]:
    """A built image directory's packages (images/NAME/ARCH: manifest.json and contents.json)."""
    try:
        manifest = limits.load_json((image_dir / "manifest.json").read_bytes(), str(image_dir / "manifest.json"))
        contents = limits.load_json((image_dir / "contents.json").read_bytes(), str(image_dir / "contents.json"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{image_dir}: not a built image directory ({exc})",
                        hint="give images/NAME/ARCH of a 'vcomp build'") from None
    if not isinstance(manifest, dict) or not isinstance(contents, dict) or not all(
            isinstance(c, dict) and isinstance(c.get("version"), str) for c in contents.values()):
        raise UserError(f"{image_dir}: manifest.json or contents.json is not what vcomp build writes",
                        hint="rebuild the image: vcomp build PROFILE")
    return record_packages(({**c, "name": n} for n, c in contents.items()), str(manifest.get("arch", "")))


def root_report(root: Path, clients: Iterable[Any], threshold: str = "") -> Report:
    """An installed root: its package database against its own repositories' feeds (vpk audit)."""
    from composer.advisory.client import feeds
    from composer.pkgmgr import db
    records = db.load(root).packages.values()
    return report(str(root), "root", record_packages(records), feeds(clients), threshold)


def dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


@dataclass(slots=True, kw_only=True)
class FeedProbe:
    """``probe(profile_path)``: the advisories of the profile's repositories (what ``vcomp plan`` compares the
    old and new locks against), read once per profile. A feed that cannot be read is a notice, not an error,
    unless the profile's policy gates on advisories: then the plan cannot be judged and the error stands."""

    _feeds: dict[Path, Feed] = field(default_factory=dict)

    def __call__(self, path: Path) -> Sequence[Advisory]:
        if path not in self._feeds:
            self._feeds[path] = self._read(path)
        return self._feeds[path].advisories

    @staticmethod
    def _read(path: Path) -> Feed:
        from composer.profile.load import load_profile
        try:
            return profile_feed(path)
        except ComposerError as exc:
            if load_profile(path).policy.advisories is not None:
                raise
            notice(f"vcomp: note: {path}: advisories not checked ({exc.message})")
            return Feed()
