"""The profile as a type (composer/profile/model.py, made by composer/profile/load.py): every field typed, no
``raw``, the document as written recoverable (what plan compares) and the digest the committed locks pin."""

from __future__ import annotations

import dataclasses
import json
import textwrap
import typing
from pathlib import Path

import pytest
import yaml

from composer.errors import UserError
from composer.hostchecks import HttpCheck, SshCheck
from composer.profile import model
from composer.profile.load import load_profile, profile_of
from composer.profile.model import Profile
from tests.conftest import REPO

PROFILES = sorted(REPO.glob("profiles/*.yaml"))
TYPES = [model.Profile, model.PackageRequest, model.RepositoryRef, model.Output, model.Kernel, model.User,
         model.BootTest, model.Policy]

FULL = """
name: full
description: every field
architectures: [x86_64, aarch64]
repositories:
  - name: main
    url: ../repo
    mirrors: [https://mirror.example/repo]
    root: root.json
    priority: 5
    packages: ["lib*"]
packages:
  - busybox
  - name: nano
    version: "^7"
    features: [syntax]
    architectures: [x86_64]
drivers: [virtio-blk]
capabilities: [network]
kernel: {package: linux-lts, cmdline: quiet}
init: init
hostname: box
users:
  - name: alice
    uid: 1001
    groups: [wheel]
    shell: /bin/sh
    home: /home/alice
    password-hash: "!"
    ssh-keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJqyXMLUCVyQD/bK8iUi9E1vjdIcowRm0l9x4ZZqxxT me@laptop"]
    gecos: Alice
files: overlay
outputs:
  - type: iso
    name: cd
    architectures: [x86_64]
  - type: disk
    options: {format: qcow2, filesystem: ext4}
boot-tests:
  - name: boots
    outputs: [cd]
    expect: ["VCOMP-BOOT: ready"]
    checks: {hello: "echo hi"}
    host-checks:
      - http: {port: 8080, contains: hello}
      - ssh: {user: alice, command: id -un, output: alice, key: keys/id, timeout: 30}
    timeout: 60
policy:
  denied-packages: [telnetd]
  allowed-licenses: [MIT]
  max-image-size: 2G
  max-size-growth: "10%"
  allow-setuid: false
  kernel-change-requires-ack: true
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "root.json").write_text("{}")
    (tmp_path / "overlay" / "etc").mkdir(parents=True, exist_ok=True)
    (tmp_path / "overlay" / "etc" / "motd").write_text("hi\n")
    p = tmp_path / "p.yaml"
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


@pytest.mark.parametrize("cls", TYPES, ids=[c.__name__ for c in TYPES])
def test_every_field_is_typed_and_nothing_is_raw(cls: type) -> None:
    hints = typing.get_type_hints(cls, vars(model))
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    for f in dataclasses.fields(cls):
        assert hints[f.name] is not typing.Any and "Any" not in str(hints[f.name]), (cls.__name__, f.name)
        assert f.name != "raw"


@pytest.mark.parametrize("path", PROFILES, ids=[p.name for p in PROFILES])
def test_committed_profiles_keep_their_digest_and_read_back_as_written(path: Path) -> None:
    prof = load_profile(path)
    assert not hasattr(prof, "raw")
    lock = json.loads(path.with_suffix(".lock").read_bytes())
    assert prof.digest == lock["inputs"]  # the digest the committed lock was written against
    assert prof.to_dict() == yaml.safe_load(path.read_text())


def test_pinned_digests() -> None:
    digests = {p.stem: load_profile(p).digest for p in PROFILES}
    assert digests["minimal"] == "d71265078d4f1627939f75d1296cdf2e1c08f409fc19616aa4e57cb81689ebd7"  # disk: bios too
    assert digests["server"] == "c12d5317a669adf74550b6c0c270efb90366287f8430eec298bd05128e3e91a7"  # + vpk, device-url


def test_every_field_of_a_full_profile(tmp_path: Path) -> None:
    p = write(tmp_path, FULL)
    prof = load_profile(p)
    assert prof.to_dict() == yaml.safe_load(p.read_text())
    assert prof.description == "every field" and prof.architectures == ("x86_64", "aarch64")
    (repo,) = prof.repositories
    assert repo.url == (tmp_path / "../repo").resolve().as_uri() and repo.written_url == "../repo"
    assert repo.mirrors == repo.written_mirrors == ("https://mirror.example/repo",)
    assert repo.root == (tmp_path / "root.json").resolve() and repo.priority == 5 and repo.packages == ("lib*",)
    assert prof.packages[0] == model.PackageRequest(name="busybox")
    assert (prof.packages[1].requirement, prof.packages[1].features, prof.packages[1].architectures) == \
        ("^7", ("syntax",), ("x86_64",))
    assert [p.name for p in prof.packages_for("aarch64")] == ["busybox"]
    assert prof.kernel == model.Kernel(package="linux-lts", cmdline="quiet") and prof.init == "init"
    assert prof.hostname == "box" and prof.drivers == ("virtio-blk",) and prof.capabilities == ("network",)
    (user,) = prof.users
    assert (user.name, user.uid, user.groups, user.home, user.password_hash, user.gecos) == \
        ("alice", 1001, ("wheel",), "/home/alice", "!", "Alice")
    assert prof.files == "overlay" and prof.overlay == (tmp_path / "overlay").resolve()
    cd, disk = prof.outputs
    assert (cd.type, cd.name, cd.architectures) == ("iso", "cd", ("x86_64",))
    assert (disk.name, disk.architectures, disk.options["filesystem"]) == ("disk", ("x86_64", "aarch64"), "ext4")
    (test,) = prof.boot_tests
    assert test.outputs == ("cd",) and test.checks == {"hello": "echo hi"} and test.timeout == 60
    assert test.host_checks == (HttpCheck(port=8080, contains="hello"),
                                SshCheck(user="alice", command="id -un", output="alice", key="keys/id", timeout=30))
    assert prof.policy == model.Policy(denied_packages=("telnetd",), allowed_licenses=("MIT",),
                                       max_image_size="2G", max_size_growth="10%", allow_setuid=False,
                                       kernel_change_requires_ack=True)


def test_defaults_when_nothing_optional_is_written(tmp_path: Path) -> None:
    p = write(tmp_path, "name: tiny\narchitectures: [x86_64]\nrepositories:\n"
                        "  - {name: m, url: ../r, root: root.json}\npackages: [busybox]\noutputs:\n  - type: rootfs\n")
    prof = load_profile(p)
    assert prof.kernel.package is None and prof.kernel.package_name == "linux" and prof.kernel.cmdline is None
    assert prof.users == () and prof.boot_tests == () and prof.policy == model.Policy() and prof.files is None
    assert prof.to_dict() == yaml.safe_load(p.read_text())


def test_a_profile_at_a_commit_names_that_commit_and_skips_host_files(tmp_path: Path) -> None:
    data = FULL.replace("files: overlay\n", "files: gone\n").replace("root: root.json", "root: absent.json").encode()
    prof = profile_of(textwrap.dedent(data.decode()).lstrip("\n").encode(), tmp_path / "p.yaml",
                      origin="profiles/p.yaml@0123456789ab", files=False)
    assert isinstance(prof, Profile) and prof.overlay is None and prof.files == "gone"
    with pytest.raises(UserError, match=r"profiles/p.yaml@0123456789ab:\d+:\d+: \$.hostname"):
        profile_of(b"name: x\narchitectures: [x86_64]\nrepositories: []\npackages: []\noutputs: []\nhostname: [1]\n",
                   tmp_path / "p.yaml", origin="profiles/p.yaml@0123456789ab", files=False)
