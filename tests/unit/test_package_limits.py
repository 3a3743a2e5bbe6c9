"""Package limits, canonical payload rules and reserved paths (issue 11, findings 2 and 9).

The packages are real and signed (tests/hostile.py): every refusal here comes from the reader's own
checks, not from a broken signature or digest.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from composer.errors import InvalidPackage, UserError, VerificationError
from composer.limits import LimitExceeded, PackageLimitExceeded, current
from composer.package.archive import Header, read_header, verify_package
from composer.package.build import build
from composer.package.canonical import FrameCheck
from composer.package.lint import lint_header, lint_package
from composer.package.manifest import Entry, Manifest
from composer.repo import edit
from composer.trust.keys import SigningKey
from tests import hostile
from tests.conftest import write_recipe
from tests.hostile import EPOCH, directory, file, symlink
from tests.repo_fixtures import Repo

GiB = 1 << 30


def refused(call: Callable[[], object], error: type[BaseException], *words: str) -> str:
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    missing = [w for w in words if w not in message]
    assert not missing, f"{missing} not in the message: {message}"
    assert "\n" not in message, f"not one line: {message}"
    return message


# ----------------------------------------------------------------- limits


def test_member_count_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = hostile.hostile_package(tmp_path / "p.vpk", [file("a", b"1"), file("b", b"2"), file("c", b"3")])
    monkeypatch.setenv("VCOMP_LIMIT_MAX_MEMBERS", "2")
    refused(lambda: verify_package(pkg), PackageLimitExceeded, "manifest.json", "3 members", "max_members=2",
            "VCOMP_LIMIT_MAX_MEMBERS")
    refused(lambda: read_header(pkg), PackageLimitExceeded, "max_members")
    monkeypatch.setenv("VCOMP_LIMIT_MAX_MEMBERS", "3")
    assert verify_package(pkg).files == 3


def test_file_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = hostile.hostile_package(tmp_path / "p.vpk", [file("a", b"x" * 101)])
    monkeypatch.setenv("VCOMP_LIMIT_MAX_FILE_BYTES", "100")
    refused(lambda: verify_package(pkg), PackageLimitExceeded, "'a' declares 101 bytes", "max_file_bytes=100",
            "VCOMP_LIMIT_MAX_FILE_BYTES")
    monkeypatch.setenv("VCOMP_LIMIT_MAX_FILE_BYTES", "101")
    verify_package(pkg)


def test_total_declared_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = hostile.hostile_package(tmp_path / "p.vpk", [file("a", b"x" * 100), file("b", b"y" * 100)])
    monkeypatch.setenv("VCOMP_LIMIT_MAX_INSTALLED_BYTES", "150")
    refused(lambda: verify_package(pkg), PackageLimitExceeded, "200 bytes in all", "max_installed_bytes=150",
            "VCOMP_LIMIT_MAX_INSTALLED_BYTES")
    monkeypatch.setenv("VCOMP_LIMIT_MAX_INSTALLED_BYTES", "200")
    verify_package(pkg)


def test_pax_header_limit_on_an_honest_long_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = hostile.hostile_package(tmp_path / "p.vpk", [file("x" * 3000, b"data")])
    verify_package(pkg)  # a 3000-byte path is fine under the default
    monkeypatch.setenv("VCOMP_LIMIT_MAX_PAX_HEADER_BYTES", "1024")
    refused(lambda: verify_package(pkg), PackageLimitExceeded, "payload.tar.zst", "max_pax_header_bytes=1024",
            "VCOMP_LIMIT_MAX_PAX_HEADER_BYTES")


@pytest.mark.parametrize("kind", ["pax", "longname"])
def test_pax_bomb_behind_an_honest_huge_manifest_is_refused_fast_in_bounded_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """Finding 9: a manifest that honestly declares a 12 GiB file, then a 256 MiB extended header."""
    entries = [Entry(path="a", type="file", mode=0o644, size=12 * GiB, sha256="0" * 64)]
    pkg = hostile.write_vpk(tmp_path / "bomb.vpk", entries=entries, payload=hostile.bomb_payload(256 << 20, kind=kind))
    assert pkg.stat().st_size < 1 << 20
    # the default file-size limit already refuses the manifest, before the payload
    refused(lambda: verify_package(pkg), PackageLimitExceeded, "'a' declares 12884901888 bytes", "max_file_bytes")
    # with that limit raised, the extended header is refused from its raw 512-byte header
    monkeypatch.setenv("VCOMP_LIMIT_MAX_FILE_BYTES", str(16 * GiB))
    from composer.package import archive
    produced = [0]
    read = archive._Capped.read

    def counting(self: archive._Capped, n: int = -1) -> bytes:
        data = read(self, n)
        produced[0] += len(data)
        return data
    monkeypatch.setattr(archive._Capped, "read", counting)
    tracemalloc.start()
    try:
        refused(lambda: verify_package(pkg), PackageLimitExceeded, "announces 268435456 bytes",
                "decompression bomb", "max_pax_header_bytes=65536")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert produced[0] < 1 << 20, f"decompressed {produced[0]} bytes of the 256 MiB"  # fast: counted, not timed
    assert peak < 8 << 20, f"peak {peak} bytes"


def _depth_manifest(depth: int) -> bytes:
    return b'{"files":[],"format":1,"payload":' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [100, 100_000])
def test_manifest_nesting_limit(tmp_path: Path, depth: int) -> None:
    meta = hostile.metadata().to_toml()
    pkg = hostile.write_raw_vpk(tmp_path / "deep.vpk", metadata_bytes=meta, manifest_bytes=_depth_manifest(depth))
    refused(lambda: read_header(pkg), PackageLimitExceeded, "manifest.json", f"nested {depth + 1} levels deep",
            "max_depth=64")


@pytest.mark.parametrize("depth", [100, 100_000])
def test_metadata_nesting_limit(tmp_path: Path, depth: int) -> None:
    meta = hostile.metadata().to_toml() + b"\n[provenance]\ndeep = " + b"[" * depth + b"]" * depth + b"\n"
    if len(meta) > 1 << 20:
        pytest.skip("over the container's metadata size limit")  # pragma: no cover
    pkg = hostile.write_raw_vpk(tmp_path / "deep.vpk", metadata_bytes=meta, manifest_bytes=_depth_manifest(1))
    message = refused(lambda: read_header(pkg), PackageLimitExceeded, "metadata.toml", "max_depth=64")
    assert isinstance(PackageLimitExceeded("x"), InvalidPackage) and "RecursionError" not in message


def test_limit_variables_must_be_positive_integers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCOMP_LIMIT_MAX_DEPTH", "lots")
    refused(current, UserError, "VCOMP_LIMIT_MAX_DEPTH='lots' is not a positive integer")
    monkeypatch.setenv("VCOMP_LIMIT_MAX_DEPTH", "0")
    refused(current, UserError, "VCOMP_LIMIT_MAX_DEPTH='0'")
    monkeypatch.setenv("VCOMP_LIMIT_MAX_DEPTH", "7")
    assert current().max_depth == 7
    assert issubclass(PackageLimitExceeded, LimitExceeded) and issubclass(PackageLimitExceeded, VerificationError)


# ----------------------------------------------------------------- canonical payload


def _ti(name: str = "a", **attrs: object) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode, ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = 0o644, EPOCH, 0, 0, "", ""
    for k, v in attrs.items():
        setattr(ti, k, v)
    return ti


END = b"\0" * 1024
ENTRY_A = Entry(path="a", type="file", mode=0o644, size=1, sha256=hashlib.sha256(b"x").hexdigest())


def _vpk(tmp_path: Path, payload: bytes, entries: tuple[Entry, ...] = (ENTRY_A,)) -> Path:
    return hostile.write_vpk(tmp_path / "c.vpk", entries=entries, payload=payload)


MEMBER_CASES = {
    "uid": (_ti(uid=1000), "is owned by 1000:0"),
    "gid": (_ti(gid=5), "is owned by 0:5"),
    "uname": (_ti(uname="root"), "has owner names 'root:'"),
    "gname": (_ti(gname="wheel"), "has owner names ':wheel'"),
    "mtime": (_ti(mtime=EPOCH + 1), f"has mtime {EPOCH + 1}, not the package's epoch {EPOCH}"),
    "pax-record": (_ti(pax_headers={"comment": "hi"}), "has pax records 'comment'"),
}


@pytest.mark.parametrize("case", sorted(MEMBER_CASES))
def test_non_canonical_member_is_refused(tmp_path: Path, case: str) -> None:
    ti, words = MEMBER_CASES[case]
    pkg = _vpk(tmp_path, hostile.compress(hostile.raw_member(ti, b"x") + END))
    refused(lambda: verify_package(pkg), VerificationError, "payload.tar.zst: 'a'", words, "not canonical")


def test_global_pax_header_is_refused(tmp_path: Path) -> None:
    glob = tarfile.TarInfo.create_pax_global_header({"comment": "x"})
    pkg = _vpk(tmp_path, hostile.compress(glob + hostile.raw_member(_ti(), b"x") + END))
    refused(lambda: verify_package(pkg), VerificationError, "extended header of type 'g'", "not canonical")


def test_gnu_long_name_is_refused(tmp_path: Path) -> None:
    name = "n" * 200
    entry = Entry(path=name, type="file", mode=0o644, size=1, sha256=ENTRY_A.sha256)
    payload = hostile.compress(hostile.raw_member(_ti(name), b"x", tarfile.GNU_FORMAT) + END)
    pkg = _vpk(tmp_path, payload, (entry,))
    refused(lambda: verify_package(pkg), VerificationError, "extended header of type 'L'")


def test_chained_extended_headers_are_refused(tmp_path: Path) -> None:
    """tarfile recurses once per extended header: a chain of them would end in RecursionError."""
    first_pax = _ti("p" * 200).tobuf(tarfile.PAX_FORMAT)[:1024]  # a pax header and its one block of records
    chain = first_pax * 3000 + hostile.raw_member(_ti(), b"x") + END
    pkg = _vpk(tmp_path, hostile.compress(chain))
    with_big_file = (Entry(path="a", type="file", mode=0o644, size=1 << 30, sha256=ENTRY_A.sha256),)
    big = hostile.write_vpk(tmp_path / "big.vpk", entries=with_big_file, payload=hostile.compress(chain))
    for p in (pkg, big):  # the small cap stops the first; the second would get to the recursion
        refused(lambda: verify_package(p), VerificationError, "payload.tar.zst")  # noqa: B023
    refused(lambda: verify_package(big), VerificationError, "an extended header follows another")


SPARSE = {
    "pax-1.0": {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "a", "GNU.sparse.realsize": "1"},
    "pax-0.1": {"GNU.sparse.map": "0,1", "GNU.sparse.size": "1"},
    "pax-0.0": {"GNU.sparse.size": "1", "GNU.sparse.numblocks": "1", "GNU.sparse.offset": "0",
                "GNU.sparse.numbytes": "1"},
}


@pytest.mark.parametrize("case", sorted(SPARSE))
def test_sparse_files_are_refused_before_their_map_is_read(tmp_path: Path, case: str) -> None:
    pkg = _vpk(tmp_path, hostile.compress(hostile.raw_member(_ti(pax_headers=SPARSE[case]), b"x") + END))
    refused(lambda: verify_package(pkg), VerificationError, "GNU sparse file", "not canonical")


def test_old_gnu_sparse_member_is_refused(tmp_path: Path) -> None:
    ti = _ti(type=tarfile.GNUTYPE_SPARSE)
    raw = bytearray(ti.tobuf(tarfile.GNU_FORMAT))
    raw[482] = 1  # isextended: tarfile would read extension blocks for as long as they say so
    raw[148:156] = b" " * 8
    raw[148:155] = b"%06o\0" % (sum(raw) & 0o777777)
    pkg = _vpk(tmp_path, hostile.compress(bytes(raw) + b"\1" * 512 * 64 + END))
    refused(lambda: verify_package(pkg), VerificationError, "'a' is a GNU sparse file")


TAR_A = hostile.raw_member(_ti(), b"x")
TAIL_CASES = {
    "data-after-end": (TAR_A + END + b"junk" + b"\0" * 508, "data after the tar end marker"),
    "second-archive": (TAR_A + END + TAR_A + END, "data after the tar end marker"),
    "too-much-padding": (TAR_A + END + b"\0" * 20480, "zero bytes after the last member"),
    "one-end-block": (TAR_A + b"\0" * 512, "the tar end marker is one zero block, not two"),
    "no-end-marker": (TAR_A, "no end-of-archive marker"),
}


@pytest.mark.parametrize("case", sorted(TAIL_CASES))
def test_tar_tail_rules(tmp_path: Path, case: str) -> None:
    tar, words = TAIL_CASES[case]
    pkg = _vpk(tmp_path, hostile.compress(tar))
    refused(lambda: verify_package(pkg), VerificationError, "payload.tar.zst", words)


def test_record_padding_after_the_end_marker_is_canonical(tmp_path: Path) -> None:
    tar = TAR_A + END
    tar += b"\0" * (-len(tar) % tarfile.RECORDSIZE)  # what tarfile itself writes
    assert verify_package(_vpk(tmp_path, hostile.compress(tar))).files == 1


SKIPPABLE = (0x184D2A50).to_bytes(4, "little") + (4).to_bytes(4, "little") + b"abcd"
GOOD_FRAME = hostile.compress(TAR_A + END)
FRAME_CASES = {
    "second-frame": (GOOD_FRAME + hostile.compress(b"\0" * 512), "data after the zstd frame"),
    "junk-after": (GOOD_FRAME + b"junk", "data after the zstd frame"),
    "skippable-after": (GOOD_FRAME + SKIPPABLE, "data after the zstd frame"),
    "skippable-before": (SKIPPABLE + GOOD_FRAME, "not a zstd frame"),
    "no-checksum": (zstandard.ZstdCompressor(write_checksum=False).compress(TAR_A + END), "has no checksum"),
}


@pytest.mark.parametrize("case", sorted(FRAME_CASES))
def test_zstd_frame_rules(tmp_path: Path, case: str) -> None:
    payload, words = FRAME_CASES[case]
    pkg = _vpk(tmp_path, payload)
    refused(lambda: verify_package(pkg), VerificationError, "payload.tar.zst", words, "exactly one")


@pytest.mark.parametrize("step", [1, 7, 4096])
def test_frame_check_is_independent_of_read_sizes(step: int) -> None:
    data = bytes(range(256)) * 4000 + b"\0" * 300_000  # several blocks: compressed, raw and RLE
    frame = zstandard.ZstdCompressor(level=1, write_checksum=True).compress(data)
    for payload, problem in ((frame, None), (frame[:-1], "the zstd frame is truncated"),
                             (frame + b"\0", "data after the zstd frame (a second frame or trailing bytes)")):
        check = FrameCheck(io.BytesIO(payload))
        while check.read(step):
            pass
        assert check.finish() == problem


def test_the_builder_writes_canonical_packages(tmp_path: Path, dev_key: SigningKey) -> None:
    """Long and non-ASCII names need pax path/linkpath records: they are canonical."""
    long = "usr/share/" + "/".join(["deep" * 10] * 5) + "/caf\u00e9.txt"
    recipe = write_recipe(tmp_path / "r", RECIPE + '\n[[source]]\nkind = "links"\nlinks = { "usr/share/l" = "'
                          + "t" * 150 + '" }\n', {"files/" + long: "x", "files/etc/demo.conf": "y"})
    built = build(recipe, "x86_64", dev_key, tmp_path / "out")
    verified = verify_package(built.path)
    assert long in {e.path for e in verified.header.manifest.entries}


# ----------------------------------------------------------------- reserved paths

RESERVED_CASES = {
    "db-file": ([directory("var"), directory("var/lib"), directory("var/lib/vpk"),
                 file("var/lib/vpk/db.json", b"{}")], "var/lib/vpk", "which belongs to vcomp"),
    "repositories": ([file("var/lib/vpk/repositories.toml", b"")], "var/lib/vpk/repositories.toml",
                     "is at or below /var/lib/vpk"),
    "the-dir-itself": ([directory("var/lib/vpk")], "var/lib/vpk", "which belongs to vcomp"),
    "etc-veridian": ([file("etc/veridian/capabilities", b"all")], "etc/veridian/capabilities",
                     "is at or below /etc/veridian"),
    "etc-veridian-symlink": ([symlink("etc/veridian", "/tmp")], "etc/veridian",
                             "it is a symlink where vcomp needs the directory"),
    "capability-policy": ([directory("etc"), directory("etc/veridian"), file("etc/veridian/capabilities.toml", b"")],
                          "etc/veridian/capabilities.toml", "is at or below /etc/veridian"),
    "checks-symlink": ([symlink("etc/veridian/checks.d", "/etc")], "etc/veridian/checks.d",
                       "it is a symlink where vcomp needs the directory"),
    "var-lib-symlink": ([directory("var"), symlink("var/lib", "/tmp")], "var/lib",
                        "it is a symlink where vcomp needs the directory"),
    "etc-file": ([file("etc", b"x")], "etc", "it is a file where vcomp needs the directory"),
}


@pytest.mark.parametrize("case", sorted(RESERVED_CASES))
def test_reserved_paths_fail_verification_and_lint(tmp_path: Path, case: str) -> None:
    members, path, why = RESERVED_CASES[case]
    pkg = hostile.hostile_package(tmp_path / "r.vpk", members, meta=hostile.metadata("intruder"))
    words = ("package 'intruder'", f"ships '{path}'", why)
    refused(lambda: verify_package(pkg), InvalidPackage, *words)
    refused(lambda: lint_package(pkg), InvalidPackage, *words)


def test_ancestors_of_reserved_paths_are_fine_as_directories(tmp_path: Path) -> None:
    """... and boot checks in etc/veridian/checks.d are open to packages (the sample init ships one)."""
    members = [directory("etc"), file("etc/hosts", b"x"), directory("etc/veridian"),
               directory("etc/veridian/checks.d"), file("etc/veridian/checks.d/50-mine", b"#!/bin/sh\n", 0o755),
               directory("var"), directory("var/lib"), directory("var/lib/other"), file("var/lib/vpkx", b"x")]
    pkg = hostile.hostile_package(tmp_path / "ok.vpk", members)
    assert verify_package(pkg).files == len(members)


def test_lint_reports_reserved_paths_of_a_header() -> None:
    entry = Entry(path="var/lib/vpk/history.json", type="file", mode=0o644, size=0, sha256="0" * 64)
    header = Header(metadata=hostile.metadata("intruder"), metadata_bytes=b"", manifest_bytes=b"",
                    manifest=Manifest(entries=(entry,), payload_sha256="0" * 64, payload_size=0))
    [finding] = [f for f in lint_header(header) if f.code == "reserved-path"]
    assert finding.level == "error" and "'var/lib/vpk/history.json'" in finding.message


RECIPE = """
[package]
name = "demo"
version = "1.0.0"
description = "demo"
license = "MIT"
type = "application"

[[source]]
kind = "tree"
path = "files"
"""


@pytest.mark.parametrize(("files", "links", "words"), [
    ({"files/var/lib/vpk/db.json": "{}"}, "", "ships 'var/lib/vpk'"),
    ({"files/etc/veridian/capabilities": "all"}, "", "ships 'etc/veridian/capabilities'"),
    ({"files/etc/x": "x"}, '"etc/veridian" = "/tmp"', "ships 'etc/veridian'"),
], ids=["db", "etc-veridian", "symlink"])
def test_build_refuses_reserved_paths(tmp_path: Path, dev_key: SigningKey, files: dict[str, str], links: str,
                                      words: str) -> None:
    extra = f'\n[[source]]\nkind = "links"\nlinks = {{ {links} }}\n' if links else ""
    recipe = write_recipe(tmp_path / "r", RECIPE + extra, files)
    refused(lambda: build(recipe, "x86_64", dev_key, tmp_path / "out"), UserError, "recipe.toml",
            "package 'demo'", words, "reserved")
    assert list((tmp_path / "out").iterdir()) == []


def test_repo_add_refuses_reserved_paths_through_verification(repo: Repo, tmp_path: Path) -> None:
    pkg = hostile.hostile_package(tmp_path / "libevil.vpk", [file("var/lib/vpk/repositories.toml", b"evil")],
                                  key=repo.keys.alice, meta=hostile.metadata("libevil"))
    before = {str(p): p.read_bytes() for p in sorted(repo.dir.rglob("*")) if p.is_file()}
    refused(lambda: edit.add(repo.store, [pkg], [repo.keys.alice]), InvalidPackage, "package 'libevil'",
            "'var/lib/vpk/repositories.toml'", "reserved")
    assert {str(p): p.read_bytes() for p in sorted(repo.dir.rglob("*")) if p.is_file()} == before


def test_a_deeply_nested_recipe_is_one_clear_error(tmp_path: Path, dev_key: SigningKey) -> None:
    deep = "[" * 5000 + "]" * 5000
    recipe = write_recipe(tmp_path / "r", RECIPE + f"\n[build]\nx = {deep}\n", {"files/etc/x": "x"})
    refused(lambda: build(recipe, "x86_64", dev_key, tmp_path / "out"), LimitExceeded, "recipe.toml",
            "max_depth=64")


def test_a_number_too_long_to_convert_is_a_clear_error(tmp_path: Path, dev_key: SigningKey) -> None:
    huge = "9" * 5000
    meta = hostile.metadata().to_toml() + f"\n[provenance]\nn = {huge}\n".encode()
    pkg = hostile.write_raw_vpk(tmp_path / "n.vpk", metadata_bytes=meta, manifest_bytes=_depth_manifest(1))
    refused(lambda: read_header(pkg), InvalidPackage, "metadata.toml: invalid TOML", "4300 digits")
    recipe = write_recipe(tmp_path / "r", RECIPE + f"\n[build]\nn = {huge}\n", {"files/etc/x": "x"})
    refused(lambda: build(recipe, "x86_64", dev_key, tmp_path / "out"), UserError, "recipe.toml: invalid TOML")
