"""`vcomp lock` through the sparse index gives the same lock as through the whole index (docs/repo-sparse.md),
on the sample profiles and the freshly built sample repository (the Debian closure's profiles too when
test_boot_server.py has made it); and it reads only part of the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from composer import settings
from composer.errors import ComposerError
from composer.profile.load import load_profile
from composer.solve.lock import open_sources, resolve_profile
from composer.solve.lockmodel import lock_bytes
from tests.integration.conftest import copy_profiles

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def profiles(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_profiles(sample_repo_base, tmp_path_factory.mktemp("sparse-lock"))


def _lock(profile: Path, cache: Path, mode: str) -> tuple[bytes, int]:
    with settings.overriding(settings.INDEX, mode):
        sources = open_sources(load_profile(profile), cache)
        doc = resolve_profile(load_profile(profile), sources)
    return lock_bytes(doc), sum(c.transfers["full"] for c in sources.clients.values())


def _unsuggested(message: str) -> list[str]:
    return [re.sub(r"; did you mean .*\?$", "", line) for line in message.splitlines()]


@pytest.mark.parametrize("name", ["minimal", "verified", "dib", "server", "device"])
def test_sparse_lock_equals_whole_index_lock(profiles: Path, tmp_path: Path, name: str) -> None:
    profile = profiles / f"{name}.yaml"
    if "images/debian" in profile.read_text() and not (profiles.parent / "images" / "debian" / "repo.toml").exists():
        pytest.skip("needs the Debian closure repository (made by test_boot_server.py)")
    try:
        whole, _ = _lock(profile, tmp_path / "whole", "whole")
    except ComposerError as exc:
        # the Debian closure imported for fewer architectures than the profile targets (test_boot_server.py
        # imports x86_64 only): the sparse index must give the very same answer
        with pytest.raises(ComposerError) as sparse_exc:
            _lock(profile, tmp_path / "sparse", "sparse")
        # (except the "did you mean" suggestions: the sparse pool holds only the names the resolution reached)
        assert _unsuggested(sparse_exc.value.message) == _unsuggested(exc.message)
        return
    sparse, files = _lock(profile, tmp_path / "sparse", "sparse")
    assert sparse == whole
    assert files > 0
    again, files = _lock(profile, tmp_path / "auto", "auto")   # auto: the small sample index is cheaper whole
    loaded = load_profile(profile)
    assert again == whole and files == len(loaded.architectures) * len(loaded.repositories)   # whole indexes
