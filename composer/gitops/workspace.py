"""The GitOps verbs over a repository of profiles: plan, apply, reconcile, diff, history (I/O at this edge).

``plan`` compares each profile and lock in the working tree with a base (``--base REF``, by default HEAD
for a changed working tree, else HEAD's parent; ``@built``: the last generation built). ``reconcile`` rebuilds and
boot-tests only the profiles whose inputs differ from their last generation, then records a new one;
an unchanged profile costs two small file reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer import limits
from composer.advisory.osv import Advisory
from composer.errors import EXIT_STALE_LOCK, UserError
from composer.gitops import generations
from composer.gitops.gitstate import Base, GitState, state_of
from composer.gitops.plan import PackageChange, Plan, ProfilePlan, State, lock_diff, plan_profile
from composer.profile.load import load_profile
from composer.profile.model import Profile
from composer.solve.lockmodel import Lock, summary_lock
from composer.solve.relock import lock_staleness

BUILT = "@built"


def _name(profile: Profile | None, default: str) -> str:
    return profile.name if profile is not None else default


@dataclass(frozen=True, slots=True, kw_only=True)
class Workspace:
    git: GitState
    images: Path

    @classmethod
    def open(cls, start: Path, images: str | None) -> Workspace:
        git = GitState(start)
        return cls(git=git, images=Path(images).resolve() if images else git.root / "images")

    def profiles(self, given: Sequence[str]) -> list[Path]:
        if given:
            return [Path(p).resolve() for p in given]
        found = sorted((self.git.root / "profiles").glob("*.yaml"))
        if not found:
            raise UserError(f"no profiles in {self.git.root / 'profiles'}", hint="name the profiles to plan")
        return found

    def current(self, path: Path) -> State:
        """The working tree's side; its profile is validated first (a plan of an invalid profile is that error,
        with file:line:column, as `vcomp validate` gives it)."""
        lock = path.with_suffix(".lock")
        if path.is_file():
            load_profile(path)
        return state_of(path.read_bytes() if path.is_file() else None,
                        lock.read_bytes() if lock.is_file() else None, str(path), path)

    def rels(self, paths: Sequence[Path]) -> list[str]:
        return [r for p in paths for r in (self.git.rel(p), self.git.rel(p).removesuffix(".yaml") + ".lock")]

    def base_for(self, path: Path, ref: str | None, default: Base | None = None) -> Base:
        if ref is None:
            return default or self.git.default_base(self.rels([path]))
        if ref == BUILT:
            name = _name(self.current(path).profile, path.stem)
            last = generations.last(self.images, name)
            return Base(ref=BUILT, commit=last["commit"] if last and last.get("commit") else None)
        return Base(ref=ref, commit=self.git.resolve(ref))

    def at(self, path: Path, base: Base) -> State:
        rel = self.git.rel(path)
        lock_rel = rel.removesuffix(".yaml") + ".lock"
        origin = f"{rel}@{(base.commit or 'none')[:12]}"
        return state_of(self.git.read(base.commit, rel), self.git.read(base.commit, lock_rel), origin, path)

    def built(self, name: str) -> dict[str, Mapping[str, Any]]:
        out = {}
        for manifest in sorted((self.images / name).glob("*/manifest.json")):
            try:
                out[manifest.parent.name] = json.loads(manifest.read_bytes())
            except ValueError:
                continue
        return out


class StaleLock(UserError):
    """A profile's lock no longer matches it: a plan of it would show what no build can make (exit 4)."""

    exit_code = EXIT_STALE_LOCK


def refuse_stale_locks(ws: Workspace, profiles: Sequence[Path]) -> None:
    """Raise :class:`StaleLock` naming every profile of the working tree whose lock is stale or missing, and
    why (a profile deleted from the working tree has no lock to check)."""
    found = [(ws.git.rel(p), why) for p in profiles if p.is_file() for why in [lock_staleness(p)] if why]
    if found:
        rels = " ".join(rel for rel, _ in found)
        raise StaleLock("no plan: the lock of " + ", ".join(rel for rel, _ in found) + " is stale:\n"
                        + "\n".join(f"  {rel}: {'; '.join(why)}" for rel, why in found),
                        hint=f"run: vcomp lock {rels}, commit the lock with the profile, then plan again")


def make_plan(ws: Workspace, profiles: Sequence[Path], base_ref: str | None, *, acknowledged: Sequence[str] = (),
              setuid: Callable[[Path, PackageChange], Sequence[str]] | None = None,
              advisories: Callable[[Path], Sequence[Advisory]] | None = None) -> Plan:
    """``advisories(profile)``: the advisory feeds of the profile's repositories (I/O; None: not read)."""
    plans = []
    default = ws.git.default_base(ws.rels(profiles)) if base_ref is None else None
    for path in profiles:
        base = ws.base_for(path, base_ref, default)
        old, new = ws.at(path, base), ws.current(path)
        name = _name(new.profile or old.profile, path.stem)

        def probe(change: PackageChange, path: Path = path) -> Sequence[str]:
            return setuid(path, change) if setuid is not None else ()

        feed = advisories(path) if advisories is not None and path.is_file() else ()
        plans.append(plan_profile(ws.git.rel(path), old, new, ws.built(name), base=base.commit or "",
                                  acknowledged=acknowledged, setuid=probe, unbuilt=base_ref == BUILT,
                                  advisories=feed))
    head = ws.git.head()
    dirty = any(ws.git.worktree(p.profile) != ws.git.read(head, p.profile) for p in plans)
    return Plan(base={"ref": base_ref or "", "commit": (default.commit or "") if default else "",
                      "description": default.ref if default else base_ref or ""},
                head={"commit": head or "", "worktree": "modified" if dirty else "clean"},
                profiles=tuple(plans), acknowledged=tuple(acknowledged))


def stale_reasons(ws: Workspace, saved: Mapping[str, Any]) -> list[str]:
    """Why a saved plan no longer applies: its base, profile or lock changed since."""
    why = []
    paths = [ws.git.root / p["profile"] for p in saved.get("profiles", [])]
    explicit = saved.get("base", {}).get("ref") or None  # "" when the plan used the default base
    default = ws.git.default_base(ws.rels(paths)) if explicit is None else None
    for p in saved.get("profiles", []):
        path = ws.git.root / p["profile"]
        now = ws.current(path)
        if p["inputs"].get("profile") != now.profile_digest:
            why.append(f"{p['profile']} changed since the plan")
        if p["inputs"].get("lock") != now.lock_digest:
            why.append(f"{p['profile'].removesuffix('.yaml')}.lock changed since the plan")
        base = ws.base_for(path, explicit, default)
        if (base.commit or "") != p.get("base", ""):
            why.append(f"the base of {p['profile']} moved ({p.get('base', '')[:12]} -> {(base.commit or '')[:12]})")
    return why


def unchanged_since_built(ws: Workspace, path: Path) -> dict[str, Any] | None:
    """The last generation when the profile's and lock's bytes are the ones it was built from."""
    now = ws.current(path)
    name = _name(now.profile, path.stem)
    last = generations.last(ws.images, name)
    if last is None or (last.get("profile-digest"), last.get("lock-digest")) != (now.profile_digest, now.lock_digest):
        return None
    for arch, record in last.get("architectures", {}).items():
        manifest = ws.images / name / arch / "manifest.json"
        try:
            if json.loads(manifest.read_bytes()).get("inputs") != record.get("inputs"):
                return None  # the images directory holds another build now
        except (OSError, ValueError):
            return None
    return last


# ---------------------------------------------------------------- diff and history


@dataclass(frozen=True, slots=True, kw_only=True)
class Side:
    label: str
    lock: Lock | None                        # of a built image or a generation: name, version, size (sha256, reason)
    contents: Mapping[str, Mapping[str, Any]]  # arch -> contents.json (built images only)


def _built_records(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A built directory's manifest.json and contents.json, checked before use (they are files on disk)."""
    hint = f"rebuild it with 'vcomp build' (the directory {path} is damaged)"

    def load(name: str) -> Any:
        origin = str(path / name)
        try:
            return limits.load_json((path / name).read_bytes(), origin)
        except ValueError as exc:
            raise UserError(f"{origin}: not valid JSON ({exc})", hint=hint) from None

    manifest = load("manifest.json")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("arch"), str):
        raise UserError(f"{path / 'manifest.json'}: expected an object with a string 'arch'", hint=hint)
    contents = load("contents.json") if (path / "contents.json").is_file() else {}
    ok = isinstance(contents, dict) and all(
        isinstance(c, dict) and isinstance(c.get("version"), str) and isinstance(c.get("size"), int)
        for c in contents.values())
    if not ok:
        raise UserError(f"{path / 'contents.json'}: expected an object of packages with 'version' and 'size'",
                        hint=hint)
    return manifest, contents


def side(ws: Workspace, spec: str, profile: Path | None) -> Side:
    """A commit, a generation (``gen:N``, with --profile) or a built image directory (images/NAME/ARCH)."""
    path = Path(spec)
    if path.is_dir() and (path / "manifest.json").is_file():
        manifest, contents = _built_records(path)
        rows = [{"name": n, "version": c["version"], "version-scheme": str(c.get("version-scheme", "semver")),
                 "sha256": "", "size": c["size"], "reason": ""} for n, c in contents.items()]
        return Side(label=str(path), lock=summary_lock({manifest["arch"]: rows}),
                    contents={manifest["arch"]: contents})
    if profile is None:
        raise UserError(f"'{spec}' is not a built image directory", hint="to compare commits or generations, "
                        "name the profile: vcomp diff A B --profile profiles/NAME.yaml")
    if spec.startswith("gen:"):
        name = _name(ws.current(profile).profile, profile.stem)
        try:
            number = int(spec[4:])
        except ValueError:
            raise UserError(f"'{spec}' is not a generation", hint="write gen:N (see vcomp history)") from None
        g = generations.find(ws.images, name, number)
        return Side(label=f"generation {number}", lock=summary_lock({
            a: v["packages"] for a, v in g["architectures"].items()}), contents={})
    base = Base(ref=spec, commit=ws.git.resolve(spec))
    state = ws.at(profile, base)
    return Side(label=f"{spec} ({(base.commit or '')[:12]})", lock=state.lock, contents={})


def file_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, str, int, int]]:
    """(symbol, path, size before, size after) for every file added, removed or changed."""
    fa = {p: v for pkg in a.values() for p, v in pkg["files"].items()}
    fb = {p: v for pkg in b.values() for p, v in pkg["files"].items()}
    out = []
    for path in sorted(fa.keys() | fb.keys()):
        x, y = fa.get(path), fb.get(path)
        if x == y:
            continue
        out.append(("+" if x is None else "-" if y is None else "~", path, (x or [0])[0], (y or [0])[0]))
    return out


def diff_sides(a: Side, b: Side) -> tuple[list[PackageChange], dict[str, list[tuple[str, str, int, int]]]]:
    packages = lock_diff(a.lock, b.lock, set())
    files = {arch: file_changes(a.contents[arch], b.contents[arch])
             for arch in sorted(a.contents.keys() & b.contents.keys())}
    return packages, files


def plans_changed(plan: Plan) -> list[ProfilePlan]:
    return [p for p in plan.profiles if p.changed]
