"""The Debian import's translation of maintainer scripts and shipped sysusers.d/tmpfiles.d/unit files into
[actions] (patterns as in trixie's openssh-server, openssh-client, tar, nginx-common and libc6), and what it
records as untranslated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

from composer.package.debactions import MAX_UNTRANSLATED, translate
from composer.package.importer import action_files
from composer.package.metadata import parse_metadata

POSTINST = """#!/bin/sh
set -e

. /usr/share/debconf/confmodule

action="$1"
logdir="/var/log/web"

set_agent_permissions() {
\tif ! getent group _ssh >/dev/null; then
\t\taddgroup --system --quiet --force-badname _ssh
\tfi
\tif ! dpkg-statoverride --list /usr/bin/ssh-agent >/dev/null; then
\t\tdpkg-statoverride --update --add root _ssh 2755 /usr/bin/ssh-agent
\tfi
}

new_config_file()
{
    cat > /etc/web/config <<-EOF
\t[DEFAULT]
\tbyte-compile = standard
\tEOF
}

if [ "$action" = configure ]; then
\tif dpkg --compare-versions "$2" lt-nl 1:8.4p1-6~; then
\t\tgroupmod -n _ssh ssh
\tfi
\tset_agent_permissions
\tdb_get web/permit-root-login
\tadduser --system --group --home /var/lib/web --no-create-home \\
\t\t--gecos "web server" web
\tupdate-alternatives --install /usr/sbin/rmt rmt /usr/sbin/rmt-tar 50 \\
\t\t--slave /usr/share/man/man8/rmt.8.gz rmt.8.gz /usr/share/man/man8/rmt-tar.8.gz
\tmkdir -p $logdir
\tchown web:adm $logdir
\tchmod 0750 "$logdir"
\t[ -f /etc/web/config ] || new_config_file
\tssh-keygen -q -f "$file" -N '' "$@"
\tcurl http://example.org/phone-home
fi

case "$1" in
    configure)
\tln -s /etc/web/sites-available/default /etc/web/sites-enabled/default
    ;;
    upgrade)
\trm -f /etc/logrotate.d/web-old
    ;;
esac

# Automatically added by dh_installsysusers/13.24.2
@DH_IF@
   systemd-sysusers ${DPKG_ROOT:+--root="$DPKG_ROOT"} web.conf
fi
# End automatically added section
# Automatically added by dh_installdeb/13.24.2
dpkg-maintscript-helper rm_conffile /etc/web/old 1:7.9p1-8\\~ -- "$@"
# End automatically added section
# Automatically added by dh_installsystemd/13.24.2
@DH_IF@
\tdeb-systemd-helper unmask 'web.service' >/dev/null || true
\tif deb-systemd-helper --quiet was-enabled 'web.service'; then
\t\tdeb-systemd-helper enable 'web.service' >/dev/null || true
\telse
\t\tdeb-systemd-helper update-state 'web.service' >/dev/null || true
\tfi
\tdeb-systemd-helper enable 'web.socket' >/dev/null || true
\tdeb-systemd-helper --user enable 'agent.socket' >/dev/null || true
fi
# End automatically added section
# Automatically added by dh_installsystemd/13.24.2
@DH_IF@
\tif [ -d /run/systemd/system ]; then
\t\tsystemctl --system daemon-reload >/dev/null || true
\t\tif [ -n "$2" ]; then
\t\t\t_dh_action=restart
\t\telse
\t\t\t_dh_action=start
\t\tfi
\t\tdeb-systemd-invoke $_dh_action 'web.service' >/dev/null || true
\tfi
fi
# End automatically added section
db_stop
exit 0
""".replace("@DH_IF@", 'if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] '
            '|| [ "$1" = "abort-remove" ] ; then')
PREINST = """#!/bin/sh
set -e
if [ "$1" = upgrade ] && dpkg --compare-versions "$2" lt-nl 1:9.8p1-1~; then
\tdpkg-divert --package web --add --no-rename --divert /usr/sbin/web.split /usr/sbin/web
fi
"""
UNIT = """[Unit]
Description=Web server
After=network.target auditd.service

[Service]
EnvironmentFile=-/etc/default/web
ExecStartPre=/usr/sbin/web -t
ExecStart=/usr/sbin/web -D $WEB_OPTS
Restart=on-failure
Type=notify
User=web
Environment="LANG=C.UTF-8" MODE=prod
AmbientCapabilities=CAP_NET_BIND_SERVICE
RuntimeDirectory=web
RuntimeDirectoryMode=0750

[Install]
WantedBy=multi-user.target
"""
SYSUSERS = 'u sshd -:nogroup "sshd user" /run/sshd\ng extra 610\nm sshd extra\nr - 500-900\nu odd /etc/id\n'
TMPFILES = "d /run/sshd 0755 root root -\nx /tmp/sshauth.*\nr! /etc/gshadow.lock\nC /etc/x - - - - /usr/x\n" \
           "d /var/cache/%n 0755\nL+ /etc/mtab - - - - ../proc/self/mounts\nf /etc/motd 644 - - - hello\n"


def run(**extra: Any) -> Any:
    control = {"postinst": POSTINST.encode(), "preinst": PREINST.encode(),
               "triggers": b"# Triggers added by dh_makeshlibs\nactivate-noawait ldconfig\ninterest /usr/lib/web\n"}
    files = {"usr/lib/systemd/system/web.service": UNIT.encode(), "usr/lib/sysusers.d/web.conf": SYSUSERS.encode(),
             "usr/lib/tmpfiles.d/web.conf": TMPFILES.encode()}
    return translate(package="web", control=extra.get("control", control), files=extra.get("files", files))


def test_users_groups_and_memberships_from_scripts_and_sysusers() -> None:
    a = run().actions
    assert {"name": "web", "home": "/var/lib/web", "shell": "/usr/sbin/nologin", "gecos": "web server"} in a["users"]
    assert {"name": "sshd", "group": "nogroup", "gecos": "sshd user", "home": "/run/sshd",
            "shell": "/usr/sbin/nologin"} in a["users"]
    assert {"name": "_ssh"} in a["groups"] and {"name": "extra", "gid": 610} in a["groups"]
    assert a["members"] == [{"user": "sshd", "group": "extra"}]


def test_alternatives_statoverride_files_and_links() -> None:
    a = run().actions
    assert a["alternatives"] == [
        {"name": "rmt", "link": "/usr/sbin/rmt", "path": "/usr/sbin/rmt-tar", "priority": 50},
        {"name": "rmt.8.gz", "link": "/usr/share/man/man8/rmt.8.gz", "path": "/usr/share/man/man8/rmt-tar.8.gz",
         "priority": 50}]
    tmp = {t["path"]: t for t in a["tmpfiles"]}
    assert tmp["/usr/bin/ssh-agent"] == {"type": "z", "path": "/usr/bin/ssh-agent", "mode": "2755", "user": "root",
                                         "group": "_ssh"}
    assert tmp["/var/log/web"] == {"type": "d", "path": "/var/log/web", "user": "web", "group": "adm",
                                   "mode": "0750"}, "mkdir, chown and chmod of one path fold into one entry"
    assert tmp["/etc/web/sites-enabled/default"]["type"] == "L"
    assert tmp["/run/sshd"]["type"] == "d" and tmp["/etc/mtab"]["argument"] == "../proc/self/mounts"
    assert tmp["/etc/motd"] == {"type": "f", "path": "/etc/motd", "mode": "0644", "user": "root", "group": "root",
                                "argument": "hello"}
    assert tmp["/run/web"] == {"type": "d", "path": "/run/web", "mode": "0750", "user": "web", "group": "root"}


def test_an_enabled_unit_becomes_a_service_and_the_rest_is_recorded() -> None:
    t = run()
    (service,) = t.actions["services"]
    assert service == {"name": "web", "command": ["/usr/sbin/web", "-D"], "user": "web",
                       "environment": {"LANG": "C.UTF-8", "MODE": "prod"}, "restart": "on-failure",
                       "readiness": "notify", "capabilities": ["net_bind_service"]}
    assert t.actions["ldconfig"] is True and t.actions["firstboot"] == ["ssh-host-keys"]
    text = "\n".join(t.untranslated)
    for expected in ("web.service: ExecStart=/usr/sbin/web -D $WEB_OPTS (variables are not expanded: dropped)",
                     "web.service: ExecStartPre=/usr/sbin/web -t", "web.socket: socket units are not translated",
                     "postinst: curl http://example.org/phone-home", "postinst: cat >/etc/web/config",
                     "postinst: debconf questions (web/permit-root-login)", "triggers: interest /usr/lib/web",
                     "usr/lib/sysusers.d/web.conf: r - 500-900", "usr/lib/sysusers.d/web.conf: u odd /etc/id",
                     "usr/lib/tmpfiles.d/web.conf: C /etc/x", "usr/lib/tmpfiles.d/web.conf: d /var/cache/%n"):
        assert expected in text, expected
    for absent in ("groupmod", "dpkg-divert", "rm -f", "agent.socket", "sshauth", "gshadow", "new_config_file",
                   "set_agent_permissions", "dpkg-maintscript-helper", "systemd-sysusers", "daemon-reload"):
        assert absent not in text, f"{absent}: upgrade-only, removal, user unit, no effect or a function call"


def test_the_translation_validates_as_package_metadata() -> None:
    t = run()
    head = ('[package]\nname = "web"\nversion = "1.0.0"\ndescription = "w"\nlicense = "MIT"\ntype = "application"\n'
            'arch = "noarch"\n[security]\ncontext = "w_t"\n')
    m = parse_metadata((head + tomli_w.dumps({"actions": t.actions})).encode(), origin="web")
    assert m.actions.untranslated == t.untranslated and len(m.actions.services) == 1
    assert run() == t, "deterministic"


def test_hostile_values_end_up_untranslated_never_in_the_actions() -> None:
    postinst = ("#!/bin/sh\nadduser --system 'Root!'\nadduser --system --home /var/../../etc evil\n"
                "update-alternatives --install /usr/bin/x x /var/lib/vpk/x 10\nmkdir -p /etc/veridian/x\n")
    t = translate(package="evil", control={"postinst": postinst.encode()}, files={})
    assert "users" not in t.actions and "alternatives" not in t.actions
    assert all(e["path"] != "/etc/veridian/x" for e in t.actions.get("tmpfiles", []))
    assert any("Root!" in e and "not valid" in e for e in t.untranslated)
    flood = "".join(f"frobnicate {i}\n" for i in range(300)) + "x" * 5000 + "\n"
    t = translate(package="evil", control={"postinst": flood.encode()}, files={})
    assert len(t.untranslated) == MAX_UNTRANSLATED and t.untranslated[-1] == "... and 202 more"
    assert all(len(e) <= 200 for e in t.untranslated)


def test_action_files_reads_only_regular_files_of_the_known_directories(tmp_path: Path) -> None:
    unit = tmp_path / "usr" / "lib" / "systemd" / "system"
    unit.mkdir(parents=True)
    (unit / "web.service").write_text(UNIT)
    (unit / "alias.service").symlink_to("web.service")
    (tmp_path / "usr" / "lib" / "sysusers.d").mkdir()
    (tmp_path / "usr" / "lib" / "sysusers.d" / "web.conf").write_text(SYSUSERS)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "other.conf").write_text("x")
    assert sorted(action_files(tmp_path)) == ["usr/lib/systemd/system/web.service", "usr/lib/sysusers.d/web.conf"]


def test_a_numeric_primary_gid_names_the_group_that_has_it() -> None:
    """systemd's basic.conf: ``u _apt 42:65534`` runs in the group of id 65534 (``g nogroup 65534``), not in
    a new group '_apt' with that id; a gid no g line has makes a group of the user's name."""
    conf = "g nogroup 65534 -\nu nobody 65534:65534 - /nonexistent\nu _apt 42:65534 - /nonexistent\n" \
           "u games 5:60 - /usr/games\ng games 60 -\nu lone 700:701\n"
    a = translate(package="systemd", control={}, files={"usr/lib/sysusers.d/basic.conf": conf.encode()}).actions
    users = {u["name"]: u for u in a["users"]}
    assert users["_apt"]["group"] == "nogroup" and users["nobody"]["group"] == "nogroup"
    assert users["games"]["group"] == "games" and users["lone"]["group"] == "lone"
    assert sorted((g["name"], g.get("gid")) for g in a["groups"]) == [("games", 60), ("lone", 701),
                                                                      ("nogroup", 65534)]
    assert all("primary-gid" not in u for u in a["users"])


SSHD_CONFIG = """#!/bin/sh
set -e
create_sshdconfig() {
\tnew_config="$(mktemp)"
\tcp -aZ /usr/share/openssh/sshd_config "$new_config"
\tif [ "$permit_root_login" != true ]; then
\t\tsed -i "s/^#*PermitRootLogin .*/PermitRootLogin yes/" "$new_config"
\tfi
\tmkdir -p /etc/ssh
\tucf --three-way --debconf-ok \\
\t\t--sum-file /usr/share/openssh/sshd_config.md5sum \\
\t\t"$new_config" /etc/ssh/sshd_config
\tucfr openssh-server /etc/ssh/sshd_config
\tchmod 644 /etc/ssh/sshd_config
}
create_sshdconfig
cp /usr/share/nginx/html/index.html /var/www/html/index.nginx-debian.html
cp "$tmp" /etc/unknown
ucf --purge /etc/gone
"""


def test_configuration_installed_from_a_shipped_template_becomes_a_copy_entry() -> None:
    """openssh-server's sshd_config (cp to a temporary file, then ucf) and nginx-common's index page (cp)."""
    t = translate(package="openssh-server", control={"postinst": SSHD_CONFIG.encode()}, files={})
    tmp = {e["path"]: e for e in t.actions["tmpfiles"]}
    assert tmp["/etc/ssh/sshd_config"] == {"type": "C", "path": "/etc/ssh/sshd_config", "mode": "0644",
                                           "argument": "/usr/share/openssh/sshd_config"}
    assert tmp["/var/www/html/index.nginx-debian.html"]["argument"] == "/usr/share/nginx/html/index.html"
    text = "\n".join(t.untranslated)
    assert "sed -i s/^#*PermitRootLogin" in text, "the debconf-dependent edit stays for review"
    assert "cp $tmp /etc/unknown" in text, "a copy of an unknown file is not guessed"
    assert "ucf" not in text, "ucf, ucfr and ucf --purge are translated"


def test_a_forking_unit_is_translated_and_flagged() -> None:
    unit = b"[Service]\nType=forking\nExecStart=/usr/sbin/nginx -g 'daemon on; master_process on;'\n"
    t = translate(package="nginx-common", control={"postinst": b"#!/bin/sh\ndeb-systemd-helper enable nginx\n"},
                  files={"usr/lib/systemd/system/nginx.service": unit})
    assert t.actions["services"][0]["command"] == ["/usr/sbin/nginx", "-g", "daemon on; master_process on;"]
    assert any("Type=forking" in u for u in t.untranslated)


def test_a_copy_of_state_that_is_no_shipped_template_stays_untranslated() -> None:
    """cdebconf's postinst backs up its state (``cp /var/cache/debconf/templates.dat ...old``): not a template
    under /usr, so no copy entry whose source the image would lack."""
    script = b"#!/bin/sh\ncp /var/cache/debconf/templates.dat /var/cache/debconf/templates.dat.old\n"
    t = translate(package="cdebconf", control={"postinst": script}, files={})
    assert "tmpfiles" not in t.actions
    assert t.untranslated == ("postinst: cp /var/cache/debconf/templates.dat /var/cache/debconf/templates.dat.old",)


def test_pam_auth_update_becomes_the_pam_auth_generator() -> None:
    """libpam-runtime's postinst runs ``pam-auth-update --package``; libpam-modules' preinst ``--remove``."""
    post = b'#!/bin/sh\npam-auth-update --root "$DPKG_ROOT" --package $force\n'
    t = translate(package="libpam-runtime", control={"postinst": post}, files={})
    assert t.actions == {"generate": ["pam-auth"]} and t.untranslated == ()
    pre = b"#!/bin/sh\npam-auth-update --remove $profiles\n"
    assert translate(package="libpam-modules", control={"preinst": pre}, files={}).actions == {}


def test_run_nologin_is_not_made_since_nothing_would_remove_it() -> None:
    """systemd's tmpfiles make /run/nologin at boot and systemd-user-sessions removes it: init would leave it,
    and pam_nologin would refuse every ssh login of a user."""
    conf = b'F! /run/nologin 0644 - - - "System is booting up."\nf /run/other 0644 - - - x\n'
    t = translate(package="systemd", control={}, files={"usr/lib/tmpfiles.d/systemd-nologin.conf": conf})
    assert [e["path"] for e in t.actions["tmpfiles"]] == ["/run/other"]
    assert any("/run/nologin (systemd-user-sessions removes it" in u for u in t.untranslated)


def test_a_create_when_missing_entry_for_a_shipped_path_is_dropped() -> None:
    """openssl's postinst links /usr/lib/ssl to /etc/ssl only when it is missing; the package ships it as a
    directory, so the link never applies (lint would refuse the package: tmpfiles-shipped)."""
    script = b"#!/bin/sh -e\nif [ ! -e /usr/lib/ssl ]\nthen\n  ln -sf /etc/ssl /usr/lib/ssl\nfi\n"
    kept = translate(package="openssl", control={"postinst": script}, files={}).actions
    assert kept["tmpfiles"] == [{"type": "L", "path": "/usr/lib/ssl", "argument": "/etc/ssl"}]
    dropped = translate(package="openssl", control={"postinst": script}, files={},
                        shipped=frozenset({"usr/lib/ssl", "usr/lib/ssl/misc"})).actions
    assert "tmpfiles" not in dropped and "untranslated" not in dropped


def test_update_ca_certificates_is_the_generated_bundle() -> None:
    script = b"#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  update-ca-certificates --hooksdir /x\nfi\n"
    assert translate(package="ca-certificates", control={"postinst": script}, files={}).actions == \
        {"generate": ["ca-certificates"]}
