"""Locks of the sample profiles against the sample repository: deterministic, checked, explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.cli.main import main
from composer.errors import UserError
from composer.profile.load import load_profile
from composer.solve.lock import lock_path, open_sources, read_lock, resolve_profile, why
from composer.solve.resolve import ResolveError
from tests.integration.conftest import copy_profiles

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def profiles(sample_repo_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of profiles/ whose repository URL points at a freshly built sample repository."""
    return copy_profiles(sample_repo_base, tmp_path_factory.mktemp("lock"))


def test_lock_twice_identical_check_passes_then_fails(profiles: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("minimal",):   # server.yaml needs the Debian repository too: test_boot_server.py locks it
        prof = profiles / f"{name}.yaml"
        assert main(["lock", str(prof)]) == 0
        first = lock_path(prof).read_bytes()
        assert main(["lock", str(prof)]) == 0
        assert lock_path(prof).read_bytes() == first
        assert main(["lock", "--check", str(prof)]) == 0
    minimal = profiles / "minimal.yaml"
    minimal.write_text(minimal.read_text().replace("hostname: minimal", "hostname: minimal2"))
    capsys.readouterr()
    assert main(["lock", "--check", str(minimal)]) == 2
    assert "the profile changed since the lock was written" in capsys.readouterr().err


def test_lock_content_reasons_and_why(profiles: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prof = profiles / "minimal.yaml"
    main(["lock", str(prof)])
    lock = read_lock(lock_path(prof))
    assert lock is not None and set(lock.architectures) == {"x86_64", "aarch64", "riscv64"}
    pkgs = {p.name: p for p in lock.packages("aarch64")}
    assert pkgs["linux"].reason.text == "kernel" and pkgs["driver-virtio-blk"].reason.text == "driver for virtio-blk"
    assert pkgs["driver-virtio"].reason.text == "dependency of driver-virtio-blk"
    assert all(len(p.sha256) == 64 and p.repository == "sample" for p in pkgs.values())
    assert list(lock.trust_roots) == ["sample"] and len(lock.indexes["sample"]["x86_64"]) == 64
    assert why(lock, "driver-virtio", "x86_64") == [
        f"driver-virtio {pkgs['driver-virtio'].version}: dependency of driver-virtio-blk",
        f"driver-virtio-blk {pkgs['driver-virtio-blk'].version}: driver for virtio-blk"]
    capsys.readouterr()
    assert main(["why", "driver-virtio", "--profile", str(prof), "--arch", "aarch64"]) == 0
    assert "<- driver-virtio-blk" in capsys.readouterr().out
    with pytest.raises(UserError, match="'nano' is not in the lock"):
        why(lock, "nano", "x86_64")


def _variant(profiles: Path, name: str, old: str, new: str) -> Path:
    p = profiles / f"{name}.yaml"
    p.write_text((profiles / "minimal.yaml").read_text().replace(old, new))
    return p


def test_unknown_package_capability_and_unsatisfiable(profiles: Path, tmp_path: Path) -> None:
    def resolve(p: Path) -> None:
        prof = load_profile(p)
        resolve_profile(prof, open_sources(prof, tmp_path / "cache"))
    with pytest.raises(ResolveError, match="no package 'busybx'.*did you mean 'busybox'"):
        resolve(_variant(profiles, "typo", "  - busybox\n", "  - busybx\n"))
    capability = "'busybox-net' .* requires capability 'network'.*busybox-net \\(requested\\)"
    with pytest.raises(ResolveError, match=capability):
        resolve(_variant(profiles, "nocap", "  - busybox\n", "  - busybox\n  - busybox-net\n"))
    with pytest.raises(ResolveError, match="no version of 'linux'.*matches '=1.0.0'"):
        resolve(_variant(profiles, "badver", "  - init\n", "  - init\n  - name: linux\n    version: '=1.0.0'\n"))
    with pytest.raises(ResolveError, match="no package provides driver 'floppy'"):
        resolve(_variant(profiles, "nodrv", "drivers: [virtio-blk", "drivers: [floppy, virtio-blk"))


def test_nothing_is_written_when_resolution_fails(profiles: Path) -> None:
    p = _variant(profiles, "fails", "  - busybox\n", "  - busybx\n")
    assert main(["lock", str(p)]) == 1
    assert not lock_path(p).exists()


def test_a_repository_that_moved_fails_check_and_relock_says_what_moved(
        profiles: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    prof = profiles / "minimal.yaml"
    assert main(["lock", str(prof)]) == 0
    target = lock_path(prof)
    doc = json.loads(target.read_text())
    busybox = next(p for p in doc["architectures"]["aarch64"] if p["name"] == "busybox")
    busybox["sha256"] = "ab" * 32  # as if the repository had rebuilt busybox since the lock was written
    doc["indexes"]["sample"]["aarch64"] = "cd" * 32
    target.write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["lock", "--check", str(prof)]) == 2
    err = capsys.readouterr().err
    assert f"aarch64: busybox {busybox['version']} (sha256 abababababab) is no longer in the repositories" in err
    assert main(["lock", str(prof)]) == 0
    out = capsys.readouterr().out
    assert "aarch64: repository 'sample' published a new index (cdcdcdcdcdcd -> " in out
    assert f"aarch64: ~ busybox {busybox['version']} rebuilt in the repository (sha256 abababababab -> " in out
    assert main(["lock", "--check", str(prof)]) == 0


def test_diff_locks_names_each_kind_of_change() -> None:
    from composer.solve.lock import diff_locks
    from composer.solve.lockmodel import Lock

    def lock(**pkgs: tuple[str, str]) -> Lock:
        return Lock.from_dict({"format": 1, "profile": "p", "inputs": "", "trust-roots": {}, "indexes": {},
                               "architectures": {"x86_64": [
                                   {"name": n, "version": v, "arch": "x86_64", "sha256": h * 64, "size": 1,
                                    "repository": "r", "signer": "s", "reason": "requested", "license": "MIT",
                                    "capabilities": []} for n, (v, h) in pkgs.items()]}}, "test.lock")

    old = lock(a=("1.0.0", "a"), b=("2.0.0", "b"), c=("1.0.0", "c"), d=("1.0.0", "d"))
    new = lock(a=("1.1.0", "a"), b=("1.9.0", "b"), c=("1.0.0", "e"), e=("0.1.0", "f"))
    assert diff_locks(old, new) == [
        "x86_64: ~ a 1.0.0 -> 1.1.0 (upgraded; requested)",
        "x86_64: ~ b 2.0.0 -> 1.9.0 (downgraded; requested)",
        "x86_64: ~ c 1.0.0 rebuilt in the repository (sha256 cccccccccccc -> eeeeeeeeeeee)",
        "x86_64: - d 1.0.0 (was: requested)",
        "x86_64: + e 0.1.0 (requested)"]
    assert diff_locks(new, new) == []


def test_committed_locks_match_their_profiles_and_a_relock_passes_the_build_check(sample_repo_base: Path,
                                                                                  tmp_path: Path) -> None:
    """profiles/*.lock are current for their profiles (the profile digest); the sample repository is rebuilt
    from a moving Debian archive, so `vcomp lock` (as `make demo` does) relocks, and the result passes the
    check `vcomp build` makes; a hand edit after that does not."""
    import shutil
    from dataclasses import replace

    from composer.solve.lockcheck import LockMismatch, check_lock
    from composer.solve.lockmodel import Reason, lock_bytes
    from tests.conftest import REPO
    profiles = copy_profiles(sample_repo_base, tmp_path)
    for name in ("minimal",):   # the committed server.lock: test_boot_server.py (marker server)
        shutil.copy(REPO / "profiles" / f"{name}.lock", profiles / f"{name}.lock")
        prof = load_profile(profiles / f"{name}.yaml")
        committed = read_lock(lock_path(prof.path))
        assert committed is not None and committed.inputs == prof.digest, f"relock profiles/{name}.yaml"
        assert main(["lock", str(prof.path)]) == 0
        lock = read_lock(lock_path(prof.path))
        assert lock is not None
        sources = open_sources(prof, tmp_path / "cache")
        check_lock(prof, lock, sources, lock_path(prof.path))
        rows = lock.packages("x86_64")
        lock = replace(lock, architectures={**lock.architectures, "x86_64": (
            replace(rows[0], reason=Reason.dependency_of("busybox")), *rows[1:])})
        lock_path(prof.path).write_bytes(lock_bytes(lock))
        with pytest.raises(LockMismatch, match=r"\$\.architectures\.x86_64\[0\]\.reason"):
            check_lock(prof, lock, sources, lock_path(prof.path))


def test_the_sample_kernel_revisions_order_and_a_held_older_build_moves_up(profiles: Path, tmp_path: Path) -> None:
    """The sample repository serves two Debian builds of the kernel and its drivers (composer/repo/sample.py):
    the lock takes the newer revision, and a lock that held the older one moves up as an upgrade (make demo)."""
    from composer.solve.lock import diff_locks
    from composer.version import FullVersion

    prof = load_profile(profiles / "minimal.yaml")
    sources = open_sources(prof, tmp_path / "cache")
    fresh = resolve_profile(prof, sources)
    keep: dict[str, dict[str, str]] = {}
    for arch in prof.architectures:
        index = sources.index(arch)
        texts = {e.version_text for e in (index.entry(s.id) for s in index.named("linux")) if e.name == "linux"}
        served = sorted(texts, key=lambda v: FullVersion.parse(v, "deb"))
        if len(served) < 2:
            pytest.skip("the Debian archive no longer has the previous kernel build: one revision served")
        linux = fresh.package(arch, "linux")
        assert linux is not None and linux.version == served[-1] and linux.version_scheme == "deb"
        keep[arch] = {p.name: served[-2] for p in fresh.packages(arch) if p.version == linux.version}
        assert {"linux", "driver-virtio", "driver-virtio-blk"} <= set(keep[arch])
    held = resolve_profile(prof, sources, keep)
    for arch, kept in keep.items():
        rows = {p.name: p for p in held.packages(arch)}
        assert all(rows[n].version == v and rows[n].held for n, v in kept.items())  # every driver with its kernel
    lines = diff_locks(held, fresh)
    older, newer = keep["x86_64"]["linux"], fresh.package("x86_64", "linux").version  # type: ignore[union-attr]
    assert f"x86_64: ~ linux {older} -> {newer} (upgraded; kernel)" in lines
    assert not any("same precedence" in line or "downgraded" in line for line in lines)
