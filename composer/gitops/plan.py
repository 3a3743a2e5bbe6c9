"""A plan: what a change of desired state does, in three layers, and the policy verdict. Pure: no I/O.

1. the profile diff (intent): items added to or removed from lists (packages, drivers, policy lists,
   capabilities, architectures), other settings changed;
2. the lock diff per architecture: packages added, removed, upgraded, downgraded or rebuilt, each with
   its reason (requested, dependency of X, driver for Y, repository update) and whether it was asked
   for (explicit) or pulled in;
3. the output diff: which outputs of which architecture are rebuilt (or added, removed), why, and the
   expected size change (the change of the packages' sizes, against the last build's size).

Capability, trust-root and kernel changes are called out; the profile's ``policy`` is evaluated.
The plan's verdict (:attr:`Plan.verdict`) is data; the CLI maps it to an exit code. The saved JSON records
the code of the verdict (:data:`EXIT_CODES`, the plan format's table: the codes the CLI exits with).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from composer.advisory.match import Finding, audit, lock_packages
from composer.advisory.osv import Advisory
from composer.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_NO_CHANGES, EXIT_POLICY
from composer.gitops import policy
from composer.gitops.policy import Violation
from composer.profile.model import Output, Profile
from composer.solve.lock import lock_moves
from composer.solve.lockmodel import Lock

PLAN_FORMAT = "1.1"  # minor versions only add fields (1.1: advisories)
EXIT_CODES = {"no changes": EXIT_NO_CHANGES, "error": EXIT_ERROR, "changes": EXIT_CHANGES,
              "policy violation": EXIT_POLICY}
NOT_IN_IMAGE = ("description", "policy", "boot-tests")  # profile keys that do not change image bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileChange:
    path: str            # the profile key (or key[name] for list items)
    action: str          # add | remove | change
    old: object = None
    new: object = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageChange:
    arch: str
    name: str
    action: str          # add | remove | upgrade | downgrade | rebuild
    old: str | None
    new: str | None
    reason: str
    explicit: bool
    size_delta: int

    @property
    def symbol(self) -> str:
        return {"add": "+", "remove": "-"}.get(self.action, "~")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputChange:
    arch: str
    name: str
    type: str
    action: str          # add | rebuild | remove
    reason: str
    size_before: int | None
    size_delta: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Callout:
    kind: str            # capabilities | trust-root | kernel
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AdvisoryChange:
    """An advisory the change makes apply to a locked package (``introduce``) or stop applying (``fix``)."""

    action: str          # introduce | fix
    arch: str
    name: str
    version: str         # the affected version (the new one for introduce, the old one for fix)
    id: str
    severity: str
    summary: str
    fixed: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfilePlan:
    profile: str         # path relative to the repository
    name: str
    status: str          # new | changed | unchanged | removed
    inputs: Mapping[str, str]
    base: str = ""       # the commit compared with ("" when there is none: the profile is new)
    profile_changes: tuple[ProfileChange, ...] = ()
    package_changes: tuple[PackageChange, ...] = ()
    output_changes: tuple[OutputChange, ...] = ()
    callouts: tuple[Callout, ...] = ()
    violations: tuple[Violation, ...] = ()
    advisories: tuple[AdvisoryChange, ...] = ()
    advisories_remaining: int = 0    # (package, advisory) pairs of the new lock the change leaves as they were

    @property
    def changed(self) -> bool:
        return bool(self.profile_changes or self.package_changes or self.output_changes or self.status != "unchanged")


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    base: Mapping[str, str]   # ref ("" for the default), commit of the default base, description
    head: Mapping[str, str]   # commit, worktree (clean | modified)
    profiles: tuple[ProfilePlan, ...]
    format: str = PLAN_FORMAT
    acknowledged: tuple[str, ...] = field(default=())

    @property
    def has_violations(self) -> bool:
        return any(p.violations for p in self.profiles)

    @property
    def has_changes(self) -> bool:
        return any(p.changed for p in self.profiles)

    @property
    def verdict(self) -> str:
        """``policy violation``, ``changes`` or ``no changes`` (a key of :data:`EXIT_CODES`)."""
        return "policy violation" if self.has_violations else "changes" if self.has_changes else "no changes"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["format_version"] = out.pop("format")
        out["summary"] = summary(self)
        out["exit_code"] = EXIT_CODES[self.verdict]  # the plan format records the code of its verdict
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    """One side of a comparison: the validated profile and its lock (None when absent)."""

    profile: Profile | None
    lock: Lock | None
    profile_digest: str = ""
    lock_digest: str = ""


# ---------------------------------------------------------------- layer 1: the profile


def _names(items: Sequence[object]) -> dict[str, object]:
    return {(i if isinstance(i, str) else str(i.get("name", str(i))) if isinstance(i, dict) else str(i)): i
            for i in items}


def _doc(profile: Profile | None) -> dict[str, object]:
    """The profile as written (what the intent layer compares)."""
    return profile.to_dict() if profile is not None else {}


def profile_diff(old_profile: Profile | None, new_profile: Profile | None) -> list[ProfileChange]:
    """Every key, list item and nested key added, removed or changed (a real diff, never a whole structure
    when a part of it changed): ``packages[nano]``, ``policy.allowed-licenses[MIT]``, ``kernel.cmdline``."""
    old, new = _doc(old_profile), _doc(new_profile)
    return [c for key in sorted(set(old) | set(new)) for c in value_diff(key, old.get(key), new.get(key))]


def value_diff(path: str, a: object, b: object) -> list[ProfileChange]:
    """The changes between two YAML values at ``path`` (pure): mappings key by key (``path.key``), lists item
    by item (``path[item]``, an item named by itself or its ``name``), anything else as one change."""
    if a == b:
        return []
    if isinstance(a or {}, dict) and isinstance(b or {}, dict):
        da: dict[object, object] = dict(a) if isinstance(a, dict) else {}
        db: dict[object, object] = dict(b) if isinstance(b, dict) else {}
        return [c for k in sorted(set(da) | set(db), key=str) for c in value_diff(f"{path}.{k}", da.get(k), db.get(k))]
    na, nb = _items(a), _items(b)
    if na is not None and nb is not None and "[" not in path:
        return ([ProfileChange(path=f"{path}[{n}]", action="add", new=nb[n]) for n in sorted(nb.keys() - na.keys())]
                + [ProfileChange(path=f"{path}[{n}]", action="remove", old=na[n])
                   for n in sorted(na.keys() - nb.keys())]
                + [ProfileChange(path=f"{path}[{n}]", action="change", old=na[n], new=nb[n])
                   for n in sorted(na.keys() & nb.keys()) if na[n] != nb[n]])
    return [ProfileChange(path=path, action="add" if a is None else "remove" if b is None else "change", old=a, new=b)]


def _items(value: object) -> dict[str, object] | None:
    """A list (or nothing) as name -> item when every item has its own name; else None (compared whole)."""
    if value is None:
        return {}
    if not isinstance(value, list):
        return None
    named = _names(value)
    return named if len(named) == len(value) and all("]" not in n for n in named) else None


# ---------------------------------------------------------------- layer 2: the lock


def lock_diff(old: Lock | None, new: Lock | None, requested_changed: set[str]) -> list[PackageChange]:
    out = []
    moved_indexes = (old.indexes if old else None) != (new.indexes if new else None)
    for m in lock_moves(old, new):
        a, b = m.old, m.new
        if b is None:
            assert a is not None
            out.append(PackageChange(arch=m.arch, name=m.name, action="remove", old=a.version, new=None,
                                     reason=f"no longer needed (was: {a.reason})",
                                     explicit=a.reason.explicit, size_delta=-a.size))
            continue
        reason = b.reason.text
        if a is not None and m.name not in requested_changed and moved_indexes:
            reason = f"repository update ({reason})"
        out.append(PackageChange(arch=m.arch, name=m.name, action=m.action, old=a.version if a else None,
                                 new=b.version, reason=reason, explicit=b.reason.explicit,
                                 size_delta=b.size - (a.size if a else 0)))
    return out


# ---------------------------------------------------------------- layer 3: outputs


def _outputs(profile: Profile | None, arch: str) -> dict[str, Output]:
    if not profile:
        return {}
    return {o.name: o for o in profile.outputs if arch in o.architectures}


def output_diff(old: State, new: State, packages: Sequence[PackageChange],
                built: Mapping[str, Mapping[str, Any]], *, unbuilt: bool = False) -> list[OutputChange]:
    """``built``: arch -> the manifest of the last build (for sizes). ``unbuilt``: also rebuild outputs
    never built here (for reconcile; a CI runner without images/ would otherwise rebuild everything)."""
    new_profile, old_profile = _doc(new.profile), _doc(old.profile)
    image_keys = sorted(k for k in set(old_profile) | set(new_profile)
                        if k not in NOT_IN_IMAGE and k != "outputs" and old_profile.get(k) != new_profile.get(k))
    out = []
    for arch in sorted({*(new.profile.architectures if new.profile else ()),
                        *(old.profile.architectures if old.profile else ())}):
        before, after = _outputs(old.profile, arch), _outputs(new.profile, arch)
        pkgs = [p for p in packages if p.arch == arch]
        delta = sum(p.size_delta for p in pkgs)
        manifest = built.get(arch, {})
        sizes = {o["name"]: sum(f["size"] for f in o["files"]) for o in manifest.get("outputs", [])}
        for name in sorted(before.keys() | after.keys()):
            o = after.get(name) or before[name]
            if name not in after:
                out.append(OutputChange(arch=arch, name=name, type=o.type, action="remove",
                                        reason="removed from the profile", size_before=sizes.get(name),
                                        size_delta=-sizes.get(name, 0)))
                continue
            why = []
            if old.profile is None:
                why.append("new profile")
            elif name not in before:
                why.append("new output")
            elif before[name].to_dict() != after[name].to_dict():
                why.append("output options changed")
            if pkgs and old.profile is not None:
                why.append(f"{len(pkgs)} package change{'s' if len(pkgs) > 1 else ''}")
            if image_keys and old.profile is not None:
                why.append(f"profile changed: {', '.join(image_keys)}")
            if not why and unbuilt and name not in sizes:
                why.append("never built")
            if why:
                out.append(OutputChange(arch=arch, name=name, type=o.type,
                                        action="add" if name not in before else "rebuild", reason="; ".join(why),
                                        size_before=sizes.get(name), size_delta=delta))
    return out


# ---------------------------------------------------------------- call-outs and policy


def callouts(old: State, new: State, packages: Sequence[PackageChange]) -> list[Callout]:
    out = []
    a = set(old.profile.capabilities if old.profile else ())
    b = set(new.profile.capabilities if new.profile else ())
    if a != b:
        out.append(Callout(kind="capabilities", message="granted capabilities: " + ", ".join(
            [*(f"+{c}" for c in sorted(b - a)), *(f"-{c}" for c in sorted(a - b))])))
    for arch, pkgs in sorted((new.lock.architectures if new.lock else {}).items()):
        olds = {p.name: set(p.capabilities) for p in (old.lock.packages(arch) if old.lock else ())}
        for row in pkgs:
            gained = set(row.capabilities) - olds.get(row.name, set())
            if gained and row.name in olds:
                out.append(Callout(kind="capabilities",
                                   message=f"{arch}: {row.name} now uses {', '.join(sorted(gained))}"))
    ra = old.lock.trust_roots if old.lock else {}
    rb = new.lock.trust_roots if new.lock else {}
    for repo in sorted(set(ra) | set(rb)):
        if old.lock is not None and ra.get(repo) != rb.get(repo):
            out.append(Callout(kind="trust-root", message=f"trust root of '{repo}': "
                               f"{(ra.get(repo) or 'none')[:12]} -> {(rb.get(repo) or 'none')[:12]}"))
    kernel = new.profile.kernel.package_name if new.profile else "linux"
    for p in packages:
        if p.name == kernel and p.action != "add":
            out.append(Callout(kind="kernel", message=f"{p.arch}: kernel {kernel} {p.old} -> {p.new or 'removed'}"))
    ka, kb = _doc(old.profile).get("kernel"), _doc(new.profile).get("kernel")
    if old.profile is not None and ka != kb:
        out.append(Callout(kind="kernel", message=f"kernel settings: {ka} -> {kb}"))
    return out


def policy_violations(new: State, packages: Sequence[PackageChange], outputs: Sequence[OutputChange],
                      calls: Sequence[Callout], *, acknowledged: Sequence[str] = (),
                      setuid: Callable[[PackageChange], Sequence[str]] = lambda _p: (),
                      findings: Sequence[Finding] = (),
                      gates: Sequence[policy.Gate] | None = None) -> list[Violation]:
    """The profile's policy against the new state: the gates of :data:`composer.gitops.policy.GATES`."""
    by_package: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        by_package.setdefault((f.package.arch, f.package.name), []).append(f)
    return policy.evaluate(new.profile.policy.to_dict() if new.profile else {}, locked=policy.locked_packages(new.lock),
                           outputs=outputs, changes=packages, callouts=calls, acknowledged=acknowledged,
                           setuid=setuid, advisories=lambda p: by_package.get((p.arch, p.name), ()), gates=gates)


def advisory_findings(lock: Lock | None, advisories: Sequence[Advisory]) -> list[Finding]:
    return audit(lock_packages(lock), advisories) if advisories else []


def advisory_changes(old: Sequence[Finding], new: Sequence[Finding]) -> tuple[list[AdvisoryChange], int]:
    """The advisories the change introduces and fixes (per architecture, package and advisory id), and how many
    pairs it leaves."""
    def key(f: Finding) -> tuple[str, str, str]:
        return (f.package.arch, f.package.name, f.advisory.id)

    before, after = {key(f): f for f in old}, {key(f): f for f in new}

    def row(action: str, f: Finding) -> AdvisoryChange:
        return AdvisoryChange(action=action, arch=f.package.arch, name=f.package.name, version=f.package.version,
                              id=f.advisory.id, severity=f.severity, summary=f.advisory.title, fixed=f.fixed)

    rows = [row("introduce", after[k]) for k in sorted(after.keys() - before.keys())]
    rows += [row("fix", before[k]) for k in sorted(before.keys() - after.keys())]
    return rows, len(after.keys() & before.keys())


# ---------------------------------------------------------------- the whole


def plan_profile(path: str, old: State, new: State, built: Mapping[str, Mapping[str, Any]], *,
                 base: str = "", acknowledged: Sequence[str] = (), unbuilt: bool = False,
                 setuid: Callable[[PackageChange], Sequence[str]] = lambda _p: (),
                 advisories: Sequence[Advisory] = ()) -> ProfilePlan:
    """``advisories``: the feeds of the profile's repositories (the advisories the change introduces or fixes,
    and the ``advisories`` policy gate)."""
    either = new.profile or old.profile
    name = either.name if either is not None else path
    inputs = {"profile": new.profile_digest, "lock": new.lock_digest}
    if new.profile is None:
        return ProfilePlan(profile=path, name=name, status="removed", inputs=inputs, base=base,
                           profile_changes=tuple(profile_diff(old.profile, None)))
    changes = profile_diff(old.profile, new.profile)
    requested = {c.path.split("[", 1)[1].rstrip("]") for c in changes if c.path.startswith("packages[")}
    packages = lock_diff(old.lock, new.lock, requested)
    outputs = output_diff(old, new, packages, built, unbuilt=unbuilt)
    calls = callouts(old, new, packages)
    findings = advisory_findings(new.lock, advisories)
    moved, remaining = advisory_changes(advisory_findings(old.lock, advisories), findings)
    violations = policy_violations(new, packages, outputs, calls, acknowledged=acknowledged, setuid=setuid,
                                   findings=findings)
    status = "new" if old.profile is None else "changed" if (changes or packages or outputs) else "unchanged"
    return ProfilePlan(profile=path, name=name, status=status, inputs=inputs, base=base,
                       profile_changes=tuple(changes),
                       package_changes=tuple(packages), output_changes=tuple(outputs), callouts=tuple(calls),
                       violations=tuple(violations), advisories=tuple(moved), advisories_remaining=remaining)


def summary(plan: Plan) -> dict[str, int]:
    pk = [c for p in plan.profiles for c in p.package_changes]
    return {"profiles_changed": sum(p.changed for p in plan.profiles),
            "profiles_added": sum(p.status == "new" for p in plan.profiles),
            "profiles_removed": sum(p.status == "removed" for p in plan.profiles),
            "packages_added": sum(c.action == "add" for c in pk),
            "packages_changed": sum(c.action in ("upgrade", "downgrade", "rebuild") for c in pk),
            "packages_removed": sum(c.action == "remove" for c in pk),
            "outputs_rebuilt": sum(o.action in ("add", "rebuild") for p in plan.profiles for o in p.output_changes),
            "violations": sum(len(p.violations) for p in plan.profiles),
            "advisories_introduced": sum(a.action == "introduce" for p in plan.profiles for a in p.advisories),
            "advisories_fixed": sum(a.action == "fix" for p in plan.profiles for a in p.advisories)}


def matrix(plan: Plan) -> list[dict[str, str]]:
    """(profile, arch, output) jobs for a CI matrix: every output to build."""
    return [{"profile": p.profile, "arch": o.arch, "output": o.name}
            for p in plan.profiles for o in p.output_changes if o.action != "remove"]
