"""GitOps in a real temporary git repository: plan, apply, reconcile, diff, history, policy gates."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import git
import jsonschema
import pytest

from composer.cli.main import main
from tests.conftest import REPO

pytestmark = pytest.mark.integration

PROFILE = """name: {name}
architectures: [x86_64]
repositories:
  - name: sample
    url: ../images/repo
    root: trust/sample-root.json
packages: [base-files, busybox, init{extra}]
drivers: [virtio-blk]
kernel: {{package: linux, cmdline: quiet}}
init: init
hostname: {name}
outputs:
  - type: initramfs
boot-tests:
  - name: boots
    expect: ["VCOMP-BOOT: init started", "VCOMP-CHECKS: done", "VCOMP-BOOT: ready"]
    timeout: 120
{policy}"""


def write_profile(root: Path, name: str, extra: str = "", policy: str = "") -> Path:
    path = root / "profiles" / f"{name}.yaml"
    path.write_text(PROFILE.format(name=name, extra=extra, policy=policy))
    return path


@pytest.fixture(scope="module")
def repo(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository with two profiles (alpha, beta), their locks, and a first reconcile."""
    root = tmp_path_factory.mktemp("gitops")
    (root / "profiles" / "trust").mkdir(parents=True)
    shutil.copy(REPO / "profiles" / "trust" / "sample-root.json", root / "profiles" / "trust")
    (root / "images").mkdir()
    (root / "images" / "repo").symlink_to(sample_repo_base / "images" / "repo")
    (root / ".gitignore").write_text("images/\n")
    for name in ("alpha", "beta"):
        write_profile(root, name)
    r = git.Repo.init(root)
    r.config_writer().set_value("user", "name", "t").set_value("user", "email", "t@example.org").release()
    with _cwd(root):
        assert main(["lock", "profiles/alpha.yaml", "profiles/beta.yaml"]) == 0
        r.index.add([".gitignore", "profiles"])
        r.index.commit("two profiles")
        assert main(["reconcile"]) == 2  # the first build of both
    return root


class _cwd:
    def __init__(self, path: Path) -> None:
        self.path, self.old = path, Path.cwd()

    def __enter__(self) -> None:
        import os
        os.chdir(self.path)

    def __exit__(self, *exc: object) -> None:
        import os
        os.chdir(self.old)


def commit(root: Path, message: str) -> None:
    r = git.Repo(root)
    r.index.add(["profiles"])
    r.index.commit(message)


def _stamps(top: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``top`` with its inode and mtime: a rebuild, a boot log or a record would change it."""
    return {str(p.relative_to(top)): (p.lstat().st_ino, p.lstat().st_mtime_ns) for p in sorted(top.rglob("*"))
            if p.name != ".lock"}


def test_plan_reconcile_diff_history(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with _cwd(repo):
        write_profile(repo, "alpha", extra=", nano")
        assert main(["lock", "profiles/alpha.yaml"]) == 0
        commit(repo, "alpha: add nano")
        capsys.readouterr()
        assert main(["plan"]) == 2
        out = capsys.readouterr().out
        assert "+ nano 8.4-" in out and "(requested)" in out
        for lib in ("libc6", "libncursesw6", "libtinfo6"):
            assert f"+ {lib} " in out, out
        assert "dependency of nano" in out
        assert main(["plan", "--format", "json", "--out", "plan.json"]) == 2
        doc = json.loads(capsys.readouterr().out)
        schema = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
        jsonschema.Draft202012Validator(schema).validate(doc)
        alpha = next(p for p in doc["profiles"] if p["name"] == "alpha")
        beta = next(p for p in doc["profiles"] if p["name"] == "beta")
        assert alpha["status"] == "changed" and beta["status"] == "unchanged"
        assert [o["name"] for o in alpha["output_changes"]] == ["initramfs"]
        assert main(["plan", "--matrix"]) == 2
        assert json.loads(capsys.readouterr().out) == {
            "include": [{"profile": "profiles/alpha.yaml", "arch": "x86_64", "output": "initramfs"}]}
        assert main(["plan", "--format", "markdown"]) == 2
        assert "nano" in capsys.readouterr().out

        assert main(["reconcile"]) == 2
        out = capsys.readouterr().out
        assert "profiles/beta.yaml: unchanged since generation 1" in out
        assert "profiles/alpha.yaml: generation 2 recorded: rebuilt x86_64; 1 of 1 boot tests passed" in out
        before = _stamps(Path("images"))
        assert main(["reconcile"]) == 0
        out = capsys.readouterr().out
        assert "alpha.yaml: unchanged since generation 2" in out and "beta.yaml: unchanged since generation 1" in out
        assert _stamps(Path("images")) == before, "a reconcile with nothing to do built, booted or wrote something"

        assert main(["history", "profiles/alpha.yaml"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 2 and lines[1].startswith("generation   2") and "tests 1/1" in lines[1]
        assert main(["diff", "gen:1", "gen:2", "--profile", "profiles/alpha.yaml"]) == 2
        out = capsys.readouterr().out
        assert "x86_64: + nano 8.4-" in out and "x86_64: + libtinfo6" in out
        assert main(["diff", "HEAD~1", "HEAD", "--profile", "profiles/alpha.yaml"]) == 2
        assert "x86_64: + nano" in capsys.readouterr().out
        assert main(["diff", "HEAD", "HEAD", "--profile", "profiles/alpha.yaml"]) == 0

        other = repo / "before"  # an image built elsewhere: beta has no nano
        assert main(["build", "profiles/beta.yaml", "--images", str(other)]) == 0
        capsys.readouterr()
        code = main(["diff", str(other / "beta" / "x86_64"), str(repo / "images" / "alpha" / "x86_64")])
        out = capsys.readouterr().out
        assert code == 2
        assert "x86_64: + nano 8.4-" in out
        assert re.search(r"x86_64: \+ /(usr/)?bin/nano \(\d+ B\)", out), out
        shutil.rmtree(other)


def test_saved_plan_applies_and_is_refused_when_stale(repo: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    original = (repo / "profiles" / "beta.yaml").read_bytes(), (repo / "profiles" / "beta.lock").read_bytes()
    images = str(tmp_path / "images")
    try:
        with _cwd(repo):
            write_profile(repo, "beta", extra=", hello")
            assert main(["lock", "profiles/beta.yaml"]) == 0
            assert main(["plan", "profiles/beta.yaml", "--out", str(tmp_path / "plan.json"), "--images", images]) == 2
            capsys.readouterr()
            junit = tmp_path / "apply.xml"
            assert main(["apply", str(tmp_path / "plan.json"), "--images", images, "--junit", str(junit)]) == 2
            out = capsys.readouterr().out
            assert "x86_64: built initramfs" in out
            # what reconcile does (issue 15): boot-tested and recorded as a generation
            assert "profiles/beta.yaml: generation 1 recorded: rebuilt x86_64; 1 of 1 boot tests passed" in out, out
            assert "applied " in out and "profiles/beta.yaml generation 1; 1 of 1 boot tests passed" in out
            assert "<testcase" in junit.read_text()
            assert main(["history", "profiles/beta.yaml", "--images", images]) == 0
            assert "tests 1/1" in capsys.readouterr().out
            write_profile(repo, "beta", extra=", hello", policy="policy: {denied-packages: [telnetd]}\n")
            assert main(["apply", str(tmp_path / "plan.json"), "--images", images]) == 1
            err = capsys.readouterr().err
            assert "is stale" in err and "profiles/beta.yaml changed since the plan" in err
    finally:
        (repo / "profiles" / "beta.yaml").write_bytes(original[0])
        (repo / "profiles" / "beta.lock").write_bytes(original[1])


def test_policy_violation_exits_3_naming_it(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with _cwd(repo):
        write_profile(repo, "gamma", extra=", nano", policy="policy:\n  denied-packages: [libtinfo6]\n"
                      "  allowed-licenses: [MIT]\n")
        assert main(["lock", "profiles/gamma.yaml"]) == 0
        capsys.readouterr()
        assert main(["plan", "profiles/gamma.yaml"]) == 3
        out = capsys.readouterr().out
        assert "x86_64: libtinfo6 is denied by policy" in out
        assert "is licensed GPL-2.0-only, not in allowed-licenses" in out  # the kernel
        assert main(["plan", "profiles/gamma.yaml", "--format", "json"]) == 3
        doc = json.loads(capsys.readouterr().out)
        rules = {v["rule"] for p in doc["profiles"] for v in p["violations"]}
        assert {"denied-packages", "allowed-licenses"} <= rules
        (repo / "profiles" / "gamma.yaml").unlink()
        (repo / "profiles" / "gamma.lock").unlink()


def test_bad_base_new_profile_and_corrupt_generation(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with _cwd(repo):
        capsys.readouterr()
        assert main(["plan", "--base", "no-such-ref"]) == 1
        assert "base ref 'no-such-ref' does not exist" in capsys.readouterr().err
        write_profile(repo, "delta")
        assert main(["lock", "profiles/delta.yaml"]) == 0
        capsys.readouterr()
        assert main(["plan", "profiles/delta.yaml", "--format", "json"]) == 2
        doc = json.loads(capsys.readouterr().out)
        assert doc["profiles"][0]["status"] == "new"  # absent at the base: all new, not an error
        (repo / "profiles" / "delta.yaml").unlink()
        (repo / "profiles" / "delta.lock").unlink()
        record = sorted((repo / "images" / "beta" / "generations").glob("*.json"))[-1]
        saved = record.read_bytes()
        record.write_text("{not json")
        try:
            assert main(["history", "profiles/beta.yaml"]) == 1
            err = capsys.readouterr().err
            assert f"{record}: corrupt generation record" in err and "delete the file" in err
        finally:
            record.write_bytes(saved)
