"""The ``python`` source kind (docs/packages/python.md): wheels read as hostile input and installed for the image's
python3 (pure: composer.package.wheel), and real builds of examples/hello-python (pip, setuptools, offline)."""

from __future__ import annotations

import io
import shutil
import stat
import zipfile
from pathlib import Path

import pytest

from composer.errors import ComposerError, UnsafeArchive, UserError
from composer.package import wheel
from composer.package.archive import read_header
from composer.package.build import build
from composer.trust.keys import load_signing_key

REPO = Path(__file__).resolve().parents[2]
KEY = REPO / "keys" / "sample" / "INSECURE-SAMPLE-developer.key"
EXAMPLE = REPO / "examples" / "hello-python"
INFO = "demo-1.0.dist-info"
WHEEL = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
METADATA = "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: PyYAML>=6\n"
ENTRY_POINTS = "[console_scripts]\ndemo = demo.cli:main\nrun-demo = demo\n[other]\nx = y:z\n"


def _zip(members: list[tuple[str, bytes, int]]) -> bytes:
    """A zip of (name, data, st_mode) members, in the order given."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = mode << 16
            z.writestr(info, data)
    return buf.getvalue()


def _wheel(*extra: tuple[str, bytes, int], wheel_text: str = WHEEL, metadata: str = METADATA) -> bytes:
    return _zip([("demo/__init__.py", b"", 0o100644), ("demo/cli.py", b"def main():\n    return 0\n", 0o100644),
                 *extra, (f"{INFO}/WHEEL", wheel_text.encode(), 0o100644),
                 (f"{INFO}/METADATA", metadata.encode(), 0o100644),
                 (f"{INFO}/entry_points.txt", ENTRY_POINTS.encode(), 0o100644),
                 (f"{INFO}/RECORD", b"demo/__init__.py,,\n", 0o100644)])


def test_a_pure_wheel_is_installed_for_debians_python3() -> None:
    read = wheel.read_wheel(_wheel(("demo-1.0.data/scripts/tool", b"#!python\nprint(1)\n", 0o100644),
                                   ("demo-1.0.data/data/share/demo/a.txt", b"a", 0o100644)), "demo.whl")
    assert (read.name, read.version, read.tags, read.requires_dist) == ("demo", "1.0", ("py3-none-any",),
                                                                        ("PyYAML>=6",))
    assert [(e.name, e.module, e.attr) for e in read.scripts] == [("demo", "demo.cli", "main"),
                                                                  ("run-demo", "demo", "")]
    files = {f.path: f for f in wheel.install(read)}
    site = "usr/lib/python3/dist-packages"
    assert sorted(files) == ["usr/bin/demo", "usr/bin/run-demo", "usr/bin/tool",
                             f"{site}/{INFO}/INSTALLER", f"{site}/{INFO}/METADATA", f"{site}/{INFO}/RECORD",
                             f"{site}/{INFO}/WHEEL", f"{site}/{INFO}/entry_points.txt",
                             f"{site}/demo/__init__.py", f"{site}/demo/cli.py", "usr/share/demo/a.txt"]
    assert files["usr/bin/demo"].data.startswith(b"#!/usr/bin/python3\nimport sys\nfrom demo.cli import main\n")
    assert b"runpy.run_module('demo'" in files["usr/bin/run-demo"].data
    assert files["usr/bin/tool"].data == b"#!/usr/bin/python3\nprint(1)\n"
    assert {f.mode for p, f in files.items() if p.startswith("usr/bin/")} == {0o755}
    assert files[f"{site}/demo/cli.py"].mode == 0o644
    record = files[f"{site}/{INFO}/RECORD"].data.decode().splitlines()
    assert record == sorted(record) and len(record) == len(files)
    assert "../../../bin/demo," in files[f"{site}/{INFO}/RECORD"].data.decode()
    assert f"{INFO}/RECORD,," in record


def test_the_same_contents_in_another_zip_order_install_the_same_bytes() -> None:
    data = _wheel()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = [(i.filename, z.read(i), i.external_attr >> 16) for i in z.infolist()]
    again = _zip(list(reversed(members)))
    assert wheel.install(wheel.read_wheel(data, "a")) == wheel.install(wheel.read_wheel(again, "b"))


@pytest.mark.parametrize(("member", "why"), [
    (("/etc/passwd", b"x", 0o100644), "is absolute"),
    (("demo/../../etc/passwd", b"x", 0o100644), "'..' component"),
    (("demo/link", b"/etc/shadow", 0o120777), "is a symbolic link"),
    (("demo/fifo", b"", 0o010644), "is a special file"),
    (("demo\\win.py", b"", 0o100644), "backslash"),
    (("demo/a,b.py", b"", 0o100644), "comma"),
])
def test_hostile_members_are_refused_with_one_line(member: tuple[str, bytes, int], why: str) -> None:
    with pytest.raises(UnsafeArchive) as err:
        wheel.read_wheel(_wheel(member), "evil.whl")
    assert err.value.message.startswith("evil.whl: member ") and why in err.value.message
    assert "\n" not in err.value.message and err.value.hint


def test_bounds_on_members_metadata_and_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UnsafeArchive, match="larger than 1024 KiB"):
        wheel.read_wheel(_wheel(metadata=METADATA + "Description: " + "x" * 2**20 + "\n"), "big.whl")
    monkeypatch.setattr(wheel, "MAX_MEMBERS", 4)
    with pytest.raises(UnsafeArchive, match="more than 4 members"):
        wheel.read_wheel(_wheel(), "many.whl")
    monkeypatch.setattr(wheel, "MAX_MEMBERS", 100)
    monkeypatch.setattr(wheel, "MAX_BYTES", 100)
    with pytest.raises(UnsafeArchive, match="uncompressed"):
        wheel.read_wheel(_wheel(("demo/big.bin", b"\0" * 200, 0o100644)), "bomb.whl")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"wheel_text": WHEEL.replace("py3-none-any", "cp313-cp313-linux_x86_64")}, "not a pure-Python wheel"),
    ({"wheel_text": WHEEL.replace("true", "false")}, "not a pure-Python wheel"),
    ({"metadata": METADATA.replace("Name: demo", "Name: ../demo")}, "is not valid"),
    ({"metadata": METADATA.replace("Version: 1.0", "Version: ")}, "is not valid"),
])
def test_metadata_is_checked(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ComposerError, match=message):
        wheel.read_wheel(_wheel(**kwargs), "w.whl")


def test_entry_points_and_layout_errors() -> None:
    bad = _zip([(f"{INFO}/WHEEL", WHEEL.encode(), 0o100644), (f"{INFO}/METADATA", METADATA.encode(), 0o100644),
                (f"{INFO}/entry_points.txt", b"[console_scripts]\n../x = os:system\n", 0o100644)])
    with pytest.raises(UnsafeArchive, match="line 2: .* is not NAME = module:attr"):
        wheel.read_wheel(bad, "w.whl")
    with pytest.raises(UnsafeArchive, match="0 .dist-info directories"):
        wheel.read_wheel(_zip([("demo/__init__.py", b"", 0o100644)]), "w.whl")
    with pytest.raises(UnsafeArchive, match="not a wheel"):
        wheel.read_wheel(b"PK\x03\x04 not really", "w.whl")
    with pytest.raises(UserError, match="headers is not installed"):
        wheel.read_wheel(_wheel(("demo-1.0.data/headers/x.h", b"", 0o100644)), "w.whl")
    with pytest.raises(UserError, match="both an entry point and a file"):
        wheel.install(wheel.read_wheel(_wheel(("demo-1.0.data/scripts/demo", b"#!python\n", 0o100644)), "w"))


# ---------------------------------------------------------------- real builds (pip wheel, setuptools, offline)

def test_the_example_builds_twice_to_the_same_noarch_bytes(tmp_path: Path) -> None:
    key = load_signing_key(KEY)
    a = build(EXAMPLE, "x86_64", key, tmp_path / "a")
    b = build(EXAMPLE, "aarch64", key, tmp_path / "b")
    assert a.path.name == "hello-python-1.0.0-noarch.vpk"
    assert a.path.read_bytes() == b.path.read_bytes()
    meta = read_header(a.path).metadata.to_dict()
    source = meta["provenance"]["sources"][0]
    assert (source["kind"], source["name"], source["version"]) == ("python", "hello-python", "1.0.0")
    paths = {e.path for e in read_header(a.path).manifest.entries}
    assert {"usr/bin/hello-python", "usr/lib/python3/dist-packages/hello_python/__init__.py"} <= paths
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in paths)
    assert not (EXAMPLE / "src" / "build").exists(), "the build wrote into the recipe's folder"


def _project(tmp_path: Path, pyproject: str, recipe_extra: str = "") -> Path:
    d = tmp_path / "r"
    shutil.copytree(EXAMPLE, d)
    (d / "src" / "pyproject.toml").write_text(pyproject)
    if recipe_extra:
        (d / "recipe.toml").write_text((d / "recipe.toml").read_text().replace('path = "src"', recipe_extra))
    return d


@pytest.mark.parametrize(("pyproject", "extra", "message"), [
    ("[project]\nversion = '1'\n", "", r"\[project\] name is missing"),
    ("[project\n", "", "not valid TOML"),
    ("[project]\nname='x'\n[build-system]\nbuild-backend='no_such_backend_mod.api'\n", "",
     "build backend no_such_backend_mod.api is not installed"),
    ("[project]\nname='x'\n[build-system]\nbuild-backend='b'\nbackend-path=['.']\n", "", "backend-path"),
    ("", 'path = "../../etc"', "is not a folder inside the recipe"),
], ids=["no-name", "bad-toml", "no-backend", "backend-path", "outside"])
def test_project_errors_are_one_line_naming_the_recipe(tmp_path: Path, pyproject: str, extra: str,
                                                       message: str) -> None:
    d = _project(tmp_path, pyproject, extra)
    with pytest.raises(ComposerError, match=message) as err:
        build(d, "x86_64", load_signing_key(KEY), tmp_path / "out")
    assert "\n" not in err.value.message and err.value.hint


def test_a_failing_build_names_the_source_and_stays_offline(tmp_path: Path) -> None:
    d = _project(tmp_path, "[build-system]\nrequires=['setuptools']\nbuild-backend='setuptools.build_meta'\n"
                           "[project]\nname='x'\nversion='1'\ndependencies=['definitely-not-installed-pkg']\n"
                           "[tool.setuptools]\npackages=['missing_pkg']\n")
    with pytest.raises(ComposerError, match="building the wheel of x failed") as err:
        build(d, "x86_64", load_signing_key(KEY), tmp_path / "out")
    assert "recipe.toml:" in err.value.message and "python3-*" in err.value.hint
    assert stat.S_ISDIR((d / "src").stat().st_mode) and not (d / "src" / "build").exists()


def test_a_link_out_of_the_project_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "r"
    shutil.copytree(EXAMPLE, d)
    (d / "src" / "hello_python" / "secret.txt").symlink_to("/etc/passwd")
    with pytest.raises(UserError, match=r"secret.txt links outside the project \(to /etc/passwd\)"):
        build(d, "x86_64", load_signing_key(KEY), tmp_path / "out")
