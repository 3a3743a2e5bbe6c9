"""The ``dib`` output: diskimage-builder makes the disk from the lock's root (docs/dib.md).

vcomp writes DIB's inputs into a scratch directory (the root as a tar, the ESP with the UKI, the ``vcomp-root``
element, the block-device configuration, the partx plugin's entry point and a ``sudo`` stand-in that exists
on DIB's PATH only), runs ``disk-image-create`` with exactly that environment, and moves DIB's files into the
output directory. The pure part is :mod:`composer.image.dib.plan`. It needs root and loop devices (DIB mounts
the disk's root to copy the tree in); device-mapper is not needed (partx maps the partitions). A failed run
leaves no mount or loop device behind: vcomp undoes what DIB left under its scratch directory.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import composer
from composer import settings
from composer.errors import ToolError, UserError
from composer.image.dib import plan, tarfix
from composer.image.formats import fs
from composer.image.workshop import BuiltOutput, OutputJob, Workshop
from composer.rootfs import Root, UnsafePath
from composer.run import run

EXTENSION = ".qcow2"  # with the default formats
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TIMEOUT = 1800  # seconds for one DIB run (about a minute here for a small root)
EXTRA = "pip install 'veridian-composer[dib]'"
ERROR_WORDS = ("error", "failed", "no such", "unbound variable")  # lines of DIB's log that say what went wrong


@dataclass(frozen=True, slots=True, kw_only=True)
class HostFacts:
    """What the host offers DIB (read at the edge; :func:`host_problem` judges it)."""

    dib: str            # the disk-image-create script, "" when diskimage-builder is not installed
    root: bool
    loop: bool          # /dev/loop-control


def host_facts() -> HostFacts:
    script = ""
    if importlib.util.find_spec("diskimage_builder") is not None:
        beside = Path(sys.executable).parent / "disk-image-create"
        script = str(beside) if beside.exists() else shutil.which("disk-image-create") or ""
    return HostFacts(dib=script, root=os.geteuid() == 0, loop=Path("/dev/loop-control").exists())


def backend_version() -> str:
    """diskimage-builder's version (part of the image cache's key of a dib output), "missing" without it."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return f"diskimage-builder {version('diskimage-builder')}"
    except PackageNotFoundError:
        return "missing"


def host_problem(facts: HostFacts, output: str) -> UserError | None:
    """Why this host cannot build the output (None when it can): one line and the fix."""
    if not facts.dib:
        return UserError(f"output '{output}' (dib) needs diskimage-builder, which is not installed",
                         hint=f"{EXTRA} (or drop the dib output from the profile)")
    if not facts.root:
        return UserError(f"output '{output}' (dib) needs root: diskimage-builder mounts a loop device",
                         hint="build the profile as root (in a VM or container with loop devices), or use the "
                              "disk output, which needs no root")
    if not facts.loop:
        return UserError(f"output '{output}' (dib) needs loop devices: /dev/loop-control is missing",
                         hint="modprobe loop (or give the container /dev/loop-control and /dev/loop*), or use the "
                              "disk output, which needs none")
    return None


def build(w: Workshop, t: OutputJob, out: Path) -> BuiltOutput:
    formats = plan.formats_of(t.options)
    elements = plan.elements_of(t.options, f"output '{t.name}'")
    facts = host_facts()
    problem = host_problem(facts, t.name)
    if problem is not None:
        raise problem
    cmdline = f"{w.cmdline} vcomp.root=/dev/vda{plan.ROOT_PARTITION} vcomp.rootfstype=ext4"
    esp = w.esp(cmdline, t.name, uefi=True)
    root_tar = w.work / f"{t.name}-root.tar"
    fs.make_tar(w.root, root_tar, epoch=w.epoch)
    esp_mib = plan.esp_mib(esp.stat().st_size)
    job = plan.DibJob(name=t.name, dib_arch=w.arch.deb, formats=formats, elements=elements, root_tar=root_tar,
                      esp_image=esp, esp_mib=esp_mib, image_mib=plan.image_mib(root_tar.stat().st_size, esp_mib),
                      root_type=str(w.arch.gpt_root_type).upper(),
                      guids={k: str(w.uuid(f"dib-{k}")) for k in ("disk", "esp", "root", "root-fs")},
                      epoch=w.epoch)
    files = _run_dib(job, facts.dib, w.work, out, has_bash=_has_bash(w.root))
    if "tar" in formats:
        _normalise_tar(out / f"{t.name}{plan.FORMATS['tar']}", w.root, w.epoch)
    fmt = plan.bootable_format(formats)
    return BuiltOutput(name=t.name, type=t.type, files=files, firmware=t.firmware if fmt else (),
                       boot={"media": "disk", "format": fmt} if fmt else {})


def _run_dib(job: plan.DibJob, script: str, work: Path, out: Path, *, has_bash: bool) -> tuple[Path, ...]:
    """Run DIB for ``job`` in a scratch directory under ``work``; its files, bootable first, moved into ``out``."""
    with tempfile.TemporaryDirectory(prefix="vcomp-dib-", dir=work) as tmp:
        scratch = Path(tmp)
        _write_inputs(scratch, job)
        elements_path = [scratch / "elements", *_user_elements(), _dib_elements()]
        problem = plan.in_root_problem(_phases(job, elements_path), has_bash=has_bash, where=f"output '{job.name}'")
        if problem is not None:
            raise problem
        env = plan.environment(job, scratch=scratch, python=sys.executable,
                               python_path=[scratch / "site", Path(composer.__file__).parent.parent],
                               elements_path=elements_path[:-1], host_path=HOST_PATH)
        base = scratch / "out" / job.name
        argv = plan.command(script, job, base)
        try:
            result = run(argv, env=env, clean_env=True, check=False, timeout=TIMEOUT, cwd=scratch)
        finally:
            _undo_leftovers(scratch)
        if result.returncode != 0:
            last = _last_error(result.stdout + result.stderr)
            raise ToolError(f"diskimage-builder failed for output '{job.name}' (exit {result.returncode}): {last}",
                            hint=f"its whole log: {_keep_log(job.name, result.stdout + result.stderr)}")
        order = [f for f in plan.BOOT_ORDER if f in job.formats] + [f for f in job.formats if f not in plan.BOOT_ORDER]
        files = []
        for fmt in order:
            made = base.with_name(f"{job.name}.{fmt}")   # DIB names its files IMAGE.TYPE
            if not made.is_file():
                raise ToolError(f"diskimage-builder wrote no {fmt} file for output '{job.name}'",
                                hint=f"its whole log: {_keep_log(job.name, result.stdout + result.stderr)}")
            dest = out / f"{job.name}{plan.FORMATS[fmt]}"
            shutil.move(made, dest)
            files.append(dest)
        return tuple(files)


def _keep_log(name: str, text: bytes) -> Path:
    """DIB's log of a failed run, kept where it outlives the build's directories."""
    fd, path = tempfile.mkstemp(prefix=f"vcomp-dib-{name}-", suffix=".log")
    with os.fdopen(fd, "wb") as f:
        f.write(text)
    return Path(path)


def _has_bash(root: Path) -> bool:
    """Whether the root has /bin/bash (its symlinks resolved inside the root, never on the host)."""
    with Root.open(root) as tree:
        try:
            return tree.is_file(tree.resolve("bin/bash"))
        except (UnsafePath, OSError):
            return False


def _normalise_tar(path: Path, root: Path, epoch: int) -> None:
    """DIB's tar rewritten without the host's /dev and the build's times (:mod:`composer.image.dib.tarfix`)."""
    dev = root / "dev"
    names = sorted(str(p.relative_to(dev)) for p in dev.rglob("*")) if dev.is_dir() else []
    tmp = path.with_name(path.name + ".new")
    with path.open("rb") as src, tmp.open("wb") as dst:
        tarfix.normalise(src, dst, dev=tarfix.root_dev_entries(names), epoch=epoch)
    tmp.replace(path)


def _write_inputs(scratch: Path, job: plan.DibJob) -> None:
    def put(rel: str, text: str, mode: int = 0o644) -> None:
        path = scratch / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(mode)
    for rel, (text, mode) in plan.element_files().items():
        put(f"elements/{plan.ELEMENT}/{rel}", text, mode)
    put("bin/sudo", plan.SUDO, 0o755)
    put("site/vcomp_dib_partx-1.0.dist-info/METADATA", plan.METADATA)
    put("site/vcomp_dib_partx-1.0.dist-info/entry_points.txt", plan.ENTRY_POINTS)
    put("block-device.yaml", plan.block_device_yaml(job))
    for d in ("tmp", "home", "out"):
        (scratch / d).mkdir(exist_ok=True)


def _dib_elements() -> Path:
    """DIB's own elements (disk-image-create appends them to ELEMENTS_PATH)."""
    import diskimage_builder
    return Path(diskimage_builder.__file__).parent / "elements"


def _phases(job: plan.DibJob, paths: list[Path]) -> dict[str, frozenset[str]]:
    """Each element DIB will run (the profile's and their dependencies) -> the phases it runs inside the root."""
    from diskimage_builder import element_dependencies as deps
    try:
        found = deps.get_elements([plan.ELEMENT, *job.elements], ":".join(str(p) for p in paths))
    except (deps.MissingElementException, deps.AlreadyProvidedException, deps.InvalidElementDir) as exc:
        raise UserError(f"output '{job.name}': DIB elements {list(job.elements)}: {exc or type(exc).__name__}",
                        hint="name elements DIB has (python -m diskimage_builder.element_dependencies lists "
                             "them) or that are on ELEMENTS_PATH; one operating system only (vcomp-root)") from None
    return {str(name): frozenset(p for p in plan.IN_ROOT_PHASES if Path(path, p).is_dir()) for name, path in found}


def _user_elements() -> list[Path]:
    """Further element directories the user names (ELEMENTS_PATH, as DIB reads it)."""
    return [Path(p) for p in settings.ELEMENTS_PATH.get().split(":") if p]


def _last_error(output: bytes) -> str:
    lines = [ln.strip() for ln in output.decode("utf-8", "replace").splitlines() if ln.strip()]
    lines = [ln.split(" | ", 1)[-1].strip() for ln in lines]
    lines = [ln for ln in lines if ln]
    found = [i for i, ln in enumerate(lines) if any(w in ln.lower() for w in ERROR_WORDS)]
    if not found:
        return (lines or ["(no output)"])[-1][:300]
    i = found[-1]
    text = lines[i] + (" " + lines[i + 1] if lines[i].endswith(":") and i + 1 < len(lines) else "")
    return text[:300]


def _undo_leftovers(scratch: Path) -> None:
    """Unmount whatever DIB left mounted under ``scratch`` (deepest first) and detach its loop devices."""
    prefix = str(scratch.resolve()) + "/"
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point.startswith(prefix):
            mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        run(["umount", "-l", point], check=False)
    listed = run(["losetup", "--list", "--noheadings", "--raw", "-O", "NAME,BACK-FILE"], check=False)
    for line in listed.stdout.decode("utf-8", "replace").splitlines():
        name, _, back = line.partition(" ")
        if back.startswith(prefix) or back.startswith(prefix.rstrip("/")):
            run(["partx", "-d", name], check=False)
            run(["losetup", "-d", name], check=False)
