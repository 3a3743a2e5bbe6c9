"""Small pure pieces: globs, TOML positions, Debian -> SemVer, module load order."""

from __future__ import annotations

import pytest

from composer.errors import UserError
from composer.package import kmod
from composer.package.globs import match_exact, matches
from composer.tomlpos import locate


@pytest.mark.parametrize(("path", "pattern", "expected"), [
    ("bin", "bin/**", True), ("bin/sh", "bin/**", True), ("bin/x/y", "bin/**", True), ("binx", "bin/**", False),
    ("usr/lib/x86_64-linux-gnu/libc.so.6", "usr/lib/**/*.so*", True), ("lib/a.so", "lib/**/*.so*", True),
    ("etc/x", "etc/*", True), ("etc/x/y", "etc/*", True), ("etcx", "etc/*", False), ("a/b/c.ko", "**/*.ko", True),
])
def test_globs(path: str, pattern: str, expected: bool) -> None:
    assert matches(path, [pattern]) is expected


def test_match_exact_has_no_directory_rule() -> None:
    assert match_exact("boot/vmlinuz-6.1", "boot/vmlinuz-*") and not match_exact("boot/x/y", "boot/x")


def test_toml_locate() -> None:
    text = '[package]\nname = "a"\nversion = "1"\n\n[[source]]\nkind = "tree"\n\n[[source]]\nkind = "deb"\n' \
           'package = "x"\n[arch.aarch64]\nfoo = 1\n'
    assert locate(text, ["package", "version"]) == (3, 1)
    assert locate(text, ["source", 1, "package"]) == (10, 1)
    assert locate(text, ["source", 0]) == (5, 1)
    assert locate(text, ["arch", "aarch64", "foo"]) == (12, 1)
    assert locate(text, ["nothing"]) == (1, 1)


def _fake_tree(deps: dict[str, list[str]], builtin: tuple[str, ...] = ()) -> kmod.ModuleTree:
    paths = {n: f"kernel/{n}.ko" for n in deps}
    return kmod.ModuleTree(release="6.1.0-test", paths=paths, builtin=frozenset(builtin))


def test_load_order_dependencies_first_and_exclusions() -> None:
    deps = {"virtio_ring": [], "virtio": [], "virtio_pci": ["virtio_ring", "virtio"], "virtio_blk": ["virtio_ring",
            "virtio"], "ext4": ["jbd2", "mbcache", "crc16"], "jbd2": [], "mbcache": [], "crc16": []}
    tree = _fake_tree(deps)
    order, builtin = kmod.load_order(tree, deps.__getitem__, ["virtio_pci"])
    assert order == ["kernel/virtio_ring.ko", "kernel/virtio.ko", "kernel/virtio_pci.ko"] and builtin == []
    order, _ = kmod.load_order(tree, deps.__getitem__, ["virtio_blk"], exclude=["virtio_pci"])
    assert order == ["kernel/virtio_blk.ko"]
    order, _ = kmod.load_order(tree, deps.__getitem__, ["ext4"])
    assert order[-1] == "kernel/ext4.ko" and len(order) == 4


def test_load_order_builtin_cycle_unknown() -> None:
    deps: dict[str, list[str]] = {"a": ["b"], "b": ["a"], "c": []}
    tree = _fake_tree(deps, builtin=("virtio",))
    with pytest.raises(UserError, match="cycle"):
        kmod.load_order(tree, deps.__getitem__, ["a"])
    assert kmod.load_order(tree, deps.__getitem__, ["virtio", "c"]) == (["kernel/c.ko"], ["virtio"])
    with pytest.raises(UserError, match="'nope' is not in kernel 6.1.0-test"):
        kmod.load_order(tree, deps.__getitem__, ["nope"])


def test_modinfo_rejects_non_elf() -> None:
    with pytest.raises(ValueError, match="ELF64"):
        kmod.modinfo(b"not an elf")
