"""A diskimage-builder block-device plugin: GPT partitions mapped with ``partx`` instead of ``kpartx``.

DIB's own ``partitioning`` plugin writes the table with ``sgdisk`` and maps the partitions through
device-mapper (``kpartx``, ``/dev/mapper/loopXpN``); a machine without device-mapper (no
``/dev/mapper/control``) cannot map them. This plugin, registered for DIB's process only under the entry point
group ``diskimage_builder.block_device.plugin`` as ``vcomp_partitioning`` (:mod:`composer.image.dib.plan`),
keeps DIB's configuration and partition nodes and changes two steps:

- the table is written by ``sfdisk`` (util-linux) from a script with fixed disk and partition GUIDs, so the
  table is the same bytes in every build (DIB's writers take random ones);
- the partitions are added to the loop device with ``partx -u`` (the kernel's BLKPG ioctl: ``/dev/loopXpN``)
  and removed with ``partx -d``.

It is imported by DIB's ``dib-block-device`` process, never by vcomp itself; DIB is not patched.
"""

# diskimage-builder is untyped and optional (the ``dib`` extra): this module is only imported by DIB.
from __future__ import annotations

import logging
import tempfile
import time
from typing import Any

from diskimage_builder.block_device.exception import BlockDeviceSetupException
from diskimage_builder.block_device.level1.partitioning import Partitioning
from diskimage_builder.block_device.utils import exec_sudo, parse_rel_size_spec

logger = logging.getLogger(__name__)
MIB = 1024 * 1024


class PartxPartitioning(Partitioning):  # type: ignore[misc]
    """DIB's GPT partitioning with the table written by sfdisk and the partitions mapped by partx."""

    def __init__(self, config: dict[str, Any], default_config: dict[str, Any], state: dict[str, Any]) -> None:
        super().__init__(config, default_config, state)
        if self.label != "gpt":
            raise ValueError("vcomp_partitioning writes GPT only (label: gpt)")
        self.disk_guid = str(config.get("disk-guid", ""))
        self.guids = {str(p["name"]): str(p.get("guid", "")) for p in config["partitions"]}
        self.times = config.get("ext4-times")   # {partition, epoch}: the ext4 whose times to set after umount

    def _create_gpt(self) -> None:
        lines = ["label: gpt", "unit: sectors"]
        if self.disk_guid:
            lines.append(f"label-id: {self.disk_guid}")
        free = self.disk_size - 2 * MIB
        start = MIB // 512
        for number, part in enumerate(self.partitions, start=1):
            size = parse_rel_size_spec(part.get_size(), free)[1] // MIB * MIB
            guid = self.guids.get(part.get_name(), "")
            fields = [f"start={start}", f"size={size // 512}", f"type={part.get_type()}",
                      f"name={part.get_name()}", *([f"uuid={guid}"] if guid else [])]
            lines.append(", ".join(fields))
            self.state["blockdev"][part.get_name()] = {"device": f"{self.device_path}p{number}"}
            start += size // 512
            free -= size
        script = "\n".join(lines) + "\n"
        logger.debug("sfdisk script:\n%s", script)
        exec_sudo(["sh", "-c", 'printf "%s" "$1" | sfdisk --no-reread --no-tell-kernel --wipe always "$2"',
                   "sfdisk", script, self.device_path])

    def create(self) -> None:
        self.number_of_partitions += 1
        if self.number_of_partitions > 1:
            return
        self.image_path = self.state["blockdev"][self.base]["image"]
        self.device_path = self.state["blockdev"][self.base]["device"]
        self.disk_size = self._size_of_block_dev(self.image_path)
        self._create_gpt()
        exec_sudo(["sync"])
        exec_sudo(["partx", "-u", self.device_path])  # -u: adds them, or keeps those the kernel found

    def umount(self) -> None:
        self.number_of_partitions -= 1
        if self.number_of_partitions == 0:   # every file system is unmounted now (DIB unmounts in reverse order)
            if self.times:
                _set_ext4_times(self.state["blockdev"][self.times["partition"]]["device"], int(self.times["epoch"]))
            _remove_partitions(self.state["blockdev"][self.base]["device"])


def _set_ext4_times(device: str, epoch: int) -> None:
    """Every inode's times and the superblock's mount/write times set to ``epoch`` with debugfs (the kernel
    stamped them while DIB copied the tree in), then ``e2fsck -fn`` checks the file system."""
    from composer.image.dib.plan import times_script, used_inodes
    script = times_script(used_inodes(exec_sudo(["dumpe2fs", device])), epoch)
    with tempfile.NamedTemporaryFile("w", prefix="vcomp-ext4-times-", suffix=".debugfs") as f:
        f.write(script)
        f.flush()
        out = exec_sudo(["debugfs", "-w", "-f", f.name, device])
    errors = [ln for ln in out.splitlines() if ln.strip() and not ln.startswith("debugfs")]  # its banner, echoes
    if errors:
        raise BlockDeviceSetupException("debugfs could not set the ext4 times: " + "; ".join(errors[:5]))
    exec_sudo(["e2fsck", "-fn", device])


def _remove_partitions(device: str, tries: int = 10) -> None:
    """``partx -d`` the loop device's partitions; a partition the kernel still holds for a moment after its
    umount is retried, and one it keeps goes when DIB detaches the loop device (a warning, not a failure)."""
    for attempt in range(tries):
        try:
            exec_sudo(["partx", "-d", device])
            return
        except BlockDeviceSetupException as exc:
            if attempt == tries - 1:
                logger.warning("partx -d %s failed (%s); detaching the loop device removes them", device, exc)
                return
            time.sleep(1)
