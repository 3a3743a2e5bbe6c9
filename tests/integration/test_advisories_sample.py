"""Advisories on the sample repositories (docs/advisories.md): the Debian import's feed holds real CVEs for the
sample packages, read back through TUF; a profile locked at a version an advisory covers shows it in
``vcomp audit`` and ``vcomp plan``, and the severity gate exits 3.

The x86_64 Debian closure is imported into the session's sample Debian repository (as test_boot_server.py
does: a re-import of cached .debs, about a minute); the advisory a maintainer adds goes into a hard-linked copy
of it, so the shared repository is not changed. No image is built and nothing boots.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import git
import pytest

from composer.advisory.client import client_feed
from composer.cli.main import main
from composer.repo.advisories import read_feed
from composer.repo.client import RepositoryClient
from composer.repo.debianset import build_debian_repo
from composer.repo.sample import SampleCheckout
from composer.repo.store import RepoStore
from tests.conftest import REPO
from tests.integration.conftest import copy_profiles
from tests.integration.images_fixture import with_cache
from tests.integration.test_boot_server import server_profile

pytestmark = pytest.mark.integration
CVE = re.compile(r"^CVE-\d{4}-\d{4,7}$")
# sample packages (binary names, as locks hold them) and the Debian sources whose changelogs name CVEs
SAMPLE = {"openssh-server": "openssh", "libssl3t64": "openssl", "nginx": "nginx", "libpython3.13-minimal": "python3"}


@pytest.fixture(scope="module")
def debian(sample_repo_base: Path) -> Path:
    build_debian_repo(sample_repo_base / "images" / "debian", sample_repo_base / "images" / "debian-packages",
                      checkout=SampleCheckout(root=REPO), arches=("x86_64",))
    return sample_repo_base / "images" / "debian"


def test_the_debian_feed_has_real_cves_for_the_sample_packages(debian: Path, tmp_path: Path) -> None:
    feed = read_feed(RepoStore(debian))
    root = (REPO / "profiles" / "trust" / "debian-root.json").read_bytes()
    verified = client_feed(RepositoryClient(str(debian), root, tmp_path / "cache"))
    assert verified.by_id().keys() == feed.by_id().keys() and len(feed.advisories) > 100
    for name, source in SAMPLE.items():
        named = [a for a in feed.advisories if any(x.name == name for x in a.affected)]
        assert named, f"no advisory names {name}"
        assert all(a.id == f"DEBIAN-{a.aliases[0]}" and CVE.match(a.aliases[0]) for a in named)
        assert any(source in a.summary for a in named), f"{name}: no advisory from the {source} changelog"
        entry = next(x for x in named[0].affected if x.name == name)
        assert entry.ecosystem == "Debian:13" and entry.fixed
    print(f"{len(feed.advisories)} CVEs; " + ", ".join(
        f"{n}: {sum(any(x.name == n for x in a.affected) for a in feed.advisories)}" for n in SAMPLE))


def test_a_locked_version_an_advisory_covers_shows_in_audit_and_plan_and_the_gate_exits_3(
        debian: Path, sample_repo_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "os"
    (work / "images").mkdir(parents=True)
    subprocess.run(["cp", "-al", str(debian), str(work / "images" / "debian")], check=True)  # writes replace files
    profiles = copy_profiles(sample_repo_base, work)
    g = git.Repo.init(work, initial_branch="main")
    for var, value in (("GIT_AUTHOR_NAME", "T"), ("GIT_AUTHOR_EMAIL", "t@example.org"),
                       ("GIT_COMMITTER_NAME", "T"), ("GIT_COMMITTER_EMAIL", "t@example.org")):
        monkeypatch.setenv(var, value)
    (work / "README").write_text("an OS\n")
    g.index.add(["README"])
    g.index.commit("start")
    monkeypatch.chdir(work)
    prof = profiles / "server.yaml"
    text = server_profile(("x86_64",))
    assert "\npolicy:\n" in text
    prof.write_text(text.replace("\npolicy:\n", "\npolicy:\n  advisories: {max-severity: high}\n"))
    with with_cache(tmp_path / "cache"):
        assert main(["lock", str(prof)]) == 0
        nginx = next(r for r in json.loads(prof.with_suffix(".lock").read_text())["architectures"]["x86_64"]
                     if r["name"] == "nginx")
        advisory = tmp_path / "VER-2026-0100.json"
        advisory.write_text(json.dumps({
            "id": "VER-2026-0100", "modified": "2026-12-05T00:00:00Z", "summary": "nginx: request smuggling",
            "affected": [{"package": {"ecosystem": "Debian:13", "name": "nginx"}, "ranges": [{"type": "ECOSYSTEM",
                          "events": [{"introduced": "0"}, {"fixed": nginx["version"] + "+fix1"}]}]}],
            "database_specific": {"severity": "critical"}}))
        key = REPO / "keys" / "sample" / "INSECURE-SAMPLE-developer.key"
        assert main(["advisory", "add", str(work / "images" / "debian"), str(advisory), "--key", str(key)]) == 0
        capsys.readouterr()

        assert main(["audit", str(prof)]) == 0                       # a report: no threshold
        assert "VER-2026-0100" in capsys.readouterr().out
        assert main(["audit", str(prof), "--severity", "high", "--json"]) == 3
        doc = json.loads(capsys.readouterr().out)
        assert doc["over-threshold"] == 1 and doc["advisories"] > 100
        (hit,) = [f for f in doc["findings"] if f["id"] == "VER-2026-0100"]
        assert (hit["name"], hit["version"], hit["severity"], hit["fixed"]) == (
            "nginx", nginx["version"], "critical", [nginx["version"] + "+fix1"])
        assert main(["audit", str(prof.with_suffix(".lock")), "--severity", "critical"]) == 3
        text = capsys.readouterr().out
        assert "VER-2026-0100" in text and "1 at or above severity critical (exit 3)" in text

        assert main(["plan", str(prof), "--format", "json"]) == 3
        plan = json.loads(capsys.readouterr().out)
        (p,) = plan["profiles"]
        assert {"action": "introduce", "name": "nginx", "id": "VER-2026-0100"}.items() <= next(
            a for a in p["advisories"] if a["id"] == "VER-2026-0100").items()
        # (a new profile: every package is added, so the setuid gate speaks too)
        gated = [v["message"] for v in p["violations"] if v["rule"] == "advisories"]
        assert gated == [f"x86_64: nginx {nginx['version']} is affected by VER-2026-0100 (critical; fixed in "
                         f"{nginx['version']}+fix1)"] and plan["exit_code"] == 3
        assert main(["plan", str(prof)]) == 3
        table = capsys.readouterr().out
        assert "introduces x86_64: nginx" in table and "policy advisories: x86_64: nginx" in table


def test_vcomp_import_debian_publishes_the_cves_its_changelogs_name(debian: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`vcomp import debian --repo R` merges the CVEs the imported changelogs name into R's signed feed with the
    import's key (the .debs are the session's cached ones); a second import adds nothing; a repository without
    an advisories role keeps its feed and the line says how to delegate one (the import itself succeeds)."""
    from composer import schema
    from composer.repo import edit
    from composer.repo.advisories import delegate_advisories
    from tests.repo_fixtures import make_keys
    keys = make_keys(tmp_path / "keys")
    online = {role: [keys.by_name[role]] for role in ("index", "snapshot", "timestamp")}
    argv = ["import", "debian", *(a for s in ("trixie", "trixie-updates", "trixie-security") for a in ("--suite", s)),
            "openssh-client", "--key", str(keys.path("alice")), "--out", str(tmp_path / "out"), "--json"]
    for name, with_role in (("with", True), ("without", False)):
        repo = tmp_path / name
        edit.init(repo, root_keys=[keys.root1], root_threshold=1, targets_keys=[keys.targets], online=online,
                  online_paths={role: [str(keys.path(role))] for role in online}, architectures=["x86_64"])
        edit.delegate(RepoStore(repo), "debian", [keys.alice.public], ["*"], targets_keys=[keys.targets])
        if with_role:
            delegate_advisories(RepoStore(repo), [keys.alice.public], targets_keys=[keys.targets])
        assert main([*argv, "--repo", str(repo)]) == 0
        summary = json.loads(capsys.readouterr().out)
        schema.check(summary, "import-debian.schema.json", origin="import", locate=lambda _p: (1, 1))
        advisories = summary["repository"]["advisories"]
        assert advisories["derived"] > 0, "openssh's changelog names CVEs"
        feed = read_feed(RepoStore(repo))
        if with_role:
            assert advisories["published"] == advisories["derived"] == len(feed.advisories)
            assert all(any(x.name == "openssh-client" for x in a.affected) for a in feed.advisories)
            assert main([*argv, "--repo", str(repo)]) == 0
            assert json.loads(capsys.readouterr().out)["repository"]["advisories"]["published"] == 0
            assert read_feed(RepoStore(repo)) == feed
        else:
            assert advisories["published"] == 0 and not feed.advisories
            assert "delegates no 'advisories' role" in advisories["refused"]
            assert main([a for a in argv if a != "--json"] + ["--repo", str(repo)]) == 0
            err = capsys.readouterr().err
            assert "CVEs named by the changelogs, not published" in err and "delegate advisories/*" in err
