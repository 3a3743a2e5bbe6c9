"""A small root from recipes with [actions]: built, signed, installed and configured twice, bit for bit; the
packages' users, tmpfiles, alternatives, CA bundle, services and first-boot actions are in it."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from composer.package.accounts import ActionConflict
from composer.package.build import build
from composer.pkgmgr.configure import configure
from composer.pkgmgr.install import Fetched, install, installed
from composer.pkgmgr.transaction import RootChange, TransactionError, apply
from composer.profile.load import load_profile
from composer.solve.lockmodel import LockedPackage, Reason
from composer.trust.keys import load_signing_key
from tests.conftest import REPO, write_recipe

pytestmark = pytest.mark.integration

KEY = REPO / "keys" / "sample" / "INSECURE-SAMPLE-developer.key"
HEAD = """
    [package]
    name = "{name}"
    version = "1.0.0"
    description = "{name}: a test package with actions"
    authors = ["tests"]
    license = "MIT"
    type = "application"
    arch = "noarch"

    [security]
    context = "test_t"

    [files]
    config = ["etc/**"]

    [[source]]
    kind = "tree"
    path = "files"
"""
BASE = {"files/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
        "files/etc/group": "root:x:0:\nnogroup:x:65534:\n",
        "files/etc/shadow": "root:*::0:99999:7:::\n"}
SSH = """
    [actions]
    firstboot = ["ssh-host-keys", "machine-id"]

    [[actions.users]]
    name = "sshd"
    home = "/run/sshd"

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
    name = "editor"
    link = "/usr/bin/editor"
    path = "/usr/bin/tiny-edit"
    priority = 10

    [[actions.services]]
    name = "ssh"
    command = ["/usr/sbin/sshd", "-D", "-e"]
    readiness = "tcp:22"
"""
WEB = """
    [actions]
    ldconfig = true
    generate = ["ca-certificates"]

    [[actions.users]]
    name = "www-data"
    home = "/var/www"

    [[actions.members]]
    user = "www-data"
    group = "sshd"

    [[actions.alternatives]]
    name = "editor"
    link = "/usr/bin/editor"
    path = "/usr/bin/big-edit"
    priority = 50

    [[actions.tmpfiles]]
    type = "f"
    path = "/etc/web/motd"
    mode = "0640"
    argument = "welcome"

    [[actions.services]]
    name = "web"
    command = ["/usr/sbin/web"]
    user = "www-data"
    after = ["ssh"]
    environment = {PORT = "80"}
"""
PROFILE = """name: t
architectures: [x86_64]
repositories: [{name: sample, url: ../repo, root: sample-root.json}]
packages: [base, ssh, web]
hostname: box
outputs: [{type: rootfs}]
"""


def recipes(work: Path, web: str = WEB) -> dict[str, Path]:
    return {
        "base": write_recipe(work / "base", HEAD.format(name="base"), dict(BASE)),
        "ssh": write_recipe(work / "ssh", HEAD.format(name="ssh") + SSH,
                            {"files/usr/bin/tiny-edit": "#!/bin/sh\n", "files/usr/sbin/sshd": "#!/bin/sh\n"},
                            executable=("files/usr/bin/tiny-edit", "files/usr/sbin/sshd")),
        "web": write_recipe(work / "web", HEAD.format(name="web") + web,
                            {"files/usr/bin/big-edit": "#!/bin/sh\n", "files/usr/sbin/web": "#!/bin/sh\n",
                             "files/usr/share/ca-certificates/test/b.crt": "B\n",
                             "files/usr/share/ca-certificates/test/a.crt": "A\n"},
                            executable=("files/usr/bin/big-edit", "files/usr/sbin/web")),
    }


def fetched(path: Path, name: str) -> Fetched:
    key = load_signing_key(KEY)
    locked = LockedPackage(name=name, version="1.0.0", arch="x86_64",
                           sha256=hashlib.sha256(path.read_bytes()).hexdigest(), size=path.stat().st_size,
                           repository="test", signer=key.keyid, reason=Reason.parse("requested"), capabilities=())
    return Fetched(locked=locked, path=path, key=key.public)


def make_root(work: Path, web: str = WEB) -> tuple[Path, dict[str, bytes]]:
    key = load_signing_key(KEY)
    built = {name: build(d, "x86_64", key, work / "out").path for name, d in recipes(work / "recipes", web).items()}
    root = work / "root"
    install(root, [fetched(p, n) for n, p in sorted(built.items())], profile_digest="p", lock_digest="l",
            epoch=1700000000)
    shutil.copy(REPO / "profiles" / "trust" / "sample-root.json", work)
    (work / "t.yaml").write_text(PROFILE)
    configure(root, load_profile(work / "t.yaml"), "x86_64", installed(root))
    return root, {n: p.read_bytes() for n, p in built.items()}


def snapshot(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            out[str(p.relative_to(root))] = (oct(st.st_mode), os.readlink(p) if p.is_symlink()
                                             else (p.read_bytes() if p.is_file() else None))
    return dict(sorted(out.items()))


def test_a_root_with_actions_is_built_twice_bit_for_bit(tmp_path: Path) -> None:
    first, packages = make_root(tmp_path / "a")
    second, again = make_root(tmp_path / "b")
    assert packages == again, "the .vpk files (with [actions] signed in their metadata) are reproducible"
    snap = snapshot(first)
    assert snap == snapshot(second)
    passwd = (first / "etc" / "passwd").read_text().splitlines()
    assert passwd[0] == "root:x:0:0:root:/root:/bin/sh"
    assert [line.split(":")[0] for line in passwd] == ["root", "sshd", "www-data"]
    group = (first / "etc" / "group").read_text()
    assert ":www-data\n" in next(line + "\n" for line in group.splitlines() if line.startswith("sshd:"))
    assert os.readlink(first / "usr" / "bin" / "editor") == "/etc/alternatives/editor"
    assert os.readlink(first / "etc" / "alternatives" / "editor") == "/usr/bin/big-edit"
    assert (first / "etc" / "ssl" / "certs" / "ca-certificates.crt").read_text() == "A\nB\n"
    assert (first / "etc" / "web" / "motd").read_text() == "welcome"
    assert (first / "etc" / "web" / "motd").stat().st_mode & 0o777 == 0o640
    services = (first / "etc" / "veridian" / "services.toml").read_text()
    assert 'package = "web"' in services and 'PORT = "80"' in services
    assert sorted(os.listdir(first / "etc" / "veridian" / "firstboot.d")) == ["ldconfig", "machine-id",
                                                                              "ssh-host-keys"]
    generated = (first / "var" / "lib" / "vpk" / "generated.json").read_text()
    for rel in ("etc/passwd", "etc/veridian/tmpfiles", "usr/bin/editor", "etc/ssl/certs/ca-certificates.crt"):
        assert f'"{rel}"' in generated


def test_a_user_clash_between_packages_stops_the_build_naming_both(tmp_path: Path) -> None:
    clash = WEB.replace('name = "www-data"\n    home', 'name = "sshd"\n    home')
    with pytest.raises(ActionConflict, match="user 'sshd' is declared differently by packages 'ssh' .* and 'web'"):
        make_root(tmp_path, clash)


def test_the_package_manager_on_a_root_refuses_packages_with_actions(tmp_path: Path) -> None:
    key = load_signing_key(KEY)
    built = {name: build(d, "x86_64", key, tmp_path / "out").path for name, d in recipes(tmp_path / "r").items()}
    root = tmp_path / "root"
    install(root, [fetched(built["base"], "base")], profile_digest="p", lock_digest="l", epoch=1700000000)
    before = snapshot(root)
    with pytest.raises(TransactionError, match=r"web: declares \[actions\] .* does not apply actions yet"):
        apply(root, [RootChange(name="web", action="install", new=fetched(built["web"], "web"))],
              operation="install", epoch=1700000001)
    after = snapshot(root)
    assert {k: v for k, v in after.items() if not k.startswith("var/lib/vpk/")} == \
        {k: v for k, v in before.items() if not k.startswith("var/lib/vpk/")}
    assert after["var/lib/vpk/db.json"] == before["var/lib/vpk/db.json"]
