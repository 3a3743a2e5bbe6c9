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
from dataclasses import replace
from pathlib import Path

from composer.errors import UserError
from composer.profile.model import Profile
from composer.schema import json_path
from composer.solve.lock import RepositorySources, resolve_profile
from composer.solve.lockmodel import Lock

ROW_FIELDS = ("name", "version", "arch", "sha256", "size", "repository", "signer", "reason", "license",
              "capabilities", "held")


class LockMismatch(UserError):
    """The lock is not what its profile resolves to (hand-edited or written by something else)."""


def index_changes(lock: Lock, served: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Repositories whose served index (repo -> arch -> digest) is not the locked one."""
    out = []
    for repo in sorted(set(lock.indexes) | set(served)):
        was, now = lock.indexes.get(repo, {}), served.get(repo, {})
        for arch in sorted(set(was) | set(now)):
            if was.get(arch) != now.get(arch):
                out.append(f"$.indexes.{repo}.{arch}: the lock was resolved against index "
                           f"{str(was.get(arch) or 'none')[:12]}, repository '{repo}' now serves "
                           f"{str(now.get(arch) or 'none')[:12]}")
    return out


def held_of(lock: Lock) -> dict[str, dict[str, str]]:
    """arch -> name -> version of the lock's held rows."""
    out: dict[str, dict[str, str]] = {}
    for arch, rows in lock.architectures.items():
        for p in rows:
            if p.held:
                out.setdefault(arch, {})[p.name] = p.version
    return out


def differences(expected: Lock, lock: Lock) -> list[str]:
    """Every place where ``lock`` differs from ``expected`` (pure), as 'JSON path: what differs'."""
    out = []
    want_doc, have_doc = expected.to_dict(), lock.to_dict()
    for key in sorted(set(want_doc) | set(have_doc)):
        if key != "architectures" and want_doc.get(key) != have_doc.get(key):
            out.append(f"{json_path([key])}: is {_short(have_doc.get(key))}, resolving the profile gives "
                       f"{_short(want_doc.get(key))}")
    want, have = expected.architectures, lock.architectures
    for arch in sorted(set(want) | set(have)):
        if arch not in want:
            out.append(f"{json_path(['architectures', arch])}: the profile does not build {arch}")
            continue
        if arch not in have:
            out.append(f"{json_path(['architectures', arch])}: missing or not a list of packages")
            continue
        wanted = {p.name: p.to_dict() for p in want[arch]}
        seen: set[str] = set()
        for i, row in enumerate(have[arch]):
            p = row.to_dict()
            seen.add(row.name)
            w = wanted.get(row.name)
            if w is None:
                out.append(f"{json_path(['architectures', arch, i])}: package '{row.name}' {row.version} is not "
                           f"part of the profile's resolution (nobody asked for it)")
                continue
            for f in sorted(set(ROW_FIELDS) | set(p) | set(w)):
                if p.get(f) != w.get(f):
                    out.append(f"{json_path(['architectures', arch, i, f])}: '{row.name}' has {_short(p.get(f))}, "
                               f"resolving the profile gives {_short(w.get(f))}")
        for name in sorted(set(wanted) - seen):
            out.append(f"{json_path(['architectures', arch])}: package '{name}' {wanted[name]['version']} "
                       f"({wanted[name]['reason']}) is missing")
    return out


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:76] + "...'"


def lock_problems(profile: Profile, lock: Lock, sources: RepositorySources) -> tuple[list[str], list[str]]:
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
        expected = replace(expected, indexes=lock.indexes)
    return moved, differences(expected, lock)


def check_lock(profile: Profile, lock: Lock, sources: RepositorySources, path: Path) -> None:
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
