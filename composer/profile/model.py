"""The profile as a type: every field of a validated profile, typed and frozen (made by ``profile.load``).

Defaults are resolved here (an output's name is its type, its architectures the profile's); ``written``
sets keep which optional keys the file spelled out, so :meth:`Profile.to_dict` gives back the document
as written (what ``vcomp plan`` compares), and nothing outside ``profile/`` reads the YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from composer.hostchecks import HostCheck
from composer.package.actions import Service

OptionValue = str | int | bool | list[str]   # an output option as written (firmware is a list of names)


def _some(written: frozenset[str], pairs: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in pairs.items() if k in written}


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageRequest:
    name: str
    requirement: str = "*"
    features: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    written: frozenset[str] | None = None   # None: written as a bare name

    def to_dict(self) -> object:
        if self.written is None:
            return self.name
        return {"name": self.name, **_some(self.written, {"version": self.requirement,
                                                          "features": list(self.features),
                                                          "architectures": list(self.architectures)})}


@dataclass(frozen=True, slots=True, kw_only=True)
class RepositoryRef:
    name: str
    url: str                        # resolved: a relative directory becomes a file:// URL
    mirrors: tuple[str, ...]        # resolved likewise
    root: Path                      # the pinned trust root file
    priority: int = 0
    packages: tuple[str, ...] = ()  # names and globs pinned to this repository
    written_url: str = ""           # as written in the profile (what a built root records without device_url)
    device_url: str = ""            # where a device reaches it (device-url; a built root records it)
    written_mirrors: tuple[str, ...] = ()
    written_root: str = ""
    written: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "url": self.written_url, "root": self.written_root,
                **_some(self.written, {"device-url": self.device_url, "mirrors": list(self.written_mirrors),
                                       "priority": self.priority, "packages": list(self.packages)})}

    @property
    def recorded_url(self) -> str:
        """The URL a built root records: where devices reach the repository, else the URL as written."""
        return self.device_url or self.written_url


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    type: str
    name: str
    architectures: tuple[str, ...]
    options: Mapping[str, OptionValue] = field(default_factory=dict)
    written: frozenset[str] = frozenset({"name", "architectures", "options"})

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, **_some(self.written, {"name": self.name,
                                                          "architectures": list(self.architectures),
                                                          "options": dict(self.options)})}


@dataclass(frozen=True, slots=True, kw_only=True)
class Kernel:
    package: str | None = None   # None: not written (the build uses 'linux' and nothing is requested for it)
    cmdline: str | None = None

    @property
    def package_name(self) -> str:
        return self.package or "linux"

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in (("package", self.package), ("cmdline", self.cmdline)) if v is not None}


@dataclass(frozen=True, slots=True, kw_only=True)
class Debug:
    """``debug:``: aids that go into the built kernel command line (docs/debugging.md)."""

    cores: bool = False
    trace: bool = False

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in (("cores", self.cores), ("trace", self.trace)) if v}


@dataclass(frozen=True, slots=True, kw_only=True)
class Licenses:
    """``licenses:``: licence compliance of the built root (docs/licences.md)."""

    texts: bool = False     # ship the Debian copyright file of each package that has none (usr/share/licenses)

    def to_dict(self) -> dict[str, object]:
        return {"texts": True} if self.texts else {}


@dataclass(frozen=True, slots=True, kw_only=True)
class SecureBoot:
    """The Secure Boot db key pair the UKIs are signed with: as written, and resolved against the profile."""

    key: str
    certificate: str
    key_path: Path
    certificate_path: Path

    def to_dict(self) -> dict[str, object]:
        return {"key": self.key, "certificate": self.certificate}


@dataclass(frozen=True, slots=True, kw_only=True)
class Updates:
    """A/B image updates (docs/updates/ab-slots.md): the channel and repository the device follows, how often,
    and the health checks (file name under etc/veridian/health.d -> script) a trial boot must pass."""

    channel: str
    repository: str
    url: str | None = None
    interval: int = 3600
    checks: Mapping[str, str] = field(default_factory=dict)
    written: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, object]:
        return {"channel": self.channel, "repository": self.repository,
                **_some(self.written, {"url": self.url, "interval": self.interval,
                                       "health": {"checks": dict(self.checks)}})}

    def device_config(self, profile: str, arch: str) -> dict[str, object]:
        """etc/veridian/update.json: what vpk update and init read on the device."""
        return {"format": "vcomp-update-config", "version": 1, "profile": profile, "arch": arch,
                "channel": self.channel,
                "repository": self.repository, "url": self.url, "interval": self.interval}


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    name: str
    uid: int | None = None
    groups: tuple[str, ...] | None = None
    shell: str | None = None
    home: str | None = None
    password_hash: str | None = None
    ssh_keys: tuple[str, ...] | None = None
    gecos: str | None = None

    def to_dict(self) -> dict[str, object]:
        pairs: dict[str, object | None] = {
            "name": self.name, "uid": self.uid, "groups": None if self.groups is None else list(self.groups),
            "shell": self.shell, "home": self.home, "password-hash": self.password_hash,
            "ssh-keys": None if self.ssh_keys is None else list(self.ssh_keys), "gecos": self.gecos}
        return {k: v for k, v in pairs.items() if v is not None}


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceOverride:
    """``services[]``: enable, disable or override a package's service by name (None: as the package says).
    ``environment`` is merged over the package's; the other fields replace the package's value. ``where`` is
    the entry's place (``file:line:column: $.services[N]``) for errors found at build, when the packages are
    known."""

    name: str
    enable: bool | None = None
    command: tuple[str, ...] | None = None
    environment: Mapping[str, str] | None = None
    user: str | None = None
    group: str | None = None
    working_directory: str | None = None
    restart: str | None = None
    readiness: str | None = None
    after: tuple[str, ...] | None = None
    where: str = field(default="", compare=False)

    def apply(self, service: Service) -> Service:
        """The package's service with this entry applied."""
        changes: dict[str, object] = {k: v for k, v in (
            ("enable", self.enable), ("command", self.command), ("user", self.user), ("group", self.group),
            ("working_directory", self.working_directory), ("restart", self.restart),
            ("readiness", self.readiness), ("after", self.after)) if v is not None}
        if self.environment is not None:
            changes["environment"] = MappingProxyType(dict(sorted({**service.environment,
                                                                   **self.environment}.items())))
        return replace(service, **changes)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        pairs: dict[str, object | None] = {
            "name": self.name, "enable": self.enable, "command": None if self.command is None else list(self.command),
            "environment": None if self.environment is None else dict(self.environment), "user": self.user,
            "group": self.group, "working-directory": self.working_directory, "restart": self.restart,
            "readiness": self.readiness, "after": None if self.after is None else list(self.after)}
        return {k: v for k, v in pairs.items() if v is not None}


@dataclass(frozen=True, slots=True, kw_only=True)
class BootTest:
    name: str
    expect: tuple[str, ...]
    outputs: tuple[str, ...] | None = None
    checks: Mapping[str, str] | None = None     # file name under etc/veridian/checks.d -> script
    host_checks: tuple[HostCheck, ...] | None = None  # asked from the host once ``expect`` is seen
    timeout: int | None = None
    hardware: tuple[str, ...] | None = None     # names in composer.hardware.HARDWARE

    def to_dict(self) -> dict[str, object]:
        pairs: dict[str, object | None] = {
            "name": self.name, "outputs": None if self.outputs is None else list(self.outputs),
            "expect": list(self.expect), "checks": None if self.checks is None else dict(self.checks),
            "host-checks": None if self.host_checks is None else [c.to_dict() for c in self.host_checks],
            "timeout": self.timeout, "hardware": None if self.hardware is None else list(self.hardware)}
        return {k: v for k, v in pairs.items() if v is not None}


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    denied_packages: tuple[str, ...] | None = None
    allowed_licenses: tuple[str, ...] | None = None
    denied_licenses: tuple[str, ...] | None = None
    max_image_size: str | None = None
    max_size_growth: str | None = None   # "N%"
    allow_setuid: bool | None = None
    kernel_change_requires_ack: bool | None = None
    advisories: Mapping[str, object] | None = None   # {max-severity: LEVEL, ignore: [IDS]} (docs/advisories.md)
    plugins: Mapping[str, object] = field(default_factory=dict)  # the keys of plugins' gates (docs/plugins.md)

    def to_dict(self) -> dict[str, object]:
        pairs: dict[str, object | None] = {
            "denied-packages": None if self.denied_packages is None else list(self.denied_packages),
            "allowed-licenses": None if self.allowed_licenses is None else list(self.allowed_licenses),
            "denied-licenses": None if self.denied_licenses is None else list(self.denied_licenses),
            "max-image-size": self.max_image_size, "max-size-growth": self.max_size_growth,
            "allow-setuid": self.allow_setuid, "kernel-change-requires-ack": self.kernel_change_requires_ack,
            "advisories": None if self.advisories is None else dict(self.advisories),
            **dict(sorted(self.plugins.items()))}
        return {k: v for k, v in pairs.items() if v is not None}


@dataclass(frozen=True, slots=True, kw_only=True)
class WeakDependencies:
    """Which weak dependencies the lock installs (design14 §2.4): every package's recommends, every package's
    suggests, and per package name its own ('recommends', 'suggests'). Default: none."""

    recommends: bool = False
    suggests: bool = False
    packages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    written: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, object]:
        return _some(self.written, {"recommends": self.recommends, "suggests": self.suggests,
                                    "packages": {n: list(k) for n, k in self.packages.items()}})


BASE_DEFAULT = "essential"


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    path: Path
    name: str
    architectures: tuple[str, ...]
    repositories: tuple[RepositoryRef, ...]
    packages: tuple[PackageRequest, ...]
    outputs: tuple[Output, ...]
    digest: str          # sha256 of the profile's bytes; with an overlay, of them and the overlay tree's digest
    drivers: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    description: str | None = None
    kernel: Kernel = Kernel()
    debug: Debug = Debug()
    licenses: Licenses = Licenses()
    secure_boot: SecureBoot | None = None
    init: str | None = None
    hostname: str | None = None
    users: tuple[User, ...] = ()
    files: str | None = None          # the overlay directory as written (relative to the profile)
    overlay: Path | None = None       # the checked overlay directory (inside the profile's work tree)
    services: tuple[ServiceOverride, ...] = ()
    boot_tests: tuple[BootTest, ...] = ()
    policy: Policy = Policy()
    base: str = BASE_DEFAULT                # essential | required | none (design14 §2.5)
    weak_dependencies: WeakDependencies = WeakDependencies()
    updates: Updates | None = None
    written: frozenset[str] = frozenset()   # the optional top-level keys the file spells out

    def packages_for(self, arch: str) -> list[PackageRequest]:
        return [p for p in self.packages if not p.architectures or arch in p.architectures]

    def to_dict(self) -> dict[str, object]:
        """The profile document as written (the keys it spells out, in schema order)."""
        return {"name": self.name, **_some(self.written, {"description": self.description}),
                "architectures": list(self.architectures),
                "repositories": [r.to_dict() for r in self.repositories],
                "packages": [p.to_dict() for p in self.packages],
                **_some(self.written, {
                    "drivers": list(self.drivers), "capabilities": list(self.capabilities), "base": self.base,
                    "weak-dependencies": self.weak_dependencies.to_dict(), "kernel": self.kernel.to_dict(),
                    "debug": self.debug.to_dict(), "licenses": self.licenses.to_dict(),
                    "secure-boot": self.secure_boot.to_dict() if self.secure_boot else None,
                    "init": self.init, "hostname": self.hostname,
                    "users": [u.to_dict() for u in self.users], "files": self.files}),
                "outputs": [o.to_dict() for o in self.outputs],
                **_some(self.written, {"services": [s.to_dict() for s in self.services],
                                       "boot-tests": [t.to_dict() for t in self.boot_tests],
                                       "updates": self.updates.to_dict() if self.updates else None,
                                       "policy": self.policy.to_dict()})}
