"""Profile checks beyond the schema: semantics (names used twice, architectures, pins, policy) and the host
paths a profile names (trust roots, overlay). ``composer.profile.load`` runs them; each error names
file:line:column and the JSON path, and says how to fix it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from composer import hardware, schema
from composer.errors import ComposerError, UserError
from composer.image.outputs import OUTPUT_TYPES, profile_schema
from composer.profile.gates import POLICY_GATES
from composer.profile.grammar import Report, grammar_errors
from composer.profile.overlay import confined, work_tree
from composer.profile.pins import pin_errors
from composer.profile.yamlpos import Located
from composer.rootfs import path_problem
from composer.spdx import entry_problems
from composer.version import DebRelation, Requirement, VersionError

SCHEMA = "profile.schema.json"


@functools.lru_cache(maxsize=4)
def _profile_schema(registry: str) -> dict[str, Any]:
    """The profile schema completed from the output registry and the plugins' policy gates, once per state of
    the registries (``registry``)."""
    doc = profile_schema(schema.load(SCHEMA))
    policy = doc["$defs"]["policy"] if "policy" in doc["$defs"] else doc["properties"]["policy"]
    for rule, gate in POLICY_GATES.plugin_rows().items():
        policy["properties"][rule] = dict(gate.schema or {})
    return doc


def profile_schema_now() -> dict[str, Any]:
    """The profile schema for the registries as they are now (a row added at run time validates too)."""
    return _profile_schema(repr((sorted(OUTPUT_TYPES.items()), sorted(POLICY_GATES.plugin_rows()))))


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


def semantic_errors(doc: Located, base: Path, *, files: bool = True) -> list[ComposerError]:
    """The checks of a schema-valid profile the schema cannot say. ``files=False``: the host paths are not
    checked (a profile read from a git commit)."""
    v: Any = doc.value  # schema-valid: its keys and types are the schema's
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
            if "version" in pkg and pkg["version"].startswith("("):
                try:
                    DebRelation.parse(pkg["version"])
                except VersionError as exc:
                    err(["packages", i, "version"], str(exc), "a Debian relation is '(OP VERSION)', OP one of "
                        "<< <= = >= >>, e.g. '(= 1:2.36-9+deb12u7)'")
            elif "version" in pkg:
                try:
                    if Requirement.parse(pkg["version"]).is_empty():
                        err(["packages", i, "version"], f"'{pkg['version']}' matches no version at all (its bounds "
                            "exclude each other)", "widen the range (e.g. '>=2.39.5, <2.40') or drop a bound")
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
            listed = out.get("options", {}).get("firmware", [])
            if set(listed) & kind.firmware.get(a, frozenset()):
                continue  # a kind the architecture lacks is left out there (disk: [bios, uefi] is UEFI on aarch64)
            for fw in listed:
                if fw not in kind.firmware.get(a, frozenset()):
                    err(["outputs", i, "options", "firmware"], f"{kind.name} on {a} cannot boot with {fw} "
                        f"(supported: {', '.join(sorted(kind.firmware.get(a, ()))) or 'none'})",
                        "remove it, or limit the output's architectures")
    verity_errors(v, set(seen), err)
    slots_errors(v, set(seen), err)
    service_errors(v.get("services", []), doc, err)
    for i, test in enumerate(v.get("boot-tests", [])):
        for j, name in enumerate(test.get("outputs", [])):
            if name not in out_names:
                err(["boot-tests", i, "outputs", j], f"no output named '{name}'",
                    f"outputs are: {', '.join(out_names)}")
        hardware_errors(i, test, v, out_names, err)
    denied = set(v.get("policy", {}).get("denied-packages", []))
    for name in sorted(denied & set(seen)):
        err(["packages", seen[name]], f"package '{name}' is requested but denied by policy.denied-packages",
            "remove it from packages or from the policy")
    license_list_errors(v.get("policy", {}), err)
    if files:
        boundary_errors(v, base, err)
    return errors


def license_list_errors(policy: Any, err: Report) -> None:
    """Each entry of ``policy.allowed-licenses`` and ``policy.denied-licenses`` is one SPDX license
    (composer.spdx), optionally WITH an exception."""
    for key in ("allowed-licenses", "denied-licenses"):
        for i, why in entry_problems([str(e) for e in policy.get(key, [])]):
            err(["policy", key, i], f"'{policy[key][i]}': {why}",
                "name one SPDX license id (https://spdx.org/licenses/) or LicenseRef-NAME per entry")


def verity_errors(v: Mapping[str, Any], requested: set[str], err: Report) -> None:
    """A disk with ``verity: true`` boots only when init can map its root: the dm-verity driver and dmsetup are
    installed (docs/verified-boot.md)."""
    for i, out in enumerate(v["outputs"]):
        if not out.get("options", {}).get("verity", False):
            continue
        if "dm-verity" not in v.get("drivers", []) and "driver-dm-verity" not in requested:
            err(["outputs", i, "options", "verity"], "a verity root needs the dm-verity driver",
                "add dm-verity to drivers")
        if "dmsetup" not in requested:
            err(["outputs", i, "options", "verity"], "a verity root needs dmsetup (init maps the root with it)",
                "add dmsetup to packages")


def slots_errors(v: Mapping[str, Any], requested: set[str], err: Report) -> None:
    """An A/B disk needs init to mount its ESP (the vfat driver) to commit or fail a trial boot; ``updates``
    needs an A/B disk and names one of the profile's repositories (docs/updates/ab-slots.md)."""
    ab = [i for i, out in enumerate(v["outputs"]) if out.get("options", {}).get("slots") == "ab"]
    for i in ab:
        if "vfat" not in v.get("drivers", []) and "driver-vfat" not in requested:
            err(["outputs", i, "options", "slots"], "an A/B disk needs the vfat driver (init commits a trial boot "
                "on the ESP)", "add vfat to drivers")
    updates = v.get("updates")
    if updates is None:
        return
    if not ab:
        err(["updates"], "updates need an A/B disk output", "add an output of type disk with options: {slots: ab}")
    names = [r.get("name") for r in v.get("repositories", [])]
    if updates.get("repository") not in names:
        err(["updates", "repository"], f"no repository named '{updates.get('repository')}'",
            f"repositories are: {', '.join(map(str, names))}")


def hardware_errors(i: int, test: Mapping[str, Any], v: Mapping[str, Any], out_names: Mapping[str, int],
                    err: Report) -> None:
    """``boot-tests[i].hardware``: known rows available on the profile's architectures, one per slot, driven
    by a driver the profile installs (in ``drivers`` or as a driver-NAME package); a disk row (nvme-root) only
    on disk outputs whose root is on that bus."""
    names = list(test.get("hardware", []))
    where: list[str | int] = ["boot-tests", i, "hardware"]
    for problem in hardware.problems(names, v["architectures"]):
        err(where, problem, f"boot hardware: {', '.join(hardware.HARDWARE)} (docs/drivers.md)")
    drivers = set(v.get("drivers", [])) | {p.removeprefix("driver-") for p in (
        pkg if isinstance(pkg, str) else pkg["name"] for pkg in v["packages"]) if p.startswith("driver-")}
    for j, name in enumerate(names):
        row = hardware.HARDWARE.get(name)
        if row is None:
            continue
        if row.driver not in drivers:
            err([*where, j], f"hardware '{name}' needs the driver '{row.driver}', which the profile does not "
                "install", f"add {row.driver} to drivers")
        if row.slot == "disk":
            disk_errors(name, test, v, out_names, [*where, j], err)


def disk_errors(name: str, test: Mapping[str, Any], v: Mapping[str, Any], out_names: Mapping[str, int],
                where: list[str | int], err: Report) -> None:
    want = hardware.HARDWARE[name].root_device
    outputs = test.get("outputs")
    if outputs is None:
        err(where, f"hardware '{name}' attaches the boot disk, but the test applies to every output",
            f"list the test's outputs: disk outputs with options.root-device: {want}")
        return
    for out_name in outputs:
        out = v["outputs"][out_names[out_name]] if out_name in out_names else None
        if out is None:
            continue
        if out["type"] != "disk" or out.get("options", {}).get("root-device", "virtio") != want:
            err(where, f"hardware '{name}' attaches the boot disk, but output '{out_name}' is not a disk whose "
                f"root is on {want}", f"give output '{out_name}' options.root-device: {want}, or drop it here")


def service_errors(services: Sequence[Any], doc: Located, err: Report) -> None:
    """``services[]``: one entry per name, an absolute normalised command, a port 1-65535, not after itself.
    Whether a package provides the service is checked at build, when the packages are known."""
    seen: dict[str, int] = {}
    for i, s in enumerate(services):
        if s["name"] in seen:
            err(["services", i, "name"], f"service '{s['name']}' is listed twice (first at line "
                f"{doc.locate(['services', seen[s['name']]])[0]})", "keep one entry per service")
        seen.setdefault(s["name"], i)
        if "command" in s:
            first = s["command"][0]
            why = path_problem(first[1:]) if first.startswith("/") and first != "/" else "is not an absolute path"
            if why:
                err(["services", i, "command", 0], f"'{first}' {why}",
                    "the first word is the program's absolute, normalised path in the image, e.g. /usr/sbin/sshd")
        ready = s.get("readiness", "")
        if ready.startswith("tcp:") and not 0 < int(ready[4:]) < 65536:
            err(["services", i, "readiness"], f"'{ready}': the port must be 1-65535", "e.g. tcp:80")
        if ready.startswith("file:") and path_problem(ready[6:]):
            err(["services", i, "readiness"], f"'{ready[5:]}' {path_problem(ready[6:])}",
                "give an absolute, normalised path, e.g. file:/run/app.ready")
        if s["name"] in s.get("after", []):
            err(["services", i, "after"], f"service '{s['name']}' cannot come after itself", "remove it from after")


def boundary_errors(v: object, base: Path, err: Report) -> None:
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
    for where, key in _ssh_keys(v):
        _path, problem = confined(tree, base, key)
        if problem:
            err(where, f"ssh check key {key!r} {problem}",
                f"keep the key inside {tree} (the work tree that holds the profile), or give it with --ssh-key")
    files = v.get("files") if isinstance(v, dict) else None
    if isinstance(files, str):
        overlay, problem = confined(tree, base, files)
        if problem:
            err(["files"], f"overlay directory {files!r} {problem}",
                f"put the overlay inside {tree} (the work tree that holds the profile)")
        elif not overlay.is_dir():
            err(["files"], f"overlay directory {overlay} does not exist", "create it or remove 'files'")


def _ssh_keys(v: object) -> list[tuple[list[str | int], str]]:
    """The private keys the host checks name (``boot-tests[i].host-checks[j].ssh.key``), with their place."""
    tests = v.get("boot-tests") if isinstance(v, dict) else None
    return [(["boot-tests", i, "host-checks", j, "ssh", "key"], c["ssh"]["key"])
            for i, t in enumerate(tests if isinstance(tests, list) else []) if isinstance(t, dict)
            for j, c in enumerate(t.get("host-checks") or []) if isinstance(c, dict)
            and isinstance(c.get("ssh"), dict) and isinstance(c["ssh"].get("key"), str)]
