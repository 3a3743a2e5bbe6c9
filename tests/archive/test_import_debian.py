"""``vcomp import debian`` against the real archive (marker ``archive``: network, apt, minutes).

- ``nano`` and its closure imported WITH payload from bookworm through the private apt state: every package
  verifies, nano's conffile ``/etc/nanorc`` has role ``config``, the provenance carries the ``.deb``'s sha256
  (checked against the downloaded file) and Filename, and the packages go through ``repo add`` and publish;
- the whole of bookworm main amd64 (``/work/scratch14/Packages`` or apt's lists) metadata-only, added and
  published, timed per phase (run with ``-s`` to see the figures; docs/packages/import.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from composer.arch import get_arch
from composer.cli.main import main
from composer.package.archive import read_header, verify_package
from composer.package.build import default_cache
from composer.package.debian import DebianArchive, DebRef
from composer.repo import edit
from composer.repo.store import RepoStore
from tests.repo_fixtures import Keys, make_keys

pytestmark = pytest.mark.archive
SCRATCH = Path("/work/scratch14/Packages")


def _repo(directory: Path, keys: Keys) -> Path:
    online = {role: [keys.by_name[role]] for role in ("index", "snapshot", "timestamp")}
    edit.init(directory, root_keys=[keys.root1], root_threshold=1, targets_keys=[keys.targets], online=online,
              online_paths={role: [str(keys.path(role))] for role in online}, architectures=["x86_64"])
    edit.delegate(RepoStore(directory), "debian", [keys.alice.public], ["*"], targets_keys=[keys.targets])
    return directory


def test_nano_with_payload(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = make_keys(tmp_path / "keys")
    repo = _repo(tmp_path / "repo", keys)
    code = main(["import", "debian", "--suite", "bookworm", "--closure", "nano", "--key", str(keys.path("alice")),
                 "--out", str(tmp_path / "out"), "--repo", str(repo), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["packages"] >= 4 and summary["repository"]["published"] == summary["packages"]
    nano = next((tmp_path / "out").glob("nano-*.vpk"))
    verified = verify_package(nano)
    roles = {e.path: e.role for e in verified.header.manifest.entries if e.type == "file"}
    assert roles["etc/nanorc"] == "config" and roles["bin/nano"] == "binary"
    (source,) = verified.header.metadata.provenance["sources"]
    assert source["kind"] == "deb" and source["path"].startswith("pool/main/n/nano/nano_")
    _ref, deb = DebianArchive(default_cache(), suite="bookworm").download(get_arch("x86_64"), DebRef(
        name="nano", version=source["version"], arch=source["arch"]))
    from composer.fsutil import sha256_file
    assert sha256_file(deb) == source["sha256"]
    assert verified.header.metadata.upstream_version == source["version"]


@pytest.mark.skipif(not SCRATCH.exists() and not os.environ.get("VCOMP_IMPORT_ALL"),
                    reason="needs /work/scratch14/Packages (or VCOMP_IMPORT_ALL=1 to read apt's lists)")
def test_the_whole_suite_metadata_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = make_keys(tmp_path / "keys")
    repo = _repo(tmp_path / "repo", keys)
    source = ["--packages", str(SCRATCH)] if SCRATCH.exists() else ["--suite", "bookworm"]
    code = main(["import", "debian", *source, "--metadata-only", "--all", "--jobs", "2",
                 "--key", str(keys.path("alice")), "--out", str(tmp_path / "out"), "--repo", str(repo),
                 "--report", str(tmp_path / "report.json"), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    print(json.dumps({k: summary[k] for k in ("packages", "seconds", "ms-per-package", "ms-per-package-by-phase",
                                              "cannot-express")}, indent=1))
    assert summary["packages"] > 60_000 and summary["repository"]["published"] == summary["packages"]
    bash = read_header(next((tmp_path / "out").glob("bash-5*.vpk"))).metadata
    assert bash.essential and bash.version_scheme == "deb"
