"""The installed packages' ``[actions]`` applied to a root at image build, through the confined layer.

Nothing runs: no maintainer script, no host tool, never the host's ``/etc/passwd``. In order:

1. users and groups: ``/etc/passwd``, ``/etc/group``, ``/etc/shadow`` rewritten from the root's own files (or,
   when there is no ``/etc/passwd``, Debian base-passwd's masters) and the union of the declarations
   (``composer.package.accounts``);
2. tmpfiles: directories, files and links made with their mode, the modes of existing paths set (``z``);
   owners are applied by init (image files are owned by 0:0), and entries below /run, /tmp and the pseudo
   file systems only exist at run time: every entry, with numeric owners, goes to ``/etc/veridian/tmpfiles``
   for init to apply at every boot;
3. alternatives: ``LINK -> /etc/alternatives/NAME -> PATH`` for the winner of each name;
4. generated files (the CA bundle);
5. first-boot actions (machine-id, ssh host keys, ldconfig): executables in ``/etc/veridian/firstboot.d/`` that
   init runs at every boot, each doing nothing once its result exists.

Services are written by :func:`apply_services`, after the profile's users (a service may run as one):
``/etc/veridian/services.toml`` and init's ``services.d/`` (``composer.pkgmgr.services``).

Every path written is returned so ``configure`` lists it in ``var/lib/vpk/generated.json``. Applying twice
changes nothing.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import tomli_w

from composer import limits
from composer.errors import UserError
from composer.package import actionplan
from composer.package.accounts import Accounts, ActionConflict, from_masters, merge_masters, plan_accounts
from composer.package.actions import Actions, TmpFile
from composer.pkgmgr import services
from composer.profile.model import ServiceOverride
from composer.rootfs import Root

CONF = "etc/veridian"
TMPFILES = f"{CONF}/tmpfiles"
SERVICES = f"{CONF}/services.toml"
FIRSTBOOT_DIR = f"{CONF}/firstboot.d"
ALTERNATIVES_DIR = "etc/alternatives"
BASE_PASSWD = "usr/share/base-passwd"      # Debian's base-passwd: the masters of /etc/passwd and /etc/group
MAX_ACCOUNT_FILE = 4 << 20        # /etc/passwd, group, shadow as shipped by a package
MAX_CERTIFICATES = 4096
MAX_COPY = 4 << 20                # a file a tmpfiles 'C' entry copies
MAX_CERTIFICATE_BYTES = 1 << 20


def declared_actions(records: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, Actions]]:
    """(package, actions) of every installed package with actions, by name (records were validated at install)."""
    out = []
    for name, record in sorted(records.items()):
        actions = Actions.from_dict(record.get("metadata", {}).get("actions", {}))
        if actions:
            out.append((name, actions))
    return out


def changed_actions(changes: Sequence[tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None]]) -> list[str]:
    """The packages whose actions a root transaction would add, change or remove: ``(name, old record, new
    record)`` per change (None: not installed before / removed). The package manager on a root does not
    apply actions yet (users, tmpfiles, alternatives... are an image build's), so it refuses those; an
    upgrade that keeps the actions identical is fine."""
    def of(record: Mapping[str, Any] | None) -> Actions:
        a = Actions.from_dict(record.get("metadata", {}).get("actions", {})) if record else Actions()
        return replace(a, untranslated=())

    return sorted(name for name, old, new in changes if of(old) != of(new))


def apply_actions(root: Root, records: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Apply every installed package's actions to ``root``; return the root-relative paths written or made."""
    declared = declared_actions(records)
    if not declared:
        return []
    written: list[str] = []
    accounts = _write_accounts(root, declared, written)
    tmpfiles = actionplan.merge_tmpfiles(declared)
    _apply_tmpfiles(root, tmpfiles, accounts, written)
    _apply_alternatives(root, declared, written)
    _generate(root, declared, written)
    for name in actionplan.firstboot_actions(declared):
        _write(root, f"{FIRSTBOOT_DIR}/{name}", actionplan.FIRSTBOOT[name].encode(), written, 0o755)
    return written


def apply_services(root: Root, records: Mapping[str, Mapping[str, Any]],
                   overrides: Sequence[ServiceOverride] = ()) -> list[str]:
    """Write the effective services (the packages' with the profile's ``services:`` applied) for init; return the
    paths written. Users and groups are read from the root's ``/etc/passwd`` and ``/etc/group``."""
    declared = actionplan.merge_services(declared_actions(records))
    chosen = services.effective(declared, overrides)
    written: list[str] = []
    if not chosen:
        return written
    order = services.start_order(chosen)
    users = {f[0]: (int(f[2]), int(f[3])) for f in _fields(root, "etc/passwd", 4) if f[2].isdigit() and f[3].isdigit()}
    groups = {f[0]: int(f[2]) for f in _fields(root, "etc/group", 3) if f[2].isdigit()}
    doc = services.document(chosen, order, users.get, groups.get)
    _write(root, SERVICES, ("# generated by vcomp: the image's services (the packages' with the profile's "
                            "services applied), start-order first\n" + tomli_w.dumps(doc)).encode(), written)
    if root.is_dir(services.INIT_DIR):
        for name in root.listdir(services.INIT_DIR):
            root.unlink(f"{services.INIT_DIR}/{name}")
    for rel, text in services.init_files(chosen, order, users.get, groups.get).items():
        _write(root, rel, text.encode(), written)
    return written


def _fields(root: Root, rel: str, count: int) -> list[list[str]]:
    return [f for f in (line.split(":") for line in _lines(root, rel)) if len(f) >= count]


def _mkdirs(root: Root, rel: str, written: list[str]) -> None:
    written += root.makedirs(rel)


def _write(root: Root, rel: str, data: bytes, written: list[str], mode: int = 0o644) -> None:
    parent = rel.rpartition("/")[0]
    if parent:
        _mkdirs(root, parent, written)
    st = root.lstat(rel)
    same = st is not None and stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == mode
    if same and root.read_bytes(rel) == data:
        written.append(rel)
        return
    root.write_bytes(rel, data, mode=mode)
    written.append(rel)


def _lines(root: Root, rel: str) -> list[str]:
    if not root.is_file(rel):
        return []
    return [line for line in root.read_bytes(rel, MAX_ACCOUNT_FILE).decode().splitlines() if line.strip()]


def _write_accounts(root: Root, declared: actionplan.Declared, written: list[str]) -> Accounts:
    files = {name: _lines(root, f"etc/{name}") for name in ("passwd", "group", "shadow")}
    seeded = root.is_file(f"{BASE_PASSWD}/passwd.master")
    if seeded:   # Debian's base-passwd: its masters (its postinst's update-passwd is not run)
        masters = from_masters(_lines(root, f"{BASE_PASSWD}/passwd.master"),
                               _lines(root, f"{BASE_PASSWD}/group.master"))
        current = (files["passwd"], files["group"], files["shadow"])
        files["passwd"], files["group"], files["shadow"] = (merge_masters(current, masters) if files["passwd"]
                                                            else masters)
    accounts = plan_accounts(passwd=files["passwd"], group=files["group"], shadow=files["shadow"], declared=declared)
    if not seeded and not any(a.users or a.groups or a.members for _p, a in declared):
        return accounts
    for name, lines, mode in (("passwd", accounts.passwd, 0o644), ("group", accounts.group, 0o644),
                              ("shadow", accounts.shadow, 0o640)):
        _write(root, f"etc/{name}", "".join(f"{line}\n" for line in lines).encode(), written, mode)
    return accounts


def _owner(package: str, t: TmpFile, accounts: Accounts) -> tuple[int, int]:
    uid, gid = accounts.uid(t.user), accounts.gid(t.group)
    if uid is None or gid is None:
        missing = f"user '{t.user}'" if uid is None else f"group '{t.group}'"
        raise ActionConflict(f"package '{package}': tmpfiles '{t.type} {t.path}' is owned by {missing}, which the "
                             "image does not have", hint="declare it in [[actions.users]] or [[actions.groups]]")
    return uid, gid


def _apply_tmpfiles(root: Root, entries: list[tuple[str, TmpFile]], accounts: Accounts, written: list[str]) -> None:
    lines = []
    for package, t in entries:
        uid, gid = _owner(package, t, accounts)
        mode = "-" if t.type == "L" else f"{t.effective_mode:04o}"
        kind, argument = ("z", "") if t.type == "C" else (t.type, t.argument)   # C: made here; init sets owner, mode
        lines.append(" ".join([kind, mode, str(uid), str(gid), t.path, *([argument] if argument else [])])
                     .replace("\n", " ").rstrip())
        if not actionplan.is_runtime(t.rel):
            _make(root, package, t, written)
    if lines:
        _write(root, TMPFILES, ("# generated by vcomp: TYPE MODE UID GID PATH [ARGUMENT], applied by init at boot\n"
                                + "".join(f"{line}\n" for line in lines)).encode(), written)


def _make(root: Root, package: str, t: TmpFile, written: list[str]) -> None:
    st = root.lstat(t.rel)
    if t.type == "d":
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise UserError(f"package '{package}': tmpfiles 'd {t.path}': a file stands there in the image",
                            hint="the packages disagree about that path: fix one of them")
        _mkdirs(root, t.rel, written)
        if st is None or stat.S_IMODE(st.st_mode) != t.effective_mode:
            root.chmod(t.rel, t.effective_mode)
            written.append(t.rel)
    elif t.type == "z" and st is not None and not stat.S_ISLNK(st.st_mode):
        if stat.S_IMODE(st.st_mode) != t.effective_mode:
            root.chmod(t.rel, t.effective_mode)
        written.append(t.rel)
    elif t.type == "f" and st is None:
        _write(root, t.rel, t.argument.encode(), written, t.effective_mode)
    elif t.type == "C" and st is None:
        if not root.is_file(t.argument.lstrip("/")):
            raise UserError(f"package '{package}': tmpfiles 'C {t.path}': its source {t.argument} is not a file "
                            "in the image", hint="the package must ship the file it copies: fix its actions")
        _write(root, t.rel, root.read_bytes(t.argument.lstrip("/"), MAX_COPY), written, t.effective_mode)
    elif t.type == "L" and st is None:
        parent = t.rel.rpartition("/")[0]
        if parent:
            _mkdirs(root, parent, written)
        root.symlink(t.argument, t.rel)
        written.append(t.rel)


def _apply_alternatives(root: Root, declared: actionplan.Declared, written: list[str]) -> None:
    for chosen in actionplan.choose_alternatives(declared, root.exists):
        via = f"/{ALTERNATIVES_DIR}/{chosen.name}"
        _link(root, via.lstrip("/"), chosen.path, chosen.package, written)
        _link(root, chosen.link.lstrip("/"), via, chosen.package, written)


def _link(root: Root, rel: str, target: str, package: str, written: list[str]) -> None:
    st = root.lstat(rel)
    if st is not None and not stat.S_ISLNK(st.st_mode):
        raise UserError(f"package '{package}': alternative link '/{rel}' is a file or directory shipped in the "
                        "image", hint="a package must not ship the link of an alternative; remove it from that package")
    if st is not None:
        if root.readlink(rel) == target:
            written.append(rel)
            return
        root.unlink(rel)
    parent = rel.rpartition("/")[0]
    if parent:
        _mkdirs(root, parent, written)
    root.symlink(target, rel)
    written.append(rel)


def _generate(root: Root, declared: actionplan.Declared, written: list[str]) -> None:
    for name in actionplan.generators(declared):
        for gen in actionplan.GENERATORS[name]:
            config = (root.read_bytes(gen.config, MAX_CERTIFICATE_BYTES).decode(errors="replace")
                      if root.is_file(gen.config) else None)
            _write(root, gen.output, gen.make(config, _files_below(root, gen.reads)), written)


def _files_below(root: Root, top: str) -> dict[str, bytes]:
    """Regular files below ``top`` (paths relative to it), never through a symlinked directory; bounded."""
    out: dict[str, bytes] = {}
    todo = [""] if root.is_dir(top) else []
    while todo:
        rel = todo.pop()
        for name in root.listdir(f"{top}/{rel}".rstrip("/")):
            path = f"{rel}/{name}" if rel else name
            st = root.lstat(f"{top}/{path}")
            if st is not None and stat.S_ISDIR(st.st_mode):
                todo.append(path)
            elif st is not None and stat.S_ISREG(st.st_mode):
                if len(out) >= MAX_CERTIFICATES:
                    raise limits.LimitExceeded(f"{root.where(top)}: more than {MAX_CERTIFICATES} files",
                                               hint="the tree is hostile or corrupt")
                out[path] = root.read_bytes(f"{top}/{path}", MAX_CERTIFICATE_BYTES)
    return out
