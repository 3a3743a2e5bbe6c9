"""Make the built images match the repository: ``vcomp reconcile`` (plan, build what changed, boot-test it,
record a generation) and ``vcomp apply`` (the same for what a saved plan lists, once it is checked not stale).

Progress lines go to ``say``; the results are returned as data (the CLI maps them to exit codes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.boot.session import Case, Reach, boots_of, enforced_certificate, run_boot
from composer.compose.build import build_profile
from composer.compose.layout import locked
from composer.errors import UserError
from composer.gitops import generations, render
from composer.gitops.workspace import Workspace, make_plan
from composer.profile.model import Profile
from composer.solve.lock import RepositorySources, missing_packages
from composer.solve.lockmodel import Lock
from composer.solve.relock import load_locked

if TYPE_CHECKING:
    from composer.farm.images import ImageJob

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconciled:
    """One profile reconciled: refused by the policy, or built, boot-tested and recorded as a generation."""

    profile: str                    # its path relative to the repository
    violations: bool                # the plan violates the policy: nothing was built
    cases: tuple[Case, ...] = ()    # the boot tests run
    generation: int | None = None   # the generation recorded

    @property
    def failed(self) -> bool:
        return any(not c.passed for c in self.cases)


def reconcile_profile(ws: Workspace, path: Path, base: str, *, acknowledged: Sequence[str], image_cache: Path,
                      epoch: int, say: Say, farm: Callable[[list[ImageJob]], object] | None = None) -> Reconciled:
    """Plan the profile against ``base``; unless the policy refuses it, rebuild the architectures whose
    outputs change (or that were never built), boot-test them and record a generation. ``farm``: first run
    the plan's (arch, output) jobs on the build farm, which leaves them in the shared cache for the build here
    (composer/farm/images.py)."""
    rel = ws.git.rel(path)
    plan = make_plan(ws, [path], base, acknowledged=acknowledged)
    pp = plan.profiles[0]
    say(render.table(plan).rstrip("\n"))
    if pp.violations:
        return Reconciled(profile=rel, violations=True)
    if farm is not None:
        from composer.farm.images import ImageJob
        farm([ImageJob(profile=str(path.resolve()), arch=o.arch, output=o.name) for o in pp.output_changes
              if o.action != "remove"])
    return build_and_record(ws, path, {o.arch for o in pp.output_changes if o.action != "remove"},
                            image_cache=image_cache, epoch=epoch, say=say)


def build_and_record(ws: Workspace, path: Path, changed: Iterable[str], *, image_cache: Path, epoch: int,
                     say: Say) -> Reconciled:
    """Rebuild the architectures whose outputs change (``changed``) or that were never built, boot-test them
    and record a generation: what ``reconcile`` does once its plan passed the policy, and ``apply`` for each
    profile of a saved plan."""
    rel = ws.git.rel(path)
    profile, lock, lock_digest, sources = load_locked(path)
    moved = missing_packages(lock, sources)
    if moved:
        raise UserError(f"{path.with_suffix('.lock').name} no longer matches the repositories: {moved[0]}",
                        hint=f"relock and commit: vcomp lock {rel}")
    with locked(ws.images, profile.name):
        cases, g = _reconcile_locked(ws, path, rel, profile, lock, lock_digest, sources, set(changed),
                                     image_cache=image_cache, epoch=epoch, say=say)
    return Reconciled(profile=rel, violations=False, cases=tuple(cases), generation=g)


def _reconcile_locked(ws: Workspace, path: Path, rel: str, profile: Profile, lock: Lock,
                      lock_digest: str, sources: RepositorySources, changed: set[str], *, image_cache: Path,
                      epoch: int, say: Say) -> tuple[list[Case], int]:
    last = generations.last(ws.images, profile.name)
    arches = sorted(changed |
                    {a for a in profile.architectures if last is None or a not in last.get("architectures", {})
                     or not (ws.images / profile.name / a / "manifest.json").is_file()})
    records = dict(last["architectures"]) if last else {}
    cases: list[Case] = []
    built = build_profile(ws.images / profile.name, profile, lock, lock_digest, sources, {a: () for a in arches},
                          image_cache, epoch=epoch, say=say) if arches else []
    for r in built:
        arch = r.arch
        say(f"{arch}: built {', '.join(str(o['name']) for o in r.manifest['outputs'])} in {r.directory}")
        found = []
        for output, firmware in boots_of(r.manifest):
            say(f"{arch}: boot test of {output} ({firmware})")
            found += run_boot(r.manifest, r.directory, output, firmware, logs=r.directory / "boot",
                              reach=Reach(keys=profile.path.parent),
                              secure_boot=enforced_certificate(r.manifest, r.directory, firmware))
        for c in found:
            say(f"  {c.id}: {'PASS' if c.passed else 'FAIL: ' + c.reason()} ({c.watch.seconds:.1f} s)")
        cases += found
        records[arch] = {"inputs": r.manifest["inputs"],
                         "outputs": [{"name": o["name"], "type": o["type"], "files": o["files"]}
                                     for o in r.manifest["outputs"]],
                         "packages": [{"name": p.name, "version": p.version, "sha256": p.sha256, "size": p.size,
                                       "reason": p.reason.text,
                                       **({} if p.version_scheme == "semver" else
                                          {"version-scheme": p.version_scheme})}
                                      for p in lock.packages(arch)],
                         "tests": [{"id": c.id, "passed": c.passed, "seconds": round(c.watch.seconds, 1)}
                                   for c in found]}
    for arch in list(records):
        if arch not in profile.architectures:
            del records[arch]
    head = ws.git.head() or ""
    now = ws.current(path)
    g = generations.record(ws.images, profile.name, {
        "profile": rel, "commit": head, "worktree": "clean" if ws.git.worktree(rel) == ws.git.read(head, rel)
        else "modified", "time": ws.git.commit_time(head) if head else 0,
        "profile-digest": now.profile_digest, "lock-digest": now.lock_digest, "rebuilt": arches,
        "architectures": records})
    failed = [c for c in cases if not c.passed]
    say(f"{rel}: generation {g['generation']} recorded: rebuilt {', '.join(arches) or 'nothing'}; "
        f"{len(cases) - len(failed)} of {len(cases)} boot tests passed")
    return cases, int(g["generation"])


def apply_saved(ws: Workspace, saved: Mapping[str, Any], *, image_cache: Path, epoch: int,
                say: Say) -> list[Reconciled]:
    """Do for each new or changed profile of a saved plan what ``reconcile`` does for it: rebuild the
    architectures whose outputs the plan adds or rebuilds (and any never built), boot-test them and record a
    generation. Unchanged and removed profiles are left alone."""
    done = []
    for p in saved["profiles"]:
        if p.get("status") not in ("new", "changed"):
            continue
        changed = {str(o["arch"]) for o in p["output_changes"] if o["action"] != "remove"}
        done.append(build_and_record(ws, ws.git.root / p["profile"], changed, image_cache=image_cache, epoch=epoch,
                                     say=say))
    return done
