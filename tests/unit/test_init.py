"""`vcomp init` (composer/scaffold): the file set, where the keys go, the project's own repository, the first
commit, and the refusals (a non-empty directory, --force outside a git repository, a missing upstream)."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest

from composer import project
from composer.cli.main import main
from composer.errors import UserError
from composer.package.recipe import load_recipe
from composer.profile.load import load_profile
from composer.scaffold.create import InitOptions, check_target, init_project, project_name, render, upstream_paths
from tests.conftest import REPO

UPSTREAM_ROOT = REPO / "profiles" / "trust" / "sample-root.json"


def _init(tmp: Path, directory: Path, **kw: object) -> int:
    argv = ["init", str(directory), "--upstream", "http://127.0.0.1:8080", "--upstream-root", str(UPSTREAM_ROOT),
            "--offline-keys", str(tmp / "offline"), "--arch", "x86_64"]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    return main(argv)


def test_init_makes_a_working_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    top = tmp_path / "My OS"
    assert _init(tmp_path, top) == 0
    said = capsys.readouterr().out
    assert "created my-os in" in said and "\n  vcomp test " in said and "git: first commit" in said
    for rel in ("vcomp.toml", "profiles/my-os.yaml", "recipes/hello/recipe.toml", "recipes/hello/src/hello.c",
                ".gitignore", ".github/workflows/vcomp.yml", "README.md", "schemas/profile.schema.json",
                "trust/upstream-root.json", "trust/my-os-root.json", "repo/repo.toml", "keys/developer.key",
                "keys/developer.pub", "keys/index.key", "keys/snapshot.key", "keys/timestamp.key"):
        assert (top / rel).is_file(), rel
    config = project.load(top / "vcomp.toml")
    assert config.profile == top / "profiles/my-os.yaml" and config.images == top / "images"
    assert [r.name for r in config.repositories] == ["upstream", "my-os"]
    profile = load_profile(top / "profiles/my-os.yaml")
    assert profile.architectures == ("x86_64",) or list(profile.architectures) == ["x86_64"]
    assert load_recipe(top / "recipes/hello", "x86_64").name == "hello"
    assert (top / "profiles/my-os.yaml").read_text().startswith(
        "# yaml-language-server: $schema=../schemas/profile.schema.json\n")


def test_offline_keys_stay_outside_and_private_keys_out_of_git(tmp_path: Path) -> None:
    top = tmp_path / "os"
    assert _init(tmp_path, top) == 0
    assert sorted(p.name for p in (tmp_path / "offline").iterdir()) == ["root.key", "root.pub", "targets.key",
                                                                        "targets.pub"]
    assert not list(top.rglob("root.key")) and not list(top.rglob("targets.key"))
    repo = git.Repo(top)
    committed = {e.path for e in repo.head.commit.tree.traverse()}  # type: ignore[union-attr]
    assert "vcomp.toml" in committed and "keys/developer.pub" in committed and "trust/os-root.json" in committed
    assert not any(p.endswith(".key") for p in committed)
    assert not any(p.startswith("repo/") for p in committed)
    assert not repo.is_dirty(untracked_files=True) or all(
        p.endswith(".key") or p.startswith("repo/") for p in repo.untracked_files)


def test_the_own_repository_delegates_the_projects_names_to_the_developer(tmp_path: Path) -> None:
    top = tmp_path / "os"
    assert _init(tmp_path, top) == 0
    newest = max((top / "repo" / "metadata").glob("*.targets.json"), key=lambda p: int(p.name.split(".")[0]))
    targets = json.loads(newest.read_text())
    roles = {r["name"]: r for r in targets["signed"]["delegations"]["roles"]}
    assert roles["developer"]["paths"] == ["packages/hello/*", "packages/os-*/*"]
    dev = main(["key", "id", str(top / "keys/developer.pub")])
    assert dev == 0
    assert json.loads((top / "trust/os-root.json").read_text())["signed"]["_type"] == "root"


def test_a_non_empty_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    top = tmp_path / "os"
    top.mkdir()
    (top / "notes.txt").write_text("mine\n")
    assert _init(tmp_path, top) == 1
    assert "is not empty (notes.txt)" in capsys.readouterr().err
    assert _init(tmp_path, top, force=True) == 1
    assert "not a git repository" in capsys.readouterr().err
    assert sorted(p.name for p in top.iterdir()) == ["notes.txt"]
    assert not (tmp_path / "offline").exists()


def test_force_adds_to_an_existing_git_repository_without_overwriting(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    top = tmp_path / "os"
    git.Repo.init(top)
    (top / "LICENSE").write_text("MIT\n")
    assert _init(tmp_path, top, force=True) == 0
    assert "git: first commit" in capsys.readouterr().out
    assert (top / "LICENSE").read_text() == "MIT\n"
    with pytest.raises(UserError, match=r"already has vcomp\.toml"):
        check_target(top, ["vcomp.toml"], force=True)


def test_the_upstream_is_required_with_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "os")]) == 1
    err = capsys.readouterr().err
    assert "vcomp init needs --upstream URL-OR-DIR and --upstream-root ROOT.json" in err
    assert not (tmp_path / "os").exists()


def test_existing_offline_keys_are_never_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "offline").mkdir()
    (tmp_path / "offline" / "root.key").write_text("precious\n")
    assert _init(tmp_path, tmp_path / "os") == 1
    assert "offline keys already exist" in capsys.readouterr().err
    assert (tmp_path / "offline" / "root.key").read_text() == "precious\n"
    assert not (tmp_path / "os").exists()


@pytest.mark.parametrize(("given", "name"), [("My OS!", "my-os"), ("--", "myos"), ("edge_2", "edge-2")])
def test_project_names_are_sanitized(given: str, name: str) -> None:
    assert project_name(given) == name


def test_upstream_paths(tmp_path: Path) -> None:
    assert upstream_paths("https://pkgs.example/v", tmp_path) == ("https://pkgs.example/v",) * 2
    assert upstream_paths(str(tmp_path / "mirror"), tmp_path) == ("mirror", "../mirror")
    assert upstream_paths("/srv/repo", tmp_path) == ("/srv/repo", "/srv/repo")


def test_render_is_pure_and_fills_every_placeholder() -> None:
    files = render(name="os", arches=["x86_64", "aarch64"], upstream_toml="u", upstream_yaml="../u", offline="/o")
    assert files == render(name="os", arches=["x86_64", "aarch64"], upstream_toml="u", upstream_yaml="../u",
                           offline="/o")
    assert 'architectures = ["x86_64", "aarch64"]' in files["recipes/hello/recipe.toml"]
    assert "architectures: [x86_64, aarch64]" in files["profiles/os.yaml"]
    assert all("$name" not in text and "${" not in text for text in files.values())
    readme = files["README.md"]
    assert "--arch x86_64 --key" in readme and "--arch aarch64 --key" in readme


def test_init_library_refuses_before_writing(tmp_path: Path) -> None:
    options = InitOptions(directory=tmp_path / "os", name="os", upstream="http://h", upstream_root=tmp_path / "no.json",
                          offline_keys=tmp_path / "offline", arches=("x86_64",))
    with pytest.raises(UserError, match="no.json"):
        init_project(options)
    assert not (tmp_path / "os").exists()
