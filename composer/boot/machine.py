"""How to boot a built output in QEMU: firmware and media by architecture and output, and a console watch.

Registries, not branches: the firmware, memory and CD attachment of each architecture are its row in
:mod:`composer.arch` (the pflash variables are copied per boot; a loader such as riscv64's U-Boot is QEMU's
``-kernel``; an architecture's ``-bios``, riscv64's OpenSBI, is given to every boot), and :data:`MEDIA`
says how each kind of output is attached (an output type's row in :mod:`composer.image.outputs` names its
medium). Software emulation (TCG) is the default; KVM is used only when ``/dev/kvm`` opens and ``VCOMP_KVM=1``
is set (it does not work on every host). The one way to build a QEMU command (:func:`command`) and to watch its
console (:func:`watch`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from composer import settings
from composer.arch import Arch, Firmware
from composer.boot.forward import Forward, netdev
from composer.boot.verdict import GRACE, Expected, Seen, Verdict
from composer.errors import ToolError, UserError
from composer.hardware import Disk, attach
from composer.image.secureboot import enroll
from composer.run import run_attached, stream


@dataclass(frozen=True, slots=True, kw_only=True)
class Boot:
    """One boot: the image file(s), its media kind, the firmware, and where the variables copy goes."""

    arch: Arch
    files: tuple[Path, ...]
    media: str          # cdrom | disk | kernel
    firmware: str       # bios | uefi | none (direct kernel boot)
    work: Path
    format: str = "raw"
    cmdline: str = ""
    hardware: tuple[str, ...] = ()   # names in composer.hardware.HARDWARE (the boot tests' hardware)
    secure_boot: Path | None = None  # a certificate enrolled as PK, KEK and db: UEFI with Secure Boot enforced


def firmware_of(b: Boot) -> Firmware | None:
    """The firmware row of a boot (the architecture's Secure Boot row with ``secure_boot``), None for built-in."""
    if b.secure_boot is not None:
        if b.firmware != "uefi" or b.arch.secure_boot is None:
            raise UserError(f"{b.arch.name} cannot boot with Secure Boot on {b.firmware} firmware here",
                            hint="Secure Boot needs --firmware uefi on x86_64 or aarch64")
        return b.arch.secure_boot
    return b.arch.firmware.get(b.firmware)


def firmware_args(b: Boot) -> list[str]:
    bios = ["-bios", b.arch.qemu_bios] if b.arch.qemu_bios else []
    if b.secure_boot is None and b.firmware in ("bios", "none"):  # SeaBIOS is QEMU's default; "none": -kernel
        return bios
    fw = firmware_of(b)
    if fw is None or fw.builtin:
        raise UserError(f"{b.arch.name} cannot boot with {b.firmware} firmware here",
                        hint="pick another --firmware")
    for f in fw.files:
        if not Path(f).is_file():
            raise ToolError(f"firmware file {f} is missing", hint=f"install it with: apt-get install {fw.package}")
    return [*bios, *_loader(fw), *_pflash(b, fw), *fw.extra]


def _loader(fw: Firmware) -> list[str]:
    """A firmware stage QEMU starts as its kernel (riscv64: U-Boot, which boots the disk's ESP)."""
    return ["-kernel", fw.loader] if fw.loader else []


def _pflash(b: Boot, fw: Firmware) -> list[str]:
    if not fw.code:
        return []
    b.work.mkdir(parents=True, exist_ok=True)
    vars_copy = b.work / f"{b.arch.name}-vars.fd"
    if b.secure_boot is not None:
        enroll(Path(fw.vars), vars_copy, b.secure_boot)
    else:
        shutil.copyfile(fw.vars, vars_copy)
    return ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={fw.code}",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"]


def _ide_cdrom(image: Path) -> list[str]:
    return ["-cdrom", str(image)]


def _scsi_cdrom(image: Path) -> list[str]:
    drive = f"if=none,id=cd0,media=cdrom,readonly=on,format=raw,file={image}"
    return ["-drive", drive, "-device", "virtio-scsi-pci,id=scsi0", "-device", "scsi-cd,drive=cd0,bus=scsi0.0"]


CDROMS: Mapping[str, Callable[[Path], list[str]]] = {"ide": _ide_cdrom, "virtio-scsi": _scsi_cdrom}  # Arch.qemu_cdrom


def _cdrom(b: Boot) -> list[str]:
    return CDROMS[b.arch.qemu_cdrom](b.files[0])


def _disk(b: Boot) -> list[str]:
    return ["-drive", f"if=virtio,format={b.format},file={b.files[0]}"]


def _kernel(b: Boot) -> list[str]:
    initrd, kernel = b.files[0], b.files[1]
    return ["-kernel", str(kernel), "-initrd", str(initrd), "-append", b.cmdline]


MEDIA: Mapping[str, Callable[[Boot], list[str]]] = {"cdrom": _cdrom, "disk": _disk, "kernel": _kernel}


def kvm_usable() -> bool:
    if not settings.KVM.get():
        return False
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class GdbStub:
    """QEMU's gdb stub, on 127.0.0.1 only (QEMU's ``-s`` listens on every address); ``wait``: the CPU stops at
    the first instruction until gdb says ``continue`` (``-S``)."""

    port: int = 1234
    wait: bool = True

    def args(self) -> list[str]:
        return ["-gdb", f"tcp:127.0.0.1:{self.port}", *(["-S"] if self.wait else [])]


def command(b: Boot, *, gdb: GdbStub | None = None, network: bool = True,
            forwards: Sequence[Forward] = (), reboots: bool = False) -> list[str]:
    """The QEMU command of a boot; ``forwards``: host ports of 127.0.0.1 forwarded to guest ports (allocated:
    :func:`composer.boot.forward.allocate`); ``gdb``: open the gdb stub; ``reboots``: a guest reboot restarts the
    machine (an A/B update test) instead of ending the boot."""
    if b.media not in MEDIA:
        raise UserError(f"cannot boot media '{b.media}'", hint=f"bootable media: {', '.join(MEDIA)}")
    if forwards and not network:
        raise UserError("ports cannot be forwarded to a boot without network", hint="drop --forward")
    accel = ["-accel", "kvm", "-cpu", "host"] if kvm_usable() else []
    machine = list(b.arch.qemu_machine) if not accel else [b.arch.qemu_machine[0], b.arch.qemu_machine[1]]
    fw = firmware_of(b) if b.firmware not in ("bios", "none") else None
    if fw is not None and fw.machine:
        machine = [*fw.machine, *machine[2:]]
    # a user-mode netdev on an explicit virtio-net-pci device: QEMU 7.2's riscv64 virt machine creates no NIC
    # from -nic (nor from the default NIC), so every architecture names the device
    hw = attach(b.arch.name, b.hardware)
    nic = hw.nic("net0") if hw.nic else ["-device", "virtio-net-pci,netdev=net0"]
    net = ["-netdev", netdev(forwards), *nic] if network else ["-nic", "none"]
    return [b.arch.qemu, *machine, *accel, "-m", b.arch.qemu_memory, "-smp", "1", "-display", "none",
            "-monitor", "none", "-serial", "stdio", *([] if reboots else ["-no-reboot"]), *net, *firmware_args(b),
            *_medium(b, hw.disk),
            *hw.extra, *(gdb.args() if gdb is not None else [])]


def _medium(b: Boot, disk: Callable[[Disk, str], list[str]] | None) -> list[str]:
    """The boot medium, attached by the boot's disk hardware (nvme-root) when it has one."""
    if disk is None:
        return MEDIA[b.media](b)
    if b.media != "disk":
        raise UserError(f"boot hardware {', '.join(b.hardware)} attaches a disk, but this output boots from "
                        f"{b.media}", hint="list only disk outputs in that boot test's outputs")
    return disk(Disk(path=b.files[0], format=b.format), b.arch.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Watch:
    log: str
    returncode: int
    timed_out: bool
    seconds: float
    missing: tuple[str, ...]
    failures: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return not self.missing and not self.failures

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log.splitlines()[-n:])


def match_in_order(lines: Sequence[str], expected: Sequence[str]) -> tuple[str, ...]:
    at = 0
    for i, want in enumerate(expected):
        found = next((n for n in range(at, len(lines)) if want in lines[n]), None)
        if found is None:
            return tuple(expected[i:])
        at = found + 1
    return ()


class Probe(Protocol):
    """Work done against the running guest once a test's expected lines were seen (host-side checks)."""

    def start(self, group: int) -> None: ...
    def busy(self) -> bool: ...
    def stop(self) -> None: ...


def watch(cmd: Sequence[str], expected: Expected, *, timeout: float, log_path: Path,
          echo: Callable[[Seen], None] | None = None, grace: float = GRACE, probe: Probe | None = None,
          ready_ends: bool = True) -> Watch:
    """Boot, capture the console to ``log_path``; stop once every test's expected lines (``expected``: one
    group per test, each in order, or one plain list) appeared and init reported ready, soon after a failure
    is certain (after ``grace`` seconds of quiet for late lines: :mod:`composer.boot.verdict`), or at the
    timeout. ``echo`` gets every console line with what it meant (:attr:`Seen.notable` ones are to show).
    ``probe`` is started for each test as soon as its lines are all seen; a passing boot runs until it is done
    (a certain failure does not wait for it)."""
    lines: list[str] = []
    verdict = Verdict.of(expected, grace=grace, ready_ends=ready_ends)

    def finished() -> bool:
        if probe is not None and not verdict.certain and probe.busy():
            return False
        return verdict.done(time.monotonic())

    def on_line(line: str) -> bool:
        lines.append(line)
        seen = verdict.feed(line, time.monotonic())
        if echo is not None:
            echo(seen)
        if probe is not None:
            for group in verdict.met_groups():
                probe.start(group)
        return finished()

    start = time.monotonic()
    try:
        rc, timed_out = stream(cmd, on_line, timeout=timeout, idle=finished)
    finally:
        if probe is not None:
            probe.stop()
    seconds = time.monotonic() - start
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("\n".join(lines) + "\n")
    return Watch(log="\n".join(lines), returncode=rc, timed_out=timed_out, seconds=seconds,
                 missing=verdict.missing(), failures=tuple(verdict.failures))


def interactive(cmd: Sequence[str]) -> int:
    """The console on the user's terminal (Ctrl-A X quits QEMU)."""
    return run_attached([c if c != "stdio" else "mon:stdio" for c in cmd])
