"""Integration fixtures: the real sample package set, built once per architecture per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.package.build import Built, build_all, default_cache
from composer.repo.sample import SampleCheckout, build_sample_repo
from composer.trust.keys import SigningKey, generate, load_signing_key
from tests.conftest import REPO


@pytest.fixture(scope="session")
def sample_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    d = tmp_path_factory.mktemp("sample-key")
    generate("sample", d)
    return load_signing_key(d / "sample.key")


@pytest.fixture(scope="session")
def sample_sets(sample_key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> \
        dict[str, tuple[Path, dict[str, Built]]]:
    """arch -> (output dir, {package name: Built}); built lazily by ``sample_set``."""
    return {}


def sample_set(arch: str, sets: dict[str, tuple[Path, dict[str, Built]]], key: SigningKey,
               factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Built]]:
    if arch not in sets:
        out = factory.mktemp(f"packages-{arch}")
        built = build_all(REPO / "recipes", arch, key, out, cache=default_cache())
        sets[arch] = (out, {b.metadata.name: b for b in built})
    return sets[arch]


@pytest.fixture(scope="session")
def sample_repo_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding images/repo: the sample repository, freshly built (once per test session)."""
    base = tmp_path_factory.mktemp("sample-repo")
    build_sample_repo(base / "images" / "repo", base / "images" / "packages", checkout=SampleCheckout(root=REPO))
    return base


def copy_profiles(base: Path, dest: Path) -> Path:
    """profiles/ copied under ``dest`` so that ../images/repo is the sample repository under ``base``."""
    import shutil
    (dest / "images").mkdir(parents=True, exist_ok=True)
    for name in ("repo", "debian"):   # debian: the imported Debian closure (test_boot_server.py makes it)
        link = dest / "images" / name
        if not link.exists() and not link.is_symlink():
            link.symlink_to(base / "images" / name)
    shutil.copytree(REPO / "profiles", dest / "profiles", ignore=shutil.ignore_patterns("*.lock"),
                    dirs_exist_ok=True)
    return dest / "profiles"


# The built images shared by the boot tests (imported here so that every integration module can use them).
from tests.integration.images_fixture import minimal_built, variants_built  # noqa: E402, F401
