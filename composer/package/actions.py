"""Declarative package actions (``[actions]`` of a package's metadata): what maintainer scripts did, as data.

A package declares users and groups (sysusers.d semantics), directories, files and links with owner and
mode (tmpfiles.d ``d``/``f``/``L``), alternatives, an ldconfig run, generated files, services and first-boot
actions. Nothing here runs anything: ``composer.pkgmgr.actions`` applies the union of the installed
packages' declarations to a root at image build, through the confined filesystem layer.

Each action kind is one row of :data:`KINDS` (its TOML key, how a value reads and writes, its checks
beyond the schema). The schema (``schemas/package.schema.json``, ``actions``) bounds counts, lengths and
names; :func:`semantic_problems` adds what it cannot say (paths normalised and outside vcomp's reserved
directories, one declaration per user, group, path, alternative link and service within a package).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from composer.rootfs.paths import path_problem, reserved_problem

RUNTIME = ("run", "tmp", "proc", "sys", "dev")   # top directories that exist only at run time

ROOT_ACCOUNT = "root"


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """``u NAME UID:GID "GECOS" HOME SHELL``: ``uid`` None = allocated at image build; ``group`` '' = a group
    of the user's own name (made with the user's id when it is free)."""

    name: str
    uid: int | None = None
    group: str = ""
    gecos: str = ""
    home: str = "/nonexistent"
    shell: str = "/usr/sbin/nologin"

    @property
    def primary(self) -> str:
        return self.group or self.name


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """``g NAME GID``: ``gid`` None = allocated at image build."""

    name: str
    gid: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """``m USER GROUP``: the user is a member of the group."""

    user: str
    group: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TmpFile:
    """tmpfiles.d ``d`` (directory), ``f`` (file with ``argument`` as content when missing), ``L`` (symlink
    to ``argument``), ``C`` (a copy of the image's file ``argument`` when missing: a configuration file a
    maintainer script installs from a template, ``ucf``) or ``z`` (mode and owner of a path that exists:
    dpkg-statoverride); ``mode`` None = 0755 for d, 0644 for f and C."""

    type: str
    path: str
    mode: int | None = None
    user: str = ROOT_ACCOUNT
    group: str = ROOT_ACCOUNT
    argument: str = ""

    @property
    def rel(self) -> str:
        return self.path.lstrip("/")

    @property
    def effective_mode(self) -> int:
        return self.mode if self.mode is not None else (0o755 if self.type == "d" else 0o644)


@dataclass(frozen=True, slots=True, kw_only=True)
class Alternative:
    """update-alternatives: ``link`` points at the highest-priority ``path`` of all packages offering ``name``."""

    name: str
    link: str
    path: str
    priority: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """A service as data: the profile may override it, init supervises it (``composer.pkgmgr.services``)."""

    name: str
    command: tuple[str, ...]
    user: str = ROOT_ACCOUNT
    group: str = ""
    working_directory: str = "/"
    environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    restart: str = "on-failure"
    readiness: str = "none"
    after: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    enable: bool = True

    def to_value(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "command": list(self.command), "user": self.user}
        if self.group:
            out["group"] = self.group
        out.update({"working-directory": self.working_directory, "restart": self.restart,
                    "readiness": self.readiness, "enable": self.enable})
        if self.environment:
            out["environment"] = dict(sorted(self.environment.items()))
        if self.after:
            out["after"] = list(self.after)
        if self.capabilities:
            out["capabilities"] = list(self.capabilities)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Actions:
    """Every action one package declares (empty by default: a package without ``[actions]``)."""

    users: tuple[User, ...] = ()
    groups: tuple[Group, ...] = ()
    members: tuple[Member, ...] = ()
    tmpfiles: tuple[TmpFile, ...] = ()
    alternatives: tuple[Alternative, ...] = ()
    ldconfig: bool = False
    generate: tuple[str, ...] = ()
    services: tuple[Service, ...] = ()
    firstboot: tuple[str, ...] = ()
    untranslated: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self) if f.name != "untranslated")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Actions:
        return cls(**{row.attr: row.read(d[key]) for key, row in KINDS.items() if key in d})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, row in KINDS.items():
            value = getattr(self, row.attr)
            if value:
                out[key] = row.write(value)
        return out


# ---------------------------------------------------------------- reading and writing values


def _mode(text: str | None) -> int | None:
    return None if text is None else int(text, 8)


def _user(v: Mapping[str, Any]) -> User:
    return User(name=v["name"], uid=v.get("uid"), group=v.get("group", ""), gecos=v.get("gecos", ""),
                home=v.get("home", "/nonexistent"), shell=v.get("shell", "/usr/sbin/nologin"))


def _user_value(u: User) -> dict[str, Any]:
    out: dict[str, Any] = {"name": u.name}
    if u.uid is not None:
        out["uid"] = u.uid
    if u.group:
        out["group"] = u.group
    out.update({k: v for k, v in (("gecos", u.gecos), ("home", u.home), ("shell", u.shell)) if v})
    return out


def _group(v: Mapping[str, Any]) -> Group:
    return Group(name=v["name"], gid=v.get("gid"))


def _group_value(g: Group) -> dict[str, Any]:
    return {"name": g.name} if g.gid is None else {"name": g.name, "gid": g.gid}


def _tmpfile(v: Mapping[str, Any]) -> TmpFile:
    return TmpFile(type=v["type"], path=v["path"], mode=_mode(v.get("mode")), user=v.get("user", ROOT_ACCOUNT),
                   group=v.get("group", ROOT_ACCOUNT), argument=v.get("argument", ""))


def _tmpfile_value(t: TmpFile) -> dict[str, Any]:
    out: dict[str, Any] = {"type": t.type, "path": t.path}
    if t.mode is not None:
        out["mode"] = f"{t.mode:04o}"
    out.update({"user": t.user, "group": t.group})
    if t.argument:
        out["argument"] = t.argument
    return out


def _alternative(v: Mapping[str, Any]) -> Alternative:
    return Alternative(name=v["name"], link=v["link"], path=v["path"], priority=int(v.get("priority", 0)))


def _alternative_value(a: Alternative) -> dict[str, Any]:
    return {"name": a.name, "link": a.link, "path": a.path, "priority": a.priority}


def _service(v: Mapping[str, Any]) -> Service:
    return Service(name=v["name"], command=tuple(v["command"]), user=v.get("user", ROOT_ACCOUNT),
                   group=v.get("group", ""), working_directory=v.get("working-directory", "/"),
                   environment=MappingProxyType(dict(sorted(v.get("environment", {}).items()))),
                   restart=v.get("restart", "on-failure"), readiness=v.get("readiness", "none"),
                   after=tuple(v.get("after", ())), capabilities=tuple(v.get("capabilities", ())),
                   enable=bool(v.get("enable", True)))


def _table(read: Callable[[Mapping[str, Any]], Any]) -> Callable[[Any], tuple[Any, ...]]:
    return lambda value: tuple(read(v) for v in value)


def _tables(write: Callable[[Any], dict[str, Any]]) -> Callable[[Any], list[dict[str, Any]]]:
    return lambda items: [write(i) for i in items]


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


def _list(items: Any) -> list[str]:
    return list(items)


# ---------------------------------------------------------------- checks beyond the schema

Problem = tuple[str, str]   # (JSON path below $.actions, message)


def _path_problems(where: str, path: str, *, root_ok: bool = False) -> Iterator[Problem]:
    if path == "/":
        if not root_ok:
            yield where, "'/' is the image's root directory itself: name a path below it"
        return
    rel = path[1:] if path.startswith("/") else path
    why = path_problem(rel) if path.startswith("/") else "is relative"
    if why:
        yield where, f"'{path}' {why}: give an absolute, normalised path inside the image"
        return
    reserved = reserved_problem(rel, "file")
    if reserved:
        yield where, f"'{path}' {reserved}"


def _unique(kind: str, keys: Sequence[str], what: str) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in seen:
            yield f"{kind}[{i}]", f"{what} '{key}' is declared twice (also {kind}[{seen[key]}])"
        seen.setdefault(key, i)


def _check_users(a: Actions) -> Iterator[Problem]:
    yield from _unique("users", [u.name for u in a.users], "user")
    for i, u in enumerate(a.users):
        yield from _path_problems(f"users[{i}].home", u.home, root_ok=True)
        yield from _path_problems(f"users[{i}].shell", u.shell)
        if u.name == ROOT_ACCOUNT and u.uid not in (None, 0):
            yield f"users[{i}].uid", f"user 'root' must have uid 0, not {u.uid}"


def _check_groups(a: Actions) -> Iterator[Problem]:
    yield from _unique("groups", [g.name for g in a.groups], "group")


def _check_members(a: Actions) -> Iterator[Problem]:
    yield from _unique("members", [f"{m.user}:{m.group}" for m in a.members], "membership")


def _check_tmpfiles(a: Actions) -> Iterator[Problem]:
    yield from _unique("tmpfiles", [t.rel for t in a.tmpfiles], "path")
    for i, t in enumerate(a.tmpfiles):
        yield from _path_problems(f"tmpfiles[{i}].path", t.path)
        if any(c.isspace() for c in t.path):
            yield f"tmpfiles[{i}].path", f"'{t.path}' contains white space (init reads the boot list by words)"
        if t.type == "L" and not t.argument:
            yield f"tmpfiles[{i}].argument", "an 'L' entry needs the link target as its argument"
        if t.type == "L" and t.mode is not None:
            yield f"tmpfiles[{i}].mode", "an 'L' entry (a symlink) has no mode"
        if t.type == "C":
            yield from _path_problems(f"tmpfiles[{i}].argument", t.argument)
            if t.rel.split("/", 1)[0] in RUNTIME:
                yield f"tmpfiles[{i}].path", f"'{t.path}' is made at run time: a 'C' entry copies at image build"
        if t.type in ("d", "z") and t.argument:
            yield f"tmpfiles[{i}].argument", f"a '{t.type}' entry takes no argument"
        if t.type == "z" and t.mode is None:
            yield f"tmpfiles[{i}].mode", "a 'z' entry needs the mode to set"
        if t.mode is not None and t.mode & 0o002 and not (t.type == "d" and t.mode & 0o1000):
            yield f"tmpfiles[{i}].mode", f"{t.mode:04o} is world-writable without the sticky bit"


def _check_alternatives(a: Actions) -> Iterator[Problem]:
    yield from _unique("alternatives", [x.name for x in a.alternatives], "alternative")
    for i, x in enumerate(a.alternatives):
        yield from _path_problems(f"alternatives[{i}].link", x.link)
        yield from _path_problems(f"alternatives[{i}].path", x.path)
        if x.link == x.path:
            yield f"alternatives[{i}].path", f"'{x.path}' is the link itself"


def _check_services(a: Actions) -> Iterator[Problem]:
    yield from _unique("services", [s.name for s in a.services], "service")
    for i, s in enumerate(a.services):
        yield from _path_problems(f"services[{i}].command[0]", s.command[0])
        yield from _path_problems(f"services[{i}].working-directory", s.working_directory, root_ok=True)
        if s.readiness.startswith("file:"):
            yield from _path_problems(f"services[{i}].readiness", s.readiness[5:])
        if s.readiness.startswith("tcp:") and not 0 < int(s.readiness[4:]) < 65536:
            yield f"services[{i}].readiness", f"'{s.readiness}': the port must be 1-65535"
        if s.name in s.after:
            yield f"services[{i}].after", f"service '{s.name}' cannot come after itself"


def _no_problems(_a: Actions) -> Iterator[Problem]:
    return iter(())


@dataclass(frozen=True, slots=True, kw_only=True)
class Kind:
    """One action kind: the ``Actions`` attribute it fills, how its TOML value reads and writes, its checks."""

    attr: str
    read: Callable[[Any], Any]
    write: Callable[[Any], Any]
    check: Callable[[Actions], Iterator[Problem]]
    summary: str


KINDS: Mapping[str, Kind] = MappingProxyType({
    "users": Kind(attr="users", read=_table(_user), write=_tables(_user_value), check=_check_users,
                  summary="system users (sysusers.d u)"),
    "groups": Kind(attr="groups", read=_table(_group), write=_tables(_group_value), check=_check_groups,
                   summary="system groups (sysusers.d g)"),
    "members": Kind(attr="members", read=_table(lambda v: Member(user=v["user"], group=v["group"])),
                    write=_tables(lambda m: {"user": m.user, "group": m.group}), check=_check_members,
                    summary="group memberships (sysusers.d m)"),
    "tmpfiles": Kind(attr="tmpfiles", read=_table(_tmpfile), write=_tables(_tmpfile_value), check=_check_tmpfiles,
                     summary="directories, files, copies and links with owner and mode (tmpfiles.d d, f, L, C)"),
    "alternatives": Kind(attr="alternatives", read=_table(_alternative), write=_tables(_alternative_value),
                         check=_check_alternatives, summary="alternatives (highest priority wins)"),
    "ldconfig": Kind(attr="ldconfig", read=bool, write=bool, check=_no_problems,
                     summary="the shared-library cache (ldconfig at first boot)"),
    "generate": Kind(attr="generate", read=_strings, write=_list, check=_no_problems,
                     summary="generated files (e.g. the CA bundle)"),
    "services": Kind(attr="services", read=_table(_service), write=_tables(Service.to_value), check=_check_services,
                     summary="services (data for the supervisor)"),
    "firstboot": Kind(attr="firstboot", read=_strings, write=_list, check=_no_problems,
                      summary="first-boot actions (ssh host keys, machine-id)"),
    "untranslated": Kind(attr="untranslated", read=_strings, write=_list, check=_no_problems,
                         summary="what an import could not translate (recorded, shown by pkg lint)"),
})


def semantic_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """What the schema cannot check in a schema-valid ``[actions]`` table: (path below ``$.actions``, message)."""
    actions = Actions.from_dict(raw)
    return [p for row in KINDS.values() for p in row.check(actions)]
