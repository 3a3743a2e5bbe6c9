"""Repository trust over real loopback HTTP: what an attacker holding every ONLINE key, or the client's
cache directory, can do (nothing), and that legitimate key and root rotations still work.

The repository is the real one of ``tests/repo_fixtures.py`` (offline root and top-level targets keys,
online index, snapshot and timestamp keys in repo.toml), served by ``composer.repo.serve`` on
127.0.0.1 from the ``Repo.served`` symlink (so a test can swap what the server serves). The attacker
owns the server: they change its files and sign with every key repo.toml names (``stolen``). Each
attack checks the error a user sees and that the client's trusted metadata did not change, byte for
byte (only a timestamp or snapshot that the stolen keys validly signed may advance: python-tuf stores
each role as soon as it verifies, and these keys are genuinely the repository's).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import zstandard
from tuf.api.metadata import DelegatedRole, Delegations, Metadata, Root, TargetFile, Targets

from composer.cli.main import main
from composer.errors import FetchError, UserError, VerificationError
from composer.package.archive import read_header
from composer.package.build import build
from composer.repo import edit
from composer.repo.client import CHECKED_FIELDS, RepositoryClient
from composer.repo.index import IndexEntry, decode_index, index_target_path
from composer.repo.rotate import rotate
from composer.repo.serve import serve_in_thread
from composer.repo.store import CONFIG, RepoStore
from composer.trust.keys import SigningKey, generate, load_signing_key
from tests import hostile
from tests.repo_fixtures import (
    ARCH,
    ONLINE,
    Repo,
    assert_kept,
    cache_state,
    load,
    package_recipe,
    sign,
    write_role,
    write_snapshot,
)

pytestmark = pytest.mark.integration

HELLO = "packages/hello/hello-1.1.0-x86_64.vpk"


# ----------------------------------------------------------------- fixtures and helpers

@pytest.fixture()
def url(repo: Repo) -> Iterator[str]:
    """The repository over HTTP, served from the ``repo.served`` symlink (``repo.serve`` swaps it)."""
    server, base = serve_in_thread(repo.served)
    yield base
    server.shutdown()
    server.server_close()


@pytest.fixture()
def client(repo: Repo, url: str) -> RepositoryClient:
    """A client in use: it trusts the current repository and has loaded the index and alice's role."""
    c = repo.client(url=url)
    c.refresh()
    c.fetch(c.metadata("libfoo", ARCH))
    return c


@pytest.fixture()
def vcache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "vcache"))
    return tmp_path / "vcache"


def stolen(repo: Repo) -> dict[str, SigningKey]:
    """Every key of repo.toml, as an attacker who owns the publishing server reads them."""
    store = repo.store
    keys = {role: store.online_keys(role)[0] for role in ONLINE}
    assert set(store.config.keys) == set(ONLINE), "repo.toml must hold only the online keys"
    assert repo.keys.targets.keyid not in {k.keyid for k in keys.values()}
    return keys


def refused(call: Callable[[], object], error: type[BaseException] | tuple[type[BaseException], ...],
            *words: str) -> str:
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    missing = [w for w in words if w not in message]
    assert not missing, f"{missing} not in the message: {message}"
    assert "\n" not in message.strip(), f"not one line: {message}"
    return message


def fetch_refused(client: RepositoryClient, entry: IndexEntry, out: Path, *words: str) -> str:
    before = cache_state(client)
    message = refused(lambda: client.fetch(entry, out), VerificationError, *words)
    assert_kept(before, cache_state(client))
    assert not out.exists() or not any(out.iterdir()), "a refused package was delivered"
    return message


def current(repo: Repo, role: str) -> bytes:
    return repo.latest(role).read_bytes()


def store_target(repo: Repo, target_path: str, data: bytes) -> TargetFile:
    directory, base = target_path.rsplit("/", 1)
    info = TargetFile.from_data(target_path, data, ["sha256"])
    out = repo.dir / "targets" / directory / f"{info.hashes['sha256']}.{base}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return info


def forge_index(repo: Repo, change: Callable[[list[dict[str, Any]]], None],
                also: Callable[[Targets], None] = lambda t: None, *,
                extra_roles: Mapping[str, int] | None = None) -> None:
    """The attacker's publish: an index changed by ``change``, in a new index role version signed with the
    stolen index key (changed further by ``also``), then snapshot and timestamp with the stolen keys."""
    keys = stolen(repo)
    path = index_target_path(ARCH)
    raw, _ = decode_index(repo.target_file(path).read_bytes(), "forge")
    doc = json.loads(raw)
    change(doc["packages"])
    data = zstandard.ZstdCompressor().compress(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
    info = store_target(repo, path, data)

    def relist(t: Targets) -> None:
        t.targets[path] = info
        also(t)
    write_role(repo, "index", [keys["index"]], relist)
    write_snapshot(repo, [keys["snapshot"]], versions=extra_roles)


def attacker_entry(repo: Repo, pkg: Path) -> dict[str, Any]:
    """The honest index entry of ``pkg``, stored where the repository would store it."""
    data = pkg.read_bytes()
    entry = IndexEntry.from_header(read_header(pkg), size=len(data), sha256=hashlib.sha256(data).hexdigest())
    store_target(repo, entry.path, data)
    return entry.to_dict()


# ----------------------------------------------------------------- stolen online keys

def test_stolen_online_keys_cannot_add_a_key_to_a_developer_role(repo: Repo, client: RepositoryClient) -> None:
    keys = stolen(repo)
    mallory = repo.keys.mallory

    def add_mallory_to_alice(t: Targets) -> None:
        assert t.delegations is not None and t.delegations.roles is not None
        t.delegations.keys[mallory.keyid] = mallory.public.key
        t.delegations.roles["alice"].keyids.append(mallory.keyid)
    write_role(repo, "targets", keys.values(), add_mallory_to_alice)     # every online key signs it
    snapshot = write_snapshot(repo, [keys["snapshot"]])
    before = cache_state(client)
    message = refused(client.refresh, FetchError, "cannot get trusted metadata", "targets was signed by 0/1 keys")
    assert "signatures do not verify" in message
    assert_kept(before, cache_state(client), {"timestamp.json": current(repo, "timestamp"), "snapshot.json": snapshot})
    assert cache_state(client)["targets.json"] == before["targets.json"]


def test_stolen_online_keys_cannot_delegate_on_the_server(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    """The repository tools themselves refuse: delegations need the offline targets key."""
    before = {p: p.read_bytes() for p in sorted((repo.dir / "metadata").rglob("*")) if p.is_file()}
    pub = str(repo.keys.dir / "mallory.pub")
    with pytest.raises(SystemExit):                     # --targets-key is required
        main(["repo", "delegate", str(repo.dir), "alice", "--key", pub, "--packages", "hello"])
    assert "--targets-key" in capsys.readouterr().err
    for key in ONLINE:
        assert main(["repo", "delegate", str(repo.dir), "alice", "--key", pub, "--packages", "hello",
                     "--targets-key", str(repo.keys.path(key))]) == 1
        err = capsys.readouterr().err
        assert "needs 1 of the offline targets keys; 0 given" in err and "hint: pass the offline targets" in err
    assert {p: p.read_bytes() for p in sorted((repo.dir / "metadata").rglob("*")) if p.is_file()} == before


@pytest.mark.parametrize("how", ["index-entry", "listed-by-the-index-role", "sub-delegated-by-the-index-role",
                                 "developer-role-resigned"])
def test_stolen_online_keys_cannot_publish_in_a_developer_namespace(repo: Repo, client: RepositoryClient,
                                                                    tmp_path: Path, how: str) -> None:
    """mallory's 'hello' 6.6.6 (alice's name) pushed with every online key: never fetched."""
    keys = stolen(repo)
    entry = attacker_entry(repo, repo.package("hello", "6.6.6", developer="mallory"))
    target = TargetFile(length=entry["size"], hashes={"sha256": entry["sha256"]}, path=entry["path"])
    mallory = repo.keys.mallory
    extra: dict[str, int] = {}

    def also(t: Targets) -> None:
        if how == "listed-by-the-index-role":
            t.targets[entry["path"]] = target
        if how == "sub-delegated-by-the-index-role":
            t.delegations = Delegations(keys={mallory.keyid: mallory.public.key}, roles={"evil-dev": DelegatedRole(
                name="evil-dev", keyids=[mallory.keyid], threshold=1, terminating=True,
                paths=["packages/hello/*"])})
    if how == "sub-delegated-by-the-index-role":
        md = Metadata(Targets(version=1, targets={entry["path"]: target}))
        repo.meta("1.evil-dev.json").write_bytes(sign(md, [mallory]))
        extra["evil-dev"] = 1
    if how == "developer-role-resigned":
        write_role(repo, "alice", keys.values(), lambda t: t.targets.__setitem__(entry["path"], target))
    forge_index(repo, lambda packages: packages.append(entry), also, extra_roles=extra)
    client.refresh()                                   # timestamp, snapshot and index verify: the keys are real
    forged = client.metadata("hello", ARCH)
    assert forged.version == "6.6.6"
    words = ("alice was signed by 0/1 keys",) if how == "developer-role-resigned" else \
        ("listed in the index but not by any delegated role",)
    fetch_refused(client, forged, tmp_path / "out", forged.path, *words)
    assert cache_state(client)["alice.json"] == load_alice(repo)


def load_alice(repo: Repo) -> bytes:
    """alice's genuine role metadata (the newest version alice signed)."""
    versions = sorted(int(p.name.split(".")[0]) for p in repo.dir.glob("metadata/*.alice.json"))
    for v in reversed(versions):
        data = repo.meta(f"{v}.alice.json").read_bytes()
        md = Metadata.from_bytes(data)
        if md.signatures and next(iter(md.signatures)) == repo.keys.alice.keyid:
            return data
    raise AssertionError("no genuine alice metadata")


RELABELS = {
    "arch": "noarch",
    "dependencies": {"evil-tool": ">=1.0.0"},
    "provides": ["sshd"],
    "conflicts": ["libfoo"],
    "version": "1.1.1",
    "features": {"backdoor": True},
    "signer": "0" * 64,
    "relations": {"requires": ["evil-tool | sshd"]},
    "essential": True,
    "epoch": 1,
    "revision": "9",
    "priority": "required",
    "multi_arch": "foreign",
}


@pytest.mark.parametrize("field", sorted(RELABELS))
def test_index_entry_relabelled_with_the_stolen_index_key_is_refused(repo: Repo, client: RepositoryClient,
                                                                      tmp_path: Path, field: str) -> None:
    def relabel(packages: list[dict[str, Any]]) -> None:
        for p in packages:
            if p["path"] == HELLO:
                p[field] = RELABELS[field]
    forge_index(repo, relabel)
    client.refresh()
    entry = next(e for e in client.index(ARCH) if e.path == HELLO)
    assert entry.to_dict()[field] == RELABELS[field]
    if field == "signer":   # a signer no delegation knows is refused before the package is even opened
        fetch_refused(client, entry, tmp_path / "out", HELLO, "which no delegation authorises")
        return
    fetch_refused(client, entry, tmp_path / "out", HELLO, "index entry of 'hello' differs from the signed",
                  f"package in {field}", "index says")


def test_every_index_field_is_cross_checked() -> None:
    """Nothing resolution reads from an entry escapes the comparison (only size and sha256, which TUF checks)."""
    assert set(IndexEntry.__slots__) - set(CHECKED_FIELDS) == {"size", "sha256"}


def test_cli_refuses_a_relabelled_entry_in_one_line(repo: Repo, url: str, vcache: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def relabel(packages: list[dict[str, Any]]) -> None:
        for p in packages:
            if p["path"] == HELLO:
                p["dependencies"] = {"evil-tool": ">=1.0.0"}
    forge_index(repo, relabel)
    where = ["--repo", url, "--root", str(repo.meta("1.root.json"))]
    assert main(["fetch", "hello", "--out", str(tmp_path / "out"), *where]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"error: {HELLO}: the index entry of 'hello' differs from the signed package in "
                             "dependencies"), err
    assert err[1].startswith("  hint: the index was altered") and len(err) == 2
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ----------------------------------------------------------------- the repository side

def test_repo_toml_with_the_targets_key_is_refused_with_a_migration_hint(repo: Repo,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = repo.dir / CONFIG
    doc = {"architectures": [ARCH], "keys": {"targets": [str(repo.keys.path("targets"))],
                                             "snapshot": [str(repo.keys.path("snapshot"))],
                                             "timestamp": [str(repo.keys.path("timestamp"))]}}
    config.write_bytes(tomli_w.dumps(doc).encode())
    for verb in ("publish", "refresh"):
        assert main(["repo", verb, str(repo.dir)]) == 1
        err = capsys.readouterr().err
        assert "lists the top-level targets key as an online key" in err and "vcomp repo migrate" in err


def test_an_offline_key_named_as_an_online_key_is_refused(repo: Repo) -> None:
    store = repo.store
    store.config.keys["index"] = [str(repo.keys.path("targets"))]
    (repo.dir / CONFIG).write_bytes(store.config.to_toml())
    before = {str(p): p.read_bytes() for p in (repo.dir / "metadata").rglob("*") if p.is_file()}
    refused(lambda: edit.publish(repo.store), UserError, "the index key", "is the offline targets key")
    assert {str(p): p.read_bytes() for p in (repo.dir / "metadata").rglob("*") if p.is_file()} == before


def test_repo_add_refuses_the_offline_targets_key(repo: Repo) -> None:
    refused(lambda: edit.add(repo.store, [repo.package("hello", "1.2.0")], [repo.keys.alice, repo.keys.targets]),
            UserError, "is the offline targets key", "'repo add' signs only with developer keys")


def test_index_key_that_the_targets_role_does_not_delegate_is_refused(repo: Repo, tmp_path: Path) -> None:
    generate("rogue", tmp_path)
    store = repo.store
    store.config.keys["index"] = [str(tmp_path / "rogue.key")]
    (repo.dir / CONFIG).write_bytes(store.config.to_toml())
    refused(lambda: edit.publish(repo.store), UserError, "are not the 1 key(s) the targets metadata delegates")


def test_migration_from_an_online_targets_key(repo: Repo, url: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A repository of the older layout (the indexes in the top-level targets, its key in repo.toml) is refused
    until 'repo migrate'; a client that trusted it keeps working across the migration."""
    index = load(repo.latest("index")).signed

    def old_layout(t: Targets) -> None:
        assert t.delegations is not None and t.delegations.roles is not None
        del t.delegations.roles["index"]
        t.delegations.keys.pop(repo.keys.index.keyid)
        t.targets = dict(index.targets)
    write_role(repo, "targets", [repo.keys.targets], old_layout)
    write_snapshot(repo)
    doc = {"architectures": [ARCH], "keys": {r: [str(repo.keys.path(r))] for r in ("targets", "snapshot", "timestamp")}}
    (repo.dir / CONFIG).write_bytes(tomli_w.dumps(doc).encode())
    old_client = repo.client(url=url)
    assert old_client.metadata("hello", ARCH).version == "1.1.0"
    refused(lambda: RepoStore(repo.dir), UserError, "lists the top-level targets key")

    generate("new-index", tmp_path)
    assert main(["repo", "migrate", str(repo.dir), "--index-key", str(tmp_path / "new-index.key")]) == 0
    assert "move" in capsys.readouterr().out
    config = (repo.dir / CONFIG).read_text()
    assert "targets.key" not in config and "new-index.key" in config
    assert not load(repo.latest("targets")).signed.targets
    old_client.refresh()
    works(old_client)
    assert main(["repo", "migrate", str(repo.dir), "--index-key", str(tmp_path / "new-index.key")]) == 1
    assert "already in the current layout" in capsys.readouterr().err


def works(client: RepositoryClient, newest: str = "1.1.0") -> None:
    client.refresh()
    entry = client.metadata("hello", ARCH)
    assert entry.version == newest
    assert hashlib.sha256(client.fetch(entry).read_bytes()).hexdigest() == entry.sha256


# ----------------------------------------------------------------- the client's cache

def other_repository(tmp_path: Path) -> tuple[Path, SigningKey]:
    """The attacker's own repository (their keys), and its root key."""
    root_key = hostile.new_key()
    online = {role: [hostile.new_key()] for role in ONLINE}
    edit.init(tmp_path / "evil", root_keys=[root_key], root_threshold=1, targets_keys=[hostile.new_key()],
              online=online, online_paths={role: ["unused.key"] for role in online}, architectures=[ARCH])
    return tmp_path / "evil", root_key


def test_planted_root_in_the_cache_is_not_the_trust_anchor(repo: Repo, client: RepositoryClient,
                                                             tmp_path: Path) -> None:
    evil, evil_root_key = other_repository(tmp_path)
    evil_root = (evil / "metadata" / "1.root.json").read_bytes()
    md = Metadata[Root].from_bytes(evil_root)
    md.signed.version = 2
    evil_root2 = sign(md, [evil_root_key])
    meta = client.metadata_dir
    (meta / "root.json").unlink()
    (meta / "root.json").write_bytes(evil_root)                    # what an old python-tuf cache would start from
    (meta / "root_history" / "1.root.json").write_bytes(evil_root)
    (meta / "root_history" / "2.root.json").write_bytes(evil_root2)
    repo.serve(evil)                                               # and the attacker's repository is served
    again = RepositoryClient(client.urls[0], repo.root_bytes, client.cache.parent)
    refused(again.refresh, FetchError, "signatures do not verify")
    assert (meta / "root_history" / "1.root.json").read_bytes() == repo.root_bytes   # the pin, rewritten
    assert os.readlink(meta / "root.json") == "root_history/1.root.json"
    assert (meta / "timestamp.json").read_bytes() != (evil / "metadata" / "timestamp.json").read_bytes()
    repo.serve(repo.dir)
    works(RepositoryClient(client.urls[0], repo.root_bytes, client.cache.parent))


def test_planted_targets_in_the_cache_is_ignored(repo: Repo, client: RepositoryClient) -> None:
    """A targets.json that delegates 'hello' to mallory, planted in the cache, never verifies."""
    md = load(repo.latest("targets"))
    assert md.signed.delegations is not None and md.signed.delegations.roles is not None
    md.signed.delegations.keys[repo.keys.mallory.keyid] = repo.keys.mallory.public.key
    md.signed.delegations.roles["alice"].keyids = [repo.keys.mallory.keyid]
    md.signed.version = 999
    for signers in ([repo.keys.mallory], [*stolen(repo).values()]):
        (client.metadata_dir / "targets.json").write_bytes(sign(md, signers))
        again = RepositoryClient(client.urls[0], repo.root_bytes, client.cache.parent)
        works(again)
        assert (client.metadata_dir / "targets.json").read_bytes() == current(repo, "targets")
        assert again.delegated_key(again.metadata("hello", ARCH)).keyid == repo.keys.alice.keyid


@pytest.mark.parametrize("which", ["cache", "metadata", "root_history", "targets"])
def test_symlinked_cache_directory_is_refused(repo: Repo, client: RepositoryClient, tmp_path: Path,
                                              which: str) -> None:
    path = {"cache": client.cache, "metadata": client.metadata_dir,
            "root_history": client.metadata_dir / "root_history", "targets": client.targets_dir}[which]
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(path, elsewhere, symlinks=True)
    shutil.rmtree(path)
    path.symlink_to(elsewhere, target_is_directory=True)
    planted = {p: p.read_bytes() for p in sorted(elsewhere.rglob("*")) if p.is_file() and not p.is_symlink()}
    again = RepositoryClient(client.urls[0], repo.root_bytes, client.cache.parent)
    refused(again.refresh, UserError, f"repository cache {path} is a symlink", "refusing to trust")
    assert {p: p.read_bytes() for p in sorted(elsewhere.rglob("*")) if p.is_file() and not p.is_symlink()} \
        == planted


@pytest.mark.parametrize(("mode", "who"), [(0o777, "others"), (0o757, "others"), (0o770, "its group")])
def test_group_or_world_writable_cache_directory_is_refused(repo: Repo, client: RepositoryClient, mode: int,
                                                            who: str) -> None:
    for path in (client.cache, client.metadata_dir, client.targets_dir):
        before = cache_state(client)
        path.chmod(mode)
        again = RepositoryClient(client.urls[0], repo.root_bytes, client.cache.parent)
        message = refused(again.refresh, UserError, f"repository cache {path} is writable by {who}")
        assert f"(mode {mode:04o})" in message
        assert_kept(before, cache_state(client))
        path.chmod(0o700)
    works(client)


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a directory's owner needs root")
def test_cache_directory_owned_by_another_user_is_refused(repo: Repo, client: RepositoryClient) -> None:
    os.chown(client.metadata_dir, 65534, 65534)
    again = RepositoryClient(client.urls[0], repo.root_bytes, client.cache.parent)
    refused(again.refresh, UserError, f"repository cache {client.metadata_dir} is owned by uid 65534")


def test_cli_refuses_a_world_writable_cache_in_one_line(repo: Repo, url: str, vcache: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--repo", url, "--root", str(repo.meta("1.root.json"))]
    assert main(["search", "hello", *where]) == 0
    capsys.readouterr()
    (metadata,) = vcache.rglob("metadata")
    metadata.chmod(0o777)
    assert main(["search", "hello", *where]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"error: repository cache {metadata} is writable by others (mode 0777): refusing to trust " \
                     "metadata stored there"
    assert err[1].startswith("  hint: remove it") and len(err) == 2


def test_new_cache_directories_are_private(repo: Repo, url: str) -> None:
    old = os.umask(0o002)
    try:
        c = repo.client(url=url)
        works(c)
    finally:
        os.umask(old)
    for path in (c.cache, c.metadata_dir, c.metadata_dir / "root_history", c.targets_dir):
        assert path.stat().st_mode & 0o777 == 0o700, path


# ----------------------------------------------------------------- legitimate rotations

def test_index_key_rotation_locks_out_the_stolen_index_key(repo: Repo, client: RepositoryClient,
                                                           tmp_path: Path) -> None:
    old = stolen(repo)["index"]
    generate("index2", tmp_path)
    new = load_signing_key(tmp_path / "index2.key")
    refused(lambda: rotate(repo.store, "index", add=[new], remove=[old.public]), UserError,
            "needs 1 of the offline targets keys; 0 given")
    rotate(repo.store, "index", add=[new], remove=[old.public], targets_keys=[repo.keys.targets],
           add_paths=[str(tmp_path / "index2.key")])
    assert stolen(repo)["index"].keyid == new.keyid
    works(client)
    # the attacker still holds the old index key (and snapshot and timestamp): their index no longer verifies
    path = index_target_path(ARCH)
    write_role(repo, "index", [old], lambda t: t.targets.__setitem__(path, t.targets[path]))
    write_snapshot(repo)
    client.refresh()
    before = cache_state(client)
    refused(lambda: client.index(ARCH), VerificationError, "index was signed by 0/1 keys")
    assert_kept(before, cache_state(client))


def test_targets_key_rotation_is_followed_from_the_pinned_root(repo: Repo, client: RepositoryClient,
                                                               tmp_path: Path) -> None:
    generate("targets2", tmp_path)
    new = load_signing_key(tmp_path / "targets2.key")
    rotate(repo.store, "targets", add=[new], remove=[repo.keys.targets.public],
           root_keys=[repo.keys.root1, repo.keys.root2])
    assert "targets2" not in (repo.dir / CONFIG).read_text()
    works(client)
    assert load(client.metadata_dir / "root.json").signed.version == 2
    works(repo.client(url=client.urls[0]))                  # a new client walks from the pinned v1
    refused(lambda: edit.delegate(repo.store, "carol", [repo.keys.mallory.public], ["carol"],
                                  targets_keys=[repo.keys.targets]),
            UserError, "needs 1 of the offline targets keys; 0 given")
    edit.delegate(repo.store, "carol", [repo.keys.mallory.public], ["carol"], targets_keys=[new])


def test_root_rotations_walk_forward_from_the_pin_through_the_cache(repo: Repo, client: RepositoryClient) -> None:
    k = repo.keys
    rotate(repo.store, "root", add=[k.root3], remove=[k.root1.public], root_keys=[k.root1, k.root2])
    works(client)
    rotate(repo.store, "timestamp", add=[k.timestamp2], remove=[k.timestamp.public], root_keys=[k.root2, k.root3],
           add_paths=[str(k.path("timestamp2"))])
    # a new client on the same cache starts again from the pinned v1 and walks v1 -> v2 (cached) -> v3
    again = RepositoryClient(client.urls[0], repo.root_bytes, client.cache.parent)
    works(again)
    assert (again.metadata_dir / "root_history" / "1.root.json").read_bytes() == repo.root_bytes
    assert load(again.metadata_dir / "root.json").signed.version == 3
    # a pin of another repository never reuses this trusted state
    evil_pin = Metadata[Root].from_bytes(repo.root_bytes)
    evil_pin.signed.version = 1
    assert RepositoryClient(client.urls[0], sign(evil_pin, [k.root3]), client.cache.parent).cache != again.cache


def test_developer_key_rotation_then_publish_with_the_new_key(repo: Repo, client: RepositoryClient,
                                                              tmp_path: Path) -> None:
    """A planned rotation: alice's new key is added with the offline targets key, signs her next upload
    (and her role), and clients fetch both her old and her new packages."""
    generate("alice2", tmp_path)
    alice2 = load_signing_key(tmp_path / "alice2.key")
    recipe = package_recipe(tmp_path / "recipes", "libnew", "1.0.0", ARCH)
    pkg = build(recipe, ARCH, alice2, tmp_path / "built", cache=tmp_path / "build-cache").path
    refused(lambda: edit.add(repo.store, [pkg], [alice2]), VerificationError, "is not authorised to publish 'libnew'")
    rotate(repo.store, "alice", add=[alice2.public], remove=[], targets_keys=[repo.keys.targets])
    edit.add(repo.store, [pkg], [alice2])
    repo.publish()
    works(client)
    entry = client.metadata("libnew", ARCH)
    assert entry.signer == alice2.keyid
    assert client.fetch(entry).read_bytes() == pkg.read_bytes()
    assert client.delegated_key(client.metadata("hello", ARCH)).keyid == repo.keys.alice.keyid
