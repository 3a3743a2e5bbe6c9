"""vpk on the device, the host side: the ``python-project`` source kind (recipes/vpk), the profile's
``repositories[].device-url`` and the ``vpk`` command line (docs/updates/vpk-on-device.md)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

import composer
from composer.cli import vpk
from composer.errors import ComposerError, UserError
from composer.limits import load_toml
from composer.package import projectsource
from composer.package.archive import read_header
from composer.package.build import build, recipe_inputs
from composer.package.debian import DebianArchive
from composer.package.recipe import load_recipe
from composer.profile.load import load_profile
from composer.repo import client
from composer.repo.debianset import closure_names, vpk_names
from composer.repo.sample import SampleCheckout
from composer.trust.keys import SigningKey
from tests.conftest import REPO, write_recipe
from tests.repo_fixtures import ARCH, Repo

RECIPE = """
    [package]
    name = "tool"
    version = "1.2.3"
    arch = "noarch"
    description = "a project's own Python package"
    license = "MIT"
    type = "application"

    [[source]]
    kind = "python-project"
    path = "{path}"
    dest = "usr/lib/python3/dist-packages/pkg"
"""


def project(tmp_path: Path) -> Path:
    """A project: pyproject.toml, a package with a subpackage, bytecode and hidden files, a recipe folder."""
    root = tmp_path / "proj"
    files = {"pyproject.toml": "[project]\nname = 'x'\n", "pkg/__init__.py": "", "pkg/a.py": "A = 1\n",
             "pkg/sub/__init__.py": "", "pkg/sub/b.py": "B = 2\n", "pkg/py.typed": "",
             "pkg/__pycache__/a.cpython-311.pyc": "junk", "pkg/.hidden": "x", "pkg/sub/c.pyc": "junk",
             "pkg/empty/.keep": "", "secret.txt": "not in the package"}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "pkg" / "run").write_text("#!/bin/sh\n")
    (root / "pkg" / "run").chmod(0o755)
    return root


def test_a_python_project_source_takes_the_package_without_bytecode_or_hidden_files(
        tmp_path: Path, dev_key: SigningKey) -> None:
    root = project(tmp_path)
    rdir = write_recipe(root / "recipes" / "tool", RECIPE.format(path="pkg"))
    built = build(rdir, "x86_64", dev_key, tmp_path / "out", cache=tmp_path / "cache")
    paths = {e.path for e in built.manifest.entries if e.type == "file"}
    prefix = "usr/lib/python3/dist-packages/pkg/"
    assert paths == {prefix + p for p in ("__init__.py", "a.py", "py.typed", "run", "sub/__init__.py", "sub/b.py")}
    assert {e.path: e.mode for e in built.manifest.entries}[prefix + "run"] == 0o755
    again = build(rdir, "x86_64", dev_key, tmp_path / "again", cache=tmp_path / "cache")
    assert again.path.read_bytes() == built.path.read_bytes()   # deterministic
    (source,) = read_header(built.path).metadata.to_dict()["provenance"]["sources"]
    assert source == {"kind": "python-project", "path": "pkg", "git-tree": git_tree(root, "pkg")}


def git_tree(root: Path, path: str) -> str:
    """What git says the tree of ``path`` is, once its files are committed (the .gitignore keeps caches out)."""
    (root / ".gitignore").write_text("__pycache__/\n*.pyc\n.hidden\n.keep\n")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(root)}
    for argv in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "x"]):
        subprocess.run(argv, cwd=root, env=env, check=True)
    return subprocess.run(["git", "rev-parse", f"HEAD:{path}"], cwd=root, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_the_git_tree_id_of_the_project_s_own_folder_matches_git_when_it_is_clean() -> None:
    clean = subprocess.run(["git", "status", "--porcelain", "--", "docs"], cwd=REPO, capture_output=True,
                           text=True)
    if clean.returncode != 0 or clean.stdout:
        pytest.skip("not a clean git checkout of docs/")
    tree = projectsource.scan(REPO / "recipes" / "vpk", {"path": "docs"}, "here")
    head = subprocess.run(["git", "rev-parse", "HEAD:docs"], cwd=REPO, capture_output=True, text=True)
    assert projectsource.tree_id(tree) == head.stdout.strip()


def test_the_build_cache_key_follows_the_project_source(tmp_path: Path, dev_key: SigningKey) -> None:
    root = project(tmp_path)
    rdir = write_recipe(root / "recipes" / "tool", RECIPE.format(path="pkg"))
    archive = DebianArchive(tmp_path / "cache")
    before = recipe_inputs(load_recipe(rdir, "x86_64"), archive, dev_key)
    (root / "pkg" / "__pycache__" / "new.pyc").write_text("bytecode does not count")
    assert recipe_inputs(load_recipe(rdir, "x86_64"), archive, dev_key) == before
    (root / "pkg" / "a.py").write_text("A = 2\n")
    assert recipe_inputs(load_recipe(rdir, "x86_64"), archive, dev_key) != before


@pytest.mark.parametrize(("path", "expect"), [
    ("..", "is not a directory inside the project"),
    ("secret.txt", "is not a directory inside the project"),
    ("missing", "is not a directory inside the project"),
])
def test_a_python_project_source_stays_in_its_project(tmp_path: Path, dev_key: SigningKey, path: str,
                                                       expect: str) -> None:
    rdir = write_recipe(project(tmp_path) / "recipes" / "tool", RECIPE.format(path=path))
    with pytest.raises(UserError, match=expect) as info:
        build(rdir, "x86_64", dev_key, tmp_path / "out", cache=tmp_path / "cache")
    assert "recipe.toml:" in info.value.message   # the place: the recipe's line


def test_a_link_out_of_the_project_is_refused(tmp_path: Path, dev_key: SigningKey) -> None:
    root = project(tmp_path)
    (root / "pkg" / "escape.py").symlink_to("/etc/hostname")
    rdir = write_recipe(root / "recipes" / "tool", RECIPE.format(path="pkg"))
    with pytest.raises(UserError, match="links outside the project"):
        build(rdir, "x86_64", dev_key, tmp_path / "out", cache=tmp_path / "cache")


def test_a_recipe_outside_any_project_is_refused(tmp_path: Path, dev_key: SigningKey) -> None:
    rdir = write_recipe(tmp_path / "lone" / "tool", RECIPE.format(path="pkg"))
    with pytest.raises(UserError, match="not inside a project"):
        build(rdir, "x86_64", dev_key, tmp_path / "out", cache=tmp_path / "cache")


def test_the_vpk_recipe_has_the_project_version_and_feeds_the_debian_closure() -> None:
    recipe = load_toml((REPO / "recipes" / "vpk" / "recipe.toml").read_bytes(), "recipe.toml")
    assert recipe["package"]["version"] == composer.__version__
    names = vpk_names(SampleCheckout(root=REPO))
    assert {"python3", "python3-cryptography", "python3-solv", "python3-tuf", "python3-yaml"} <= set(names)
    assert closure_names(SampleCheckout(root=REPO))[:3] == ("openssh-server", "python3", "nginx")
    assert set(names) <= set(closure_names(SampleCheckout(root=REPO)))


# ---------------------------------------------------------------- the profile: repositories[].device-url

PROFILE = """
    name: dev
    architectures: [x86_64]
    repositories:
      - name: m
        url: ../repo
        device-url: {device}
        root: root.json
    packages: [busybox]
    outputs:
      - type: rootfs
"""


def test_device_url_is_what_a_built_root_records(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(textwrap.dedent(PROFILE.format(device="http://10.0.2.2:8480/repo")))
    (tmp_path / "root.json").write_text("{}")
    (repo,) = load_profile(p).repositories
    assert repo.device_url == repo.recorded_url == "http://10.0.2.2:8480/repo"
    assert repo.url == (tmp_path / "../repo").resolve().as_uri()   # the build still reads the written one
    assert load_profile(p).to_dict() == yaml.safe_load(p.read_text())
    p.write_text(textwrap.dedent(PROFILE.replace("        device-url: {device}\n", "")))
    (repo,) = load_profile(p).repositories
    assert repo.device_url == "" and repo.recorded_url == "../repo"


@pytest.mark.parametrize("device", ["../repo", "/srv/repo", "10.0.2.2:8480/repo"])
def test_device_url_must_be_an_absolute_url(tmp_path: Path, device: str) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(textwrap.dedent(PROFILE.format(device=device)))
    (tmp_path / "root.json").write_text("{}")
    with pytest.raises(ComposerError, match=r"device-url"):
        load_profile(p)


# ---------------------------------------------------------------- the vpk command line

def test_vpk_works_on_slash_with_the_package_manager_s_verbs() -> None:
    parser = vpk.build_parser()
    for verb in ("install", "remove", "upgrade", "rollback", "list", "verify", "history", "info"):
        args = parser.parse_args([verb, "x"] if verb in ("install", "remove", "info") else [verb])
        assert args.pkg_root == "/" and args.program == "vpk", verb
    assert parser.parse_args(["--root", "/mnt", "list", "--json"]).pkg_root == "/mnt"
    assert parser.parse_args(["list", "--root", "/mnt"]).pkg_root == "/mnt"


def test_vpk_on_a_root_vcomp_did_not_build_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "cache"))
    assert vpk.main(["--root", str(tmp_path), "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path} is not a root managed by vcomp") and "Traceback" not in err


# ---------------------------------------------------------------- Debian 13's python-tuf 5.1 (no bootstrap)

def test_a_python_tuf_without_bootstrap_still_starts_from_the_pinned_root(
        repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    real = client.BucketedUpdater

    def updater_5(**kw: Any) -> Any:   # python-tuf < 6: the anchor is what metadata_dir/root.json holds
        assert "bootstrap" not in kw
        return real(**kw, bootstrap=(Path(kw["metadata_dir"]) / "root.json").read_bytes())
    monkeypatch.setattr(client, "BOOTSTRAP", False)
    monkeypatch.setattr(client, "BucketedUpdater", updater_5)
    assert repo.client().index(ARCH)
    cache = repo.tmp / "cache-1"
    planted = sorted(cache.rglob("root.json"))
    assert planted
    for path in planted:   # whatever root.json the cache holds, the pin is the anchor again
        path.write_text('{"signed": {"_type": "root"}}')
    again = client.RepositoryClient(repo.url, repo.root_bytes, cache)
    assert [e.name for e in again.index(ARCH)] == [e.name for e in repo.client().index(ARCH)]


PINNED = RECIPE + '    tree = "{tree}"\n'


def _files(built: Any) -> dict[str, tuple[int, str]]:
    return {e.path: (e.mode, e.sha256) for e in built.manifest.entries if e.type == "file"}


def test_a_pinned_tree_builds_the_committed_files_while_the_checkout_moves_on(
        tmp_path: Path, dev_key: SigningKey) -> None:
    """The package (and so every lock holding it) stays the same until the pin moves; built from the checkout
    while it matches the pin, else from git's objects, with the same bytes either way."""
    root = project(tmp_path)
    pin = git_tree(root, "pkg")
    rdir = write_recipe(root / "recipes" / "tool", PINNED.format(path="pkg", tree=pin))
    from_checkout = build(rdir, "x86_64", dev_key, tmp_path / "a", cache=tmp_path / "c1")
    (root / "pkg" / "a.py").write_text("A = 'moved on, not committed'\n")
    (root / "pkg" / "new.py").write_text("N = 1\n")
    archive = DebianArchive(tmp_path / "cache")
    assert recipe_inputs(load_recipe(rdir, "x86_64"), archive, dev_key) == recipe_inputs(
        load_recipe(rdir, "x86_64"), archive, dev_key)
    from_git = build(rdir, "x86_64", dev_key, tmp_path / "b", cache=tmp_path / "c2")
    assert from_git.path.read_bytes() == from_checkout.path.read_bytes()
    assert _files(from_git)["usr/lib/python3/dist-packages/pkg/run"][0] == 0o755
    (source,) = read_header(from_git.path).metadata.to_dict()["provenance"]["sources"]
    assert source == {"kind": "python-project", "path": "pkg", "git-tree": pin}


@pytest.mark.parametrize(("tree", "extra", "expect"), [
    ("0" * 40, "", "is not the checkout's .* nor in its git history"),
    ("xyz", "", r"\.tree: 'xyz' is not valid"),
    (None, 'include = ["*.py"]\n', "include/exclude cannot apply"),
])
def test_a_wrong_pin_is_one_error_naming_the_recipe(tmp_path: Path, dev_key: SigningKey, tree: str | None,
                                                    extra: str, expect: str) -> None:
    root = project(tmp_path)
    pin = git_tree(root, "pkg")
    (root / "pkg" / "a.py").write_text("A = 3\n")
    text = PINNED.format(path="pkg", tree=tree or pin) + (f"    {extra}" if extra else "")
    rdir = write_recipe(root / "recipes" / "tool", text)
    with pytest.raises(ComposerError, match=expect) as info:
        build(rdir, "x86_64", dev_key, tmp_path / "out", cache=tmp_path / "cache")
    assert "recipe.toml" in info.value.message
