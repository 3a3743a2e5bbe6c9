"""The package manager on a root built from a profile: transactions, config files, rollback, crashes, reconcile."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from composer.cli.main import main
from composer.package.build import build
from composer.repo.client import RepositoryClient
from composer.repo.deltas import write_deltas
from composer.repo.edit import add, publish
from composer.repo.index import IndexEntry
from composer.repo.store import RepoStore
from composer.trust.keys import load_signing_key
from tests.conftest import REPO

pytestmark = pytest.mark.integration

KEYS = REPO / "keys" / "sample"
PROFILE = """name: box
architectures: [x86_64]
repositories:
  - name: sample
    url: ../images/repo
    root: trust/sample-root.json
packages: [base-files, busybox, init, motd, nano]
drivers: [virtio-blk]
kernel: {package: linux, cmdline: quiet}
init: init
hostname: box
outputs:
  - type: rootfs
"""
RECIPE = """[package]
name = "motd"
version = "{version}"
description = "message of the day (a test package with config files)"
authors = ["tests"]
license = "MIT"
type = "application"
arch = "noarch"

[security]
context = "etc_t"

[files]
config = ["etc/**"]

[[source]]
kind = "tree"
path = "files"
"""


def make_motd(work: Path, version: str, motd: str, extra: str | None = None) -> Path:
    d = work / f"motd-{version}"
    (d / "files" / "etc" / "motd.d").mkdir(parents=True)
    (d / "files" / "usr" / "share" / "motd").mkdir(parents=True)
    (d / "recipe.toml").write_text(RECIPE.format(version=version))
    (d / "files" / "etc" / "motd").write_text(motd)
    (d / "files" / "etc" / "motd.d" / "keep").write_text("the same in every version\n")
    (d / "files" / "usr" / "share" / "motd" / "banner").write_text(f"banner {version}\n")
    if extra:
        (d / "files" / "usr" / "share" / "motd" / "extra").write_text(extra)
    built = build(d, "x86_64", load_signing_key(KEYS / "INSECURE-SAMPLE-developer.key"), work / "out")
    return built.path


def publish_packages(repo: Path, packages: list[Path]) -> None:
    store = RepoStore(repo)
    add(store, packages, [load_signing_key(KEYS / "INSECURE-SAMPLE-developer.key")])
    publish(store)


def tree(root: Path) -> dict[str, Any]:
    """Everything but the database: type, mode, content or link target of every path."""
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if rel.startswith("var/lib/vpk"):
                continue
            st = p.lstat()
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", oct(st.st_mode))
            else:
                out[rel] = ("file", oct(st.st_mode), hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def records(root: Path) -> dict[str, Any]:
    return dict(json.loads((root / "var/lib/vpk/db.json").read_bytes())["packages"])


class Site:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.profile = base / "profiles" / "box.yaml"
        self.repo = base / "images" / "repo"
        self.pristine = base / "pristine"

    def fresh_root(self, dest: Path) -> Path:
        shutil.copytree(self.pristine, dest, symlinks=True)
        return dest


@pytest.fixture(scope="module")
def site(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Site:
    """A copy of the sample repository with motd 1.0.0, a profile using it, and its root (rootfs output)."""
    base = tmp_path_factory.mktemp("pkgroot")
    s = Site(base)
    (base / "profiles" / "trust").mkdir(parents=True)
    shutil.copy(REPO / "profiles" / "trust" / "sample-root.json", base / "profiles" / "trust")
    shutil.copytree(sample_repo_base / "images" / "repo", s.repo, symlinks=True)
    publish_packages(s.repo, [make_motd(base / "work", "1.0.0", "hello from 1.0\n")])
    s.profile.write_text(PROFILE)
    old = Path.cwd()
    os.chdir(base)
    try:
        assert main(["lock", "profiles/box.yaml"]) == 0
        assert main(["build", "profiles/box.yaml", "--images", str(base / "out")]) == 0
    finally:
        os.chdir(old)
    with tarfile.open(base / "out" / "box" / "x86_64" / "rootfs.tar") as tar:
        tar.extractall(s.pristine, filter="fully_trusted")  # our own tar: keep the sticky bits
    # the build records the profile's relative URL (reproducible images); the root's package manager never
    # resolves it against the current directory: record the absolute location once
    assert main(["pkg", "--root", str(s.pristine), "repo-url", "sample", str(s.repo)]) == 0
    # the next version: /etc/motd changes, /etc/motd.d/keep does not, a new file appears
    publish_packages(s.repo, [make_motd(base / "work", "1.1.0", "hello from 1.1\n", extra="new in 1.1\n")])
    return s


def vcomp(site: Site, *args: str) -> int:
    old = Path.cwd()
    os.chdir(site.base / "profiles")  # the root's repositories.json has the profile's relative URL
    try:
        return main(list(args))
    finally:
        os.chdir(old)


def test_remove_then_install_gives_the_same_root(site: Site, tmp_path: Path) -> None:
    root = site.fresh_root(tmp_path / "root")
    before, recs = tree(root), records(root)
    assert vcomp(site, "pkg", "--root", str(root), "remove", "nano") == 0
    assert not (root / "bin" / "nano").exists()
    assert vcomp(site, "pkg", "--root", str(root), "install", "nano") == 0
    assert tree(root) == before and records(root) == recs


def test_install_below_a_planted_symlink_writes_nothing_outside_the_root(site: Site, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11, finding 1: ``ln -s /somewhere R/usr/share/nano`` then ``install nano`` wrote 43 files there."""
    root = site.fresh_root(tmp_path / "root")
    assert vcomp(site, "pkg", "--root", str(root), "remove", "nano") == 0
    somewhere = tmp_path / "somewhere"
    somewhere.mkdir()
    (somewhere / "keep").write_text("mine\n")
    (root / "usr" / "share" / "nano").symlink_to(somewhere)
    before, recs, outside = tree(root), records(root), tree(somewhere)
    capsys.readouterr()
    assert vcomp(site, "pkg", "--root", str(root), "install", "nano") == 1
    err = capsys.readouterr().err
    assert "'usr/share/nano' is a symlink" in err.splitlines()[0] and "Traceback" not in err
    assert tree(somewhere) == outside and sorted(p.name for p in somewhere.iterdir()) == ["keep"]
    assert tree(root) == before and records(root) == recs
    assert not (root / "var/lib/vpk/staging").exists()


def test_a_transaction_that_would_break_a_dependency_is_refused(site: Site, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    root = site.fresh_root(tmp_path / "root")
    before = tree(root)
    capsys.readouterr()
    assert vcomp(site, "pkg", "--root", str(root), "remove", "libtinfo6") == 1
    err = capsys.readouterr().err
    assert "nano" in err and "libtinfo6" in err
    assert vcomp(site, "pkg", "--root", str(root), "remove", "telnetd") == 1
    assert "'telnetd' is not installed" in capsys.readouterr().err
    assert tree(root) == before


def test_upgrade_and_rollback_return_to_identical_states(site: Site, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = site.fresh_root(tmp_path / "root")
    before, recs = tree(root), records(root)
    assert vcomp(site, "pkg", "--root", str(root), "upgrade", "--dry-run", "motd") == 0   # a dry run succeeded
    assert tree(root) == before
    assert vcomp(site, "pkg", "--root", str(root), "upgrade", "motd") == 0
    capsys.readouterr()
    upgraded, upgraded_recs = tree(root), records(root)
    assert records(root)["motd"]["version"] == "1.1.0"
    assert (root / "etc" / "motd").read_text() == "hello from 1.1\n"  # unchanged by the admin: replaced
    assert (root / "usr/share/motd/extra").is_file()
    assert vcomp(site, "pkg", "--root", str(root), "rollback") == 0
    assert tree(root) == before and records(root) == recs
    shown = capsys.readouterr().out.splitlines()  # a one-package upgrade rolled back: that package alone
    changed = [line for line in shown if line[:2] in ("+ ", "- ", "~ ")]
    assert changed == ["~ motd 1.1.0 -> 1.0.0 (downgrade, requested)"]
    assert vcomp(site, "pkg", "--root", str(root), "rollback") == 0  # the rollback itself is undone
    assert tree(root) == upgraded and records(root) == upgraded_recs
    history = json.loads((root / "var/lib/vpk/history.json").read_text())
    assert [h["operation"] for h in history] == ["install", "upgrade", "rollback of 2", "rollback of 3"]
    assert [len(h["packages"]) for h in history[1:]] == [1, 1, 1]
    typed = f"vcomp pkg --root {root}"
    assert [h.get("command") for h in history] == [None, f"{typed} upgrade motd", f"{typed} rollback",
                                                   f"{typed} rollback"]
    assert history[0]["time"] < 1_750_000_000 < min(h["time"] for h in history[1:])  # build: SOURCE_DATE_EPOCH


def test_an_upgrade_downloads_a_package_delta_when_the_repository_has_one(
        site: Site, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/updates/deltas.md: motd 1.1.0 is rebuilt from the cached 1.0.0 and the delta, verified against its
    signed hash. A cache of its own holding motd 1.0.0 only (the session's has 1.1.0 from other tests)."""
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "cache"))
    client = RepositoryClient(str(site.repo), (site.base / "profiles" / "trust" / "sample-root.json").read_bytes(),
                              tmp_path / "cache" / "repos")
    client.fetch(client.metadata("motd", "x86_64", "1.0.0"))
    store = RepoStore(site.repo)
    motd = [e for e in (IndexEntry.from_dict(d) for d in store.read_state()["packages"].values()) if e.name == "motd"]
    made = write_deltas(store, motd)
    try:
        assert [d.size > 0 for d in made] == [True]
        root = site.fresh_root(tmp_path / "root")
        caplog.set_level(logging.INFO, logger="composer.repo.client")
        assert vcomp(site, "pkg", "--root", str(root), "upgrade", "motd") == 0
        assert any("rebuilt from a" in r.getMessage() and "motd" in r.getMessage() for r in caplog.records)
        assert records(root)["motd"]["version"] == "1.1.0"
        assert (root / "usr/share/motd/extra").read_text() == "new in 1.1\n"
    finally:
        shutil.rmtree(site.repo / "targets" / "deltas")   # the other tests download in full


def test_config_files_follow_the_dpkg_rules(site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # changed by the admin, unchanged in the package: kept; changed in both: kept + .vpk-new
    root = site.fresh_root(tmp_path / "a")
    (root / "etc/motd.d/keep").write_text("mine\n")
    (root / "etc/motd").write_text("admin's motd\n")
    capsys.readouterr()
    assert vcomp(site, "pkg", "--root", str(root), "upgrade", "motd") == 0
    out = capsys.readouterr().out
    assert (root / "etc/motd.d/keep").read_text() == "mine\n" and not (root / "etc/motd.d/keep.vpk-new").exists()
    assert (root / "etc/motd").read_text() == "admin's motd\n"
    assert (root / "etc/motd.vpk-new").read_text() == "hello from 1.1\n"
    assert "/etc/motd.vpk-new" in out
    # removal: a changed config file is kept as .vpk-save; --purge removes it
    root = site.fresh_root(tmp_path / "b")
    (root / "etc/motd").write_text("admin's motd\n")
    assert vcomp(site, "pkg", "--root", str(root), "remove", "motd") == 0
    assert (root / "etc/motd.vpk-save").read_text() == "admin's motd\n" and not (root / "etc/motd").exists()
    assert not (root / "etc/motd.d").exists() and not (root / "usr/share/motd").exists()
    root = site.fresh_root(tmp_path / "c")
    (root / "etc/motd").write_text("admin's motd\n")
    assert vcomp(site, "pkg", "--root", str(root), "remove", "--purge", "motd") == 0
    assert not (root / "etc/motd.vpk-save").exists() and not (root / "etc/motd").exists()


def test_queries_and_verify(site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = site.fresh_root(tmp_path / "root")
    capsys.readouterr()
    assert vcomp(site, "pkg", "--root", str(root), "owns", "/usr/bin/nano") == 0
    assert "/usr/bin/nano: nano" in capsys.readouterr().out
    assert vcomp(site, "pkg", "--root", str(root), "owns", "/no/such") == 1
    assert "no package owns /no/such" in capsys.readouterr().err
    assert vcomp(site, "pkg", "--root", str(root), "rdepends", "libtinfo6", "--json") == 0
    assert {d["package"] for d in json.loads(capsys.readouterr().out)["dependents"]} >= {"nano"}
    assert vcomp(site, "pkg", "--root", str(root), "list", "--auto") == 0
    assert "libtinfo6" in capsys.readouterr().out
    assert vcomp(site, "pkg", "--root", str(root), "verify") == 0
    (root / "usr/share/motd/banner").write_text("changed by hand\n")
    capsys.readouterr()
    assert vcomp(site, "pkg", "--root", str(root), "verify") == 2
    assert "motd: changed /usr/share/motd/banner" in capsys.readouterr().out
    capsys.readouterr()
    assert vcomp(site, "pkg", "--root", str(tmp_path), "list") == 1
    assert "is not a root managed by vcomp" in capsys.readouterr().err
    doc = json.loads((root / "var/lib/vpk/db.json").read_text())
    (root / "var/lib/vpk/db.json").write_text(json.dumps({**doc, "format": 2}))
    assert vcomp(site, "pkg", "--root", str(root), "remove", "nano") == 1
    assert "database format 2 is newer than this vcomp understands" in capsys.readouterr().err
    assert (root / "bin" / "nano").exists()


@pytest.mark.parametrize("command", [["upgrade", "motd"], ["remove", "nano"]], ids=["upgrade", "remove"])
def test_crash_sweep_every_point_leaves_the_old_or_the_new_state(site: Site, tmp_path: Path,
                                                                 command: list[str]) -> None:
    pristine = site.fresh_root(tmp_path / "expected-old")
    old_tree, old_recs = tree(pristine), records(pristine)
    new = site.fresh_root(tmp_path / "expected-new")
    assert vcomp(site, "pkg", "--root", str(new), *command) == 0
    new_tree, new_recs = tree(new), records(new)
    outcomes = []
    point = 1
    while True:
        root = site.fresh_root(tmp_path / f"crash-{point}")
        env = {**os.environ, "VCOMP_TEST_CRASH_AT": str(point)}
        proc = subprocess.run([sys.executable, "-m", "composer", "pkg", "--root", str(root), *command],
                              cwd=site.base / "profiles", env=env, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            break
        assert proc.returncode == 137, proc.stderr
        assert (root / "var/lib/vpk/journal.json").exists() or records(root) == new_recs
        assert vcomp(site, "pkg", "--root", str(root), "recover") == 0  # so does every changing command
        state = "old" if (tree(root), records(root)) == (old_tree, old_recs) else \
            "new" if (tree(root), records(root)) == (new_tree, new_recs) else "INCONSISTENT"
        assert state != "INCONSISTENT", f"crash at point {point} left an inconsistent root"
        assert not (root / "var/lib/vpk/journal.json").exists()
        assert not (root / "var/lib/vpk/staging").exists()
        outcomes.append(state)
        shutil.rmtree(root)
        point += 1
    print(f"crash sweep of {' '.join(command)}: {len(outcomes)} crash points, "
          f"{outcomes.count('old')} rolled back, {outcomes.count('new')} finished")
    assert len(outcomes) >= 5 and outcomes[0] == "old" and outcomes[-1] == "new", outcomes


def test_reconcile_a_root_gives_the_same_bytes_as_a_fresh_build(site: Site, tmp_path: Path) -> None:
    root = site.fresh_root(tmp_path / "root")
    work = tmp_path / "w"
    shutil.copytree(site.base / "profiles", work / "profiles")
    (work / "images").mkdir()
    (work / "images" / "repo").symlink_to(site.repo)
    old = Path.cwd()
    os.chdir(work)
    try:
        assert main(["lock", "profiles/box.yaml", "--update", "motd"]) == 0
        lock = json.loads((work / "profiles" / "box.lock").read_text())
        assert next(p for p in lock["architectures"]["x86_64"] if p["name"] == "motd")["version"] == "1.1.0"
        assert main(["reconcile", "--root", str(root), "profiles/box.yaml"]) == 2
        assert main(["reconcile", "--root", str(root), "profiles/box.yaml"]) == 0
        assert main(["build", "profiles/box.yaml", "--images", str(tmp_path / "fresh")]) == 0
    finally:
        os.chdir(old)
    with tarfile.open(tmp_path / "fresh" / "box" / "x86_64" / "rootfs.tar") as tar:
        tar.extractall(tmp_path / "fresh-root", filter="fully_trusted")  # our own tar: keep the sticky bits
    assert tree(root) == tree(tmp_path / "fresh-root")
    assert records(root) == records(tmp_path / "fresh-root")
