"""The Debian suite is data (issue 16): a recipe source or an import names bookworm or trixie (default trixie);
each suite has its own private apt state per architecture, and errors name the suite. Offline: apt is not run."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from composer.arch import get_arch
from composer.errors import FetchError, UserError
from composer.package import debian, importer
from composer.package.debian import DEFAULT_SUITE, DebianArchive, check_suite, pockets, release_of
from composer.package.recipe import load_recipe
from composer.package.sources import archive_for
from composer.settings import DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR


def test_the_default_is_trixie_and_bookworm_stays_available() -> None:
    assert DEFAULT_SUITE == "trixie" and DebianArchive(Path("/nonexistent")).suite == "trixie"
    assert check_suite("bookworm") == "bookworm"
    with pytest.raises(UserError, match="recipe.toml: unknown Debian suite 'sid'") as err:
        check_suite("sid", "recipe.toml")
    assert "bookworm, trixie" in (err.value.hint or "")


def test_pockets_and_their_release() -> None:
    assert pockets("trixie") == ("trixie", "trixie-updates", "trixie-security")
    assert [release_of(p) for p in ("bookworm-security", "trixie", "trixie-updates", "sid", "trixie-backports")] \
        == ["bookworm", "trixie", "trixie", None, None]
    assert importer.release([]) == "trixie"
    assert importer.release(["bookworm", "bookworm-security"]) == "bookworm"
    with pytest.raises(UserError, match="suite trixie-proposed-updates is not one vcomp knows"):
        importer.release(["trixie-proposed-updates"])
    with pytest.raises(UserError, match=r"suites of 2 Debian releases \(bookworm, trixie\)"):
        importer.release(["trixie", "bookworm-updates"])


def test_each_suite_has_its_own_apt_state_per_architecture(tmp_path: Path) -> None:
    trixie = DebianArchive(tmp_path)
    bookworm = trixie.for_suite("bookworm")
    assert bookworm.suite == "bookworm" and trixie.for_suite("bookworm") is bookworm
    assert bookworm.for_suite("trixie") is trixie
    arm = get_arch("aarch64")
    assert trixie._root(arm) == tmp_path / "debian" / "apt" / "trixie" / "arm64"
    assert bookworm._root(arm) == tmp_path / "debian" / "apt" / "bookworm" / "arm64"
    assert trixie._lock(arm) != bookworm._lock(arm)
    opts = " ".join(bookworm._opts(arm))
    assert f"Dir::State::Lists={tmp_path}/debian/apt/bookworm/arm64/lists" in opts


def test_sources_list_names_the_suite_and_its_pockets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEBIAN_MIRROR.name, "http://mirror.example/debian")
    monkeypatch.setenv(DEBIAN_SECURITY_MIRROR.name, "http://security.example/debian-security")
    lines = debian._sources("trixie").splitlines()
    assert [line.split()[-2:] for line in lines] == [["trixie", "main"], ["trixie-updates", "main"],
                                                    ["trixie-security", "main"]]
    assert lines[2].split()[2] == "http://security.example/debian-security"


def test_errors_name_the_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = DebianArchive(tmp_path, suite="bookworm")
    monkeypatch.setattr(archive, "update", lambda arch, force=False: None)
    monkeypatch.setattr(archive, "_sections", lambda arch, verb, names: {})
    with pytest.raises(FetchError, match="'vcomp-nothing' does not exist for riscv64 in bookworm"):
        archive.resolve(get_arch("riscv64"), "vcomp-nothing")
    with pytest.raises(FetchError, match=r"'linux-image-amd64' \(amd64, bookworm\) has no dependency"):
        archive.resolve(get_arch("x86_64"), "linux-image-amd64", follow="linux-image-*")


RECIPE = """
    [package]
    name = "demo"
    version = "1.0.0"
    description = "demo"
    license = "MIT"
    type = "application"

    [[source]]
    kind = "deb"
    package = "hello"
    {suite}
"""


def _recipe(tmp_path: Path, suite: str) -> Path:
    (tmp_path / "r").mkdir(exist_ok=True)
    (tmp_path / "r" / "recipe.toml").write_text(textwrap.dedent(RECIPE.format(suite=suite)))
    return tmp_path / "r"


@pytest.mark.parametrize(("line", "suite"), [("", "trixie"), ('suite = "bookworm"', "bookworm"),
                                             ('suite = "trixie"', "trixie")])
def test_a_recipe_source_picks_its_suite(tmp_path: Path, line: str, suite: str) -> None:
    recipe = load_recipe(_recipe(tmp_path, line), "x86_64")
    assert archive_for(DebianArchive(tmp_path / "cache"), recipe.sources[0]).suite == suite


def test_an_unknown_suite_in_a_recipe_is_a_schema_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"recipe.toml:12:\d+: \$\.source\[0\]\.suite"):
        load_recipe(_recipe(tmp_path, 'suite = "sid"'), "x86_64")
