"""The image cache key covers every module that can change an output (issue 13: the hole in code_digest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.compose import seed


def test_the_code_digest_covers_the_whole_package() -> None:
    names = {p.relative_to(seed.COMPOSER.parent).as_posix() for p in seed.code_files()}
    for module in ("composer/package/extract.py", "composer/pkgmgr/install.py", "composer/arch.py",
                   "composer/pkgmgr/db.py", "composer/compose/build.py", "composer/rootfs/root.py"):
        assert module in names


def test_a_change_outside_image_changes_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "composer"
    (tree / "package").mkdir(parents=True)
    (tree / "package" / "extract.py").write_text("A = 1\n")
    monkeypatch.setattr(seed, "COMPOSER", tree)
    before = seed.code_digest()
    (tree / "package" / "extract.py").write_text("A = 2\n")
    assert seed.code_digest() != before
