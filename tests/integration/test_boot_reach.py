"""Images you can reach: boot tests whose host-side checks talk to the running guest through ports of 127.0.0.1
that QEMU forwards (``boot-tests[].host-checks``, docs/boot-tests.md, docs/reach.md).

Two boots (x86_64 initramfs, TCG):

- ``web``: the sample hello-web (BusyBox httpd on 8080): two HTTP checks pass (a page's text, a 404), and in
  the same boot a second test whose HTTP and ssh checks aim at ports nothing listens on fails, each check
  within its 5 s timeout, with the reason;
- ``ssh`` (marker ``reach`` too: it imports Debian's dropbear with ``vcomp import debian --closure`` into a test
  repository, a download): a REAL sshd, dropbear, as a service of a test package (tests/data/reach/sshd); the
  profile's user carries the INSECURE sample public key (``users[].ssh-keys``); the ssh check logs in with the
  sample private key and runs ``id -un``; in the same boot a test with another key is refused, with the reason.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from composer import settings
from composer.arch import get_arch
from composer.boot.session import Case, Reach, run_boot
from composer.cli.main import main
from composer.compose.build import read_manifest
from composer.run import run
from tests.conftest import REPO
from tests.integration.conftest import copy_profiles
from tests.integration.images_fixture import with_cache

pytestmark = pytest.mark.integration

HEAD = """\
architectures: [x86_64]
capabilities: [network]
drivers: [virtio-net]
kernel:
  package: linux
  cmdline: quiet
init: init
outputs:
  - type: initramfs
    options: {compression: gzip}
"""

WEB = f"""\
name: web
repositories:
  - name: sample
    url: ../images/repo
    root: trust/sample-root.json
packages: [base-files, busybox, busybox-net, init, hello-web]
{HEAD}boot-tests:
  - name: web
    timeout: 240
    expect: ["VCOMP-SERVICE: up httpd"]
    host-checks:
      - http: {{port: 8080, path: /index.html, contains: "hello from a Veridian service"}}
      - http: {{port: 8080, path: /missing, status: 404}}
  - name: closed
    expect: ["VCOMP-SERVICE: up httpd"]
    host-checks:
      - http: {{port: 9, timeout: 5}}
      - ssh: {{user: admin, port: 2222, command: "true", timeout: 5}}
"""

SAMPLE_PUB = (REPO / "keys" / "sample" / "INSECURE-sample-ssh-ed25519.pub").read_text().strip()

SSH = f"""\
name: ssh
repositories:
  - name: sample
    url: ../images/repo
    root: trust/sample-root.json
    priority: 1                      # libc6 is in both: the sample set's
  - name: debian
    url: ../images/dropbear
    root: trust/dropbear-root.json
packages: [base-files, busybox, busybox-net, init, hello-web, reach-sshd]
users:
  - name: admin
    uid: 1000
    password-hash: "*"               # not locked ('!'): sshd refuses locked accounts
    ssh-keys: ["{SAMPLE_PUB}"]
{HEAD}boot-tests:
  - name: reach
    timeout: 300
    expect: ["VCOMP-SERVICE: up httpd", "VCOMP-SERVICE: up sshd"]
    host-checks:
      - http: {{port: 8080, path: /index.html, contains: "hello from a Veridian service"}}
      - ssh: {{user: admin, command: "id -un", output: admin}}
      - ssh: {{user: admin, command: "stat -c '%U %a' ~/.ssh ~/.ssh/authorized_keys", output: "admin 700\\nadmin 600"}}
  - name: wrong-key
    expect: ["VCOMP-SERVICE: up sshd"]
    host-checks:
      - ssh: {{user: admin, command: "true", key: other-key}}
"""


def _qemu() -> None:
    if shutil.which(get_arch("x86_64").qemu) is None:
        pytest.fail(f"{get_arch('x86_64').qemu} is missing: run scripts/setup.sh")


def _build(base: Path, name: str, text: str) -> Path:
    profiles = base / "profiles"
    (profiles / f"{name}.yaml").write_text(text)
    with with_cache(base / "cache"):
        assert main(["lock", str(profiles / f"{name}.yaml")]) == 0
        assert main(["build", str(profiles / f"{name}.yaml"), "--images", str(base / "images-out")]) == 0
    return base / "images-out" / name / "x86_64"


def _by_name(cases: list[Case]) -> dict[str, Case]:
    return {c.test: c for c in cases}


@pytest.fixture(scope="module")
def web(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("reach-web")
    copy_profiles(sample_repo_base, base)
    return _build(base, "web", WEB)


def test_http_checks_reach_the_guest_and_a_closed_port_fails_within_its_timeout(
        web: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the CLI, as a user runs it: ``vcomp boot --forward 0:8080 --json`` (exit 1: one test fails)."""
    _qemu()
    capsys.readouterr()
    started = time.monotonic()
    assert main(["boot", str(web), "--output", "initramfs", "--forward", "0:8080", "--json"]) == 1
    took = time.monotonic() - started
    doc = json.loads(capsys.readouterr().out)
    [forward] = doc["forwards"]
    assert forward["guest"] == 8080 and 0 < forward["host"] < 65536
    cases = {c["test"]: c for c in doc["cases"]}
    ok, closed = cases["web"], cases["closed"]
    assert ok["passed"], ok
    assert [(c["check"], c["passed"], c["attempts"]) for c in ok["checks"]] == [
        ("http :8080/index.html", True, 1), ("http :8080/missing", True, 1)]
    assert not closed["passed"] and closed["missing"] == [] and closed["failures"] == []
    [http, ssh] = closed["checks"]
    for check in (http, ssh):
        assert not check["passed"] and check["reason"].startswith("no answer within 5 s (") and check["seconds"] < 8
    assert closed["reason"].startswith("host check failed: http :9/: no answer within 5 s")
    assert (web / "boot" / "x86_64-initramfs-none.log").is_file()
    print(f"\nweb boot with its host checks: {took:.1f} s")


def test_a_forward_to_another_address_is_refused(web: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boot", str(web), "--output", "initramfs", "--forward", "0.0.0.0:8080:80"]) == 1
    err = capsys.readouterr().err
    assert "--forward '0.0.0.0:8080:80': forwards are bound to 127.0.0.1 only, not '0.0.0.0'" in err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def ssh_image(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian's dropbear imported into a throwaway repository with the test service package beside it."""
    base = tmp_path_factory.mktemp("reach-ssh")
    profiles = copy_profiles(sample_repo_base, base)
    keys, repo = base / "keys", base / "images" / "dropbear"
    for role in ("root", "targets", "index", "snapshot", "timestamp", "debian"):
        assert main(["key", "generate", role, "--dir", str(keys)]) == 0
    assert main(["repo", "init", str(repo), "--root-key", str(keys / "root.key"),
                 "--targets-key", str(keys / "targets.key"), "--index-key", str(keys / "index.key"),
                 "--snapshot-key", str(keys / "snapshot.key"), "--timestamp-key", str(keys / "timestamp.key"),
                 "--arch", "x86_64"]) == 0
    assert main(["repo", "delegate", str(repo), "debian", "--key", str(keys / "debian.pub"), "--packages", "*",
                 "--targets-key", str(keys / "targets.key")]) == 0
    started = time.monotonic()
    with with_cache(settings.cache_dir()):   # the session's apt state and .deb cache
        assert main(["import", "debian", "--suite", "trixie", "--newest-only", "--closure", "dropbear-bin",
                     "--key", str(keys / "debian.key"), "--out", str(base / "debs"), "--repo", str(repo)]) == 0
    print(f"\nimport of dropbear-bin --closure: {time.monotonic() - started:.1f} s")
    assert main(["pkg", "build", str(REPO / "tests" / "data" / "reach" / "sshd"), "--key", str(keys / "debian.key"),
                 "--out", str(base / "debs")]) == 0
    assert main(["repo", "add", str(repo), str(base / "debs" / "reach-sshd-1.0.0-noarch.vpk"),
                 "--key", str(keys / "debian.key")]) == 0
    assert main(["repo", "publish", str(repo)]) == 0
    shutil.copyfile(repo / "metadata" / "1.root.json", profiles / "trust" / "dropbear-root.json")
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "not the admin's", "-f", str(profiles / "other-key")])
    return _build(base, "ssh", SSH)


@pytest.mark.reach
def test_an_ssh_check_logs_in_to_a_real_sshd_and_a_wrong_key_is_refused(ssh_image: Path, tmp_path: Path) -> None:
    _qemu()
    profiles = ssh_image.parents[2] / "profiles"
    started = time.monotonic()
    cases = _by_name(run_boot(read_manifest(ssh_image), ssh_image, "initramfs", "", logs=tmp_path,
                              reach=Reach(keys=profiles)))
    took = time.monotonic() - started
    ok, wrong = cases["reach"], cases["wrong-key"]
    assert ok.passed, f"{ok.reason()}\n{ok.watch.tail(40)}"
    assert [c.passed for c in ok.checks] == [True, True, True]
    assert not wrong.passed
    [refused] = wrong.checks
    assert refused.reason.startswith("the guest refused the key for admin: ") and refused.attempts == 1, refused
    assert "Permission denied" in refused.reason
    known = (tmp_path / "x86_64-initramfs-none.known_hosts").read_text()
    assert known.startswith("[127.0.0.1]:") and "ssh-ed25519" in known   # this boot's, not the user's
    assert not list(tmp_path.glob("ssh-key-*")), "the 0600 key copies are removed after the boot"
    print(f"\nssh boot with its host checks: {took:.1f} s; " + json.dumps([c.to_dict() for c in ok.checks]))
