"""Packages found by their version's text form (issue 14, design14 sections 1.1 and 1.4), end to end over HTTP.

A Debian-scheme ``1:2.36-9+deb12u7`` (epoch: ``%3a`` in its path), a ``1.0~rc1-1`` (``~``) and a native
``1:1.2.3-r4`` are built, published into a real repository (``tests/repo_fixtures.py``), served over loopback
HTTP (``serve_in_thread``, what ``vcomp repo serve`` runs), locked with ``vcomp lock``, checked with
``vcomp lock --check``, fetched through python-tuf and installed into a root whose database records the same
text forms (a reconcile against the lock then finds nothing to do).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.package.build import build
from composer.pkgmgr import db
from composer.pkgmgr.install import fetch_locked, install
from composer.pkgmgr.ops import reconcile_changes
from composer.profile.load import load_profile
from composer.repo import edit
from composer.repo.serve import serve_in_thread
from composer.solve.lock import lock_path, open_sources, read_lock
from composer.version import FullVersion, semver_projection
from tests.conftest import write_recipe
from tests.repo_fixtures import ARCH, Repo

pytestmark = pytest.mark.integration

RECIPE = """
[package]
name = "{name}"
version = "{semver}"
{extra}
description = "{name}: a package named by its text form"
authors = ["Repo Tester"]
license = "MIT"
type = "library"

[security]
context = "system_t"

[[source]]
kind = "tree"
path = "files"
"""

# name -> (text form, scheme)
PACKAGES = {"libepoch": ("1:2.36-9+deb12u7", "deb"), "libtilde": ("1.0~rc1-1", "deb"),
            "libnative": ("1:1.2.3-r4", "semver")}


def _recipe(base: Path, name: str, text: str, scheme: str) -> Path:
    v = FullVersion.parse(text, scheme)
    semver = str(v.upstream) if scheme == "semver" else str(semver_projection(str(v.upstream)))
    extra = [f"epoch = {v.epoch}"] if v.epoch else []
    extra += [f'revision = "{v.revision}"'] if v.revision else []
    extra += [f'upstream-version = "{text}"', 'version-scheme = "deb"'] if scheme == "deb" else []
    return write_recipe(base / name, RECIPE.format(name=name, semver=semver, extra="\n".join(extra)),
                        {f"files/usr/lib/{name}/VERSION": f"{text}\n"})


@pytest.fixture()
def served(repo: Repo, tmp_path: Path) -> Iterator[str]:
    built = [build(_recipe(tmp_path / "recipes", n, t, s), ARCH, repo.keys.alice, tmp_path / "out",
                   cache=tmp_path / "cache").path for n, (t, s) in PACKAGES.items()]
    edit.add(repo.store, built, [repo.keys.alice])
    edit.publish(repo.store)
    server, url = serve_in_thread(repo.dir)
    yield url
    server.shutdown()
    server.server_close()


def test_text_forms_lock_fetch_and_install_over_http(repo: Repo, served: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "vcache"))
    d = tmp_path / "profile"
    d.mkdir()
    (d / "root.json").write_bytes(repo.root_bytes)
    profile = d / "p.yaml"
    profile.write_text(f"name: texts\narchitectures: [{ARCH}]\nrepositories:\n"
                       f"  - {{name: main, url: '{served}', root: root.json}}\n"
                       f"packages: [{', '.join(PACKAGES)}]\noutputs:\n  - type: rootfs\n")
    assert main(["lock", str(profile)]) == 0
    doc = json.loads(lock_path(profile).read_bytes())
    assert doc["format"] == 2
    rows = {r["name"]: r for r in doc["architectures"][ARCH]}
    assert {n: (r["version"], r.get("version-scheme", "semver")) for n, r in rows.items()} == PACKAGES
    assert main(["lock", "--check", str(profile)]) == 0   # missing_packages and the check find them by text

    lock = read_lock(lock_path(profile))
    assert lock is not None
    prof = load_profile(profile)
    sources = open_sources(prof, tmp_path / "vcache" / "repos")
    served_names = {p.name.split(".", 1)[1] for p in (repo.dir / "targets" / "packages").glob("lib[entn]*/*")}
    assert served_names >= {"libepoch-1%3a2.36-9+deb12u7-x86_64.vpk", "libtilde-1.0~rc1-1-x86_64.vpk",
                            "libnative-1%3a1.2.3-r4-x86_64.vpk"}  # on the server's disk, one URL segment each
    fetched = fetch_locked(sources, lock.packages(ARCH), ARCH)   # python-tuf joins the URLs: %253a, +, ~
    assert sorted(f.locked.name for f in fetched) == sorted(PACKAGES)
    root = tmp_path / "root"
    digest = hashlib.sha256(lock_path(profile).read_bytes()).hexdigest()
    install(root, fetched, profile_digest=prof.digest, lock_digest=digest, epoch=0)
    assert (root / "usr/lib/libepoch/VERSION").read_text() == "1:2.36-9+deb12u7\n"
    database = db.load(root)
    assert {n: r["version"] for n, r in database.packages.items()} == {n: t for n, (t, _) in PACKAGES.items()}
    assert reconcile_changes(database, lock.packages(ARCH)) == []
