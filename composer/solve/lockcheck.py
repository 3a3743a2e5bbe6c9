"""Locks are checked, not trusted: a lock must be exactly what resolving its profile gives.

``vcomp build`` recomputes the lock from the profile, the pinned trust roots and the repositories'
verified indexes, and compares it with the lock on disk field by field (name, version, arch, sha256,
size, repository, signer, reason, license, capabilities, held). Any difference (an extra package, a
missing one, a downgrade, another sha256 or reason) is refused with the lock file and the JSON path of
each difference; nothing is built.

The only freedom a lock has is its *held* rows (``"held": true``): versions ``vcomp lock`` kept from
the previous lock although the repository now offers newer ones. The check resolves holding exactly
those, so a held row must still be served, satisfy the profile and be older than the fresh answer.

When a repository no longer serves the index the lock was resolved against (its digest in
``indexes`` differs), vcomp has no copy of the old index: the lock is compared with the resolution
against the served index instead, every field but ``indexes``. If the packages are still exactly
what the profile resolves to, the build goes on; if anything differs (a newer version the lock does
not hold, a package gone), it is refused with the differences and the index move, and
``vcomp lock PROFILE`` re-resolves (keeping, and marking held, the locked versions still served).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from composer.errors import UserError
from composer.profile.validate import Profile
from composer.schema import json_path
from composer.solve.lock import Sources, resolve_profile

ROW_FIELDS = ("name", "version", "arch", "sha256", "size", "repository", "signer", "reason", "license",
              "capabilities", "held")


class LockMismatch(UserError):
    """The lock is not what its profile resolves to (hand-edited or written by something else)."""


def index_changes(lock: Mapping[str, Any], served: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Repositories whose served index (repo -> arch -> digest) is not the locked one."""
    locked = lock.get("indexes")
    locked = locked if isinstance(locked, dict) else {}
    out = []
    for repo in sorted(set(locked) | set(served)):
        was, now = locked.get(repo), served.get(repo, {})
        was = was if isinstance(was, dict) else {}
        for arch in sorted(set(was) | set(now)):
            if was.get(arch) != now.get(arch):
                out.append(f"$.indexes.{repo}.{arch}: the lock was resolved against index "
                           f"{str(was.get(arch) or 'none')[:12]}, repository '{repo}' now serves "
                           f"{str(now.get(arch) or 'none')[:12]}")
    return out


def held_of(lock: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """arch -> name -> version of the lock's held rows (whatever their shape; the comparison judges them)."""
    arches = lock.get("architectures")
    out: dict[str, dict[str, str]] = {}
    for arch, rows in (arches.items() if isinstance(arches, dict) else []):
        for p in rows if isinstance(rows, list) else []:
            if isinstance(p, dict) and p.get("held") is True and isinstance(p.get("name"), str) \
                    and isinstance(p.get("version"), str):
                out.setdefault(str(arch), {})[p["name"]] = p["version"]
    return out


def differences(expected: Mapping[str, Any], lock: Mapping[str, Any]) -> list[str]:
    """Every place where ``lock`` differs from ``expected`` (pure), as 'JSON path: what differs'."""
    out = []
    for key in sorted(set(expected) | set(lock)):
        if key != "architectures" and expected.get(key) != lock.get(key):
            out.append(f"{json_path([key])}: is {_short(lock.get(key))}, resolving the profile gives "
                       f"{_short(expected.get(key))}")
    want, have = expected.get("architectures", {}), lock.get("architectures")
    if not isinstance(have, dict):
        return [*out, "$.architectures: is not a mapping of architecture -> packages"]
    for arch in sorted(set(want) | set(have)):
        rows = have.get(arch)
        if arch not in want:
            out.append(f"{json_path(['architectures', arch])}: the profile does not build {arch}")
            continue
        if not isinstance(rows, list):
            out.append(f"{json_path(['architectures', arch])}: missing or not a list of packages")
            continue
        wanted = {p["name"]: p for p in want[arch]}
        seen: set[str] = set()
        for i, p in enumerate(rows):
            place = json_path(["architectures", arch, i])
            name = p.get("name") if isinstance(p, dict) else None
            if not isinstance(p, dict) or not isinstance(name, str):
                out.append(f"{place}: not a package entry")
                continue
            if name in seen:
                out.append(f"{place}: package '{name}' is listed twice")
                continue
            seen.add(name)
            w = wanted.get(name)
            if w is None:
                out.append(f"{place}: package '{name}' {p.get('version', '')} is not part of the profile's "
                           f"resolution (nobody asked for it)")
                continue
            for f in sorted(set(ROW_FIELDS) | set(p) | set(w)):
                if p.get(f) != w.get(f):
                    out.append(f"{json_path(['architectures', arch, i, f])}: '{name}' has {_short(p.get(f))}, "
                               f"resolving the profile gives {_short(w.get(f))}")
        for name in sorted(set(wanted) - seen):
            out.append(f"{json_path(['architectures', arch])}: package '{name}' {wanted[name]['version']} "
                       f"({wanted[name]['reason']}) is missing")
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:76] + "...'"


def lock_problems(profile: Profile, lock: Mapping[str, Any], sources: Sources) -> tuple[list[str], list[str]]:
    """(index moves, differences): how the repositories moved since the lock, and every place where the
    lock differs from resolving the profile against the served indexes (holding the lock's held rows).
    When an index moved, the lock's ``indexes`` are not compared: the packages still are, exactly."""
    served: dict[str, dict[str, str]] = {}
    for arch in profile.architectures:
        for repo, digest in sources.digests(arch).items():
            served.setdefault(repo, {})[arch] = digest
    moved = index_changes(lock, served)
    expected = resolve_profile(profile, sources, held_of(lock) or None)
    if moved:
        expected = {**expected, "indexes": lock.get("indexes")}
    return moved, differences(expected, lock)


def check_lock(profile: Profile, lock: Mapping[str, Any], sources: Sources, path: Path) -> None:
    """Refuse a lock that is not exactly the profile's resolution against the indexes."""
    moved, found = lock_problems(profile, lock, sources)
    if found:
        why = (" (the repositories moved since it was written: " + "; ".join(moved) + ")") if moved else \
            "; was it edited by hand?"
        raise LockMismatch(f"{path} is not what resolving {profile.path} gives ({len(found)} difference"
                           f"{'s' if len(found) > 1 else ''}{why}):\n"
                           + "\n".join(f"  {path}: {d}" for d in found),
                           hint=f"nothing was built; re-create the lock with: vcomp lock {profile.path} "
                                f"(it keeps locked versions that are still served) and review what it says moved")
