"""profiles/server.yaml end to end: the Debian closure of openssh-server, python3 and nginx imported into the
sample Debian repository (composer/repo/debianset.py), locked and built with the project's kernel, drivers,
init and base, and booted in QEMU: sshd and nginx up as init's services, host keys made at the first boot,
python3 running, the web page served.

x86_64 is part of ``make test`` (the import and a disk boot, a few minutes); aarch64 and riscv64 carry the
``server`` marker (``make test-server``: their imports and boots take longer under TCG).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from composer.arch import get_arch
from composer.boot.session import run_boot
from composer.cli.main import main
from composer.compose.build import read_manifest
from composer.repo.debianset import build_debian_repo
from composer.repo.sample import SampleCheckout
from tests.conftest import REPO
from tests.integration.conftest import copy_profiles
from tests.integration.images_fixture import with_cache

pytestmark = pytest.mark.integration
ALL = "architectures: [x86_64, aarch64, riscv64]"
# What the profile's boot test expects, plus what this test reads from the same boot.
MARKERS = ("VCOMP-FIRSTBOOT: ok ssh-host-keys", "VCOMP-SERVICE: up nginx", "VCOMP-SERVICE: up ssh",
           "VCOMP-CHECK: PASS 50-http", "VCOMP-CHECK: PASS 50-python3", "VCOMP-CHECK: PASS 50-ssh-login",
           "VCOMP-BOOT: ready",
           "[ssh] Server listening on")
BOOT_TIMEOUT = {"x86_64": 240, "aarch64": 600, "riscv64": 900}   # measured: x86_64 28 s on a quiet machine


def server_profile(arches: tuple[str, ...]) -> str:
    text = (REPO / "profiles" / "server.yaml").read_text()
    assert ALL in text
    return text.replace(ALL, f"architectures: [{', '.join(arches)}]")


def build_server(sample_repo_base: Path, base: Path, arches: tuple[str, ...]) -> Path:
    """The Debian closure for ``arches`` added to the session's sample Debian repository, then server.yaml
    (restricted to ``arches``) locked and built; the directory of its images."""
    start = time.monotonic()
    build_debian_repo(sample_repo_base / "images" / "debian", sample_repo_base / "images" / "debian-packages",
                      checkout=SampleCheckout(root=REPO), arches=arches)
    print(f"import {','.join(arches)}: {time.monotonic() - start:.0f} s")
    profiles = copy_profiles(sample_repo_base, base)
    prof = profiles / "server.yaml"
    prof.write_text(server_profile(arches))
    start = time.monotonic()
    with with_cache(base / "cache"):
        assert main(["lock", str(prof)]) == 0
        assert main(["build", str(prof), "--images", str(base / "images-out")]) == 0
    print(f"lock+build {','.join(arches)}: {time.monotonic() - start:.0f} s")
    return base / "images-out" / "server"


def boot_server(images: Path, arch: str, logs: Path) -> str:
    if shutil.which(get_arch(arch).qemu) is None:
        pytest.fail(f"{get_arch(arch).qemu} is missing: run scripts/setup.sh")
    built = images / arch
    start = time.monotonic()
    cases = run_boot(read_manifest(built), built, "initramfs", "", logs=logs, timeout=BOOT_TIMEOUT[arch])
    print(f"boot {arch} initramfs: {time.monotonic() - start:.0f} s")
    assert [c.test for c in cases] == ["services-up", "reach-from-host"]
    log = cases[0].watch.log
    missing = [m for m in MARKERS if m not in log]
    for case in cases:
        assert not missing and case.passed, (f"{case.test}: missing {missing or case.missing}; "
                                             f"{case.reason()}; console tail:\n{case.watch.tail(60)}")
    # from the host, through ports of 127.0.0.1: nginx's page, then an ssh login with the profile user's key
    assert [c.check.split()[0] for c in cases[1].checks] == ["http", "ssh"], cases[1].checks
    return log


def check_server_log(log: str) -> None:
    assert "VCOMP-SERVICE: failed" not in log
    assert log.index("VCOMP-FIRSTBOOT: ok ssh-host-keys") < log.index("VCOMP-SERVICE: up ssh")
    assert log.index("VCOMP-SERVICE: up nginx") < log.index("VCOMP-CHECKS: done")


@pytest.fixture(scope="module")
def server_x86_64(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_server(sample_repo_base, tmp_path_factory.mktemp("server-x86_64"), ("x86_64",))


def test_the_server_boots_with_sshd_nginx_and_python3_from_debian(server_x86_64: Path, tmp_path: Path) -> None:
    lock = json.loads((server_x86_64.parents[1] / "profiles" / "server.lock").read_text())
    source = {row["name"]: row["repository"] for row in lock["architectures"]["x86_64"]}
    assert {source[n] for n in ("openssh-server", "nginx", "python3", "libc6")} == {"debian"}
    assert {source[n] for n in ("init", "linux", "base-files", "busybox-lean", "driver-virtio-net")} == {"sample"}
    check_server_log(boot_server(server_x86_64, "x86_64", tmp_path))


@pytest.mark.server
@pytest.mark.parametrize("arch", ["aarch64", "riscv64"])
def test_the_server_boots_on_the_other_architectures(arch: str, sample_repo_base: Path,
                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    images = build_server(sample_repo_base, tmp_path_factory.mktemp(f"server-{arch}"), (arch,))
    check_server_log(boot_server(images, arch, tmp_path_factory.mktemp(f"logs-{arch}")))


def test_an_import_is_reproducible_and_records_each_debs_sha256(tmp_path: Path) -> None:
    """nginx-common's closure (a copy entry, log files owned by www-data) imported twice: the same .vpk bytes;
    each package's provenance names the sha256 of the .deb apt downloaded (checked against the signed index)."""
    import hashlib

    from composer.package.archive import read_header
    from composer.package.build import default_cache
    from composer.repo.debianset import import_closure
    checkout = SampleCheckout(root=REPO)
    first = import_closure("x86_64", tmp_path / "a", checkout=checkout, names=("nginx-common",))
    second = import_closure("x86_64", tmp_path / "b", checkout=checkout, names=("nginx-common",))
    assert first.report["files"] == second.report["files"] and len(first.paths) >= 2
    assert [p.read_bytes() for p in first.paths] == [p.read_bytes() for p in second.paths]
    pool = default_cache() / "debian" / "debs" / "amd64"
    for path in first.paths:
        meta = read_header(path).metadata
        [source] = meta.provenance["sources"]
        deb = pool / f"{source['name']}_{source['version'].replace(':', '%3a')}_{source['arch']}.deb"
        assert hashlib.sha256(deb.read_bytes()).hexdigest() == source["sha256"], deb
    nginx = next(read_header(p).metadata for p in first.paths if p.name.startswith("nginx-common-"))
    copies = {t.path: t.argument for t in nginx.actions.tmpfiles if t.type == "C"}
    assert copies == {"/var/www/html/index.nginx-debian.html": "/usr/share/nginx/html/index.html"}
