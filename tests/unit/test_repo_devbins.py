"""Hash bins under each developer's namespace (composer/repo/devbins.py, docs/repo-devbins.md): an unbinned role
is binned by its first write, one add re-signs one bin and not the developer role, clients (online, offline,
mirrors) install through the bins, the repair follows them, and a forged bin is refused with the path named.

The threshold is lowered (``UNBINNED_MAX``) so that the fixture repository's few packages make bins."""

from __future__ import annotations

from pathlib import Path

import pytest
from tuf.api.metadata import Targets

from composer.errors import VerificationError
from composer.repo import devbins, edit, snapbins, snapshotdoc
from composer.repo.client import RepositoryClient
from composer.repo.devbins import snapshot_roles
from composer.repo.guard import listed_targets
from composer.repo.index import package_target_path
from composer.repo.mirror import mirror
from composer.repo.store import INDEX_ROLE
from tests.repo_fixtures import ARCH, Pristine, Repo, build_package, copy_tree, force_package, load, write_role
from tests.unit.test_repo_vendor import Ours, our_pristine, run_vendor  # noqa: F401 (a fixture)

EXTRA = (("libbin1", "1.0.0", ARCH, "alice"), ("libbin2", "1.0.0", ARCH, "alice"),
         ("evil-two", "1.0.0", ARCH, "mallory"))


@pytest.fixture(scope="module")
def extra(pristine: Pristine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """More packages for alice and mallory (built once, not published)."""
    base = tmp_path_factory.mktemp("extra")
    return {spec[0]: build_package(base, spec, pristine.keys) for spec in EXTRA}


@pytest.fixture(autouse=True)
def small_bins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devbins, "UNBINNED_MAX", 2)


def _bins(repo: Repo, role: str) -> dict[str, int]:
    """bin -> version the newest snapshot lists, for developer ``role``."""
    snapshot = load(repo.latest("snapshot")).signed
    return {k[:-len(".json")]: v.version for k, v in snapshot.meta.items() if k.startswith(f"{role}.bins")}


def _bin_of(repo: Repo, role: str, path: str) -> str:
    succinct = load(repo.latest(role)).signed.delegations.succinct_roles
    return str(succinct.get_role_for_target(path))


def _bin(repo: Repo) -> Repo:
    """Bin alice's role: her next add (hello 1.2.0) makes her 5 packages more than UNBINNED_MAX."""
    edit.add(repo.store, [repo.package("hello", "1.2.0")], [repo.keys.alice])
    repo.publish()
    return repo


def test_an_unbinned_role_still_reads_and_its_first_write_bins_it(repo: Repo, tmp_path: Path) -> None:
    client = repo.client()
    assert client.fetch(client.metadata("hello", ARCH)).is_file()           # the old layout reads as before
    role_before = load(repo.latest("alice")).signed
    assert role_before.delegations is None and len(role_before.targets) == 4
    _bin(repo)
    role = load(repo.latest("alice")).signed
    assert role.targets == {} and role.delegations.succinct_roles is not None
    succinct = role.delegations.succinct_roles
    assert succinct.keyids == [repo.keys.alice.keyid] and succinct.threshold == 1
    assert set(_bins(repo, "alice")) == set(succinct.get_roles())           # every bin in the snapshot
    listed = listed_targets(repo.store)
    assert {p for p in listed if p.startswith(("packages/hello/", "packages/libfoo/"))} == \
        set(role_before.targets) | {package_target_path("hello", "1.2.0", ARCH)}
    # the warm client follows the bins; a fresh one too
    client.refresh()
    assert client.metadata("hello", ARCH).version == "1.2.0"
    assert client.fetch(client.metadata("hello", ARCH)).is_file()
    assert client.fetch(client.metadata("libfoo", ARCH)).is_file()
    fresh = repo.client()
    assert fresh.fetch(fresh.metadata("hello", ARCH, "1.0.0"), tmp_path / "out").is_file()


def test_one_add_re_signs_exactly_one_bin_and_not_the_developer_role(repo: Repo, extra: dict[str, Path]) -> None:
    _bin(repo)
    role_version = repo.store.current_version("alice")
    before = _bins(repo, "alice")
    edit.add(repo.store, [extra["libbin1"]], [repo.keys.alice])
    repo.publish()
    after = _bins(repo, "alice")
    assert repo.store.current_version("alice") == role_version
    changed = {b for b in after if after[b] != before[b]}
    assert changed == {_bin_of(repo, "alice", package_target_path("libbin1", "1.0.0", ARCH))}
    client = repo.client()
    assert client.fetch(client.metadata("libbin1", ARCH)).is_file()


def test_clients_read_the_bins_offline_and_mirrors_copy_them(repo: Repo, tmp_path: Path) -> None:
    _bin(repo)
    client = repo.client()
    path = client.fetch(client.metadata("hello", ARCH))
    offline = RepositoryClient(repo.url, repo.root_bytes, client.cache.parent, offline=True)
    assert offline.is_offline or offline.refresh() is None
    info = offline.targetinfo(package_target_path("hello", "1.2.0", ARCH))
    assert info is not None and info.hashes["sha256"] == client.metadata("hello", ARCH).sha256
    assert path.is_file()
    copy = tmp_path / "mirror"
    mirror(repo.client(), copy, [ARCH])
    names = {p.name.split(".", 1)[1] for p in (copy / "metadata").glob("*.alice.bins*.json")}
    assert names == {f"{b}.json" for b in _bins(repo, "alice")}   # empty bins too
    via_mirror = repo.client(url=copy.as_uri())
    assert via_mirror.fetch(via_mirror.metadata("hello", ARCH)).is_file()


def test_a_killed_add_after_the_state_is_repaired_from_the_bins(repo: Repo, extra: dict[str, Path],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _bin(repo)

    def killed(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt
    monkeypatch.setattr(repo.store.__class__, "sign_and_write", killed)
    with pytest.raises(KeyboardInterrupt):
        edit.add(repo.store, [extra["libbin1"]], [repo.keys.alice])
    monkeypatch.undo()
    monkeypatch.setattr(devbins, "UNBINNED_MAX", 2)
    repo.publish()   # the repair drops the entry no bin lists
    client = repo.client()
    assert not [e for e in client.index(ARCH) if e.name == "libbin1"]
    assert client.fetch(client.metadata("hello", ARCH)).is_file()


def test_more_packages_make_more_bins(repo: Repo, extra: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _bin(repo)
    old = _bins(repo, "alice")
    monkeypatch.setattr(devbins, "GROW_AT", 1)
    edit.add(repo.store, [extra["libbin1"], extra["libbin2"]], [repo.keys.alice])
    repo.publish()
    succinct = load(repo.latest("alice")).signed.delegations.succinct_roles
    assert succinct.bit_length == 2 and set(_bins(repo, "alice")) == set(succinct.get_roles())
    assert not set(old) & set(succinct.get_roles())   # new names: the old layout stays whole until the switch
    client = repo.client()
    for name in ("hello", "libbin1", "libbin2"):
        assert client.fetch(client.metadata(name, ARCH)).is_file()
    assert len([p for p in listed_targets(repo.store) if not p.startswith("packages/evil")]) == 7


def test_the_same_adds_give_byte_identical_metadata(pristine: Pristine, extra: dict[str, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCOMP_REPO_NOW", "2030-01-01T00:00:00+00:00")
    outputs = []
    for run in ("a", "b"):
        repo = pristine.copy(tmp_path / run)
        _bin(repo)
        edit.add(repo.store, [extra["libbin1"]], [repo.keys.alice])
        outputs.append({p.name: p.read_bytes() for p in (repo.dir / "metadata").glob("*alice*")})
    assert outputs[0] == outputs[1] and len(outputs[0]) > 3


def test_a_rotated_developer_key_re_signs_every_bin_and_the_role(repo: Repo, extra: dict[str, Path]) -> None:
    from composer.repo.rotate import rotate
    _bin(repo)
    before, role_version = _bins(repo, "alice"), repo.store.current_version("alice")
    second = repo.keys.mallory   # a second key for alice (any other key does)
    rotate(repo.store, "alice", add=[second.public], remove=[], targets_keys=[repo.keys.targets])
    edit.add(repo.store, [extra["libbin1"]], [repo.keys.alice])
    repo.publish()
    after = _bins(repo, "alice")
    assert set(after) == set(before) and all(after[b] > before[b] for b in before)   # every bin re-signed
    assert repo.store.current_version("alice") == role_version + 1
    succinct = load(repo.latest("alice")).signed.delegations.succinct_roles
    assert succinct.keyids == sorted([repo.keys.alice.keyid, second.keyid])
    client = repo.client()
    for name in ("hello", "libbin1"):
        assert client.fetch(client.metadata(name, ARCH)).is_file()


# ----------------------------------------------------------------- attacks

def test_a_bin_listing_another_developers_name_is_refused_with_the_path_named(
        repo: Repo, extra: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mallory ('evil*', binned) lists alice's 'hello' 6.6.6 in her bin, and the index (a stolen online key)
    shows it: clients never consult mallory's bins for alice's name."""
    monkeypatch.setattr(devbins, "UNBINNED_MAX", 1)
    edit.add(repo.store, [extra["evil-two"]], [repo.keys.mallory])
    repo.publish()
    assert load(repo.latest("mallory")).signed.delegations.succinct_roles is not None
    path = package_target_path("hello", "6.6.6", ARCH)
    forged = _bin_of(repo, "mallory", path)
    entry = force_package(repo, repo.package("hello", "6.6.6", developer="mallory"), forged, [repo.keys.mallory])
    # the repository's own repair ignores the forged listing: its publish indexed no 'hello' 6.6.6
    assert path not in listed_targets(repo.store)
    assert repo.client().metadata("hello", ARCH).version == "1.1.0"
    # an attacker with the online index key publishes an index that lists it anyway
    store = repo.store
    state = store.read_state()
    state["packages"][entry.path] = entry.to_dict()
    store.write_state(state)
    edit.publish_unlocked(store)
    client = repo.client()
    assert client.metadata("hello", ARCH).version == "6.6.6"
    assert client.updater.get_targetinfo(entry.path) is None
    with pytest.raises(VerificationError, match=f"{entry.path}: listed in the index but not by any delegated role"):
        client.fetch(client.metadata("hello", ARCH))
    assert client.fetch(client.metadata("evil-two", ARCH)).is_file()


def test_a_bin_signed_by_the_wrong_key_is_refused_with_the_path_named(repo: Repo, tmp_path: Path) -> None:
    _bin(repo)
    path = package_target_path("hello", "1.2.0", ARCH)
    write_role(repo, _bin_of(repo, "alice", path), [repo.keys.mallory])
    repo.publish()
    client = repo.client()
    with pytest.raises(VerificationError, match=f"{path}: .*signed by 0/1 keys"):
        client.fetch(client.metadata("hello", ARCH))
    # the other bin still verifies
    other = package_target_path("hello", "1.0.0", ARCH)
    if _bin_of(repo, "alice", other) != _bin_of(repo, "alice", path):
        assert client.fetch(client.metadata("hello", ARCH, "1.0.0")).is_file()


def test_developer_bins_are_targets_metadata_of_their_developer(repo: Repo) -> None:
    _bin(repo)
    for name in _bins(repo, "alice"):
        md = load(repo.latest(name))
        assert isinstance(md.signed, Targets)
        load(repo.latest("alice")).verify_delegate(name, md)


# ----------------------------------------------------------------- vendoring a binned developer

def test_vendoring_a_binned_role_copies_its_bins_verbatim(repo: Repo, our_pristine: Ours,  # noqa: F811
                                                           tmp_path: Path) -> None:
    _bin(repo)
    ours = Ours(dir=copy_tree(our_pristine.dir, tmp_path / "ours"), keys=our_pristine.keys,
                key_dir=our_pristine.key_dir)
    done = run_vendor(ours, repo, "hello")
    assert [e.nva for e in done.packages] == [f"hello-{v}-{ARCH}" for v in ("1.0.0", "1.1.0", "1.2.0")]
    for name in [*_bins(repo, "alice"), "alice"]:
        assert (ours.dir / "metadata" / repo.latest(name).name).read_bytes() == repo.latest(name).read_bytes()
    edit.publish(ours.store)
    client = ours.client(tmp_path / "client")
    assert client.fetch(client.metadata("hello", ARCH)).is_file()
    assert set(listed_targets(ours.store)) == {package_target_path("hello", v, ARCH)
                                                       for v in ("1.0.0", "1.1.0", "1.2.0")}


def _bucket_listing(repo: Repo) -> dict[str, int]:
    store = repo.store.__class__(repo.dir)
    signed = snapshotdoc.read(store).signed
    table = snapbins.table(signed)
    assert table is not None
    out: dict[str, int] = {}
    for bucket, named in table.items():
        data = (repo.dir / "metadata" / snapbins.file_name(named["hashes"]["sha256"])).read_bytes()
        out.update(snapbins.parse(data, bucket, named))
    return out


def _expected_buckets(repo: Repo) -> dict[str, int]:
    store = repo.store.__class__(repo.dir)
    targets = store.load("targets", Targets).signed
    top = sorted(targets.delegations.roles)
    index = store.load(INDEX_ROLE, Targets).signed
    bins = list(index.delegations.succinct_roles.get_roles()) if index.delegations else []
    versions = store.latest_versions()
    return {f"{r}.json": versions[r] for r in [*snapshot_roles(store, top), *bins] if r not in top and r in versions}


def test_developer_bins_in_snapshot_buckets_added_to_and_re_binned(repo: Repo, extra: dict[str, Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Developer bins in snapshot buckets (composer/repo/snapbins.py): added to and re-binned, an incremental
    publish's buckets list exactly the bins on disk."""
    monkeypatch.setattr(snapbins, "BUCKETS_FROM", 1)
    repo.publish()
    _bin(repo)
    assert _bucket_listing(repo) == _expected_buckets(repo)
    monkeypatch.setattr(devbins, "GROW_AT", 1)
    edit.add(repo.store, [extra["libbin1"], extra["libbin2"]], [repo.keys.alice])
    assert repo.publish()["incremental"] == 1
    assert _bucket_listing(repo) == _expected_buckets(repo)
    client = repo.client()
    for name in ("hello", "libbin1", "libbin2"):
        assert client.fetch(client.metadata(name, ARCH)).is_file()
