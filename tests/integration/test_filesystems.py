"""The image parts are reproducible: one tree, made twice in two places at different times under different
umasks, gives the same bytes for every output (ext4, EROFS, SquashFS, tar, FAT, a GPT disk, its qcow2),
and each output reads back with the tools' own checkers: all owned by 0:0, all dated the epoch.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from composer import fsutil
from composer.errors import UserError
from composer.image.formats import fat, fs, gpt
from composer.run import run

pytestmark = pytest.mark.integration

EPOCH = 1700000000
FS_UUID = uuid.UUID("8e3b2c1d-5f4a-5b6c-8d7e-9f0a1b2c3d4e")
NAME = "etc/ünïcødé name"
# path -> (mode, content): None for a directory; "-> target" for a symlink; "= path" for a hard link
TREE: dict[str, tuple[int, str | bytes | None]] = {
    "": (0o755, None),
    "etc": (0o755, None),
    "etc/hostname": (0o644, "veridian\n"),
    "etc/hosts-link": (0o644, "= etc/hostname"),
    NAME: (0o600, "ü\n"),
    "usr": (0o755, None),
    "usr/bin": (0o755, None),
    "usr/bin/sh": (0o777, "-> tool"),
    "usr/bin/tool": (0o4755, b"#!/bin/sh\necho tool\n" + bytes(range(256)) * 400),
    "var": (0o755, None),
    "var/empty": (0o700, None),
}
FILES = sorted(p for p, (_m, c) in TREE.items() if p and not (isinstance(c, str) and c.startswith("-> ")))
OUTPUTS = ("root.ext4", "root.erofs", "root.squashfs", "root.tar", "esp.fat", "disk.raw", "disk.qcow2")


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def make_tree(root: Path, mtime: int, owner: int = -1) -> None:
    """TREE under ``root``, modes set explicitly (so the umask only affects what the builders do), times ``mtime``.

    ``owner``: a uid and gid for every entry (as root, to check that the builders reset them to 0:0)."""
    for rel, (_mode, content) in TREE.items():
        path = root / rel
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        elif isinstance(content, str) and content.startswith("-> "):
            path.symlink_to(content[3:])
        elif isinstance(content, str) and content.startswith("= "):
            os.link(root / content[2:], path)
        else:
            path.write_bytes(content.encode() if isinstance(content, str) else content)
    for rel, (mode, content) in sorted(TREE.items(), reverse=True):
        os.lchown(root / rel, owner, owner)
        if not (isinstance(content, str) and content.startswith("-> ")):
            os.chmod(root / rel, mode)  # after lchown, which clears the set-uid bit
        os.utime(root / rel, (mtime, mtime), follow_symlinks=False)


def build_all(base: Path, mtime: int, umask: int, owner: int = -1) -> dict[str, Path]:
    """Every output of the tree made under ``base``, the builders run under ``umask`` with ``base`` as the cwd."""
    root, out = base / "tree" / "root", base / "out"
    cwd = os.getcwd()
    with _umask(umask):
        make_tree(root, mtime, owner)
        os.chdir(base)
        try:
            fs.make_ext4(root, out / "root.ext4", epoch=EPOCH, label="veridian-root", fs_uuid=FS_UUID)
            fs.make_erofs(root, out / "root.erofs", epoch=EPOCH, fs_uuid=FS_UUID)
            fs.make_squashfs(root, out / "root.squashfs", epoch=EPOCH)
            fs.make_tar(root, out / "root.tar", epoch=EPOCH)
            fat.make_fat(out / "esp.fat", {"EFI/BOOT/BOOTX64.EFI": root / "usr/bin/tool",
                                           "loader/entries/veridian.conf": root / "etc/hostname",
                                           "loader/loader.conf": root / NAME},
                         epoch=EPOCH, volume_id=0x5EED1234)
            parts = [gpt.Partition(name="ESP", type_guid=gpt.ESP_TYPE, guid=uuid.UUID(int=1), image=out / "esp.fat"),
                     gpt.Partition(name="root", type_guid=gpt.ROOT_TYPES["x86_64"], guid=uuid.UUID(int=2),
                                   image=out / "root.ext4")]
            gpt.write_gpt(out / "disk.raw", parts, disk_guid=uuid.UUID(int=3))
            fs.to_qcow2(out / "disk.raw", out / "disk.qcow2")
        finally:
            os.chdir(cwd)
    return {name: out / name for name in OUTPUTS}


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict[str, Path]]:
    first = build_all(tmp_path_factory.mktemp("first"), mtime=1500000000, umask=0o022)
    second = build_all(tmp_path_factory.mktemp("second") / "deeper", mtime=1800000123, umask=0o077,
                       owner=4242 if os.geteuid() == 0 else -1)
    return first, second


@pytest.fixture(scope="module")
def out(builds: tuple[dict[str, Path], dict[str, Path]]) -> dict[str, Path]:
    return builds[0]


@pytest.mark.parametrize("name", OUTPUTS)
def test_identical_bytes(builds: tuple[dict[str, Path], dict[str, Path]], name: str) -> None:
    first, second = builds
    assert first[name].read_bytes() == second[name].read_bytes()
    assert first[name].stat().st_mode & 0o777 == second[name].stat().st_mode & 0o777 == 0o644
    assert not [p for p in first[name].parent.iterdir() if p.name.startswith(".")]  # no temporary left behind


def _stat(image: Path, path: str) -> str:
    return run(["debugfs", "-R", f'stat "/{path}"', image]).stdout.decode()


def test_ext4(out: dict[str, Path]) -> None:
    image = out["root.ext4"]
    assert image.stat().st_size == fs.EXT4_MIN_MIB << 20  # a small tree gets the minimum size
    run(["e2fsck", "-fn", image])
    listing = run(["debugfs", "-R", "ls -p /etc", image]).stdout.decode()
    assert {"hostname", "hosts-link"} <= {line.split("/")[5] for line in listing.splitlines() if line.count("/") > 5}
    for path in ["", *FILES, "usr/bin/sh", "lost+found"]:
        st = _stat(image, path)
        assert re.search(r"User:\s+0\s+Group:\s+0", st), (path, st)
        for field in ("ctime", "atime", "mtime", "crtime"):
            assert re.search(rf"{field}: 0x{EPOCH:08x}:00000000", st), (path, field, st)
    assert "Mode:  04755" in _stat(image, "usr/bin/tool") and "Links: 2" in _stat(image, "etc/hostname")
    assert "Type: symlink" in _stat(image, "usr/bin/sh") and "Mode:  0700" in _stat(image, "var/empty")
    super_ = run(["dumpe2fs", "-h", image]).stdout.decode() if shutil.which("dumpe2fs") else ""
    if super_:
        assert f"Filesystem UUID:          {FS_UUID}" in super_ and "veridian-root" in super_


def test_squashfs(out: dict[str, Path]) -> None:
    listing = run(["unsquashfs", "-lln", "-d", "", out["root.squashfs"]]).stdout.decode()
    lines = [re.fullmatch(r"(\S+) (\d+/\d+) +\d+ (\S+ \S+) /?(.*)", line) for line in listing.splitlines()]
    entries = {m[4].split(" -> ")[0]: (m[1], m[2], m[3]) for m in lines if m}
    assert sorted(entries) == sorted(TREE)
    assert {(owner, time) for _mode, owner, time in entries.values()} == {("0/0", "2023-11-14 22:13")}
    assert entries["usr/bin/tool"][0] == "-rwsr-xr-x" and entries["usr/bin/sh"][0].startswith("l")


def test_erofs(out: dict[str, Path], tmp_path: Path) -> None:
    image = out["root.erofs"]
    if shutil.which("fsck.erofs"):
        run(["fsck.erofs", f"--extract={tmp_path / 'x'}", image])
        assert (tmp_path / "x" / NAME).read_text() == "ü\n" and os.readlink(tmp_path / "x/usr/bin/sh") == "tool"
    listing = run(["dump.erofs", "--ls", "--path=/etc", image]).stdout.decode()
    rows = listing.split("FILENAME\n", 1)[1].splitlines()
    nids = {name: nid for nid, _type, name in (line.split(None, 2) for line in rows)}
    assert sorted(nids) == [".", "..", "hostname", "hosts-link", NAME.split("/")[1]]
    assert nids["hostname"] == nids["hosts-link"]  # one inode: the hard link (fsck.erofs --extract copies it twice)
    tool = run(["dump.erofs", "--path=/usr/bin/tool", image]).stdout.decode()
    assert "Uid: 0   Gid: 0" in tool and "Timestamp: 2023-11-14 22:13:20.000000000" in tool
    # dump.erofs 1.5 shows the mode without set-id bits: read the inode (compact, 32 bytes per NID unit)
    data = image.read_bytes()
    meta_blkaddr = int.from_bytes(data[1024 + 40:1024 + 44], "little")
    found = re.search(r"NID: (\d+)", tool)
    assert found
    nid = int(found[1])
    offset = meta_blkaddr * 4096 + nid * 32
    assert int.from_bytes(data[offset + 4:offset + 6], "little") == 0o104755


def test_tar(out: dict[str, Path]) -> None:
    with tarfile.open(out["root.tar"]) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["."] + ["./" + p for p in TREE if p]  # TREE is in depth-first byte order
    assert all((m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "root", "root", EPOCH) for m in members)
    by_name = {m.name: m for m in members}
    assert by_name["./etc/hosts-link"].islnk() and by_name["./etc/hosts-link"].linkname == "./etc/hostname"
    assert by_name["./usr/bin/sh"].issym() and by_name["./usr/bin/sh"].linkname == "tool"
    assert by_name["./usr/bin/tool"].mode == 0o4755 and by_name["./var/empty"].isdir()
    assert not any(m.pax_headers.keys() - {"path"} for m in members)


def test_fat(out: dict[str, Path]) -> None:
    image = out["esp.fat"]
    run(["fsck.fat", "-n", image])
    env = {"MTOOLS_SKIP_CHECK": "1", "TZ": "UTC"}
    listing = run(["mdir", "-/", "-i", image, "::"], env=env).stdout.decode()
    assert "BOOTX64  EFI    102420 2023-11-14  22:13" in listing and "loader.conf" in listing
    assert "veridian.conf" in listing and "Serial Number is 5EED-1234" in listing
    assert set(re.findall(r"\d{4}-\d\d-\d\d +\d\d:\d\d", listing)) == {"2023-11-14  22:13"}
    data = run(["mcopy", "-n", "-i", image, "::/EFI/BOOT/BOOTX64.EFI", "-"], env=env).stdout
    assert data == (TREE["usr/bin/tool"][1])


@pytest.mark.parametrize(("size_mib", "bits"), [(None, 12), (16, 16), (33, 32)])
def test_fat_type_follows_size(tmp_path: Path, size_mib: int | None, bits: int) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x")
    img = tmp_path / "esp.fat"
    fat.make_fat(img, {"a": src}, epoch=EPOCH, volume_id=1, size_mib=size_mib)
    boot = img.read_bytes()[:512]
    kind = boot[82:90] if bits == 32 else boot[54:62]
    assert kind == f"FAT{bits}".ljust(8).encode()
    assert img.stat().st_size == (size_mib or fat.MIN_MIB) << 20
    run(["fsck.fat", "-n", img])


def test_disk(out: dict[str, Path]) -> None:
    table = gpt.read_table(out["disk.raw"])
    data = out["disk.raw"].read_bytes()
    for entry, name in zip(table.entries, ("esp.fat", "root.ext4"), strict=True):
        image = out[name].read_bytes()
        assert data[entry.offset:entry.offset + len(image)] == image
    assert [e.name for e in table.entries] == ["ESP", "root"]
    compare = run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", out["disk.raw"], out["disk.qcow2"]])
    assert b"identical" in compare.stdout
    run(["qemu-img", "check", "-f", "qcow2", out["disk.qcow2"]])


def _fails_cleanly(tmp_path: Path, make: Callable[[Path], None], match: str) -> None:
    target = tmp_path / "out" / "image"
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(b"previous")
    with pytest.raises(UserError, match=match):
        make(target)
    assert target.read_bytes() == b"previous" and [p.name for p in target.parent.iterdir()] == ["image"]


def test_failures_leave_the_destination_alone(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_tree(root, EPOCH)
    _fails_cleanly(tmp_path, lambda p: fs.make_ext4(root, p, epoch=EPOCH, label="r", fs_uuid=FS_UUID, size_mib=1),
                   "cannot hold")
    _fails_cleanly(tmp_path, lambda p: fat.make_fat(p, {"A/B": root / "nope", "a/b": root / "etc/hostname"},
                                                    epoch=EPOCH, volume_id=1), "differ only in case")
    big = tmp_path / "big.efi"
    big.write_bytes(bytes(3 << 20))
    _fails_cleanly(tmp_path, lambda p: fat.make_fat(p, {"EFI/BOOT/BOOTX64.EFI": big}, epoch=EPOCH, volume_id=1,
                                                    size_mib=2), "cannot hold")
    os.mkfifo(root / "fifo")
    _fails_cleanly(tmp_path, lambda p: fs.make_tar(root, p, epoch=EPOCH), "special file")
    _fails_cleanly(tmp_path, lambda p: fs.make_squashfs(root, p, epoch=EPOCH), "special file")
    with pytest.raises(UserError, match="outside the range"):
        fat.make_fat(tmp_path / "x.fat", {}, epoch=0, volume_id=1)
    with fsutil.atomic_path(tmp_path / "out" / "image") as p:
        p.write_bytes(b"new")
    assert (tmp_path / "out" / "image").read_bytes() == b"new"
