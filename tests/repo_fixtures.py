"""A real signed repository for repository tests, and the tools an attacker (or a test) uses on it.

Everything is real: ed25519 keys written by ``composer.trust.keys.generate``, packages built by the
real builder, a repository made by ``composer.repo.edit`` (init, delegate, add, publish) and read by
the real client (python-tuf's ngclient) over file:// or loopback HTTP. Nothing is mocked: an
attack is a file on disk that differs from what the repository wrote.

``build_pristine(base)`` builds it once (a module-scoped fixture); ``Pristine.copy(tmp_path)`` gives
each test its own copy in a few milliseconds:

    keys      root1, root2 (root threshold 2), targets (offline: never in repo.toml), index, snapshot,
              timestamp (online, in repo.toml), timestamp2 and root3 (spares for rotations), alice
              (delegated 'hello' and 'lib*'), mallory (delegated 'evil*')
    packages  published twice: first hello 1.0.0 (x86_64), libfoo 1.0.0 (noarch), evil-tool 1.0.0
              (noarch, by mallory); then hello 1.1.0 and libfoo 1.1.0. ``Repo.old()`` is the repository
              as it was after the first publish (to replay it). Built but not published (``SPARE``):
              hello 1.1.0 and 6.6.6 signed by mallory, hello 1.2.0 by alice; ``Repo.package(...)``.

Forging helpers re-sign metadata with python-tuf's Metadata API and any key (``write_role``,
``write_snapshot``, ``write_timestamp``, ``rotate_root``, ``force_package``); tampering helpers
change bytes without re-signing (``flip_byte``, ``pad``, ``edit_json``). ``cache_state`` and
``assert_kept`` compare the client's trusted metadata before and after an attack.

The client reads the repository through a symlink (``Repo.served``), so a test can swap what is
served under the same URL (``Repo.serve(other_dir)``) to a client that keeps its cache.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tuf.api.metadata import Metadata, MetaFile, Root, Signed, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from composer.package.archive import read_header
from composer.package.build import build
from composer.repo import edit
from composer.repo.client import RepositoryClient
from composer.repo.index import IndexEntry
from composer.repo.store import RepoStore
from composer.trust.keys import SigningKey, generate, load_signing_key
from tests.conftest import write_recipe

ARCH = "x86_64"
ONLINE = ("index", "snapshot", "timestamp")   # the keys in repo.toml (what a server compromise yields)
KEY_NAMES = ("root1", "root2", "root3", "targets", "index", "snapshot", "timestamp", "timestamp2", "alice", "mallory")
SERIALIZER = JSONSerializer(compact=False)

RECIPE = """
    [package]
    name = "{name}"
    version = "{version}"
    description = "{name} {version}: a tiny package for repository tests"
    authors = ["Repo Tester"]
    license = "MIT"
    type = "{type}"
    {arch}

    [security]
    context = "system_t"

    [[source]]
    kind = "tree"
    path = "files"
"""

# (name, version, arch, developer): published in two rounds, then spares that stay unpublished
FIRST = (("hello", "1.0.0", ARCH, "alice"), ("libfoo", "1.0.0", "noarch", "alice"),
         ("evil-tool", "1.0.0", "noarch", "mallory"))
SECOND = (("hello", "1.1.0", ARCH, "alice"), ("libfoo", "1.1.0", "noarch", "alice"))
SPARE = (("hello", "1.1.0", ARCH, "mallory"),   # alice's name and version, mallory's key
         ("hello", "6.6.6", ARCH, "mallory"),   # a newer 'hello' by mallory
         ("hello", "1.2.0", ARCH, "alice"))     # a legitimate next release


# ----------------------------------------------------------------- keys and packages

@dataclass(frozen=True, slots=True, kw_only=True)
class Keys:
    dir: Path
    by_name: Mapping[str, SigningKey]

    def __getattr__(self, name: str) -> SigningKey:
        try:
            return self.by_name[name]
        except KeyError:
            raise AttributeError(name) from None

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.key"


def make_keys(directory: Path) -> Keys:
    for name in KEY_NAMES:
        generate(name, directory)
    return Keys(dir=directory, by_name={n: load_signing_key(directory / f"{n}.key") for n in KEY_NAMES})


def package_recipe(base: Path, name: str, version: str, arch: str) -> Path:
    kind = "library" if name.startswith("lib") else "application"
    text = RECIPE.format(name=name, version=version, type=kind,
                         arch='arch = "noarch"' if arch == "noarch" else "")
    where = "usr/share" if arch == "noarch" else "usr/lib"
    return write_recipe(base / f"{name}-{version}-{arch}", textwrap.dedent(text),
                        {f"files/{where}/{name}/VERSION": f"{name} {version}\n"})


def build_package(base: Path, spec: tuple[str, str, str, str], keys: Keys) -> Path:
    name, version, arch, developer = spec
    recipe = package_recipe(base / "recipes" / developer, name, version, arch)
    built = build(recipe, ARCH, keys.by_name[developer], base / "packages" / developer, cache=base / "cache")
    return built.path


# ----------------------------------------------------------------- the repository

@dataclass(frozen=True, slots=True, kw_only=True)
class Pristine:
    """The repository built once per module, never modified: tests work on copies."""

    dir: Path
    old: Path                           # the same repository after its first publish
    keys: Keys
    packages: Mapping[tuple[str, str, str, str], Path]  # (name, version, arch, developer) -> .vpk

    def copy(self, tmp_path: Path) -> Repo:
        repo_dir = copy_tree(self.dir, tmp_path / "repo")
        served = tmp_path / "served"
        served.symlink_to(repo_dir, target_is_directory=True)
        return Repo(dir=repo_dir, served=served, tmp=tmp_path, keys=self.keys, packages=self.packages,
                    pristine_old=self.old)


def build_pristine(base: Path) -> Pristine:
    keys = make_keys(base / "keys")
    packages = {spec: build_package(base, spec, keys) for spec in (*FIRST, *SECOND, *SPARE)}
    repo = base / "repo"
    online = {role: [keys.by_name[role]] for role in ONLINE}
    edit.init(repo, root_keys=[keys.root1, keys.root2], root_threshold=2, targets_keys=[keys.targets],
              online=online, online_paths={role: [str(keys.path(role))] for role in online}, architectures=[ARCH])
    store = RepoStore(repo)
    edit.delegate(store, "alice", [keys.alice.public], ["hello", "lib*"], targets_keys=[keys.targets])
    edit.delegate(store, "mallory", [keys.mallory.public], ["evil*"], targets_keys=[keys.targets])
    for batch in (FIRST, SECOND):
        for developer in ("alice", "mallory"):
            mine = [packages[s] for s in batch if s[3] == developer]
            if mine:
                edit.add(store, mine, [keys.by_name[developer]])
        edit.publish(store)
        if batch is FIRST:
            old = copy_tree(repo, base / "old")
    return Pristine(dir=repo, old=old, keys=keys, packages=packages)


@dataclass(slots=True, kw_only=True)
class Repo:
    """One test's repository (a copy of the pristine one) and the clients that read it."""

    dir: Path
    served: Path          # a symlink to what the client sees at ``url``
    tmp: Path
    keys: Keys
    packages: Mapping[tuple[str, str, str, str], Path]
    pristine_old: Path
    _clients: int = field(default=0)

    @property
    def url(self) -> str:
        return self.served.as_uri()

    @property
    def root_bytes(self) -> bytes:
        """The pinned trust root: version 1, as 'vcomp repo init' wrote it."""
        return (self.dir / "metadata" / "1.root.json").read_bytes()

    @property
    def store(self) -> RepoStore:
        return RepoStore(self.dir)

    def client(self, *, url: str | None = None, mirrors: Sequence[str] = (), root: bytes | None = None) -> \
            RepositoryClient:
        """A client with a fresh cache directory."""
        self._clients += 1
        return RepositoryClient(url or self.url, self.root_bytes if root is None else root,
                                self.tmp / f"cache-{self._clients}", mirrors=mirrors)

    def package(self, name: str, version: str, arch: str = ARCH, developer: str = "alice") -> Path:
        return self.packages[(name, version, arch, developer)]

    # ---- what is served
    def serve(self, directory: Path) -> None:
        """Serve ``directory`` at ``url`` from now on (the client's cache is untouched)."""
        self.served.unlink()
        self.served.symlink_to(directory, target_is_directory=True)

    def old(self) -> Path:
        """A copy of the repository as it was after its first publish."""
        dest = self.tmp / "old"
        return dest if dest.exists() else copy_tree(self.pristine_old, dest)

    def snapshot(self, name: str) -> Path:
        """A copy of the repository as it is now (an old version to replay later, or a mirror)."""
        return copy_tree(self.dir, self.tmp / name)

    # ---- files
    def meta(self, name: str) -> Path:
        return self.dir / "metadata" / name

    def latest(self, role: str) -> Path:
        """The newest N.ROLE.json (timestamp.json for the timestamp)."""
        if role == "timestamp":
            return self.meta("timestamp.json")
        return self.meta(f"{self.store.current_version(role)}.{role}.json")

    def target_file(self, target_path: str) -> Path:
        """The served file of a target (``packages/NAME/...vpk`` or ``index/ARCH.json.zst``), found by the
        sha256 the newest metadata gives it (top-level targets, then the delegated roles)."""
        targets = load(self.latest("targets")).signed
        roles = sorted((targets.delegations.roles or {}) if targets.delegations else {})
        for role in [None, *roles]:
            signed = targets if role is None else load(self.latest(role)).signed
            info = signed.targets.get(target_path)
            if info is not None:
                directory, base = target_path.rsplit("/", 1)
                return self.dir / "targets" / directory / f"{info.hashes['sha256']}.{base}"
        raise FileNotFoundError(f"no target {target_path} in the newest metadata")

    def publish(self) -> dict[str, int]:
        return edit.publish(self.store)

    def refresh_timestamp(self) -> int:
        return edit.refresh(self.store)


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


# ----------------------------------------------------------------- the client's trusted state

def cache_state(client: RepositoryClient) -> dict[str, bytes]:
    """The client's trusted metadata: every file of its cache's metadata directory, name -> bytes.

    Symlinks (ngclient's root.json) are recorded as '-> TARGET'.
    """
    out: dict[str, bytes] = {}
    if client.metadata_dir.exists():
        for p in sorted(client.metadata_dir.rglob("*")):
            rel = str(p.relative_to(client.metadata_dir))
            if p.is_symlink():
                out[rel] = b"-> " + os.readlink(p).encode()
            elif p.is_file():
                out[rel] = p.read_bytes()
    return out


def assert_kept(before: Mapping[str, bytes], after: Mapping[str, bytes],
                advanced: Mapping[str, bytes] | None = None) -> None:
    """The cache is what it was, except files in ``advanced`` that now hold exactly those bytes.

    ``advanced`` is for metadata that verified before the failure (python-tuf stores each role as
    soon as it verifies: a newer, validly signed timestamp is kept even when the snapshot it names
    is then refused). Tests pass the repository's own bytes, so only authentic data can appear.
    """
    expected = {**before, **(advanced or {})}
    changed = sorted(k for k in expected.keys() | after.keys() if expected.get(k) != after.get(k))
    assert not changed, f"the client's trusted state changed: {changed}"


# ----------------------------------------------------------------- forging metadata

def sign(md: Metadata[Any], keys: Iterable[SigningKey]) -> bytes:
    """Replace the signatures of ``md`` by those of ``keys`` (none: unsigned); return the JSON bytes."""
    md.signatures.clear()
    for key in keys:
        md.sign(key.tuf_signer(), append=True)
    return md.to_bytes(SERIALIZER)


def load(path: Path) -> Metadata[Any]:
    return Metadata.from_bytes(path.read_bytes())


def write_role(repo: Repo, role: str, keys: Iterable[SigningKey], change: Callable[[Any], None] = lambda s: None,
               *, bump: bool = True) -> bytes:
    """Write the next version of ``role`` (its current one, changed by ``change``), signed by ``keys``.

    Writes N.ROLE.json (and root.json for the root, timestamp.json for the timestamp), as the
    repository does; returns the bytes.
    """
    md = load(repo.latest(role))
    signed: Signed = md.signed
    change(signed)
    if bump:
        signed.version += 1
    data = sign(md, keys)
    if role == "timestamp":
        repo.meta("timestamp.json").write_bytes(data)
    else:
        repo.meta(f"{signed.version}.{role}.json").write_bytes(data)
        if role == "root":
            repo.meta("root.json").write_bytes(data)
    return data


def write_snapshot(repo: Repo, keys: Iterable[SigningKey] | None = None, *,
                   versions: Mapping[str, int] | None = None, then_timestamp: bool = True) -> bytes:
    """A new snapshot listing the newest targets and delegated roles (or ``versions``), then its timestamp.

    Signed with the repository's own online keys unless ``keys`` is given (for the snapshot).
    """
    store = repo.store
    meta = {"targets.json": MetaFile(version=store.current_version("targets"))}
    delegations = load(repo.latest("targets")).signed.delegations
    for role in sorted(delegations.roles or {}) if delegations else []:
        if store.has_role(role):
            meta[f"{role}.json"] = MetaFile(version=store.current_version(role))
    # the sparse index's hash bins (docs/repo-sparse.md): every bin ever published stays listed, as a publish
    # keeps them (a snapshot that drops a role the previous one listed is refused by the client)
    bins = {p.name.split(".", 1)[1][:-len(".json")] for p in store.metadata_dir.glob("*.index-sparse-*.json")}
    for role in sorted(bins):
        meta[f"{role}.json"] = MetaFile(version=store.current_version(role))
    for name, version in (versions or {}).items():
        meta[f"{name}.json"] = MetaFile(version=version)

    def relist(s: Snapshot) -> None:
        s.meta = meta
    data = write_role(repo, "snapshot", keys if keys is not None else [repo.keys.snapshot], relist)
    if then_timestamp:
        write_timestamp(repo, data)
    return data


def write_timestamp(repo: Repo, snapshot: bytes, keys: Iterable[SigningKey] | None = None, *,
                    version: int | None = None) -> bytes:
    """A timestamp naming ``snapshot`` (version, length, sha256), signed by the timestamp key or ``keys``."""
    snap = Metadata.from_bytes(snapshot).signed

    def point(t: Timestamp) -> None:
        t.snapshot_meta = MetaFile(version=snap.version, length=len(snapshot),
                                   hashes={"sha256": hashlib.sha256(snapshot).hexdigest()})
        if version is not None:
            t.version = version
    return write_role(repo, "timestamp", keys if keys is not None else [repo.keys.timestamp], point,
                      bump=version is None)


def rotate_root(repo: Repo, change: Callable[[Root], None], signers: Iterable[SigningKey]) -> bytes:
    """Root version N+1 changed by ``change``, signed by ``signers`` (N.root.json and root.json)."""
    return write_role(repo, "root", signers, change)


def swap_role_key(role: str, old: SigningKey, new: SigningKey) -> Callable[[Root], None]:
    def change(root: Root) -> None:
        root.revoke_key(old.keyid, role)
        root.add_key(new.public.key, role)
    return change


def use_online_key(repo: Repo, role: str, key_path: Path) -> None:
    """Point repo.toml at another key for ``role`` (after a rotation)."""
    config = repo.store.config
    config.keys[role] = [str(key_path)]
    (repo.dir / "repo.toml").write_bytes(config.to_toml())


def force_package(repo: Repo, pkg: Path, role: str, role_keys: Iterable[SigningKey], *,
                  entry: Mapping[str, Any] | None = None) -> IndexEntry:
    """Put ``pkg`` into the repository without ``edit.add``'s checks (a repository that was fooled).

    Stores the file content-addressed, lists it in ``role``'s next metadata version signed with
    ``role_keys``, records its index entry (fields overridden by ``entry``; its ``path`` is also the
    target path), then publishes with the repository's online keys.
    """
    data = pkg.read_bytes()
    real = IndexEntry.from_header(read_header(pkg), size=len(data), sha256=hashlib.sha256(data).hexdigest())
    index_entry = IndexEntry.from_dict({**real.to_dict(), **(entry or {})})
    directory, base = index_entry.path.rsplit("/", 1)
    stored = repo.dir / "targets" / directory / f"{real.sha256}.{base}"
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(data)

    def list_it(t: Targets) -> None:
        t.targets[index_entry.path] = TargetFile.from_data(index_entry.path, data, ["sha256"])
    write_role(repo, role, role_keys, list_it)
    store = repo.store
    state = store.read_state()
    state["packages"][index_entry.path] = index_entry.to_dict()
    store.write_state(state)
    edit.publish(store)
    return index_entry


# ----------------------------------------------------------------- tampering with files

def flip_byte(path: Path, offset: int | None = None) -> bytes:
    """Flip one bit of one byte (the middle one by default); return the original content."""
    data = path.read_bytes()
    i = len(data) // 2 if offset is None else offset
    path.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:])
    return data


def pad(path: Path, size: int) -> None:
    """Append whitespace up to ``size`` bytes: JSON still parses and signatures still verify."""
    data = path.read_bytes()
    path.write_bytes(data + b" " * max(0, size - len(data)))


def edit_json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the JSON of a metadata file without re-signing it."""
    doc = json.loads(path.read_bytes())
    change(doc)
    path.write_bytes(json.dumps(doc, indent=1).encode())


def days_ago(days: int) -> str:
    """An ISO 8601 time for VCOMP_REPO_NOW."""
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).replace(microsecond=0).isoformat()


# ---------------------------------------------------------------- fixtures (import them into a test module)

@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    """The repository built once per module."""
    return build_pristine(tmp_path_factory.mktemp("pristine"))


@pytest.fixture()
def repo(pristine: Pristine, tmp_path: Path) -> Repo:
    """A private copy of it for one test."""
    return pristine.copy(tmp_path)
