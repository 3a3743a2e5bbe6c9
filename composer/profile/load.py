"""Loading a profile: YAML with positions -> JSON Schema (every error at once) -> semantic checks -> Profile.

Each error names file:line:column and the JSON path, and says how to fix it. After this boundary the
profile is a :class:`composer.profile.model.Profile`; nothing downstream reads its YAML.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

from composer import schema
from composer.errors import UserError, combine
from composer.hostchecks import host_check
from composer.profile.gates import POLICY_GATES
from composer.profile.grammar import grammar_errors
from composer.profile.model import (
    BASE_DEFAULT,
    BootTest,
    Debug,
    Kernel,
    Licenses,
    OptionValue,
    Output,
    PackageRequest,
    Policy,
    Profile,
    RepositoryRef,
    SecureBoot,
    ServiceOverride,
    Updates,
    User,
    WeakDependencies,
)
from composer.profile.overlay import confined, overlay_digest, work_tree
from composer.profile.validate import SCHEMA, boundary_errors, option_errors, profile_schema_now, semantic_errors
from composer.profile.yamlpos import Located, load_yaml

Doc = Mapping[str, object]


def load_profile(path: Path) -> Profile:
    """Load and validate a profile; raise one error listing every problem (with file:line:column)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read profile {path}: {exc.strerror}", hint="check the path") from None
    return profile_of(data, path)


_LOCK_KEYS = frozenset({"format", "architectures", "trust-roots", "indexes"})  # what every lock has


def profile_of(data: bytes, path: Path, *, origin: str | None = None, files: bool = True) -> Profile:
    """The profile of ``data`` (the bytes of ``path``; errors name ``origin``, by default the path).
    ``files=False`` (a profile read from a git commit): the trust roots and the overlay it names are not
    looked at (they are files of that commit, not of the work tree) and the digest is of the bytes alone."""
    where = origin or str(path)
    doc = load_yaml(data, where)
    if not isinstance(doc.value, dict):
        raise UserError(f"{where}:1:1: a profile is a mapping (name: ..., packages: ...)",
                        hint="see schemas/profile.schema.json")
    if set(doc.value) >= _LOCK_KEYS and "packages" not in doc.value:
        raise UserError(f"{where}: this is a lock (written by vcomp lock), not a profile",
                        hint=f"pass the profile it locks, e.g. {path.with_suffix('.yaml')}")
    errors = schema.schema_errors(doc.value, SCHEMA, origin=where, locate=doc.locate,
                                  document=profile_schema_now())
    if errors:  # with the grammar errors the schema did not already report: every error at once
        said = "\n".join(e.message for e in errors)

        def more(at: Sequence[str | int], message: str, hint: str) -> None:
            if f": {schema.json_path(at)}: " not in said:
                errors.append(UserError(f"{doc.place(at)}: {schema.json_path(at)}: {message}", hint=hint))

        grammar_errors(doc.value, more)
        option_errors(doc.value, more)
        if files:
            boundary_errors(doc.value, path.parent, more)
        raise combine(errors, summary=f"{where}: {len(errors)} error{'s' if len(errors) > 1 else ''}")
    errors = semantic_errors(doc, path.parent, files=files)
    if errors:
        raise combine(errors, summary=f"{where}: {len(errors)} error{'s' if len(errors) > 1 else ''}")
    return _model(doc, path, data, files=files)


def _resolve_url(url: str, base: Path) -> str:
    if "://" in url:
        return url
    return (base / url).resolve().as_uri()


def _strs(v: object) -> tuple[str, ...]:
    return tuple(cast(list[str], v))


def _opt_strs(d: Doc, key: str) -> tuple[str, ...] | None:
    return _strs(d[key]) if key in d else None


def _opt_str(d: Doc, key: str) -> str | None:
    return cast(str, d[key]) if key in d else None


def _opt_bool(d: Doc, key: str) -> bool | None:
    return cast(bool, d[key]) if key in d else None


def _opt_int(d: Doc, key: str) -> int | None:
    return cast(int, d[key]) if key in d else None


def _package(p: object) -> PackageRequest:
    if isinstance(p, str):
        return PackageRequest(name=p)
    d = cast(Doc, p)
    return PackageRequest(name=cast(str, d["name"]), requirement=cast(str, d.get("version", "*")),
                          features=_strs(d.get("features", [])), architectures=_strs(d.get("architectures", [])),
                          written=frozenset(d) - {"name"})


def _repository(r: Doc, base: Path) -> RepositoryRef:
    url, mirrors = cast(str, r["url"]), _strs(r.get("mirrors", []))
    return RepositoryRef(name=cast(str, r["name"]), url=_resolve_url(url, base),
                         mirrors=tuple(_resolve_url(m, base) for m in mirrors),
                         root=(base / cast(str, r["root"])).resolve(), priority=int(cast(int, r.get("priority", 0))),
                         packages=_strs(r.get("packages", [])), written_url=url, written_mirrors=mirrors,
                         device_url=cast(str, r.get("device-url", "")),
                         written_root=cast(str, r["root"]), written=frozenset(r) - {"name", "url", "root"})


def _output(o: Doc, arches: tuple[str, ...]) -> Output:
    kind = cast(str, o["type"])
    return Output(type=kind, name=cast(str, o.get("name", kind)),
                  architectures=_strs(o["architectures"]) if "architectures" in o else arches,
                  options=dict(cast(Mapping[str, OptionValue], o.get("options", {}))),
                  written=frozenset(o) - {"type"})


def _user(u: Doc) -> User:
    return User(name=cast(str, u["name"]), uid=_opt_int(u, "uid"), groups=_opt_strs(u, "groups"),
                shell=_opt_str(u, "shell"), home=_opt_str(u, "home"), password_hash=_opt_str(u, "password-hash"),
                ssh_keys=_opt_strs(u, "ssh-keys"), gecos=_opt_str(u, "gecos"))


def _service(s: Doc, where: str) -> ServiceOverride:
    env = cast(Mapping[str, str], s["environment"]) if "environment" in s else None
    return ServiceOverride(name=cast(str, s["name"]), enable=_opt_bool(s, "enable"), command=_opt_strs(s, "command"),
                           environment=None if env is None else dict(sorted(env.items())), user=_opt_str(s, "user"),
                           group=_opt_str(s, "group"), working_directory=_opt_str(s, "working-directory"),
                           restart=_opt_str(s, "restart"), readiness=_opt_str(s, "readiness"),
                           after=_opt_strs(s, "after"), where=where)


def _boot_test(t: Doc) -> BootTest:
    return BootTest(name=cast(str, t["name"]), expect=_strs(t["expect"]), outputs=_opt_strs(t, "outputs"),
                    checks=dict(cast(Mapping[str, str], t["checks"])) if "checks" in t else None,
                    host_checks=tuple(host_check(c) for c in cast(list[Doc], t["host-checks"]))
                    if "host-checks" in t else None,
                    timeout=_opt_int(t, "timeout"), hardware=_opt_strs(t, "hardware"))


def _policy(p: Doc) -> Policy:
    return Policy(denied_packages=_opt_strs(p, "denied-packages"), allowed_licenses=_opt_strs(p, "allowed-licenses"),
                  denied_licenses=_opt_strs(p, "denied-licenses"),
                  max_image_size=_opt_str(p, "max-image-size"), max_size_growth=_opt_str(p, "max-size-growth"),
                  allow_setuid=_opt_bool(p, "allow-setuid"),
                  kernel_change_requires_ack=_opt_bool(p, "kernel-change-requires-ack"),
                  advisories=dict(cast(Mapping[str, object], p["advisories"])) if "advisories" in p else None,
                  plugins={k: v for k, v in p.items() if k in POLICY_GATES.plugin_rows()})


def _weak(w: Doc) -> WeakDependencies:
    return WeakDependencies(recommends=bool(w.get("recommends", False)), suggests=bool(w.get("suggests", False)),
                            packages={str(n): _strs(k) for n, k in cast(Doc, w.get("packages", {})).items()},
                            written=frozenset(w))


def _secure_boot(d: Doc | None, base: Path) -> SecureBoot | None:
    if d is None:
        return None
    key, cert = cast(str, d["key"]), cast(str, d["certificate"])
    return SecureBoot(key=key, certificate=cert, key_path=(base / key).resolve(),
                      certificate_path=(base / cert).resolve())


def _updates(d: Doc | None) -> Updates | None:
    if d is None:
        return None
    health = cast(Doc, d.get("health", {}))
    return Updates(channel=cast(str, d["channel"]), repository=cast(str, d["repository"]), url=_opt_str(d, "url"),
                   interval=int(cast(int, d.get("interval", 3600))),
                   checks={str(k): str(v) for k, v in sorted(cast(Doc, health.get("checks", {})).items())},
                   written=frozenset(d))


def _certificate_digest(secure_boot: SecureBoot | None) -> str:
    """The sha256 of the signing certificate (an input of the build, as the overlay is), or '' without one."""
    if secure_boot is None or not secure_boot.certificate_path.is_file():
        return ""
    return hashlib.sha256(secure_boot.certificate_path.read_bytes()[:1 << 20]).hexdigest()


def _list(v: Doc, key: str) -> list[Doc]:
    return cast(list[Doc], v.get(key, []))


def _model(doc: Located, path: Path, data: bytes, *, files: bool) -> Profile:
    v = cast(Doc, doc.value)
    base = path.parent
    written = _opt_str(v, "files")
    overlay = confined(work_tree(base), base, written)[0] if written and files else None
    digest = hashlib.sha256(data).hexdigest()
    if overlay is not None:  # the overlay is an input like the profile's text: changing a file makes the lock stale
        digest = hashlib.sha256(f"profile\0{digest}\0overlay\0{overlay_digest(overlay)}".encode()).hexdigest()
    secure_boot = _secure_boot(cast("Doc | None", v.get("secure-boot")), base)
    if cert := _certificate_digest(secure_boot):  # another signing key: another build
        digest = hashlib.sha256(f"profile\0{digest}\0secure-boot\0{cert}".encode()).hexdigest()
    arches = _strs(v["architectures"])
    kernel = cast(Doc, v.get("kernel", {}))
    debug = cast(Doc, v.get("debug", {}))
    return Profile(path=path, name=cast(str, v["name"]), architectures=arches,
                   repositories=tuple(_repository(r, base) for r in _list(v, "repositories")),
                   packages=tuple(_package(p) for p in cast(list[object], v["packages"])),
                   outputs=tuple(_output(o, arches) for o in _list(v, "outputs")), digest=digest,
                   drivers=_strs(v.get("drivers", [])), capabilities=_strs(v.get("capabilities", [])),
                   description=_opt_str(v, "description"),
                   kernel=Kernel(package=_opt_str(kernel, "package"), cmdline=_opt_str(kernel, "cmdline")),
                   debug=Debug(cores=bool(debug.get("cores", False)), trace=bool(debug.get("trace", False))),
                   licenses=Licenses(texts=bool(cast(Doc, v.get("licenses", {})).get("texts", False))),
                   secure_boot=secure_boot, init=_opt_str(v, "init"), hostname=_opt_str(v, "hostname"),
                   users=tuple(_user(u) for u in _list(v, "users")), files=written, overlay=overlay,
                   services=tuple(_service(s, f"{doc.place(['services', i])}: {schema.json_path(['services', i])}")
                                  for i, s in enumerate(_list(v, "services"))),
                   boot_tests=tuple(_boot_test(t) for t in _list(v, "boot-tests")),
                   policy=_policy(cast(Doc, v.get("policy", {}))),
                   base=cast(str, v.get("base", BASE_DEFAULT)),
                   weak_dependencies=_weak(cast(Doc, v.get("weak-dependencies", {}))),
                   updates=_updates(cast("Doc | None", v.get("updates"))),
                   written=frozenset(v) - {"name", "architectures", "repositories", "packages", "outputs"})
