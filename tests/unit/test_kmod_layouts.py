"""Kernel packages of both Debian layouts (issue 16): modules under lib/modules (12) or usr/lib/modules (13),
plain ``.ko`` or compressed ``.ko.xz`` / ``.ko.gz`` / ``.ko.zst``; the previous kernel build of either naming."""

from __future__ import annotations

import gzip
import lzma
import struct
from pathlib import Path

import pytest
import zstandard

from composer.errors import UserError
from composer.package import kmod
from composer.repo.sample import previous_build

REL = "6.12.118+deb13-amd64"


def elf_module(depends: str) -> bytes:
    """A minimal little-endian ELF64 object with a .modinfo section (what kmod.modinfo reads)."""
    modinfo = f"license=GPL\0depends={depends}\0vermagic={REL}\0".encode()
    shstr = b"\0.shstrtab\0.modinfo\0"
    data_off = 64
    shoff = data_off + len(modinfo) + len(shstr)
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0,
                                                                     64, 0, 0, 64, 3, 1)
    null = bytes(64)
    shstrtab = struct.pack("<IIQQQQIIQQ", 1, 3, 0, 0, data_off + len(modinfo), len(shstr), 0, 0, 1, 0)
    sect = struct.pack("<IIQQQQIIQQ", 11, 1, 0, 0, data_off, len(modinfo), 0, 0, 1, 0)
    return header + modinfo + shstr + null + shstrtab + sect


COMPRESS = {".ko": lambda b: b, ".ko.xz": lambda b: lzma.compress(b, format=lzma.FORMAT_XZ),
            ".ko.gz": lambda b: gzip.compress(b, mtime=0), ".ko.zst": lambda b: zstandard.ZstdCompressor().compress(b)}


def kernel_package(root: Path, base: str, suffix: str) -> Path:
    mods = root / base / REL
    for rel, deps in {"kernel/fs/jbd2/jbd2": "", "kernel/lib/crc16": "", "kernel/fs/ext4/ext4": "jbd2,crc16",
                      "kernel/drivers/nvme/host/nvme-core": "", "kernel/drivers/nvme/host/nvme": "nvme-core"}.items():
        (mods / rel).parent.mkdir(parents=True, exist_ok=True)
        (mods / f"{rel}{suffix}").write_bytes(COMPRESS[suffix](elf_module(deps)))
    (mods / "modules.builtin").write_text("kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_pci.ko\n")
    return root


@pytest.mark.parametrize("base", kmod.MODULE_DIRS)
@pytest.mark.parametrize("suffix", sorted(COMPRESS))
def test_modules_are_found_in_both_layouts_plain_or_compressed(tmp_path: Path, base: str, suffix: str) -> None:
    root = kernel_package(tmp_path, base, suffix)
    tree = kmod.ModuleTree.scan(root)
    assert (tree.release, tree.base) == (REL, base)
    assert tree.paths["nvme_core"] == f"kernel/drivers/nvme/host/nvme-core{suffix}"
    assert tree.builtin == {"virtio", "virtio_pci"}
    order, builtin = kmod.load_order(tree, lambda n: tree.depends(root, n), ["ext4", "nvme", "virtio_pci"])
    assert order == [f"kernel/{p}{suffix}" for p in ("fs/jbd2/jbd2", "lib/crc16", "fs/ext4/ext4",
                                                     "drivers/nvme/host/nvme-core", "drivers/nvme/host/nvme")]
    assert builtin == ["virtio_pci"]


def test_module_names_and_a_package_without_modules(tmp_path: Path) -> None:
    assert kmod.module_name("nvme-core.ko.xz") == "nvme_core" and kmod.module_name("modules.order") is None
    assert kmod.module_name("virtio_blk.ko") == "virtio_blk"
    with pytest.raises(UserError, match="expected one kernel release under lib/modules or usr/lib/modules"):
        kmod.ModuleTree.scan(tmp_path)


def test_a_module_that_decompresses_past_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kmod, "MAX_MODULE_BYTES", 1000)
    with pytest.raises(UserError, match="x.ko.xz: decompresses to more than 1000 bytes"):
        kmod.elf_of("x.ko.xz", lzma.compress(bytes(5000)))


NAMES = ["linux-image-6.12.117+deb13-amd64", "linux-image-6.12.118+deb13-amd64",
         "linux-image-6.12.118+deb13-cloud-amd64", "linux-image-6.12.116+deb13-cloud-amd64",
         "linux-image-6.1.0-55-amd64", "linux-image-6.1.0-56-amd64",
         "linux-image-6.1.0-57-amd64", "linux-image-6.1.0-56-cloud-amd64", "linux-image-amd64"]


@pytest.mark.parametrize(("current", "previous"), [
    ("linux-image-6.12.118+deb13-amd64", "linux-image-6.12.117+deb13-amd64"),       # Debian 13: point releases
    ("linux-image-6.12.118+deb13-cloud-amd64", "linux-image-6.12.116+deb13-cloud-amd64"),   # same flavour only
    ("linux-image-6.12.117+deb13-amd64", None),
    ("linux-image-6.1.0-57-amd64", "linux-image-6.1.0-56-amd64"),                    # Debian 12: ABI numbers
    ("linux-image-6.1.0-56-cloud-amd64", None),
    ("linux-image-amd64", None),
])
def test_the_previous_kernel_build_of_either_naming(current: str, previous: str | None) -> None:
    assert previous_build(current, NAMES) == previous


class FakeArchive:
    """The one method the kernel and kmod sources use, over an unpacked package tree."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def for_suite(self, suite: str) -> FakeArchive:
        return self

    def fetch(self, arch: object, name: str, *, version: str = "", follow: str = "") -> tuple[object, Path]:
        from composer.package.debian import DebRef
        return DebRef(name=f"linux-image-{REL}", version="6.12.118-1", arch="riscv64", sha256="0" * 64), self.root


@pytest.mark.parametrize("image", ["vmlinuz", "vmlinux"])
def test_kernel_and_kmod_sources_keep_the_release_layout(tmp_path: Path, image: str) -> None:
    from composer.package.recipe import load_recipe
    from composer.package.sources import Context, source_kernel, source_kmod
    root = kernel_package(tmp_path / "deb", "usr/lib/modules", ".ko.xz")
    (root / "boot").mkdir()
    (root / "boot" / f"{image}-{REL}").write_bytes(b"kernel")
    (root / "usr/lib/modules" / REL / "modules.order").write_text("kernel/fs/ext4/ext4.ko\n")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "recipe.toml").write_text('[package]\nname = "k"\nversion = "1.0.0"\ndescription = "k"\n'
                                                'license = "MIT"\ntype = "system"\n\n[[source]]\nkind = "kernel"\n'
                                                'package = "linux-image-riscv64"\n\n[[source]]\nkind = "kmod"\n'
                                                'package = "linux-image-riscv64"\nmodules = ["ext4"]\n')
    recipe = load_recipe(tmp_path / "r", "riscv64")
    staging = tmp_path / "staging"
    staging.mkdir()
    ctx = Context(recipe=recipe, staging=staging, epoch=0, archive=FakeArchive(root), scratch=tmp_path)  # type: ignore[arg-type]
    kernel = source_kernel(recipe.sources[0], ctx, 0)
    driver = source_kmod(recipe.sources[1], ctx, 1)
    assert kernel.metadata["kernel"]["release"] == REL and (staging / "boot" / "vmlinuz").read_bytes() == b"kernel"
    assert (staging / "usr/lib/modules" / REL / "modules.order").is_file()
    assert driver.metadata["driver"]["modules"][-1] == "kernel/fs/ext4/ext4.ko.xz"
    assert (staging / "usr/lib/modules" / REL / "kernel/fs/ext4/ext4.ko.xz").is_file()
    assert not (staging / "lib").exists()
