"""The image cache store, eviction policy, `vcomp cache` and the generation layout of images/NAME.

Real files, real locks held by real child processes, real renameat2: no mocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from composer.cachekinds import CacheKind, Entry
from composer.caches import ops, policy, store
from composer.caches.images import ImageOutputs, kind_dir
from composer.caches.registry import KINDS
from composer.cli.main import main
from composer.compose import layout
from composer.errors import LockBusy, UserError

KEY_A, KEY_B, KEY_C = "a" * 64, "b" * 64, "c" * 64


def _files(d: Path, **named: bytes) -> list[Path]:
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for name, data in named.items():
        (d / name.replace("_", ".")).write_bytes(data)
        out.append(d / name.replace("_", "."))
    return out


def _put(root: Path, key: str, tmp: Path, **named: bytes) -> Path:
    store.write(kind_dir(root), key, _files(tmp / key[:4], **named), {"name": "x", "type": "rootfs",
                                                                     "firmware": [], "boot": {}})
    return kind_dir(root) / key


# ---------------------------------------------------------------- the store


def test_an_entry_round_trips_and_every_file_is_checked_when_read(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    entry = _put(root, KEY_A, tmp_path, out_tar=b"T" * 5000, contents_json=b'{"busybox": 1}')
    dest = tmp_path / "dest"
    dest.mkdir()
    said: list[str] = []
    record = store.read(kind_dir(root), KEY_A, dest, say=said.append)
    assert record is not None and [f["path"] for f in record["files"]] == ["out.tar", "contents.json"]
    assert (dest / "out.tar").read_bytes() == b"T" * 5000 and not said
    # the case: contents.json emptied on disk is no longer copied unnoticed
    (entry / "contents.json").write_bytes(b"")
    (dest / "contents.json").unlink()
    assert store.read(kind_dir(root), KEY_A, dest, say=said.append) is None
    assert len(said) == 1 and "contents.json" in said[0] and "removed" in said[0]
    assert not entry.exists(), "a damaged entry is removed"
    assert not (dest / "out.tar").exists() and not (dest / "contents.json").exists(), "partial copies are undone"


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "record", "symlink"])
def test_verify_names_the_damaged_file(tmp_path: Path, damage: str) -> None:
    root = tmp_path / "cache"
    entry = _put(root, KEY_A, tmp_path, a_bin=b"A" * 100, b_bin=b"B" * 100)
    target = entry / "b.bin"
    if damage == "flip":
        target.write_bytes(b"B" * 99 + b"X")
    elif damage == "truncate":
        target.write_bytes(b"B" * 10)
    elif damage == "delete":
        target.unlink()
    elif damage == "symlink":
        target.unlink()
        target.symlink_to(entry / "a.bin")
    else:
        (entry / store.RECORD).write_text("{")
    (found,) = ImageOutputs().entries(root)
    problems = ImageOutputs().verify(root, found)
    assert problems and all(str(entry) in p for p in problems)
    assert ("product.json" if damage == "record" else "b.bin") in problems[0]


def test_an_intact_entry_is_kept_and_a_damaged_one_replaced_by_the_next_writer(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    entry = _put(root, KEY_A, tmp_path, a_bin=b"one")
    ino = entry.stat().st_ino
    _put(root, KEY_A, tmp_path, a_bin=b"one")
    assert entry.stat().st_ino == ino
    (entry / "a.bin").write_bytes(b"bad")
    _put(root, KEY_A, tmp_path, a_bin=b"one")
    assert store.problems(entry) == [] and (entry / "a.bin").read_bytes() == b"one"
    assert [p.name for p in kind_dir(root).iterdir() if p.name.startswith(".") and p.name != store.LOCKS] == []


def test_a_killed_writer_leaves_no_entry_and_its_temporary_directory_is_swept(tmp_path: Path) -> None:
    d = kind_dir(tmp_path / "cache")
    d.mkdir(parents=True)
    partial = d / f"{store.TEMP_PREFIX}{KEY_A}-xyz"
    partial.mkdir()
    (partial / "out.tar").write_bytes(b"half")
    trash = d / f"{store.TRASH_PREFIX}{KEY_B}-1-2"
    trash.mkdir()
    assert ImageOutputs().entries(tmp_path / "cache") == []
    assert store.read(d, KEY_A, tmp_path, say=print) is None
    assert store.sweep_leftovers(d) == 1 and not trash.exists() and partial.exists(), "a fresh temp may be in use"
    assert store.sweep_leftovers(d, now=time.time() + 2 * store.STALE_TEMP_SECONDS) == 1 and not partial.exists()


def test_a_second_writer_of_the_same_entry_waits_for_the_first(tmp_path: Path,
                                                              capfd: pytest.CaptureFixture[str]) -> None:
    d = kind_dir(tmp_path / "cache")
    d.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom composer.caches import store\n"
         f"with store.entry_lock(Path({str(d)!r}), {KEY_A!r}):\n    print('held', flush=True)\n    time.sleep(1.5)\n"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    start = time.monotonic()
    _put(tmp_path / "cache", KEY_A, tmp_path, a_bin=b"x")
    waited = time.monotonic() - start
    holder.wait()
    assert waited > 0.5
    assert f"waiting for the lock on cache entry images/{KEY_A[:16]} held by PID {holder.pid}" in capfd.readouterr().err


def test_a_cache_that_cannot_be_written_raises_os_error_and_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    root.write_bytes(b"a file where the cache should be")
    with pytest.raises(OSError):
        _put(root, KEY_A, tmp_path, a_bin=b"x")


# ---------------------------------------------------------------- policy


def _e(key: str, size: int, used: float, kind: str = "images") -> Entry:
    return Entry(kind=kind, key=key, path=Path(key), size=size, last_used=used)


@pytest.mark.parametrize(("text", "size"), [("2G", 2 << 30), ("500M", 500 << 20), ("1.5GiB", 3 << 29),
                                            ("4096", 4096), ("10k", 10240), ("1 TB", 1 << 40)])
def test_sizes_as_people_write_them(text: str, size: int) -> None:
    assert policy.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "G", "-1G", "2X", "1e9"])
def test_a_bad_size_is_a_user_error_naming_it(text: str) -> None:
    with pytest.raises(UserError, match="--max-size"):
        policy.parse_size(text, where="--max-size")


def test_eviction_is_least_recently_used_first() -> None:
    entries = [_e("old", 100, 1), _e("mid", 100, 2), _e("new", 100, 3), _e("pkg", 100, 0.5, "packages")]
    assert [e.key for e in policy.evictions(entries, max_size=250)] == ["pkg", "old"]
    assert [e.key for e in policy.evictions(entries, keep_last=1)] == ["old", "mid"], "keep-last is per kind"
    assert policy.evictions(entries, max_size=10_000) == []
    assert [e.key for e in policy.evictions(entries, keep_last=2, max_size=150)] == ["pkg", "old", "mid"]


# ---------------------------------------------------------------- the registry and `vcomp cache`


def test_every_registered_kind_implements_the_protocol() -> None:
    assert len({k.name for k in KINDS}) == len(KINDS) and "images" in {k.name for k in KINDS}
    for kind in KINDS:
        assert isinstance(kind.name, str)
        _k: CacheKind = kind
        assert callable(_k.entries) and callable(_k.verify) and callable(_k.remove)


def test_cache_verify_and_gc_from_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "cache"
    monkeypatch.setenv("VCOMP_CACHE", str(root))
    a = _put(root, KEY_A, tmp_path, a_bin=b"A" * 3000)
    b = _put(root, KEY_B, tmp_path, b_bin=b"B" * 3000)
    c = _put(root, KEY_C, tmp_path, c_bin=b"C" * 3000)
    for i, entry in enumerate((a, b, c)):
        os.utime(entry, (1000 + i, 1000 + i))
    assert main(["cache", "verify"]) == 0
    assert "3 cache entries checked: all intact" in capsys.readouterr().out
    (b / "b.bin").write_bytes(b"")
    assert main(["cache", "verify"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if line.startswith("images ")] == [
        f"images {KEY_B}: {b / 'b.bin'}: 0 bytes, recorded 3000"]
    assert main(["cache", "gc", "--bad", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bad_removed"] == 1 and not b.exists()
    assert main(["cache", "gc", "--max-size", "4K", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in report["removed"]] == [KEY_A] and c.exists() and not a.exists()
    assert main(["cache", "du", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kinds"]["images"]["entries"] == 1
    assert main(["cache", "gc", "--max-size", "lots"]) == 1
    assert "--max-size: 'lots' is not a size" in capsys.readouterr().err


def test_the_automatic_cap_reads_vcomp_cache_max(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cache"
    for i, key in enumerate((KEY_A, KEY_B, KEY_C)):
        os.utime(_put(root, key, tmp_path, x_bin=bytes(2000)), (10 + i, 10 + i))
    monkeypatch.setenv(ops.MAX_ENV, "5K")
    done = ops.collect(KINDS, root, max_size=ops.cap_from_env())
    assert [e.key for e in done.removed] == [KEY_A] and len(done.kept) == 2
    monkeypatch.setenv(ops.MAX_ENV, "much")
    with pytest.raises(UserError, match=ops.MAX_ENV):
        ops.cap_from_env()


# ---------------------------------------------------------------- images/NAME: generations


def _gen(top: Path, **arches: bytes) -> Path:
    gen = layout.new_generation(top)
    for arch, data in arches.items():
        (gen / arch).mkdir()
        (gen / arch / layout.MANIFEST).write_bytes(data)
    return gen


def _seen(top: Path) -> dict[str, bytes]:
    return {a: (top / a / layout.MANIFEST).read_bytes() for a in layout.built_arches(top)}


def test_a_switch_changes_every_architecture_at_once_and_drops_the_old_generation(tmp_path: Path) -> None:
    top = tmp_path / "images" / "p"
    top.mkdir(parents=True)
    layout.switch(top, _gen(top, x86_64=b"1x", aarch64=b"1a"))
    assert _seen(top) == {"x86_64": b"1x", "aarch64": b"1a"}
    gen2 = _gen(top, x86_64=b"2x", aarch64=b"2a")
    assert _seen(top) == {"x86_64": b"1x", "aarch64": b"1a"}, "an unfinished generation is invisible"
    layout.switch(top, gen2)
    assert _seen(top) == {"x86_64": b"2x", "aarch64": b"2a"}
    assert [g.name for g in (top / layout.GENS).iterdir()] == [gen2.name]
    assert os.readlink(top / "x86_64") == "current/x86_64"


def test_leftovers_of_killed_builds_are_cleaned_by_the_next_one(tmp_path: Path) -> None:
    top = tmp_path / "p"
    top.mkdir()
    layout.switch(top, _gen(top, x86_64=b"1"))
    abandoned = _gen(top, x86_64=b"half")                 # a build killed before its switch
    (top / ".x86_64.staging-123").mkdir()                  # the format before generations
    (top / ".aarch64.old-77").mkdir()                      # killed between the two renames of the old swap
    (top / ".aarch64.old-77" / layout.MANIFEST).write_bytes(b"old a")
    (top / ".x86_64.link-9").symlink_to("current/x86_64")
    layout.recover(top)
    assert not abandoned.exists() and not (top / ".x86_64.staging-123").exists()
    assert not (top / ".x86_64.link-9").is_symlink()
    assert _seen(top) == {"aarch64": b"old a", "x86_64": b"1"}, "the only copy of the old outputs is put back"


def test_a_directory_of_the_old_layout_is_replaced_without_a_moment_missing(tmp_path: Path) -> None:
    top = tmp_path / "p"
    (top / "x86_64").mkdir(parents=True)
    (top / "x86_64" / layout.MANIFEST).write_bytes(b"legacy")
    (top / "current").mkdir()                              # a copied tree (cp -r follows the symlinks)
    gen = _gen(top, x86_64=b"new")
    layout.switch(top, gen)
    assert (top / "x86_64").is_symlink() and (top / "current").is_symlink()
    assert _seen(top) == {"x86_64": b"new"}
    assert sorted(p.name for p in top.iterdir()) == [".gen", "current", "x86_64"]


def test_the_old_layout_is_adopted_with_the_same_outputs_before_the_one_step_switch(tmp_path: Path) -> None:
    top = tmp_path / "p"
    for arch in ("x86_64", "aarch64"):
        (top / arch).mkdir(parents=True)
        (top / arch / layout.MANIFEST).write_bytes(f"old {arch}".encode())
    before = _seen(top)
    layout.adopt(top)
    assert _seen(top) == before, "adopting changes no content"
    assert all(os.readlink(top / a) == f"current/{a}" for a in ("x86_64", "aarch64"))
    assert len(list((top / layout.GENS).iterdir())) == 1
    gen = _gen(top, x86_64=b"new x", aarch64=b"new a")
    assert _seen(top) == before
    layout.switch(top, gen)
    assert _seen(top) == {"x86_64": b"new x", "aarch64": b"new a"}


def test_exchange_swaps_two_names(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").symlink_to("a")
    layout.exchange(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_dir() and not (tmp_path / "b").is_symlink()


def test_two_holders_of_the_images_lock_take_turns(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    images = tmp_path / "images"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom composer.compose import layout\n"
         f"with layout.locked(Path({str(images)!r}), 'p'):\n    print('held', flush=True)\n    time.sleep(30)\n"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("VCOMP_NO_WAIT", "1")
        with pytest.raises(LockBusy, match=f"images directory {images / 'p'} is locked by PID {holder.pid}"), \
                layout.locked(images, "p"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with layout.locked(images, "p") as top:               # a dead holder's lock is simply taken over
        assert top == images / "p"


# ---------------------------------------------------------------- build --output: the outputs kept


def _manifest(previous: Path, outputs: list[dict[str, object]]) -> None:
    previous.mkdir(parents=True, exist_ok=True)
    (previous / "manifest.json").write_text(json.dumps({"inputs": "i1", "profile-digest": "p1", "lock-digest": "l1",
                                                        "outputs": outputs}))


def test_the_outputs_not_rebuilt_are_kept_with_their_inputs_and_boot_logs(tmp_path: Path) -> None:
    from composer.compose.build import carry_outputs
    from composer.fsutil import sha256_bytes
    previous, staging = tmp_path / "prev", tmp_path / "new"
    staging.mkdir()
    _manifest(previous, [{"name": "iso", "type": "iso", "firmware": ["bios"], "boot": {"media": "cdrom"},
                          "files": [{"path": "iso.iso", "sha256": sha256_bytes(b"ISO"), "size": 3}]},
                         {"name": "disk", "type": "disk", "firmware": [], "boot": {},
                          "files": [{"path": "disk.qcow2", "sha256": sha256_bytes(b"DISK"), "size": 4}]}])
    (previous / "iso.iso").write_bytes(b"ISO")
    (previous / "disk.qcow2").write_bytes(b"DISK, booted since")
    (previous / "boot").mkdir()
    (previous / "boot" / "x86_64-iso-bios.log").write_text("ready")
    (previous / "boot" / "x86_64-disk-uefi.log").write_text("other")
    kept = carry_outputs(previous, staging, ["rootfs"])
    assert kept["iso"][1] == {"inputs": "i1", "profile-digest": "p1", "lock-digest": "l1"}
    assert kept["disk"][1]["note"] == "changed on disk since it was built"
    assert (staging / "iso.iso").read_bytes() == b"ISO" and (staging / "boot" / "x86_64-iso-bios.log").is_file()
    assert carry_outputs(previous, tmp_path / "other", ["iso", "disk"]) == {}


@pytest.mark.parametrize("files", [[{"path": "../../etc/passwd", "sha256": "0" * 64}], [], "x",
                                   [{"path": "gone.iso", "sha256": "0" * 64}], [{"nopath": 1}]])
def test_a_malformed_previous_manifest_keeps_nothing_and_says_so(tmp_path: Path, files: object,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from composer.compose.build import carry_outputs
    previous, staging = tmp_path / "prev", tmp_path / "new"
    staging.mkdir()
    _manifest(previous, [{"name": "iso", "type": "iso", "firmware": [], "boot": {}, "files": files}])
    assert carry_outputs(previous, staging, ["rootfs"]) == {}
    assert "output 'iso' cannot be kept" in capsys.readouterr().err
    assert list(staging.iterdir()) == []
