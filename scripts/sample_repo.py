"""Build the sample package set with the committed sample developer key and publish it into a sample
repository (images/repo by default) whose root is the committed profiles/trust/sample-root.json.

usage: python scripts/sample_repo.py [REPO_DIR] [PACKAGES_DIR]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from composer.errors import InvalidPackage, UserError
from composer.package.build import build_all, default_cache
from composer.repo.edit import add, delegate, init, migrate, publish, resign_targets
from composer.repo.store import ONLINE_ROLES, RepoConfig, RepoStore
from composer.trust.keys import load_public_key, load_signing_key

REPO = Path(__file__).resolve().parent.parent
KEYS = REPO / "keys" / "sample"
TRUST_ROOT = REPO / "profiles" / "trust" / "sample-root.json"
ROOT_EXPIRES = "2036-01-01T00:00:00Z"
ARCHES = ("x86_64", "aarch64")


def key(role: str) -> Path:
    return KEYS / f"INSECURE-SAMPLE-{role}.key"


def forget_trusted_state(repo_dir: Path) -> None:
    """Drop the clients' cached trusted metadata of a remade sample repository: its new history starts at
    version 1 again, which a client that saw the old one rightly refuses as a rollback."""
    from composer.repo.client import RepositoryClient
    for url in (str(repo_dir.resolve()), repo_dir.resolve().as_uri()):
        cache = RepositoryClient(url, TRUST_ROOT.read_bytes(), default_cache() / "repos").cache
        shutil.rmtree(cache, ignore_errors=True)


def build_sample_repo(repo_dir: Path, packages_dir: Path, log: object = print) -> RepoStore:
    developer = load_signing_key(key("developer"))
    built = []
    for arch in ARCHES:
        results = build_all(REPO / "recipes", arch, developer, packages_dir / arch, cache=default_cache())
        built += [r.path for r in results]
        log(f"   {arch}: {len(results)} packages ({sum(not r.skipped for r in results)} built)")  # type: ignore[operator]
    # The sample keeps its "offline" keys (root, targets) beside the online ones so that anyone can rebuild
    # it; repo.toml still lists only the online ones (index, snapshot, timestamp).
    targets_keys = [load_signing_key(key("targets"))]
    if not (repo_dir / "repo.toml").exists():
        online = {r: [load_signing_key(key(r))] for r in ONLINE_ROLES}
        init(repo_dir, root_keys=[load_signing_key(key("root-1")), load_signing_key(key("root-2"))],
             root_threshold=2, targets_keys=targets_keys, online=online,
             online_paths={r: [str(key(r))] for r in online}, architectures=ARCHES, root_expires=ROOT_EXPIRES)
        if (repo_dir / "metadata" / "1.root.json").read_bytes() != TRUST_ROOT.read_bytes():
            raise UserError(f"{repo_dir}: the new root differs from the committed {TRUST_ROOT}",
                            hint="the sample keys or the root expiry changed: regenerate the committed root")
        delegate(RepoStore(repo_dir), "sample-developer", [load_public_key(KEYS / "INSECURE-SAMPLE-developer.pub")],
                 ["*"], targets_keys=targets_keys)
    elif RepoConfig.from_toml((repo_dir / "repo.toml").read_bytes(), "repo.toml", legacy=True).legacy:
        log(f"   {repo_dir} lists its targets key online (older layout): migrating it")  # type: ignore[operator]
        migrate(repo_dir, index_key=load_signing_key(key("index")), index_path=str(key("index")))
    store = RepoStore(repo_dir)
    resign_targets(store, targets_keys=targets_keys, within_days=30)  # the offline role's expiry
    try:
        added = add(store, sorted(set(built)), [developer])
    except InvalidPackage as exc:
        if "published packages are immutable" not in exc.message:
            raise
        # A sample recipe changed without a new version: published packages never change, so this local
        # sample repository is made again from scratch (a real repository would need a new version).
        log(f"   the sample recipes changed since {repo_dir} was published: making it again")  # type: ignore[operator]
        shutil.rmtree(repo_dir)
        forget_trusted_state(repo_dir)
        return build_sample_repo(repo_dir, packages_dir, log)
    versions = publish(store)
    log(f"   repository {repo_dir}: {sum(a.new for a in added)} new packages, {versions['packages']} in all; "  # type: ignore[operator]
        f"targets v{versions['targets']}, snapshot v{versions['snapshot']}; trust root {TRUST_ROOT.relative_to(REPO)}")
    return store


if __name__ == "__main__":
    repo_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "images" / "repo"
    packages_dir = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "images" / "packages"
    build_sample_repo(repo_dir, packages_dir)
