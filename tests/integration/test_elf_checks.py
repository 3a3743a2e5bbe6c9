"""Issue 19 items 3-4 end to end: real libraries compiled by the host gcc, built into packages, added to a real
repository and locked. A library whose new version drops a symbol is flagged at ``repo add`` with its dependents;
an image missing a NEEDED library fails ``lock`` naming the binary; the policy refuses what it denies."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from composer.errors import InvalidPackage, UserError
from composer.package.build import build
from composer.package.lint import lint_package
from composer.profile.load import load_profile
from composer.repo import edit
from composer.repo.store import CONFIG, RepoStore
from composer.solve.lock import open_sources, resolve_profile
from tests.conftest import write_recipe
from tests.repo_fixtures import ARCH, ONLINE, Keys, make_keys

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("gcc") is None, reason="needs the host gcc")]

RECIPE = """
    [package]
    name = "{name}"
    version = "{version}"
    description = "{name}: an ELF check test package"
    authors = ["Tester"]
    license = "MIT"
    type = "{type}"

    [security]
    context = "system_t"
    {deps}
    [[source]]
    kind = "tree"
    path = "files"
"""
LIB_V1 = "int demo_a(void) { return 1; }\nint demo_b(void) { return 2; }\n"
LIB_V2 = "int demo_a(void) { return 1; }\n"
APP = "int demo_a(void);\nvoid _start(void) { demo_a(); for (;;) {} }\n"


def gcc(*args: str | Path) -> None:
    subprocess.run(["gcc", *map(str, args)], check=True, capture_output=True)


def library(tmp: Path, source: str, tag: str) -> Path:
    (tmp / f"lib{tag}.c").write_text(source)
    out = tmp / tag / "libdemo.so.1"
    out.parent.mkdir(parents=True, exist_ok=True)
    gcc("-shared", "-fPIC", "-nostdlib", "-Wl,-soname,libdemo.so.1", "-o", out, tmp / f"lib{tag}.c")
    return out


def program(tmp: Path, lib: Path) -> Path:
    (tmp / "app.c").write_text(APP)
    out = tmp / "demo"
    gcc("-fPIE", "-pie", "-nostdlib", "-o", out, tmp / "app.c", lib)
    return out


def package(tmp: Path, keys: Keys, name: str, version: str, files: dict[str, bytes], deps: str = "") -> Path:
    text = RECIPE.format(name=name, version=version, type="library" if name.startswith("lib") else "application",
                         deps=f"\n[dependencies]\n{deps}\n" if deps else "")
    recipe = write_recipe(tmp / "recipes" / f"{name}-{version}", textwrap.dedent(text),
                          {f"files/{k}": v for k, v in files.items()}, executable=tuple(f"files/{k}" for k in files))
    return build(recipe, ARCH, keys.alice, tmp / "out", cache=tmp / "cache").path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | Keys]:
    tmp = tmp_path_factory.mktemp("elf")
    keys = make_keys(tmp / "keys")
    v1, v2 = library(tmp, LIB_V1, "v1"), library(tmp, LIB_V2, "v2")
    app = program(tmp, v1)
    return {"keys": keys,
            "lib1": package(tmp, keys, "libdemo", "1.0.0", {"usr/lib/libdemo.so.1": v1.read_bytes()}),
            "lib2": package(tmp, keys, "libdemo", "1.1.0", {"usr/lib/libdemo.so.1": v2.read_bytes()}),
            "app": package(tmp, keys, "demo-app", "1.0.0", {"usr/bin/demo": app.read_bytes()}, 'libdemo = "1"'),
            "orphan": package(tmp, keys, "demo-orphan", "1.0.0", {"usr/bin/demo": app.read_bytes()})}


def new_repo(tmp: Path, keys: Keys, policy: str = "") -> RepoStore:
    repo = tmp / "repo"
    online = {role: [keys.by_name[role]] for role in ONLINE}
    edit.init(repo, root_keys=[keys.root1, keys.root2], root_threshold=2, targets_keys=[keys.targets],
              online=online, online_paths={role: [str(keys.path(role))] for role in online}, architectures=[ARCH])
    if policy:
        with (repo / CONFIG).open("a") as f:
            f.write(f"\n[policy]\n{policy}\n")
    store = RepoStore(repo)
    edit.delegate(store, "alice", [keys.alice.public], ["demo*", "lib*"], targets_keys=[keys.targets])
    return RepoStore(repo)


def test_the_builder_records_soname_provides_and_needed(world: dict[str, Path | Keys]) -> None:
    from composer.package.archive import read_header
    lib, app = read_header(world["lib1"]).metadata, read_header(world["app"]).metadata  # type: ignore[arg-type]
    assert dict(lib.elf) == {"format": 1, "sonames": ["libdemo.so.1"]}
    assert dict(app.elf)["needed"] == {"usr/bin/demo": ["libdemo.so.1"]}


def test_a_library_dropping_a_symbol_is_flagged_with_its_dependents(world: dict[str, Path | Keys],
                                                                     tmp_path: Path) -> None:
    keys = world["keys"]
    assert isinstance(keys, Keys)
    store = new_repo(tmp_path, keys)
    first = edit.add(store, [world["lib1"], world["app"]], [keys.alice])  # type: ignore[list-item]
    assert all(not a.warnings for a in first)
    added = edit.add(store, [world["lib2"]], [keys.alice])  # type: ignore[list-item]
    assert len(added[0].warnings) == 1
    warning = added[0].warnings[0]
    assert "ABI break: libdemo.so.1 drops 1 exported symbols: demo_b" in warning
    assert "dependents to rebuild: demo-app" in warning
    if shutil.which("abidiff"):   # abigail-tools (scripts/setup.sh) adds its summary
        assert "(abidiff: 1 Removed, 0 Added function symbol" in warning


def test_an_abi_break_is_refused_when_the_policy_denies_it(world: dict[str, Path | Keys], tmp_path: Path) -> None:
    keys = world["keys"]
    assert isinstance(keys, Keys)
    store = new_repo(tmp_path, keys, 'abi-break = "deny"')
    edit.add(store, [world["lib1"], world["app"]], [keys.alice])  # type: ignore[list-item]
    with pytest.raises(InvalidPackage) as info:
        edit.add(store, [world["lib2"]], [keys.alice])  # type: ignore[list-item]
    assert "drops 1 exported symbols: demo_b" in str(info.value) and "demo-app" in str(info.value)
    assert str(world["lib2"]) in str(info.value)


def test_repo_add_refuses_a_needed_library_outside_the_closure_when_the_policy_denies(world: dict[str, Path | Keys],
                                                                tmp_path: Path) -> None:
    keys = world["keys"]
    assert isinstance(keys, Keys)
    store = new_repo(tmp_path, keys, 'needed = "deny"')
    with pytest.raises(InvalidPackage) as info:
        edit.add(store, [world["lib1"], world["orphan"]], [keys.alice])  # type: ignore[list-item]
    assert "/usr/bin/demo needs libdemo.so.1" in str(info.value)
    assert str(world["orphan"]) in str(info.value)


def test_an_image_missing_a_needed_library_fails_lock(world: dict[str, Path | Keys], tmp_path: Path) -> None:
    keys = world["keys"]
    assert isinstance(keys, Keys)
    store = new_repo(tmp_path, keys)   # needed = "warn" by default: the library could come from another repository
    added = edit.add(store, [world["lib1"], world["app"], world["orphan"]], [keys.alice])  # type: ignore[list-item]
    assert any("demo-orphan" in w for a in added for w in a.warnings)
    edit.publish(store)
    d = tmp_path / "profile"
    d.mkdir()
    (d / "root.json").write_bytes((store.dir / "metadata" / "1.root.json").read_bytes())
    for name, packages, ok in (("good", "[demo-app]", True), ("bad", "[demo-orphan]", False)):
        p = d / f"{name}.yaml"
        p.write_text(f"name: {name}\narchitectures: [x86_64]\nrepositories:\n"
                     f"  - {{name: main, url: '{store.dir.as_uri()}', root: root.json}}\n"
                     f"packages: {packages}\noutputs:\n  - type: rootfs\n")
        prof = load_profile(p)
        if ok:
            lock = resolve_profile(prof, open_sources(prof, tmp_path / f"cache-{name}"))
            assert {r.name for r in lock.packages("x86_64")} == {"demo-app", "libdemo"}
            continue
        with pytest.raises(UserError) as info:
            resolve_profile(prof, open_sources(prof, tmp_path / f"cache-{name}"))
        assert "package 'demo-orphan': /usr/bin/demo needs libdemo.so.1" in info.value.message


def test_pkg_lint_reports_hardening_and_secrets(world: dict[str, Path | Keys], tmp_path: Path) -> None:
    keys = world["keys"]
    assert isinstance(keys, Keys)
    pem = b"-----BEGIN OPENSSH PRIVATE KEY-----\n" + b"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" * 2 + b"\n"
    pkg = package(tmp_path, keys, "demo-leaky", "1.0.0", {"etc/ssh/id_demo": pem})
    codes = {f.code for f in lint_package(pkg)}
    assert "secret" in codes
    found = {f.code: f for f in lint_package(world["app"])}  # type: ignore[arg-type]
    assert "hardening" in found and "canary" in found["hardening"].message


def test_repo_add_cli_prints_the_abi_warning_and_json_lists_it(world: dict[str, Path | Keys], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from composer.cli.main import main
    keys = world["keys"]
    assert isinstance(keys, Keys)
    store = new_repo(tmp_path, keys)
    key = str(keys.path("alice"))
    assert main(["repo", "add", str(store.dir), str(world["lib1"]), str(world["app"]), "--key", key]) == 0
    capsys.readouterr()
    assert main(["repo", "add", str(store.dir), str(world["lib2"]), "--key", key]) == 0
    err = capsys.readouterr().err
    assert "ABI break: libdemo.so.1 drops 1 exported symbols: demo_b" in err and "demo-app" in err
    store2 = new_repo(tmp_path / "again", keys)
    assert main(["repo", "add", str(store2.dir), str(world["lib1"]), str(world["app"]), "--key", key]) == 0
    capsys.readouterr()
    assert main(["repo", "add", str(store2.dir), str(world["lib2"]), "--key", key, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "dependents to rebuild: demo-app" in doc["packages"][0]["warnings"][0]


def test_the_policy_refuses_secrets_and_a_low_hardening_score(world: dict[str, Path | Keys], tmp_path: Path) -> None:
    keys = world["keys"]
    assert isinstance(keys, Keys)
    pem = b"-----BEGIN OPENSSH PRIVATE KEY-----\n" + b"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" * 2 + b"\n"
    leaky = package(tmp_path / "leaky", keys, "demo-leaky", "1.0.0", {"usr/share/demo/id_demo": pem})
    store = new_repo(tmp_path, keys, 'secrets = "deny"\nhardening-min = 90')
    with pytest.raises(InvalidPackage) as info:
        edit.add(store, [leaky, world["lib1"], world["app"]], [keys.alice])  # type: ignore[list-item]
    message = str(info.value)
    assert "/usr/share/demo/id_demo holds a secret (openssh-private-key at byte 0)" in message
    assert "demo-app-1.0.0-x86_64: hardening score" in message and "below the repository's minimum 90" in message
