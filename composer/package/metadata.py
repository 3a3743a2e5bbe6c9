"""Package metadata (``metadata.toml``): typed, validated against schemas/package.schema.json."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import tomli_w

from composer import limits, schema, tomlpos
from composer.errors import ComposerError, InvalidPackage, UserError, combine
from composer.fsutil import canonical_json
from composer.package.actions import Actions, semantic_problems
from composer.package.deb822 import parse_relations
from composer.version import DebRelation, FullVersion, Requirement, Version, VersionError, package_version

SCHEMA = "package.schema.json"
FORMAT = "vpk/1"


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependency:
    name: str
    requirement: str
    features: tuple[str, ...] = ()
    optional: bool = False
    default_features: bool = True

    @classmethod
    def from_value(cls, name: str, value: str | Mapping[str, Any]) -> Dependency:
        if isinstance(value, str):
            return cls(name=name, requirement=value)
        return cls(name=name, requirement=value["version"], features=tuple(value.get("features", ())),
                   optional=bool(value.get("optional", False)),
                   default_features=bool(value.get("default-features", True)))

    def to_value(self) -> str | dict[str, Any]:
        if not self.features and not self.optional and self.default_features:
            return self.requirement
        out: dict[str, Any] = {"version": self.requirement}
        if self.features:
            out["features"] = list(self.features)
        if self.optional:
            out["optional"] = True
        if not self.default_features:
            out["default-features"] = False
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Security:
    context: str
    signer: str = ""
    public_key: str = ""
    manifest: str = ""
    signature: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"context": self.context, "signer": self.signer, "public-key": self.public_key,
               "manifest": self.manifest, "signature": self.signature}
        return {k: v for k, v in out.items() if v}


def _frozen(d: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True, slots=True, kw_only=True)
class Metadata:
    name: str
    version: str
    description: str
    license: str
    type: str
    arch: str
    authors: tuple[str, ...] = ()
    homepage: str = ""
    provides: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    dependencies: tuple[Dependency, ...] = ()
    features: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    capabilities_required: tuple[str, ...] = ()
    capabilities_optional: tuple[str, ...] = ()
    security: Security
    driver: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    kernel: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    boot: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    provenance: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # issue 14: the version beyond SemVer, Debian-style relations and the base set (all optional: a package
    # without them reads and writes exactly as before)
    epoch: int = 0
    revision: str = ""
    upstream_version: str = ""           # an imported package's original version (version_scheme says how)
    version_scheme: str = "semver"
    essential: bool = False
    priority: str = ""
    multi_arch: str = ""
    relations: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    # issue 16: declarative actions instead of maintainer scripts (composer.package.actions)
    actions: Actions = field(default_factory=Actions)
    # issue 19: soname provides and each ELF file's NEEDED list (composer.package.linkcheck.LinkInfo); empty in a
    # package built before (its payload tells)
    elf: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def full_version(self) -> FullVersion:
        """(epoch, upstream, revision) in the package's scheme: what orders its builds and versions."""
        return package_version(version=self.version, epoch=self.epoch, revision=self.revision,
                               upstream_version=self.upstream_version, scheme=self.version_scheme)

    @property
    def semver(self) -> Version:
        return Version.parse(self.version)

    @property
    def nva(self) -> str:
        """name-version-arch with the version's text form (``nano-7.2-1+deb12u1-x86_64``), as locks write it."""
        return f"{self.name}-{self.full_version}-{self.arch}"

    @property
    def file_name(self) -> str:
        """``NAME-TEXT-ARCH.vpk`` with the version's text form (an epoch's ``:`` written ``%3a``, as package paths
        in a repository): two builds of one name never share a file, even when their SemVer projections do."""
        return f"{self.name}-{str(self.full_version).replace(':', '%3a')}-{self.arch}.vpk"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Metadata:
        p = d["package"]
        caps = d.get("capabilities", {})
        sec = d["security"]
        return cls(
            name=p["name"], version=p["version"], description=p["description"], license=p["license"],
            type=p["type"], arch=p["arch"], authors=tuple(p.get("authors", ())), homepage=p.get("homepage", ""),
            provides=tuple(p.get("provides", ())), conflicts=tuple(p.get("conflicts", ())),
            dependencies=tuple(Dependency.from_value(k, v) for k, v in sorted(d.get("dependencies", {}).items())),
            features=MappingProxyType({k: tuple(v) for k, v in sorted(d.get("features", {}).items())}),
            capabilities_required=tuple(caps.get("required", ())),
            capabilities_optional=tuple(caps.get("optional", ())),
            security=Security(context=sec["context"], signer=sec.get("signer", ""),
                              public_key=sec.get("public-key", ""), manifest=sec.get("manifest", ""),
                              signature=sec.get("signature", "")),
            driver=_frozen(d.get("driver")), kernel=_frozen(d.get("kernel")), boot=_frozen(d.get("boot")),
            provenance=_frozen(d.get("provenance")),
            epoch=int(p.get("epoch", 0)), revision=p.get("revision", ""),
            upstream_version=p.get("upstream-version", ""), version_scheme=p.get("version-scheme", "semver"),
            essential=bool(p.get("essential", False)), priority=p.get("priority", ""),
            multi_arch=p.get("multi-arch", ""),
            relations=MappingProxyType({k: tuple(v) for k, v in d.get("relations", {}).items()}),
            actions=Actions.from_dict(d.get("actions", {})),
            elf=_frozen(d.get("elf")),
        )

    def to_dict(self) -> dict[str, Any]:
        pkg: dict[str, Any] = {"name": self.name, "version": self.version, "description": self.description}
        if self.authors:
            pkg["authors"] = list(self.authors)
        pkg["license"] = self.license
        if self.homepage:
            pkg["homepage"] = self.homepage
        pkg["type"], pkg["arch"] = self.type, self.arch
        if self.provides:
            pkg["provides"] = list(self.provides)
        if self.conflicts:
            pkg["conflicts"] = list(self.conflicts)
        extra: dict[str, Any] = {"epoch": self.epoch, "revision": self.revision,
                                 "upstream-version": self.upstream_version,
                                 "version-scheme": "" if self.version_scheme == "semver" else self.version_scheme,
                                 "essential": self.essential, "priority": self.priority, "multi-arch": self.multi_arch}
        pkg.update({k: v for k, v in extra.items() if v})
        out: dict[str, Any] = {"package": pkg}
        if self.dependencies:
            out["dependencies"] = {dep.name: dep.to_value() for dep in self.dependencies}
        if self.relations:
            out["relations"] = {k: list(v) for k, v in self.relations.items()}
        if self.features:
            out["features"] = {k: list(v) for k, v in self.features.items()}
        caps: dict[str, Any] = {}
        if self.capabilities_required:
            caps["required"] = list(self.capabilities_required)
        if self.capabilities_optional:
            caps["optional"] = list(self.capabilities_optional)
        if caps:
            out["capabilities"] = caps
        for name in ("driver", "kernel", "boot", "provenance", "elf"):
            value = getattr(self, name)
            if value:
                out[name] = _thaw(value)
        actions = self.actions.to_dict()
        if actions:
            out["actions"] = actions
        out["security"] = self.security.to_dict()
        return out

    def to_toml(self) -> bytes:
        return tomli_w.dumps(self.to_dict()).encode()

    def signed_bytes(self) -> bytes:
        """What the developer signs: canonical JSON of the metadata without the signature.

        The metadata carries the manifest digest (``security.manifest``), and the manifest carries
        the payload digest and every file's sha256, so the signature covers the whole package.
        """
        unsigned = replace(self, security=replace(self.security, signature=""))
        return canonical_json({"format": FORMAT, "metadata": unsigned.to_dict()})


def thaw(value: Any) -> Any:
    """Plain dicts and lists of a frozen mapping (for TOML and JSON writers)."""
    return _thaw(value)


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_thaw(v) for v in value]
    return value


def semantic_errors(d: Mapping[str, Any], *, origin: str, text: str,
                    error_type: type[ComposerError]) -> list[ComposerError]:
    """Checks the schema cannot express: requirement syntax, requirements no version can satisfy, features
    naming real dependencies."""
    errors: list[ComposerError] = []
    deps = d.get("dependencies", {})
    for name, value in deps.items():
        req = value if isinstance(value, str) else value.get("version", "")
        try:
            parsed = Requirement.parse(req)
        except VersionError as exc:
            line, col = tomlpos.locate(text, ["dependencies", name])
            errors.append(error_type(f"{origin}:{line}:{col}: $.dependencies.{name}: {exc}",
                                     hint="use Cargo syntax, e.g. \"1.2\", \"^1.2.3\", \"~1.2\", \">=1, <2\""))
            continue
        if parsed.is_empty():
            line, col = tomlpos.locate(text, ["dependencies", name])
            errors.append(error_type(f"{origin}:{line}:{col}: $.dependencies.{name}: '{req}' matches no version "
                                     "at all (its bounds exclude each other)",
                                     hint="widen the range (e.g. \">=2.39.5, <2.40\") or drop a bound"))
    errors += _version_errors(d.get("package", {}), origin=origin, text=text, error_type=error_type)
    errors += _relation_errors(d.get("relations", {}), origin=origin, text=text, error_type=error_type)
    errors += _provide_errors(d.get("package", {}), origin=origin, text=text, error_type=error_type)
    errors += _action_errors(d, origin=origin, text=text, error_type=error_type)
    for feat, items in d.get("features", {}).items():
        for item in items:
            dep = item.split("/", 1)[0]
            if dep not in deps and dep not in d.get("features", {}):
                line, col = tomlpos.locate(text, ["features", feat])
                errors.append(error_type(
                    f"{origin}:{line}:{col}: $.features.{feat}: '{item}' names no dependency or feature",
                    hint="a feature lists dependency names, 'dep/feature' or other features"))
    return errors


def _version_errors(p: Mapping[str, Any], *, origin: str, text: str,
                    error_type: type[ComposerError]) -> list[ComposerError]:
    """``version-scheme = "deb"`` needs the original version (a valid Debian version whose epoch and revision
    are the package's); the SemVer scheme has none."""
    def err(key: str, message: str, hint: str) -> ComposerError:
        line, col = tomlpos.locate(text, ["package", key])
        return error_type(f"{origin}:{line}:{col}: $.package.{key}: {message}", hint=hint)

    upstream = p.get("upstream-version")
    if p.get("version-scheme", "semver") != "deb":
        return [] if upstream is None else [err("upstream-version", "only a package of version-scheme 'deb' has an "
                                                "original version", "add version-scheme = \"deb\" or remove it")]
    if upstream is None:
        return [err("version-scheme", "a 'deb' version needs upstream-version (the original Debian version)",
                    "add upstream-version = \"1:2.36-9+deb12u7\" (as the archive spells it)")]
    try:
        full = FullVersion.parse(upstream, "deb")
    except VersionError as exc:
        return [err("upstream-version", str(exc), exc.hint or "write the version as dpkg spells it")]
    if (full.epoch, full.revision) != (p.get("epoch", 0), p.get("revision", "")):
        return [err("upstream-version", f"'{upstream}' has epoch {full.epoch} and revision '{full.revision}', the "
                    f"package says epoch {p.get('epoch', 0)} and revision '{p.get('revision', '')}'",
                    "make epoch and revision those of upstream-version")]
    return []


def _action_errors(d: Mapping[str, Any], *, origin: str, text: str,
                   error_type: type[ComposerError]) -> list[ComposerError]:
    """``[actions]`` beyond the schema (``composer.package.actions``): paths inside the image and outside vcomp's
    reserved directories, nothing declared twice; each error names the package and the field."""
    name = d.get("package", {}).get("name", "?")
    errors: list[ComposerError] = []
    for where, message in semantic_problems(d.get("actions", {})):
        path: list[str | int] = ["actions"]
        for part in where.replace("]", "").split("."):
            head, _, index = part.partition("[")
            path += [head, int(index)] if index else [head]
        line, col = tomlpos.locate(text, path)
        errors.append(error_type(f"{origin}:{line}:{col}: $.actions.{where}: package '{name}': {message}",
                                 hint="see docs/packages/actions.md"))
    return errors


def _clause_place(origin: str, text: str, kind: str, i: int) -> Callable[[], str]:
    def place() -> str:
        line, col = tomlpos.locate(text, ["relations", kind])
        return f"{origin}:{line}:{col}: $.relations.{kind}[{i}]"
    return place


def _provide_errors(p: Mapping[str, Any], *, origin: str, text: str,
                    error_type: type[ComposerError]) -> list[ComposerError]:
    """A versioned provide ``NAME = VERSION`` must carry a valid version of the package's scheme (relations
    compare it in that order: a version that does not parse would match by accident)."""
    scheme = p.get("version-scheme", "semver")
    errors: list[ComposerError] = []
    for i, item in enumerate(p.get("provides", [])):
        name, eq, version = str(item).partition(" = ")
        if not eq:
            continue
        try:
            FullVersion.parse(version.strip(), scheme if scheme in ("semver", "deb") else "semver")
        except VersionError as exc:
            line, col = tomlpos.locate(text, ["package", "provides"])
            errors.append(error_type(f"{origin}:{line}:{col}: $.package.provides[{i}]: '{item}': the version of "
                                     f"'{name}' is not a valid {scheme} version ({exc})",
                                     hint="write NAME = VERSION in the package's own version syntax"))
    return errors


def _relation_errors(relations: Mapping[str, Any], *, origin: str, text: str,
                     error_type: type[ComposerError]) -> list[ComposerError]:
    """Every clause parses (``NAME[:ARCH] [(OP VERSION)] | ...``, versions valid for dpkg), and the plain
    clauses of requires/pre-requires on one name leave some version (``foo (>= 2), foo (<< 1)`` is refused)."""
    errors: list[ComposerError] = []
    for kind, clauses in relations.items():
        on_name: dict[tuple[str, str], list[tuple[int, str, DebRelation]]] = {}
        for i, clause in enumerate(clauses):
            place = _clause_place(origin, text, kind, i)   # located only for an error (import: 63k packages)
            try:
                parsed = parse_relations(clause, place)
                if len(parsed) != 1:
                    raise VersionError(f"holds {len(parsed)} clauses", hint="one clause per item (no ',')")
                for alt in parsed[0]:
                    relation = DebRelation.parse(f"({alt.op} {alt.version})") if alt.op else None
                    if relation is not None and len(parsed[0]) == 1 and kind in ("requires", "pre-requires"):
                        on_name.setdefault((alt.name, alt.arch or ""), []).append((i, clause, relation))
            except (VersionError, InvalidPackage) as exc:
                message = exc.message if isinstance(exc, InvalidPackage) else f"{place()}: '{clause}': {exc}"
                errors.append(error_type(message, hint=exc.hint or "write NAME [(OP VERSION)] [| NAME ...]"))
        for (name, _arch), found in sorted(on_name.items()):
            if len(found) > 1 and DebRelation.intersect(r for _i, _c, r in found).is_empty():
                line, col = tomlpos.locate(text, ["relations", kind])
                listed = ", ".join(f"'{c}'" for _i, c, _r in found)
                errors.append(error_type(
                    f"{origin}:{line}:{col}: $.relations.{kind}[{found[-1][0]}]: {listed}: no version of {name} can "
                    "satisfy all of them", hint="widen one of the ranges or remove one"))
    return errors


def parse_metadata(data: bytes, *, origin: str, error_type: type[ComposerError] = InvalidPackage,
                   validate: bool = True) -> Metadata:
    """Parse and validate metadata TOML; every error names origin:line:column and the JSON path.

    Documents larger or deeper than the configured limits (``composer.limits``) are refused first. Without
    ``validate`` the schema and semantic checks are skipped: only for bytes this process (or its verification
    worker) validated moments ago and that nobody else can change (a repository's private upload copy).
    """
    limit_error = limits.PackageLimitExceeded if issubclass(error_type, InvalidPackage) else limits.LimitExceeded
    try:
        text = data.decode()
        raw = limits.load_toml(text, origin, error=limit_error)
    except UnicodeDecodeError:
        raise error_type(f"{origin}: not UTF-8 text", hint="metadata is TOML in UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise error_type(f"{origin}: invalid TOML: {exc}", hint="fix the TOML syntax at that line") from None
    if validate:
        validate_dict(raw, origin=origin, text=text, error_type=error_type)
    return Metadata.from_dict(raw)


def _name_package(error: ComposerError, raw: Mapping[str, Any], error_type: type[ComposerError]) -> ComposerError:
    """An ``[actions]`` schema error names the package as well (``... $.actions.users[0].uid: package 'x': ...``)."""
    place, sep, rest = error.message.partition(": $.actions")
    if not sep:
        return error
    field, _, why = rest.partition(": ")
    name = raw.get("package", {}).get("name", "?") if isinstance(raw.get("package"), Mapping) else "?"
    return error_type(f"{place}: $.actions{field}: package '{name}': {why}", hint=error.hint)


def validate_dict(raw: Mapping[str, Any], *, origin: str, text: str,
                  error_type: type[ComposerError] = UserError) -> None:
    errors = schema.schema_errors(raw, SCHEMA, origin=origin, locate=lambda p: tomlpos.locate(text, p),
                                  error_type=error_type)
    errors = [_name_package(e, raw, error_type) for e in errors]
    if not errors:
        errors = semantic_errors(raw, origin=origin, text=text, error_type=error_type)
    if errors:
        raise combine(errors, summary=f"{origin}: {len(errors)} errors")
