"""What the profile adds to an installed root: hostname, users, overlay files, init's configuration.

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
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from composer.errors import UserError
from composer.profile.validate import Profile

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


def configure(root: Path, profile: Profile, arch: str, records: Mapping[str, Mapping[str, Any]]) -> None:
    """Write the profile's configuration into ``root`` (the packages are installed already), and list
    what it wrote in ``var/lib/vpk/generated.json``."""
    written = _configure(root, profile, arch, records)
    listed = json.loads((root / GENERATED).read_text()) if (root / GENERATED).is_file() else []
    paths = {p.relative_to(root).as_posix() for p in written} | {"var/lib", "var/lib/vpk"}
    (root / GENERATED).parent.mkdir(parents=True, exist_ok=True)
    (root / GENERATED).write_text(json.dumps(sorted({*listed, *paths}), indent=1) + "\n")


def _mkdir(path: Path, written: list[Path]) -> None:
    """Create ``path`` and its missing parents, recording the ones made."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    written += missing


def _write(path: Path, text: str, written: list[Path], mode: int | None = None) -> None:
    _mkdir(path.parent, written)
    path.write_text(text)
    if mode is not None:
        path.chmod(mode)
    written.append(path)


def _configure(root: Path, profile: Profile, arch: str, records: Mapping[str, Mapping[str, Any]]) -> list[Path]:
    """Write the configuration; return every path written or created."""
    raw = profile.raw
    written: list[Path] = []
    if "hostname" in raw:
        _write(root / "etc" / "hostname", f"{raw['hostname']}\n", written)
    add_users(root, raw.get("users", []), written)
    if raw.get("files"):
        copy_overlay(profile.path.parent / raw["files"], root, written)
    conf = root / CONF
    _mkdir(conf / "checks.d", written)
    _write(conf / "modules.load", "".join(f"{m}\n" for m in module_order(records)), written)
    _write(conf / "capabilities", "".join(f"{c}\n" for c in sorted(profile.capabilities)), written)
    _write(conf / "capabilities.toml", capability_policy(records, profile.capabilities), written)
    for name, body in sorted(boot_checks(profile, arch).items()):
        _write(conf / "checks.d" / name, body, written, 0o755)
    return written


def boot_checks(profile: Profile, arch: str) -> dict[str, str]:
    checks = {"11-arch": CHECK_ARCH.format(arch=arch), "12-drivers": CHECK_MODULES, "13-root-mounted": CHECK_ROOT}
    if "network" in profile.capabilities:
        checks["14-network"] = CHECK_NETWORK
    for test in profile.raw.get("boot-tests", []):
        for name, body in sorted(test.get("checks", {}).items()):
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


def add_users(root: Path, users: Sequence[Mapping[str, Any]], written: list[Path]) -> None:
    if not users:
        return
    etc = root / "etc"
    passwd, group, shadow = (_lines(etc / f) for f in ("passwd", "group", "shadow"))
    known_groups = {g.split(":")[0]: g for g in group}
    next_gid = 1000
    for u in users:
        name, uid = u["name"], int(u.get("uid", 1000))
        home, shell = u.get("home", f"/home/{name}"), u.get("shell", "/bin/sh")
        line = f"{name}:x:{uid}:{uid}:{u.get('gecos', '')}:{home}:{shell}"
        if line in passwd:
            continue  # configured already (a root reconciled again)
        if any(existing.split(":")[0] == name for existing in passwd):
            raise UserError(f"user '{name}' already exists in the image", hint="choose another user name")
        passwd.append(line)
        shadow.append(f"{name}:{u.get('password-hash', '!')}:0::::::")
        known_groups[name] = f"{name}:x:{uid}:"
        for g in u.get("groups", []):
            if g not in known_groups:
                while any(line.split(":")[2] == str(next_gid) for line in known_groups.values()):
                    next_gid += 1
                known_groups[g] = f"{g}:x:{next_gid}:"
            head, _, members = known_groups[g].rpartition(":")
            known_groups[g] = f"{head}:{','.join(filter(None, [*members.split(','), name]))}"
        home_dir = root / home.lstrip("/")
        _mkdir(home_dir, written)
        if os.geteuid() == 0:
            os.chown(home_dir, uid, uid)
        keys = u.get("ssh-keys", [])
        if keys:
            _write(home_dir / ".ssh" / "authorized_keys", "".join(f"{k}\n" for k in keys), written)
    _write(etc / "passwd", "".join(f"{line}\n" for line in passwd), written)
    _write(etc / "group", "".join(f"{line}\n" for line in known_groups.values()), written)
    _write(etc / "shadow", "".join(f"{line}\n" for line in shadow), written)


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def copy_overlay(src: Path, root: Path, written: list[Path]) -> None:
    """Copy the overlay directory over the root (symlinks kept as links; nothing outside the root)."""
    if not src.is_dir():
        raise UserError(f"overlay directory {src} does not exist", hint="fix 'files:' in the profile")
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel = Path(dirpath).relative_to(src)
        if not Path(os.path.realpath(root / rel)).is_relative_to(real_root):
            raise UserError(f"overlay {src / rel}: /{rel} in the image is a symlink that leads outside the root",
                            hint="the overlay cannot write through it; put the files at the link's target")
        _mkdir(root / rel, written)
        for f in sorted(filenames):
            s, d = Path(dirpath) / f, root / rel / f
            if d.is_symlink() or d.exists():
                d.unlink()
            if s.is_symlink():
                d.symlink_to(os.readlink(s))
            else:
                shutil.copy2(s, d)
            written.append(d)
