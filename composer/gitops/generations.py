"""Generations: what was actually built, one record per reconcile, under images/NAME/generations/.

A record: generation number, commit, profile and lock digests, per architecture the output digests and
sizes, the locked packages (name, version, sha256, size) and the boot test results. Written atomically;
a corrupt record is an error naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from composer.errors import UserError
from composer.fsutil import atomic_write

RECORD_FORMAT = 1


def directory(images: Path, name: str) -> Path:
    return images / name / "generations"


def read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("format") != RECORD_FORMAT or not isinstance(doc.get("generation"), int):
            raise ValueError("unknown format or no generation number")
        return dict(doc)
    except (OSError, ValueError, AttributeError) as exc:
        raise UserError(f"{path}: corrupt generation record ({exc})",
                        hint="delete the file; the next reconcile rebuilds and records the profile") from None


def generations(images: Path, name: str) -> list[dict[str, Any]]:
    d = directory(images, name)
    return sorted((read(p) for p in d.glob("*.json")), key=lambda g: g["generation"]) if d.is_dir() else []


def last(images: Path, name: str) -> dict[str, Any] | None:
    found = generations(images, name)
    return found[-1] if found else None


def find(images: Path, name: str, number: int) -> dict[str, Any]:
    for g in generations(images, name):
        if g["generation"] == number:
            return g
    raise UserError(f"profile '{name}' has no generation {number}", hint="see: vcomp history PROFILE")


def record(images: Path, name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    previous = last(images, name)
    number = (previous["generation"] + 1) if previous else 1
    doc = {"format": RECORD_FORMAT, "generation": number, **entry}
    atomic_write(directory(images, name) / f"{number:06d}.json",
                 json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n")
    return doc


def summary(g: Mapping[str, Any]) -> dict[str, Any]:
    """A generation record as ``vcomp history --json`` shows it (schemas/generations.schema.json; pure): what was
    built from which commit, and each architecture's outputs, package count and boot tests."""
    return {"generation": g["generation"], "commit": g.get("commit", ""), "worktree": g.get("worktree", "clean"),
            "time": g.get("time", 0), "profile_digest": g.get("profile-digest", ""),
            "lock_digest": g.get("lock-digest", ""), "rebuilt": list(g.get("rebuilt", [])),
            "architectures": {arch: {"outputs": [o["name"] for o in a.get("outputs", [])],
                                     "packages": len(a.get("packages", [])),
                                     "tests": [{"id": t["id"], "passed": t["passed"], "seconds": t["seconds"]}
                                               for t in a.get("tests", [])]}
                              for arch, a in sorted(g.get("architectures", {}).items())}}
