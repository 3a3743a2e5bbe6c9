"""Named boot hardware (composer/hardware.py): the registry, the QEMU arguments per architecture, and the
profile's ``boot-tests[].hardware`` checked at load (names only, never QEMU arguments)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from composer import hardware
from composer.arch import get_arch
from composer.boot.machine import Boot, command
from composer.boot.session import boot_spec, hardware_of
from composer.errors import UserError
from composer.image.types.disk import ROOT_DEVICES
from composer.profile.load import load_profile
from tests.conftest import REPO
from tests.unit.test_profile import errors_of, write

ALL = ["nvme-root", "virtio-gpu", "virtio-keyboard", "usb-keyboard", "e1000e"]


def _disk(arch: str, tmp_path: Path, names: tuple[str, ...]) -> Boot:
    return Boot(arch=get_arch(arch), files=(tmp_path / "d.qcow2",), media="disk", firmware="none",
                work=tmp_path, format="qcow2", hardware=names)


def test_the_registry_covers_the_four_families_and_the_schema_lists_it() -> None:
    assert {h.family for h in hardware.HARDWARE.values()} == {"storage", "graphics", "input", "network"}
    assert list(hardware.HARDWARE) == ALL
    schema = json.loads((REPO / "schemas" / "profile.schema.json").read_text())
    item = schema["properties"]["boot-tests"]["items"]["properties"]["hardware"]
    assert item["items"]["enum"] == list(hardware.HARDWARE), "the schema's hardware enum is the registry's"
    for h in hardware.HARDWARE.values():
        assert (REPO / "recipes" / f"driver-{h.driver}" / "recipe.toml").is_file(), h.name
        assert h.slot in hardware.SLOTS
        assert (h.name in hardware.DISK_ATTACH) == (h.slot == "disk")
        assert (h.name in hardware.NIC_MODEL) == (h.slot == "nic")
        assert h.slot != "disk" or h.root_device in ROOT_DEVICES


@pytest.mark.parametrize("arch", ["x86_64", "aarch64", "riscv64"])
def test_every_device_on_every_architecture(arch: str, tmp_path: Path) -> None:
    cmd = command(_disk(arch, tmp_path, tuple(ALL)))
    assert f"if=none,id=nvme0,format=qcow2,file={tmp_path / 'd.qcow2'}" in cmd
    assert "nvme,serial=vcomp-root,drive=nvme0" in cmd
    # riscv64's U-Boot reads no NVMe: it gets a read-only virtio view of the same disk for the ESP
    view = f"if=virtio,format=qcow2,file={tmp_path / 'd.qcow2'},readonly=on,file.locking=off"
    assert [c for c in cmd if c.startswith("if=virtio")] == ([view] if arch == "riscv64" else [])
    assert cmd[cmd.index("-netdev") + 1] == "user,id=net0" and "e1000e,netdev=net0" in cmd
    assert "virtio-net-pci,netdev=net0" not in cmd
    for device in ("virtio-gpu-pci", "virtio-keyboard-pci", "qemu-xhci,id=xhci", "usb-kbd,bus=xhci.0"):
        assert device in cmd and cmd[cmd.index(device) - 1] == "-device"
    gpu = cmd.index("virtio-gpu-pci")
    assert (cmd[gpu - 3:gpu - 1] == ["-vga", "none"]) == (arch == "x86_64"), "x86_64's own VGA card is left out"


def test_without_hardware_the_command_is_unchanged(tmp_path: Path) -> None:
    cmd = command(_disk("x86_64", tmp_path, ()))
    assert f"if=virtio,format=qcow2,file={tmp_path / 'd.qcow2'}" in cmd and "virtio-net-pci,netdev=net0" in cmd
    assert "-vga" not in cmd and not any("nvme" in c or "xhci" in c for c in cmd)


def test_a_manifest_naming_unknown_or_misplaced_hardware_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown boot hardware 'pci-assign'") as info:
        command(_disk("x86_64", tmp_path, ("pci-assign",)))
    assert "nvme-root" in (info.value.hint or "")
    iso = Boot(arch=get_arch("x86_64"), files=(tmp_path / "a.iso",), media="cdrom", firmware="bios",
               work=tmp_path, hardware=("nvme-root",))
    with pytest.raises(UserError, match="attaches a disk, but this output boots from cdrom"):
        command(iso)


def test_a_boot_attaches_the_union_of_its_tests_hardware(tmp_path: Path) -> None:
    manifest = {"arch": "x86_64", "outputs": [
        {"name": "disk", "type": "disk", "files": [{"path": "d.qcow2"}], "firmware": ["uefi"],
         "boot": {"media": "disk", "format": "qcow2"}}],
        "boot-tests": [{"name": "a", "expect": ["x"], "hardware": ["virtio-gpu", "e1000e"]},
                       {"name": "b", "expect": ["y"], "outputs": ["disk"], "hardware": ["e1000e", "usb-keyboard"]},
                       {"name": "c", "expect": ["z"], "outputs": ["iso"], "hardware": ["nvme-root"]}]}
    assert hardware_of(manifest, "disk") == ("e1000e", "usb-keyboard", "virtio-gpu")
    assert boot_spec(manifest, tmp_path, "disk", "uefi", tmp_path).hardware == hardware_of(manifest, "disk")


def test_problems_are_listed_one_per_line() -> None:
    assert hardware.problems(ALL, ["x86_64", "riscv64"]) == []
    assert hardware.problems(["floppy", *(["e1000e"] * 17)], ["x86_64"]) == [
        "18 hardware names (at most 16)", "unknown hardware 'floppy' (known: " + ", ".join(ALL) + ")"]


PROFILE = """
name: hw
architectures: [x86_64]
repositories:
  - name: sample
    url: ../repo
    root: root.json
packages: [busybox]
drivers: [nvme, e1000e, virtio-gpu]
outputs:
  - type: iso
  - type: disk
    options: {root-device: nvme}
boot-tests:
  - name: hw
    outputs: [disk]
    hardware: [nvme-root, e1000e, virtio-gpu]
    expect: ["VCOMP-BOOT: ready"]
"""


def test_profile_hardware_loads_and_reaches_the_manifest(tmp_path: Path) -> None:
    prof = load_profile(write(tmp_path, PROFILE))
    assert prof.boot_tests[0].hardware == ("nvme-root", "e1000e", "virtio-gpu")
    assert prof.boot_tests[0].to_dict()["hardware"] == ["nvme-root", "e1000e", "virtio-gpu"]
    assert "hardware" not in load_profile(write(tmp_path, PROFILE.replace(
        "    hardware: [nvme-root, e1000e, virtio-gpu]\n", ""))).boot_tests[0].to_dict()


def test_profile_hardware_errors_all_at_once(tmp_path: Path) -> None:
    bad = PROFILE.replace("[nvme-root, e1000e, virtio-gpu]", "[nvme-root, e1000e, usb-keyboard]") \
        .replace("    options: {root-device: nvme}\n", "")
    text = "\n".join(errors_of(write(tmp_path, bad)))
    assert "$.boot-tests[0].hardware[2]: hardware 'usb-keyboard' needs the driver 'usb-hid'" in text
    assert "hardware 'nvme-root' attaches the boot disk, but output 'disk' is not a disk whose root is on nvme" in text
    as_package = bad.replace("packages: [busybox]", "packages: [busybox, driver-usb-hid]")
    assert "usb-keyboard" not in "\n".join(errors_of(write(tmp_path, as_package)))
    everywhere = PROFILE.replace("    outputs: [disk]\n", "")
    assert "the test applies to every output" in "\n".join(errors_of(write(tmp_path, everywhere)))
    raw = PROFILE.replace("[nvme-root, e1000e, virtio-gpu]", '["-device vfio-pci,host=01:00.0"]')
    assert "$.boot-tests[0].hardware[0]" in "\n".join(errors_of(write(tmp_path, raw)))


def test_the_drivers_test_profile_is_valid(tmp_path: Path) -> None:
    shutil.copytree(REPO / "profiles" / "trust", tmp_path / "trust")
    shutil.copy(REPO / "tests" / "integration" / "profiles" / "drivers.yaml", tmp_path)
    prof = load_profile(tmp_path / "drivers.yaml")
    assert prof.boot_tests[0].hardware == tuple(ALL) and prof.architectures == ("x86_64", "aarch64", "riscv64")
