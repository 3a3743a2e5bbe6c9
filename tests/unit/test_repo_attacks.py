"""Attacks on a signed repository, simulated with real files (file://): every one is refused, clearly, and
the client keeps its last trusted state.

The repository is real (``tests/repo_fixtures.py``): real keys, packages built by the builder,
metadata written by ``vcomp repo`` code, read by the real client (python-tuf's ngclient). An attack
is what an attacker can put on disk: a replayed old directory, a flipped byte, metadata re-signed
with a key they hold (a developer's, or a stolen online key). Each test checks

- the call raises the composer error a user would see, with a message that names the problem;
- the client's cache (its trusted metadata) is byte-identical afterwards, except metadata that
  verified before the failure (listed explicitly, with the repository's own bytes);
- the same client works again once the repository is good.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import Root, Targets

from composer.errors import FetchError, InvalidPackage, UnsafeArchive, UserError, VerificationError
from composer.package.extract import extract_package
from composer.repo import edit
from composer.repo.client import RepositoryClient, load_trusted_root
from composer.repo.store import RepoStore
from composer.trust.keys import SigningKey
from tests import hostile
from tests.repo_fixtures import (
    ARCH,
    Repo,
    assert_kept,
    cache_state,
    days_ago,
    edit_json,
    flip_byte,
    force_package,
    load,
    pad,
    rotate_root,
    swap_role_key,
    use_online_key,
    write_role,
    write_snapshot,
    write_timestamp,
)

# A refused delegated role surfaces from ngclient inside fetch(); see test_fetch_reports_bad_delegated_metadata_*.
DELEGATED_REFUSAL = (VerificationError, tuf_exc.RepositoryError, tuf_exc.DownloadError)


@pytest.fixture()
def client(repo: Repo) -> RepositoryClient:
    """A client that trusts the current repository and has loaded alice's role (by fetching libfoo)."""
    c = repo.client()
    c.refresh()
    c.fetch(c.metadata("libfoo", ARCH))
    return c


# ----------------------------------------------------------------- helpers

def refused(call: Callable[[], object], error: type[BaseException] | tuple[type[BaseException], ...],
            *words: str) -> str:
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    missing = [w for w in words if w not in message]
    assert not missing, f"{missing} not in the message: {message}"
    return message


def refresh_refused(client: RepositoryClient, *words: str, advanced: Mapping[str, bytes] | None = None) -> str:
    before = cache_state(client)
    message = refused(client.refresh, FetchError, "cannot get trusted metadata", *words)
    assert_kept(before, cache_state(client), advanced)
    return message


def fetch_refused(client: RepositoryClient, name: str, out: Path, *words: str,
                  error: type[BaseException] | tuple[type[BaseException], ...] = VerificationError,
                  version: str = "") -> str:
    entry = client.metadata(name, ARCH, version)
    before = cache_state(client)
    message = refused(lambda: client.fetch(entry, out), error, *words)
    assert_kept(before, cache_state(client))
    assert not out.exists() or not any(out.iterdir()), "a refused package was delivered"
    return message


def works(client: RepositoryClient, newest: str = "1.1.0") -> None:
    """The client refreshes, sees ``newest`` hello and fetches it."""
    client.refresh()
    entry = client.metadata("hello", ARCH)
    assert entry.version == newest
    assert hashlib.sha256(client.fetch(entry).read_bytes()).hexdigest() == entry.sha256


def warm(client: RepositoryClient) -> None:
    """Refresh and load the delegated roles (alice's, by fetching libfoo), as a client in use has."""
    client.refresh()
    client.fetch(client.metadata("libfoo", ARCH))


def pinned_only(root: bytes) -> dict[str, bytes]:
    """What a new client's cache holds after a failed first refresh: the pinned root, nothing else."""
    return {"root.json": b"-> root_history/1.root.json", "root_history/1.root.json": root}


def cached_version(client: RepositoryClient, role: str) -> int:
    return int(load(client.metadata_dir / f"{role}.json").signed.version)


def repo_files(repo: Repo) -> dict[str, bytes]:
    """Every file, and the state's content (state.db*'s bytes change with reads and the repair's bookkeeping)."""
    files = {str(p.relative_to(repo.dir)): p.read_bytes() for p in sorted(repo.dir.rglob("*"))
             if p.is_file() and not p.name.startswith("state.db")}
    return {**files, "(state)": json.dumps(RepoStore(repo.dir).read_state(), sort_keys=True).encode()}


def libevil(path: Path, members: list[hostile.Member], key: SigningKey) -> Path:
    """A well-formed package named 'libevil' (alice may publish lib*), signed with ``key``."""
    return hostile.hostile_package(path, members, key=key, meta=hostile.metadata("libevil"))


# ----------------------------------------------------------------- arbitrary package

def test_tampered_package_bytes_fail_the_hash_check(repo: Repo, client: RepositoryClient, tmp_path: Path) -> None:
    stored = repo.target_file("packages/hello/hello-1.1.0-x86_64.vpk")
    original = flip_byte(stored)
    fetch_refused(client, "hello", tmp_path / "out", "packages/hello/hello-1.1.0-x86_64.vpk",
                  "length or hash mismatch", "expected hash")
    stored.write_bytes(original)
    works(client)


def test_package_resigned_by_an_unauthorised_key_is_refused_at_upload(repo: Repo) -> None:
    before = repo_files(repo)
    refused(lambda: edit.add(repo.store, [repo.package("hello", "1.1.0", developer="mallory")], [repo.keys.mallory]),
            VerificationError, "is not authorised to publish 'hello'", "alice: hello, lib*", "mallory: evil*")
    assert repo_files(repo) == before


@pytest.mark.parametrize(("index_signer", "words"), [
    ("mallory", ("signed by key", "which no delegation authorises for 'hello'")),
    ("alice", ("signed by key", "not by the trusted key")),   # the index lies about who signed it
], ids=["index-names-mallory", "index-claims-alice"])
def test_package_by_an_unauthorised_key_forced_into_the_repository_is_refused(
        repo: Repo, client: RepositoryClient, tmp_path: Path, index_signer: str, words: tuple[str, ...]) -> None:
    # the repository was fooled: alice's role and the index list a 'hello' that mallory signed
    force_package(repo, repo.package("hello", "6.6.6", developer="mallory"), "alice", [repo.keys.alice],
                  entry={"signer": repo.keys.by_name[index_signer].keyid})
    warm(client)
    fetch_refused(client, "hello", tmp_path / "out", *words, version="6.6.6")
    assert client.fetch(client.metadata("hello", ARCH, "1.1.0")).is_file()


@pytest.mark.parametrize("signer", [None, "mallory"], ids=["unsigned", "signed-by-the-wrong-key"])
def test_delegated_metadata_not_signed_by_its_developer_is_refused(repo: Repo, client: RepositoryClient,
                                                                   tmp_path: Path, signer: str | None) -> None:
    write_role(repo, "alice", [repo.keys.by_name[signer]] if signer else [])
    repo.publish()
    client.refresh()
    fetch_refused(client, "hello", tmp_path / "out", "alice was signed by 0/1 keys", error=DELEGATED_REFUSAL)
    write_role(repo, "alice", [repo.keys.alice])
    repo.publish()
    works(client)


def test_top_level_targets_signed_by_the_wrong_key_is_refused(repo: Repo, client: RepositoryClient) -> None:
    write_role(repo, "targets", [repo.keys.mallory])
    write_snapshot(repo)
    refresh_refused(client, "signatures do not verify", "targets was signed by 0/1 keys",
                    advanced={"timestamp.json": repo.meta("timestamp.json").read_bytes(),
                              "snapshot.json": repo.latest("snapshot").read_bytes()})
    write_role(repo, "targets", [repo.keys.targets])
    repo.publish()
    works(client)


def _same_signature_twice(doc: dict[str, object]) -> None:
    sigs: list[dict[str, str]] = doc["signatures"]  # type: ignore[assignment]
    sigs.append(dict(sigs[0]))


def _signature_under_both_keyids(root2: str) -> Callable[[dict[str, object]], None]:
    def change(doc: dict[str, object]) -> None:
        sigs: list[dict[str, str]] = doc["signatures"]  # type: ignore[assignment]
        sigs.append({"keyid": root2, "sig": sigs[0]["sig"]})
    return change


@pytest.mark.parametrize("how", ["same-keyid-twice", "copied-under-the-other-keyid"])
def test_duplicate_signatures_from_one_key_count_once(repo: Repo, client: RepositoryClient, how: str) -> None:
    """Root v2 (threshold 2) carrying root1's signature twice: one key, so one signature."""
    rotate_root(repo, lambda root: None, [repo.keys.root1])
    change = _same_signature_twice if how == "same-keyid-twice" else _signature_under_both_keyids(
        repo.keys.root2.keyid)
    edit_json(repo.meta("2.root.json"), change)
    # python-tuf refuses a second signature with the same key id outright (when parsing), and a copy under
    # another key id does not verify with that key
    words = ("invalid repository metadata",) if how == "same-keyid-twice" else ("root was signed by 1/2 keys",)
    refresh_refused(client, *words)
    assert not (client.metadata_dir / "root_history" / "2.root.json").exists()
    repo.meta("2.root.json").unlink()
    works(client)


# ----------------------------------------------------------------- threshold and root rotation

def test_root_signed_by_fewer_keys_than_its_threshold_is_refused(repo: Repo, client: RepositoryClient) -> None:
    rotate_root(repo, lambda root: None, [repo.keys.root1])
    refresh_refused(client, "signatures do not verify", "root was signed by 1/2 keys")
    assert load(client.metadata_dir / "root.json").signed.version == 1
    repo.meta("2.root.json").unlink()
    works(client)


def test_root_rotation_not_signed_by_the_new_root_keys_is_refused(repo: Repo, client: RepositoryClient) -> None:
    k = repo.keys

    def hand_over_to_root3(root: Root) -> None:
        for old in (k.root1, k.root2):
            root.revoke_key(old.keyid, "root")
        root.add_key(k.root3.public.key, "root")
        root.roles["root"].threshold = 1
    rotate_root(repo, hand_over_to_root3, [k.root1, k.root2])          # the old keys only
    refresh_refused(client, "root was signed by 0/1 keys")
    rotate_root(repo, lambda root: None, [k.root1, k.root2, k.root3])  # v3 on top of the refused v2: no use
    refresh_refused(client, "root was signed by 0/1 keys")
    for n in (2, 3):
        repo.meta(f"{n}.root.json").unlink()
    rotate_root(repo, hand_over_to_root3, [k.root1, k.root2, k.root3])  # old threshold and new keys
    client.refresh()
    assert load(client.metadata_dir / "root.json").signed.roles["root"].keyids == [k.root3.keyid]


def test_root_rotation_revokes_the_old_timestamp_key(repo: Repo, client: RepositoryClient) -> None:
    k = repo.keys
    rotate_root(repo, swap_role_key("timestamp", k.timestamp, k.timestamp2), [k.root1, k.root2])
    use_online_key(repo, "timestamp", k.path("timestamp2"))
    repo.publish()
    works(client)
    assert (client.metadata_dir / "root_history" / "2.root.json").read_bytes() == repo.meta("2.root.json").read_bytes()
    # whoever kept the old timestamp key signs a newer timestamp
    write_timestamp(repo, repo.latest("snapshot").read_bytes(), [k.timestamp])
    refresh_refused(client, "signatures do not verify", "timestamp was signed by 0/1 keys")
    repo.refresh_timestamp()
    works(client)


def test_fast_forward_recovery_after_timestamp_key_rotation(repo: Repo, client: RepositoryClient) -> None:
    """A stolen timestamp key pushed the version far ahead; the owners rotate the key and restart at 1."""
    k = repo.keys
    write_timestamp(repo, repo.latest("snapshot").read_bytes(), [k.timestamp], version=1_000_000)
    client.refresh()
    assert cached_version(client, "timestamp") == 1_000_000
    rotate_root(repo, swap_role_key("timestamp", k.timestamp, k.timestamp2), [k.root1, k.root2])
    use_online_key(repo, "timestamp", k.path("timestamp2"))
    write_timestamp(repo, write_snapshot(repo, then_timestamp=False), [k.timestamp2], version=1)
    works(client)
    assert cached_version(client, "timestamp") == 1
    # the fast-forwarded timestamp, signed by the revoked key, is not accepted back
    write_timestamp(repo, repo.latest("snapshot").read_bytes(), [k.timestamp], version=1_000_001)
    refresh_refused(client, "timestamp was signed by 0/1 keys")


# ----------------------------------------------------------------- rollback and freeze

def test_replayed_old_repository_is_refused_as_a_rollback(repo: Repo, client: RepositoryClient) -> None:
    """Freeze by replay: the repository as it was (still unexpired: hello 1.0.0 only) is served again."""
    repo.serve(repo.old())
    message = refresh_refused(client, "rollback", "timestamp version")
    assert repo.url in message
    repo.serve(repo.dir)
    works(client)


def test_older_timestamp_is_refused(repo: Repo, client: RepositoryClient) -> None:
    before = repo.snapshot("before")
    repo.refresh_timestamp()
    client.refresh()
    repo.serve(before)
    refresh_refused(client, "rollback", "New timestamp version")
    repo.serve(repo.dir)
    works(client)


def test_older_snapshot_is_refused(repo: Repo, client: RepositoryClient) -> None:
    # a newer timestamp (signed with the timestamp key) naming the snapshot before the current one
    current = repo.store.current_version("snapshot")
    write_timestamp(repo, repo.meta(f"{current - 1}.snapshot.json").read_bytes())
    refresh_refused(client, "rollback", f"New snapshot version must be >= {current}")
    repo.publish()
    works(client)


def test_older_targets_is_refused(repo: Repo, client: RepositoryClient) -> None:
    current = repo.store.current_version("targets")
    write_snapshot(repo, versions={"targets": current - 1})     # valid snapshot and timestamp signatures
    refresh_refused(client, "rollback", f"Expected targets.json version {current - 1}, got {current}",
                    advanced={"timestamp.json": repo.meta("timestamp.json").read_bytes()})
    repo.publish()
    works(client)


def test_older_delegated_role_is_refused(repo: Repo, client: RepositoryClient) -> None:
    current = repo.store.current_version("alice")
    write_snapshot(repo, versions={"alice": current - 1})
    refresh_refused(client, "rollback", f"Expected alice.json version {current - 1}, got {current}",
                    advanced={"timestamp.json": repo.meta("timestamp.json").read_bytes()})
    repo.publish()
    works(client)


def test_expired_timestamp_is_refused(repo: Repo, client: RepositoryClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository's timer stopped: its last timestamp (newer, validly signed) expired 9 days ago."""
    monkeypatch.setenv("VCOMP_REPO_NOW", days_ago(10))
    repo.refresh_timestamp()
    monkeypatch.delenv("VCOMP_REPO_NOW")
    refresh_refused(client, "expired metadata", "timestamp.json is expired")
    fresh = repo.client()
    refused(fresh.refresh, FetchError, "timestamp.json is expired")
    repo.refresh_timestamp()
    works(client)
    works(fresh)


def test_expired_snapshot_is_refused(repo: Repo, client: RepositoryClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCOMP_REPO_NOW", days_ago(8))        # the snapshot lasts 7 days
    repo.publish()
    monkeypatch.delenv("VCOMP_REPO_NOW")
    repo.refresh_timestamp()                                   # a fresh timestamp for the stale snapshot
    refresh_refused(client, "expired metadata", "snapshot.json is expired",
                    advanced={"timestamp.json": repo.meta("timestamp.json").read_bytes()})
    repo.publish()
    works(client)


def test_expired_delegated_role_is_refused(repo: Repo, client: RepositoryClient, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCOMP_REPO_NOW", days_ago(100))      # delegated roles last 90 days
    edit.add(repo.store, [repo.package("hello", "1.2.0")], [repo.keys.alice])
    monkeypatch.delenv("VCOMP_REPO_NOW")
    repo.publish()
    client.refresh()
    fetch_refused(client, "hello", tmp_path / "out", "alice is expired", error=DELEGATED_REFUSAL)
    write_role(repo, "alice", [repo.keys.alice], lambda t: setattr(t, "expires", edit.expires(90)))
    repo.publish()
    works(client, "1.2.0")


# ----------------------------------------------------------------- mix-and-match

def test_index_entry_disagreeing_with_the_delegated_role_is_refused(repo: Repo, client: RepositoryClient,
                                                                    tmp_path: Path) -> None:
    """A validly signed index whose hello 1.1.0 entry carries the hash of another real package (1.0.0)."""
    store = repo.store
    state = store.read_state()
    new, old = (state["packages"][f"packages/hello/hello-{v}-x86_64.vpk"] for v in ("1.1.0", "1.0.0"))
    good = dict(new)
    new["sha256"], new["size"] = old["sha256"], old["size"]
    store.write_state(state)
    edit.publish_unlocked(store)   # the index key's holder publishes it (a locked publish repairs state.json)
    client.refresh()
    fetch_refused(client, "hello", tmp_path / "out", "the index and the delegated role disagree", "mix-and-match")
    state["packages"]["packages/hello/hello-1.1.0-x86_64.vpk"] = good
    store.write_state(state)
    repo.publish()
    works(client)


def test_package_inside_must_be_the_one_its_index_entry_names(repo: Repo, client: RepositoryClient,
                                                              tmp_path: Path) -> None:
    """Index and alice's role agree, but the file at hello 1.2.0's path is the (validly signed) 1.0.0."""
    force_package(repo, repo.package("hello", "1.0.0"), "alice", [repo.keys.alice],
                  entry={"path": "packages/hello/hello-1.2.0-x86_64.vpk", "version": "1.2.0"})
    warm(client)
    fetch_refused(client, "hello", tmp_path / "out", "differs from the signed package in path, version",
                  "hello-1.0.0-x86_64", version="1.2.0")


def test_snapshot_naming_another_index_version_than_served_is_refused(repo: Repo,
                                                                      client: RepositoryClient) -> None:
    """The online index role is what every publish changes (the top-level targets is offline)."""
    repo.publish()
    current = repo.store.current_version("index")
    newest = repo.meta(f"{current}.index.json")
    good = newest.read_bytes()
    newest.write_bytes(repo.meta(f"{current - 1}.index.json").read_bytes())
    client.refresh()                            # timestamp and snapshot are genuine
    before = cache_state(client)
    # the snapshot pins each role's length and sha256, so the swap is caught by hash before parsing
    refused(lambda: client.index(ARCH), VerificationError, "index/x86_64.json.zst", "length or hash mismatch")
    assert_kept(before, cache_state(client))
    newest.write_bytes(good)
    works(client)


# ----------------------------------------------------------------- endless data

def test_timestamp_padded_over_the_limit_is_refused(repo: Repo, client: RepositoryClient) -> None:
    repo.refresh_timestamp()
    pad(repo.meta("timestamp.json"), 16 * 1024 + 1)             # still valid JSON with a valid signature
    refresh_refused(client, "file longer than allowed", "maximum allowed length of 16384")
    repo.refresh_timestamp()
    works(client)


@pytest.mark.parametrize("target", ["index/x86_64.json.zst", "packages/hello/hello-1.1.0-x86_64.vpk"])
def test_target_longer_than_declared_is_refused(repo: Repo, client: RepositoryClient, tmp_path: Path,
                                                target: str) -> None:
    stored = repo.target_file(target)
    good = stored.read_bytes()
    stored.write_bytes(good + b"\0" * 4096)
    if target.startswith("index/"):
        client = repo.client()                  # one that has not downloaded the index yet
        client.refresh()
        before = cache_state(client)
        refused(lambda: client.index(ARCH), VerificationError, target, "file longer than allowed")
        assert_kept(before, cache_state(client), {"index.json": repo.latest("index").read_bytes()})
    else:
        fetch_refused(client, "hello", tmp_path / "out", target, "file longer than allowed")
    stored.write_bytes(good)
    works(client)


# ----------------------------------------------------------------- delegation abuse

def test_developer_key_cannot_upload_names_outside_its_patterns(repo: Repo, tmp_path: Path) -> None:
    """mallory ('evil*') uploads a well-formed, validly signed 'libevil': alice's 'lib*'."""
    pkg = libevil(tmp_path / "libevil.vpk", [hostile.directory("usr"), hostile.file("usr/x", b"x")],
                  repo.keys.mallory)
    before = repo_files(repo)
    refused(lambda: edit.add(repo.store, [pkg, repo.package("hello", "6.6.6", developer="mallory")],
                             [repo.keys.mallory]),
            VerificationError, "upload refused: 2 of 2 packages", "'libevil'", "'hello'", "not authorised")
    assert repo_files(repo) == before


def test_delegated_role_listing_names_outside_its_patterns_is_ignored(repo: Repo, client: RepositoryClient,
                                                                      tmp_path: Path) -> None:
    """mallory's own metadata (validly signed by her) lists a 'hello' 6.6.6, and the index shows it."""
    entry = force_package(repo, repo.package("hello", "6.6.6", developer="mallory"), "mallory",
                          [repo.keys.mallory])
    client.refresh()
    assert client.metadata("hello", ARCH).version == "6.6.6"
    # 'hello' is alice's (a terminating delegation): mallory's listing is never consulted
    assert client.updater.get_targetinfo(entry.path) is None
    fetch_refused(client, "hello", tmp_path / "out", "listed in the index but not by any delegated role")
    assert client.fetch(client.metadata("evil-tool", ARCH)).is_file()


# ----------------------------------------------------------------- mirrors

def test_stale_mirror_behind_a_good_primary_is_not_used(repo: Repo) -> None:
    client = repo.client(mirrors=[repo.old().as_uri()])
    works(client)                                  # the primary answers first
    trusted = cached_version(client, "timestamp")
    repo.serve(repo.tmp / "gone")                  # now only the stale mirror answers: a rollback, refused
    with pytest.raises(FetchError, match="cannot get trusted metadata"):
        client.refresh()
    assert cached_version(client, "timestamp") == trusted


def test_unreachable_primary_fails_over_to_a_good_mirror(repo: Repo) -> None:
    client = repo.client(url="file:///nonexistent/repository", mirrors=[repo.dir.as_uri()])
    works(client)


def test_stale_primary_fails_over_to_a_good_mirror(repo: Repo, client: RepositoryClient) -> None:
    mirrored = repo.client(mirrors=[repo.snapshot("mirror").as_uri()])
    works(mirrored)                         # trusts the current repository
    repo.serve(repo.old())                  # the primary now replays its old state
    works(mirrored)
    assert cached_version(mirrored, "timestamp") == cached_version(client, "timestamp")


def test_all_sources_bad_lists_every_source(repo: Repo) -> None:
    mirror = repo.snapshot("mirror")
    client = repo.client(mirrors=["file:///nonexistent/repository", mirror.as_uri()])
    works(client)
    repo.serve(repo.old())                                      # stale primary
    repo.refresh_timestamp()
    (mirror / "metadata" / "timestamp.json").write_bytes(repo.meta("timestamp.json").read_bytes())
    pad(mirror / "metadata" / "timestamp.json", 20_000)         # an endless mirror
    message = refresh_refused(client, "all 3 sources", "rollback", "not found", "file longer than allowed")
    for source in client.urls:
        assert source in message
    assert message.count("\n") == 3                             # one line per source
    repo.serve(repo.dir)
    works(client)


def test_bad_package_on_one_source_fails_over_to_the_next(repo: Repo, tmp_path: Path) -> None:
    mirror = repo.snapshot("mirror")
    flip_byte(repo.target_file("packages/hello/hello-1.1.0-x86_64.vpk"))   # the primary's copy is corrupt
    client = repo.client(mirrors=[mirror.as_uri()])
    client.refresh()
    assert client.fetch(client.metadata("hello", ARCH), tmp_path / "out").is_file()


# ----------------------------------------------------------------- archive attacks through the repository

@pytest.mark.parametrize(("members", "words"), [
    ([hostile.file("../evil", b"x")], "'../evil' has an empty, '.' or '..' component"),
    ([hostile.file("/etc/passwd", b"x")], "'/etc/passwd' is absolute"),
], ids=["dotdot", "absolute"])
def test_package_with_escaping_paths_is_refused_at_upload(repo: Repo, tmp_path: Path,
                                                          members: list[hostile.Member], words: str) -> None:
    pkg = libevil(tmp_path / "libevil.vpk", members, repo.keys.alice)
    before = repo_files(repo)
    refused(lambda: edit.add(repo.store, [pkg], [repo.keys.alice]), InvalidPackage, words)
    assert repo_files(repo) == before


def test_decompression_bomb_is_refused_at_upload(repo: Repo, tmp_path: Path) -> None:
    pkg = hostile.write_vpk(tmp_path / "bomb.vpk", entries=[hostile.file("usr/a", b"0123456789").entry()],
                            payload=hostile.bomb_payload(2 << 30), key=repo.keys.alice,
                            meta=hostile.metadata("libevil"))
    before = repo_files(repo)
    refused(lambda: edit.add(repo.store, [pkg], [repo.keys.alice]), VerificationError, "decompression bomb")
    assert repo_files(repo) == before


HOSTILE_BUT_WELL_FORMED = {
    "symlink-out": ([hostile.directory("usr"), hostile.directory("usr/lib"),
                     hostile.symlink("usr/lib/libevil.so", "../../../../etc/shadow")],
                    "'usr/lib/libevil.so' is a symlink to '../../../../etc/shadow', which points outside the root"),
    "hardlink-out": ([hostile.directory("usr"), hostile.hardlink("usr/libevil", "../../etc/passwd")],
                     "'usr/libevil' is a hard link to '../../etc/passwd'"),
    "through-symlink": ([hostile.directory("usr"), hostile.symlink("usr/lib", "../.."),
                         hostile.file("usr/lib/evil", b"x")], "'usr/lib' is a symlink to '../..'"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_BUT_WELL_FORMED))
def test_hostile_but_well_formed_package_is_refused_at_upload_and_at_extraction(
        repo: Repo, tmp_path: Path, case: str) -> None:
    """Signed by alice, hashes right, lint clean, but its links escape: upload runs the extractor's
    whole-manifest checks and refuses it; the extractor refuses the same file on its own too."""
    members, words = HOSTILE_BUT_WELL_FORMED[case]
    pkg = libevil(tmp_path / "libevil.vpk", members, repo.keys.alice)
    before = repo_files(repo)
    refused(lambda: edit.add(repo.store, [pkg], [repo.keys.alice]), UnsafeArchive, words)
    assert repo_files(repo) == before
    image = tmp_path / "image"
    (image / "root").mkdir(parents=True)
    snap = hostile.snapshot(image)
    refused(lambda: extract_package(pkg, image / "root", trusted=repo.keys.alice.public), UnsafeArchive, words)
    assert hostile.snapshot(image) == snap


def test_repository_scanner_refuses_a_hostile_package_at_upload(repo: Repo, tmp_path: Path) -> None:
    config = repo.store.config
    config.scanner = ["true"]                       # any scanner: the upload is extracted before it runs
    (repo.dir / "repo.toml").write_bytes(config.to_toml())
    members, words = HOSTILE_BUT_WELL_FORMED["symlink-out"]
    before = repo_files(repo)
    refused(lambda: edit.add(repo.store, [libevil(tmp_path / "libevil.vpk", members, repo.keys.alice)],
                             [repo.keys.alice]), UnsafeArchive, words)
    assert repo_files(repo) == before


# ----------------------------------------------------------------- interrupted publish

def test_interrupted_publish_leaves_the_old_repository_visible(repo: Repo, client: RepositoryClient) -> None:
    edit.add(repo.store, [repo.package("hello", "1.2.0")], [repo.keys.alice])
    timestamp_key = repo.store.config.keys["timestamp"][0]
    use_online_key(repo, "timestamp", repo.tmp / "unplugged.key")     # publish dies before the timestamp
    refused(repo.publish, UserError, "unplugged.key")
    works(client, "1.1.0")                                           # new targets and snapshot are not visible
    use_online_key(repo, "timestamp", Path(timestamp_key))
    repo.publish()
    works(client, "1.2.0")


# ----------------------------------------------------------------- bad input

def test_directory_that_is_not_a_repository(repo: Repo, tmp_path: Path) -> None:
    refused(lambda: RepoStore(tmp_path), UserError, f"{tmp_path} is not a repository")
    repo.serve(tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    refresh_refused(repo.client(), "timestamp.json: not found", advanced=pinned_only(repo.root_bytes))


def test_root_of_another_repository_is_refused(repo: Repo, tmp_path: Path) -> None:
    online = {role: [hostile.new_key()] for role in ("index", "snapshot", "timestamp")}
    other = edit.init(tmp_path / "other", root_keys=[hostile.new_key()], root_threshold=1,
                      targets_keys=[hostile.new_key()], online=online,
                      online_paths={role: ["unused.key"] for role in online})
    client = repo.client(root=other.read_bytes())
    refresh_refused(client, "signatures do not verify", "timestamp was signed by 0/1 keys",
                    advanced=pinned_only(other.read_bytes()))


@pytest.mark.parametrize(("tamper", "words"), [
    ("flip-a-byte", "invalid repository metadata"),
    ("edit-without-signing", "timestamp was signed by 0/1 keys"),
])
def test_tampered_metadata_file_is_refused(repo: Repo, client: RepositoryClient, tamper: str, words: str) -> None:
    repo.refresh_timestamp()
    path = repo.meta("timestamp.json")
    good = path.read_bytes()
    if tamper == "flip-a-byte":
        flip_byte(path, good.index(b'"version"') + 3)
    else:
        edit_json(path, lambda doc: doc["signed"].update(version=doc["signed"]["version"] + 100))
    refresh_refused(client, words)
    path.write_bytes(good)
    works(client)


def test_pinned_root_that_is_not_json(tmp_path: Path) -> None:
    (tmp_path / "root.json").write_bytes(b"not json")
    refused(lambda: load_trusted_root(tmp_path / "root.json"), UserError, "is not TUF root metadata")
    refused(lambda: load_trusted_root(tmp_path / "missing.json"), UserError, "does not exist")


def test_pinned_root_that_is_other_metadata_is_a_user_error(repo: Repo) -> None:
    refused(lambda: load_trusted_root(repo.meta("timestamp.json")), UserError, "timestamp metadata, not a root")


# ----------------------------------------------------------------- errors are composer errors

def _unsign_alice(repo: Repo) -> None:
    write_role(repo, "alice", [])


def _alice_signed_by_mallory(repo: Repo) -> None:
    write_role(repo, "alice", [repo.keys.mallory])


def _alice_expired(repo: Repo) -> None:
    write_role(repo, "alice", [repo.keys.alice], lambda t: setattr(t, "expires", edit.expires(-1)))


def _alice_missing(repo: Repo) -> None:
    write_role(repo, "alice", [repo.keys.alice])
    repo.latest("alice").unlink()


@pytest.mark.parametrize("attack", [_unsign_alice, _alice_signed_by_mallory, _alice_expired, _alice_missing],
                         ids=["unsigned", "wrong-key", "expired", "missing"])
def test_fetch_reports_bad_delegated_metadata_as_a_verification_error(
        repo: Repo, client: RepositoryClient, attack: Callable[[Repo], None]) -> None:
    attack(repo)
    write_snapshot(repo, versions={"alice": int(repo.store.current_version("alice")) + (
        1 if attack is _alice_missing else 0)})
    client.refresh()
    entry = client.metadata("hello", ARCH)
    with pytest.raises(VerificationError):
        client.fetch(entry)


def test_delegations_recorded_by_the_repository(repo: Repo) -> None:
    """The fixture's delegations, as the client sees them (the rest of this file relies on them)."""
    targets: Targets = load(repo.latest("targets")).signed
    assert targets.delegations is not None and targets.delegations.roles is not None
    roles = {name: (r.paths, r.keyids, r.terminating) for name, r in targets.delegations.roles.items()}
    assert roles == {"index": (["index/*", "index/sparse/*/*", "index/sparse/*/*/*"], [repo.keys.index.keyid], True),
                     "alice": (["packages/hello/*", "packages/lib*/*"], [repo.keys.alice.keyid], True),
                     "mallory": (["packages/evil*/*"], [repo.keys.mallory.keyid], True)}
    assert next(iter(targets.delegations.roles)) == "index"
    assert not targets.targets, "the offline top-level targets lists no target itself"
    assert json.loads(repo.root_bytes)["signed"]["roles"]["root"]["threshold"] == 2
