"""The cache key of a build follows every input the outputs record: a lock with other bytes (the same packages,
another repository index digest) is another key, while the id seed (UUIDs) follows the content only."""

from __future__ import annotations

from pathlib import Path

from composer.compose.seed import build_seed
from composer.profile.load import load_profile
from composer.solve.lock import lock_path, read_lock

REPO = Path(__file__).resolve().parents[2]


def test_the_lock_digest_keys_the_cache_but_not_the_ids() -> None:
    profile = load_profile(REPO / "profiles" / "minimal.yaml")
    lock = read_lock(lock_path(profile.path))
    assert lock is not None
    tools = {"mkfs.fat": "4.2"}
    one = build_seed(profile, lock, "x86_64", 1700000000, tools, "a" * 64)
    assert one == build_seed(profile, lock, "x86_64", 1700000000, tools, "a" * 64)
    assert one != build_seed(profile, lock, "x86_64", 1700000000, tools, "b" * 64)
    assert build_seed(profile, lock, "x86_64", 1700000000) == build_seed(profile, lock, "x86_64", 1700000000)
