"""One atomic-write family in composer/fsutil.py (issue 13): write, copy, a file object, a path for a tool."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer import fsutil
from composer.errors import ToolError


def _left(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_every_member_writes_whole_files(tmp_path: Path) -> None:
    fsutil.atomic_write(tmp_path / "a" / "w", b"w")
    with fsutil.atomic_output(tmp_path / "a" / "o") as f:
        f.write(b"o")
    fsutil.atomic_copy(tmp_path / "a" / "w", tmp_path / "a" / "c")
    with fsutil.atomic_path(tmp_path / "a" / "p") as p:
        p.write_bytes(b"p")
    assert {n: (tmp_path / "a" / n).read_bytes() for n in _left(tmp_path / "a")} == \
        {"c": b"w", "o": b"o", "p": b"p", "w": b"w"}
    assert {(tmp_path / "a" / n).stat().st_mode & 0o777 for n in _left(tmp_path / "a")} == {0o644}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"old")
    with pytest.raises(RuntimeError), fsutil.atomic_path(tmp_path / "f") as p:
        p.write_bytes(b"half")
        raise RuntimeError("the tool failed")
    with pytest.raises(RuntimeError), fsutil.atomic_output(tmp_path / "f") as f:
        f.write(b"half")
        raise RuntimeError("the writer failed")
    with pytest.raises(ToolError, match="the tool did not create f"), fsutil.atomic_path(tmp_path / "f"):
        pass
    assert _left(tmp_path) == ["f"] and (tmp_path / "f").read_bytes() == b"old"
