"""Root file system images, rootless and bit-for-bit reproducible: ext4, EROFS, SquashFS, tar, qcow2.

The caller's tree is read-only here: nothing in it is touched. Every output holds the tree's names,
modes, contents, symlinks, hard links (and extended attributes, for the mkfs tools) with every
owner 0:0 and every timestamp ``epoch``; ids (UUIDs, hash seeds) come from the caller. Each tool runs
with a clean environment (``TZ=UTC``, ``LC_ALL=C.UTF-8``, nothing inherited such as a stray
SOURCE_DATE_EPOCH or MKE2FS_CONFIG) and ext4 with a pinned mke2fs configuration, so host settings
do not leak into the bytes. Outputs appear atomically: a tool writes into a temporary directory
beside ``out``, and the result is renamed into place only once it is complete and checked.

Sizes (ext4, ``size_mib=None``): the tree's data (each file rounded up to 4 KiB blocks, hard links
counted once, a block per directory and per long symlink) plus 256 bytes per inode, with 30 %
headroom, plus the journal (4 MiB below 128 MiB, 16 below 1 GiB, 32 below 2 GiB, 64 below 16 GiB,
then 128 MiB: mke2fs's defaults up to 32 GiB, made explicit) and 3 % for inode tables, bitmaps and
group descriptors; rounded up to whole MiB, at least 16 MiB. The inode count is the larger of one
per 16 KiB and the tree's entries plus 30 %. An explicit ``size_mib`` below the tree's needs
(without headroom) is refused before anything runs.
"""

from __future__ import annotations

import math
import os
import stat
import tarfile
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from composer.errors import ToolError, UserError
from composer.fsutil import atomic_output, atomic_path
from composer.run import run

MIB = 1 << 20
BLOCK = 4096
INODE_SIZE = 256
INODE_RATIO = 16384
HEADROOM = 1.3
EXT4_MIN_MIB = 16
EXT4_METADATA = 0.03  # inode tables at one 256-byte inode per 16 KiB (1.6 %), bitmaps, descriptors, reserved GDT
# (file system size below MiB, journal MiB): mke2fs's own default, made explicit
JOURNAL_MIB: tuple[tuple[int, int], ...] = ((128, 4), (1024, 16), (2048, 32), (16384, 64))
JOURNAL_MAX_MIB = 128
# zstd level for SquashFS, measured on a 742 MB, 12,000-file tree with 2 CPUs: level 3 in 3.8 s gives 279 MB,
# 9 in 9.0 s 262 MB, 15 (mksquashfs's default) in 43.6 s 247 MB; gzip in 61 s 269 MB
SQUASHFS_ZSTD_LEVEL = 9
MAX_EPOCH = 2**32 - 1  # SquashFS and EROFS store unsigned 32-bit seconds; ext4 and tar go further

# The whole mke2fs configuration: Debian 12's ext4 defaults, pinned so /etc/mke2fs.conf cannot change the bytes.
MKE2FS_CONF = """\
[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
"""
TOOL_ENV: Mapping[str, str] = {"TZ": "UTC", "LC_ALL": "C.UTF-8"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """One entry of a tree: ``rel`` is "" for the root, else "a/b" (no leading slash)."""

    rel: str
    path: Path
    mode: int  # full st_mode
    size: int
    inode: tuple[int, int]  # (st_dev, st_ino), to find hard links
    nlink: int


# ---------------------------------------------------------------- shared helpers


def check_epoch(epoch: int, *, low: int = 0, high: int = MAX_EPOCH, what: str = "the image") -> None:
    if not low <= epoch <= high:
        raise UserError(f"epoch {epoch} is outside the range {low}..{high} that {what} can store",
                        hint="set SOURCE_DATE_EPOCH (or the recipe's epoch) to a time in that range")


def scan(root: Path) -> list[Node]:
    """The root then every entry below it, depth first, names in byte order; no special files."""
    if not root.is_dir():
        raise UserError(f"{root}: the root tree is not a directory")
    nodes: list[Node] = []
    stack: list[tuple[str, Path]] = [("", root)]
    while stack:
        rel, path = stack.pop()
        st = path.lstat() if rel else path.stat()  # the root itself may be a symlink to the tree
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            raise UserError(f"{path}: a special file (mode {st.st_mode:o}) in the root tree",
                            hint="device nodes, sockets and FIFOs belong in the image's /dev at boot, not the tree")
        nodes.append(Node(rel=rel, path=path, mode=st.st_mode, size=st.st_size, inode=(st.st_dev, st.st_ino),
                          nlink=st.st_nlink))
        if stat.S_ISDIR(st.st_mode):
            names = sorted(os.listdir(path), key=os.fsencode, reverse=True)
            stack.extend((f"{rel}/{n}" if rel else n, path / n) for n in names)
    return nodes


def _blocks(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


# ---------------------------------------------------------------- ext4


def _journal_mib(size_mib: int) -> int:
    return next((j for below, j in JOURNAL_MIB if size_mib < below), JOURNAL_MAX_MIB)


def ext4_payload(nodes: Sequence[Node]) -> tuple[int, int]:
    """(bytes of data blocks and inodes the tree needs, number of inodes) in an ext4 with 4 KiB blocks."""
    seen: set[tuple[int, int]] = set()
    data = 0
    for n in nodes:
        if n.inode in seen:
            continue
        seen.add(n.inode)
        if stat.S_ISREG(n.mode):
            data += _blocks(n.size)
        elif stat.S_ISDIR(n.mode):
            data += _blocks(max(n.size, BLOCK))
        elif stat.S_ISLNK(n.mode) and n.size >= 60:  # shorter targets live in the inode
            data += BLOCK
    inodes = len(seen) + 11  # reserved inodes 1-10, lost+found
    return data + inodes * INODE_SIZE, inodes


def ext4_min_mib(payload: int, size_mib: int) -> int:
    """The smallest size (MiB) that holds ``payload`` bytes with metadata, for a file system near ``size_mib``."""
    return math.ceil((payload + _journal_mib(size_mib) * MIB) / (1 - EXT4_METADATA) / MIB)


def ext4_size_mib(payload: int) -> int:
    """The default size: the payload with 30 % headroom, journal and metadata (see the module's docstring)."""
    size = EXT4_MIN_MIB
    while (need := max(EXT4_MIN_MIB, ext4_min_mib(math.ceil(payload * HEADROOM), size))) > size:
        size = need
    return size


def _debugfs_quote(node: Node) -> str:
    if "\n" in node.rel or "\r" in node.rel:
        raise UserError(f"{node.path}: a file name with a line break cannot be written to ext4 by debugfs",
                        hint="rename the file")
    return '"/' + node.rel.replace('"', '""') + '"'


def normalise_script(nodes: Sequence[Node], epoch: int) -> str:
    """debugfs commands setting every inode's owner to 0:0 and its four timestamps (and their nanoseconds)."""
    lines = []
    for target in ['"/lost+found"', *(_debugfs_quote(n) for n in nodes)]:
        for field in ("atime", "ctime", "mtime", "crtime"):
            lines.append(f"sif {target} {field} {epoch}")
            lines.append(f"sif {target} {field}_extra 0")
        lines += [f"sif {target} uid 0", f"sif {target} gid 0"]
    return "\n".join(lines) + "\n"


def _check_debugfs(stderr: bytes) -> None:
    errors = [line for line in stderr.decode(errors="replace").splitlines() if line and not line.startswith("debugfs ")]
    if errors:
        raise ToolError("debugfs could not normalise the ext4 image:\n    " + "\n    ".join(errors[:12]))


def plan_ext4(nodes: Sequence[Node], size_mib: int | None, *, root: Path) -> tuple[int, int]:
    """(size in MiB, inode count) for the tree: computed, or the caller's size checked against the tree."""
    payload, inodes = ext4_payload(nodes)
    if size_mib is None:
        size_mib = ext4_size_mib(payload)
    elif size_mib < (need := ext4_min_mib(payload, size_mib)):
        raise UserError(f"ext4 size {size_mib} MiB cannot hold {root} ({payload} bytes of data and inodes)",
                        hint=f"give at least {need} MiB, or no size to have it computed")
    return size_mib, max(size_mib * MIB // INODE_RATIO, math.ceil(inodes * HEADROOM))


def mke2fs_args(root: Path, img: Path, *, label: str, fs_uuid: uuid.UUID, size_mib: int,
                inodes: int) -> list[str | Path]:
    """Every choice explicit: the journal size, the inode count, zeroed tables (no lazy init, no discard)."""
    return ["mke2fs", "-q", "-t", "ext4", "-d", root, "-U", str(fs_uuid), "-L", label, "-N", str(inodes),
            "-J", f"size={_journal_mib(size_mib)}",
            "-E", f"root_owner=0:0,hash_seed={fs_uuid},nodiscard,lazy_itable_init=0,lazy_journal_init=0",
            "-F", img, f"{size_mib}M"]


def make_ext4(root: Path, out: Path, *, epoch: int, label: str, fs_uuid: uuid.UUID,
              size_mib: int | None = None) -> None:
    """An ext4 image of ``root`` at ``out``; ``size_mib=None`` sizes it from the tree (module docstring).

    ``mke2fs -d`` copies the tree (in sorted order) with the hosts' owners and times, ``debugfs`` then
    sets every inode to 0:0 and ``epoch``, and ``e2fsck -fn`` checks the result before it is published.
    """
    check_epoch(epoch, high=2**34 - 1, what="ext4")
    if len(label.encode()) > 16:
        raise UserError(f"ext4 label '{label}' is longer than 16 bytes")
    nodes = scan(root)
    size_mib, inodes = plan_ext4(nodes, size_mib, root=root)
    with tempfile.TemporaryDirectory(prefix="vcomp-ext4-") as tmp, atomic_path(out) as img:
        conf, script = Path(tmp) / "mke2fs.conf", Path(tmp) / "normalise.debugfs"
        conf.write_text(MKE2FS_CONF)
        script.write_text(normalise_script(nodes, epoch), encoding="utf-8", errors="surrogateescape")
        env = {**TOOL_ENV, "MKE2FS_CONFIG": str(conf), "E2FSPROGS_FAKE_TIME": str(epoch)}
        run(mke2fs_args(root, img, label=label, fs_uuid=fs_uuid, size_mib=size_mib, inodes=inodes),
            env=env, clean_env=True)
        _check_debugfs(run(["debugfs", "-w", "-f", script, img], env=env, clean_env=True).stderr)
        run(["e2fsck", "-fn", img], env=env, clean_env=True)


# ---------------------------------------------------------------- EROFS, SquashFS


def make_erofs(root: Path, out: Path, *, epoch: int, fs_uuid: uuid.UUID) -> None:
    """An uncompressed EROFS image of ``root``: every inode owned by 0:0 and timed ``epoch`` (compact inodes)."""
    check_epoch(epoch, what="EROFS")
    scan(root)
    with atomic_path(out) as img:
        run(["mkfs.erofs", "--quiet", f"-T{epoch}", f"-U{fs_uuid}", "--all-root", img, root],
            env=TOOL_ENV, clean_env=True)


def make_squashfs(root: Path, out: Path, *, epoch: int) -> None:
    """A zstd-compressed (level 9) SquashFS image of ``root`` (128 KiB blocks), all 0:0, all times ``epoch``.

    The times come from ``-all-time``/``-mkfs-time``: SOURCE_DATE_EPOCH would only clamp newer times, so older
    mtimes of the tree would leak through (and mksquashfs refuses both together)."""
    check_epoch(epoch, what="SquashFS")
    scan(root)
    with atomic_path(out) as img:
        run(["mksquashfs", root, img, "-noappend", "-all-root", "-all-time", str(epoch), "-mkfs-time", str(epoch),
             "-comp", "zstd", "-Xcompression-level", str(SQUASHFS_ZSTD_LEVEL), "-b", "131072",
             "-quiet", "-no-progress"], env=TOOL_ENV, clean_env=True)


# ---------------------------------------------------------------- tar


def _tar_info(node: Node, epoch: int, first: dict[tuple[int, int], str]) -> tarfile.TarInfo:
    info = tarfile.TarInfo("./" + node.rel if node.rel else ".")
    info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "root", "root"
    info.mode = stat.S_IMODE(node.mode)
    if stat.S_ISDIR(node.mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(node.mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(node.path)
    elif node.nlink > 1 and node.inode in first:
        info.type, info.linkname = tarfile.LNKTYPE, first[node.inode]
    else:
        info.type, info.size = tarfile.REGTYPE, node.size
        first.setdefault(node.inode, info.name)
    return info


def make_tar(root: Path, out: Path, *, epoch: int) -> None:
    """A POSIX (pax) tar of ``root``: "./" first, then depth first in byte order; 0:0 root/root, mtime ``epoch``.

    Hard links are stored once, then as links to the first name; no atime, ctime or extended headers
    beyond what names longer than 100 bytes or outside ASCII need.
    """
    check_epoch(epoch, high=8**11 - 1, what="a tar header")
    nodes = scan(root)
    first: dict[tuple[int, int], str] = {}
    with atomic_output(out) as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT,
                                                encoding="utf-8") as tar:
        for node in nodes:
            info = _tar_info(node, epoch, first)
            if info.type == tarfile.REGTYPE:
                with os.fdopen(os.open(node.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)


# ---------------------------------------------------------------- qcow2


def to_qcow2(raw: Path, out: Path) -> None:
    """Convert a raw disk image to qcow2 (version 3, 64 KiB clusters, uncompressed; zero clusters left out)."""
    if not raw.is_file():
        raise UserError(f"{raw}: the raw disk image to convert is not a file")
    with atomic_path(out) as img:
        run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2",
             "-o", "compat=1.1,cluster_size=65536,lazy_refcounts=off,preallocation=off", raw, img],
            env=TOOL_ENV, clean_env=True)
