"""What the profile adds to an installed root: hostname, the packages' actions (``composer.pkgmgr.actions``),
users, overlay files, init's configuration.

Init (the sample ``init`` package) reads ``/etc/veridian/``: ``modules.load`` (driver modules in
dependency order), ``capabilities`` (granted capabilities, one per line), ``checks.d/`` (boot checks,
each an executable; ``VCOMP-CHECK: PASS|FAIL NAME`` on the console). ``capabilities.toml`` is the
capability policy: every installed package with its granted capabilities and security context.

Boot checks always include the architecture (``uname -m``), every driver module loaded, the root file
system mounted (the disk's when ``vcomp.root=`` is on the command line, else the initramfs), and the
network up when the profile grants ``network``; the profile's ``boot-tests[].checks`` are added.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from composer.errors import UserError
from composer.fsutil import canonical_json
from composer.pkgmgr import db, dbcheck
from composer.pkgmgr.actions import TMPFILES, TMPFILES_HEADER, apply_actions, apply_services
from composer.profile.model import Profile
from composer.rootfs import Root, path_problem, show

CONF = Path("etc/veridian")

CHECK_ARCH = """#!/bin/sh
# the image runs on the architecture it was built for
test "$(uname -m)" = {arch}
"""
CHECK_MODULES = """#!/bin/sh
# every driver module of the profile is loaded (or built in)
fail=0
while read -r path _; do
    [ -n "$path" ] || continue
    name=${path##*/}; name=${name%%.ko*}; name=$(echo "$name" | tr - _)
    if [ -d "/sys/module/$name" ]; then echo "loaded: $name"; else echo "missing: $name"; fail=1; fi
done < /etc/veridian/modules.load
exit $fail
"""
CHECK_ROOT = """#!/bin/sh
# the root file system is mounted: the disk's when vcomp.root= is given, else the initramfs
root=; type=
for arg in $(cat /proc/cmdline); do
    case $arg in vcomp.root=*) root=${arg#*=} ;; vcomp.rootfstype=*) type=${arg#*=} ;; esac
done
set -- $(grep ' / ' /proc/mounts | tail -n 1)
echo "/ is $1 ($3)"
if [ -n "$root" ]; then
    [ "$3" = "${type:-$3}" ] && [ "$1" != rootfs ] && [ -x /sbin/init ]
else
    case $3 in rootfs | ramfs | tmpfs) [ -x /sbin/init ] ;; *) exit 1 ;; esac
fi
"""
CHECK_NETWORK = """#!/bin/sh
# the network capability is granted: an interface besides lo has an IPv4 address
ip -4 -o addr show | grep -v ' lo ' | grep -q ' inet '
"""


GENERATED = Path("var/lib/vpk/generated.json")  # what the profile wrote (verify does not call it extra)
GENERATED_NAME = GENERATED.name
CONF_REL = CONF.as_posix()
PASSWD_UNSAFE = frozenset(":\n\r\x00")  # would end or split a line of /etc/passwd, group or shadow


def configure(root: Path, profile: Profile, arch: str, records: Mapping[str, Mapping[str, Any]]) -> None:
    """Write the profile's configuration into ``root`` (the packages are installed already), and list
    what it wrote in ``var/lib/vpk/generated.json``. Every write goes through ``composer.rootfs.Root``:
    nothing is written through a symlink inside the root."""
    with Root.open(root) as r:
        written = _configure(r, profile, arch, records)
        listed = read_generated(r)
        paths = {*written, "var/lib", "var/lib/vpk"}
        r.makedirs(db.DB_REL)
        r.write_text(GENERATED.as_posix(), json.dumps(sorted({*listed, *paths}), indent=1) + "\n")


def read_generated(root: Path | Root) -> list[str]:
    """The paths listed in ``var/lib/vpk/generated.json`` (validated: relative paths inside the root)."""
    with db.opened(root) as r:
        return dbcheck.paths(*db.read_document(r, GENERATED_NAME, []))


def _mkdir(root: Root, rel: str, written: list[str]) -> None:
    """Create ``rel`` and its missing parents, recording the ones made."""
    written += root.makedirs(rel)


def _write(root: Root, rel: str, text: str, written: list[str], mode: int | None = None, default: int = 0o644) -> None:
    """Replace ``rel`` atomically; ``mode`` or else the replaced file's mode (``default`` for a new file)."""
    parent = rel.rpartition("/")[0]
    if parent:
        _mkdir(root, parent, written)
    if mode is None:
        st = root.lstat(rel)
        mode = stat.S_IMODE(st.st_mode) if st is not None and stat.S_ISREG(st.st_mode) else default
    root.write_text(rel, text, mode=mode)
    written.append(rel)


def _configure(root: Root, profile: Profile, arch: str, records: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Write the configuration; return every path written or created (root-relative)."""
    written: list[str] = []
    if profile.hostname is not None:
        _write(root, "etc/hostname", f"{_field(profile.hostname, 'hostname')}\n", written)
    written += apply_actions(root, records)   # the packages' [actions] first: the profile's users and files win
    add_users(root, [u.to_dict() for u in profile.users], written)
    # after the users (a service may run as one); written for the profile's init (composer.pkgmgr.initkinds)
    written += apply_services(root, records, profile.services, profile.init)
    if profile.files:
        copy_overlay(profile.path.parent / profile.files, root, written)
    _mkdir(root, f"{CONF_REL}/checks.d", written)
    _write(root, f"{CONF_REL}/modules.load", "".join(f"{m}\n" for m in module_order(records)), written)
    _write(root, f"{CONF_REL}/capabilities", "".join(f"{c}\n" for c in sorted(profile.capabilities)), written)
    _write(root, f"{CONF_REL}/capabilities.toml", capability_policy(records, profile.capabilities), written)
    for name, body in sorted(boot_checks(profile, arch).items()):
        _write(root, f"{CONF_REL}/checks.d/{root.check(name)}", body, written, 0o755)
    if profile.updates is not None:   # A/B image updates (docs/updates/ab-slots.md): read by init and vpk update
        config = canonical_json(profile.updates.device_config(profile.name, arch)).decode()
        _write(root, f"{CONF_REL}/update.json", config + "\n", written)
        _mkdir(root, f"{CONF_REL}/health.d", written)
        for name, body in sorted(profile.updates.checks.items()):
            _write(root, f"{CONF_REL}/health.d/{root.check(name)}",
                   body if body.startswith("#!") else f"#!/bin/sh\n{body}\n", written, 0o755)
    return written


def _line(value: str, where: str) -> str:
    """A profile value written as one line of a file: no newline or control character."""
    if not value.isprintable():
        raise UserError(f"profile: {where} {show(value)} contains a newline or a control character",
                        hint="the value is written as one line of a file in the image")
    return value


def _field(value: str, where: str) -> str:
    """A profile value that ends up in a line-based file: no ':', newline or control character."""
    if any(c in PASSWD_UNSAFE or not c.isprintable() for c in value):
        raise UserError(f"profile: {where} {show(value)} contains ':', a newline or a control character",
                        hint="these values are written into /etc/passwd, /etc/shadow or /etc/hostname lines")
    return value


def boot_checks(profile: Profile, arch: str) -> dict[str, str]:
    checks = {"11-arch": CHECK_ARCH.format(arch=arch), "12-drivers": CHECK_MODULES, "13-root-mounted": CHECK_ROOT}
    if "network" in profile.capabilities:
        checks["14-network"] = CHECK_NETWORK
    for test in profile.boot_tests:
        for name, body in sorted((test.checks or {}).items()):
            checks[f"50-{name}"] = body if body.startswith("#!") else f"#!/bin/sh\n{body}\n"
    return checks


def module_order(records: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The driver packages' modules, each package after the driver packages it depends on."""
    drivers = {n: r for n, r in records.items() if r["metadata"].get("driver", {}).get("modules")}
    done: list[str] = []

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in done or name in trail:
            return
        for dep in sorted(drivers[name]["metadata"].get("dependencies", {})):
            if dep in drivers:
                visit(dep, (*trail, name))
        done.append(name)

    for name in sorted(drivers):
        visit(name, ())
    return [m for n in done for m in drivers[n]["metadata"]["driver"]["modules"]]


def capability_policy(records: Mapping[str, Mapping[str, Any]], granted: Sequence[str]) -> str:
    doc: dict[str, Any] = {"granted": sorted(granted), "packages": {}}
    for name, r in sorted(records.items()):
        meta = r["metadata"]
        doc["packages"][name] = {
            "version": r["version"], "capabilities": sorted(r.get("capabilities", [])),
            "context": meta.get("security", {}).get("context", ""),
            "optional-denied": sorted(set(meta.get("capabilities", {}).get("optional", [])) - set(granted))}
    return "# generated by vcomp: capabilities granted to each installed package\n" + tomli_w.dumps(doc)


def add_users(root: Root, users: Sequence[Mapping[str, Any]], written: list[str]) -> None:
    if not users:
        return
    passwd, group, shadow = (_lines(root, f"etc/{f}") for f in ("passwd", "group", "shadow"))
    known_groups = {g.split(":")[0]: g for g in group}
    next_gid = 1000
    owned: list[str] = []   # tmpfiles lines: what init gives to the users at boot (image files are 0:0)
    for i, u in enumerate(users):
        name, uid = _field(str(u["name"]), f"users[{i}].name"), int(u.get("uid", 1000))
        home = _field(str(u.get("home", f"/home/{name}")), f"users[{i}].home")
        shell = _field(str(u.get("shell", "/bin/sh")), f"users[{i}].shell")
        gecos = _field(str(u.get("gecos", "")), f"users[{i}].gecos")
        line = f"{name}:x:{uid}:{uid}:{gecos}:{home}:{shell}"
        if line in passwd:
            continue  # configured already (a root reconciled again)
        if any(existing.split(":")[0] == name for existing in passwd):
            raise UserError(f"user '{name}' already exists in the image", hint="choose another user name")
        passwd.append(line)
        # the date of the last change left empty: 0 would mean "must change the password now" (pam_unix and sshd
        # refuse a key login then)
        shadow.append(f"{name}:{_field(str(u.get('password-hash', '!')), f'users[{i}].password-hash')}:::::::")
        known_groups[name] = f"{name}:x:{uid}:"
        for g in u.get("groups", []):
            g = _field(str(g), f"users[{i}].groups")
            if g not in known_groups:
                while any(line.split(":")[2] == str(next_gid) for line in known_groups.values()):
                    next_gid += 1
                known_groups[g] = f"{g}:x:{next_gid}:"
            head, _, members = known_groups[g].rpartition(":")
            known_groups[g] = f"{head}:{','.join(filter(None, [*members.split(','), name]))}"
        home_rel = _home(root, home, f"users[{i}].home")
        _mkdir(root, home_rel, written)
        if os.geteuid() == 0:
            root.chown(home_rel, uid, uid)
        keys = [_line(str(k), f"users[{i}].ssh-keys[{j}]") for j, k in enumerate(u.get("ssh-keys", []))]
        if keys:
            owned += _authorized_keys(root, home_rel, uid, keys, written)
    _write(root, "etc/passwd", "".join(f"{line}\n" for line in passwd), written)
    _write(root, "etc/group", "".join(f"{line}\n" for line in known_groups.values()), written)
    _write(root, "etc/shadow", "".join(f"{line}\n" for line in shadow), written, default=0o640)
    if owned:
        before = root.read_text(TMPFILES) if root.is_file(TMPFILES) else TMPFILES_HEADER
        _write(root, TMPFILES, before + "".join(f"{line}\n" for line in owned if line not in before), written)


def _authorized_keys(root: Root, home_rel: str, uid: int, keys: Sequence[str], written: list[str]) -> list[str]:
    """``~/.ssh/authorized_keys`` (0600 in a 0700 ``.ssh``); returns the tmpfiles lines that make the home,
    ``.ssh`` and the file the user's at boot (sshd refuses keys others could have written)."""
    _mkdir(root, f"{home_rel}/.ssh", written)
    root.chmod(f"{home_rel}/.ssh", 0o700)
    _write(root, f"{home_rel}/.ssh/authorized_keys", "".join(f"{k}\n" for k in keys), written, mode=0o600)
    st = root.lstat(home_rel)
    home_mode = stat.S_IMODE(st.st_mode) if st is not None else 0o755
    return [f"z {mode:04o} {uid} {uid} /{rel}" for mode, rel in (
        (home_mode, home_rel), (0o700, f"{home_rel}/.ssh"), (0o600, f"{home_rel}/.ssh/authorized_keys"))]


def _home(root: Root, home: str, where: str) -> str:
    """The root-relative directory of an absolute, normalised home (``/home/../../x`` never leaves the root)."""
    rel = home[1:] if home.startswith("/") else ""
    if path_problem(rel):
        raise UserError(f"profile: {where} {show(home)} is not an absolute, normalised path inside the image "
                        f"({'it is relative' if not home.startswith('/') else path_problem(rel)})",
                        hint="give an absolute path such as /home/NAME, without '..' or '//'")
    return root.check(rel)


def _lines(root: Root, rel: str) -> list[str]:
    if not root.is_file(rel):
        return []
    return [line for line in root.read_text(rel).splitlines() if line.strip()]


def copy_overlay(src: Path, root: Root, written: list[str]) -> None:
    """Copy the overlay directory over the root: the source is walked without following any symlink (symlinks
    are copied as symlinks), and every write goes through the root's confined layer."""
    if not src.is_dir() or src.is_symlink():
        raise UserError(f"overlay directory {src} does not exist (or is a symlink)", hint="fix 'files:' in the profile")
    with Root.open(src) as source:
        _copy_tree(source, "", root, written)


def _copy_tree(source: Root, rel: str, root: Root, written: list[str]) -> None:
    if rel:
        _mkdir(root, rel, written)
    for name in source.listdir(rel):
        path = f"{rel}/{name}" if rel else name
        st = source.lstat(path)
        assert st is not None
        if stat.S_ISDIR(st.st_mode):
            _copy_tree(source, path, root, written)
            continue
        current = root.lstat(path)
        if current is not None and stat.S_ISDIR(current.st_mode):
            raise UserError(f"overlay {source.where(path)}: /{path} is a directory in the image",
                            hint="the overlay cannot replace a directory by a file")
        if stat.S_ISLNK(st.st_mode):
            if current is not None:
                root.unlink(path)
            root.symlink(source.readlink(path), path)
        elif stat.S_ISREG(st.st_mode):
            root.write_bytes(path, source.read_bytes(path), mode=stat.S_IMODE(st.st_mode))
            root.utime(path, (st.st_atime_ns, st.st_mtime_ns))
        else:
            raise UserError(f"overlay {source.where(path)} is not a file, directory or symlink",
                            hint="an overlay holds regular files, directories and symlinks only")
        written.append(path)
