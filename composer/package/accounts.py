"""Users and groups of an image from the packages' ``[actions]`` (sysusers.d semantics), pure.

:func:`plan_accounts` takes the root's current ``/etc/passwd``, ``/etc/group`` and ``/etc/shadow`` lines and
every package's declarations, and returns the new lines. It is deterministic: same inputs (the same lock),
same lines and ids. The rules:

- A name that is already in the files is kept as it is (sysusers.d: an existing user is not touched); a
  fixed id declared for it that differs from the file's is a conflict.
- Two packages may declare the same user or group only identically; a different declaration is a conflict
  naming both packages. Two names with one fixed id are a conflict.
- Ids not fixed are allocated from :data:`SYSTEM_IDS`: groups first (a group named like a user with a
  fixed uid takes that id when free), then users (a user whose primary group is its own name takes that
  group's id when free); otherwise the first free id from a slot derived from the name's sha256, so adding
  a package rarely moves the ids of the others.
- New lines are appended sorted by name; memberships (``m``, and a user's primary group when it is another
  group) are merged into the member lists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from composer.errors import UserError
from composer.package.actions import Actions, Group, User

SYSTEM_IDS = range(100, 1000)
NOGROUP = 65534


class ActionConflict(UserError):
    """Packages of one image declare actions that cannot all hold (a user twice, differently; one id twice)."""


HINT = "the packages' [actions] disagree: fix one of them, or leave one out of the profile"


@dataclass(frozen=True, slots=True, kw_only=True)
class Accounts:
    passwd: tuple[str, ...]
    group: tuple[str, ...]
    shadow: tuple[str, ...]
    uids: Mapping[str, int]
    gids: Mapping[str, int]

    def uid(self, name: str) -> int | None:
        return self.uids.get(name)

    def gid(self, name: str) -> int | None:
        return self.gids.get(name)


def from_masters(passwd_master: Sequence[str], group_master: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """``/etc/passwd``, ``/etc/group``, ``/etc/shadow`` lines from Debian's base-passwd masters
    (``/usr/share/base-passwd/*.master``, what its postinst's update-passwd installs): password fields ``x``,
    shadow entries locked."""
    def shadowed(line: str) -> str:
        fields = line.split(":")
        return ":".join([fields[0], "x", *fields[2:]]) if len(fields) > 2 else line

    passwd = [shadowed(line) for line in passwd_master]
    return passwd, [shadowed(line) for line in group_master], [f"{line.split(':')[0]}:*:::::::" for line in passwd]


def merge_masters(files: Sequence[Sequence[str]], masters: Sequence[Sequence[str]]) -> tuple[list[str], ...]:
    """The image's ``(passwd, group, shadow)`` lines plus the masters' entries (:func:`from_masters`) whose name
    and id they do not have yet, appended in the masters' order: what base-passwd's ``update-passwd`` does on
    a root that has its files already (a Debian package's ``www-data`` beside a base that ships only ``root``)."""
    out: list[list[str]] = [list(lines) for lines in files]
    for index, (have, extra) in enumerate(zip(out[:2], masters[:2], strict=True)):
        names = {line.split(":")[0] for line in have}
        ids = {line.split(":")[2] for line in have if line.count(":") >= 2}
        added = [line for line in extra if line.split(":")[0] not in names and line.count(":") >= 2
                 and line.split(":")[2] not in ids]
        have.extend(added)
        if index == 0:
            shadow_names = {line.split(":")[0] for line in out[2]}
            out[2].extend(f"{line.split(':')[0]}:*:::::::" for line in added
                          if line.split(":")[0] not in shadow_names)
    return out[0], out[1], out[2]


def _ids(lines: Iterable[str], index: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in lines:
        parts = line.split(":")
        if len(parts) > index and parts[index].isdigit():
            out.setdefault(parts[0], int(parts[index]))
    return out


def _unify(kind: str, declared: Iterable[tuple[str, User | Group]]) -> dict[str, tuple[str, User | Group]]:
    """name -> (first package, declaration); a different second declaration is a conflict."""
    out: dict[str, tuple[str, User | Group]] = {}
    for package, item in declared:
        if item.name in out and out[item.name][1] != item:
            first, other = out[item.name]
            raise ActionConflict(f"{kind} '{item.name}' is declared differently by packages '{first}' ({other}) "
                                 f"and '{package}' ({item})", hint=HINT)
        out.setdefault(item.name, (package, item))
    return out


def _fixed(kind: str, wanted: dict[str, tuple[str, int]], existing: dict[str, int]) -> None:
    """Fixed ids: one name per id, and an existing name keeps its id."""
    by_id: dict[int, tuple[str, str]] = {i: (n, "the image's files") for n, i in existing.items()}
    for name, (package, number) in sorted(wanted.items()):
        if name in existing:
            if existing[name] != number:
                raise ActionConflict(f"package '{package}' declares {kind} '{name}' with id {number}, but the image "
                                     f"already has '{name}' with id {existing[name]}", hint=HINT)
            continue
        if number in by_id and by_id[number][0] != name:
            other, owner = by_id[number]
            raise ActionConflict(f"{kind} id {number} is claimed by '{name}' (package '{package}') and by '{other}' "
                                 f"({owner})", hint=HINT)
        by_id[number] = (name, f"package '{package}'")


def _allocate(name: str, used: set[int], what: str) -> int:
    size = len(SYSTEM_IDS)
    start = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % size
    for step in range(size):
        candidate = SYSTEM_IDS[(start + step) % size]
        if candidate not in used:
            return candidate
    raise ActionConflict(f"no free {what} id left in {SYSTEM_IDS.start}-{SYSTEM_IDS.stop - 1} for '{name}'",
                         hint="too many system accounts: give some of them fixed ids outside that range")


def plan_accounts(*, passwd: Sequence[str], group: Sequence[str], shadow: Sequence[str],
                  declared: Sequence[tuple[str, Actions]]) -> Accounts:
    users = {n: (p, u) for n, (p, u) in _unify("user", ((p, u) for p, a in declared for u in a.users)).items()
             if isinstance(u, User)}
    groups = {n: (p, g) for n, (p, g) in _unify("group", ((p, g) for p, a in declared for g in a.groups)).items()
              if isinstance(g, Group)}
    have_uids, have_gids = _ids(passwd, 2), _ids(group, 2)
    _fixed("user", {n: (p, u.uid) for n, (p, u) in users.items() if u.uid is not None}, have_uids)
    _fixed("group", {n: (p, g.gid) for n, (p, g) in groups.items() if g.gid is not None}, have_gids)
    # groups a new user or a membership needs, made implicitly (sysusers.d does the same)
    implicit = [(p, u.primary) for p, a in declared for u in a.users] + [(p, m.group) for p, a in declared
                                                                         for m in a.members]
    for package, name in implicit:
        groups.setdefault(name, (package, Group(name=name)))
    gids = dict(have_gids)
    used_gids = set(have_gids.values()) | {g.gid for _p, g in groups.values() if g.gid is not None}
    for name, (_p, g) in sorted(groups.items()):
        if name in gids:
            continue
        same = users.get(name)
        uid = same[1].uid if same else None
        if g.gid is not None:
            gids[name] = g.gid
            continue
        gids[name] = uid if uid is not None and uid not in used_gids else _allocate(name, used_gids, "group")
        used_gids.add(gids[name])
    uids = dict(have_uids)
    used_uids = set(have_uids.values()) | {u.uid for _p, u in users.values() if u.uid is not None}
    for name, (_p, u) in sorted(users.items()):
        if name in uids:
            continue
        if u.uid is not None:
            uids[name] = u.uid
            continue
        own = gids.get(name) if u.primary == name else None
        uids[name] = own if own is not None and own not in used_uids else _allocate(name, used_uids, "user")
        used_uids.add(uids[name])
    for package, a in declared:
        for m in a.members:
            if m.user not in uids:
                raise ActionConflict(f"package '{package}' makes '{m.user}' a member of '{m.group}', but no package "
                                     f"declares user '{m.user}' and the image has none", hint=HINT)
    return _lines(passwd, group, shadow, users, {n for n in groups if n not in have_gids}, uids, gids, declared)


def _lines(passwd: Sequence[str], group: Sequence[str], shadow: Sequence[str],
           users: dict[str, tuple[str, User]], new_groups: set[str], uids: dict[str, int], gids: dict[str, int],
           declared: Sequence[tuple[str, Actions]]) -> Accounts:
    have_users = {line.split(":")[0] for line in passwd}
    new_users = sorted(n for n in users if n not in have_users)
    out_passwd = [*passwd, *(f"{n}:x:{uids[n]}:{gids[users[n][1].primary]}:{users[n][1].gecos}:{users[n][1].home}:"
                             f"{users[n][1].shell}" for n in new_users)]
    have_shadow = {line.split(":")[0] for line in shadow}
    out_shadow = [*shadow, *(f"{n}:!*:::::::" for n in new_users if n not in have_shadow)]
    members: dict[str, set[str]] = {}
    for _p, a in declared:
        for m in a.members:
            members.setdefault(m.group, set()).add(m.user)
    for n in new_users:
        u = users[n][1]
        if u.primary != n:
            members.setdefault(u.primary, set()).add(n)
    out_group = [_with_members(line, members) for line in group]
    out_group += [_with_members(f"{n}:x:{gids[n]}:", members) for n in sorted(new_groups)]
    return Accounts(passwd=tuple(out_passwd), group=tuple(out_group), shadow=tuple(out_shadow),
                    uids=MappingProxyType(dict(uids)), gids=MappingProxyType(dict(gids)))


def _with_members(line: str, members: dict[str, set[str]]) -> str:
    head, _, current = line.rpartition(":")
    name = line.split(":")[0]
    listed = [m for m in current.split(",") if m]
    extra = sorted(members.get(name, set()) - set(listed))
    return f"{head}:{','.join([*listed, *extra])}"
