"""Repository operations end to end on real files: init, delegate, add, publish, client, rotate, mirror."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from composer.cli.main import main
from composer.errors import ComposerError, InvalidPackage, UserError, VerificationError
from composer.package.build import build
from composer.repo.client import RepositoryClient
from composer.repo.edit import add, delegate, init, publish, refresh
from composer.repo.mirror import mirror
from composer.repo.rotate import rotate
from composer.repo.store import RepoStore
from composer.trust.keys import SigningKey, generate, load_public_key, load_signing_key
from tests.conftest import write_recipe

ONLINE = ("index", "snapshot", "timestamp")
RECIPE = """
    [package]
    name = "{name}"
    version = "{version}"
    description = "test package {name}"
    authors = ["Tester"]
    license = "MIT"
    type = "application"
    {arch}
    [[source]]
    kind = "tree"
    path = "files"
"""


@dataclass
class Repo:
    dir: Path
    keys: dict[str, SigningKey]
    keydir: Path
    pkgs: dict[str, Path]
    tmp: Path

    @property
    def store(self) -> RepoStore:
        return RepoStore(self.dir)

    @property
    def root(self) -> bytes:
        return (self.dir / "metadata" / "1.root.json").read_bytes()

    def client(self, name: str = "c", url: str = "", mirrors: tuple[str, ...] = ()) -> RepositoryClient:
        return RepositoryClient(url or str(self.dir), self.root, self.tmp / f"cache-{name}", mirrors=mirrors)


def make_pkg(tmp: Path, key: SigningKey, name: str, version: str = "1.0.0", content: str = "x",
             noarch: bool = False) -> Path:
    rdir = write_recipe(tmp / "recipes" / f"{name}-{version}-{content}", RECIPE.format(
        name=name, version=version, arch='arch = "noarch"' if noarch else ""),
        {f"files/usr/share/{name}/data": content})
    return build(rdir, "x86_64", key, tmp / "built" / content).path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, SigningKey]]:
    d = tmp_path_factory.mktemp("repo-keys")
    names = ("root1", "root2", "root3", "targets", "index", "snapshot", "timestamp", "alice", "bob")
    for n in names:
        generate(n, d)
    return d, {n: load_signing_key(d / f"{n}.key") for n in names}


@pytest.fixture()
def repo(tmp_path: Path, keys: tuple[Path, dict[str, SigningKey]]) -> Repo:
    keydir, k = keys
    online = {r: [k[r]] for r in ONLINE}
    init(tmp_path / "repo", root_keys=[k["root1"], k["root2"]], root_threshold=2, targets_keys=[k["targets"]],
         online=online, online_paths={r: [str(keydir / f"{r}.key")] for r in online})
    store = RepoStore(tmp_path / "repo")
    delegate(store, "alice", [k["alice"].public], ["hello", "lib*"], targets_keys=[k["targets"]])
    delegate(store, "bob", [k["bob"].public], ["bob-*"], targets_keys=[k["targets"]])
    pkgs = {"hello": make_pkg(tmp_path, k["alice"], "hello"),
            "hello2": make_pkg(tmp_path, k["alice"], "hello", "1.1.0", "y"),
            "libz": make_pkg(tmp_path, k["alice"], "libz", noarch=True)}
    add(store, list(pkgs.values()), [k["alice"]])
    publish(store)
    return Repo(dir=tmp_path / "repo", keys=k, keydir=keydir, pkgs=pkgs, tmp=tmp_path)


def test_init_root_threshold_and_layout(repo: Repo) -> None:
    root = json.loads(repo.root)
    assert root["signed"]["roles"]["root"]["threshold"] == 2 and len(root["signatures"]) == 2
    assert root["signed"]["consistent_snapshot"] is True
    assert (repo.dir / "metadata" / "timestamp.json").exists() and (repo.dir / "repo.toml").exists()
    config = (repo.dir / "repo.toml").read_text()
    assert "root1" not in config and "targets.key" not in config and "index.key" in config


def test_search_metadata_fetch_and_noarch_in_every_index(repo: Repo, tmp_path: Path) -> None:
    c = repo.client()
    assert [e.name for e in c.search("hello", "x86_64")] == ["hello", "hello"]
    assert c.metadata("hello", "x86_64").version == "1.1.0"
    assert c.metadata("hello", "x86_64", "1.0.0").version == "1.0.0"
    assert c.metadata("hello", "x86_64", "<1.1").version == "1.0.0"
    assert {e.name for e in c.index("aarch64")} == {"libz"}  # noarch package, served for every arch
    got = c.fetch(c.metadata("hello", "x86_64"), tmp_path / "out")
    assert got.read_bytes() == repo.pkgs["hello2"].read_bytes()
    with pytest.raises(UserError, match="no package 'helo'.*"):
        c.metadata("helo", "x86_64")


def test_targets_are_content_addressed(repo: Repo) -> None:
    stored = list((repo.dir / "targets" / "packages" / "hello").iterdir())
    assert len(stored) == 2 and all(len(p.name.split(".", 1)[0]) == 64 for p in stored)


def test_immutability(repo: Repo) -> None:
    same = add(repo.store, [repo.pkgs["hello"]], [repo.keys["alice"]])
    assert not same[0].new
    changed = make_pkg(repo.tmp, repo.keys["alice"], "hello", "1.0.0", "different")
    with pytest.raises(InvalidPackage, match="already published with different content"):
        add(repo.store, [changed], [repo.keys["alice"]])


def test_unauthorised_name_and_missing_role_key(repo: Repo) -> None:
    evil = make_pkg(repo.tmp, repo.keys["bob"], "hello", "9.0.0", "evil")
    with pytest.raises(VerificationError, match="not authorised to publish 'hello'"):
        add(repo.store, [evil], [repo.keys["bob"]])
    good = make_pkg(repo.tmp, repo.keys["alice"], "libnew", "1.0.0", "n")
    with pytest.raises(UserError, match="needs 1 of its keys"):
        add(repo.store, [good], [repo.keys["bob"]])


def test_scanner_can_reject(repo: Repo) -> None:
    toml = (repo.dir / "repo.toml").read_text()
    (repo.dir / "repo.toml").write_text(toml + textwrap.dedent('''
        [scanner]
        command = ["sh", "-c", "if [ -e \\"$0/usr/share/libbad\\" ]; then echo 'found malware' >&2; exit 1; fi"]
    '''))
    with pytest.raises(InvalidPackage, match="rejected by the repository scanner.*found malware"):
        add(repo.store, [make_pkg(repo.tmp, repo.keys["alice"], "libbad", "1.0.0", "b")], [repo.keys["alice"]])
    assert add(repo.store, [make_pkg(repo.tmp, repo.keys["alice"], "libok", "1.0.0", "o")],
               [repo.keys["alice"]])[0].new


def test_added_packages_are_visible_only_after_publish(repo: Repo) -> None:
    c = repo.client()
    c.refresh()
    add(repo.store, [make_pkg(repo.tmp, repo.keys["alice"], "libnew", "1.0.0", "n")], [repo.keys["alice"]])
    assert not RepositoryClient(str(repo.dir), repo.root, repo.tmp / "cache-2").search("libnew", "x86_64")
    publish(repo.store)
    assert RepositoryClient(str(repo.dir), repo.root, repo.tmp / "cache-3").search("libnew", "x86_64")


def test_refresh_bumps_timestamp_only(repo: Repo) -> None:
    before = {p.name for p in (repo.dir / "metadata").iterdir()}
    v = refresh(repo.store)
    assert {p.name for p in (repo.dir / "metadata").iterdir()} == before
    assert json.loads((repo.dir / "metadata" / "timestamp.json").read_bytes())["signed"]["version"] == v
    assert repo.client().search("hello", "x86_64")


def test_root_rotation_is_followed_from_the_pinned_root(repo: Repo) -> None:
    k = repo.keys
    with pytest.raises(UserError, match="needs 2 of the offline root keys; 1 given"):
        rotate(repo.store, "root", add=[k["root3"]], remove=[k["root1"].public], root_keys=[k["root1"]])
    rotate(repo.store, "root", add=[k["root3"]], remove=[k["root1"].public], root_keys=[k["root1"], k["root2"]])
    c = repo.client("after-rotation")
    assert c.search("hello", "x86_64")
    assert json.loads((c.metadata_dir / "root.json").read_bytes())["signed"]["version"] == 2


def test_timestamp_key_rotation(repo: Repo) -> None:
    k = repo.keys
    c = repo.client()
    c.refresh()
    generate("ts2", repo.keydir, force=True)
    ts2 = load_signing_key(repo.keydir / "ts2.key")
    rotate(repo.store, "timestamp", add=[ts2], remove=[k["timestamp"].public], root_keys=[k["root1"], k["root2"]],
           add_paths=[str(repo.keydir / "ts2.key")])
    refresh(repo.store)
    c2 = RepositoryClient(str(repo.dir), repo.root, c.cache.parent)  # same cache: walks to root v2
    assert c2.search("hello", "x86_64")


def test_mirror_is_verified_incremental_and_servable(repo: Repo) -> None:
    m = repo.tmp / "mirror"
    from composer.repo.sparse import sparse_paths
    first = mirror(repo.client("m1"), m, ["x86_64"])
    sparse = len(sparse_paths("x86_64", repo.client("m0").index("x86_64")))   # base.json + one per name
    assert first.downloaded == 4 + sparse and first.packages == 3  # index + 3 packages + the sparse index
    second = mirror(repo.client("m2"), m, ["x86_64"])
    assert second.downloaded == 0 and second.skipped == 4 + sparse
    c = RepositoryClient(str(m), repo.root, repo.tmp / "cache-mirror")
    assert c.fetch(c.metadata("libz", "x86_64")).read_bytes() == repo.pkgs["libz"].read_bytes()
    assert set(c.sparse_entries("x86_64", ["libz", "hello"])) == {"libz", "hello"}   # the mirror serves it too


def test_not_a_repository_and_bad_roots(repo: Repo, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is not a repository"):
        RepoStore(tmp_path)
    online = {r: [repo.keys[r]] for r in ONLINE}
    with pytest.raises(UserError, match="already a repository"):
        init(repo.dir, root_keys=[repo.keys["root1"]], root_threshold=1, targets_keys=[repo.keys["targets"]],
             online=online, online_paths={})
    with pytest.raises(UserError, match="root threshold 3 needs between 1 and 2"):
        init(tmp_path / "x", root_keys=[repo.keys["root1"], repo.keys["root2"]], root_threshold=3,
             targets_keys=[repo.keys["targets"]], online=online, online_paths={})
    with pytest.raises(UserError, match="invalid package pattern"):
        delegate(repo.store, "x", [repo.keys["bob"].public], ["a/b"], targets_keys=[repo.keys["targets"]])


def test_cli_repo_flow_and_errors(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(repo.dir / "metadata" / "1.root.json")
    assert main(["search", "lib", "--repo", str(repo.dir), "--root", root]) == 0
    assert "libz" in capsys.readouterr().out
    assert main(["info", "hello", "--json", "--repo", repo.dir.as_uri(), "--root", root]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "1.1.0"
    out = repo.tmp / "fetched"
    assert main(["fetch", "hello=1.0.0", "--repo", str(repo.dir), "--root", root, "--out", str(out)]) == 0
    assert (out / "hello-1.0.0-x86_64.vpk").exists()
    capsys.readouterr()
    assert main(["repo", "init", str(repo.tmp / "new")]) == 1
    assert "needs --root-key, --targets-key, --index-key" in capsys.readouterr().err
    assert main(["search", "x", "--repo", str(repo.tmp), "--root", str(repo.tmp / "nope.json")]) == 1
    assert "trust root" in capsys.readouterr().err
    pub = str(repo.keydir / "bob.pub")
    assert main(["repo", "delegate", str(repo.dir), "carol", "--key", pub, "--packages", "carol-*",
                 "--targets-key", str(repo.keydir / "index.key")]) == 1
    assert "needs 1 of the offline targets keys; 0 given" in capsys.readouterr().err
    assert main(["repo", "delegate", str(repo.dir), "carol", "--key", pub, "--packages", "carol-*",
                 "--targets-key", str(repo.keydir / "targets.key")]) == 0


def test_errors_are_composer_errors_with_hints(repo: Repo) -> None:
    c = RepositoryClient("file:///nonexistent/repo", repo.root, repo.tmp / "cache-x")
    with pytest.raises(ComposerError) as info:
        c.refresh()
    assert "nonexistent" in info.value.message and info.value.hint
    assert load_public_key(repo.keydir / "alice.pub").keyid == repo.keys["alice"].keyid


class CountingClient(RepositoryClient):
    fetched: list[str]

    def _fetcher(self):  # type: ignore[no-untyped-def]
        from composer.repo.transports import UrlFetcher
        owner = self

        class Counting(UrlFetcher):
            def _fetch(self, url: str):  # type: ignore[no-untyped-def]
                owner.fetched.append(url.rsplit("/", 1)[-1])
                return super()._fetch(url)
        return Counting()


def test_a_refresh_that_changes_nothing_downloads_only_the_timestamp(repo: Repo) -> None:
    c = CountingClient(str(repo.dir), repo.root, repo.tmp / "cache-count")
    c.fetched = []
    c.search("hello", "x86_64")
    # (a new client takes the snapshot compressed: composer/repo/snappatches.py)
    assert "timestamp.json" in c.fetched and any(f.endswith((".snapshot.json", ".zst")) for f in c.fetched)
    again = CountingClient(str(repo.dir), repo.root, repo.tmp / "cache-count")
    again.fetched = []
    again.refresh()
    # the probe for the next root version (not found) and the timestamp: nothing else
    assert again.fetched == ["2.root.json", "timestamp.json"]
    refresh(repo.store)
    again.fetched = []
    again.refresh()
    assert again.fetched == ["2.root.json", "timestamp.json"]  # a new timestamp, same snapshot


def test_provides_outside_the_delegation_is_refused(repo: Repo) -> None:
    rdir = write_recipe(repo.tmp / "recipes" / "bob-tool", RECIPE.format(name="bob-tool", version="1.0.0", arch="")
                        .replace('type = "application"', 'type = "application"\n    provides = ["hello"]'),
                        {"files/usr/share/bob/data": "b"})
    pkg = build(rdir, "x86_64", repo.keys["bob"], repo.tmp / "bob").path
    with pytest.raises(VerificationError, match="provides 'hello', which key .* is not delegated"):
        add(repo.store, [pkg], [repo.keys["bob"]])


def test_init_refuses_an_offline_key_as_an_online_key(repo: Repo, tmp_path: Path) -> None:
    k = repo.keys
    for role, offline in (("index", "targets"), ("snapshot", "root1"), ("timestamp", "targets")):
        online = {r: [k[r]] for r in ONLINE} | {role: [k[offline]]}
        with pytest.raises(UserError, match=f"the {role} key .* is also the offline"):
            init(tmp_path / f"x-{role}", root_keys=[k["root1"]], root_threshold=1, targets_keys=[k["targets"]],
                 online=online, online_paths={})
        assert not (tmp_path / f"x-{role}").exists()
    with pytest.raises(UserError, match="needs the offline top-level targets key"):
        init(tmp_path / "y", root_keys=[k["root1"]], root_threshold=1, targets_keys=[], online={}, online_paths={})


def test_sign_targets_renews_the_offline_role_and_clients_follow(repo: Repo,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    c = repo.client()
    c.refresh()
    version = repo.store.current_version("targets")
    assert main(["repo", "sign-targets", str(repo.dir), "--targets-key", str(repo.keydir / "index.key")]) == 1
    assert "needs 1 of the offline targets keys; 0 given" in capsys.readouterr().err
    assert main(["repo", "sign-targets", str(repo.dir), "--targets-key", str(repo.keydir / "targets.key")]) == 0
    assert f"top-level targets v{version + 1} signed" in capsys.readouterr().out
    c.refresh()
    assert c.metadata("hello", "x86_64").version == "1.1.0"
    assert json.loads((c.metadata_dir / "targets.json").read_bytes())["signed"]["version"] == version + 1
    from composer.repo.edit import resign_targets
    assert resign_targets(repo.store, targets_keys=[], within_days=30) == version + 1  # not due: no key needed


def test_developer_rotation_needs_the_offline_targets_key(repo: Repo) -> None:
    k = repo.keys
    with pytest.raises(UserError, match="needs 1 of the offline targets keys"):
        rotate(repo.store, "bob", add=[k["alice"].public], remove=[k["bob"].public],
               targets_keys=[k["index"], k["snapshot"], k["timestamp"]])
    assert "delegation 'bob' has 1 key(s)" in rotate(repo.store, "bob", add=[k["alice"].public],
                                                     remove=[k["bob"].public], targets_keys=[k["targets"]])


def test_publish_never_changes_the_offline_targets_metadata(repo: Repo) -> None:
    before = repo.store.current_version("targets")
    publish(repo.store)
    refresh(repo.store)
    assert repo.store.current_version("targets") == before
    assert repo.store.current_version("index") >= 2


def test_a_repository_serves_a_new_architecture_once_repo_toml_lists_it(repo: Repo) -> None:
    """A repository made before riscv64 (repo.toml: x86_64, aarch64): serve_architectures adds it (no key:
    the signed metadata names no architecture), the next publish writes its index; unknown names are refused."""
    from composer.repo.edit import serve_architectures
    with pytest.raises(UserError, match="unknown architecture 'sparc'"):
        serve_architectures(repo.dir, ["sparc"])
    assert serve_architectures(repo.dir, ["x86_64", "riscv64", "riscv64"]) == ["riscv64"]
    assert serve_architectures(repo.dir, ["riscv64"]) == []
    assert RepoStore(repo.dir).config.architectures == ["x86_64", "aarch64", "riscv64"]
    publish(RepoStore(repo.dir))
    assert {e.name for e in repo.client().index("riscv64")} == {"libz"}   # noarch, served for every arch
