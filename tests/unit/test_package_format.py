"""The .vpk format: round trip, determinism, and tamper detection down to every single byte."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from composer.errors import InvalidPackage, VerificationError
from composer.package import container
from composer.package.archive import read_header, verify_package
from composer.package.build import Built, build
from composer.trust.keys import SigningKey, load_public_key
from tests.conftest import hello_recipe


def test_round_trip_metadata_and_manifest(hello_pkg: Built, keydir: Path) -> None:
    header = read_header(hello_pkg.path)
    m = header.metadata
    assert (m.name, m.version, m.arch, m.type) == ("hello", "1.2.3", "x86_64", "application")
    assert [d.name for d in m.dependencies] == ["base-files", "libgreet"]
    assert m.dependencies[1].features == ("loud",)
    assert m.capabilities_required == ("filesystem",) and m.capabilities_optional == ("network",)
    assert m.security.signer == load_public_key(keydir / "dev.pub").keyid
    by_path = {e.path: e for e in header.manifest.entries}
    assert by_path["usr/bin/hello"].mode == 0o755 and by_path["usr/bin/hello"].role == "binary"
    assert by_path["etc/hello.conf"].role == "config"
    assert by_path["usr/share/doc/hello/README"].role == "doc"
    assert by_path["usr/bin/hi"].type == "symlink" and by_path["usr/bin/hi"].target == "hello"
    assert by_path["etc/hello.d/abs"].target == "/etc/hello.conf"
    assert by_path["usr/share/hello/built-for"].size == len("x86_64 1700000000\n")
    assert [s["kind"] for s in m.provenance["sources"]] == ["tree", "command"]


def test_verify_ok_with_right_key_and_fails_with_wrong_key(hello_pkg: Built, keydir: Path) -> None:
    v = verify_package(hello_pkg.path, load_public_key(keydir / "dev.pub"))
    assert v.files == len(v.header.manifest.entries)
    with pytest.raises(VerificationError, match="not by the trusted key"):
        verify_package(hello_pkg.path, load_public_key(keydir / "other.pub"))


def test_plain_tar_can_list_a_package(hello_pkg: Built) -> None:
    out = subprocess.run(["tar", "tf", str(hello_pkg.path)], capture_output=True, text=True, check=True).stdout
    assert out.split() == list(container.MEMBERS)


def test_same_recipe_two_directories_same_bytes(tmp_path: Path, dev_key: SigningKey) -> None:
    a = build(hello_recipe(tmp_path / "a"), "x86_64", dev_key, tmp_path / "out-a", cache=tmp_path / "c")
    b = build(hello_recipe(tmp_path / "deeper" / "b"), "x86_64", dev_key, tmp_path / "out-b", cache=tmp_path / "c")
    assert a.path.read_bytes() == b.path.read_bytes()


def test_epoch_changes_bytes(tmp_path: Path, dev_key: SigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    a = build(hello_recipe(tmp_path / "a"), "x86_64", dev_key, tmp_path / "o1", cache=tmp_path / "c")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    b = build(hello_recipe(tmp_path / "a"), "x86_64", dev_key, tmp_path / "o2", cache=tmp_path / "c")
    assert a.sha256 != b.sha256
    assert read_header(b.path).metadata.provenance["source-date-epoch"] == 1600000000


def _regions(data: bytes) -> list[tuple[int, int, str]]:
    """(start, end, expected words in the error) for every byte range of a package."""
    regions, off = [], 0
    for name in container.MEMBERS:
        size = int(data[off + 124: off + 136].rstrip(b"\0 ").decode(), 8)
        regions.append((off, off + 512, "header|not a vpk|member|truncated|limit|canonical"))
        regions.append((off + 512, off + 512 + size, name if name != "vpk-format" else "vpk-format|format"))
        pad_end = off + 512 + size + container.padding(size)
        regions.append((off + 512 + size, pad_end, "padding"))
        off = pad_end
    regions.append((off, len(data), "end of the archive"))
    return regions


def test_every_single_byte_change_is_detected_and_named(hello_pkg: Built, tmp_path: Path) -> None:
    data = hello_pkg.path.read_bytes()
    bad = tmp_path / "bad.vpk"
    checked = 0
    for start, end, expect in _regions(data):
        for i in range(start, end):
            mutated = bytearray(data)
            mutated[i] ^= 0x01 if i % 2 else 0x80
            bad.write_bytes(bytes(mutated))
            with pytest.raises(InvalidPackage) as info:
                verify_package(bad)
            assert any(w in str(info.value) for w in expect.split("|")), (i, expect, str(info.value))
            checked += 1
    assert checked == len(data)


def test_not_a_package(tmp_path: Path) -> None:
    p = tmp_path / "x.vpk"
    p.write_bytes(b"hello world" * 100)
    with pytest.raises(InvalidPackage, match=r"not a vpk package|member"):
        verify_package(p)
    p.write_bytes(b"")
    with pytest.raises(InvalidPackage, match="truncated"):
        verify_package(p)


def test_truncated_package(hello_pkg: Built, tmp_path: Path) -> None:
    data = hello_pkg.path.read_bytes()
    p = tmp_path / "t.vpk"
    for cut in (10, 600, len(data) // 2, len(data) - 1):
        p.write_bytes(data[:cut])
        with pytest.raises(InvalidPackage):
            verify_package(p)


def test_copy_verifies(hello_pkg: Built, tmp_path: Path) -> None:
    shutil.copy(hello_pkg.path, tmp_path / "copy.vpk")
    verified = verify_package(tmp_path / "copy.vpk")
    assert verified.header.metadata.name == hello_pkg.metadata.name
    assert verified.header.metadata.version == hello_pkg.metadata.version
    entries = hello_pkg.manifest.entries    # every member read back; every regular file's bytes hashed
    assert verified.files == len(entries) and verified.bytes == sum(e.size for e in entries if e.type == "file")
    assert verified.signer.keyid == verify_package(hello_pkg.path).signer.keyid


def test_corrupt_large_member_is_a_verification_error(tmp_path: Path, dev_key: SigningKey) -> None:
    """Read errors inside a big file surface while the caller reads it: still one clean error."""
    import os

    from tests.conftest import write_recipe
    blob = os.urandom(3 << 20)
    rdir = write_recipe(tmp_path / "big", """
        [package]
        name = "big"
        version = "1.0.0"
        description = "a big file"
        license = "MIT"
        type = "application"
        [[source]]
        kind = "tree"
        path = "files"
    """, {"files/usr/share/big/blob": blob})
    pkg = build(rdir, "x86_64", dev_key, tmp_path / "out").path
    data = pkg.read_bytes()
    bad = tmp_path / "bad.vpk"
    for cut in (len(data) // 2, len(data) - 4096):  # truncated inside the payload
        bad.write_bytes(data[:cut])
        with pytest.raises(InvalidPackage):
            verify_package(bad)
    for offset in (len(data) // 2, len(data) // 3):  # corrupted inside the compressed file data
        mutated = bytearray(data)
        mutated[offset] ^= 0xFF
        bad.write_bytes(bytes(mutated))
        with pytest.raises(VerificationError, match="payload.tar.zst"):
            verify_package(bad)
