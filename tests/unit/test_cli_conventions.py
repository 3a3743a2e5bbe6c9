"""CLI conventions of issue 15 item 4 that live in the parser: 'did you mean' for verbs, choices and options, and
``vcomp help VERB``."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.cli.main import main
from composer.errors import EXIT_ERROR


@pytest.mark.parametrize(("argv", "wanted"), [
    (["lok", "p.yaml"], "did you mean 'lock'?"),
    (["pkg", "biuld"], "did you mean 'build'?"),
    (["reconcil"], "did you mean 'reconcile'?"),
    (["key", "id", "--jsn", "x"], "did you mean '--json'"),
    (["help", "histroy"], "did you mean 'history'?"),
])
def test_a_mistyped_word_gets_a_suggestion_on_the_error_line(argv: list[str], wanted: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == EXIT_ERROR
    first, hint = capsys.readouterr().err.splitlines()
    assert first.startswith("error: vcomp") and wanted in first and first.endswith("?"), first
    assert hint.startswith("  hint: see: vcomp") and hint.endswith("--help")


def test_nothing_close_means_no_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["zzzzzz"])
    assert "did you mean" not in capsys.readouterr().err


@pytest.mark.parametrize(("topic", "usage"), [
    (["lock"], "usage: vcomp lock "),
    (["pkg", "build"], "usage: vcomp pkg build "),
    ([], "usage: vcomp "),
])
def test_help_verb_prints_the_verbs_help_and_exits_0(topic: list[str], usage: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["help", *topic])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(usage)


def test_a_mistyped_yaml_key_gets_a_suggestion_at_its_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("name: x\narchitectures: [x86_64]\npakages: [nano]\noutputs:\n  - {type: rootfs, optoins: {}}\n")
    assert main(["validate", str(profile)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"{profile}:3:1: $: unknown field 'pakages' (did you mean 'packages'?)" in err
    assert f"{profile}:5:20: $.outputs[0]: unknown field 'optoins' (did you mean 'options'?)" in err


@pytest.mark.parametrize("verb", ["validate", "lock", "build"])
def test_a_lock_given_for_a_profile_is_one_line(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import REPO
    lock = REPO / "profiles" / "minimal.lock"
    assert main([verb, str(lock)]) == EXIT_ERROR
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: {lock}: this is a lock (written by vcomp lock), not a profile",
                   f"  hint: pass the profile it locks, e.g. {lock.with_suffix('.yaml')}"]
