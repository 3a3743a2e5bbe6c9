"""[split] in a recipe: NAME-dev gets the development files, NAME-dbg the debug info in the GNU build-id layout,
the runtime files are stripped with a .gnu_debuglink; two builds give the same bytes (issue 18)."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from composer.errors import UserError
from composer.package import split
from composer.package.archive import read_header
from composer.package.build import build
from composer.trust.keys import load_signing_key

KEY = Path(__file__).resolve().parents[2] / "keys" / "sample" / "INSECURE-SAMPLE-developer.key"

RECIPE = '''
[package]
name = "libgreet"
version = "1.2.0"
description = "A tiny shared library"
license = "MIT"
type = "library"

[security]
context = "system_t"

[split]
dev = ["usr/include/**", "usr/lib/**/*.a", "usr/lib/**/pkgconfig/**", "usr/lib/*/libgreet.so"]
dbg = true

[[source]]
kind = "command"
tools = ["{triple}-gcc", "{triple}-ar", "as", "ld"]
run = \'\'\'
lib="$DESTDIR/usr/lib/$TARGET_TRIPLE"
mkdir -p "$lib/pkgconfig" "$DESTDIR/usr/include"
"$CC" -g -O2 -fPIC -shared -Wl,-soname,libgreet.so.1 -ffile-prefix-map="$PWD"=. -o "$lib/libgreet.so.1" greet.c
"$CC" -g -O2 -c -ffile-prefix-map="$PWD"=. -o greet.o greet.c
"${TARGET_TRIPLE}-ar" rcD "$lib/libgreet.a" greet.o
ln -s libgreet.so.1 "$lib/libgreet.so"
cp greet.h "$DESTDIR/usr/include/"
printf 'Name: greet\\nVersion: 1.2.0\\nDescription: greet\\nLibs: -lgreet\\nCflags:\\n' > "$lib/pkgconfig/greet.pc"
\'\'\'
'''


def _recipe(tmp: Path, text: str = RECIPE) -> Path:
    d = tmp / "libgreet"
    d.mkdir()
    (d / "recipe.toml").write_text(text)
    (d / "greet.c").write_text('#include <stdio.h>\nint greet(void) { return puts("hello"); }\n')
    (d / "greet.h").write_text("int greet(void);\n")
    return d


def _paths(pkg: Path) -> dict[str, str]:
    return {e.path: e.type for e in read_header(pkg).manifest.entries}


def _elf(data: bytes, note: bytes) -> bytes:
    """A minimal ELF64 LE with one SHT_NOTE section holding ``note``."""
    shoff = 64 + len(note)
    head = bytearray(64)
    head[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", head, 0x28, shoff)
    struct.pack_into("<HH", head, 0x3A, 64, 2)
    null = bytes(64)
    sect = bytearray(64)
    struct.pack_into("<I", sect, 4, split.SHT_NOTE)
    struct.pack_into("<QQ", sect, 0x18, 64, len(note))
    return bytes(head) + note + null + bytes(sect) + data


def test_build_id_is_read_from_the_note() -> None:
    ident = bytes(range(20))
    note = struct.pack("<III", 4, 20, split.NT_GNU_BUILD_ID) + b"GNU\0" + ident
    assert split.build_id(_elf(b"", note)) == ident.hex()
    assert split.debug_path(ident.hex()) == f"usr/lib/debug/.build-id/00/{ident.hex()[2:]}.debug"


@pytest.mark.parametrize("data", [b"", b"\x7fELF", b"not elf at all" * 8,
                                  _elf(b"", struct.pack("<III", 4, 99, 3) + b"GNU\0"),     # desc past the end
                                  bytes(_elf(b"", b""))[:60] + b"\xff" * 8])
def test_build_id_of_hostile_or_plain_files_is_none(data: bytes) -> None:
    assert split.build_id(data) is None


def test_partition_puts_each_path_in_one_list() -> None:
    runtime, dev = split.partition(["usr/include/a.h", "usr/lib/x/libg.so.1", "usr/lib/x/libg.so"],
                                   ["usr/include/**", "usr/lib/*/libg.so"])
    assert runtime == ["usr/lib/x/libg.so.1"]
    assert dev == ["usr/include/a.h", "usr/lib/x/libg.so"]


def test_sub_metadata_requires_the_exact_runtime_build() -> None:
    main = {"package": {"name": "libgreet", "version": "1.2.0", "description": "d", "license": "MIT",
                        "type": "library", "arch": "x86_64", "provides": ["greet"]},
            "security": {"context": "system_t"}, "boot": {"x": "y"}}
    sub = split.sub_metadata(main, "-dev", "development files")
    assert sub["package"]["name"] == "libgreet-dev" and sub["package"]["type"] == "development"
    assert sub["dependencies"] == {"libgreet": "=1.2.0"}
    assert "provides" not in sub["package"] and "boot" not in sub


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_split_makes_dev_and_dbg_packages_reproducibly(tmp_path: Path, arch: str) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is needed for command sources")
    d = _recipe(tmp_path)
    key = load_signing_key(KEY)
    first = build(d, arch, key, tmp_path / "a")
    again = build(d, arch, key, tmp_path / "b")
    assert [b.path.name for b in first.split] == [f"libgreet-dev-1.2.0-{arch}.vpk", f"libgreet-dbg-1.2.0-{arch}.vpk"]
    for one, two in zip((first, *first.split), (again, *again.split), strict=True):
        assert one.path.read_bytes() == two.path.read_bytes()
    dev, dbg = first.split
    assert dev.metadata.type == dbg.metadata.type == "development"
    runtime = _paths(first.path)
    triple = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}[arch]
    assert f"usr/lib/{triple}/libgreet.so.1" in runtime
    assert not any(p.startswith("usr/include") or p.endswith((".a", ".pc", "libgreet.so")) for p in runtime)
    assert {"usr/include/greet.h", f"usr/lib/{triple}/libgreet.a", f"usr/lib/{triple}/libgreet.so",
            f"usr/lib/{triple}/pkgconfig/greet.pc"} <= set(_paths(dev.path))
    debug = [p for p, t in _paths(dbg.path).items() if t == "file"]
    assert len(debug) == 1 and debug[0].startswith("usr/lib/debug/.build-id/") and debug[0].endswith(".debug")


def test_dev_globs_that_match_nothing_are_refused(tmp_path: Path) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is needed for command sources")
    d = _recipe(tmp_path, RECIPE.replace('dev = ["usr/include/**"', 'dev = ["usr/nothing/**"')
                .replace('"usr/lib/**/*.a", "usr/lib/**/pkgconfig/**", "usr/lib/*/libgreet.so"', ""))
    with pytest.raises(UserError, match=r"recipe.toml:\d+:\d+: \[split\].dev matches no file"):
        build(d, "x86_64", load_signing_key(KEY), tmp_path / "out")


def test_build_all_skips_the_split_packages_as_a_unit(tmp_path: Path) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is needed for command sources")
    from composer.package.build import build_all
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    _recipe(recipes)
    key = load_signing_key(KEY)
    first = build_all(recipes, "x86_64", key, tmp_path / "out")
    again = build_all(recipes, "x86_64", key, tmp_path / "out")
    assert [b.skipped for b in again] == [True]
    assert [s.path for s in again[0].split] == [s.path for s in first[0].split]
    first[0].split[1].path.unlink()           # a missing extra package is rebuilt
    third = build_all(recipes, "x86_64", key, tmp_path / "out")
    assert [b.skipped for b in third] == [False] and third[0].split[1].path.is_file()
