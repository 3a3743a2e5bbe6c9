"""`--json` on every verb that prints data (issue 15, item 4): one JSON document on stdout, valid against its
versioned schema under schemas/ (composer/cli/jsonout.py has the table verb -> schema).

Every schema is checked as draft 2020-12, then each document is validated twice: against the schema as shipped
(open objects: minor versions add fields) and against a closed copy (``additionalProperties: false`` on every
object that lists properties), so a field the code writes but the schema does not describe fails here. The
documents come from real runs on the real repository of tests/repo_fixtures.py and real packages; build, boot
and test documents from real library values (an ArchBuild's manifest, boot Cases) without QEMU.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from composer.boot.machine import Watch
from composer.boot.session import Case
from composer.cli import jsonout
from composer.cli.main import build_parser, main
from composer.compose.build import ArchBuild
from composer.gitops import generations
from composer.package.build import Built
from tests.conftest import REPO
from tests.repo_fixtures import Repo
from tests.unit.test_lock_checked import locked, write_profile
from tests.unit.test_output_registry import tiny_profile
from tests.unit.test_pkg_history import make_root

SCHEMAS = REPO / "schemas"

NO_JSON = {
    # verbs that print no data (an action's outcome, a path, a console), with the reason
    "key generate": "writes two files and prints their paths",
    "pkg build": "prints the path of the package built", "pkg build-all": "prints the paths built",
    "pkg extract": "an action",
    "pkg repo-url": "an action", "pkg recover": "an action",
    "repo init": "an action", "repo delegate": "an action", "repo sign-targets": "an action",
    "repo migrate": "an action", "repo refresh": "an action",
    "repo rotate": "an action", "repo sign-root": "an action", "repo mirror": "an action",
    "repo serve": "a server", "debuginfod": "a server", "debug core": "gdb on a core file",
    "debug remote": "gdb on a program under gdbserver", "debug kernel": "gdb on the guest kernel",
    "verify-attestation": "a verdict line", "apply": "an action",
    "reconcile": "an action", "help": "help text", "completion": "a shell script", "init": "an action",
    "sdk shell": "an interactive shell", "repo site": "writes a directory (a static web site)",
    "advisory delegate": "an action", "advisory add": "an action", "bump": "an action (a branch and a commit)",
}


def leaves(p: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(prefix), p
    for a in subs:
        for name, sp in a.choices.items():
            yield from leaves(sp, (*prefix, name))


def load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())  # type: ignore[no-any-return]


def closed(schema: Any) -> Any:
    """The schema with every object that lists its properties closed to others (what the code must not add)."""
    if isinstance(schema, dict):
        out = {k: closed(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


def registry(transform: Any) -> Registry:
    resources = [(s["$id"], Resource.from_contents(transform(s)))
                 for s in (json.loads(p.read_text()) for p in sorted(SCHEMAS.glob("*.schema.json")))]
    return Registry().with_resources(resources)


def check(doc: Any, name: str) -> Any:
    for transform in (lambda s: s, closed):
        schema = transform(load(name))
        Draft202012Validator(schema, registry=registry(transform)).validate(doc)
    return doc


def run(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 0) -> Any:
    """``vcomp ARGV`` with ``--json``: its exit code, and stdout is exactly one JSON document, keys sorted."""
    assert main(argv) == code
    text = capsys.readouterr().out
    doc = json.loads(text)
    assert text == jsonout.dumps(doc) + "\n"  # one document, sorted keys, nothing else on stdout
    return doc


def verb_of(argv: list[str]) -> str:
    words = [w for w in argv if not w.startswith("-")]
    return " ".join(words[:2]) if words[0] in ("pkg", "key", "cache", "import") else words[0]


def test_every_verb_is_classified_and_every_data_verb_has_json_with_a_schema() -> None:
    found = dict(leaves(build_parser()))
    with_json = {v for v, p in found.items() if "--json" in p._option_string_actions}
    assert with_json == set(jsonout.SCHEMAS)
    assert set(found) == with_json | set(NO_JSON), "a new verb: add it to jsonout.SCHEMAS or to NO_JSON here"
    assert "json" in found["plan"]._option_string_actions["--format"].choices  # plan --json is --format json
    for verb, name in jsonout.SCHEMAS.items():
        schema = load(name)
        Draft202012Validator.check_schema(schema)
        assert schema["$id"] == f"https://veridian.example/schemas/{name}.schema.json", verb
        if verb in with_json:
            assert f"schemas/{name}.schema.json" in found[verb]._option_string_actions["--json"].help


def test_validate_reports_each_profile(repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_profile(tmp_path, repo)
    bad = good.with_name("bad.yaml")
    bad.write_text(good.read_text().replace("name: checked", "name: [1]"))
    doc = check(run(["validate", str(good), str(bad), "--json"], capsys, code=1), "validate")
    assert [(p["profile"], p["valid"]) for p in doc["profiles"]] == [(str(good), True), (str(bad), False)]
    assert doc["profiles"][0]["requested"] == {"x86_64": 2}
    assert "is not of type 'string'" in doc["profiles"][1]["error"]["message"]


def test_lock_check_and_why(repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "cache"))
    p = write_profile(tmp_path, repo)
    doc = check(run(["lock", str(p), "--json"], capsys), "lock")
    assert doc["check"] is False and doc["profiles"][0]["packages"] == {"x86_64": 2}
    doc = check(run(["lock", "--check", str(p), "--json"], capsys), "lock")
    assert doc["profiles"][0]["up_to_date"] is True
    p.write_text(p.read_text().replace("[hello, libfoo]", "[hello]"))
    doc = check(run(["lock", "--check", str(p), "--json"], capsys, code=2), "lock")
    assert doc["profiles"][0]["problems"]
    missing = tmp_path / "profile" / "none.yaml"
    shutil.copy(p, missing)
    doc = check(run(["lock", "--check", str(missing), "--json"], capsys, code=1), "lock")
    assert doc["profiles"][0]["exists"] is False


def test_outdated_has_format_version_too(repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p, _doc = locked(tmp_path, repo)
    doc = check(run(["outdated", str(p), "--json"], capsys), "outdated")
    assert doc["format"] == doc["format_version"] == "1.0"


def test_why(repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p, _doc = locked(tmp_path, repo)
    doc = check(run(["why", "hello", "--profile", str(p), "--json"], capsys), "why")
    [link] = doc["architectures"]["x86_64"]
    assert (link["name"], link["kind"], link["pulled_by"]) == ("hello", "requested", None)


def test_search_info_fetch(repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "cache"))
    (tmp_path / "root.json").write_bytes(repo.root_bytes)
    where = ["--repo", repo.url, "--root", str(tmp_path / "root.json")]
    doc = check(run(["search", "hello", *where, "--json"], capsys), "search")
    assert {(e["name"], e["version"]) for e in doc["packages"]} >= {("hello", "1.1.0")}
    assert check(run(["search", "nothing-like-it", *where, "--json"], capsys), "search")["packages"] == []
    assert check(run(["info", "hello", *where, "--json"], capsys), "index-entry")["version"] == "1.1.0"
    doc = check(run(["fetch", "hello=1.0.0", "--out", str(tmp_path / "got"), *where, "--json"], capsys), "fetch")
    assert Path(doc["path"]).is_file() and doc["package"]["version"] == "1.0.0"
    assert check_cache_verbs(capsys), "the fetch filled the cache"


def check_cache_verbs(capsys: pytest.CaptureFixture[str]) -> list[Any]:
    rows: list[Any] = check(run(["cache", "list", "--json"], capsys), "cache-list")
    check(run(["cache", "du", "--json"], capsys), "cache-du")
    check(run(["cache", "verify", "--json"], capsys), "cache-verify")
    check(run(["cache", "gc", "--keep-last", "0", "--json"], capsys), "cache-gc")
    return rows


def test_key_id_contents_lint(hello_pkg: Built, keydir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = check(run(["key", "id", str(keydir / "dev.pub"), "--json"], capsys), "key-id")
    assert len(doc["keyid"]) == 64
    doc = check(run(["pkg", "contents", str(hello_pkg.path), "--json"], capsys), "contents")
    assert "/usr/bin/hello" in {e["path"] for e in doc["entries"]} or "usr/bin/hello" in {
        e["path"] for e in doc["entries"]}
    doc = check(run(["pkg", "lint", str(hello_pkg.path), "--json"], capsys), "lint")
    assert doc["packages"][0]["package"] == str(hello_pkg.path)


def test_root_transactions_and_their_dry_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path)
    at = ["pkg", "--root", str(root)]
    doc = check(run([*at, "remove", "app", "--dry-run", "--json"], capsys), "transaction")
    assert (doc["dry_run"], doc["transaction"], doc["changes"]) == (True, None, [
        {"name": "app", "action": "remove", "old": "1.0.0", "new": None, "reason": None}])
    doc = check(run([*at, "remove", "app", "--json"], capsys), "transaction")
    assert (doc["operation"], doc["transaction"]) == ("remove", 2)
    doc = check(run([*at, "autoremove", "--json"], capsys), "transaction")
    assert (doc["changes"], doc["transaction"]) == ([], None)
    assert check(run([*at, "history", "--json"], capsys), "history")["transactions"][-1]["id"] == 2


def test_root_queries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    at = ["pkg", "--root", str(make_root(tmp_path))]
    rows = check(run([*at, "list", "--json"], capsys), "pkg-list")
    assert {r["name"] for r in rows} == {"base", "app"}
    check(run([*at, "orphans", "--json"], capsys), "pkg-list")
    assert check(run([*at, "info", "app", "--json"], capsys), "pkg-info")["name"] == "app"
    files = check(run([*at, "files", "app", "--json"], capsys), "pkg-files")
    path = next(f["path"] for f in files if f["type"] == "file")
    assert check(run([*at, "owns", path, "--json"], capsys), "pkg-owns")["packages"] == ["app"]
    check(run([*at, "depends", "app", "--json"], capsys), "pkg-depends")
    check(run([*at, "rdepends", "base", "--json"], capsys), "pkg-rdepends")
    assert check(run([*at, "verify", "--json"], capsys), "pkg-verify")["clean"] is True


def test_package_file_info_and_verify(hello_pkg: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = check(run(["pkg", "info", str(hello_pkg.path), "--json"], capsys), "pkg-info")
    assert doc["metadata"]["package"]["name"] == "hello"
    bad = tmp_path / "bad.vpk"
    bad.write_bytes(b"not a package")
    doc = check(run(["pkg", "verify", str(hello_pkg.path), str(bad), "--json"], capsys, code=1), "pkg-verify")
    assert [(p["package"], p["verified"]) for p in doc["packages"]] == [(str(hello_pkg.path), True), (str(bad), False)]


def test_cache_verbs_on_an_empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "cache"))
    assert check_cache_verbs(capsys) == []


def test_repo_add_and_publish(repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vpk, alice = str(repo.package("hello", "1.2.0")), str(repo.keys.path("alice"))
    doc = check(run(["repo", "add", str(repo.dir), vpk, "--key", alice, "--json"], capsys), "repo-add")
    [added] = doc["packages"]
    assert (added["name"], added["new"], added["role"]) == ("hello", True, "alice")
    doc = check(run(["repo", "publish", str(repo.dir), "--json"], capsys), "repo-publish")
    assert doc["packages"] >= 1 and doc["versions"]["snapshot"] >= 2


def built_dir(base: Path, version: str, files: dict[str, list[int]]) -> Path:
    base.mkdir(parents=True)
    (base / "manifest.json").write_text(json.dumps({"arch": "x86_64"}))
    (base / "contents.json").write_text(json.dumps({"hello": {"version": version, "size": 100, "files": files}}))
    return base


def test_diff_of_two_built_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    a = built_dir(tmp_path / "a", "1.0.0", {"usr/bin/hello": [10, "x"], "etc/old": [3, "y"]})
    b = built_dir(tmp_path / "b", "1.1.0", {"usr/bin/hello": [12, "z"], "etc/new": [4, "w"]})
    doc = check(run(["diff", str(a), str(b), "--json"], capsys, code=2), "diff")
    assert [(p["name"], p["action"], p["old"], p["new"]) for p in doc["packages"]] == \
        [("hello", "upgrade", "1.0.0", "1.1.0")]
    assert [(f["change"], f["path"]) for f in doc["files"]["x86_64"]] == \
        [("+", "/etc/new"), ("-", "/etc/old"), ("~", "/usr/bin/hello")]
    assert check(run(["diff", str(a), str(a), "--json"], capsys), "diff")["differences"] is False


def test_history_of_generations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    doc = check(run(["history", "profiles/minimal.yaml", "--json"], capsys), "generations")
    assert doc["generations"] == []
    generations.record(tmp_path / "images", doc["name"], {
        "profile": "profiles/minimal.yaml", "commit": "a" * 40, "worktree": "clean", "time": 1700000000,
        "profile-digest": "b" * 64, "lock-digest": "c" * 64, "rebuilt": ["x86_64"], "architectures": {"x86_64": {
            "inputs": "d" * 64, "outputs": [{"name": "disk", "type": "qcow2", "files": []}],
            "packages": [{"name": "hello", "version": "1.0.0", "sha256": "e" * 64, "size": 1, "reason": "requested"}],
            "tests": [{"id": "x86_64/disk/bios/boots", "passed": True, "seconds": 12.5}]}}})
    doc = check(run(["history", "profiles/minimal.yaml", "--json"], capsys), "generations")
    [g] = doc["generations"]
    assert (g["generation"], g["architectures"]["x86_64"]["packages"]) == (1, 1)


def test_a_real_build(repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    """`vcomp build --json` of a tiny profile (hello and a stand-in kernel, a rootfs output): the progress on
    stderr, the document on stdout; built again, the output comes from the cache."""
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "vcache"))
    p = tiny_profile(repo, tmp_path, "  - type: rootfs\n")
    assert main(["lock", str(p)]) == 0
    capsys.readouterr()
    argv = ["build", str(p), "--images", str(tmp_path / "images"), "--json"]
    assert main(argv) == 0
    got = capsys.readouterr()
    doc = check(json.loads(got.out), "build")
    assert "x86_64: 1 outputs in" in got.err
    [arch] = doc["architectures"]
    [out] = arch["outputs"]
    assert Path(out["files"][0]["path"]).is_file() and out["cached"] is False
    assert check(run(argv, capsys), "build")["architectures"][0]["outputs"][0]["cached"] is True
    # `vcomp test`: a rootfs is not booted on its own, so a real run with no boot tests
    doc = check(run(["test", str(p), "--images", str(tmp_path / "images"), "--json"], capsys), "test")
    assert (doc["total"], doc["cases"], Path(doc["junit"]).is_file()) == (0, [], True)
    # `vcomp boot` of the built output, QEMU replaced by the verdicts of two real boot Cases (one failed): exit 1
    monkeypatch.setattr("composer.boot.session.run_boot", lambda *_a, **_k: cases())
    directory = Path(arch["directory"])
    doc = check(run(["boot", str(directory), "--output", out["name"], "--json"], capsys, code=1), "boot")
    assert (doc["passed"], doc["total"], doc["log"]) == (1, 2, str(directory / "boot"))


def arch_build(tmp_path: Path) -> ArchBuild:
    manifest = {"profile": "minimal", "arch": "x86_64", "lock-digest": "c" * 64, "inputs": "d" * 64, "outputs": [
        {"name": "disk", "type": "qcow2", "firmware": ["bios", "uefi"], "boot": {}, "stale": False,
         "files": [{"path": "disk.qcow2", "sha256": "f" * 64, "size": 4096}]}]}
    return ArchBuild(arch="x86_64", directory=tmp_path / "images" / "minimal" / "x86_64", products=(),
                     cached=("disk",), manifest=manifest)


def cases() -> list[Case]:
    ok = Watch(log="VCOMP-BOOT: ready\n", returncode=0, timed_out=False, seconds=11.24, missing=())
    bad = Watch(log="VCOMP-BOOT: init started\n", returncode=0, timed_out=True, seconds=60.0,
                missing=("hello\x1b[0m",), failures=("VCOMP-CHECK: FAIL sshd",))
    return [Case(arch="x86_64", output="disk", firmware=f, test="boots", expect=("VCOMP-BOOT: ready",), watch=w,
                 missing=w.missing) for f, w in (("bios", ok), ("uefi", bad))]


def test_build_boot_test_documents_from_real_values(tmp_path: Path) -> None:
    """The documents cmd_build, cmd_boot and cmd_test print (the same expressions) for a real manifest and
    real boot Cases: validated without QEMU (a real boot is tests/integration's)."""
    build = arch_build(tmp_path)
    doc = check(jsonout.document({"profile": "p.yaml", "architectures": [build.to_dict()]}), "build")
    [out] = doc["architectures"][0]["outputs"]
    assert out["cached"] is True and out["files"][0]["path"].endswith("x86_64/disk.qcow2")
    found = [c.to_dict() for c in cases()]
    assert [c["passed"] for c in found] == [True, False] and found[1]["reason"].startswith("failure on the console")
    check(jsonout.document({"image": "disk.qcow2", "log": "boot", "cases": found, "passed": 1, "total": 2}), "boot")
    check(jsonout.document({"profile": "p.yaml", "junit": "j.xml", "architectures": [build.to_dict()],
                            "cases": found, "passed": 1, "total": 2}), "test")
    json.dumps(found)  # plain JSON values only


def test_a_document_with_an_undescribed_field_is_refused() -> None:
    doc = jsonout.document({"key": "k.pub", "keyid": "a" * 64, "surprise": 1})
    with pytest.raises(Exception, match="surprise"):
        check(copy.deepcopy(doc), "key-id")


def test_an_error_prints_no_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pkg", "contents", str(tmp_path / "missing.vpk"), "--json"]) == 1
    got = capsys.readouterr()
    assert got.out == "" and got.err.startswith("error: ")
    assert os.linesep not in got.err.rstrip("\n").split("\n")[0]


def test_an_attached_console_refuses_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "minimal" / "x86_64"
    image.mkdir(parents=True)
    (image / "manifest.json").write_text(json.dumps({"format": 1, "arch": "x86_64", "profile": "minimal",
                                                     "outputs": [{"name": "disk", "files": []}]}))
    assert main(["boot", str(image), "--output", "disk", "--interactive", "--json"]) == 1
    got = capsys.readouterr()
    assert got.out == "" and "--json cannot be combined with --interactive" in got.err


def test_the_docs_table_lists_every_data_verb_and_plan_json_is_format_json() -> None:
    text = (REPO / "docs" / "json-output.md").read_text()
    for verb, name in jsonout.SCHEMAS.items():
        assert f"| `vcomp {verb}` | [{name}.schema.json](../schemas/{name}.schema.json) |" in text, verb
    assert build_parser().parse_args(["plan", "--json"]).json is True


def test_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    """``vcomp plugins --json`` (tests/unit/test_plugins.py checks it with plugins loaded and refused)."""
    doc = check(run(["plugins", "--json"], capsys), "plugins")
    assert doc["plugins"] == [] and doc["refused"] == [] and doc["enabled"] is False  # the suite's VCOMP_NO_PLUGINS
