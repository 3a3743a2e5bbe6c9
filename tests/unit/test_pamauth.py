"""/etc/pam.d/common-* as pam-auth-update writes them (composer.package.pamauth), from libpam-runtime's
templates and the profiles on by default; applied by the image build through the ``pam-auth`` generator."""

from __future__ import annotations

from pathlib import Path

from composer.package.metadata import parse_metadata
from composer.package.pamauth import common_file
from composer.pkgmgr.actions import apply_actions
from composer.rootfs import Root

UNIX = """Name: Unix authentication
Default: yes
Priority: 256
Auth-Type: Primary
Auth:
\t[success=end default=ignore]\tpam_unix.so nullok try_first_pass
Auth-Initial:
\t[success=end default=ignore]\tpam_unix.so nullok
Session-Type: Additional
Session:
\trequired\tpam_unix.so
"""
EXTRA = """Name: Extra
Default: yes
Priority: 512
Auth-Type: Primary
Auth:
\t[success=end default=ignore]\tpam_extra.so
Session-Type: Additional
Session-Interactive-Only: yes
Session:
\toptional\tpam_extra.so
"""
OFF = "Name: Off\nDefault: no\nPriority: 900\nAuth-Type: Primary\nAuth:\n\trequired\tpam_off.so\n"
AUTH = ("# header\n$auth_primary\nauth\trequisite\t\t\tpam_deny.so\nauth\trequired\t\t\tpam_permit.so\n"
        "$auth_additional\n")
SESSION = "$session_nonint_primary\nsession\trequisite\t\t\tpam_deny.so\n$session_nonint_additional\n"


def test_debians_default_unix_stack() -> None:
    assert common_file("common-auth", AUTH, {"unix": UNIX}).decode() == (
        "# header\nauth\t[success=1 default=ignore] pam_unix.so nullok\nauth\trequisite\t\t\tpam_deny.so\n"
        "auth\trequired\t\t\tpam_permit.so\n")


def test_priority_orders_primaries_the_jumps_skip_the_block_and_defaults_only() -> None:
    text = common_file("common-auth", AUTH, {"unix": UNIX, "extra": EXTRA, "off": OFF}).decode()
    assert "auth\t[success=2 default=ignore] pam_extra.so\nauth\t[success=1 default=ignore] pam_unix.so nullok " \
           "try_first_pass\n" in text, "the first module uses Initial lines when it has them; unix is second"
    assert "pam_off" not in text
    session = common_file("common-session-noninteractive", SESSION, {"unix": UNIX, "extra": EXTRA}).decode()
    assert session == ("session\t[default=1]\t\t\tpam_permit.so\nsession\trequisite\t\t\tpam_deny.so\n"
                       "session\trequired pam_unix.so\n"), "no primary: the placeholder; interactive-only left out"


def test_the_image_build_writes_the_common_files(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr" / "share" / "pam").mkdir(parents=True)
    (root / "usr" / "share" / "pam-configs").mkdir(parents=True)
    (root / "usr" / "share" / "pam" / "common-auth").write_text(AUTH)
    (root / "usr" / "share" / "pam-configs" / "unix").write_text(UNIX)
    head = ('[package]\nname = "libpam-runtime"\nversion = "1.0.0"\ndescription = "p"\nlicense = "MIT"\n'
            'type = "library"\narch = "noarch"\n[security]\ncontext = "p_t"\n[actions]\ngenerate = ["pam-auth"]\n')
    record = {"metadata": parse_metadata(head.encode(), origin="p").to_dict()}
    with Root.open(root) as r:
        written = apply_actions(r, {"libpam-runtime": record})
    assert "etc/pam.d/common-auth" in written
    assert "pam_unix.so nullok\n" in (root / "etc" / "pam.d" / "common-auth").read_text()
    assert "pam_unix.so" in (root / "etc" / "pam.d" / "common-session").read_text(), "template missing: bare stack"
