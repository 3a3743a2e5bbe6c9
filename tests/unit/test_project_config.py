"""vcomp.toml (composer/project.py, composer/cli/defaults.py): discovery, parsing errors with file:line:column,
paths relative to the file, and the command line winning over the defaults."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer import project, settings
from composer.cli import defaults
from composer.cli.main import build_parser, main
from composer.errors import UserError

CONFIG = """\
[project]
profile = "profiles/myos.yaml"
images = "out/images"
cache = ".vcomp/cache"

[[repositories]]
name = "upstream"
url = "http://127.0.0.1:8080"
root = "trust/upstream-root.json"

[[repositories]]
name = "own"
url = "repo"
root = "trust/own-root.json"
"""


def _write(where: Path, text: str = CONFIG) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / "vcomp.toml").write_text(text)
    return where / "vcomp.toml"


def _args(tmp: Path, *argv: str) -> argparse.Namespace:
    args = build_parser().parse_args(list(argv))
    defaults.apply(args, tmp)
    return args


@pytest.fixture(autouse=True)
def _no_project_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("VCOMP_CONFIG", raising=False)
    yield
    settings.use_project_cache(None)


# ----------------------------------------------------------------- discovery

def test_found_in_the_directory_or_a_parent(tmp_path: Path) -> None:
    path = _write(tmp_path / "os")
    deep = tmp_path / "os" / "profiles" / "more"
    deep.mkdir(parents=True)
    assert project.find(tmp_path / "os") == path
    assert project.find(deep) == path
    assert project.find(tmp_path) is None


def test_discovery_stops_at_the_git_work_tree_top(tmp_path: Path) -> None:
    _write(tmp_path)                        # above the repository: not this project's
    (tmp_path / "os" / ".git").mkdir(parents=True)
    (tmp_path / "os" / "sub").mkdir()
    assert project.find(tmp_path / "os" / "sub") is None
    inside = _write(tmp_path / "os")        # at the top of the work tree: found
    assert project.find(tmp_path / "os" / "sub") == inside


def test_config_option_and_variable_override_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "os")
    other = _write(tmp_path / "other", '[project]\nprofile = "p.yaml"\n')
    args = build_parser().parse_args(["--config", str(other), "build"])
    assert defaults.config_path(args, tmp_path / "os") == other
    monkeypatch.setenv("VCOMP_CONFIG", str(other))
    assert defaults.config_path(build_parser().parse_args(["build"]), tmp_path / "os") == other


# ----------------------------------------------------------------- parsing

def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    found = project.load(_write(tmp_path / "os"))
    base = tmp_path / "os"
    assert found.profile == base / "profiles/myos.yaml"
    assert found.images == base / "out/images"
    assert found.cache == base / ".vcomp/cache"
    assert found.repository("upstream") is not None
    assert found.repository("upstream").url == "http://127.0.0.1:8080"   # type: ignore[union-attr]
    own = found.repository("own")
    assert own is not None and own.url == str(base / "repo") and own.root == base / "trust/own-root.json"


def test_an_empty_file_configures_nothing(tmp_path: Path) -> None:
    found = project.load(_write(tmp_path, ""))
    assert (found.profile, found.images, found.cache, found.repositories) == (None, None, None, ())


def test_an_unknown_key_names_its_place_and_the_close_key(tmp_path: Path) -> None:
    path = _write(tmp_path, '[project]\nprofile = "a.yaml"\n  imagse = "x"\n')
    with pytest.raises(UserError) as exc:
        project.load(path)
    assert exc.value.message.startswith(f"{path}:3:3: $.project: unknown field 'imagse'")
    assert "did you mean 'images'?" in exc.value.message


def test_every_error_at_once_with_its_place(tmp_path: Path) -> None:
    text = '[project]\nprofile = 3\n\n[[repositories]]\nname = "Bad Name"\nurl = "x"\n'
    path = _write(tmp_path, text)
    with pytest.raises(UserError) as exc:
        project.load(path)
    message = exc.value.message
    assert f"{path}:2:1: $.project.profile: 3 is not of type 'string'" in message
    assert f"{path}:4:1: $.repositories[0]: missing required field 'root'" in message
    assert f"{path}:5:1: $.repositories[0].name: 'Bad Name' is not valid" in message


def test_invalid_toml_names_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, '[project]\nprofile = "a.yaml\n')
    with pytest.raises(UserError) as exc:
        project.load(path)
    assert exc.value.message.startswith(f"{path}:2:")
    assert "invalid TOML" in exc.value.message


def test_a_repository_name_twice_is_an_error(tmp_path: Path) -> None:
    one = '[[repositories]]\nname = "a"\nurl = "r"\nroot = "t.json"\n'
    path = _write(tmp_path, one + "\n" + one)
    with pytest.raises(UserError, match=r":7:1: \$\.repositories\[1\]\.name: 'a' is used twice"):
        project.load(path)


def test_a_document_too_deep_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCOMP_LIMIT_MAX_DEPTH", "2")
    with pytest.raises(UserError, match="max_depth|deeper|depth"):
        project.load(_write(tmp_path, '[project]\nx = {a = {b = 1}}\n'))


def test_a_missing_config_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such project configuration"):
        project.load(tmp_path / "nope.toml")


# ----------------------------------------------------------------- the CLI applies the defaults

def test_the_profile_and_images_come_from_the_project(tmp_path: Path) -> None:
    _write(tmp_path)
    args = _args(tmp_path, "build")
    assert (args.profile, args.images) == ("profiles/myos.yaml", "out/images")
    assert _args(tmp_path, "lock").profile == ["profiles/myos.yaml"]
    assert _args(tmp_path, "validate").profile == ["profiles/myos.yaml"]
    assert _args(tmp_path / "deeper", "plan").profile == [str(tmp_path / "profiles/myos.yaml")]


def test_the_command_line_wins(tmp_path: Path) -> None:
    _write(tmp_path)
    args = _args(tmp_path, "build", "other.yaml", "--images", "elsewhere")
    assert (args.profile, args.images) == ("other.yaml", "elsewhere")
    assert _args(tmp_path, "lock", "--update", "hello", "x/p.yaml").profile == []  # the profile is in --update
    assert _args(tmp_path, "lock", "--update", "hello").profile == ["profiles/myos.yaml"]
    explicit = _args(tmp_path, "search", "x", "--repo", "http://h:1", "--root", "r.json")
    assert (explicit.repo, explicit.root) == ("http://h:1", "r.json")


def test_repositories_by_default_or_by_name(tmp_path: Path) -> None:
    _write(tmp_path)
    first = _args(tmp_path, "search", "x")
    assert (first.repo, first.root) == ("http://127.0.0.1:8080", str(tmp_path / "trust/upstream-root.json"))
    named = _args(tmp_path, "info", "hello", "--repo", "own")
    assert (named.repo, named.root) == (str(tmp_path / "repo"), str(tmp_path / "trust/own-root.json"))


def test_without_a_project_the_usage_errors_stay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".git").mkdir()
    for argv, missing in ((["build"], "profile"), (["validate"], "profile"), (["search", "x"], "--repo, --root"),
                          (["fetch", "x", "--out", "o", "--repo", "http://h"], "--root")):
        args = build_parser().parse_args(argv)
        with pytest.raises(UserError) as exc:
            defaults.apply(args, tmp_path)
        assert exc.value.message == f"vcomp {argv[0]}: the following arguments are required: {missing}"


def test_the_project_cache_applies_unless_vcomp_cache_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path)
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "mine"))
    _args(tmp_path, "build")
    assert settings.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("VCOMP_CACHE")
    assert settings.cache_dir() == tmp_path / ".vcomp/cache"


def test_a_broken_config_is_an_error_of_the_verb_not_of_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "[projcet]\n")
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 1
    assert "unknown field 'projcet' (did you mean 'project'?)" in capsys.readouterr().err
    assert defaults.apply(build_parser().parse_args(["help"]), tmp_path) is None


def _sample_profile(where: Path) -> Path:
    import shutil

    from tests.conftest import REPO
    shutil.copytree(REPO / "profiles", where / "profiles", ignore=shutil.ignore_patterns("*.lock"))
    return where / "profiles" / "minimal.yaml"


def test_without_configured_repositories_a_profiles_repositories_serve(tmp_path: Path) -> None:
    profile = _sample_profile(tmp_path)
    (tmp_path / ".git").mkdir()
    given = _args(tmp_path, "search", "x", "--profile", str(profile))
    assert given.repo == (tmp_path / "images" / "repo").as_uri()
    assert given.root == str(tmp_path / "profiles" / "trust" / "sample-root.json")
    _write(tmp_path, '[project]\nprofile = "profiles/minimal.yaml"\n')
    assert _args(tmp_path, "info", "busybox", "--repo", "sample").repo == given.repo  # the configured profile's
    with pytest.raises(UserError, match="no repository named 'smaple'; did you mean 'sample'"):
        _args(tmp_path, "info", "busybox", "--repo", "smaple")
