"""The output registry: ONE row per output type holding everything about it.

A row says what the type is (name, description, file extension), where it exists (architectures and the
firmware kinds it boots with on each), which options a profile may give it (its JSON schema fragment,
osbuild-style: an option is accepted only by the types that read it), the host tools its builder runs,
the builder itself (a function in its own module under :mod:`composer.image.types`) and how ``vcomp
boot``/``vcomp test`` boot it (its medium). The profile validation, the lock's bootloader requests, the
build's tool check and the boot sweep read the row; a new output type is a new row and a new module, or a
row another distribution adds through the ``vcomp.outputs`` entry point (docs/plugins.md).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from composer.arch import ARCHES, DEFAULT_ARCHES
from composer.errors import UserError
from composer.image.dib import plan as dib_plan
from composer.image.types import dib, disk, esp, initramfs, iso, rootfs, uki
from composer.image.workshop import Builder
from composer.plugins.registry import Registry
from composer.schema import describe

# What each firmware needs from the lock (a provide the resolver selects a package for).
BOOTLOADERS: Mapping[str, str] = {"uefi": "bootloader:uefi-uki", "bios": "bootloader:bios"}

Problem = tuple[tuple[str | int, ...], str, str]  # (JSON path inside options, message, hint)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputType:
    name: str
    description: str
    arches: frozenset[str]
    firmware: Mapping[str, frozenset[str]]   # arch -> firmware kinds it can boot with
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # option -> JSON schema of its value
    tools: tuple[str, ...] = ()              # host tools the builder always runs
    option_tools: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)  # option -> value -> tools
    firmware_tools: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # firmware kind -> tools
    opt_in_firmware: frozenset[str] = frozenset()  # kinds built only when the profile's firmware option names them
    builder: Builder
    extension: str                           # of its (first) file, with the default options
    media: str = ""      # how it boots on its own: kernel (direct), cdrom, disk; "" when it does not
    tested: bool = False  # booted by `vcomp test` (an ESP is a disk medium, but only a part of a disk)
    # option -> value -> the boot loader provide an output with it needs from the lock (beside its firmware's)
    option_bootloaders: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # option -> values with which the output is not kept in the image cache (it writes a directory beside its files)
    uncached: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # what else decides its bytes, for the image cache's key (an external backend's version: dib's DIB)
    backend: Callable[[], str] | None = None

    def cacheable(self, options: Mapping[str, object]) -> bool:
        return not any(str(options.get(o)) in values for o, values in self.uncached.items())

    def bootloaders_for(self, options: Mapping[str, object]) -> tuple[str, ...]:
        """The boot loader provides the options ask for (a disk with slots: ab boots systemd-boot)."""
        return tuple(by_value[str(options[o])] for o, by_value in sorted(self.option_bootloaders.items())
                     if str(options.get(o)) in by_value)

    def firmware_for(self, arch: str, options: Mapping[str, object]) -> tuple[str, ...]:
        """The firmware kinds an output of this type boots with on ``arch``: those the ``firmware`` option names
        (of the kinds the type has there), else every kind but the opt-in ones."""
        wanted = options.get("firmware")
        kinds = self.firmware.get(arch, frozenset())
        return tuple(sorted(kinds & set(wanted) if isinstance(wanted, list) else kinds - self.opt_in_firmware))

    def options_schema(self) -> dict[str, Any]:
        """The JSON schema of this type's ``options`` mapping."""
        return {"type": "object", "additionalProperties": False,
                "properties": {k: dict(v) for k, v in sorted(self.options.items())}}

    def tools_for(self, options: Mapping[str, object], firmware: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The host tools building an output with ``options`` for ``firmware`` runs (checked before any work)."""
        extra = [tool for option, by_value in sorted(self.option_tools.items())
                 for tool in by_value.get(str(options.get(option, self.options[option].get("default"))), ())]
        return (*self.tools, *extra, *(t for fw in firmware for t in self.firmware_tools.get(fw, ())))

    def every_tool(self) -> frozenset[str]:
        """Every host tool the builder may run, whatever the options."""
        return frozenset({*self.tools, *(t for by_value in self.option_tools.values() for ts in by_value.values()
                                         for t in ts), *(t for ts in self.firmware_tools.values() for t in ts)})

    def option_problems(self, options: object) -> list[Problem]:
        """Every problem of a profile's ``options`` for this type: an option it does not read, a wrong value."""
        if not isinstance(options, dict):
            return []  # the profile schema reports a non-mapping
        problems: list[Problem] = []
        names = ", ".join(sorted(self.options))
        hint = f"options of {self.name}: {names}" if names else f"output type '{self.name}' takes no options"
        for key in sorted(k for k in options if k not in self.options):
            problems.append(((str(key),), f"output type '{self.name}' has no option '{key}'", hint))
        validator = Draft202012Validator(self.options_schema())
        for err in sorted(validator.iter_errors(options), key=lambda e: [str(p) for p in e.absolute_path]):
            if err.validator != "additionalProperties":
                problems.append((tuple(err.absolute_path), describe(err), hint))
        return problems


# Option schema fragments (the value of each option), shared by the types that read them.
FIRMWARE_OPTION: Mapping[str, Any] = {
    "type": "array", "items": {"enum": sorted({k for a in ARCHES.values() for k in a.firmware})},
    "minItems": 1, "uniqueItems": True,
    "description": "the firmware kinds to support, each where the architecture has it (at least one must be; "
                   "default: every kind the type boots with on the architecture, but BIOS for a disk, which is opt-in)"}
_FAT_TOOLS = ("mkfs.fat", "mcopy", "mmd")
_ALL = frozenset(ARCHES)
_EFI = frozenset(a.name for a in ARCHES.values() if "uefi" in a.firmware)  # riscv64's UEFI is U-Boot
_UEFI = {a: frozenset({"uefi"}) for a in sorted(_EFI)}
_ISO = frozenset(DEFAULT_ARCHES)  # not tried on riscv64 (U-Boot boots its disk; docs/riscv64.md)
_EVERY_FIRMWARE = {a: frozenset(ARCHES[a].firmware) for a in DEFAULT_ARCHES}
_DISK_FIRMWARE = {a: frozenset(ARCHES[a].firmware) for a in sorted(_EFI)}  # UEFI; BIOS (syslinux) on x86_64

OUTPUT_TYPES: Registry[OutputType] = Registry((
    OutputType(name="rootfs", arches=_ALL, firmware={}, description="the root filesystem as a tar",
               builder=rootfs.build, extension=rootfs.EXTENSION),
    OutputType(name="initramfs", arches=_ALL, firmware={}, description="newc cpio (gzip/zstd)",
               options={"compression": {"enum": ["gzip", "zstd", "none"], "default": "zstd"}},
               builder=initramfs.build, extension=initramfs.EXTENSION, media="kernel", tested=True),
    OutputType(name="uki", arches=_EFI, firmware=_UEFI, description="Unified Kernel Image on the systemd EFI stub",
               options={"firmware": FIRMWARE_OPTION}, builder=uki.build, extension=uki.EXTENSION),
    OutputType(name="esp", arches=_EFI, firmware=_UEFI, description="an EFI system partition image (FAT)",
               options={"firmware": FIRMWARE_OPTION}, tools=_FAT_TOOLS, builder=esp.build, extension=esp.EXTENSION,
               media="disk"),
    OutputType(name="iso", arches=_ISO,
               firmware=_EVERY_FIRMWARE,  # BIOS (isolinux, hybrid) where the architecture has it, and UEFI
               description="bootable ISO 9660 (BIOS via isolinux, hybrid, where the architecture has BIOS; UEFI)",
               options={"firmware": FIRMWARE_OPTION,
                        "hybrid": {"type": "boolean", "description": "also bootable as a disk (needs BIOS; as a "
                                                                     "disk it boots BIOS and, with UEFI, UEFI)"}},
               tools=_FAT_TOOLS, builder=iso.build, extension=iso.EXTENSION, media="cdrom", tested=True),
    OutputType(name="disk", arches=_EFI, firmware=_DISK_FIRMWARE,
               description="GPT disk (ESP + ext4/erofs/squashfs root), raw or qcow2; UEFI, and BIOS via syslinux "
                           "where the architecture has BIOS",
               options={"firmware": FIRMWARE_OPTION,
                        "format": {"enum": ["raw", "qcow2"], "default": "qcow2"},
                        "filesystem": {"enum": ["ext4", "erofs", "squashfs"], "default": "ext4"},
                        "root-device": {"enum": list(disk.ROOT_DEVICES), "default": "virtio",
                                        "description": "the bus the disk's root is found on at boot: virtio "
                                                       "(/dev/vda2) or nvme (/dev/nvme0n1p2, boot hardware "
                                                       "nvme-root)"},
                        "verity": {"type": "boolean", "default": False,
                                   "description": "a dm-verity hash tree of the root in a third partition, its root "
                                                  "hash on the UKI's command line; init maps the root through "
                                                  "dm-verity (needs drivers: [dm-verity] and package dmsetup; "
                                                  "docs/verified-boot.md)"},
                        "slots": {"enum": ["none", "ab"], "default": "none",
                                  "description": "ab: two root slots (A/B image updates), systemd-boot with boot "
                                                 "counting on the ESP, an update bundle beside the disk; UEFI only "
                                                 "(docs/updates/ab-slots.md)"},
                        "slot-size": {"type": "string", "pattern": "^[1-9][0-9]{0,5}[MG]$",
                                      "description": "with slots: ab, the size of each root slot, e.g. 512M "
                                                     "(default: twice the first root)"},
                        "generation": {"type": "integer", "minimum": 1, "maximum": 999999999, "default": 1,
                                       "description": "with slots: ab, the generation the disk's slot a holds"}},
               tools=(*_FAT_TOOLS, "qemu-img"),
               option_tools={"filesystem": {"ext4": ("mke2fs", "debugfs"), "erofs": ("mkfs.erofs",),
                                            "squashfs": ("mksquashfs",)}},
               firmware_tools={"bios": ("syslinux",)},
               option_bootloaders={"slots": {"ab": "bootloader:systemd-boot"}},
               uncached={"slots": frozenset({"ab"})},
               opt_in_firmware=frozenset({"bios"}),  # firmware: [bios, uefi]; a profile without it stays UEFI-only
               builder=disk.build, extension=disk.EXTENSION, media="disk", tested=True),
    OutputType(name="dib", arches=frozenset({"x86_64"}), firmware={"x86_64": frozenset({"uefi"})},
               description="diskimage-builder (optional extra [dib], root, loop devices): GPT disk (ESP with the "
                           "UKI + ext4 root) as qcow2, raw, vmdk, vpc and/or a tar (docs/dib.md)",
               options=dib_plan.OPTIONS,
               tools=(*_FAT_TOOLS, "qemu-img", "losetup", "partx", "sfdisk", "mkfs.ext4", "mount", "umount",
                      "fstrim", "tar", "dd"),
               builder=dib.build, extension=dib.EXTENSION, media="disk", tested=True, backend=dib.backend_version),
), group="vcomp.outputs", kind="output type", row_type=OutputType, name_of=lambda t: t.name,
    check=lambda t: plugin_problem(t))


MEDIA = ("", "kernel", "cdrom", "disk")   # how an output may boot on its own (composer.boot reads it)


def plugin_problem(kind: OutputType) -> str:
    """What is wrong with a plugin's output type ("" when nothing): the checks the built-in rows pass by
    construction (composer.plugins.load refuses the plugin with it)."""
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", kind.name):
        return f"name '{kind.name}' is not 1-32 of a-z, 0-9, '-' starting with a letter"
    if not kind.arches or not kind.arches <= set(ARCHES):
        return f"arches {sorted(kind.arches)} must be some of {', '.join(ARCHES)}"
    if not set(kind.firmware) <= kind.arches:
        return "firmware names an architecture outside arches"
    if kind.media not in MEDIA:
        return f"media '{kind.media}' is not one of {', '.join(repr(m) for m in MEDIA)}"
    if not callable(kind.builder) or not kind.extension.startswith("."):
        return "builder must be a function and extension start with '.'"
    try:
        Draft202012Validator.check_schema(kind.options_schema())
    except SchemaError as exc:
        return f"the schema of its options is not a JSON schema: {exc.message}"
    return ""


def every_option() -> dict[str, Any]:
    """Every option some type reads -> its value schema (the schemas of the types that read it, when they
    differ): the ``options`` of schemas/profile.schema.json, for editors and the value checks; which type
    reads which option is checked from the rows (:meth:`OutputType.option_problems`)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for kind in OUTPUT_TYPES.values():
        for name, fragment in kind.options.items():
            if dict(fragment) not in by_name.setdefault(name, []):
                by_name[name].append(dict(fragment))
    return {name: fragments[0] if len(fragments) == 1 else {"anyOf": fragments}
            for name, fragments in sorted(by_name.items())}


def profile_schema(document: Mapping[str, Any]) -> dict[str, Any]:
    """The profile schema completed from the registry: the output types and their options as registered now
    (the committed schemas/profile.schema.json is this, for editors; a test keeps them equal)."""
    doc = copy.deepcopy(dict(document))
    output = doc["$defs"]["output"]["properties"]
    output["type"]["enum"] = list(OUTPUT_TYPES)
    output["options"]["properties"] = every_option()
    return doc


def get_output_type(name: str) -> OutputType:
    try:
        return OUTPUT_TYPES[name]
    except KeyError:
        raise UserError(f"unknown output type '{name}'", hint=f"output types: {', '.join(OUTPUT_TYPES)} (plugins add "
                        "more: vcomp plugins)") from None
