"""Packaging mistakes a reviewer would flag: a table of checks over metadata and manifest."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from composer import spdx as licenses
from composer.package import globs
from composer.package.archive import Header
from composer.package.hardening import hardening_report
from composer.package.kmod import MODULE_DIRS
from composer.package.linkcheck import link_info, missing_needed, rpath_problems
from composer.package.manifest import reserved_reason
from composer.package.payloadscan import PackageScan, scan_package

# Where files of a package may live (the image's filesystem layout).
LAYOUT = ("bin/**", "sbin/**", "lib/**", "lib64/**", "usr/**", "etc/**", "boot/**", "var/**", "opt/**",
          "srv/**", "init", "root", "tmp", "proc", "sys", "dev", "run", "mnt", "home")
PSEUDO_FS = ("proc/**", "sys/**", "dev/**", "run/**")


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    level: str     # error | warning
    code: str
    message: str


Check = Callable[[Header], Iterator[Finding]]


def check_description(h: Header) -> Iterator[Finding]:
    m = h.metadata
    if not m.description.strip() or m.description.strip().lower() == m.name:
        yield Finding(level="error", code="missing-description",
                      message="the description is empty or just the package name; say what it is for")
    if licenses.unstated(m.license):
        yield Finding(level="error", code="missing-license", message="no license; set an SPDX expression")
    elif why := licenses.problem(m.license):
        yield Finding(level="error", code="invalid-license",
                      message=f"license '{m.license}' is not a valid SPDX expression: {why}; use ids of "
                              "https://spdx.org/licenses/ joined by AND, OR, WITH, or LicenseRef-NAME")
    if not m.authors:
        yield Finding(level="warning", code="missing-authors", message="no authors listed")


def check_special_modes(h: Header) -> Iterator[Finding]:
    for e in h.manifest.entries:
        if e.type == "file" and e.mode & 0o6000:
            yield Finding(level="warning", code="setuid-file",
                          message=f"{e.path} is set{'uid' if e.mode & 0o4000 else 'gid'} ({e.mode:04o}); "
                                  "make sure it must be")
        if e.type in ("file", "dir") and e.mode & 0o002 and not (e.type == "dir" and e.mode & 0o1000):
            yield Finding(level="error", code="world-writable",
                          message=f"{e.path} is world-writable ({e.mode:04o}) without the sticky bit")


def check_config_role(h: Header) -> Iterator[Finding]:
    for e in h.manifest.entries:
        if e.type == "file" and e.path.startswith("etc/") and e.role != "config":
            yield Finding(level="error", code="etc-not-config",
                          message=f"{e.path} is under /etc but its role is '{e.role}'; mark it config "
                                  "([files] config = [...]) so upgrades keep local changes")


def check_layout(h: Header) -> Iterator[Finding]:
    for e in h.manifest.entries:
        if not globs.matches(e.path, LAYOUT):
            yield Finding(level="warning", code="unexpected-path",
                          message=f"{e.path} is outside the expected layout (/usr, /etc, /bin, /lib, /boot, ...)")
        elif globs.matches(e.path, PSEUDO_FS) and e.type != "dir":
            yield Finding(level="error", code="pseudo-fs-content",
                          message=f"{e.path} is inside a pseudo filesystem mounted at boot; it would be hidden")


def check_devices(h: Header) -> Iterator[Finding]:
    for e in h.manifest.entries:
        if e.type in ("chardev", "blockdev", "fifo"):
            yield Finding(level="warning", code="device-node",
                          message=f"{e.path} is a {e.type}; the installer records it but never creates it")


def check_driver(h: Header) -> Iterator[Finding]:
    m = h.metadata
    if m.type == "driver" and not any(p.startswith("driver:") for p in m.provides):
        yield Finding(level="error", code="driver-provides",
                      message="a driver package must provide 'driver:NAME' so profiles can select it")
    paths = {e.path for e in h.manifest.entries}
    for mod in m.driver.get("modules", []):
        full = [f"{base}/{m.driver.get('kernel', '')}/{mod}" for base in MODULE_DIRS]
        if not paths.intersection(full):
            yield Finding(level="error", code="driver-module-missing",
                          message=f"driver.modules lists {mod} but the package has no {' or '.join(full)}")


def check_boot_paths(h: Header) -> Iterator[Finding]:
    files = {e.path for e in h.manifest.entries if e.type in ("file", "symlink")}
    wanted = [(f"boot.{role}", path) for role, path in h.metadata.boot.items()]
    if h.metadata.kernel:
        wanted.append(("kernel.image", str(h.metadata.kernel.get("image", ""))))
    for field, path in wanted:
        if path.strip("/") not in files:
            yield Finding(level="error", code="boot-path-missing",
                          message=f"{field} names {path}, which the package does not contain")


def check_reserved(h: Header) -> Iterator[Finding]:
    """Paths vcomp owns in a root (the reader refuses a package file that has them; this covers headers)."""
    for e in h.manifest.entries:
        why = reserved_reason(e)
        if why:
            yield Finding(level="error", code="reserved-path",
                          message=f"package '{h.metadata.name}' ships '{e.path}': {why}")


def check_actions(h: Header) -> Iterator[Finding]:
    """``[actions]`` (checked for validity when the metadata is read): what an import left untranslated, paths
    the package names but does not ship, tmpfiles that a shipped file would hide."""
    a = h.metadata.actions
    for item in a.untranslated:
        yield Finding(level="warning", code="untranslated",
                      message=f"not translated from the maintainer scripts: {item}; check what it did and declare "
                              "it in [actions] if the image needs it")
    kinds = {e.path: e.type for e in h.manifest.entries}
    named = [(f"alternatives '{x.name}'", x.path) for x in a.alternatives]
    named += [(f"service '{s.name}'", s.command[0]) for s in a.services]
    for what, path in named:
        if path.lstrip("/") not in kinds:
            yield Finding(level="warning", code="action-path-missing",
                          message=f"{what} names {path}, which the package does not ship (another package must)")
    for t in a.tmpfiles:
        if t.type in ("f", "L") and t.rel in kinds:
            yield Finding(level="error", code="tmpfiles-shipped",
                          message=f"tmpfiles '{t.type} {t.path}' is also shipped as a {kinds[t.rel]}: the entry "
                                  "never applies; drop one of them")


CHECKS: Mapping[str, Check] = {
    "description": check_description, "modes": check_special_modes, "config": check_config_role,
    "layout": check_layout, "devices": check_devices, "driver": check_driver, "boot": check_boot_paths,
    "reserved": check_reserved, "actions": check_actions,
}


def lint_header(h: Header) -> list[Finding]:
    return [f for check in CHECKS.values() for f in check(h)]


def lint_scan(scan: PackageScan, h: Header) -> list[Finding]:
    """The payload's findings (docs/elf-checks.md): unreadable ELF files, unsafe RPATHs, hardening, NEEDED
    sonames a package without dependencies does not provide itself, secrets and YARA matches."""
    out = [Finding(level="warning", code="elf-unreadable", message=f"/{i.path}: {i.problem}")
           for i in scan.elves if i.problem]
    out += [Finding(level="warning", code="not-scanned", message=s) for s in scan.skipped]
    out += [Finding(level="error", code="rpath", message=p) for i in scan.elves for p in rpath_problems(i)]
    report = hardening_report(scan.elves)
    out += [Finding(level="warning", code="hardening",
                    message=f"/{f.path} lacks {', '.join(f.missing)} (score {f.score})") for f in report.findings]
    if report.findings:
        out.append(Finding(level="warning", code="hardening-score",
                           message=f"hardening score {report.score} of 100 over {report.files} ELF files"))
    if not h.metadata.dependencies and not h.metadata.relations:
        own = link_info(scan.elves)
        out += [Finding(level="warning", code="needed-undeclared", message=m.message("the package"))
                for m in missing_needed({h.metadata.name: own}, [])]
    out += [Finding(level="error", code="secret", message=f"/{m.path} holds a secret ({m.kind} at byte {m.offset}); "
                                                          "never ship private keys or tokens")
            for m in scan.secrets]
    out += [Finding(level="error", code="yara", message=f"/{m.path} matches {m.kind}") for m in scan.yara]
    return out


def lint_package(path: Path) -> list[Finding]:
    """The header's findings and the payload's (the file is read once more for ELF files, secrets, YARA)."""
    header, scan = scan_package(path)
    return lint_header(header) + lint_scan(scan, header)
