"""The SDK end to end (issue 18, ``make test-sdk``, marker ``sdk``): ``vcomp sdk build`` twice gives the same
manifest and SBOM bytes; the examples (examples/hello-cmake: C + CMake + libcrypto, examples/hello-meson: C++ +
Meson + zlib, examples/hello-rust: cargo, examples/hello-go: Go + cgo + zlib) are built by their recipes with the
server profile's SDK (hello-rust and hello-go twice: the same bytes), added to the session's sample repository,
installed into the server profile and run at boot on x86_64, aarch64 and riscv64, each line checked on the console.

Minutes: the SDK's .debs (~300 MB per architecture, once per cache), the Debian closure import and TCG boots.
The sample repository is the session's: run this marker on its own (``make test-sdk``).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.repo.debianset import build_debian_repo
from composer.repo.sample import SampleCheckout
from tests.conftest import REPO
from tests.integration.conftest import copy_profiles
from tests.integration.images_fixture import with_cache
from tests.integration.test_boot_server import boot_server, server_profile

pytestmark = [pytest.mark.integration, pytest.mark.sdk]
KEY = REPO / "keys" / "sample" / "INSECURE-SAMPLE-developer.key"
EXAMPLES = ("hello-cmake", "hello-meson", "hello-rust", "hello-go")
PYTHON_EXAMPLES = ("hello-python",)    # the python source kind (docs/packages/python.md): noarch, no SDK
REBUILT = ("hello-rust", "hello-go")      # the C examples' reproducibility is tests/unit/test_split.py's
LINES = {"hello-cmake": r"hello-cmake: C on {arch} with OpenSSL 3\.", "hello-meson": r"hello-meson: C\+\+ on {arch} "
         r"with zlib 1\.", "hello-rust": r"hello-rust: Rust on {arch} \(rustc 1\.",
         "hello-go": r"hello-go: Go on {arch} with zlib 1\.",
         "hello-python": r"hello-python: Python 3\.\d+\.\d+ on {arch} with PyYAML \d"}
# a check's output goes to its log in the guest: tee puts the program's line on the console too
CHECKS = """      hello-cmake: |-
        hello-cmake | tee /dev/console | grep -q '^hello-cmake: C on'
      hello-meson: |-
        hello-meson | tee /dev/console | grep -q '^hello-meson: C++ on'
      hello-rust: |-
        hello-rust | tee /dev/console | grep -q '^hello-rust: Rust on'
      hello-go: |-
        hello-go | tee /dev/console | grep -q '^hello-go: Go on'
      hello-python: |-
        hello-python get | tee /dev/console | grep -q '^hello-python: Python'
"""


def test_sdk_build_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        start = time.monotonic()
        assert main(["sdk", "build", str(REPO / "profiles" / "server.yaml"), "--arch", "aarch64", "--out",
                     str(out)]) == 0
        print(f"sdk build aarch64 ({run}): {time.monotonic() - start:.0f} s")
        outs.append(out)
    for name in ("sdk-manifest.json", "sdk.spdx.json", "environment-setup-aarch64"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    for deb in (b"libssl-dev", b'"libstd-rust-dev"', b'"rustc"', b'"golang-1.19-go"'):
        assert deb in (outs[0] / "sdk-manifest.json").read_bytes(), deb
    assert (outs[0] / "sysroot" / "usr" / "include" / "openssl" / "ssl.h").is_file()


def _profile(arch: str) -> str:
    text = server_profile((arch,))
    text = text.replace('"driver-*"]', '"driver-*", "hello-*"]')
    names = (*EXAMPLES, *PYTHON_EXAMPLES)
    text = text.replace("  - python3\n", "  - python3\n" + "".join(f"  - {n}\n" for n in names), 1)
    text = text.replace("    checks:\n", "    checks:\n" + CHECKS, 1)
    passes = "".join(f'"VCOMP-CHECK: PASS 50-{n}", ' for n in sorted(names))   # checks run in name order
    text = text.replace('"VCOMP-CHECK: PASS 50-http", ', passes + '"VCOMP-CHECK: PASS 50-http", ', 1)
    assert text.count("hello-") >= 4 * len(names), "profiles/server.yaml changed: update this test's edits"
    return text


@pytest.mark.parametrize("arch", ["x86_64", "aarch64", "riscv64"])
def test_examples_built_with_the_sdk_run_at_boot(arch: str, sample_repo_base: Path, tmp_path: Path) -> None:
    pkgs = tmp_path / "pkgs"
    start = time.monotonic()
    # the SDK examples with the SDK of REPO/profiles/server.yaml (its lock): no host -dev package; a pure-Python
    # project's wheel: the same noarch package for every arch
    for name in (*EXAMPLES, *PYTHON_EXAMPLES):
        assert main(["pkg", "build", str(REPO / "examples" / name), "--arch", arch, "--key", str(KEY),
                     "--out", str(pkgs)]) == 0
    print(f"examples {arch}: {time.monotonic() - start:.0f} s")
    again = tmp_path / "again"
    for name in REBUILT:        # reproducible: another work directory, the same package bytes
        assert main(["pkg", "build", str(REPO / "examples" / name), "--arch", arch, "--key", str(KEY),
                     "--out", str(again)]) == 0
    for vpk in sorted(again.glob("*.vpk")):
        assert vpk.read_bytes() == (pkgs / vpk.name).read_bytes(), vpk.name
    runtime = sorted(str(p) for p in pkgs.glob("*.vpk") if "-dbg-" not in p.name)
    repo = sample_repo_base / "images" / "repo"
    assert main(["repo", "add", str(repo), *runtime, "--key", str(KEY)]) == 0
    assert main(["repo", "publish", str(repo)]) == 0
    build_debian_repo(sample_repo_base / "images" / "debian", sample_repo_base / "images" / "debian-packages",
                      checkout=SampleCheckout(root=REPO), arches=(arch,))
    profiles = copy_profiles(sample_repo_base, tmp_path)
    prof = profiles / "server-sdk.yaml"
    prof.write_text(_profile(arch))
    with with_cache(tmp_path / "cache"):
        assert main(["lock", str(prof)]) == 0
        assert main(["build", str(prof), "--images", str(tmp_path / "images-out")]) == 0
    log = boot_server(tmp_path / "images-out" / "server", arch, tmp_path / "logs")
    for name in (*EXAMPLES, *PYTHON_EXAMPLES):
        assert f"VCOMP-CHECK: PASS 50-{name}" in log
        found = re.search(LINES[name].format(arch=arch) + ".*", log)
        assert found, f"{name}'s line is not on the console"
        print(f"console {arch}: {found.group(0).strip()}")
