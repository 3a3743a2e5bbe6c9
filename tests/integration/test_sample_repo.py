"""The sample repository: built like `make demo` does, its root is the committed one, and search, info
and fetch return verified packages over file:// and over http://127.0.0.1 from the repo server."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.package.archive import verify_package
from composer.repo.client import RepositoryClient
from composer.repo.sample import SampleCheckout, build_sample_repo
from composer.trust.keys import load_public_key
from tests.conftest import REPO

pytestmark = pytest.mark.integration
TRUST_ROOT = REPO / "profiles" / "trust" / "sample-root.json"


@pytest.fixture(scope="module")
def sample_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("sample")
    build_sample_repo(base / "repo", base / "packages", checkout=SampleCheckout(root=REPO))
    return base / "repo"


def test_root_is_the_committed_trust_root(sample_repo: Path) -> None:
    assert (sample_repo / "metadata" / "1.root.json").read_bytes() == TRUST_ROOT.read_bytes()


def _check_client(url: str, cache: Path, out: Path) -> None:
    client = RepositoryClient(url, TRUST_ROOT.read_bytes(), cache)
    dev = load_public_key(REPO / "keys" / "sample" / "INSECURE-SAMPLE-developer.pub")
    for arch in ("x86_64", "aarch64", "riscv64"):
        names = {e.name for e in client.index(arch)}
        assert {"linux", "busybox", "init", "base-files", "nano", "driver-virtio-blk"} <= names
        assert ("isolinux" in names) is (arch == "x86_64")
        entry = client.metadata("nano", arch)
        path = client.fetch(entry, out / arch)
        assert verify_package(path, dev).header.metadata.arch == arch
    found = client.search("virtio-net", "aarch64")  # two kernel builds: the driver of each (6.12.117-1, 6.12.118-1)
    assert {e.name for e in found} == {"driver-virtio-net"} and len({e.version_text for e in found}) == len(found)


def test_file_url(sample_repo: Path, tmp_path: Path) -> None:
    _check_client(sample_repo.as_uri(), tmp_path / "cache", tmp_path / "out")


def test_http_from_vcomp_repo_serve(sample_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    server = subprocess.Popen([sys.executable, "-m", "composer", "repo", "serve", str(sample_repo), "--port",
                               str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        _check_client(url, tmp_path / "cache", tmp_path / "out")
        root = str(TRUST_ROOT)
        assert main(["search", "editor", "--repo", url, "--root", root]) == 0
        assert "nano" in capsys.readouterr().out
        assert main(["info", "linux", "--arch", "aarch64", "--repo", url, "--root", root]) == 0
        assert "arch         aarch64" in capsys.readouterr().out
        assert main(["fetch", "busybox", "--arch", "aarch64", "--repo", url, "--root", root,
                     "--out", str(tmp_path / "f")]) == 0
        assert list((tmp_path / "f").glob("busybox-*-aarch64.vpk"))
    finally:
        server.terminate()
        server.wait(timeout=10)

