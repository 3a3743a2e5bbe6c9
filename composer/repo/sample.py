"""The sample repository: the sample package set built from a checkout's recipes with its committed sample
developer key, published into a TUF repository whose root is the committed ``profiles/trust/sample-root.json``.

``make demo`` (through ``scripts/sample_repo.py``, a thin entry point) and the tests run this same code. The
library prints nothing: progress lines go to the ``say`` callback.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from composer.arch import get_arch
from composer.errors import FetchError, InvalidPackage, UserError
from composer.package.build import build_all, default_cache
from composer.package.debian import DebianArchive
from composer.repo.edit import add, delegate, init, migrate, resign_targets, serve_architectures
from composer.repo.publishing import publish
from composer.repo.store import ONLINE_ROLES, RepoConfig, RepoStore
from composer.trust.keys import load_public_key, load_signing_key

ROOT_EXPIRES = "2036-01-01T00:00:00Z"
ARCHES = ("x86_64", "aarch64", "riscv64")
IMMUTABLE = "published packages are immutable"
KERNEL_META = "linux-image-{deb_arch}"   # the kernel recipes' Debian source: the metapackage ...
KERNEL_FOLLOW = "linux-image-*"          # ... followed to the kernel build it depends on
SAMPLE_SUITE = "trixie"                  # the Debian release of the sample recipes (the default suite)
# How Debian names one kernel build: the part that counts up between builds of one series, between the rest.
KERNEL_BUILDS = (
    re.compile(r"^(linux-image-\d+\.\d+\.\d+-)(\d+)(-[a-z0-9-]+)$"),        # 12: linux-image-6.1.0-57-amd64 (ABI)
    re.compile(r"^(linux-image-\d+\.\d+\.)(\d+)(\+deb\d+-[a-z0-9-]+)$"),      # 13: linux-image-6.12.118+deb13-amd64
)


def _quiet(line: str) -> None:
    del line


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleCheckout:
    """Where a source checkout keeps what the sample repository is made from."""

    root: Path

    @property
    def recipes(self) -> Path:
        return self.root / "recipes"

    @property
    def keys(self) -> Path:
        return self.root / "keys" / "sample"

    @property
    def trust_root(self) -> Path:
        return self.root / "profiles" / "trust" / "sample-root.json"

    def key(self, role: str) -> Path:
        return self.keys / f"INSECURE-SAMPLE-{role}.key"

    @property
    def inputs(self) -> tuple[Path, ...]:
        """The files and folders whose change changes the sample repository (this module included). The
        project's own source is not one: recipes/vpk pins the folders it packages by git tree id, so moving a
        pin (a change of recipes/) is what changes the package."""
        return (self.recipes, self.keys, self.root / "composer" / "repo" / "sample.py")


def checkout_of_this_package() -> SampleCheckout:
    """The checkout ``composer`` runs from (the sample recipes and keys live beside the package)."""
    return SampleCheckout(root=Path(__file__).resolve().parents[2])


def forget_trusted_state(repo_dir: Path, checkout: SampleCheckout) -> None:
    """Drop the clients' cached trusted metadata of a remade sample repository: its new history starts at
    version 1 again, which a client that saw the old one rightly refuses as a rollback."""
    from composer.repo.client import RepositoryClient
    for url in (str(repo_dir.resolve()), repo_dir.resolve().as_uri()):
        cache = RepositoryClient(url, checkout.trust_root.read_bytes(), default_cache() / "repos").cache
        shutil.rmtree(cache, ignore_errors=True)


def _create(repo_dir: Path, checkout: SampleCheckout) -> None:
    targets_keys = [load_signing_key(checkout.key("targets"))]
    online = {r: [load_signing_key(checkout.key(r))] for r in ONLINE_ROLES}
    init(repo_dir, root_keys=[load_signing_key(checkout.key("root-1")), load_signing_key(checkout.key("root-2"))],
         root_threshold=2, targets_keys=targets_keys, online=online,
         online_paths={r: [str(checkout.key(r))] for r in online}, architectures=ARCHES, root_expires=ROOT_EXPIRES)
    if (repo_dir / "metadata" / "1.root.json").read_bytes() != checkout.trust_root.read_bytes():
        raise UserError(f"{repo_dir}: the new root differs from the committed {checkout.trust_root}",
                        hint="the sample keys or the root expiry changed: regenerate the committed root")
    developer = load_public_key(checkout.keys / "INSECURE-SAMPLE-developer.pub")
    delegate(RepoStore(repo_dir), "sample-developer", [developer], ["*"], targets_keys=targets_keys)


def previous_build(current: str, names: list[str]) -> str | None:
    """Of ``names``, the kernel package of the same series and flavour built just before ``current`` (pure):
    the highest ABI number below ``linux-image-6.1.0-57-amd64``'s (Debian 12), or the highest upstream point
    release below ``linux-image-6.12.118+deb13-amd64``'s (Debian 13); None when there is none."""
    for pattern in KERNEL_BUILDS:
        m = pattern.match(current)
        if m is None:
            continue
        older = [(int(o[2]), n) for n in names if (o := pattern.match(n)) and (o[1], o[3]) == (m[1], m[3])
                 and int(o[2]) < int(m[2])]
        return max(older)[1] if older else None
    return None


def previous_kernel(archive: DebianArchive, arch: str) -> str | None:
    """The Debian kernel package of the build before the one ``linux-image-ARCH`` follows
    (:func:`previous_build`), or None when the archive no longer has it."""
    a = get_arch(arch)
    current = archive.resolve(a, KERNEL_META.format(deb_arch=a.deb), follow=KERNEL_FOLLOW).name
    name = previous_build(current, archive.names(a, "linux-image-"))
    if name is None:
        return None
    try:
        archive.resolve(a, name)
    except FetchError:
        return None
    return name


def previous_kernel_recipes(recipes: Path, dest: Path, package: str) -> list[Path]:
    """Copies into ``dest`` of the recipes built from the kernel metapackage (the kernel and its drivers),
    pinned to the Debian kernel package ``package``: the same recipes, an older build."""
    out = []
    source = f'package = "{KERNEL_META}"\nfollow = "{KERNEL_FOLLOW}"\n'
    for recipe in sorted(recipes.glob("*/recipe.toml")):
        text = recipe.read_text()
        if source in text:
            (dest / recipe.parent.name).mkdir(parents=True)
            (dest / recipe.parent.name / "recipe.toml").write_text(text.replace(source, f'package = "{package}"\n'))
            out.append(dest / recipe.parent.name)
    return out


def build_previous_kernel(checkout: SampleCheckout, arch: str, packages_dir: Path,
                          say: Callable[[str], None] = _quiet) -> list[Path]:
    """The kernel and its drivers built once more from the previous Debian kernel build (when the archive still
    has it): the sample repository serves two kernel builds (Debian 12: ``6.1.192-2`` and ``6.1.192-3``;
    Debian 13: ``6.12.117-1`` and ``6.12.118-1``), which order as dpkg orders them, so a lock moves to the newer
    one as an upgrade."""
    archive = DebianArchive(default_cache(), suite=SAMPLE_SUITE)
    package = previous_kernel(archive, arch)
    if package is None:
        say(f"   {arch}: the archive has no previous kernel build: one kernel revision only")
        return []
    with tempfile.TemporaryDirectory(prefix="vcomp-previous-kernel-") as tmp:
        previous_kernel_recipes(checkout.recipes, Path(tmp), package)
        results = build_all(Path(tmp), arch, load_signing_key(checkout.key("developer")),
                            packages_dir / "previous-kernel" / arch, cache=default_cache())
    versions = sorted({str(r.metadata.full_version) for r in results})
    say(f"   {arch}: {len(results)} packages of the previous kernel build {package} ({', '.join(versions)})")
    return [r.path for r in results]


def build_sample_repo(repo_dir: Path, packages_dir: Path, *, checkout: SampleCheckout | None = None,
                      say: Callable[[str], None] = _quiet) -> RepoStore:
    """Build the sample package set for every sample architecture into ``packages_dir/ARCH`` and publish it
    into ``repo_dir`` (created, migrated from the older layout, or made again when a recipe changed without
    a new version)."""
    checkout = checkout or checkout_of_this_package()
    developer = load_signing_key(checkout.key("developer"))
    built: list[Path] = []
    for arch in ARCHES:
        results = build_all(checkout.recipes, arch, developer, packages_dir / arch, cache=default_cache())
        built += [r.path for r in results]
        say(f"   {arch}: {len(results)} packages ({sum(not r.skipped for r in results)} built)")
        built += build_previous_kernel(checkout, arch, packages_dir, say)
    # The sample keeps its "offline" keys (root, targets) beside the online ones so that anyone can rebuild
    # it; repo.toml still lists only the online ones (index, snapshot, timestamp).
    targets_keys = [load_signing_key(checkout.key("targets"))]
    if not (repo_dir / "repo.toml").exists():
        _create(repo_dir, checkout)
    elif RepoConfig.from_toml((repo_dir / "repo.toml").read_bytes(), "repo.toml", legacy=True).legacy:
        say(f"   {repo_dir} lists its targets key online (older layout): migrating it")
        migrate(repo_dir, index_key=load_signing_key(checkout.key("index")), index_path=str(checkout.key("index")))
    if added_arches := serve_architectures(repo_dir, ARCHES):   # a repository made before riscv64
        say(f"   {repo_dir} now serves {', '.join(added_arches)} too (repo.toml)")
    store = RepoStore(repo_dir)
    resign_targets(store, targets_keys=targets_keys, within_days=30)  # the offline role's expiry
    try:
        added = add(store, sorted(set(built)), [developer])
    except InvalidPackage as exc:
        if IMMUTABLE not in exc.message:
            raise
        # A sample recipe changed without a new version: published packages never change, so this local
        # sample repository is made again from scratch (a real repository would need a new version).
        say(f"   the sample recipes changed since {repo_dir} was published: making it again")
        shutil.rmtree(repo_dir)
        forget_trusted_state(repo_dir, checkout)
        return build_sample_repo(repo_dir, packages_dir, checkout=checkout, say=say)
    versions = publish(store)
    say(f"   repository {repo_dir}: {sum(a.new for a in added)} new packages, {versions['packages']} in all; "
        f"targets v{versions['targets']}, snapshot v{versions['snapshot']}; "
        f"trust root {checkout.trust_root.relative_to(checkout.root)}")
    return store
