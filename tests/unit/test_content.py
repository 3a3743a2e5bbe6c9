"""The profile's content in a root: what it writes is listed; an overlay never writes through a symlink out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from composer.errors import UserError
from composer.pkgmgr.configure import GENERATED, configure
from composer.profile.load import load_profile
from tests.conftest import REPO

PROFILE = """name: t
architectures: [x86_64]
repositories: [{name: sample, url: ../repo, root: sample-root.json}]
packages: [base-files]
hostname: box
users: [{name: admin, uid: 1000, groups: [wheel],
         ssh-keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJqyXMLUCVyQD/bK8iUi9E1vjdIcowRm0l9x4ZZqxxT x"]}]
files: overlay
outputs: [{type: rootfs}]
"""


def setup(tmp_path: Path) -> tuple[Path, Path]:
    shutil.copy(REPO / "profiles" / "trust" / "sample-root.json", tmp_path)
    (tmp_path / "overlay" / "etc").mkdir(parents=True)
    (tmp_path / "overlay" / "etc" / "motd").write_text("hi\n")
    (tmp_path / "t.yaml").write_text(PROFILE)
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    return tmp_path / "t.yaml", root


def test_everything_written_is_listed_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    profile, root = setup(tmp_path)
    configure(root, load_profile(profile), "x86_64", {})
    listed = set(json.loads((root / GENERATED).read_text()))
    assert {"etc/hostname", "etc/passwd", "etc/group", "etc/shadow", "etc/motd", "home", "home/admin",
            "home/admin/.ssh/authorized_keys", "etc/veridian/modules.load", "etc/veridian/checks.d/11-arch",
            "var/lib/vpk"} <= listed
    assert "etc" not in listed, "a directory that existed is not the profile's"
    passwd = (root / "etc" / "passwd").read_text()
    configure(root, load_profile(profile), "x86_64", {})
    assert (root / "etc" / "passwd").read_text() == passwd
    assert set(json.loads((root / GENERATED).read_text())) == listed


def test_an_overlay_does_not_write_through_a_symlink_out_of_the_root(tmp_path: Path) -> None:
    profile, root = setup(tmp_path)
    shutil.rmtree(root / "etc")
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "etc").symlink_to(outside)
    with pytest.raises(UserError, match="never follows"):
        configure(root, load_profile(profile), "x86_64", {})
    assert not (outside / "motd").exists()


def test_authorized_keys_are_0600_in_a_0700_ssh_and_the_users_at_boot(tmp_path: Path) -> None:
    """Image files are 0:0 (composer/image/formats): init gives the home, .ssh and authorized_keys to the
    user at boot through tmpfiles 'z' lines; sshd refuses keys in a file others could write."""
    profile, root = setup(tmp_path)
    configure(root, load_profile(profile), "x86_64", {})
    ssh = root / "home" / "admin" / ".ssh"
    assert ssh.stat().st_mode & 0o777 == 0o700 and (ssh / "authorized_keys").stat().st_mode & 0o777 == 0o600
    assert (ssh / "authorized_keys").read_text().startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJqyXML")
    lines = (root / "etc" / "veridian" / "tmpfiles").read_text().splitlines()
    assert lines[1:] == ["z 0755 1000 1000 /home/admin", "z 0700 1000 1000 /home/admin/.ssh",
                         "z 0600 1000 1000 /home/admin/.ssh/authorized_keys"]
    configure(root, load_profile(profile), "x86_64", {})
    assert (root / "etc" / "veridian" / "tmpfiles").read_text().splitlines() == lines
