"""Kill sweeps of `vcomp build` from outside: images/NAME (every architecture) is old or new, never missing or
mixed, and every cache entry left behind verifies.

The world: the sample repository (built once per machine and recipe set, under $TMPDIR, shared by every
world through a symlink), a small profile ``tiny`` (the minimal profile with two cheap outputs, a rootfs
tar and a gzip initramfs, for x86_64 and aarch64) already built into ``out/`` from one hostname, then
changed and relocked: the command rebuilds both architectures. ``cold``: the cache is empty (packages
fetched, every output built). ``warm``: the cache already holds the new outputs (the build copies them
from it). ``old layout``: warm, with images/tiny/ARCH real directories as before generations. The
follow-up is ``vcomp cache verify`` (exit 0: every entry intact).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from composer import lockfile
from composer.repo.sample import SampleCheckout, build_sample_repo
from tests.reliability.killsweep import REPO, VCOMP, Run, Scenario, tree_digest

ARCHES = ("x86_64", "aarch64")
PROFILE = "profiles/tiny.yaml"
OUTPUTS = """outputs:
  - type: rootfs
  - type: initramfs
    options: {compression: gzip}
"""


def _stamp() -> str:
    """Digest of what the sample repository is made from (names, sizes, times: cheap)."""
    h = hashlib.sha256()
    for top in SampleCheckout(root=REPO).inputs:
        for path in sorted([top] if top.is_file() else top.rglob("*")):
            if "__pycache__" in path.parts:   # (composer/ is an input: recipes/vpk packages it)
                continue
            st = path.stat()
            h.update(f"{path.relative_to(REPO)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:16]


def sample_repo() -> Path:
    """The sample repository, built once (under a lock, renamed into place when complete)."""
    base = Path(tempfile.gettempdir())
    target = base / f"vcomp-sweep-sample-{_stamp()}"
    if (target / "ready").is_file():
        return target / "repo"
    with lockfile.exclusive(base / f"{target.name}.lock", "the sample repository of the build sweeps"):
        if not (target / "ready").is_file():
            tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=base))
            build_sample_repo(tmp / "repo", tmp / "packages", checkout=SampleCheckout(root=REPO))
            (tmp / "ready").touch()
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
    return target / "repo"


def env_for(work: Path) -> dict[str, str]:
    return {"VCOMP_CACHE": str(work / "cache")}


def vcomp(work: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ)
    full["PYTHONPATH"] = str(REPO) + os.pathsep + full.get("PYTHONPATH", "")
    full.update(env if env is not None else env_for(work))
    proc = subprocess.run([*VCOMP, *args], cwd=work, env=full, capture_output=True, text=True, timeout=900,
                          check=False)
    if proc.returncode != 0:
        raise AssertionError(f"vcomp {' '.join(args)} exited {proc.returncode}: {proc.stderr[-800:]}")
    return proc


def write_profile(work: Path, hostname: str) -> None:
    minimal = (REPO / "profiles" / "minimal.yaml").read_text()
    head = minimal[:minimal.index("\noutputs:")].replace("hostname: minimal", f"hostname: {hostname}")
    assert f"hostname: {hostname}" in head
    arches = next(line for line in head.splitlines() if line.startswith("architectures: "))
    head = head.replace(arches, f"architectures: [{', '.join(ARCHES)}]")   # the sweeps' two (minimal has riscv64)
    (work / PROFILE).write_text(head.replace("name: minimal", "name: tiny") + "\n" + OUTPUTS)


def make_world(work: Path) -> None:
    """profiles/tiny.yaml built into out/ (hostname one), then changed to hostname two and relocked."""
    (work / "profiles").mkdir()
    shutil.copytree(REPO / "profiles" / "trust", work / "profiles" / "trust")
    (work / "images").mkdir()
    (work / "images" / "repo").symlink_to(sample_repo())
    write_profile(work, "one")
    vcomp(work, "lock", PROFILE)
    vcomp(work, "build", PROFILE, "--images", "out")
    write_profile(work, "two")
    vcomp(work, "lock", PROFILE)


_TEMPLATES: dict[str, Path] = {}


def world(work: Path, *, warm: bool = False, packages: bool = False) -> None:
    """:func:`make_world` into ``work``, made once per process and copied (``warm``: the new outputs are
    already in the cache; ``packages``: only the repository and package caches are kept; otherwise the
    cache is empty)."""
    kind = "warm" if warm else "packages" if packages else "cold"
    if kind not in _TEMPLATES:
        template = Path(tempfile.mkdtemp(prefix=f"vcomp-build-world-{kind}-"))
        atexit.register(shutil.rmtree, template, True)
        make_world(template)
        if warm:
            vcomp(template, "build", PROFILE, "--images", "scratch")   # the new outputs are now in the cache
            shutil.rmtree(template / "scratch")
        else:
            shutil.rmtree(template / "cache" / "images") if packages else shutil.rmtree(template / "cache")
        _TEMPLATES[kind] = template
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", f"{_TEMPLATES[kind]}/.", str(work)], check=True)


def observe_images(out: Path, name: str = "tiny") -> str:
    """Every architecture's directory as a user sees it (symlinks followed); a missing one is 'absent'."""
    return "|".join(f"{arch}:{tree_digest((out / name / arch).resolve())}" for arch in ARCHES)


def build_run(work: Path, extra: Sequence[str] = ()) -> Run:
    return Run(argv=[*VCOMP, "build", PROFILE, "--images", "out", *extra],
               follow_up=[[*VCOMP, "cache", "verify"]], observe=lambda: observe_images(work / "out"),
               env=env_for(work), cwd=work)


def _cold(work: Path) -> Run:
    world(work)
    return build_run(work)


def _warm(work: Path) -> Run:
    world(work, warm=True)
    return build_run(work)


def _old_layout(work: Path) -> Run:
    """images/tiny/ARCH as real directories (the layout before generations, or a tree copied with cp -r):
    the build swaps them for symlinks with RENAME_EXCHANGE."""
    world(work, warm=True)
    top = work / "out" / "tiny"
    for arch in ARCHES:
        real = (top / arch).resolve()
        (top / arch).unlink()
        shutil.copytree(real, top / arch)
    (top / "current").unlink()
    shutil.rmtree(top / ".gen")
    return build_run(work)


COLD = Scenario(name="build (cold cache)", prepare=_cold)
WARM = Scenario(name="build (warm cache)", prepare=_warm)
OLD_LAYOUT = Scenario(name="build (old layout)", prepare=_old_layout)
SCENARIOS = [COLD, WARM, OLD_LAYOUT]
