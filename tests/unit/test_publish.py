"""The Publisher seam (composer/repo/publish.py): every served file of a repository goes through it (issue 13).

A recording publisher wraps the local directory: ``repo add`` and ``publish`` hand it every file, in the
order a client can follow (a target before the metadata listing it, timestamp.json last), and what it was
given is exactly what the directory serves. The real client then reads the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from composer.repo import edit, rotate
from composer.repo.publish import LocalDirectory, Publisher, stored_target
from composer.repo.store import RepoStore
from tests.repo_fixtures import ARCH, Repo


@dataclass(slots=True, kw_only=True)
class Recording:
    inner: LocalDirectory
    puts: list[str] = field(default_factory=list)

    def put_metadata(self, name: str, data: bytes) -> None:
        self.puts.append(f"metadata/{name}")
        self.inner.put_metadata(name, data)

    def put_target(self, name: str, data: bytes) -> None:
        self.puts.append(f"targets/{name}")
        self.inner.put_target(name, data)

    def put_target_file(self, name: str, source: Path) -> None:
        self.puts.append(f"targets/{name}")
        self.inner.put_target_file(name, source)


def test_the_stored_name_of_a_target() -> None:
    assert stored_target("packages/hello/hello-1.0.0-x86_64.vpk", "ab") == "packages/hello/ab.hello-1.0.0-x86_64.vpk"
    assert stored_target("index/x86_64.json.zst", "cd") == "index/cd.x86_64.json.zst"


def test_add_and_publish_go_through_the_publisher_in_a_client_safe_order(repo: Repo) -> None:
    recording = Recording(inner=LocalDirectory(root=repo.dir))
    publisher: Publisher = recording
    store = RepoStore(repo.dir, publisher=publisher)
    pkg = repo.package("hello", "1.2.0")
    edit.add(store, [pkg], [repo.keys.alice])
    edit.publish(store)
    puts = recording.puts
    package = next(i for i, p in enumerate(puts) if p.startswith("targets/packages/hello/"))
    alice = next(i for i, p in enumerate(puts) if p.endswith(".alice.json"))
    index_target = next(i for i, p in enumerate(puts) if p.startswith("targets/index/"))
    index_role = next(i for i, p in enumerate(puts) if p.endswith(".index.json"))
    snapshot = next(i for i, p in enumerate(puts) if p.endswith(".snapshot.json"))
    assert package < alice < index_target < index_role < snapshot < len(puts) - 1
    assert puts[-1] == "metadata/timestamp.json"
    assert len(puts) == len(set(puts)), "each file once"
    for name in puts:
        assert (repo.dir / name).is_file(), name
    assert not any(p.name.startswith(".upload-") for p in repo.dir.iterdir()), "the upload area is gone"
    client = repo.client()
    assert client.metadata("hello", ARCH).version == "1.2.0"
    client.fetch(client.metadata("hello", ARCH))


def test_a_rotation_keeps_the_publisher(repo: Repo) -> None:
    recording = Recording(inner=LocalDirectory(root=repo.dir))
    store = RepoStore(repo.dir, publisher=recording)
    rotate.rotate(store, "timestamp", add=[repo.keys.timestamp2], remove=[repo.keys.timestamp.public],
                  root_keys=[repo.keys.root1, repo.keys.root2], add_paths=[str(repo.keys.path("timestamp2"))])
    assert recording.puts[0].endswith(".root.json") and "metadata/root.json" in recording.puts
    assert recording.puts[-1] == "metadata/timestamp.json"
