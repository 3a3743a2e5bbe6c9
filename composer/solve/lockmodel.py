"""The lock as a type: :class:`Lock`, :class:`LockedPackage` and :class:`Reason`, read and written in one place.

A lock file is deterministic JSON (sorted keys, two-space indentation, a final newline). ``Lock.from_dict``
is the one reader: it checks the whole document and refuses a malformed one with one line naming the
lock file and the JSON path (``profiles/x.lock: $.architectures.x86_64[3].size: not an integer``);
``Lock.to_dict`` is the one writer, and :func:`lock_bytes` gives the canonical bytes (a committed lock
read and written again is byte-identical). After ``from_dict`` nothing re-checks a lock's shape.

Lock format 2 (issue 14) writes a row's ``version`` as the version's text form
(:attr:`composer.repo.index.IndexEntry.version_text`: ``1:2.36-9+deb12u7`` for a Debian-scheme package,
``1.2.3`` or ``1:1.2.3-r4`` native) and adds ``version-scheme`` when the scheme is not ``semver``: the text
form and the scheme are the whole version (epoch and revision parse back from it, exactly), so no other key is
written. Format 1 (versions without revisions: SemVer projections) is still read, to be reported stale.

A package's *reason* is a small grammar (``requested``, ``kernel``, ``init``, ``dependency of X``,
``driver for X``, ``bootloader for A, B``); :class:`Reason` is the only place that writes or parses it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from composer.errors import UserError
from composer.schema import json_path
from composer.version import SCHEMES, FullVersion, VersionError

LOCK_FORMAT = 2  # 2: versions in their text form (epoch, revision; Debian originals), version-scheme when not semver
READABLE_FORMATS = frozenset({1, 2})  # format 1 is read so that `vcomp lock --check` can call it stale
FORMAT_1_STALE = "written by lock format 1: versions without revisions; run vcomp lock"
_PHRASES = {"dependency": "dependency of ", "driver": "driver for ", "bootloader": "bootloader for ",
            "recommended": "recommended by ", "suggested": "suggested by "}
_TOP = ("format", "profile", "inputs", "trust-roots", "indexes", "architectures")
_ROW = ("name", "version", "arch", "sha256", "size", "repository", "signer", "reason", "license", "capabilities",
        "held", "version-scheme")
_ROW_REQUIRED = _ROW[:-2]

Path_ = Sequence[str | int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reason:
    """Why a package is in a lock. ``kind`` is requested, kernel, init, dependency, driver, bootloader (or any
    other word a lock holds, kept as written); ``subject`` is the X of 'dependency of X' and the like."""

    kind: str
    subject: str = ""

    @classmethod
    def parse(cls, text: str) -> Reason:
        for kind, phrase in _PHRASES.items():
            if text.startswith(phrase) and len(text) > len(phrase):
                return cls(kind=kind, subject=text[len(phrase):])
        return cls(kind=text)

    @classmethod
    def dependency_of(cls, name: str) -> Reason:
        return cls(kind="dependency", subject=name)

    @classmethod
    def recommended_by(cls, name: str) -> Reason:
        """Pulled in by ``name``'s recommends (weak dependencies turned on in the profile)."""
        return cls(kind="recommended", subject=name)

    @classmethod
    def suggested_by(cls, name: str) -> Reason:
        return cls(kind="suggested", subject=name)

    @classmethod
    def driver_for(cls, driver: str) -> Reason:
        return cls(kind="driver", subject=driver)

    @classmethod
    def bootloader_for(cls, outputs: Iterable[str]) -> Reason:
        return cls(kind="bootloader", subject=", ".join(outputs))

    @property
    def text(self) -> str:
        return _PHRASES[self.kind] + self.subject if self.subject and self.kind in _PHRASES else self.kind

    @property
    def parent(self) -> str | None:
        """The package that pulled this one in (X of 'dependency of X'), else None."""
        return self.subject if self.kind in _PULLED and self.subject else None

    @property
    def is_dependency(self) -> bool:
        """Pulled in by another package ('dependency of X', or a bare 'dependency')."""
        return self.kind in _PULLED

    @property
    def explicit(self) -> bool:
        """Asked for by the profile (requested, kernel, driver, ...), not pulled in by a named package."""
        return self.parent is None

    def __str__(self) -> str:
        return self.text


REQUESTED = Reason(kind="requested")
ESSENTIAL = Reason(kind="essential")  # the profile's base set (essential packages), not named by it
_PULLED = frozenset({"dependency", "recommended", "suggested"})  # kinds whose subject is the package that pulled


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedPackage:
    """One package row of a lock."""

    name: str
    version: str
    arch: str
    sha256: str
    size: int
    repository: str
    signer: str
    reason: Reason
    license: str = ""
    capabilities: tuple[str, ...] = ()
    held: bool = False   # a version `vcomp lock` kept although a newer one is served
    version_scheme: str = "semver"  # how ``version`` parses and orders (composer.version.SCHEMES)

    @property
    def full_version(self) -> FullVersion:
        """The row's version (raises VersionError for a text its scheme does not parse: a format-1 oddity)."""
        return FullVersion.parse(self.version, self.version_scheme)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name, "version": self.version, "arch": self.arch, "sha256": self.sha256, "size": self.size,
            "repository": self.repository, "signer": self.signer, "reason": self.reason.text,
            "license": self.license, "capabilities": list(self.capabilities)}
        if self.held:
            out["held"] = True
        if self.version_scheme != "semver":
            out["version-scheme"] = self.version_scheme
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Lock:
    """A profile's resolution: per architecture, every package (in the lock's order)."""

    profile: str                                   # the profile's name
    inputs: str                                    # the profile's digest (Profile.digest) when it was locked
    trust_roots: Mapping[str, str] = field(default_factory=dict)           # repository -> root fingerprint
    indexes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # repository -> arch -> index digest
    architectures: Mapping[str, tuple[LockedPackage, ...]] = field(default_factory=dict)
    format: int = LOCK_FORMAT

    @property
    def outdated_format(self) -> str:
        """Why the lock must be rewritten for its format ('' when it is of the current format)."""
        return FORMAT_1_STALE if self.format == 1 else ""

    def packages(self, arch: str) -> tuple[LockedPackage, ...]:
        return self.architectures.get(arch, ())

    def package(self, arch: str, name: str) -> LockedPackage | None:
        return next((p for p in self.packages(arch) if p.name == name), None)

    def to_dict(self) -> dict[str, object]:
        return {"format": self.format, "profile": self.profile, "inputs": self.inputs,
                "trust-roots": dict(self.trust_roots), "indexes": {r: dict(a) for r, a in self.indexes.items()},
                "architectures": {a: [p.to_dict() for p in rows] for a, rows in self.architectures.items()}}

    @classmethod
    def from_dict(cls, doc: object, origin: str) -> Lock:
        """The lock of a JSON document; a malformed one is one UserError naming ``origin`` and the JSON path."""
        return _Reader(origin).lock(doc)


def summary_lock(architectures: Mapping[str, Sequence[Mapping[str, object]]]) -> Lock:
    """A lock of what a built image or a generation records per package (name, version, size; sha256 and
    reason when known): the side of a ``vcomp diff`` that is not a commit."""
    return Lock(profile="", inputs="", architectures={arch: tuple(
        LockedPackage(name=str(r["name"]), version=str(r["version"]), arch=arch, sha256=str(r.get("sha256", "")),
                      size=int(str(r.get("size", 0))), repository="", signer="",
                      reason=Reason.parse(str(r.get("reason", ""))),
                      version_scheme=str(r.get("version-scheme", "semver")))
        for r in rows) for arch, rows in architectures.items()})


def lock_bytes(lock: Lock) -> bytes:
    """The canonical bytes of a lock file."""
    return (json.dumps(lock.to_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


class _Reader:
    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.format = LOCK_FORMAT

    def fail(self, where: Path_, message: str) -> UserError:
        return UserError(f"{self.origin}: {json_path(where)}: {message}",
                         hint="re-create it with: vcomp lock PROFILE (a lock is written by vcomp, not by hand)")

    def lock(self, doc: object) -> Lock:
        if not isinstance(doc, dict):
            raise UserError(f"{self.origin}: not a lock file (a JSON object is expected)",
                            hint="run: vcomp lock PROFILE")
        fmt = doc.get("format")
        if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt not in READABLE_FORMATS:
            raise UserError(f"{self.origin}: lock format {str(doc.get('format'))[:32]} is not supported",
                            hint="upgrade vcomp")
        self.keys(doc, [], _TOP, _TOP)
        arches = doc["architectures"]
        if not isinstance(arches, dict):
            raise self.fail(["architectures"], "is not a mapping of architecture -> packages")
        self.format = fmt
        return Lock(format=self.format, profile=self.text(doc["profile"], ["profile"]),
                    inputs=self.text(doc["inputs"], ["inputs"]),
                    trust_roots=self.texts(doc["trust-roots"], ["trust-roots"]),
                    indexes={str(r): self.texts(v, ["indexes", str(r)])
                             for r, v in self.mapping(doc["indexes"], ["indexes"]).items()},
                    architectures={str(a): self.rows(rows, ["architectures", str(a)]) for a, rows in arches.items()})

    def rows(self, rows: object, where: list[str | int]) -> tuple[LockedPackage, ...]:
        if not isinstance(rows, list):
            raise self.fail(where, "missing or not a list of packages")
        out: list[LockedPackage] = []
        for i, p in enumerate(rows):
            place = [*where, i]
            if not isinstance(p, dict) or not isinstance(p.get("name"), str):
                raise self.fail(place, "not a package entry")
            if any(q.name == p["name"] for q in out):
                raise self.fail(place, f"package '{p['name']}' is listed twice")
            out.append(self.row(p, place))
        return tuple(out)

    def row(self, p: dict[str, object], where: list[str | int]) -> LockedPackage:
        self.keys(p, where, _ROW_REQUIRED, _ROW if self.format >= 2 else _ROW[:-1])
        s: Callable[[str], str] = lambda k: self.text(p[k], [*where, k])  # noqa: E731
        size = p["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise self.fail([*where, "size"], f"{_short(size)} is not a size in bytes")
        held = p.get("held", False)
        if "held" in p and held is not True:
            raise self.fail([*where, "held"], f"{_short(held)}: only 'true' marks a held row")
        caps = self.listed(p["capabilities"], [*where, "capabilities"])
        scheme = self.text(p.get("version-scheme", "semver"), [*where, "version-scheme"])
        if scheme not in SCHEMES:
            raise self.fail([*where, "version-scheme"], f"{_short(scheme)} is not a version scheme "
                                                         f"({', '.join(sorted(SCHEMES))})")
        version = s("version")
        if self.format >= 2:  # format 1 held SemVer projections: read as written, reported stale
            try:
                FullVersion.parse(version, scheme)
            except VersionError as exc:
                raise self.fail([*where, "version"], f"{_short(version)} is not a {scheme} version ({exc.message})") \
                    from None
        return LockedPackage(name=s("name"), version=version, arch=s("arch"), sha256=s("sha256"), size=size,
                             repository=s("repository"), signer=s("signer"), reason=Reason.parse(s("reason")),
                             license=s("license"), capabilities=caps, held=held is True, version_scheme=scheme)

    def keys(self, d: dict[str, object], where: Path_, required: Sequence[str], known: Sequence[str]) -> None:
        for k in d:
            if k not in known:
                raise self.fail([*where, str(k)], "is not a field of a lock" if not where else
                                "is not a field of a locked package")
        for k in required:
            if k not in d:
                raise self.fail([*where, k], "is missing")

    def text(self, value: object, where: Path_) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"{_short(value)} is not a string")
        return value

    def mapping(self, value: object, where: Path_) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.fail(where, f"{_short(value)} is not a mapping")
        return value

    def texts(self, value: object, where: Path_) -> dict[str, str]:
        return {str(k): self.text(v, [*where, str(k)]) for k, v in self.mapping(value, where).items()}

    def listed(self, value: object, where: Path_) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(where, f"{_short(value)} is not a list")
        return tuple(self.text(v, [*where, i]) for i, v in enumerate(value))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:56] + "...'"
