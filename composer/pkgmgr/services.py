"""The image's effective services, pure: the packages' declarations (``[actions]`` services) with the profile's
``services:`` applied (enable, disable, override), in start order.

Two outputs, written by ``composer.pkgmgr.actions``:

- ``/etc/veridian/services.toml``: every service with its package, ``enable`` and its effective fields, and
  ``start-order`` (the enabled services, each after the ones it names in ``after``; ties by name);
- ``/etc/veridian/services.d/NNN-NAME``: one file per enabled service, ``KEY VALUE`` lines init reads without
  evaluating anything (``name``, ``uid``, ``gid``, ``user``, ``dir``, ``restart``, ``ready``, ``env NAME=VALUE``
  per variable, ``arg WORD`` per command word). NNN is the start position.
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from composer.errors import UserError
from composer.package.accounts import ActionConflict
from composer.package.actions import Service
from composer.profile.model import ServiceOverride

INIT_DIR = "etc/veridian/services.d"


@dataclass(frozen=True, slots=True, kw_only=True)
class Effective:
    """One service as the image runs it: its package, and the service with the profile's entry applied."""

    name: str
    package: str
    service: Service


def effective(declared: Mapping[str, tuple[str, Service]], overrides: Sequence[ServiceOverride]) -> list[Effective]:
    """The packages' services (name -> (package, service)) with the profile's entries applied, by name. An
    entry naming a service no package provides is an error at the entry's place, with a did-you-mean and the
    services the packages provide."""
    out = {name: Effective(name=name, package=package, service=s) for name, (package, s) in declared.items()}
    for entry in overrides:
        if entry.name not in out:
            raise _unknown(entry, declared)
        current = out[entry.name]
        out[entry.name] = Effective(name=entry.name, package=current.package, service=entry.apply(current.service))
    return [out[name] for name in sorted(out)]


def _unknown(entry: ServiceOverride, declared: Mapping[str, tuple[str, Service]]) -> UserError:
    close = difflib.get_close_matches(entry.name, list(declared), n=1)
    guess = f" (did you mean '{close[0]}'?)" if close else ""
    provided = ", ".join(f"{name} ({package})" for name, (package, _s) in sorted(declared.items()))
    return UserError(f"{entry.where or 'profile'}: no installed package provides service '{entry.name}'{guess}",
                     hint=f"the packages provide: {provided}" if provided else
                     "no installed package declares a service; add the package that does, or remove the entry")


def start_order(services: Sequence[Effective]) -> list[str]:
    """The enabled services in start order: each after the enabled services its ``after`` names (others are
    ignored, as systemd's After=), ties by name. A cycle is an error naming it."""
    enabled = {e.name: e for e in services if e.service.enable}
    before = {name: sorted(a for a in e.service.after if a in enabled) for name, e in enabled.items()}
    waiting = {name: len(deps) for name, deps in before.items()}
    unblocks: dict[str, list[str]] = {}
    for name, deps in before.items():
        for dep in deps:
            unblocks.setdefault(dep, []).append(name)
    ready = [name for name, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for nxt in unblocks.get(name, []):
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, nxt)
    if len(order) < len(enabled):
        cycle = _cycle({n: d for n, d in before.items() if n not in order})
        raise UserError("services come after each other in a cycle: " + " -> ".join(
            f"{n} ({enabled[n].package})" for n in cycle) + " (each comes after the next)",
            hint="drop one 'after' (the profile's services[].after replaces a package's), or disable one service")
    return order


def _cycle(before: Mapping[str, Sequence[str]]) -> list[str]:
    """One cycle of a graph where every node is on a cycle or leads to one: follow the smallest edge."""
    path: list[str] = []
    node = min(before)
    while node not in path:
        path.append(node)
        node = min(d for d in before[node] if d in before)
    return [*path[path.index(node):], node]


UserIds = Callable[[str], "tuple[int, int] | None"]   # user name -> (uid, primary gid), None: no such user
GroupId = Callable[[str], "int | None"]


def document(services: Sequence[Effective], order: Sequence[str], user: UserIds, gid: GroupId) -> dict[str, Any]:
    """``services.toml``: ``start-order`` and each service (by name) with its package. Its user and group must
    exist in the image; its command and environment must be lines (init reads them line by line)."""
    table: dict[str, Any] = {}
    for e in services:
        account_ids(e, user, gid)
        for word in (*e.service.command, *e.service.environment.values()):
            if not word.isprintable():
                raise ActionConflict(f"package '{e.package}': service '{e.name}' has a command word or an "
                                     "environment value with a newline or control character",
                                     hint="init reads them line by line; wrap the command in a script")
        table[e.name] = {"package": e.package, **e.service.to_value()}
    return {"start-order": list(order), "services": table}


def account_ids(e: Effective, user: UserIds, gid: GroupId) -> tuple[int, int]:
    ids = user(e.service.user)
    if ids is None:
        raise ActionConflict(f"package '{e.package}': service '{e.name}' runs as user '{e.service.user}', which the "
                             "image does not have", hint="declare the user in [[actions.users]] or the profile's users")
    if not e.service.group:
        return ids
    group_id = gid(e.service.group)
    if group_id is None:
        raise ActionConflict(f"package '{e.package}': service '{e.name}' runs in group '{e.service.group}', which the "
                             "image does not have", hint="declare the group in [[actions.groups]]")
    return ids[0], group_id


def init_files(services: Sequence[Effective], order: Sequence[str], user: UserIds, gid: GroupId) -> dict[str, str]:
    """``services.d/NNN-NAME`` -> its ``KEY VALUE`` lines, one file per enabled service in start order."""
    by_name = {e.name: e for e in services}
    out = {}
    for i, name in enumerate(order, 1):
        e = by_name[name]
        s = e.service
        user_id, group_id = account_ids(e, user, gid)
        lines = [f"name {name}", f"package {e.package}", f"uid {user_id}", f"gid {group_id}", f"user {s.user}",
                 f"dir {s.working_directory}", f"restart {s.restart}", f"ready {s.readiness}",
                 *(f"env {k}={v}" for k, v in sorted(s.environment.items())), *(f"arg {w}" for w in s.command)]
        out[f"{INIT_DIR}/{i:03d}-{name}"] = ("# generated by vcomp from services.toml: KEY VALUE, read by init\n"
                                             + "".join(f"{line}\n" for line in lines))
    return out
