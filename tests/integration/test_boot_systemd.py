"""``init: systemd`` boots in QEMU: Debian 13's systemd and systemd-sysv, imported with their closure
(``vcomp import debian systemd systemd-sysv --closure``) into a copy of the sample repository, run as PID 1 from
the initramfs (``/init`` -> systemd). The sample service (hello-web's httpd, its profile override) is a unit
file; the contract units print the markers the project's init prints (init started, the driver, the network,
``VCOMP-SERVICE: up httpd``, the boot checks, ready, power-off, ``VCOMP-SERVICE: stopped httpd``).

Marker ``systemd`` (``make test-systemd``), not in ``make test``: the import builds 35 packages (about a minute
of CPU, the .debs downloaded once into the cache) before a build and a boot of about 15 s (x86_64, TCG).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from composer.arch import get_arch
from composer.boot.session import run_boot
from composer.cli.main import main
from composer.compose.build import read_manifest
from tests.conftest import REPO
from tests.integration.conftest import copy_profiles
from tests.integration.images_fixture import with_cache

pytestmark = [pytest.mark.integration, pytest.mark.systemd]

KEY = REPO / "keys" / "sample" / "INSECURE-SAMPLE-developer.key"
ARCHES = ("x86_64", "aarch64", "riscv64")

PROFILE = """\
name: systemd
description: hello-web's httpd as a systemd unit; Debian's systemd is PID 1 in an initramfs, powering off.
architectures: [{arch}]
repositories:
  - name: sample
    url: ../images/repo
    root: trust/sample-root.json
packages: [base-files, busybox, busybox-net, systemd, systemd-sysv, hello-web]
capabilities: [network]
drivers: [virtio-net]
kernel:
  package: linux
  # no udev in systemd's closure: the serial getty would wait 90 s for its .device unit
  cmdline: quiet panic=-1 vcomp.poweroff=1 systemd.mask=serial-getty@{console}.service
init: systemd
hostname: systemd
outputs:
  - type: initramfs
    options: {{compression: gzip}}
services:
  - name: httpd
    environment: {{GREETING: hello}}
boot-tests:
  - name: systemd
    timeout: 300
    checks:
      httpd: |-
        wget -q -O - http://127.0.0.1:8080/index.html | grep -q 'hello from a Veridian service' || exit 1
        pid=$(cat /sys/fs/cgroup/system.slice/httpd.service/cgroup.procs | head -n 1)
        echo "httpd: pid $pid, $(stat -c %U /proc/$pid)"
        [ "$(stat -c %U "/proc/$pid")" = www ] && tr '\\0' '\\n' <"/proc/$pid/environ" | grep -qx GREETING=hello
    expect:
      - "VCOMP-BOOT: init started"
      - "VCOMP-MODULE: ok virtio_net"
      - "VCOMP-NET: "
      - "VCOMP-SERVICE: up httpd"
      - "VCOMP-CHECK: PASS 50-httpd"
      - "VCOMP-BOOT: ready"
      - "VCOMP-BOOT: powering off"
      - "VCOMP-SERVICE: stopped httpd"
"""


def add_systemd(repo: Path, packages: Path, debs: Path, arch: str) -> None:
    """Import systemd's closure for ``arch`` and add what the sample repository does not publish already (the
    sample set builds libc6 and libtinfo6 from recipes, under the same versions)."""
    assert main(["import", "debian", "systemd", "systemd-sysv", "--closure", "--newest-only", "--arch", arch,
                 "--key", str(KEY), "--out", str(debs)]) == 0
    published = {p.name for p in (packages / arch).glob("*.vpk")}
    new = sorted(str(p) for p in debs.glob("*.vpk") if p.name not in published)
    assert main(["repo", "add", str(repo), *new, "--key", str(KEY)]) == 0
    assert main(["repo", "publish", str(repo)]) == 0


class SystemdRepo:
    """A copy of the sample repository; systemd's closure is imported into it once per architecture asked."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.done: set[str] = set()

    def with_arch(self, arch: str) -> Path:
        if arch not in self.done:
            add_systemd(self.base / "images" / "repo", self.base / "images" / "packages", self.base / f"debs-{arch}",
                        arch)
            self.done.add(arch)
        return self.base


@pytest.fixture(scope="module")
def systemd_repo(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> SystemdRepo:
    base = tmp_path_factory.mktemp("systemd-repo")
    shutil.copytree(sample_repo_base / "images", base / "images", symlinks=True)
    return SystemdRepo(base)


@pytest.mark.parametrize("arch", ARCHES)
def test_systemd_runs_the_service_and_keeps_the_boot_contract(systemd_repo: SystemdRepo, arch: str,
                                                              tmp_path: Path) -> None:
    if shutil.which(get_arch(arch).qemu) is None:
        pytest.fail(f"{get_arch(arch).qemu} is missing: run scripts/setup.sh")
    profiles = copy_profiles(systemd_repo.with_arch(arch), tmp_path)
    profile = profiles / "systemd.yaml"
    profile.write_text(PROFILE.format(arch=arch, console=get_arch(arch).console))
    with with_cache(tmp_path / "cache"):
        assert main(["lock", str(profile)]) == 0
        assert main(["build", str(profile), "--images", str(tmp_path / "images-out")]) == 0
    built = tmp_path / "images-out" / "systemd" / arch
    [case] = run_boot(read_manifest(built), built, "initramfs", "", logs=tmp_path)
    log = case.watch.log
    assert case.missing == (), f"missing {case.missing}; console tail:\n{case.watch.tail(40)}"
    assert case.passed, case.watch.tail(40)
    assert log.index("VCOMP-SERVICE: up httpd") < log.index("VCOMP-CHECKS: done") < log.index("VCOMP-BOOT: ready")
