"""Extraction into an image root: real hostile packages are refused, nothing is written outside the
root, a failed extraction leaves the root exactly as it was, and good packages give deterministic trees.

Every hostile package here is signed with a real ed25519 key and has a manifest that matches its
payload, so it is extract.py that must refuse it. The manifest parser's own path checks are bypassed
(``hostile.accept_hostile_manifests``), and the layered tests switch off extract.py's own earlier
checks one by one to show each later layer still refuses on its own.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import resource
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import InvalidPackage, UnsafeArchive, UserError, VerificationError
from composer.fsutil import sha256_bytes
from composer.package import extract
from composer.package.archive import Staged, write_package
from composer.package.build import Built
from composer.package.extract import ExtractResult, FileConflict, extract_package
from composer.package.manifest import Entry
from composer.trust.keys import SigningKey, load_public_key
from tests import hostile
from tests.hostile import EPOCH, Member, device, directory, file, hardlink, symlink

EPOCH_NS = EPOCH * 1_000_000_000


@dataclass
class Env:
    tmp: Path
    root: Path
    sentinel: Path
    elsewhere: Path
    key: SigningKey
    packages: list[Path] = field(default_factory=list)

    def package(self, members: Sequence[Member], name: str = "hostile", **kw: Any) -> Path:
        path = self.tmp / "pkgs" / f"{name}-{len(self.packages)}.vpk"
        self.packages.append(path)
        return hostile.hostile_package(path, members, key=self.key, **kw)

    def outside(self) -> tuple[dict[str, tuple[Any, ...]], list[str]]:
        """Everything outside the root we can observe: the test's directory and its parent's listing."""
        snap = {k: v for k, v in hostile.snapshot(self.tmp).items() if k != "root" and not k.startswith("root/")}
        return snap, sorted(os.listdir(self.tmp.parent))

    def everything(self) -> tuple[dict[str, tuple[Any, ...]], list[str]]:
        return hostile.snapshot(self.tmp), sorted(os.listdir(self.tmp.parent))

    def refused(self, pkg: Path, exc_type: type[Exception], named: str, **kw: Any) -> Exception:
        """Extraction fails with ``exc_type`` naming ``named``; nothing anywhere changed."""
        before = self.everything()
        with pytest.raises(exc_type) as info:
            extract_package(pkg, self.root, **kw)
        assert f"'{named}'" in str(info.value), str(info.value)
        assert str(pkg) in str(info.value)
        assert self.everything() == before
        assert not [p for p in os.listdir(self.root) if p.startswith(".vpk-")]
        return info.value


@pytest.fixture()
def env(tmp_path: Path) -> Env:
    root = tmp_path / "root"
    root.mkdir()
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / "secret").write_bytes(b"secret\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return Env(tmp=tmp_path, root=root, sentinel=sentinel, elsewhere=elsewhere, key=hostile.new_key())


@pytest.fixture()
def lenient(monkeypatch: pytest.MonkeyPatch) -> None:
    hostile.accept_hostile_manifests(monkeypatch)


# ---------------------------------------------------------------- hostile packages, layer by layer

# Layers: "full" (everything), "stager" (the manifest pre-check switched off: the member-by-member
# checks must refuse), "fs" (all logical checks off: only O_NOFOLLOW walking and O_EXCL creation).
LAYERS = ("full", "stager", "fs")
Expect = tuple[type[Exception], str] | None  # None: may pass, but nothing may escape the root


@dataclass(frozen=True)
class Case:
    id: str
    members: Callable[[Env], list[Member]]
    full: Expect
    stager: Expect | str = "same"
    fs: Expect | str = "same"

    def expect(self, layer: str) -> Expect:
        value = {"full": self.full, "stager": self.stager, "fs": self.fs}[layer]
        if value == "same":
            return self.full
        assert not isinstance(value, str)
        return value


U = UnsafeArchive
CASES = [
    Case("dotdot", lambda e: [file("../escape", b"pwned")], (U, "../escape")),
    Case("dotdot-deep", lambda e: [file("usr/../../escape", b"pwned")], (U, "usr/../../escape")),
    Case("dotdot-last", lambda e: [directory("usr"), file("usr/..", b"pwned")], (U, "usr/..")),
    Case("absolute-sentinel", lambda e: [file(str(e.sentinel / "owned"), b"pwned")],
         (U, "")),  # named below: the absolute path
    Case("absolute-etc-passwd", lambda e: [file("/etc/passwd", b"root::0:0::/:/bin/sh\n")], (U, "/etc/passwd")),
    Case("empty-component", lambda e: [file("usr//x", b"x")], (U, "usr//x")),
    Case("dot-component", lambda e: [file("./x", b"x")], (U, "./x")),
    Case("backslash", lambda e: [file("a\\..\\..\\x", b"x")], (U, "a\\..\\..\\x"), fs=None),
    Case("reserved-name", lambda e: [file(".vpk-staging-x/y", b"x")], (U, ".vpk-staging-x/y"), fs=None),
    Case("symlink-escape-then-write", lambda e: [directory("etc"), symlink("etc/x", "../../.."),
                                                 file("etc/x/owned", b"pwned")],
         (U, "etc/x"), fs=(U, "etc/x/owned")),
    Case("top-symlink-escape-then-write", lambda e: [symlink("x", "../../.."), file("x/owned", b"pwned")],
         (U, "x"), fs=(U, "x/owned")),
    Case("symlink-to-sentinel-dir", lambda e: [symlink("x", "../sentinel")], (U, "x"), fs=None),
    Case("absolute-symlink-then-write-through", lambda e: [symlink("a", str(e.sentinel)),
                                                           file("a/owned", b"pwned")], (U, "a/owned")),
    Case("inner-symlink-up-then-write-through", lambda e: [directory("d"), symlink("d/up", ".."),
                                                           file("d/up/owned", b"pwned")], (U, "d/up/owned")),
    Case("symlink-chain-escape", lambda e: [directory("a"), symlink("a/b", ".."), symlink("c", "a/b/../sentinel"),
                                            file("c/owned", b"pwned")],
         (U, "c"), stager=(U, "c/owned"), fs=(U, "c/owned")),
    Case("symlink-loop", lambda e: [symlink("a", "b"), symlink("b", "a")], (U, "a"), stager=None, fs=None),
    Case("symlink-via-absolute-link-to-root", lambda e: [symlink("a", "/"), directory("d"), symlink("d/e", "../a/..")],
         (U, "d/e"), stager=None, fs=None),
    Case("hardlink-outside-relative", lambda e: [hardlink("h", "../sentinel/secret")], (U, "h")),
    Case("hardlink-outside-deep", lambda e: [hardlink("h", "../../etc/passwd")], (U, "h")),
    Case("hardlink-absolute", lambda e: [hardlink("h", str(e.sentinel / "secret"))], (U, "h")),
    Case("hardlink-not-in-package", lambda e: [hardlink("h", "etc/shadow")], (U, "h")),
    Case("hardlink-to-directory", lambda e: [directory("d"), hardlink("h", "d")], (U, "h")),
    Case("hardlink-to-symlink", lambda e: [symlink("s", str(e.sentinel / "secret")), hardlink("t", "s")],
         (U, "t")),
    Case("hardlink-to-later-file", lambda e: [hardlink("a", "b"), file("b", b"x")], (U, "a")),
    Case("duplicate-file", lambda e: [file("a", b"first"), file("a", b"second")], (U, "a")),
    Case("duplicate-dir-then-file", lambda e: [directory("a"), file("a", b"x")], (U, "a")),
    Case("duplicate-file-then-dir", lambda e: [file("a", b"x"), directory("a")], (U, "a")),
    Case("duplicate-symlink-over-file", lambda e: [file("a", b"x"), symlink("a", str(e.sentinel))], (U, "a")),
    Case("member-below-file", lambda e: [file("f", b"x"), file("f/x", b"y")], (U, "f/x")),
    Case("member-below-device", lambda e: [device("dev/null"), file("dev/null/x", b"y")], (U, "dev/null/x"),
         fs=None),
    Case("implied-dir-then-file", lambda e: [file("a/b", b"x"), file("a", b"y")], (U, "a")),
]


def _case_params() -> list[Any]:
    return [pytest.param(c, layer, id=f"{c.id}-{layer}") for c in CASES for layer in LAYERS]


def _switch_off(layer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if layer in ("stager", "fs"):
        monkeypatch.setattr(extract, "_preflight", lambda *a, **k: None)
    if layer == "fs":
        monkeypatch.setattr(extract._Tracker, "admit", lambda self, entry, lookup: None)


@pytest.mark.parametrize(("case", "layer"), _case_params())
def test_hostile_package_is_refused(case: Case, layer: str, env: Env, lenient: None,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = env.package(case.members(env))
    _switch_off(layer, monkeypatch)
    expect = case.expect(layer)
    if expect is None:  # this layer alone need not refuse it, but nothing may escape the root
        before = env.outside()
        with contextlib.suppress(InvalidPackage):
            extract_package(pkg, env.root)
        assert env.outside() == before
        return
    exc_type, named = expect
    if case.id == "absolute-sentinel":
        named = str(env.sentinel / "owned")
    err = env.refused(pkg, exc_type, named)
    assert isinstance(err, InvalidPackage) and err.hint


def test_manifest_parser_refuses_too_without_the_bypass(env: Env) -> None:
    """Without the bypass the manifest parser already refuses: an InvalidPackage, before extraction."""
    env.refused(env.package([file("../escape", b"x")]), InvalidPackage, "../escape")


def test_nul_in_a_path_is_refused(env: Env, lenient: None) -> None:
    env.refused(env.package([file("a\x00b", b"x")]), UnsafeArchive, "a\\x00b")


@pytest.mark.parametrize(("path", "why"), [
    ("a/" + "x" * 256, "too long"), ("x/" * 2100 + "x", "too long"), ("a\udcff", "UTF-8"),
    ("", "empty"), ("a/.vpk-old-1/b", "reserved"), ("a/.vpk-new-1", "reserved"), ("usr/bin/tool", None),
])
def test_path_problem(path: str, why: str | None) -> None:
    problem = extract.path_problem(path)
    assert (problem is None) if why is None else (problem is not None and why in problem)


@pytest.mark.parametrize(("target", "why"), [
    ("", "empty"), ("a\x00b", "NUL"), ("x" * 5000, "too long"), ("a\udcff", "UTF-8"), ("../ok", None),
])
def test_symlink_problem_rejects_malformed_targets(target: str, why: str | None) -> None:
    problem = extract.symlink_problem("d/link", target, lambda p: None)
    assert (problem is None) if why is None else (problem is not None and why in problem)


@pytest.mark.parametrize(("entry", "why"), [
    (Entry(path="a", type="socket", mode=0o644), "unknown type"),
    (Entry(path="a", type="file", mode=0o177777, size=0, sha256="0" * 64), "invalid mode"),
])
def test_malformed_entries_are_refused_before_the_payload(env: Env, lenient: None, entry: Entry, why: str) -> None:
    pkg = hostile.write_vpk(env.tmp / "bad.vpk", entries=[entry], payload=hostile.compress(b"\0" * 1024),
                            key=env.key)
    err = env.refused(pkg, UnsafeArchive, "a")
    assert why in str(err)


def test_symlink_leading_outside_through_a_symlink_already_in_the_root(env: Env, lenient: None) -> None:
    (env.root / "up").symlink_to("..")  # planted earlier, e.g. by another package
    env.refused(env.package([symlink("x", "up/sentinel")]), UnsafeArchive, "x")


@pytest.mark.parametrize("members", [
    [directory("usr"), directory("usr/bin"), file("usr/bin/tool", b"x")],
    [file("usr/bin/tool", b"x")],
    [directory("etc"), file("etc/conf", b"x"), directory("usr"), directory("usr/bin"), file("usr/bin/tool", b"x")],
], ids=["listed-dirs", "implied-dirs", "after-other-members"])
@pytest.mark.parametrize("plan", [True, False], ids=["planned", "plan-off"])
def test_existing_symlink_in_root_is_never_followed(env: Env, members: list[Member], plan: bool,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused when the commit plan checks the root; with the plan off, O_NOFOLLOW and rollback still hold."""
    (env.root / "usr").symlink_to(env.elsewhere)
    if not plan:
        monkeypatch.setattr(extract._Committer, "_plan", lambda self, entries: set())
    named = next(m.path for m in members if m.path.startswith("usr"))
    err = env.refused(env.package(members), UnsafeArchive, named)
    assert ("a symlink in" if plan else "never followed") in str(err)
    assert os.listdir(env.elsewhere) == []


def test_existing_symlink_deeper_in_root_is_never_followed(env: Env) -> None:
    (env.root / "usr").mkdir()
    (env.root / "usr" / "lib").symlink_to(env.elsewhere)
    env.refused(env.package([directory("usr"), file("usr/lib/libc.so", b"x")]), UnsafeArchive, "usr/lib/libc.so")
    assert os.listdir(env.elsewhere) == []


def test_existing_symlink_where_a_file_goes_is_replaced_not_followed(env: Env) -> None:
    (env.root / "etc").mkdir()
    (env.root / "etc" / "passwd").symlink_to(env.sentinel / "secret")
    pkg = env.package([directory("etc"), file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")])
    env.refused(pkg, FileConflict, "etc/passwd")
    before = env.outside()
    extract_package(pkg, env.root, overwrite=True)
    assert env.outside() == before
    assert (env.sentinel / "secret").read_bytes() == b"secret\n"
    assert not (env.root / "etc" / "passwd").is_symlink()
    assert (env.root / "etc" / "passwd").read_bytes() == b"root:x:0:0::/root:/bin/sh\n"


# ---------------------------------------------------------------- sizes, bombs, corruption


@pytest.mark.parametrize("member", [
    Member("a", data=b"x" * 100, manifest_size=10),      # tar header and data say 100, the manifest 10
    Member("a", data=b"x" * 1000, header_size=10, manifest_size=10),  # 990 bytes more than the header says
], ids=["header-larger", "data-larger"])
def test_member_larger_than_its_manifest_entry(env: Env, member: Member) -> None:
    pkg = env.package([member, file("b", b"y")])
    before = env.everything()
    with pytest.raises(InvalidPackage) as info:
        extract_package(pkg, env.root)
    assert isinstance(info.value, VerificationError)
    assert env.everything() == before
    if member.header_size is None:
        assert "'a'" in str(info.value)


BOMB = 2 << 30  # 2 GiB of zeros; the payload is about 64 KiB


@pytest.mark.parametrize("kind", ["pax", "longname", "file"])
def test_decompression_bomb_fails_fast_without_memory_or_disk(env: Env, kind: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Fast, counted rather than timed: the extractor stops after a few MiB of the 2 GiB."""
    from composer.package import archive
    produced = [0]
    read = archive._Capped.read

    def counting(self: archive._Capped, n: int = -1) -> bytes:
        data = read(self, n)
        produced[0] += len(data)
        return data
    monkeypatch.setattr(archive._Capped, "read", counting)
    entries = [Member("bomb" if kind == "file" else "a", data=b"0123456789").entry()]
    payload = hostile.bomb_payload(BOMB, kind=kind)
    assert len(payload) < 1 << 20
    pkg = hostile.write_vpk(env.tmp / "bomb.vpk", entries=entries, payload=payload, key=env.key)
    before = env.everything()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    with pytest.raises(VerificationError) as info:
        extract_package(pkg, env.root)
    assert 0 < produced[0] < 64 << 20, f"decompressed {produced[0]} bytes of the {BOMB}"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 256 * 1024
    assert env.everything() == before
    message = str(info.value)
    assert ("decompression bomb" in message) if kind != "file" else ("'bomb'" in message)


def test_declared_size_over_the_limit_is_refused_before_reading(env: Env) -> None:
    pkg = env.package([file("a", b"x" * 1000), file("b", b"y" * 1000)])
    before = env.everything()
    with pytest.raises(VerificationError, match="over the limit"):
        extract_package(pkg, env.root, max_installed=1500)
    assert env.everything() == before


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_damaged_payload_is_an_invalid_package(env: Env, damage: str) -> None:
    """Errors raised while a member's data is read surface as InvalidPackage (not tarfile/zstd errors).

    The manifest's payload digest is of the damaged bytes, so only decompression notices.
    """
    members = [directory("d"), file("d/big", os.urandom(3 << 20))]
    payload = hostile.compress(hostile.tar_stream(members))
    if damage == "truncated":
        payload = payload[: len(payload) // 2]
    else:
        middle = len(payload) // 2
        payload = payload[:middle] + bytes(b ^ 0xFF for b in payload[middle:middle + 64]) + payload[middle + 64:]
    pkg = hostile.write_vpk(env.tmp / "damaged.vpk", entries=[m.entry() for m in members], payload=payload,
                            key=env.key)
    before = env.everything()
    with pytest.raises(VerificationError, match="corrupt payload in 'd/big'"):
        extract_package(pkg, env.root)
    assert env.everything() == before


def test_payload_digest_is_checked_before_anything_is_placed(env: Env) -> None:
    """Every member checks out, only the payload's overall sha256 is wrong: nothing is committed."""
    members = [directory("usr"), file("usr/a", b"a"), symlink("usr/b", "a")]
    pkg = hostile.write_vpk(env.tmp / "digest.vpk", entries=[m.entry() for m in members],
                            payload=hostile.compress(hostile.tar_stream(members)), key=env.key,
                            payload_sha256="0" * 64)
    before = env.everything()
    with pytest.raises(VerificationError, match="payload modified"):
        extract_package(pkg, env.root)
    assert env.everything() == before


def test_signature_is_checked_before_the_payload(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = env.package([file("a", b"x")])
    other = hostile.new_key()

    def no_payload(*a: Any, **k: Any) -> Any:
        raise AssertionError("payload read before the signature was checked")

    monkeypatch.setattr("composer.package.archive.PackageReader.payload", no_payload)
    before = env.everything()
    with pytest.raises(VerificationError, match="not by the trusted key"):
        extract_package(pkg, env.root, trusted=other.public)
    assert env.everything() == before


# ---------------------------------------------------------------- devices


def test_devices_and_fifos_are_recorded_not_created(env: Env) -> None:
    members = [directory("dev"), device("dev/console", "chardev", (5, 1)), device("dev/initctl", "fifo"),
               device("dev/sda", "blockdev", (8, 0)), file("etc/hostname", b"box\n")]
    result = extract_package(env.package(members), env.root)
    assert [d.path for d in result.devices] == ["dev/console", "dev/initctl", "dev/sda"]
    assert [d.type for d in result.devices] == ["chardev", "fifo", "blockdev"]
    assert result.devices[0].device == (5, 1) and result.devices[2].device == (8, 0)
    assert os.listdir(env.root / "dev") == []
    assert result.files == ("etc/hostname",)


# ---------------------------------------------------------------- good packages


def _good_package(path: Path, key: SigningKey, src: Path, *, name: str = "good", epoch: int = EPOCH,
                  extra: Sequence[tuple[Entry, bytes | None]] = ()) -> Path:
    """A package written by the real writer (archive.write_package)."""
    items: list[tuple[Entry, bytes | None]] = [
        (Entry(path="etc", type="dir", mode=0o755), None),
        (Entry(path="etc/tool.conf", type="file", mode=0o644), b"level=3\n"),
        (Entry(path="etc/tool.d", type="dir", mode=0o750), None),
        (Entry(path="etc/tool.d/abs", type="symlink", mode=0o777, target="/usr/bin/tool"), None),
        (Entry(path="opt/vendor/data.bin", type="file", mode=0o600), bytes(range(256)) * 50),
        (Entry(path="srv", type="dir", mode=0o555), None),  # read-only, with a file inside
        (Entry(path="srv/index", type="file", mode=0o444), b"index\n"),
        (Entry(path="usr", type="dir", mode=0o755), None),
        (Entry(path="usr/bin", type="dir", mode=0o755), None),
        (Entry(path="usr/bin/empty", type="file", mode=0o644), b""),
        (Entry(path="usr/bin/su", type="file", mode=0o4755), b"#!/bin/sh\nsetuid\n"),
        (Entry(path="usr/bin/tool", type="file", mode=0o755), b"#!/bin/sh\necho tool\n"),
        (Entry(path="usr/bin/tool-alias", type="symlink", mode=0o777, target="tool"), None),
        (Entry(path="usr/bin/tool-hard", type="hardlink", mode=0o755, target="usr/bin/tool"), None),
        (Entry(path="usr/lib", type="dir", mode=0o755), None),
        (Entry(path="usr/lib/dangling", type="symlink", mode=0o777, target="../../nowhere/at/all"), None),
        (Entry(path="usr/lib/up", type="symlink", mode=0o777, target="../.."), None),
        *extra,
    ]
    staged = []
    for entry, data in items:
        source = None
        if data is not None:
            source = src / entry.path
            source.parent.mkdir(parents=True, exist_ok=True)
            source.write_bytes(data)
        staged.append(Staged(entry=entry, source=source))
    write_package(path, metadata=hostile.metadata(name), staged=staged, key=key, epoch=epoch)
    return path


@pytest.fixture()
def good(env: Env) -> Path:
    return _good_package(env.tmp / "pkgs" / "good.vpk", env.key, env.tmp / "src")


def test_good_package_extracts_exactly(env: Env, good: Path) -> None:
    before = env.outside()
    result = extract_package(good, env.root, trusted=env.key.public)
    assert env.outside() == before
    assert isinstance(result, ExtractResult)
    assert result.metadata.name == "good" and result.signer.keyid == env.key.keyid
    r = env.root
    for entry in result.manifest.entries:
        p = r / entry.path
        st = p.lstat()
        assert st.st_mtime_ns == EPOCH_NS, entry.path
        if entry.type == "file":
            assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == entry.mode, entry.path
            assert sha256_bytes(p.read_bytes()) == entry.sha256 and st.st_size == entry.size
        elif entry.type == "dir":
            assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == entry.mode, entry.path
        elif entry.type == "symlink":
            assert os.readlink(p) == entry.target
    assert (r / "usr/bin/su").stat().st_mode & stat.S_ISUID
    assert (r / "usr/bin/tool").stat().st_ino == (r / "usr/bin/tool-hard").stat().st_ino
    assert (r / "usr/bin/tool").stat().st_nlink == 2
    assert (r / "usr/bin/tool-alias").read_bytes() == b"#!/bin/sh\necho tool\n"
    # the implied directories (not listed) exist with 0755 and the epoch
    for implied in ("opt", "opt/vendor"):
        st = (r / implied).lstat()
        assert stat.S_IMODE(st.st_mode) == 0o755 and st.st_mtime_ns == EPOCH_NS
    non_dirs = [e.path for e in result.manifest.entries if e.type != "dir"]
    assert list(result.files) == non_dirs
    assert set(result.dirs_created) == {"etc", "etc/tool.d", "opt", "opt/vendor", "srv", "usr", "usr/bin",
                                        "usr/lib"}
    assert result.bytes_written == sum(e.size for e in result.manifest.entries if e.type == "file")
    assert result.devices == ()
    assert sorted(os.listdir(r)) == ["etc", "opt", "srv", "usr"]


def test_same_package_into_two_roots_gives_identical_trees(env: Env, good: Path) -> None:
    other = env.tmp / "root2"
    other.mkdir()
    extract_package(good, env.root)
    extract_package(good, other)
    a, b = hostile.snapshot(env.root), hostile.snapshot(other)
    del a["."], b["."]
    assert a == b


def test_same_tree_whatever_the_umask(env: Env, good: Path) -> None:
    extract_package(good, env.root)
    other = env.tmp / "root2"
    other.mkdir()
    old = os.umask(0o077)
    try:
        extract_package(good, other)
    finally:
        os.umask(old)
    a, b = hostile.snapshot(env.root), hostile.snapshot(other)
    del a["."], b["."]
    assert a == b


def test_two_packages_sharing_usr(env: Env) -> None:
    one = env.package([directory("usr"), directory("usr/bin"), file("usr/bin/one", b"1", 0o755)], name="one")
    two = env.package([directory("usr"), directory("usr/bin"), file("usr/bin/two", b"2", 0o755),
                       directory("usr/share"), file("usr/share/two.txt", b"two")], name="two")
    r1 = extract_package(one, env.root)
    r2 = extract_package(two, env.root)
    assert r1.dirs_created == ("usr", "usr/bin")
    assert r2.dirs_created == ("usr/share",)
    assert sorted(os.listdir(env.root / "usr/bin")) == ["one", "two"]
    assert (env.root / "usr/share/two.txt").read_bytes() == b"two"
    assert (env.root / "usr/bin").lstat().st_mtime_ns == EPOCH_NS


def test_root_time_is_kept_when_the_package_adds_nothing_at_the_top(env: Env) -> None:
    (env.root / "usr").mkdir()
    os.utime(env.root, ns=(EPOCH_NS, EPOCH_NS + 7))
    extract_package(env.package([file("usr/x", b"x")]), env.root)
    assert env.root.lstat().st_mtime_ns == EPOCH_NS + 7


def test_real_built_package_with_trusted_and_wrong_key(hello_pkg: Built, keydir: Path, env: Env) -> None:
    before = env.everything()
    with pytest.raises(VerificationError, match="not by the trusted key"):
        extract_package(hello_pkg.path, env.root, trusted=load_public_key(keydir / "other.pub"))
    assert env.everything() == before
    result = extract_package(hello_pkg.path, env.root, trusted=load_public_key(keydir / "dev.pub"))
    assert (env.root / "usr/bin/hello").read_text() == "#!/bin/sh\necho hello\n"
    assert os.readlink(env.root / "etc/hello.d/abs") == "/etc/hello.conf"
    assert "usr/bin/hello" in result.files


@pytest.mark.parametrize("target", ["/", ".", "..", "/usr/lib/x", "../../../lib/x", "a/../b", "/../x"])
def test_symlink_targets(env: Env, target: str) -> None:
    """usr/lib/link -> target: allowed when it stays inside the root, lexically from usr/lib."""
    pkg = env.package([directory("usr"), directory("usr/lib"), symlink("usr/lib/link", target)])
    inside = posixpath.normpath(posixpath.join("/usr/lib", target)) if not target.startswith("/") else target
    if target in ("../../../lib/x", "/../x"):
        env.refused(pkg, UnsafeArchive, "usr/lib/link")
    else:
        assert not inside.startswith("/..")
        extract_package(pkg, env.root)
        assert os.readlink(env.root / "usr/lib/link") == target


# ---------------------------------------------------------------- conflicts and rollback


def test_refuses_to_overwrite_without_permission(env: Env, good: Path) -> None:
    extract_package(good, env.root)
    err = env.refused(good, FileConflict, "etc/tool.conf")
    assert "would overwrite an existing file" in str(err)
    assert not isinstance(err, UnsafeArchive)


def test_overwrite_replaces_files(env: Env) -> None:
    v1 = env.package([directory("etc"), file("etc/a", b"one"), symlink("etc/l", "a")], name="v1")
    v2 = env.package([directory("etc"), file("etc/a", b"two", 0o600), symlink("etc/l", "/etc/a")], name="v2")
    extract_package(v1, env.root)
    result = extract_package(v2, env.root, overwrite=True)
    assert (env.root / "etc/a").read_bytes() == b"two"
    assert stat.S_IMODE((env.root / "etc/a").stat().st_mode) == 0o600
    assert os.readlink(env.root / "etc/l") == "/etc/a"
    assert result.dirs_created == ()
    assert sorted(os.listdir(env.root / "etc")) == ["a", "l"]  # no backups left behind


@pytest.mark.parametrize("overwrite", [False, True])
def test_file_never_replaces_a_directory(env: Env, overwrite: bool) -> None:
    (env.root / "etc" / "a").mkdir(parents=True)
    err = env.refused(env.package([file("etc/a", b"x")]), FileConflict, "etc/a", overwrite=overwrite)
    assert "directory" in str(err)


def test_directory_never_replaces_a_file(env: Env) -> None:
    (env.root / "etc").mkdir()
    (env.root / "etc" / "a").write_bytes(b"x")
    env.refused(env.package([directory("etc"), directory("etc/a")]), FileConflict, "etc/a", overwrite=True)
    env.refused(env.package([file("etc/a/b", b"x")]), FileConflict, "etc/a/b", overwrite=True)


def test_conflict_is_caught_while_committing_even_without_the_plan(env: Env,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (env.root / "etc").mkdir()
    (env.root / "etc" / "b").write_bytes(b"mine")
    monkeypatch.setattr(extract._Committer, "_plan", lambda self, entries: set())
    pkg = env.package([directory("etc"), file("etc/a", b"a"), file("etc/b", b"theirs"), directory("usr"),
                       file("usr/c", b"c")])
    env.refused(pkg, FileConflict, "etc/b")
    assert (env.root / "etc" / "b").read_bytes() == b"mine"


def _populated(env: Env) -> Path:
    """A root holding a first package, and a second package that overwrites and adds files."""
    first = env.package([directory("usr"), directory("usr/bin"), file("usr/bin/a", b"old a", 0o755),
                         file("usr/bin/keep", b"keep")], name="first")
    extract_package(first, env.root)
    os.utime(env.root / "usr/bin", ns=(EPOCH_NS, EPOCH_NS - 5))  # so changed times would show
    return env.package([directory("opt"), file("opt/new", b"new"), directory("usr"), directory("usr/bin"),
                        file("usr/bin/a", b"new a", 0o700), hardlink("usr/bin/a2", "usr/bin/a"),
                        directory("usr/lib"), file("usr/lib/z", b"z"), symlink("usr/lib/zz", "z")], name="second")


def test_failure_while_committing_rolls_everything_back(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    second = _populated(env)
    real_replace = os.replace

    def failing_replace(src: Any, dst: Any, **kw: Any) -> None:
        if dst == "zz":  # the last member, after files were replaced and directories created
            raise OSError(errno.EIO, "injected I/O error")
        real_replace(src, dst, **kw)

    monkeypatch.setattr(os, "replace", failing_replace)
    before = env.everything()
    with pytest.raises(OSError, match="injected"):
        extract_package(second, env.root, overwrite=True)
    assert env.everything() == before
    assert (env.root / "usr/bin/a").read_bytes() == b"old a"


def test_failure_after_directory_modes_rolls_back(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    second = _populated(env)
    real_utime = os.utime
    calls = {"n": 0}

    def failing_utime(path: Any, *a: Any, **kw: Any) -> None:
        if isinstance(path, int) and stat.S_ISDIR(os.fstat(path).st_mode):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(errno.EIO, "injected utime error")
        real_utime(path, *a, **kw)

    monkeypatch.setattr(os, "utime", failing_utime)
    before = env.everything()
    with pytest.raises(OSError, match="injected"):
        extract_package(second, env.root, overwrite=True)
    monkeypatch.undo()
    assert env.everything() == before


@pytest.mark.parametrize("fail", [False, True], ids=["succeeds", "rolls-back"])
def test_overwrite_on_a_file_system_without_hard_links(env: Env, fail: bool,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Backups of replaced files are then kept beside them, and removed (or restored) at the end."""
    v1 = env.package([directory("etc"), file("etc/a", b"one"), file("etc/b", b"bee")], name="v1")
    v2 = env.package([directory("etc"), file("etc/a", b"two"), file("etc/b", b"BEE"), file("etc/c", b"c")],
                     name="v2")
    extract_package(v1, env.root)

    def no_links(*a: Any, **k: Any) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    if fail:
        real_replace = os.replace

        def failing_replace(src: Any, dst: Any, **kw: Any) -> None:
            if dst == "c":
                raise OSError(errno.ENOSPC, "injected: no space left")
            real_replace(src, dst, **kw)

        monkeypatch.setattr(os, "replace", failing_replace)
        before = env.everything()
        with pytest.raises(OSError, match="injected"):
            extract_package(v2, env.root, overwrite=True)
        assert env.everything() == before
        return
    extract_package(v2, env.root, overwrite=True)
    assert sorted(os.listdir(env.root / "etc")) == ["a", "b", "c"]
    assert (env.root / "etc/a").read_bytes() == b"two" and (env.root / "etc/b").read_bytes() == b"BEE"
    assert (env.root / "etc").lstat().st_mtime_ns == EPOCH_NS


def test_other_file_system_falls_back_to_copies(env: Env, good: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mount inside the root (rename gives EXDEV): the tree is the same, hard links still shared."""
    expected_root = env.tmp / "expected"
    expected_root.mkdir()
    extract_package(good, expected_root)
    real_replace = os.replace

    def cross_device(src: Any, dst: Any, *, src_dir_fd: int | None = None, dst_dir_fd: int | None = None) -> None:
        if src_dir_fd != dst_dir_fd:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    monkeypatch.setattr(os, "replace", cross_device)
    extract_package(good, env.root)
    a, b = hostile.snapshot(expected_root), hostile.snapshot(env.root)
    del a["."], b["."]
    assert a == b
    assert (env.root / "usr/bin/tool").stat().st_ino == (env.root / "usr/bin/tool-hard").stat().st_ino
    assert not [p for p in env.root.rglob("*") if p.name.startswith(".vpk-")]


def test_root_must_be_an_existing_directory(env: Env, good: Path) -> None:
    with pytest.raises(UserError):
        extract_package(good, env.tmp / "missing")
    (env.tmp / "afile").write_bytes(b"")
    with pytest.raises(UserError):
        extract_package(good, env.tmp / "afile")


# ---------------------------------------------------------------- properties of the name checks


_component = st.sampled_from(["a", "b", "..", ".", "", "usr", "c d", "\\", "é"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_component, min_size=1, max_size=6), st.booleans())
def test_accepted_paths_stay_inside(parts: list[str], absolute: bool) -> None:
    path = ("/" if absolute else "") + "/".join(parts)
    if extract.path_problem(path) is None:
        joined = posixpath.normpath(posixpath.join("/root", path))
        assert joined.startswith("/root/") and joined == "/root/" + path


@settings(max_examples=300, deadline=None)
@given(st.lists(_component.filter(bool), min_size=1, max_size=4), st.lists(_component, min_size=1, max_size=6),
       st.booleans())
def test_symlink_check_matches_lexical_resolution(link: list[str], target: list[str], absolute: bool) -> None:
    link_path = "/".join(p for p in link if p not in (".", ".."))
    if not link_path or extract.path_problem(link_path):
        return
    target_s = ("/" if absolute else "") + "/".join(target)
    why = extract.symlink_problem(link_path, target_s, lambda p: None)
    base = posixpath.dirname(link_path)
    depth, escapes = (0 if target_s.startswith("/") else len(base.split("/")) if base else 0), False
    for comp in target_s.split("/"):
        if comp == "..":
            depth -= 1
            escapes = escapes or depth < 0
        elif comp not in ("", "."):
            depth += 1
    assert (why is not None) == (escapes or not target_s)
