"""The TUF conformance client CLI (composer.repo.conformance) against real, small TUF repositories.

Each repository is made with python-tuf's Metadata API and a real ed25519 key, served over file://
or a real HTTP server on 127.0.0.1; the client is vcomp's (UrlFetcher, pinned-root bootstrap,
cache directory rules). The full public suite runs with `make conformance` (not part of `make test`).
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from composer.repo import conformance

TOP_ROLES = (Root.type, Timestamp.type, Snapshot.type, Targets.type)
ARTIFACT = b"hello from a verified target\n"


@dataclass(frozen=True, kw_only=True)
class Repo:
    base: Path
    root: bytes  # 1.root.json as published

    @property
    def metadata_url(self) -> str:
        return (self.base / "metadata").as_uri()

    @property
    def targets_url(self) -> str:
        return (self.base / "targets").as_uri()


def make_repo(base: Path, files: dict[str, bytes]) -> Repo:
    """A complete TUF repository (no consistent snapshots), every top-level role signed by one new key."""
    signer = CryptoSigner.generate_ed25519()
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    root = Root(expires=expires, consistent_snapshot=False)
    for role in TOP_ROLES:
        root.add_key(signer.public_key, role)
    targets = Targets(expires=expires)
    (base / "targets").mkdir(parents=True)
    (base / "metadata").mkdir()
    for name, data in files.items():
        targets.targets[name] = TargetFile.from_data(name, data, ["sha256"])
        (base / "targets" / name).write_bytes(data)
    snapshot = Snapshot(expires=expires)
    snapshot.meta["targets.json"] = MetaFile(version=1)
    timestamp = Timestamp(expires=expires)
    timestamp.snapshot_meta = MetaFile(version=1)
    serializer = JSONSerializer(compact=False)
    published = {}
    for name, signed in (("1.root.json", root), ("targets.json", targets), ("snapshot.json", snapshot),
                         ("timestamp.json", timestamp)):
        md = Metadata(signed)
        md.sign(signer)
        published[name] = md.to_bytes(serializer)
        (base / "metadata" / name).write_bytes(published[name])
    return Repo(base=base, root=published["1.root.json"])


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path / "repo", {"hello.txt": ARTIFACT})


@pytest.fixture
def client_dirs(tmp_path: Path) -> tuple[Path, Path]:
    metadata, targets = tmp_path / "client" / "metadata", tmp_path / "client" / "targets"
    metadata.mkdir(parents=True, mode=0o755)
    targets.mkdir(mode=0o755)
    return metadata, targets


def run(*args: str | Path) -> int:
    return conformance.main([str(a) for a in args])


def init(metadata: Path, root: bytes, where: Path) -> int:
    trusted = where / "initial_root.json"
    trusted.write_bytes(root)
    return run("--metadata-dir", metadata, "init", trusted)


def refresh(metadata: Path, url: str) -> int:
    return run("--metadata-url", url, "--metadata-dir", metadata, "refresh")


def download(metadata: Path, repo: Repo, targets: Path, *names: str, targets_url: str = "",
             metadata_url: str = "") -> int:
    named = [a for n in names for a in ("--target-name", n)]
    return run("--metadata-url", metadata_url or repo.metadata_url, "--metadata-dir", metadata, *named,
               "--target-dir", targets, "--target-base-url", targets_url or repo.targets_url, "download")


def trusted_versions(metadata: Path) -> dict[str, int]:
    """What the suite reads: every *.json in the metadata dir is a trusted role."""
    return {p.name.removesuffix(".json"): Metadata.from_file(str(p)).signed.version
            for p in sorted(metadata.glob("*.json"))}


@pytest.fixture
def http_url(repo: Repo) -> Iterator[str]:
    """The repository over a real HTTP/1.1 keep-alive server on 127.0.0.1."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(repo.base), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_init_refresh_download_over_file_urls(repo: Repo, client_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    metadata, targets = client_dirs
    assert init(metadata, repo.root, tmp_path) == 0
    assert (metadata / "pinned" / "root.json").read_bytes() == repo.root
    assert refresh(metadata, repo.metadata_url) == 0
    assert trusted_versions(metadata) == {"root": 1, "snapshot": 1, "targets": 1, "timestamp": 1}
    # the bytes the repository served are kept as they were (hash comparisons of local metadata)
    assert (metadata / "timestamp.json").read_bytes() == (repo.base / "metadata" / "timestamp.json").read_bytes()

    assert download(metadata, repo, targets, "hello.txt") == 0
    assert [p.read_bytes() for p in targets.iterdir()] == [ARTIFACT]
    # a verified cached copy is used: the repository no longer needs to have the file
    (repo.base / "targets" / "hello.txt").unlink()
    assert download(metadata, repo, targets, "hello.txt") == 0


def test_download_over_loopback_http_keep_alive(repo: Repo, client_dirs: tuple[Path, Path], tmp_path: Path,
                                                http_url: str) -> None:
    metadata, targets = client_dirs
    assert init(metadata, repo.root, tmp_path) == 0
    assert download(metadata, repo, targets, "hello.txt", "missing.txt", metadata_url=f"{http_url}/metadata",
                    targets_url=f"{http_url}/targets") == 1  # a missing target fails the command ...
    assert [p.read_bytes() for p in targets.iterdir()] == [ARTIFACT]  # ... after the ones before it
    assert download(metadata, repo, targets, "hello.txt", metadata_url=f"{http_url}/metadata/",
                    targets_url=f"{http_url}/targets/") == 0


def test_tampered_target_is_refused_and_not_stored(repo: Repo, client_dirs: tuple[Path, Path],
                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metadata, targets = client_dirs
    (repo.base / "targets" / "hello.txt").write_bytes(ARTIFACT.upper())
    assert init(metadata, repo.root, tmp_path) == 0
    capsys.readouterr()
    assert download(metadata, repo, targets, "hello.txt") == 1
    assert list(targets.iterdir()) == []
    err = capsys.readouterr().err
    assert "length or hash mismatch" in err and "Traceback" not in err


def test_pinned_root_wins_over_a_root_planted_in_the_cache(repo: Repo, client_dirs: tuple[Path, Path],
                                                           tmp_path: Path) -> None:
    """An attacker who can write the cache plants the root of their own repository and serves that
    repository: a client that started from the cached root.json would trust it."""
    metadata, _ = client_dirs
    evil = make_repo(tmp_path / "evil", {"hello.txt": b"evil\n"})
    assert init(metadata, repo.root, tmp_path) == 0
    assert refresh(metadata, repo.metadata_url) == 0
    for planted in (metadata / "root.json", metadata / "root_history" / "1.root.json"):
        planted.unlink()
        planted.write_bytes(evil.root)

    assert refresh(metadata, evil.metadata_url) == 1
    assert (metadata / "root.json").read_bytes() == repo.root
    assert (metadata / "timestamp.json").read_bytes() == (repo.base / "metadata" / "timestamp.json").read_bytes()
    assert refresh(metadata, repo.metadata_url) == 0  # the honest repository still works


@pytest.mark.parametrize("attack", ["group-writable", "symlink"])
def test_unsafe_metadata_dir_is_refused(repo: Repo, tmp_path: Path, attack: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o755)
    metadata = real
    if attack == "group-writable":
        os.chmod(real, 0o775)
    else:
        metadata = tmp_path / "link"
        metadata.symlink_to(real)
    assert init(metadata, repo.root, tmp_path) == 1
    err = capsys.readouterr().err
    assert list(real.iterdir()) == []
    line, hint = err.splitlines()  # one line naming the directory and what is wrong, one hint
    assert line.startswith("vcomp-tuf-client: init: ") and f"{metadata} " in line
    assert ("is a symlink" if attack == "symlink" else "writable by") in line
    assert hint.startswith("  hint: ")


def test_pinned_root_in_a_symlinked_directory_is_refused(repo: Repo, client_dirs: tuple[Path, Path],
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metadata, _ = client_dirs
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (elsewhere / "root.json").write_bytes(repo.root)
    (metadata / "pinned").symlink_to(elsewhere)
    assert refresh(metadata, repo.metadata_url) == 1
    assert f"{metadata / 'pinned'} is a symlink" in capsys.readouterr().err
    assert init(metadata, repo.root, tmp_path) == 1
    assert sorted(p.name for p in metadata.iterdir()) == ["pinned"]


def test_refresh_without_init_and_bad_root_are_clear_errors(repo: Repo, client_dirs: tuple[Path, Path],
                                                            tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    metadata, _ = client_dirs
    assert refresh(metadata, repo.metadata_url) == 1
    assert "no pinned trust root" in capsys.readouterr().err
    timestamp = (repo.base / "metadata" / "timestamp.json").read_bytes()
    assert init(metadata, timestamp, tmp_path) == 1
    assert "not a root" in capsys.readouterr().err
    assert list(metadata.iterdir()) == []


def test_runs_as_a_module(repo: Repo, client_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    """How the suite runs it: a separate process per command."""
    metadata, targets = client_dirs
    assert init(metadata, repo.root, tmp_path) == 0
    cmd = [sys.executable, "-m", "composer.repo.conformance", "--metadata-url", repo.metadata_url,
           "--metadata-dir", str(metadata), "--target-name", "hello.txt", "--target-dir", str(targets),
           "--target-base-url", repo.targets_url, "download"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert [p.read_bytes() for p in targets.iterdir()] == [ARTIFACT]
