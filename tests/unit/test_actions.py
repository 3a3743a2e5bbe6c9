"""Declarative package actions: the model (parsing, errors naming package and field, limits), the pure plans
(accounts, alternatives, tmpfiles, services, CA bundle) and their application to a root."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from composer.errors import InvalidPackage
from composer.package import actionplan
from composer.package.accounts import SYSTEM_IDS, ActionConflict, plan_accounts
from composer.package.actions import KINDS, Actions, User
from composer.package.metadata import SCHEMA, parse_metadata
from composer.pkgmgr.actions import FIRSTBOOT_DIR, SERVICES, TMPFILES, apply_actions, apply_services
from composer.rootfs import Root, UnsafePath
from tests.conftest import REPO

HEAD = """[package]
name = "{name}"
version = "1.0.0"
description = "a package with actions"
license = "MIT"
type = "application"
arch = "noarch"

[security]
context = "x_t"
"""

SSH = """
[actions]
ldconfig = true
firstboot = ["ssh-host-keys", "machine-id"]

[[actions.users]]
name = "sshd"
home = "/run/sshd"
gecos = "SSH privilege separation"

[[actions.groups]]
name = "_ssh"

[[actions.tmpfiles]]
type = "d"
path = "/run/sshd"
mode = "0755"

[[actions.tmpfiles]]
type = "d"
path = "/var/lib/sshd"
mode = "0700"
user = "sshd"
group = "sshd"

[[actions.alternatives]]
name = "ssh"
link = "/usr/bin/ssh"
path = "/usr/bin/ssh.openssh"
priority = 10

[[actions.services]]
name = "ssh"
command = ["/usr/sbin/sshd", "-D"]
readiness = "tcp:22"
capabilities = ["net_bind_service"]
environment = {SSHD_OPTS = ""}
"""


def meta(body: str, name: str = "ssh") -> bytes:
    return (HEAD.format(name=name) + body).encode()


def actions_of(body: str, name: str = "ssh") -> Actions:
    return parse_metadata(meta(body, name), origin=f"{name}.toml").actions


# ---------------------------------------------------------------- the model


def test_actions_read_write_and_read_again_identically() -> None:
    m = parse_metadata(meta(SSH), origin="ssh.toml")
    assert [u.name for u in m.actions.users] == ["sshd"] and m.actions.ldconfig
    assert m.actions.services[0].command == ("/usr/sbin/sshd", "-D")
    again = parse_metadata(m.to_toml(), origin="again")
    assert again.actions == m.actions and again.to_toml() == m.to_toml()
    assert b"actions" in m.signed_bytes()


def test_a_package_without_actions_reads_and_writes_as_before() -> None:
    m = parse_metadata(meta(""), origin="plain.toml")
    assert not m.actions and "actions" not in m.to_dict()


def test_every_kind_is_in_the_schema_and_every_schema_key_is_a_kind() -> None:
    schema = json.loads((REPO / "schemas" / SCHEMA).read_text())
    assert set(schema["properties"]["actions"]["properties"]) == set(KINDS)
    props = schema["properties"]["actions"]["properties"]
    assert set(props["generate"]["items"]["enum"]) == set(actionplan.GENERATORS)
    assert set(props["firstboot"]["items"]["enum"]) | {"ldconfig"} == set(actionplan.FIRSTBOOT)


@pytest.mark.parametrize(("body", "expected"), [
    ('[[actions.tmpfiles]]\ntype = "d"\npath = "/var/../../etc"\n',
     r"ssh.toml:\d+:\d+: \$.actions.tmpfiles\[0\].path: package 'ssh': '/var/../../etc' has a '..' component"),
    ('[[actions.tmpfiles]]\ntype = "d"\npath = "var/x"\n',
     r"\$.actions.tmpfiles\[0\].path: package 'ssh': 'var/x' is not valid"),
    ('[[actions.tmpfiles]]\ntype = "f"\npath = "/var/lib/vpk/db.json"\n',
     r"tmpfiles\[0\].path: package 'ssh': '/var/lib/vpk/db.json' is at or below /var/lib/vpk"),
    ('[[actions.tmpfiles]]\ntype = "L"\npath = "/etc/x"\n', r"tmpfiles\[0\].argument: .*needs the link target"),
    ('[[actions.tmpfiles]]\ntype = "d"\npath = "/srv/x"\nmode = "0777"\n', r"world-writable"),
    ('[[actions.tmpfiles]]\ntype = "d"\npath = "/srv/a b"\n', r"white space"),
    ('[[actions.users]]\nname = "Root!"\n', r"\$.actions.users\[0\].name"),
    ('[[actions.users]]\nname = "a"\nuid = 70000\n', r"\$.actions.users\[0\].uid"),
    ('[[actions.users]]\nname = "a"\ngecos = "x:y"\n', r"\$.actions.users\[0\].gecos"),
    ('[[actions.users]]\nname = "a"\n[[actions.users]]\nname = "a"\n',
     r"users\[1\]: package 'ssh': user 'a' is declared twice \(also users\[0\]\)"),
    ('[[actions.users]]\nname = "root"\nuid = 5\n', r"user 'root' must have uid 0"),
    ('[[actions.services]]\nname = "s"\ncommand = ["sshd"]\n', r"services\[0\].command\[0\]: package 'ssh': 'sshd' is"),
    ('[[actions.services]]\nname = "s"\ncommand = ["/s"]\nreadiness = "tcp:70000"\n', r"the port must be"),
    ('[[actions.services]]\nname = "s"\ncommand = ["/s"]\nafter = ["s"]\n', r"cannot come after itself"),
    ('[actions]\nfirstboot = ["rm -rf /"]\n', r"\$.actions.firstboot\[0\]"),
    ('[actions]\nscripts = ["postinst"]\n', r"\$.actions: package 'ssh': unknown field 'scripts'"),
    ('[[actions.alternatives]]\nname = "x"\nlink = "/usr/bin/x"\npath = "/usr/bin/x"\n', r"is the link itself"),
])
def test_an_invalid_action_is_one_line_naming_the_package_and_field(body: str, expected: str) -> None:
    with pytest.raises(InvalidPackage, match=expected):
        actions_of(body)


def test_huge_counts_are_refused_by_the_schema() -> None:
    body = "".join(f'[[actions.users]]\nname = "u{i}"\n' for i in range(257))
    with pytest.raises(InvalidPackage, match=r"\$.actions.users: .*too long|is too long|expected at most"):
        actions_of(body)


def test_every_error_is_reported_at_once() -> None:
    body = ('[[actions.tmpfiles]]\ntype = "d"\npath = "/a/../b"\n'
            '[[actions.alternatives]]\nname = "x"\nlink = "/x/./y"\npath = "/z"\n')
    with pytest.raises(InvalidPackage, match="2 errors") as exc:
        actions_of(body)
    assert "tmpfiles[0].path" in exc.value.message and "alternatives[0].link" in exc.value.message


# ---------------------------------------------------------------- accounts

PASSWD = ["root:x:0:0:root:/root:/bin/sh", "nobody:x:65534:65534:nobody:/nonexistent:/bin/false"]
GROUP = ["root:x:0:", "tty:x:5:", "nogroup:x:65534:"]
SHADOW = ["root:*::0:99999:7:::", "nobody:*::0:99999:7:::"]


def plan(*declared: tuple[str, Actions]) -> Any:
    return plan_accounts(passwd=PASSWD, group=GROUP, shadow=SHADOW, declared=list(declared))


def test_users_get_deterministic_ids_from_the_system_range_and_a_group_of_their_name() -> None:
    a = plan(("ssh", actions_of(SSH)))
    uid = a.uids["sshd"]
    assert uid in SYSTEM_IDS and a.gids["sshd"] == uid
    assert f"sshd:x:{uid}:{uid}:SSH privilege separation:/run/sshd:/usr/sbin/nologin" in a.passwd
    assert "sshd:!*:::::::" in a.shadow and a.passwd[:2] == tuple(PASSWD)
    assert a == plan(("ssh", actions_of(SSH))), "same declarations, same ids"


def test_adding_another_package_does_not_move_existing_ids() -> None:
    alone = plan(("ssh", actions_of(SSH)))
    other = actions_of('[[actions.users]]\nname = "www-data"\n', "web")
    both = plan(("ssh", actions_of(SSH)), ("web", other))
    assert both.uids["sshd"] == alone.uids["sshd"]


def test_fixed_ids_memberships_and_an_existing_user_are_kept() -> None:
    body = ('[[actions.users]]\nname = "nobody"\n[[actions.users]]\nname = "app"\nuid = 901\ngroup = "tty"\n'
            '[[actions.members]]\nuser = "app"\ngroup = "staff"\n')
    a = plan(("app", actions_of(body, "app")))
    assert "app:x:901:5::/nonexistent:/usr/sbin/nologin" in a.passwd
    assert "tty:x:5:app" in a.group and any(g.startswith("staff:x:") and g.endswith(":app") for g in a.group)
    assert sum(line.startswith("nobody:") for line in a.passwd) == 1


def test_the_same_user_declared_identically_by_two_packages_is_one_user() -> None:
    body = '[[actions.users]]\nname = "messagebus"\n'
    a = plan(("a", actions_of(body, "a")), ("b", actions_of(body, "b")))
    assert sum(line.startswith("messagebus:") for line in a.passwd) == 1


@pytest.mark.parametrize(("a", "b", "expected"), [
    ('[[actions.users]]\nname = "x"\nuid = 900\n', '[[actions.users]]\nname = "x"\nuid = 901\n',
     "user 'x' is declared differently by packages 'a'"),
    ('[[actions.users]]\nname = "x"\nuid = 900\n', '[[actions.users]]\nname = "y"\nuid = 900\n',
     "user id 900 is claimed by 'y' \\(package 'b'\\) and by 'x' \\(package 'a'\\)"),
    ('[[actions.users]]\nname = "x"\nuid = 0\n', '[[actions.groups]]\nname = "g"\n',
     "user id 0 is claimed by 'x' \\(package 'a'\\) and by 'root' \\(the image's files\\)"),
    ('[[actions.users]]\nname = "nobody"\nuid = 900\n', '[[actions.groups]]\nname = "g"\n',
     "declares user 'nobody' with id 900, but the image already has 'nobody' with id 65534"),
    ('[[actions.groups]]\nname = "g"\ngid = 5\n', '[[actions.groups]]\nname = "h"\n', "group id 5 is claimed"),
    ('[[actions.members]]\nuser = "ghost"\ngroup = "tty"\n', '[[actions.groups]]\nname = "h"\n',
     "makes 'ghost' a member of 'tty'"),
])
def test_conflicting_accounts_name_both_packages(a: str, b: str, expected: str) -> None:
    with pytest.raises(ActionConflict, match=expected):
        plan(("a", actions_of(a, "a")), ("b", actions_of(b, "b")))


def test_the_system_range_running_out_is_a_clear_error() -> None:
    users = tuple(User(name=f"u{i}") for i in range(len(SYSTEM_IDS) + 1))
    with pytest.raises(ActionConflict, match="no free group id left in 100-999"):
        plan(("many", Actions(users=users)))


# ---------------------------------------------------------------- the other plans


def test_the_highest_priority_alternative_wins_with_a_deterministic_tie_break() -> None:
    def alt(path: str, prio: int) -> Actions:
        return actions_of(f'[[actions.alternatives]]\nname = "editor"\nlink = "/usr/bin/editor"\n'
                          f'path = "{path}"\npriority = {prio}\n', "p")
    declared = [("nano", alt("/bin/nano", 40)), ("vim", alt("/usr/bin/vim", 40)), ("ed", alt("/bin/ed", -100))]
    chosen = actionplan.choose_alternatives(declared, lambda rel: True)
    assert [(c.path, c.package) for c in chosen] == [("/bin/nano", "nano")]
    chosen = actionplan.choose_alternatives(list(reversed(declared)), lambda rel: rel != "bin/nano")
    assert [(c.path, c.package) for c in chosen] == [("/usr/bin/vim", "vim")]
    clash = actions_of('[[actions.alternatives]]\nname = "editor"\nlink = "/usr/bin/ed2"\npath = "/x"\n', "q")
    with pytest.raises(ActionConflict, match="alternative 'editor' has link '/usr/bin/editor' in package 'nano'"):
        actionplan.choose_alternatives([*declared, ("q", clash)], lambda rel: True)


def test_tmpfiles_and_services_conflicts_name_both_packages() -> None:
    a = actions_of('[[actions.tmpfiles]]\ntype = "d"\npath = "/var/x"\nmode = "0700"\n', "a")
    b = actions_of('[[actions.tmpfiles]]\ntype = "d"\npath = "/var/x"\nmode = "0755"\n', "b")
    with pytest.raises(ActionConflict, match="'/var/x' is declared differently by packages 'a' .* and 'b'"):
        actionplan.merge_tmpfiles([("a", a), ("b", b)])
    assert len(actionplan.merge_tmpfiles([("a", a), ("c", a)])) == 1
    s = actions_of('[[actions.services]]\nname = "web"\ncommand = ["/x"]\n', "a")
    with pytest.raises(ActionConflict, match="service 'web' is declared by packages 'a' and 'b'"):
        actionplan.merge_services([("a", s), ("b", s)])
    late = actions_of('[[actions.services]]\nname = "app"\ncommand = ["/x"]\nafter = ["db"]\n', "a")
    assert list(actionplan.merge_services([("a", late)])) == ["app"], "after only orders, as systemd's After="


def test_the_ca_bundle_follows_the_configuration_in_path_order() -> None:
    certs = {"mozilla/B.crt": b"B\n", "mozilla/A.crt": b"A", "local/C.crt": b"C\n", "README": b"no"}
    assert actionplan.ca_bundle(None, certs) == b"C\nA\nB\n"
    conf = "# comment\nmozilla/B.crt\n!mozilla/A.crt\nmozilla/missing.crt\n"
    assert actionplan.ca_bundle(conf, certs) == b"B\n"


# ---------------------------------------------------------------- application to a root


def record(name: str, body: str) -> dict[str, Any]:
    return {"metadata": parse_metadata(meta(body, name), origin=name).to_dict()}


def base_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name, lines in (("passwd", PASSWD), ("group", GROUP), ("shadow", SHADOW)):
        (root / "etc" / name).write_text("".join(f"{line}\n" for line in lines))
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "ssh.openssh").write_text("#!/bin/sh\n")
    (root / "usr" / "share" / "ca-certificates" / "m").mkdir(parents=True)
    (root / "usr" / "share" / "ca-certificates" / "m" / "a.crt").write_text("A\n")
    return root


def snapshot(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in sorted(dirnames + filenames):
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            st = p.lstat()
            out[rel] = (oct(st.st_mode), os.readlink(p) if p.is_symlink() else
                        (p.read_bytes() if p.is_file() else None))
    return out


def test_actions_are_applied_to_a_root_deterministically_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    root = base_root(tmp_path)
    records = {"ssh": record("ssh", SSH),
               "ca": record("ca", '[actions]\ngenerate = ["ca-certificates"]\n')}
    with Root.open(root) as r:
        written = apply_actions(r, records) + apply_services(r, records)
    first = snapshot(root)
    passwd = (root / "etc" / "passwd").read_text()
    assert "sshd:x:" in passwd and passwd.startswith("root:x:0:0:")
    assert oct((root / "etc" / "shadow").stat().st_mode & 0o777) == "0o640"
    assert (root / "var" / "lib" / "sshd").stat().st_mode & 0o777 == 0o700
    assert not (root / "run").exists(), "runtime paths are made by init at boot"
    boot = (root / TMPFILES).read_text().splitlines()
    uid = passwd.split("sshd:x:")[1].split(":")[0]
    assert "d 0755 0 0 /run/sshd" in boot and f"d 0700 {uid} {uid} /var/lib/sshd" in boot
    assert os.readlink(root / "usr" / "bin" / "ssh") == "/etc/alternatives/ssh"
    assert os.readlink(root / "etc" / "alternatives" / "ssh") == "/usr/bin/ssh.openssh"
    assert (root / "etc" / "ssl" / "certs" / "ca-certificates.crt").read_text() == "A\n"
    assert "net_bind_service" in (root / SERVICES).read_text()
    assert sorted(os.listdir(root / FIRSTBOOT_DIR)) == ["ldconfig", "machine-id", "ssh-host-keys"]
    assert {"etc/passwd", TMPFILES, "usr/bin/ssh", "var/lib/sshd", "etc/ssl/certs/ca-certificates.crt"} <= set(written)
    with Root.open(root) as r:
        apply_actions(r, records)
        apply_services(r, records)
    assert snapshot(root) == first
    other = base_root(tmp_path / "again")
    with Root.open(other) as r:
        apply_actions(r, records)
        apply_services(r, records)
    assert snapshot(other) == first, "same packages, same bytes"


def test_a_root_without_package_actions_is_not_touched(tmp_path: Path) -> None:
    root = base_root(tmp_path)
    before = snapshot(root)
    with Root.open(root) as r:
        assert apply_actions(r, {"plain": record("plain", "")}) == []
    assert snapshot(root) == before


def test_actions_never_write_through_a_symlink_out_of_the_root(tmp_path: Path) -> None:
    root = base_root(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "srv").symlink_to(outside)
    records = {"a": record("a", '[[actions.tmpfiles]]\ntype = "d"\npath = "/srv/data"\n')}
    with Root.open(root) as r, pytest.raises(UnsafePath, match="never follows"):
        apply_actions(r, records)
    assert list(outside.iterdir()) == []


def test_an_owner_the_image_lacks_and_a_shipped_alternative_link_are_refused(tmp_path: Path) -> None:
    root = base_root(tmp_path)
    records = {"a": record("a", '[[actions.tmpfiles]]\ntype = "d"\npath = "/srv/x"\nuser = "ghost"\n')}
    with Root.open(root) as r, pytest.raises(ActionConflict, match="owned by user 'ghost', which the image"):
        apply_actions(r, records)
    (root / "usr" / "bin" / "ssh").write_text("a real file\n")
    records = {"ssh": record("ssh", SSH)}
    with Root.open(root) as r, pytest.raises(Exception, match="alternative link '/usr/bin/ssh' is a file"):
        apply_actions(r, records)


def test_a_debian_base_without_etc_passwd_is_seeded_from_base_passwd_masters(tmp_path: Path) -> None:
    root = tmp_path / "root"
    masters = root / "usr" / "share" / "base-passwd"
    masters.mkdir(parents=True)
    (masters / "passwd.master").write_text("root:*:0:0:root:/root:/bin/bash\n"
                                           "www-data:*:33:33:www-data:/var/www:/usr/sbin/nologin\n")
    (masters / "group.master").write_text("root:*:0:\nadm:*:4:\nwww-data:*:33:\n")
    body = ('[[actions.tmpfiles]]\ntype = "d"\npath = "/var/log/web"\nmode = "0750"\nuser = "www-data"\n'
            'group = "adm"\n')
    with Root.open(root) as r:
        apply_actions(r, {"nginx-common": record("nginx-common", body)})
    assert (root / "etc" / "passwd").read_text() == ("root:x:0:0:root:/root:/bin/bash\n"
                                                     "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n")
    assert (root / "etc" / "group").read_text() == "root:x:0:\nadm:x:4:\nwww-data:x:33:\n"
    assert (root / "etc" / "shadow").read_text() == "root:*:::::::\nwww-data:*:::::::\n"
    assert "d 0750 33 4 /var/log/web" in (root / TMPFILES).read_text()


def test_a_base_with_its_own_passwd_gets_the_missing_base_passwd_accounts(tmp_path: Path) -> None:
    """update-passwd's merge: a Veridian base ships root and nobody; Debian's base-passwd adds www-data (which
    nginx-common's log files are owned by), never a second root or an id the base already uses."""
    root = base_root(tmp_path)
    masters = root / "usr" / "share" / "base-passwd"
    masters.mkdir(parents=True)
    (masters / "passwd.master").write_text("root:*:0:0:root:/root:/bin/bash\n"
                                           "www-data:*:33:33:www-data:/var/www:/usr/sbin/nologin\n"
                                           "clash:*:0:0:same uid as root:/:/usr/sbin/nologin\n")
    (masters / "group.master").write_text("root:*:0:\nadm:*:4:\nwww-data:*:33:\n")
    before = (root / "etc" / "passwd").read_text()
    body = ('[[actions.tmpfiles]]\ntype = "f"\npath = "/var/log/web.log"\nmode = "0640"\nuser = "www-data"\n'
            'group = "adm"\n')
    with Root.open(root) as r:
        apply_actions(r, {"nginx-common": record("nginx-common", body)})
    passwd = (root / "etc" / "passwd").read_text()
    assert passwd == before + "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
    assert (root / "etc" / "group").read_text().endswith("adm:x:4:\nwww-data:x:33:\n")
    assert (root / "etc" / "shadow").read_text().endswith("www-data:*:::::::\n")
    assert "f 0640 33 4 /var/log/web.log" in (root / TMPFILES).read_text()


COPY = '[[actions.tmpfiles]]\ntype = "C"\npath = "/etc/web/web.conf"\nargument = "/usr/share/web/web.conf"\n'


def test_a_copy_entry_installs_the_shipped_template_once_and_init_only_sets_its_owner(tmp_path: Path) -> None:
    root = base_root(tmp_path)
    (root / "usr" / "share" / "web").mkdir(parents=True)
    (root / "usr" / "share" / "web" / "web.conf").write_text("Port 22\n")
    with Root.open(root) as r:
        written = apply_actions(r, {"web": record("web", COPY)})
    conf = root / "etc" / "web" / "web.conf"
    assert conf.read_text() == "Port 22\n" and conf.stat().st_mode & 0o777 == 0o644
    assert "etc/web/web.conf" in written
    assert "z 0644 0 0 /etc/web/web.conf" in (root / TMPFILES).read_text().splitlines(), "init: owner and mode only"
    conf.write_text("Port 2222\n")
    with Root.open(root) as r:
        apply_actions(r, {"web": record("web", COPY)})
    assert conf.read_text() == "Port 2222\n", "an existing file is kept (tmpfiles C)"


def test_a_copy_entry_is_checked_and_a_missing_source_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidPackage, match=r"tmpfiles\[0\].path.*made at run time"):
        actions_of(COPY.replace("/etc/web/web.conf", "/run/web.conf"))
    with pytest.raises(InvalidPackage, match=r"tmpfiles\[0\].argument.*'\.\.'"):
        actions_of(COPY.replace("/usr/share/web/web.conf", "/usr/../etc/shadow"))
    root = base_root(tmp_path)
    with Root.open(root) as r, pytest.raises(Exception, match=r"package 'web': tmpfiles 'C /etc/web/web.conf': "
                                                               r"its source /usr/share/web/web.conf is not a file"):
        apply_actions(r, {"web": record("web", COPY)})
