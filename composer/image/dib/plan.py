"""The pure part of the ``dib`` output: what vcomp hands diskimage-builder, as data (docs/dib.md).

DIB runs with ``-n`` (no ``base`` element) and one project element, ``vcomp-root``, that provides the operating
system: its ``root.d`` phase unpacks the lock's root (a tar with numeric owners and xattrs) into DIB's tree, its
``pre-finalise.d`` phase writes vcomp's EFI system partition (a FAT image with the profile's UKI, built from the
lock's kernel and stub like the ``disk`` output's) into the first partition. DIB does the rest: the loop device,
the GPT (through the ``vcomp_partitioning`` plugin, :mod:`composer.image.dib.partx`: ``partx``, no
device-mapper), the ext4 root with the tree copied in, the fstab, and the conversion to each format.

Nothing here runs anything: the builder (:mod:`composer.image.types.dib`) writes these texts and runs DIB.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.errors import UserError

PLUGIN = "vcomp_partitioning"         # the block-device plugin's entry point name (composer.image.dib.partx)
ELEMENT = "vcomp-root"                # the project's element
ROOT_LABEL = "veridian-root"
ROOT_PARTITION = 2                    # ESP first, root second: /dev/vda2, as the disk output's
MIB = 1 << 20
JOURNAL_MIB = 64                      # DIB's ext4 journal (mkfs -J size=64)

# format -> the extension of the output's file for it (DIB writes IMAGE.FORMAT; vpc is a VHD)
FORMATS: Mapping[str, str] = {"qcow2": ".qcow2", "raw": ".raw", "vmdk": ".vmdk", "vpc": ".vhd", "tar": ".tar"}
BOOT_ORDER = ("qcow2", "raw", "vmdk", "vpc")  # the first of these a profile builds is the output's bootable file
ELEMENT_NAME = r"^[a-z0-9][a-z0-9-]{0,63}$"
MAX_ELEMENTS = 16

# Elements vcomp refuses, with the reason: vcomp owns the disk layout and the boot loader (the ESP with the UKI),
# and a vcomp root has no package manager or distribution for DIB's distribution elements to work with.
REFUSED: Mapping[str, str] = {
    "vm": "it adds DIB's block-device and GRUB bootloader elements; the dib output's layout (ESP + ext4 root) "
          "and boot loader (the UKI) are vcomp's",
    "bootloader": "GRUB is installed inside the root by DIB's script, which needs bash and GRUB in the root; "
                  "the dib output boots vcomp's UKI from its ESP",
    "grub2": "the dib output boots vcomp's UKI from its ESP",
    "block-device-efi": "the dib output's partitions are vcomp's (ESP + ext4 root, mapped with partx)",
    "block-device-gpt": "the dib output's partitions are vcomp's (ESP + ext4 root, mapped with partx)",
    "block-device-mbr": "the dib output's partitions are vcomp's (ESP + ext4 root, mapped with partx)",
    "base": "vcomp's root comes from the lock (DIB runs with -n)",
    **{d: "the root comes from the lock, not from a distribution element" for d in (
        "debian", "debian-minimal", "ubuntu", "ubuntu-minimal", "centos", "fedora", "rhel", "rocky-container",
        "opensuse", "gentoo", "debootstrap", "yum-minimal", "zypper-minimal", "openeuler-minimal")},
    "docker": "needs a docker daemon",
}
# The phases DIB runs inside the root (chroot + bash): an element with one needs bash in the root.
IN_ROOT_PHASES = ("pre-install.d", "install.d", "post-install.d", "finalise.d")
# The directories DIB's own steps need in the tree (mount points, its clean-up finds): made when the root lacks them.
DIB_DIRS = ("proc", "sys", "dev", "tmp", "var/log", "root", "etc")

OPTIONS: Mapping[str, Mapping[str, Any]] = {
    "formats": {"type": "array", "items": {"enum": list(FORMATS)}, "minItems": 1, "uniqueItems": True,
                "default": ["qcow2"],
                "description": "the files diskimage-builder writes: raw, qcow2, vmdk, vpc (VHD), tar; the first "
                               "disk format of qcow2, raw, vmdk, vpc is the one vcomp boot boots"},
    "elements": {"type": "array", "maxItems": MAX_ELEMENTS, "uniqueItems": True,
                 "items": {"type": "string", "pattern": ELEMENT_NAME},
                 "description": "further DIB elements (found on DIB's element path, ELEMENTS_PATH too); those "
                                "that run scripts inside the root need bash there (docs/dib.md)"},
}


@dataclass(frozen=True, slots=True, kw_only=True)
class DibJob:
    """Everything one DIB run needs, checked: the paths are where the builder put its inputs."""

    name: str
    dib_arch: str                  # DIB's name of the architecture (amd64, arm64)
    formats: tuple[str, ...]
    elements: tuple[str, ...]
    root_tar: Path
    esp_image: Path
    esp_mib: int
    image_mib: int
    root_type: str                 # the GPT type GUID of the architecture's root partition
    guids: Mapping[str, str]       # disk, esp, root, root-fs -> a UUID derived from the build's seed
    epoch: int


def formats_of(options: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(f) for f in options.get("formats", ["qcow2"]))


def elements_of(options: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """The profile's elements, refused ones named with the reason (all of them at once)."""
    elements = tuple(str(e) for e in options.get("elements", []))
    refused = [f"'{e}': {REFUSED[e]}" for e in elements if e in REFUSED]
    if refused:
        raise UserError(f"{where}: DIB element{'s' if len(refused) > 1 else ''} refused: {'; '.join(refused)}",
                        hint="remove it from options.elements (docs/dib.md lists what works)")
    return elements


def in_root_problem(phases: Mapping[str, frozenset[str]], *, has_bash: bool, where: str) -> UserError | None:
    """Why DIB cannot run these elements on this root (None when it can): the elements (with their
    dependencies) that run scripts inside the root need bash there, which a vcomp root has only when the profile
    installs it."""
    inside = {name: sorted(p) for name, p in sorted(phases.items()) if p}
    if not inside or has_bash:
        return None
    named = "; ".join(f"{name} ({', '.join(p)})" for name, p in inside.items())
    return UserError(f"{where}: DIB element{'s' if len(inside) > 1 else ''} run scripts inside the root, which has "
                     f"no /bin/bash: {named}",
                     hint="drop those elements, or install bash (and what their scripts call) in the profile; "
                          "docs/dib.md lists the elements that run outside the root")


def bootable_format(formats: Sequence[str]) -> str:
    """The format ``vcomp boot`` boots ("" when only a tar is built)."""
    return next((f for f in BOOT_ORDER if f in formats), "")


def esp_mib(esp_bytes: int) -> int:
    return max(1, -(-esp_bytes // MIB))


def image_mib(tree_bytes: int, esp: int) -> int:
    """The disk's size: the tree with a quarter more for ext4's metadata, twice the journal (mke2fs refuses a
    journal of more than half the file system), the ESP, 1 MiB before and after the partitions, 32 MiB to spare,
    rounded up to 4 MiB."""
    need = -(-tree_bytes * 5 // 4 // MIB) + 2 * JOURNAL_MIB + esp + 2 + 32
    return -(-need // 4) * 4


def block_device_yaml(job: DibJob) -> str:
    """DIB's block-device configuration (YAML; JSON is YAML): a loop image, vcomp's GPT (ESP + root), ext4 /."""
    config: list[dict[str, Any]] = [
        {"local_loop": {"name": "image0"}},
        {PLUGIN: {"base": "image0", "label": "gpt", "disk-guid": job.guids["disk"],
                  "ext4-times": {"partition": "root", "epoch": job.epoch}, "partitions": [
            {"name": "ESP", "type": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "guid": job.guids["esp"],
             "size": f"{job.esp_mib}MiB"},
            {"name": "root", "type": job.root_type, "guid": job.guids["root"], "size": "100%",
             "mkfs": {"type": "ext4", "label": ROOT_LABEL, "uuid": job.guids["root-fs"], "opts": mkfs_options(job),
                      "mount": {"mount_point": "/", "fstab": {"options": "defaults", "fsck-passno": 1}}}},
        ]}},
    ]
    return json.dumps(config, indent=1, sort_keys=True) + "\n"


def mkfs_options(job: DibJob) -> str:
    """ext4's options: DIB's own (inode ratio, journal), a hash seed from the build's seed (mke2fs's is random),
    and the inode tables and journal zeroed by mke2fs (the kernel's lazy init zeroes them while DIB runs, at
    moments that differ from build to build)."""
    return (f"-i 4096 -J size={JOURNAL_MIB} -E hash_seed={job.guids['root-fs']},root_owner=0:0,"
            "lazy_itable_init=0,lazy_journal_init=0")


def used_inodes(dumpe2fs: str) -> list[int]:
    """The inodes in use, from ``dumpe2fs`` (every group's inodes but its "Free inodes" ranges)."""
    per_group = 0
    used: list[int] = []
    group = -1
    for line in dumpe2fs.splitlines():
        text = line.strip()
        if text.startswith("Inodes per group:"):
            per_group = int(text.split(":", 1)[1])
        elif re.match(r"Group [0-9]+:", text):
            group = int(text.split()[1].rstrip(":"))
        elif text.startswith("Free inodes:") and group >= 0 and per_group:
            free: set[int] = set()
            for part in (p.strip() for p in text.split(":", 1)[1].split(",")):
                if part:
                    low, _, high = part.partition("-")
                    free.update(range(int(low), int(high or low) + 1))
            first = group * per_group + 1
            used += [i for i in range(first, first + per_group) if i not in free]
    return used


def times_script(inodes: Sequence[int], epoch: int) -> str:
    """debugfs commands: every inode's four times the epoch (nanoseconds 0), the superblock's mount and write
    times the epoch (the kernel set them while DIB copied the tree in). Not the inodes' generations (random,
    from the kernel): ext4's metadata checksums of directory and extent blocks are seeded with them."""
    lines = [f"sif <{i}> {f}{extra}" for i in inodes for f in ("atime", "ctime", "mtime", "crtime")
             for extra in (f" {epoch}", "_extra 0")]
    lines += [f"ssv mtime {epoch}", f"ssv wtime {epoch}", "ssv kbytes_written 0"]
    return "\n".join(lines) + "\n"


def element_files() -> dict[str, tuple[str, int]]:
    """The ``vcomp-root`` element: relative path -> (text, mode)."""
    dirs = " ".join(DIB_DIRS)
    return {
        "element-provides": ("operating-system\n", 0o644),
        "README.rst": ("vcomp-root: the root of a vcomp lock (written by vcomp for one DIB run)\n", 0o644),
        "environment.d/10-vcomp-root.bash": (
            "# vcomp: what DIB's distribution elements would say of the operating system.\n"
            "export DISTRO_NAME=veridian\nexport DIB_RELEASE=${DIB_RELEASE:-vcomp}\n", 0o644),
        "root.d/10-vcomp-root": (
            "#!/bin/sh\n# vcomp: unpack the lock's root (numeric owners, xattrs) into DIB's tree.\nset -eu\n"
            'tar --numeric-owner --xattrs --xattrs-include="*" -xpf "$VCOMP_ROOT_TAR" -C "$TARGET_ROOT"\n'
            f'cd "$TARGET_ROOT"\nfor d in {dirs}; do [ -d "$d" ] || [ -L "$d" ] || mkdir -p -m 0755 "$d"; done\n',
            0o755),
        "pre-finalise.d/10-vcomp-esp": (
            "#!/bin/sh\n# vcomp: write vcomp's EFI system partition (the UKI) into the disk's first partition.\n"
            'set -eu\ndd if="$VCOMP_ESP" of="${IMAGE_BLOCK_DEVICE}p1" bs=1M conv=notrunc,fsync status=none\n',
            0o755),
    }


SUDO = ("#!/bin/sh\n# vcomp's sudo stand-in, on diskimage-builder's PATH only: vcomp runs DIB as root already.\n"
        "while [ $# -gt 0 ]; do\n  case \"$1\" in\n    -u|-g) shift 2 ;;\n    --) shift; break ;;\n"
        "    -*) shift ;;\n    *) break ;;\n  esac\ndone\nexec \"$@\"\n")

ENTRY_POINTS = f"[diskimage_builder.block_device.plugin]\n{PLUGIN} = composer.image.dib.partx:PartxPartitioning\n"
METADATA = "Metadata-Version: 2.1\nName: vcomp-dib-partx\nVersion: 1.0\n"


def command(disk_image_create: str, job: DibJob, out_base: Path) -> list[str]:
    """DIB's command line: no base element, vcomp's element first, the profile's after it."""
    size_gib = f"{job.image_mib / 1024:.4f}"
    return [disk_image_create, "-n", "-a", job.dib_arch, "--image-size", size_gib,
            "-t", ",".join(job.formats), "--no-tmpfs", "-o", str(out_base), ELEMENT, *job.elements]


def environment(job: DibJob, *, scratch: Path, python: str, python_path: Sequence[Path],
                elements_path: Sequence[Path], host_path: str) -> dict[str, str]:
    """DIB's whole environment (it runs with exactly this): the sudo stand-in first on PATH, the plugin's
    distribution on PYTHONPATH, no network mirrors, fixed time and locale."""
    return {
        "PATH": ":".join([str(scratch / "bin"), host_path]),
        "HOME": str(scratch / "home"),
        "TMPDIR": str(scratch / "tmp"),
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "SOURCE_DATE_EPOCH": str(job.epoch),
        "PYTHONPATH": ":".join(str(p) for p in python_path),
        "DIB_PYTHON_EXEC": python,
        "ELEMENTS_PATH": ":".join(str(p) for p in elements_path),
        "DIB_BLOCK_DEVICE_CONFIG": f"file://{scratch / 'block-device.yaml'}",
        "DIB_SHOW_IMAGE_USAGE": "0",
        "DIB_DEBUG_TRACE": "0",
        "DIB_NO_TMPFS": "1",
        "E2FSPROGS_FAKE_TIME": str(job.epoch),   # mke2fs's own times (the kernel's mount and copy times stay)
        "VCOMP_ROOT_TAR": str(job.root_tar),
        "VCOMP_ESP": str(job.esp_image),
    }


def describe(argv: Sequence[str]) -> str:
    return shlex.join(argv)
