"""Profile validation: YAML with positions -> JSON Schema (every error at once) -> semantic checks.

Each error names file:line:column and the JSON path, and says how to fix it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer import schema
from composer.errors import ComposerError, UserError, combine
from composer.image.outputs import OUTPUT_TYPES, profile_schema
from composer.profile.grammar import Report, grammar_errors
from composer.profile.overlay import confined, overlay_digest, work_tree
from composer.profile.pins import pin_errors
from composer.profile.yamlpos import Located, load_yaml
from composer.version import Requirement, VersionError

SCHEMA = "profile.schema.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageRequest:
    name: str
    requirement: str = "*"
    features: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RepositoryRef:
    name: str
    url: str
    mirrors: tuple[str, ...]
    root: Path
    priority: int = 0
    packages: tuple[str, ...] = ()   # names and globs pinned to this repository


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    type: str
    name: str
    architectures: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    path: Path
    name: str
    architectures: tuple[str, ...]
    repositories: tuple[RepositoryRef, ...]
    packages: tuple[PackageRequest, ...]
    drivers: tuple[str, ...]
    capabilities: tuple[str, ...]
    outputs: tuple[Output, ...]
    raw: dict[str, Any]
    digest: str          # sha256 of the profile's bytes; with an overlay, of them and the overlay tree's digest
    overlay: Path | None = None   # the checked overlay directory (inside the profile's work tree)

    def packages_for(self, arch: str) -> list[PackageRequest]:
        return [p for p in self.packages if not p.architectures or arch in p.architectures]


def _resolve_url(url: str, base: Path) -> str:
    if "://" in url:
        return url
    return (base / url).resolve().as_uri()


def load_profile(path: Path) -> Profile:
    """Load and validate a profile; raise one error listing every problem (with file:line:column)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read profile {path}: {exc.strerror}", hint="check the path") from None
    doc = load_yaml(data, str(path))
    if not isinstance(doc.value, dict):
        raise UserError(f"{path}:1:1: a profile is a mapping (name: ..., packages: ...)",
                        hint="see schemas/profile.schema.json")
    errors = schema.schema_errors(doc.value, SCHEMA, origin=str(path), locate=doc.locate,
                                  document=_profile_schema(repr(sorted(OUTPUT_TYPES.items()))))
    if errors:  # with the grammar errors the schema did not already report: every error at once
        said = "\n".join(e.message for e in errors)

        def more(where: Sequence[str | int], message: str, hint: str) -> None:
            if f": {schema.json_path(where)}: " not in said:
                errors.append(UserError(f"{doc.place(where)}: {schema.json_path(where)}: {message}", hint=hint))

        grammar_errors(doc.value, more)
        option_errors(doc.value, more)
        boundary_errors(doc.value, path.parent, more)
        raise combine(errors, summary=f"{path}: {len(errors)} error{'s' if len(errors) > 1 else ''}")
    errors = semantic_errors(doc, path.parent)
    if errors:
        raise combine(errors, summary=f"{path}: {len(errors)} error{'s' if len(errors) > 1 else ''}")
    return _model(doc, path, data)


@functools.lru_cache(maxsize=4)
def _profile_schema(registry: str) -> dict[str, Any]:
    """The profile schema completed from the output registry, once per state of the registry (``registry``)."""
    return profile_schema(schema.load(SCHEMA))


def semantic_errors(doc: Located, base: Path) -> list[ComposerError]:
    v = doc.value
    errors: list[ComposerError] = []

    def err(path: Sequence[str | int], message: str, hint: str) -> None:
        errors.append(UserError(f"{doc.place(path)}: {schema.json_path(path)}: {message}", hint=hint))

    grammar_errors(v, err)
    option_errors(v, err)
    pin_errors(v.get("repositories", []), err)

    arches = list(v["architectures"])
    seen: dict[str, int] = {}
    for i, pkg in enumerate(v["packages"]):
        name = pkg if isinstance(pkg, str) else pkg["name"]
        if name in seen:
            err(["packages", i], f"package '{name}' is requested twice (first at line "
                f"{doc.locate(['packages', seen[name]])[0]})",
                "keep one entry; put the version and features on it")
        seen.setdefault(name, i)
        if isinstance(pkg, dict):
            if "version" in pkg:
                try:
                    Requirement.parse(pkg["version"])
                except VersionError as exc:
                    err(["packages", i, "version"], str(exc), "use Cargo syntax: '1.2', '^1.2.3', '~1.2', '>=1, <2'")
            for a in pkg.get("architectures", []):
                if a not in arches:
                    err(["packages", i, "architectures"], f"'{a}' is not one of the profile's architectures "
                        f"({', '.join(arches)})", "add it to architectures or remove it here")
    names = [r["name"] for r in v["repositories"]]
    for i, repo in enumerate(v["repositories"]):
        if names.index(repo["name"]) != i:
            err(["repositories", i, "name"], f"repository name '{repo['name']}' is used twice", "rename one")
    out_names: dict[str, int] = {}
    for i, out in enumerate(v["outputs"]):
        kind = OUTPUT_TYPES[out["type"]]
        name = out.get("name", out["type"])
        if name in out_names:
            err(["outputs", i], f"output name '{name}' is used twice", "give each output a distinct name")
        out_names.setdefault(name, i)
        for a in out.get("architectures", arches):
            if a not in arches:
                err(["outputs", i, "architectures"], f"'{a}' is not one of the profile's architectures",
                    "add it to architectures or remove it here")
                continue
            if a not in kind.arches:
                err(["outputs", i, "type"], f"output type '{kind.name}' is not available on {a} "
                    f"(available on {', '.join(sorted(kind.arches))})",
                    f"limit it with 'architectures: [{', '.join(sorted(kind.arches & set(arches)))}]'")
                continue
            for fw in out.get("options", {}).get("firmware", []):
                if fw not in kind.firmware.get(a, frozenset()):
                    err(["outputs", i, "options", "firmware"], f"{kind.name} on {a} cannot boot with {fw} "
                        f"(supported: {', '.join(sorted(kind.firmware.get(a, ()))) or 'none'})",
                        "remove it, or limit the output's architectures")
    for i, test in enumerate(v.get("boot-tests", [])):
        for j, name in enumerate(test.get("outputs", [])):
            if name not in out_names:
                err(["boot-tests", i, "outputs", j], f"no output named '{name}'",
                    f"outputs are: {', '.join(out_names)}")
    denied = set(v.get("policy", {}).get("denied-packages", []))
    for name in sorted(denied & set(seen)):
        err(["packages", seen[name]], f"package '{name}' is requested but denied by policy.denied-packages",
            "remove it from packages or from the policy")
    boundary_errors(v, base, err)
    return errors


def option_errors(v: Any, err: Report) -> None:
    """Each output's options against its type's schema fragment (composer.image.outputs): an option the type
    does not read is refused, naming it and listing the type's options."""
    outputs = v.get("outputs") if isinstance(v, dict) else None
    for i, out in enumerate(outputs if isinstance(outputs, list) else []):
        if not isinstance(out, dict) or not isinstance(out.get("type"), str) or "options" not in out:
            continue
        kind = OUTPUT_TYPES.get(str(out["type"]))
        if kind is not None:
            for where, message, hint in kind.option_problems(out["options"]):
                err(["outputs", i, "options", *where], message, hint)


def boundary_errors(v: Any, base: Path, err: Report) -> None:
    """The host paths a profile names (trust roots, overlay) lie inside its git work tree and exist."""
    tree = work_tree(base)
    repos = v.get("repositories") if isinstance(v, dict) else None
    for i, repo in enumerate(repos if isinstance(repos, list) else []):
        if not isinstance(repo, dict) or not isinstance(repo.get("root"), str):
            continue
        root, problem = confined(tree, base, repo["root"])
        if problem:
            err(["repositories", i, "root"], f"trust root {repo['root']!r} {problem}",
                f"keep the pinned root.json inside {tree}")
        elif not root.is_file():
            err(["repositories", i, "root"], f"trust root file {root} does not exist",
                "pin the repository's root.json (its owner publishes it); no trust on first use")
    files = v.get("files") if isinstance(v, dict) else None
    if isinstance(files, str):
        overlay, problem = confined(tree, base, files)
        if problem:
            err(["files"], f"overlay directory {files!r} {problem}",
                f"put the overlay inside {tree} (the work tree that holds the profile)")
        elif not overlay.is_dir():
            err(["files"], f"overlay directory {overlay} does not exist", "create it or remove 'files'")


def _model(doc: Located, path: Path, data: bytes) -> Profile:
    v = doc.value
    base = path.parent
    overlay = confined(work_tree(base), base, v["files"])[0] if v.get("files") else None
    digest = hashlib.sha256(data).hexdigest()
    if overlay is not None:  # the overlay is an input like the profile's text: changing a file makes the lock stale
        digest = hashlib.sha256(f"profile\0{digest}\0overlay\0{overlay_digest(overlay)}".encode()).hexdigest()
    arches = tuple(v["architectures"])
    packages = tuple(
        PackageRequest(name=p) if isinstance(p, str) else
        PackageRequest(name=p["name"], requirement=p.get("version", "*"), features=tuple(p.get("features", ())),
                       architectures=tuple(p.get("architectures", ())))
        for p in v["packages"])
    repos = tuple(RepositoryRef(name=r["name"], url=_resolve_url(r["url"], base),
                                mirrors=tuple(_resolve_url(m, base) for m in r.get("mirrors", [])),
                                root=(base / r["root"]).resolve(), priority=int(r.get("priority", 0)),
                                packages=tuple(r.get("packages", ()))) for r in v["repositories"])
    outputs = tuple(Output(type=o["type"], name=o.get("name", o["type"]),
                           architectures=tuple(o.get("architectures", arches)), options=dict(o.get("options", {})))
                    for o in v["outputs"])
    return Profile(path=path, name=v["name"], architectures=arches, repositories=repos, packages=packages,
                   drivers=tuple(v.get("drivers", [])), capabilities=tuple(v.get("capabilities", [])),
                   outputs=outputs, raw=v, digest=digest, overlay=overlay)
