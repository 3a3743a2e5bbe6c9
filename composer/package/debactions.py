"""A Debian package's maintainer scripts and shipped sysusers.d/tmpfiles.d/unit files as ``[actions]``, pure.

:func:`translate` takes the control members (``postinst``, ``preinst``, ``triggers``) and the payload's
``usr/lib/sysusers.d/*.conf``, ``usr/lib/tmpfiles.d/*.conf`` and systemd units, and returns the ``[actions]``
table plus what it could not translate. Nothing is executed; the scripts are read as text:

- only what runs on a fresh install counts: ``postinst`` (configure) and ``preinst`` (install); branches of
  ``case "$1"`` that are not ``configure``/``install``, and ``if`` blocks that only run on upgrades (``"$1" =
  upgrade``, ``dpkg --compare-versions "$2" ...``, ``-n "$2"``) are skipped; prerm/postrm (removal) never
  matter to an image build;
- sections debhelper generated (``# Automatically added by dh_X``) are read by their generator
  (:data:`composer.package.debscripts.DH`):
  dh_installsystemd's ``deb-systemd-helper enable 'U'`` enables U, dh_installsysusers/tmpfiles are covered by
  the shipped files, dh_installdeb's conffile moves only matter on upgrades...;
- every other simple command goes through :data:`composer.package.debscripts.COMMANDS` (adduser, useradd,
  addgroup, update-alternatives, dpkg-statoverride, deb-systemd-helper, systemctl, invoke-rc.d, update-rc.d,
  ldconfig, ssh-keygen, mkdir, chown, chmod, touch, ln on literal paths) or is known to change nothing in an
  image (tests, echo, getent...); anything else, and anything with a shell variable where a value is needed,
  is recorded as untranslated.

Every translated item is checked against the package schema and the actions' own checks; an item that fails
is recorded as untranslated too, so the result always validates.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from composer import schema
from composer.package.actions import semantic_problems
from composer.package.debscripts import DEFAULT_HOME, NOLOGIN, Collected, read_script, words_of

MAX_SCRIPT = 1 << 20        # bytes of one control member or shipped file read
MAX_UNTRANSLATED = 100      # entries recorded per package (then "... and N more")
SCRIPTS = ("preinst", "postinst")
UNIT_DIRS = ("usr/lib/systemd/system", "lib/systemd/system")
SYSUSERS_DIRS = ("usr/lib/sysusers.d", "lib/sysusers.d")
TMPFILES_DIRS = ("usr/lib/tmpfiles.d", "lib/tmpfiles.d")


@dataclass(frozen=True, slots=True, kw_only=True)
class Translation:
    actions: dict[str, Any]
    untranslated: tuple[str, ...]


# ---------------------------------------------------------------- sysusers.d and tmpfiles.d


def _dash(value: str, default: str = "") -> str:
    return default if value == "-" else value


def _entries(text: str, where: str, acc: Collected) -> Iterator[tuple[str, list[str]]]:
    """The lines of a sysusers.d/tmpfiles.d file with their words; blank lines and comments are passed over and
    a line whose quoting does not parse is reported as untranslated (both formats share this syntax)."""
    for line in text.splitlines():
        words = words_of(line)
        if words is None:
            acc.skip(where, line)
        elif words:
            yield line, words


def read_sysusers(text: str, where: str, acc: Collected) -> None:
    """``u``, ``g``, ``m`` lines (``r`` ranges and ids taken from a path are not translated)."""
    for line, words in _entries(text, where, acc):
        kind, rest = words[0].rstrip("!"), words[1:] + ["-"] * 5
        if kind == "u" and _sysuser(rest, acc):
            continue
        if kind == "g" and (rest[1] == "-" or rest[1].isdigit()):
            acc.groups.append({"name": rest[0], **({"gid": int(rest[1])} if rest[1].isdigit() else {})})
            continue
        if kind == "m":
            acc.members.append({"user": rest[0], "group": rest[1]})
            continue
        acc.skip(where, line)
    by_gid = {g["gid"]: g["name"] for g in acc.groups if "gid" in g}
    for user in acc.users:   # "u NAME UID:GID": the primary group is the group that has GID (a g line names it)
        gid = user.pop("primary-gid", None)
        if gid is None:
            continue
        if gid in by_gid:
            user["group"] = by_gid[gid]
        else:   # no g line has that id: a group of the user's name with it
            acc.groups.append({"name": user["name"], "gid": gid})
            user["group"] = user["name"]


def _sysuser(rest: list[str], acc: Collected) -> bool:
    name, ident, gecos, home, shell = rest[:5]
    uid, _, group = ident.partition(":")
    if not (uid == "-" or uid.isdigit()) or group.startswith("/"):
        return False
    user: dict[str, Any] = {"name": name, **({"uid": int(uid)} if uid.isdigit() else {})}
    if group.isdigit():
        user["primary-gid"] = int(group)   # resolved once every g line of the file is read
    elif group and group != "-":
        user["group"] = group
    user.update({"gecos": _dash(gecos), "home": _dash(home, DEFAULT_HOME), "shell": _dash(shell, NOLOGIN)})
    acc.users.append({k: v for k, v in user.items() if v != ""})
    return True


TMPFILE_TYPES = {"d": "d", "D": "d", "f": "f", "L": "L", "z": "z"}
NO_EFFECT_TYPES = frozenset("xXrR")   # cleaning at boot: nothing to clean in a fresh image
# Entries a later systemd unit undoes at boot, which vcomp's init has no step for: made, they would stay.
UNDONE_AT_BOOT = {"/run/nologin": "systemd-user-sessions removes it once the system is up"}


def read_tmpfiles(text: str, where: str, acc: Collected) -> None:
    for line, words in _entries(text, where, acc):
        kind = words[0].strip("!-=~^+")
        path, mode, user, group, _age, arg = (words[1:] + ["-"] * 6)[:6]
        if kind in NO_EFFECT_TYPES:
            continue
        if path in UNDONE_AT_BOOT:
            acc.skip(where, f"{kind} {path} ({UNDONE_AT_BOOT[path]}; init has no such step: not made)")
            continue
        if kind not in TMPFILE_TYPES or "%" in path or not re.fullmatch(r"-|0?[0-7]{3,4}", mode):
            acc.skip(where, line)
            continue
        entry: dict[str, Any] = {"type": TMPFILE_TYPES[kind], "path": path}
        if mode != "-" and kind != "L":
            entry["mode"] = mode if len(mode) == 4 else "0" + mode
        entry.update({"user": _dash(user, "root"), "group": _dash(group, "root")})
        if arg != "-" and kind in ("f", "L"):
            entry["argument"] = arg
        acc.tmpfiles.append(entry)


# ---------------------------------------------------------------- systemd units


def read_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (a key may repeat), continuation lines joined."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in text.replace("\\\n", " ").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, eq, value = line.partition("=")
        if eq:
            out.setdefault(section, {}).setdefault(key.strip(), []).append(value.strip())
    return out


RESTART = {"no": "no", "on-failure": "on-failure", "always": "always", "on-abnormal": "on-failure",
           "on-abort": "on-failure"}


def unit_service(name: str, text: str, acc: Collected) -> dict[str, Any] | None:
    """A ``.service`` unit as a service (``RuntimeDirectory`` as tmpfiles); what does not map is untranslated."""
    svc = read_unit(text).get("Service", {})
    where = f"{name}.service"

    def last(key: str, default: str = "") -> str:
        values = [v for v in svc.get(key, []) if v]
        return values[-1] if values else default

    start = last("ExecStart")
    words = words_of(start.lstrip("-@:+!")) if start else None
    if not words:
        acc.skip(where, "no ExecStart to translate" if words is not None else f"ExecStart={start}")
        return None
    if any("$" in w for w in words):
        acc.skip(where, f"ExecStart={start} (variables are not expanded: dropped)")
        words = [w for w in words if "$" not in w]
    service: dict[str, Any] = {"name": name, "command": words}
    for key, target in (("User", "user"), ("Group", "group"), ("WorkingDirectory", "working-directory")):
        if last(key):
            service[target] = last(key).lstrip("-")
    env: dict[str, str] = {}
    for value in svc.get("Environment", []):
        for word in words_of(value) or []:
            k, eq, v = word.partition("=")
            if eq:
                env[k] = v
    if env:
        service["environment"] = env
    if last("Restart"):
        service["restart"] = RESTART.get(last("Restart"), "on-failure")
    if last("Type") == "notify":
        service["readiness"] = "notify"
    if last("Type") == "forking":   # init supervises a process in the foreground: the command must not detach
        acc.skip(where, "Type=forking (the command detaches; give the profile's services[] a foreground command)")
    caps = [c.lower().removeprefix("cap_") for v in svc.get("AmbientCapabilities", []) for c in v.split()]
    if caps:
        service["capabilities"] = sorted(set(caps))
    for directory in " ".join(svc.get("RuntimeDirectory", [])).split():
        acc.tmpfiles.append({"type": "d", "path": f"/run/{directory}", "mode": last("RuntimeDirectoryMode", "0755"),
                             "user": service.get("user", "root"), "group": service.get("group", "root")})
    for key in ("ExecStartPre", "ExecStartPost", "EnvironmentFile"):
        for value in svc.get(key, []):
            acc.skip(where, f"{key}={value}")
    return service


# ---------------------------------------------------------------- the whole package


def translate(*, package: str, control: Mapping[str, bytes], files: Mapping[str, bytes],
              shipped: Collection[str] = ()) -> Translation:
    """``control``: control members by name; ``files``: payload files by root-relative path (the edge passes the
    sysusers.d, tmpfiles.d and unit files); ``shipped``: every root-relative path of the payload."""
    acc = Collected()
    for rel, data in sorted(files.items()):
        text = data[:MAX_SCRIPT].decode(errors="replace")
        if rel.rpartition("/")[0] in SYSUSERS_DIRS and rel.endswith(".conf"):
            read_sysusers(text, rel, acc)
        elif rel.rpartition("/")[0] in TMPFILES_DIRS and rel.endswith(".conf"):
            read_tmpfiles(text, rel, acc)
    for name in SCRIPTS:
        if name in control:
            read_script(name, control[name][:MAX_SCRIPT].decode(errors="replace"), acc)
    for line in control.get("triggers", b"")[:MAX_SCRIPT].decode(errors="replace").splitlines():
        words = line.split("#", 1)[0].split()
        if words[:2] in (["activate-noawait", "ldconfig"], ["activate", "ldconfig"]):
            acc.ldconfig = True
        elif words:
            acc.skip("triggers", " ".join(words))
    # "create when missing" (f, L) of a path the package ships never applies: openssl's postinst links
    # /usr/lib/ssl to /etc/ssl only when it is missing, and the package ships it as a directory
    acc.tmpfiles[:] = [e for e in acc.tmpfiles if e["type"] not in ("f", "L") or e["path"].strip("/") not in shipped]
    services = _services(acc, files)
    return _finish(package, acc, services)


def _services(acc: Collected, files: Mapping[str, bytes]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for unit in dict.fromkeys(u.strip("'\"") for u in acc.enable):
        base, dot, kind = unit.rpartition(".")
        name, kind = (base, kind) if dot else (unit, "service")
        if kind != "service":
            acc.skip("units", f"{unit}: {kind} units are not translated (only services)")
            continue
        text = next((files[f"{d}/{name}.service"] for d in UNIT_DIRS if f"{d}/{name}.service" in files), None)
        if text is None:
            acc.skip("units", f"{name}: enabled by the scripts but no {name}.service is shipped (sysv init?)")
            continue
        service = unit_service(name, text[:MAX_SCRIPT].decode(errors="replace"), acc)
        if service is not None and service["name"] not in {s["name"] for s in out}:
            out.append(service)
    return out


STUB = {"name": "stub", "version": "0.0.0", "description": "stub", "license": "MIT", "type": "application",
        "arch": "noarch"}


def _valid(kind: str, item: Any) -> bool:
    """``item`` passes the package schema and the actions' own checks."""
    actions = {kind: [item]}
    doc = {"package": STUB, "security": {"context": "stub_t"}, "actions": actions}
    return not any(True for _ in schema.validator("package.schema.json").iter_errors(doc)) \
        and not semantic_problems(actions)


def _finish(package: str, acc: Collected, services: list[dict[str, Any]]) -> Translation:
    table: dict[str, Any] = {}
    kinds: list[tuple[str, list[Any]]] = [("users", acc.users), ("groups", acc.groups), ("members", acc.members),
                                          ("tmpfiles", acc.tmpfiles), ("alternatives", acc.alternatives),
                                          ("services", services)]
    for kind, items in kinds:
        kept: list[Any] = []
        for item in items:
            if item in kept:
                continue
            if _valid(kind, item) and _valid_together(kind, [*kept, item]):
                kept.append(item)
            else:
                acc.skip(kind, f"{item} (not valid as an action)")
        if kept:
            table[kind] = kept
    if acc.ldconfig:
        table["ldconfig"] = True
    if acc.firstboot:
        table["firstboot"] = sorted(acc.firstboot)
    if acc.generate:
        table["generate"] = sorted(acc.generate)
    untranslated = acc.untranslated[:MAX_UNTRANSLATED]
    if len(acc.untranslated) > MAX_UNTRANSLATED:
        untranslated[-1] = f"... and {len(acc.untranslated) - MAX_UNTRANSLATED + 1} more"
    if untranslated:
        table["untranslated"] = untranslated
    return Translation(actions=table, untranslated=tuple(untranslated))


def _valid_together(kind: str, items: list[Any]) -> bool:
    """No duplicate names or paths in one package (the actions' own rule): the first declaration wins."""
    return not semantic_problems({kind: items}) if len(items) > 1 else True
