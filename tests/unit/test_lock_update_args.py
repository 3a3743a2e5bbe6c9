"""`vcomp lock --update NAME... PROFILE` parses with the profile anywhere (issue 15, Deliver 5).

``--update`` takes one or more names and is repeatable; a word with a '/' or ending in .yaml/.yml is a
profile, wherever it stands. The end-to-end cases use the real repository of ``tests/repo_fixtures.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.cli.lock import split_update
from composer.cli.main import build_parser, main
from composer.profile.load import load_profile
from composer.solve.lock import lock_path, open_sources, read_lock, resolve_profile
from composer.solve.lockmodel import lock_bytes
from tests.repo_fixtures import Repo
from tests.unit.test_lock_checked import write_profile


def parsed(*argv: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    args = build_parser().parse_args(["lock", *argv])
    return split_update(args.update or (), args.profile)


@pytest.mark.parametrize(("argv", "names", "profiles"), [
    (("--update", "nano", "profiles/server.yaml"), ("nano",), ("profiles/server.yaml",)),  # the README's form
    (("profiles/server.yaml", "--update", "nano"), ("nano",), ("profiles/server.yaml",)),
    (("--update", "a", "b", "server.yaml"), ("a", "b"), ("server.yaml",)),
    (("--update", "a", "--update", "b", "p.yml"), ("a", "b"), ("p.yml",)),
    (("--update", "a", "x/p.yaml", "y/q.yaml"), ("a",), ("x/p.yaml", "y/q.yaml")),
    (("p.yaml",), (), ("p.yaml",)),
])
def test_the_profile_may_stand_anywhere(argv: tuple[str, ...], names: tuple[str, ...],
                                        profiles: tuple[str, ...]) -> None:
    assert parsed(*argv) == (names, profiles)


def test_no_profile_is_an_error_that_says_how(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lock", "--update", "nano"]) == 1
    err = capsys.readouterr().err
    assert "no profile given" in err and "vcomp lock [--update NAME...] PROFILE.yaml" in err


def test_update_with_check_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lock", "--check", "--update", "nano", "p.yaml"]) == 1
    assert "cannot be combined with --check" in capsys.readouterr().err


def test_update_moves_only_the_named_package_profile_last(repo: Repo, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    p = write_profile(tmp_path, repo)
    prof = load_profile(p)
    old = resolve_profile(prof, open_sources(prof, tmp_path / "cache"),
                          {"x86_64": {"hello": "1.0.0", "libfoo": "1.0.0"}})
    lock_path(p).write_bytes(lock_bytes(old))
    assert main(["lock", "--update", "hello", str(p)]) == 0
    lock = read_lock(lock_path(p))
    assert lock is not None
    assert {r.name: (r.version, r.held) for r in lock.packages("x86_64")} == \
        {"hello": ("1.1.0", False), "libfoo": ("1.0.0", True)}
    assert "hello" in capsys.readouterr().out
