"""Named virtual hardware for boot tests: ``boot-tests[].hardware`` names rows of :data:`HARDWARE`.

A profile is hostile input, so it never gives QEMU arguments: it names a row, and the row says what QEMU
attaches on each architecture. Every row is a PCI device (the x86_64 ``pc`` machine and the aarch64/riscv64
``virt`` machines all have a PCI bus). A row fills a *slot*: ``disk`` attaches the boot disk in place of the
default virtio-blk drive, ``nic`` is the model of the user-network NIC in place of virtio-net-pci, ``extra``
is a device added beside them. A boot attaches the union of the hardware of the tests that apply to its output
(one boot serves all of them). ``docs/drivers.md`` lists the rows, their driver packages and what the guest
shows of them. A pure table at the base of the layers (like :mod:`composer.arch`): the profile's validation
and the boot's QEMU command (:func:`composer.boot.machine.command`) both read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from composer.errors import UserError

ARCHES = frozenset({"x86_64", "aarch64", "riscv64"})
SLOTS = ("disk", "nic", "extra")
MAX_HARDWARE = 16   # names in one boot test (the registry is smaller; this bounds a hostile list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Disk:
    """The boot disk a ``disk`` row attaches: its file and QEMU format."""

    path: Path
    format: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Hardware:
    name: str
    family: str                     # storage | graphics | input | network
    driver: str                     # the profile's ``drivers:`` entry that drives it (package driver-NAME)
    qemu_device: str                # the QEMU device model, for the docs and errors
    description: str
    slot: str = "extra"             # disk | nic | extra
    arches: frozenset[str] = ARCHES
    extra: Mapping[str, tuple[str, ...]] | None = None   # per-arch extra arguments (default: -device MODEL)
    root_device: str = ""           # a disk row: the disk output's options.root-device it boots

    def extra_args(self, arch: str) -> list[str]:
        if self.extra is not None and arch in self.extra:
            return list(self.extra[arch])
        return ["-device", self.qemu_device]


# Architectures whose firmware cannot read an NVMe disk: riscv64's U-Boot 2023.01 (Debian 12's u-boot-qemu) has
# no NVMe driver (`nvme scan` finds nothing; boot_targets=qemu virtio0 scsi0 dhcp). There the same disk is also
# given to the firmware read-only as virtio-blk, to load the ESP's UKI; the kernel mounts its root from NVMe
# (the image's vcomp.root=/dev/nvme0n1p2), and a profile without driver virtio-blk does not see the copy at all.
FIRMWARE_NEEDS_VIRTIO_VIEW = frozenset({"riscv64"})


def _nvme_disk(disk: Disk, arch: str) -> list[str]:
    nvme = ["-drive", f"if=none,id=nvme0,format={disk.format},file={disk.path}",
            "-device", "nvme,serial=vcomp-root,drive=nvme0"]
    if arch not in FIRMWARE_NEEDS_VIRTIO_VIEW:
        return nvme
    # file.locking=off: QEMU locks an image against a second opener, even a read-only one in the same process
    return [*nvme, "-drive", f"if=virtio,format={disk.format},file={disk.path},readonly=on,file.locking=off"]


def _e1000e_nic(netdev: str) -> list[str]:
    return ["-device", f"e1000e,netdev={netdev}"]


# How a disk row attaches the boot disk, and how a nic row names its NIC model.
DISK_ATTACH: Mapping[str, Callable[[Disk, str], list[str]]] = {"nvme-root": _nvme_disk}
NIC_MODEL: Mapping[str, Callable[[str], list[str]]] = {"e1000e": _e1000e_nic}

_USB_KEYBOARD = ("-device", "qemu-xhci,id=xhci", "-device", "usb-kbd,bus=xhci.0")

HARDWARE: Mapping[str, Hardware] = {h.name: h for h in (
    Hardware(name="nvme-root", family="storage", driver="nvme", qemu_device="nvme", slot="disk", root_device="nvme",
             description="the boot disk as an NVMe controller's namespace (/dev/nvme0n1) instead of virtio-blk; "
                         "the disk output needs options.root-device: nvme"),
    Hardware(name="virtio-gpu", family="graphics", driver="virtio-gpu", qemu_device="virtio-gpu-pci",
             description="a VirtIO GPU: a DRM device, /dev/fb0 (virtio_gpudrmfb) and the framebuffer console",
             # x86_64's pc machine has a VGA card of its own: none, so fb0 is the virtio GPU's
             extra={"x86_64": ("-vga", "none", "-device", "virtio-gpu-pci")}),
    Hardware(name="virtio-keyboard", family="input", driver="virtio-input", qemu_device="virtio-keyboard-pci",
             description="a VirtIO keyboard (input device \"QEMU Virtio Keyboard\")"),
    Hardware(name="usb-keyboard", family="input", driver="usb-hid", qemu_device="usb-kbd",
             description="a USB keyboard on an xHCI controller (qemu-xhci; input device \"QEMU QEMU USB Keyboard\")",
             extra={a: _USB_KEYBOARD for a in ARCHES}),
    Hardware(name="e1000e", family="network", driver="e1000e", qemu_device="e1000e", slot="nic",
             description="an Intel 82574L NIC on QEMU's user network, in place of virtio-net"),
)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Attached:
    """The QEMU arguments of a boot's hardware, by slot (empty: QEMU's and the medium's defaults)."""

    disk: Callable[[Disk, str], list[str]] | None = None    # (the boot disk, the architecture)
    nic: Callable[[str], list[str]] | None = None
    extra: tuple[str, ...] = ()


def get(name: str) -> Hardware:
    try:
        return HARDWARE[name]
    except KeyError:
        raise UserError(f"unknown boot hardware '{name}'",
                        hint=f"boot-tests[].hardware names one of: {', '.join(HARDWARE)}") from None


def problems(names: Sequence[str], arches: Iterable[str]) -> list[str]:
    """What is wrong with one boot test's ``hardware`` list for these architectures (pure; one line each)."""
    out: list[str] = []
    if len(names) > MAX_HARDWARE:
        out.append(f"{len(names)} hardware names (at most {MAX_HARDWARE})")
    taken: dict[str, str] = {}
    for name in names:
        row = HARDWARE.get(name)
        if row is None:
            out.append(f"unknown hardware '{name}' (known: {', '.join(HARDWARE)})")
            continue
        for arch in sorted(set(arches) - row.arches):
            out.append(f"hardware '{name}' is not available on {arch}")
        if row.slot != "extra" and taken.setdefault(row.slot, name) != name:
            out.append(f"hardware '{name}' and '{taken[row.slot]}' both take the {row.slot} slot")
    return out


def attach(arch: str, names: Iterable[str]) -> Attached:
    """The arguments for ``names`` on ``arch`` (validated again: a manifest is read back from disk)."""
    rows = [get(n) for n in sorted(set(names))]
    wrong = problems([r.name for r in rows], [arch])
    if wrong:
        raise UserError(f"boot hardware: {wrong[0]}", hint="fix the profile's boot-tests[].hardware")
    disk = next((DISK_ATTACH[r.name] for r in rows if r.slot == "disk"), None)
    nic = next((NIC_MODEL[r.name] for r in rows if r.slot == "nic"), None)
    extra = tuple(arg for r in rows if r.slot == "extra" for arg in r.extra_args(arch))
    return Attached(disk=disk, nic=nic, extra=extra)
