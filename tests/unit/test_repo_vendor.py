"""`vcomp repo vendor`: upstream packages in your repository, verified by the upstream developer's signatures.

The upstream is the real repository of ``tests/repo_fixtures.py`` (alice owns 'hello' and 'lib*'); yours is
a real repository with keys of its own and a developer 'bob' owning 'mine*'. Vendoring uses only your
offline targets key: no upstream private key is read (the key loader is watched).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import jsonschema
import pytest
from tuf.api.metadata import Targets

from composer.cli.main import main
from composer.errors import ComposerError, FetchError, UserError, VerificationError
from composer.package.metadata import Dependency
from composer.profile.load import load_profile
from composer.repo import edit
from composer.repo.client import RepositoryClient
from composer.repo.index import IndexEntry
from composer.repo.rotate import rotate
from composer.repo.serve import serve_in_thread
from composer.repo.statedb import remove_state
from composer.repo.store import RepoStore
from composer.repo.vendor import Vendored, VendorRequest, dependency_closure, vendor
from composer.repo.vendored import read_vendored
from composer.solve.lock import open_sources, resolve_profile
from composer.trust import keys as trust_keys
from composer.trust.keys import SigningKey, generate, load_signing_key
from tests import hostile
from tests.conftest import REPO
from tests.repo_fixtures import ARCH, Repo, copy_tree, flip_byte, load

OUR_KEYS = ("root", "targets", "index", "snapshot", "timestamp", "bob")


@dataclass(frozen=True, slots=True, kw_only=True)
class Ours:
    dir: Path
    keys: dict[str, SigningKey]
    key_dir: Path

    @property
    def store(self) -> RepoStore:
        return RepoStore(self.dir)

    def client(self, cache: Path) -> RepositoryClient:
        return RepositoryClient(str(self.dir), (self.dir / "metadata" / "1.root.json").read_bytes(), cache)

    def files(self) -> dict[str, bytes]:
        """The repository's files, but the lock and the derived state (state.db*: the repair under the lock may
        record there what it reconciled, and SQLite's WAL files change with reads)."""
        return {str(p.relative_to(self.dir)): p.read_bytes() for p in sorted(self.dir.rglob("*"))
                if p.is_file() and p.name != ".lock" and not p.name.startswith("state.db")}


@pytest.fixture(scope="module")
def our_pristine(tmp_path_factory: pytest.TempPathFactory) -> Ours:
    base = tmp_path_factory.mktemp("ours")
    key_dir = base / "keys"
    for name in OUR_KEYS:
        generate(name, key_dir)
    keys = {n: load_signing_key(key_dir / f"{n}.key") for n in OUR_KEYS}
    online = ("index", "snapshot", "timestamp")
    edit.init(base / "repo", root_keys=[keys["root"]], root_threshold=1, targets_keys=[keys["targets"]],
              online={r: [keys[r]] for r in online}, online_paths={r: [str(key_dir / f"{r}.key")] for r in online},
              architectures=[ARCH])
    edit.delegate(RepoStore(base / "repo"), "bob", [keys["bob"].public], ["mine*"], targets_keys=[keys["targets"]])
    return Ours(dir=base / "repo", keys=keys, key_dir=key_dir)


@pytest.fixture()
def ours(our_pristine: Ours, tmp_path: Path) -> Ours:
    return Ours(dir=copy_tree(our_pristine.dir, tmp_path / "ours"), keys=our_pristine.keys,
                key_dir=our_pristine.key_dir)


@pytest.fixture()
def keys_read(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every private key file loaded during the test."""
    read: list[Path] = []
    real = trust_keys.load_signing_key

    def watched(path: Path, **kwargs: object) -> SigningKey:
        read.append(Path(path))
        return real(path, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(trust_keys, "load_signing_key", watched)
    return read


@pytest.fixture()
def http_upstream(repo: Repo) -> Iterator[str]:
    server, url = serve_in_thread(repo.dir)
    yield url
    server.shutdown()
    server.server_close()


def run_vendor(ours: Ours, upstream: Repo, *names: str, url: str = "", cache: str = "up",
               keys: tuple[str, ...] = ("targets",), with_dependencies: bool = False) -> Vendored:
    client = RepositoryClient(url or str(upstream.dir), upstream.root_bytes, upstream.tmp / f"cache-{cache}")
    return vendor(ours.store, client, VendorRequest(patterns=names, with_dependencies=with_dependencies),
                  targets_keys=[ours.keys[k] for k in keys])


def test_a_profile_of_your_repository_only_locks_and_verifies_the_vendored_package(
        repo: Repo, ours: Ours, http_upstream: str, keys_read: list[Path], tmp_path: Path) -> None:
    done = run_vendor(ours, repo, "hello", url=http_upstream)
    assert not [p for p in keys_read if p.parent == repo.keys.dir], "no upstream private key is read"
    # the developer role verbatim, the packages byte-identical under their consistent-snapshot names
    upstream_role = repo.latest("alice")
    assert (ours.dir / "metadata" / upstream_role.name).read_bytes() == upstream_role.read_bytes()
    for version in ("1.0.0", "1.1.0"):
        path = f"packages/hello/hello-{version}-{ARCH}.vpk"
        assert (ours.dir / "targets" / repo.target_file(path).relative_to(repo.dir / "targets")).read_bytes() == \
            repo.package("hello", version).read_bytes()
    assert [e.nva for e in done.packages] == [f"hello-1.0.0-{ARCH}", f"hello-1.1.0-{ARCH}"]
    delegation = ours.store.load("targets", Targets).signed.delegations.roles["alice"]
    assert delegation.paths == ["packages/hello/*"] and delegation.keyids == [repo.keys.alice.keyid]
    edit.publish(ours.store)

    profile_dir = tmp_path / "profile"
    profile_dir.mkdir()
    (profile_dir / "root.json").write_bytes((ours.dir / "metadata" / "1.root.json").read_bytes())
    (profile_dir / "p.yaml").write_text(f"name: vendored\narchitectures: [{ARCH}]\nrepositories:\n"
                                        f"  - {{name: ours, url: '{ours.dir}', root: root.json}}\n"
                                        "packages: [hello]\noutputs:\n  - type: rootfs\n")
    prof = load_profile(profile_dir / "p.yaml")
    lock = resolve_profile(prof, open_sources(prof, tmp_path / "cache"))
    [row] = [p for p in lock.architectures[ARCH] if p.name == "hello"]
    assert (row.version, row.repository, row.signer) == ("1.1.0", "ours", repo.keys.alice.keyid)
    client = ours.client(tmp_path / "client")
    entry = client.metadata("hello", ARCH)
    assert client.fetch(entry).read_bytes() == repo.package("hello", "1.1.0").read_bytes()
    assert client.delegated_key(entry).keyid == repo.keys.alice.keyid   # the signer: the upstream developer


def test_a_rerun_picks_up_the_newer_upstream_version_without_the_offline_key(repo: Repo, ours: Ours,
                                                                             tmp_path: Path) -> None:
    run_vendor(ours, repo, "hello")
    first = ours.store.current_version("alice")
    edit.add(repo.store, [repo.package("hello", "1.2.0")], [repo.keys.alice])
    repo.publish()
    again = run_vendor(ours, repo, cache="up2", keys=())   # no names: what was vendored; no targets key
    assert again.copied == 1 and not again.delegation_changed
    assert ours.store.current_version("alice") == repo.store.current_version("alice") > first
    edit.publish(ours.store)
    assert ours.client(tmp_path / "c").metadata("hello", ARCH).version == "1.2.0"


def test_new_names_change_the_delegation_and_need_the_offline_targets_key(repo: Repo, ours: Ours) -> None:
    run_vendor(ours, repo, "hello")
    before = ours.files()
    with pytest.raises(UserError, match="offline targets keys; 0 given") as info:
        run_vendor(ours, repo, "libfoo", keys=())
    assert "--targets-key" in info.value.hint
    assert ours.files() == before
    run_vendor(ours, repo, "lib*")
    assert read_vendored(ours.dir)["alice"].names == ("hello", "libfoo")
    assert ours.store.load("targets", Targets).signed.delegations.roles["alice"].paths == \
        ["packages/hello/*", "packages/libfoo/*"]


def test_an_older_upstream_role_is_refused_as_a_rollback(repo: Repo, ours: Ours) -> None:
    edit.add(repo.store, [repo.package("hello", "1.2.0")], [repo.keys.alice])
    repo.publish()
    run_vendor(ours, repo, "hello")
    before = ours.files()
    old = repo.old()   # the upstream as it was after its first publish: validly signed, older
    client = RepositoryClient(str(old), repo.root_bytes, repo.tmp / "cache-old")
    with pytest.raises(VerificationError, match="older than the vendored version .* \\(rollback\\)"):
        vendor(ours.store, client, VendorRequest(patterns=("hello",)), targets_keys=[ours.keys["targets"]])
    assert ours.files() == before


def test_a_tampered_upstream_package_is_refused_and_your_copy_is_unchanged(repo: Repo, ours: Ours) -> None:
    run_vendor(ours, repo, "hello")
    edit.add(repo.store, [repo.package("hello", "1.2.0")], [repo.keys.alice])
    repo.publish()
    flip_byte(repo.target_file(f"packages/hello/hello-1.2.0-{ARCH}.vpk"))
    before = ours.files()
    with pytest.raises(VerificationError, match="hash mismatch"):
        run_vendor(ours, repo, "hello", cache="tampered")
    assert ours.files() == before


def test_names_and_roles_of_your_developers_stay_theirs(repo: Repo, ours: Ours) -> None:
    edit.delegate(ours.store, "bob", [ours.keys["bob"].public], ["mine*", "hel*"], targets_keys=[ours.keys["targets"]])
    with pytest.raises(UserError, match="'hello' \\(upstream role 'alice'\\) is a name your role 'bob' owns"):
        run_vendor(ours, repo, "hello")
    edit.delegate(ours.store, "alice", [ours.keys["bob"].public], ["ours-*"], targets_keys=[ours.keys["targets"]])
    with pytest.raises(ComposerError, match="upstream role 'alice' has the name of your own role 'alice'"):
        run_vendor(ours, repo, "libfoo")


def test_your_developers_cannot_be_given_a_vendored_name_afterwards(repo: Repo, ours: Ours) -> None:
    run_vendor(ours, repo, "hello")
    with pytest.raises(UserError, match="match hello, vendored from .* \\(role 'alice'\\)"):
        edit.delegate(ours.store, "bob", [ours.keys["bob"].public], ["h*"], targets_keys=[ours.keys["targets"]])
    with pytest.raises(UserError, match="role 'alice' is vendored from"):
        edit.delegate(ours.store, "alice", [ours.keys["bob"].public], ["x*"], targets_keys=[ours.keys["targets"]])


def test_publish_and_repair_index_only_the_vendored_targets_of_the_role(repo: Repo, ours: Ours,
                                                                        tmp_path: Path) -> None:
    run_vendor(ours, repo, "hello")   # alice's role also lists libfoo, which is not vendored
    hellos = [f"packages/hello/hello-1.0.0-{ARCH}.vpk", f"packages/hello/hello-1.1.0-{ARCH}.vpk"]
    assert sorted(ours.store.read_state()["packages"]) == hellos
    assert "libfoo" in str(sorted(load(repo.latest("alice")).signed.targets))
    remove_state(ours.dir)   # derived: rebuilt from the roles under the lock
    assert edit.publish(ours.store)["packages"] == 2
    assert sorted(e.path for e in ours.client(tmp_path / "c").index(ARCH)) == hellos


def test_a_vendor_killed_before_the_delegation_leaves_a_repository_that_publishes_and_vendors_again(
        repo: Repo, ours: Ours, monkeypatch: pytest.MonkeyPatch) -> None:
    def killed(*args: object, **kwargs: object) -> bytes:
        raise KeyboardInterrupt   # after the targets, the record and the role, before the delegation
    monkeypatch.setattr(RepoStore, "sign_and_write", killed)
    with pytest.raises(KeyboardInterrupt):
        run_vendor(ours, repo, "hello")
    monkeypatch.undo()
    assert (ours.dir / "metadata" / repo.latest("alice").name).is_file()
    assert edit.publish(ours.store)["packages"] == 0   # an undelegated role is nobody's: nothing indexed
    assert run_vendor(ours, repo, "hello").copied == 0  # the stored targets are kept
    assert edit.publish(ours.store)["packages"] == 2


def test_dependencies_are_closed_over_names_and_provides() -> None:
    def entry(name: str, deps: dict[str, str], provides: tuple[str, ...] = ()) -> IndexEntry:
        return IndexEntry(name=name, version="1.0.0", arch=ARCH, type="application", description="", license="MIT",
                          dependencies=deps, provides=provides, conflicts=(), features={}, capabilities={},
                          driver={}, size=1, installed_size=1, sha256="0" * 64, path=f"packages/{name}/x",
                          signer="k")
    entries = [entry("app", {"libgreet": "1"}), entry("libgreet", {"vfs": "*"}), entry("libvfs", {}, ("vfs",)),
               entry("unrelated", {}), entry("tool", {"missing": "1"})]
    assert dependency_closure(entries, ["app"]) == {"app", "libgreet", "libvfs"}
    assert dependency_closure(entries, ["tool"]) == {"tool"}   # not served upstream: left to the lock


def test_with_dependencies_vendors_what_the_asked_names_need(repo: Repo, ours: Ours) -> None:
    meta = replace(hostile.metadata("hello", "1.3.0"), dependencies=(Dependency(name="libfoo", requirement="1"),))
    pkg = hostile.hostile_package(repo.tmp / "hello-1.3.0.vpk", [hostile.file("usr/lib/hello/VERSION", b"1.3\n")],
                                  key=repo.keys.alice, meta=meta)
    edit.add(repo.store, [pkg], [repo.keys.alice])
    repo.publish()
    assert {e.name for e in run_vendor(ours, repo, "hello").packages} == {"hello"}
    done = run_vendor(ours, repo, "hello", cache="deps", with_dependencies=True)
    assert {e.name for e in done.packages} == {"hello", "libfoo"}
    assert done.roles[0].names == ("hello", "libfoo")


def test_an_architecture_your_repository_does_not_serve_is_refused(repo: Repo, ours: Ours) -> None:
    client = RepositoryClient(str(repo.dir), repo.root_bytes, repo.tmp / "cache-arch")
    with pytest.raises(UserError, match=f"does not serve aarch64 \\(it serves {ARCH}\\)"):
        vendor(ours.store, client, VendorRequest(patterns=("hello",), arches=("aarch64",)),
               targets_keys=[ours.keys["targets"]])


def test_by_default_the_architectures_the_upstream_serves_too(repo: Repo, ours: Ours) -> None:
    (ours.dir / "repo.toml").write_text((ours.dir / "repo.toml").read_text().replace(
        f'architectures = [\n    "{ARCH}",\n]', f'architectures = [\n    "{ARCH}",\n    "aarch64",\n]'))
    assert ours.store.config.architectures == [ARCH, "aarch64"]   # the upstream serves x86_64 only
    assert len(run_vendor(ours, repo, "libfoo").packages) == 2     # noarch, from the x86_64 index


def test_the_number_of_packages_is_bounded(repo: Repo, ours: Ours, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCOMP_LIMIT_MAX_VENDORED_PACKAGES", "1")
    with pytest.raises(UserError, match="2 packages to vendor, over the limit max_vendored_packages=1"):
        run_vendor(ours, repo, "hello")
    assert read_vendored(ours.dir) == {}


def test_a_vendored_role_keeps_the_upstream_keys(repo: Repo, ours: Ours) -> None:
    run_vendor(ours, repo, "hello")
    with pytest.raises(UserError, match="role 'alice' is vendored from .*: its keys are the upstream developer's"):
        rotate(ours.store, "alice", add=[ours.keys["bob"].public], remove=[], targets_keys=[ours.keys["targets"]])


def two_repositories(tmp_path: Path, ours: Ours, upstream: Repo, extra: str = "") -> Path:
    """The profile of docs/upstream.md, way (a): your repository and the upstream one."""
    d = tmp_path / "two"
    d.mkdir(parents=True)
    (d / "ours-root.json").write_bytes((ours.dir / "metadata" / "1.root.json").read_bytes())
    (d / "upstream-root.json").write_bytes(upstream.root_bytes)
    (d / "p.yaml").write_text(f"name: two\narchitectures: [{ARCH}]\nrepositories:\n"
                              f"  - {{name: ours, url: '{ours.dir}', root: ours-root.json{extra}}}\n"
                              f"  - {{name: upstream, url: '{upstream.dir}', root: upstream-root.json}}\n"
                              "packages: [hello, libfoo]\noutputs:\n  - type: rootfs\n")
    return d / "p.yaml"


def test_a_profile_using_both_repositories_must_say_which_one_serves_a_name(repo: Repo, ours: Ours,
                                                                            tmp_path: Path) -> None:
    run_vendor(ours, repo, "hello")
    edit.publish(ours.store)
    prof = load_profile(two_repositories(tmp_path, ours, repo))
    with pytest.raises(ComposerError, match=f"{ARCH}: 'hello' \\(requested\\) is served by repositories 'ours' "
                                            "and 'upstream'; vcomp does not choose between them silently"):
        resolve_profile(prof, open_sources(prof, tmp_path / "cache"))
    pinned = load_profile(two_repositories(tmp_path / "pinned", ours, repo, ", packages: [hello]"))
    lock = resolve_profile(pinned, open_sources(pinned, tmp_path / "cache"))
    assert {(p.name, p.repository) for p in lock.architectures[ARCH]} == {("hello", "ours"), ("libfoo", "upstream")}


# ----------------------------------------------------------------- the CLI

def vcomp(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def vcache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VCOMP_CACHE", str(tmp_path / "vcache"))
    return tmp_path / "vcache"


def test_cli_vendors_and_says_what_to_publish(repo: Repo, ours: Ours, vcache: Path, keys_read: list[Path],
                                              capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = tmp_path / "upstream-root.json"
    root.write_bytes(repo.root_bytes)
    code, out, err = vcomp(capsys, "repo", "vendor", str(ours.dir), "hello", "--from", str(repo.dir),
                           "--from-root", str(root), "--targets-key", str(ours.key_dir / "targets.key"))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("role alice v") and lines[0].endswith("(new), signed upstream; delegated here: hello")
    assert lines[1].startswith(f"vendored hello-1.0.0-{ARCH} (signer {repo.keys.alice.keyid[:16]}")
    assert lines[-2].startswith("2 packages, 2 copied; top-level targets v")
    assert lines[-1] == "run 'vcomp repo publish' to make them visible"
    assert [p.name for p in keys_read] == ["targets.key"]
    code, out, err = vcomp(capsys, "repo", "vendor", str(ours.dir), "--from", str(repo.dir), "--from-root",
                           str(root), "--json")   # a refresh: nothing new, no offline key
    doc = json.loads(out)
    assert (code, err, doc["copied"], doc["delegation_changed"]) == (0, "", 0, False)
    schema = json.loads((REPO / "schemas" / "repo-vendor.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert {p["name"] for p in doc["packages"]} == {"hello"} and doc["roles"][0]["name"] == "alice"


@pytest.mark.parametrize("case", ["dead", "unknown", "no-key"])
def test_cli_errors_are_one_line_with_a_hint(repo: Repo, ours: Ours, vcache: Path, case: str,
                                             capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = tmp_path / "upstream-root.json"
    root.write_bytes(repo.root_bytes)
    source = "http://127.0.0.1:9" if case == "dead" else str(repo.dir)
    name = "helo" if case == "unknown" else "hello"
    keys = [] if case == "no-key" else ["--targets-key", str(ours.key_dir / "targets.key")]
    before = ours.files()
    code, out, err = vcomp(capsys, "repo", "vendor", str(ours.dir), name, "--from", source, "--from-root",
                           str(root), *keys)
    lines = err.splitlines()
    assert (code, out, len(lines)) == (1, "", 2), err
    assert lines[0].startswith("error: ") and lines[1].startswith("  hint: ")
    expected = {"dead": "cannot get trusted metadata from the repository: http://127.0.0.1:9",
                "unknown": "the upstream serves no package matching 'helo'",
                "no-key": "this needs 1 of the offline targets keys; 0 given"}[case]
    assert expected in lines[0]
    if case == "unknown":
        assert "did you mean: hello" in lines[1]
    assert ours.files() == before


def test_a_dead_upstream_is_a_fetch_error(repo: Repo, ours: Ours) -> None:
    with pytest.raises(FetchError):
        run_vendor(ours, repo, "hello", url="http://127.0.0.1:9")
