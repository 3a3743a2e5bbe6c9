"""The effective services as systemd units, pure: for a profile whose init is systemd (``init: systemd``).

The same effective set as init's ``services.d`` (``composer.pkgmgr.services``), written as
``/etc/systemd/system/NAME.service`` with, for each enabled service, its enablement link in
``multi-user.target.wants``. Every value is escaped for systemd's syntax (:func:`exec_line`,
:func:`environment_line`); a value systemd cannot hold on one line (a newline or a control character) is
refused naming the package, the service and the field. The units keep the boot-test contract of the
project's init through ``/etc/veridian/systemd/vcomp-boot`` (``composer.pkgmgr.unitboot``):
``VCOMP-SERVICE: up NAME`` from ``ExecStartPost`` once the readiness probe passes, ``stopped``/``exited``
from ``ExecStopPost``, ``failed`` from an ``OnFailure=`` unit. Deterministic: sorted, no timestamps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from composer.package.accounts import ActionConflict
from composer.pkgmgr.services import Effective

UNIT_DIR = "etc/systemd/system"
WANTS_DIR = f"{UNIT_DIR}/multi-user.target.wants"
HELPER = "/etc/veridian/systemd/vcomp-boot"   # the marker and probe script the units run (unitboot.SCRIPT)
RESERVED_PREFIX = "vcomp-"                      # the contract's own units
RESTART_BURST = 6                                # the first start and 5 restarts, as the project's init
NETWORK_UNIT = "vcomp-network.service"          # every service starts after the network, as under the project's init
READY_TIMEOUT = 120                              # seconds: the probe's own bound (vcomp.servicewait) fits in it

SAFE_WORD = re.compile(r"[A-Za-z0-9_./:=,+@-]+")
TYPES: Mapping[str, str] = {"none": "exec", "notify": "notify", "tcp": "exec", "file": "exec"}


class UnitValueError(ActionConflict):
    """A service value systemd's unit syntax cannot hold."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitSet:
    """Files (root-relative path -> text) and links (root-relative path -> target) to write."""

    files: Mapping[str, str]
    links: Mapping[str, str]


def _line_value(value: str, what: str) -> str:
    """A value that must fit on one line of a unit file."""
    if not value.isprintable():
        raise UnitValueError(f"{what}: {value!r} has a newline or a control character, which a systemd unit "
                             "line cannot hold", hint="give a single-line value, or wrap the command in a script")
    return value


def exec_word(word: str, what: str = "command word") -> str:
    """One word of ``ExecStart=``: bare when it is plain, else double-quoted with ``\\`` and ``"`` escaped;
    ``%`` is written ``%%`` (a specifier otherwise) and ``$`` ``$$`` (an environment variable otherwise)."""
    _line_value(word, what)
    escaped = word.replace("%", "%%").replace("$", "$$")
    if SAFE_WORD.fullmatch(word):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_line(words: Sequence[str], what: str = "command") -> str:
    """A command as the value of ``ExecStart=``; its first word is an absolute path (checked when the service
    was read), so it cannot start with one of systemd's prefixes (``-@:+!``)."""
    if not words or not words[0].startswith("/"):
        raise UnitValueError(f"{what}: the first word must be an absolute path", hint="give /usr/bin/NAME")
    return " ".join(exec_word(w, what) for w in words)


def environment_line(name: str, value: str, what: str = "environment") -> str:
    """``"NAME=VALUE"`` for ``Environment=``: quoted, ``\\`` and ``"`` escaped, ``%`` as ``%%`` (no ``$``
    expansion happens in ``Environment=``)."""
    _line_value(value, f"{what} {name}")
    text = f"{name}={value}".replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def path_value(path: str, what: str) -> str:
    """A path setting (``WorkingDirectory=``): one line, ``%`` as ``%%``."""
    return _line_value(path, what).replace("%", "%%")


def capability_name(cap: str) -> str:
    """``net_bind_service`` -> ``CAP_NET_BIND_SERVICE``."""
    upper = cap.upper().replace("-", "_")
    return upper if upper.startswith("CAP_") else f"CAP_{upper}"


def _check_name(e: Effective) -> None:
    if "@" in e.name or e.name.startswith(RESERVED_PREFIX):
        why = "an @ makes it a template instance" if "@" in e.name else "vcomp- names are the boot contract's units"
        raise UnitValueError(f"package '{e.package}': service '{e.name}' cannot be a systemd unit name ({why})",
                             hint="rename the service (the profile cannot rename it: the package must)")


def service_unit(e: Effective, enabled: frozenset[str]) -> str:
    """``NAME.service`` for one effective service. ``after`` names become ``After=``/``Wants=`` on the enabled
    services among them (a name the image does not have is ignored, as by the project's init)."""
    _check_name(e)
    s = e.service
    where = f"package '{e.package}': service '{e.name}'"
    kind = s.readiness.partition(":")[0]
    deps = " ".join(f"{a}.service" for a in sorted(set(s.after)) if a in enabled and a != e.name)
    unit = [f"Description={e.name} ({e.package}), a Veridian service",
            f"After={NETWORK_UNIT}{' ' + deps if deps else ''}",
            *([f"Wants={deps}"] if deps else []), f"OnFailure=vcomp-failed@{e.name}.service",
            "StartLimitIntervalSec=300", f"StartLimitBurst={RESTART_BURST}"]
    service = [f"Type={TYPES[kind]}", f"ExecStart={exec_line(s.command, f'{where} command')}",
               f"ExecStartPost=+{HELPER} up {e.name} {s.readiness}",
               f"ExecStopPost=+{HELPER} down {e.name}", f"User={s.user}", *([f"Group={s.group}"] if s.group else []),
               f"WorkingDirectory={path_value(s.working_directory, f'{where} working-directory')}",
               *(f"Environment={environment_line(k, v, f'{where} environment')}"
                 for k, v in sorted(s.environment.items())),
               f"Restart={s.restart}", "RestartSec=1", "RestartSteps=4", "RestartMaxDelaySec=16",
               f"TimeoutStartSec={READY_TIMEOUT}"]   # output: the journal (never raw on the console: no fake markers)
    if s.capabilities:
        caps = " ".join(capability_name(c) for c in sorted(set(s.capabilities)))
        service += [f"AmbientCapabilities={caps}", f"CapabilityBoundingSet={caps}"]
    return render(f"the service '{e.name}' of package '{e.package}' (docs/services.md)",
                   {"Unit": unit, "Service": service, "Install": ["WantedBy=multi-user.target"]})


def render(origin: str, sections: Mapping[str, Sequence[str]]) -> str:
    body = "\n".join(f"[{name}]\n" + "".join(f"{line}\n" for line in lines) for name, lines in sections.items())
    return f"# generated by vcomp from {origin}\n{body}"


def service_units(services: Sequence[Effective], order: Sequence[str]) -> UnitSet:
    """Every service's unit (a disabled one too, not linked) and the enabled ones' links, sorted by name."""
    enabled = frozenset(order)
    files = {f"{UNIT_DIR}/{e.name}.service": service_unit(e, enabled) for e in sorted(services, key=lambda x: x.name)}
    links = {f"{WANTS_DIR}/{name}.service": f"/{UNIT_DIR}/{name}.service" for name in sorted(order)}
    return UnitSet(files=files, links=links)
