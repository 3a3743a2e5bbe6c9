"""A service supervised by init boots in QEMU: the sample hello-web package declares BusyBox httpd as a service
in its [actions]; the profile overrides its environment; the build writes /etc/veridian/services.toml and
init's services.d; init starts it as the user www, waits for its port, prints VCOMP-SERVICE: up httpd, a boot
check fetches the page, and at poweroff init stops it (VCOMP-SERVICE: stopped httpd)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from composer.arch import get_arch
from composer.boot.session import run_boot
from composer.cli.main import main
from composer.compose.build import read_manifest
from tests.integration.conftest import copy_profiles
from tests.integration.images_fixture import with_cache

pytestmark = pytest.mark.integration

PROFILE = """\
name: services
description: The sample service (hello-web's httpd) supervised by init, in an initramfs, powering off.
architectures: [x86_64]
repositories:
  - name: sample
    url: ../images/repo
    root: trust/sample-root.json
packages: [base-files, busybox, busybox-net, init, hello-web]
capabilities: [network]
drivers: [virtio-net]
kernel:
  package: linux
  cmdline: quiet panic=-1 vcomp.poweroff=1
init: init
hostname: services
outputs:
  - type: initramfs
    options: {compression: gzip}
services:
  - name: httpd
    environment: {GREETING: hello}
boot-tests:
  - name: services
    timeout: 240
    checks:
      httpd: |-
        wget -q -O - http://127.0.0.1:8080/index.html | grep -q 'hello from a Veridian service' || exit 1
        for d in /proc/[0-9]*; do
          case "$(tr '\\0' ' ' <"$d/cmdline" 2>/dev/null)" in
            "/bin/busybox httpd -f -p 8080 "*) found=$d ;;
          esac
        done
        echo "httpd: ${found:-not running}"
        [ "$(stat -c %U "$found")" = www ] && tr '\\0' '\\n' <"$found/environ" | grep -qx GREETING=hello
    expect:
      - "VCOMP-BOOT: init started"
      - "VCOMP-SERVICE: up httpd"
      - "VCOMP-CHECK: PASS 50-httpd"
      - "VCOMP-BOOT: ready"
      - "VCOMP-BOOT: powering off"
      - "VCOMP-SERVICE: stopped httpd"
"""


@pytest.fixture(scope="module")
def built(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("services")
    profiles = copy_profiles(sample_repo_base, base)
    (profiles / "services.yaml").write_text(PROFILE)
    with with_cache(base / "cache"):
        assert main(["lock", str(profiles / "services.yaml")]) == 0
        assert main(["build", str(profiles / "services.yaml"), "--images", str(base / "images-out")]) == 0
    return base / "images-out" / "services" / "x86_64"


def test_a_service_is_supervised_by_init_in_qemu(built: Path, tmp_path: Path) -> None:
    if shutil.which(get_arch("x86_64").qemu) is None:
        pytest.fail(f"{get_arch('x86_64').qemu} is missing: run scripts/setup.sh")
    [case] = run_boot(read_manifest(built), built, "initramfs", "", logs=tmp_path)
    log = case.watch.log
    assert case.missing == (), f"missing {case.missing}; console tail:\n{case.watch.tail(40)}"
    assert case.passed, case.watch.tail(40)
    assert log.index("VCOMP-SERVICE: up httpd") < log.index("VCOMP-CHECKS: done")
