"""What the image's init reads, by kind of init, pure: a registry keyed by the profile's ``init:`` package.

- ``init`` (the project's init, the default for any other name): ``/etc/veridian/services.d/NNN-NAME``, one
  file per enabled service (``composer.pkgmgr.services.init_files``);
- ``systemd`` (Debian's systemd and systemd-sysv, imported with their closure): the services as unit files
  (``composer.pkgmgr.units``), the boot-test contract's units and script (``composer.pkgmgr.unitboot``),
  ``/etc/machine-id`` as ``uninitialized`` (systemd makes the id at first boot) and ``/init`` pointing to
  systemd, so that an initramfs boots it as PID 1 (``/sbin/init`` is systemd-sysv's); ``systemd-firstboot``
  masked (it would prompt on the console at the first boot).

``composer.pkgmgr.actions.apply_services`` writes what the kind returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from composer.errors import UserError
from composer.pkgmgr import services, unitboot, units
from composer.pkgmgr.services import Effective, GroupId, UserIds

SYSTEMD_BINARY = "usr/lib/systemd/systemd"
# Masked: the image is configured at build (hostname, users); systemd-firstboot would prompt on the console at the
# first boot (the machine id is "uninitialized") and wait for a key, so an unattended boot never ends.
MASKED = ("systemd-firstboot.service",)


@dataclass(frozen=True, slots=True, kw_only=True)
class InitFiles:
    """Root-relative path -> (text, mode); link path -> target; directories whose entries are all ours
    (emptied before writing, so a service removed from the image leaves no stale file)."""

    files: Mapping[str, tuple[str, int]] = field(default_factory=lambda: MappingProxyType({}))
    links: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    owned_dirs: tuple[str, ...] = ()


Writer = Callable[[Sequence[Effective], Sequence[str], UserIds, GroupId], InitFiles]


@dataclass(frozen=True, slots=True, kw_only=True)
class InitKind:
    name: str
    summary: str
    files: Writer
    unbootable: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # output type -> why


def _veridian(chosen: Sequence[Effective], order: Sequence[str], user: UserIds, gid: GroupId) -> InitFiles:
    if not chosen:
        return InitFiles()
    return InitFiles(files={rel: (text, 0o644) for rel, text in services.init_files(chosen, order, user, gid).items()},
                     owned_dirs=(services.INIT_DIR,))


def _systemd(chosen: Sequence[Effective], order: Sequence[str], user: UserIds, gid: GroupId) -> InitFiles:
    for e in chosen:   # the same account checks as init's files: the user and group exist in the image
        services.account_ids(e, user, gid)
    svc, contract = units.service_units(chosen, order), unitboot.contract_units(order)
    files = {rel: (text, 0o644) for rel, text in sorted({**svc.files, **contract.files}.items())}
    files[unitboot.SCRIPT_REL] = (unitboot.SCRIPT, 0o755)
    files[unitboot.DHCP_SCRIPT_REL] = (unitboot.DHCP_SCRIPT, 0o755)
    files["etc/machine-id"] = ("uninitialized\n", 0o444)
    links = {**svc.links, **contract.links, **{f"{units.UNIT_DIR}/{name}": "/dev/null" for name in MASKED}}
    return InitFiles(files=files, links={**dict(sorted(links.items())), "init": SYSTEMD_BINARY})


VERIDIAN = InitKind(name="init", summary="the project's init (recipes/init): services.d", files=_veridian)
KINDS: Mapping[str, InitKind] = MappingProxyType({
    "init": VERIDIAN,
    "systemd": InitKind(name="systemd", summary="Debian's systemd: unit files in /etc/systemd/system",
                        files=_systemd, unbootable=MappingProxyType({
                            "disk": "systemd would run from the disk's initramfs (the whole root) and never mount the "
                                    "root partition: switching root needs systemd's initrd mode, which needs udev"})),
})


def check_outputs(init_package: str | None, outputs: Sequence[tuple[str, str]], where: str) -> None:
    """Refuse an output (name, type) the init cannot boot, naming it and why."""
    kind = kind_of(init_package)
    for name, kind_of_output in outputs:
        if kind_of_output in kind.unbootable:
            raise UserError(f"{where}: output '{name}' ({kind_of_output}) cannot boot with init: {init_package}: "
                            f"{kind.unbootable[kind_of_output]}",
                            hint="use the initramfs output (or iso: its initrd is the same root) with this init")


def kind_of(init_package: str | None) -> InitKind:
    """The kind of the profile's init package (the project's init for a name the registry does not know)."""
    return KINDS.get(init_package or "", VERIDIAN)
