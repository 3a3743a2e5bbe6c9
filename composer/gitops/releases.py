"""Generations to channels: which bundle a recorded generation built, which repository a profile releases to,
and which channel carries which generation (for ``vcomp release``, ``reconcile --channel`` and ``history``).

A generation record (composer/gitops/generations.py) lists each architecture's outputs with their files'
digests. An A/B disk output writes its update bundle beside its image, ``images/NAME/ARCH/OUTPUT.bundle/``; the
bundle belongs to a generation when the files the record lists for that output are still the ones on disk
(the images directory holds the newest build only), which :func:`recorded_bundle` checks before a release.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from composer.errors import UserError
from composer.fsutil import sha256_file
from composer.oserrors import fault
from composer.update.channel import BUNDLE_JSON, Channel, parse_commit

BUNDLE_SUFFIX = ".bundle"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedBundle:
    generation: int
    arch: str
    output: str
    directory: Path
    commit: str | None


def recorded_bundle(images: Path, name: str, record: Mapping[str, Any], arch: str | None) -> RecordedBundle:
    """The update bundle generation ``record`` built (of ``arch``, or of the one architecture that has one),
    checked against the record's digests of its output's files."""
    found = recorded_bundles(images, name, record, arch)
    where = f"generation {record['generation']} of {name}" + (f" ({arch})" if arch else "")
    if not found:
        raise UserError(f"{where} has no update bundle (images/{name}/ARCH/OUTPUT{BUNDLE_SUFFIX}/{BUNDLE_JSON})",
                        hint="give the profile an A/B disk output (type: disk, options: {slots: ab}), reconcile, "
                             "then release; or release a bundle directory: --bundle DIR --generation N")
    if len(found) > 1:
        shown = ", ".join(f"{b.arch}/{b.output}" for b in found)
        raise UserError(f"{where} has several update bundles ({shown})",
                        hint="name the architecture with --arch, or the bundle with --bundle DIR --generation N")
    return found[0]


def recorded_bundles(images: Path, name: str, record: Mapping[str, Any], arch: str | None = None) \
        -> list[RecordedBundle]:
    """Every update bundle generation ``record`` built (of ``arch`` only, when given), each checked against the
    record's digests of its output's files."""
    number = int(record["generation"])
    out = []
    for a, rec in sorted(record.get("architectures", {}).items()):
        if arch is not None and a != arch:
            continue
        for o in rec.get("outputs", []):
            directory = images / name / a / f"{o['name']}{BUNDLE_SUFFIX}"
            if not (directory / BUNDLE_JSON).is_file():
                continue
            for f in o.get("files", []):
                _check_recorded(images / name / a / str(f["path"]), f, f"generation {number} of {name} ({a})")
            out.append(RecordedBundle(generation=number, arch=a, output=str(o["name"]), directory=directory,
                                      commit=_commit(record.get("commit"))))
    return out


def _check_recorded(path: Path, listed: Mapping[str, Any], where: str) -> None:
    try:
        same = path.is_file() and path.stat().st_size == listed.get("size") and sha256_file(path) == listed["sha256"]
    except OSError as exc:
        raise fault(exc, f"reading {path}") from None
    if not same:
        raise UserError(f"{path} is not the file {where} recorded (missing, or its size or sha256 differ): the "
                        "images directory holds another build",
                        hint="release the generation the images directory holds (vcomp history PROFILE), or "
                             "rebuild this one; or release a bundle directory: --bundle DIR --generation N")


def _commit(value: Any) -> str | None:
    try:
        return parse_commit(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def repository_dir(given: str | None, profile: Any, origin: str) -> Path:
    """The repository working directory to release to: ``--repo``, else the profile's ``updates.repository`` (the
    name of one of its repositories, whose url must then be a local directory: publishing signs and writes files
    there; a device fetches it from ``updates.url`` or that url)."""
    if given:
        return Path(given)
    updates = getattr(profile, "updates", None)
    name = getattr(updates, "repository", None)
    if not isinstance(name, str):
        raise UserError(f"{origin}: no repository to release to (the profile has no updates.repository)",
                        hint="pass --repo DIR (a 'vcomp repo init' directory)")
    ref = next((r for r in getattr(profile, "repositories", ()) if r.name == name), None)
    parsed = urlparse(str(getattr(ref, "url", "")))
    if parsed.scheme != "file":
        raise UserError(f"{origin}: updates.repository '{name}' is "
                        + (f"at {ref.url}, which this machine cannot write" if ref is not None else
                           "not one of the profile's repositories"),
                        hint="name the repository's working directory with --repo DIR (releases are signed and "
                             "written there)")
    return Path(unquote(parsed.path))


def default_channel(given: str | None, profile: Any, origin: str) -> str:
    """``--channel``, else the profile's ``updates.channel``."""
    if given:
        return given
    channel = getattr(getattr(profile, "updates", None), "channel", None)
    if not isinstance(channel, str):
        raise UserError(f"{origin}: which channel? the profile names none (updates.channel)",
                        hint="pass --channel NAME (e.g. --channel stable)")
    return channel


def carried(channels: Sequence[Channel]) -> dict[int, list[str]]:
    """generation -> the channels carrying it now (``stable`` or ``stable/aarch64`` when several arches)."""
    arches = {c.arch for c in channels}
    out: dict[int, list[str]] = {}
    for c in sorted(channels, key=lambda c: (c.channel, c.arch)):
        out.setdefault(c.generation, []).append(c.channel if len(arches) == 1 else f"{c.channel}/{c.arch}")
    return out


def channel_summary(c: Channel) -> dict[str, Any]:
    """A channel as ``history --json``, ``release --json`` and ``rollback-channel --json`` show it (pure)."""
    return {"channel": c.channel, "arch": c.arch, "generation": c.generation, "commit": c.commit,
            "target": c.target_path, "images": {i.role: i.image for i in c.images},
            "history": [h.to_dict() for h in c.history]}
