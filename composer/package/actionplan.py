"""The union of the packages' ``[actions]`` for one image, pure: tmpfiles, alternatives, services, first-boot
actions and generated files (users and groups: ``composer.package.accounts``).

Every function takes the declarations as ``(package name, Actions)`` pairs and returns sorted data;
conflicts between packages raise :class:`composer.package.accounts.ActionConflict` naming both packages.
``composer.pkgmgr.actions`` writes the result into a root through the confined layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from composer.package import pamauth
from composer.package.accounts import HINT, ActionConflict
from composer.package.actions import RUNTIME, Actions, Alternative, Service, TmpFile

Declared = Sequence[tuple[str, Actions]]
# tmpfiles below RUNTIME exist only at run time (tmpfs or pseudo file systems): applied by init at every boot


def is_runtime(rel: str) -> bool:
    return rel.split("/", 1)[0] in RUNTIME


def merge_tmpfiles(declared: Declared) -> list[tuple[str, TmpFile]]:
    """(package, entry) sorted by path; one path declared differently by two packages is a conflict."""
    out: dict[str, tuple[str, TmpFile]] = {}
    for package, a in declared:
        for t in a.tmpfiles:
            if t.rel in out and out[t.rel][1] != t:
                first, other = out[t.rel]
                raise ActionConflict(f"tmpfiles path '{t.path}' is declared differently by packages '{first}' "
                                     f"({other.type} {other.effective_mode:04o} {other.user}:{other.group}) and "
                                     f"'{package}' ({t.type} {t.effective_mode:04o} {t.user}:{t.group})", hint=HINT)
            out.setdefault(t.rel, (package, t))
    entries = [out[k] for k in sorted(out)]
    for package, t in entries:
        if t.type == "f" and is_runtime(t.rel) and "\n" in t.argument.rstrip("\n"):
            raise ActionConflict(f"package '{package}': tmpfiles 'f {t.path}' is made at every boot (it is below "
                                 f"/{t.rel.split('/')[0]}): its argument must be one line",
                                 hint="ship the file in the package instead")
    return entries


@dataclass(frozen=True, slots=True, kw_only=True)
class Chosen:
    """An alternative's winner: ``link`` -> ``/etc/alternatives/NAME`` -> ``path``."""

    name: str
    link: str
    path: str
    package: str
    candidates: tuple[str, ...]


def choose_alternatives(declared: Declared, exists: Callable[[str], bool]) -> list[Chosen]:
    """Per name, the highest priority among the candidates whose path exists (ties: the smaller path, then the
    package name); every candidate of one name must agree on the link."""
    by_name: dict[str, list[tuple[str, Alternative]]] = {}
    for package, a in declared:
        for x in a.alternatives:
            by_name.setdefault(x.name, []).append((package, x))
    links: dict[str, str] = {}
    out = []
    for name, offers in sorted(by_name.items()):
        first_package, first = offers[0]
        for package, x in offers[1:]:
            if x.link != first.link:
                raise ActionConflict(f"alternative '{name}' has link '{first.link}' in package '{first_package}' "
                                     f"and '{x.link}' in package '{package}'", hint=HINT)
        if first.link in links:
            raise ActionConflict(f"link '{first.link}' belongs to alternatives '{links[first.link]}' and '{name}'",
                                 hint=HINT)
        links[first.link] = name
        present = [(p, x) for p, x in offers if exists(x.path.lstrip("/"))]
        if not present:
            continue
        package, best = min(present, key=lambda px: (-px[1].priority, px[1].path, px[0]))
        out.append(Chosen(name=name, link=best.link, path=best.path, package=package,
                          candidates=tuple(sorted({f"{x.path} {x.priority}" for _p, x in offers}))))
    return out


def merge_services(declared: Declared) -> dict[str, tuple[str, Service]]:
    """name -> (package, service); two packages declaring one name is a conflict. ``after`` only orders (as
    systemd's After=): naming a service the image does not have is not an error."""
    out: dict[str, tuple[str, Service]] = {}
    for package, a in declared:
        for s in a.services:
            if s.name in out:
                raise ActionConflict(f"service '{s.name}' is declared by packages '{out[s.name][0]}' and '{package}'",
                                     hint=HINT)
            out[s.name] = (package, s)
    return dict(sorted(out.items()))


# ---------------------------------------------------------------- first-boot actions

FIRSTBOOT: Mapping[str, str] = MappingProxyType({
    "machine-id": """#!/bin/sh
# the machine id, made at the first boot (an image never carries one: every machine must differ)
[ -s /etc/machine-id ] && exit 0
id=$(tr -d '-' </proc/sys/kernel/random/uuid)
[ -n "$id" ] || exit 1
printf '%s\\n' "$id" >/etc/machine-id 2>/dev/null || printf '%s\\n' "$id" >/run/machine-id
""",
    "ssh-host-keys": """#!/bin/sh
# the SSH host keys, made at the first boot (an image never carries private host keys)
command -v ssh-keygen >/dev/null 2>&1 || { echo "ssh-keygen is not installed"; exit 0; }
[ -s /etc/ssh/ssh_host_ed25519_key ] && exit 0
mkdir -p /etc/ssh && ssh-keygen -A
""",
    "ldconfig": """#!/bin/sh
# the shared-library cache, made at the first boot (ldconfig -r needs privileges the build does not have)
command -v ldconfig >/dev/null 2>&1 || { echo "ldconfig is not installed"; exit 0; }
[ -s /etc/ld.so.cache ] && exit 0
ldconfig
""",
})


def firstboot_actions(declared: Declared) -> dict[str, list[str]]:
    """first-boot action -> the packages that asked for it (``ldconfig = true`` asks for ``ldconfig``)."""
    out: dict[str, list[str]] = {}
    for package, a in declared:
        for name in (*a.firstboot, *(("ldconfig",) if a.ldconfig else ())):
            out.setdefault(name, []).append(package)
    return {k: sorted(set(v)) for k, v in sorted(out.items())}


# ---------------------------------------------------------------- generated files

CA_DIR = "usr/share/ca-certificates"
CA_CONF = "etc/ca-certificates.conf"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"


def ca_bundle(conf: str | None, certificates: Mapping[str, bytes]) -> bytes:
    """``/etc/ssl/certs/ca-certificates.crt``: the certificates (paths below /usr/share/ca-certificates) that
    ``/etc/ca-certificates.conf`` selects (a line ``PATH`` selects, ``!PATH`` deselects, ``#`` comments; no file:
    every ``.crt``), concatenated in path order, each ending in a newline."""
    if conf is None:
        chosen = sorted(p for p in certificates if p.endswith(".crt"))
    else:
        lines = [line.strip() for line in conf.splitlines()]
        chosen = sorted({line for line in lines if line and not line.startswith(("#", "!"))} & set(certificates))
    parts = [certificates[p] if certificates[p].endswith(b"\n") else certificates[p] + b"\n" for p in chosen]
    return b"".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Generator:
    """A generated file: where it goes, the directory and file it reads (below the root)."""

    output: str
    reads: str
    config: str
    make: Callable[[str | None, Mapping[str, bytes]], bytes]


def _pam_file(name: str) -> Callable[[str | None, Mapping[str, bytes]], bytes]:
    prefix = pamauth.FILES[name][1]

    def make(template: str | None, profiles: Mapping[str, bytes]) -> bytes:
        return pamauth.common_file(name, template or f"${prefix}_primary\n${prefix}_additional\n",
                                   {k: v.decode(errors="replace") for k, v in profiles.items()})
    return make


# name -> the files it generates. pam-auth: what libpam-runtime's `pam-auth-update --package` writes.
GENERATORS: Mapping[str, tuple[Generator, ...]] = MappingProxyType({
    "ca-certificates": (Generator(output=CA_BUNDLE, reads=CA_DIR, config=CA_CONF, make=ca_bundle),),
    "pam-auth": tuple(Generator(output=f"etc/pam.d/{name}", reads="usr/share/pam-configs",
                                config=f"usr/share/pam/{name}", make=_pam_file(name)) for name in pamauth.FILES),
})


def generators(declared: Declared) -> list[str]:
    return sorted({g for _p, a in declared for g in a.generate})
