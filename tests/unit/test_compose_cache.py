"""The image cache keeps what the build wrote of the installed root beside every output: ``contents.json`` and,
when the profile ships licence texts, ``license-texts.json`` (a build whose outputs all came from the cache used
to lose the latter, and ``vcomp license-report`` then called every shipped text missing)."""

from __future__ import annotations

from pathlib import Path

from composer.compose.cache import from_cache, to_cache
from composer.compose.layout import CONTENTS, LICENSE_TEXTS
from composer.image.workshop import BuiltOutput


def built(out: Path, *, texts: bool) -> BuiltOutput:
    out.mkdir(parents=True)
    (out / "rootfs.tar").write_bytes(b"tar bytes")
    (out / CONTENTS).write_text('{"busybox": {"version": "1"}}\n')
    if texts:
        (out / LICENSE_TEXTS).write_text('["usr/share/licenses/busybox/copyright"]\n')
    return BuiltOutput(name="rootfs", type="rootfs", files=(out / "rootfs.tar",), firmware=(), boot={})


def test_a_cached_output_brings_back_the_licence_texts_list(tmp_path: Path) -> None:
    product = built(tmp_path / "first", texts=True)
    to_cache(tmp_path / "cache", "1" * 64, product, tmp_path / "first" / CONTENTS)
    (tmp_path / "second").mkdir()   # (the build's staging directory)
    again = from_cache(tmp_path / "cache", "1" * 64, tmp_path / "second")
    assert again is not None and [f.name for f in again.files] == ["rootfs.tar"]
    for name in (CONTENTS, LICENSE_TEXTS):
        assert (tmp_path / "second" / name).read_bytes() == (tmp_path / "first" / name).read_bytes()


def test_without_licence_texts_nothing_more_is_cached(tmp_path: Path) -> None:
    product = built(tmp_path / "first", texts=False)
    to_cache(tmp_path / "cache", "2" * 64, product, tmp_path / "first" / CONTENTS)
    (tmp_path / "second").mkdir()
    again = from_cache(tmp_path / "cache", "2" * 64, tmp_path / "second")
    assert again is not None and not (tmp_path / "second" / LICENSE_TEXTS).exists()
    assert (tmp_path / "second" / CONTENTS).is_file()
