#!/usr/bin/env python3
"""Benchmark `vcomp build` (images) against the raw tools doing the same work, in the same run.

    .venv/bin/python bench/image.py [--repeat 3] [--arch x86_64] [--extra-mb 0] [--json FILE] [--tmpdir DIR]

End to end: ``build_arch`` on profiles/minimal.yaml, as `vcomp build` calls it, with a cold image cache
(every output built) and warm (every output from the cache); the repository cache is warm in both, so
only the image cache differs. Per step, on one installed and configured x86_64 root: our initramfs, UKI,
ESP, ext4, ISO and GPT disk + qcow2 (the pipeline's own Workshop methods and builders, every other
intermediate taken ready-made) against cpio | zstd, objcopy, mkfs.fat + mcopy, mke2fs -d, xorriso and
sfdisk + dd + qemu-img on the same inputs. Each of our operations runs in a fresh child interpreter (peak
RSS, no imports in the figures); medians of --repeat runs, round-robin. Needs the sample repository
(images/repo, made by `make demo`). See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import harness
from harness import Launcher, Sample, fs_of, table, write_json

MB = 1_000_000
MIB = 1 << 20
EPOCH = 1_700_000_000          # SOURCE_DATE_EPOCH of every build (as `make demo`)
PROJECT = Path(__file__).resolve().parent.parent
PROFILE = PROJECT / "profiles" / "minimal.yaml"
SAMPLE_REPO = PROJECT / "images" / "repo"
STEP_ARCH = "x86_64"           # the per-step comparison (objcopy's VMAs and isolinux are x86_64 things)
ZSTD_LEVEL = 10                # composer.image.workshop.COMPRESSORS["zstd"]
UKI_VMAS = ((".osrel", 0x20000), (".cmdline", 0x30000), (".linux", 0x2000000), (".initrd", 0x3000000))
# step -> the Workshop intermediate it makes (None: a builder that only assembles ready-made intermediates)
STEPS: dict[str, str | None] = {"initramfs": "initramfs", "uki": "uki", "esp": "esp", "ext4": "ext4",
                                "iso": None, "disk": None}
STEP_TITLES = {
    "initramfs": ("initramfs: write_cpio + zstd -10", "find | sort | cpio -H newc | zstd -10"),
    "uki": ("UKI: pe.make_uki", "objcopy --add-section x4"),
    "esp": ("ESP: fat.make_fat", "mkfs.fat -C + mmd + mcopy"),
    "ext4": ("ext4: fs.make_ext4", "mke2fs -t ext4 -b 4096 -I 256 -i 16384 -d"),
    "iso": ("ISO: iso.make_iso (pycdlib)", "xorriso -as mkisofs"),
    "disk": ("disk: write_gpt + to_qcow2", "sfdisk + dd + qemu-img convert"),
}
RAW_TOOLS = {"initramfs": ("find", "sort", "cpio", "zstd"), "uki": ("objcopy",), "esp": ("mkfs.fat", "mmd", "mcopy"),
             "ext4": ("mke2fs",), "iso": ("xorriso",), "disk": ("truncate", "sfdisk", "dd", "qemu-img")}
TOOL_PACKAGES = {"cpio": "cpio", "xorriso": "xorriso", "objcopy": "binutils", "sfdisk": "fdisk",
                 "qemu-img": "qemu-utils", "mkfs.fat": "dosfstools", "mmd": "mtools", "mcopy": "mtools",
                 "mke2fs": "e2fsprogs", "zstd": "zstd"}
# What a raw output's bytes depend on besides its inputs (why it is or is not the same from run to run).
RAW_NOTES = {
    "initramfs": "--reproducible, -R 0:0: same tree, same bytes; but mtimes come from the tree, and no /dev nodes "
                 "without root",
    "uki": "objcopy writes the current time into the PE TimeDateStamp (and so into the CheckSum)",
    "esp": "volume id and every directory entry's date from the clock (mkfs.fat --invariant -i, SOURCE_DATE_EPOCH "
           "for mtools fix that)",
    "ext4": "random UUID and hash seed, inode times from the host tree and the clock",
    "iso": "volume dates and the hybrid GPT GUIDs from the clock / random (SOURCE_DATE_EPOCH helps xorriso)",
    "disk": "sfdisk with given GUIDs and qemu-img: no clock in the bytes",
}


# ================================================================= child side (fresh interpreter)

class Phases:
    """Seconds per wrapped function; nested wrapped calls are named parent/child."""

    def __init__(self) -> None:
        self.data: dict[str, list[float]] = {}  # label -> [calls, seconds]
        self.stack: list[str] = []

    def add(self, label: str, seconds: float) -> None:
        entry = self.data.setdefault(label, [0, 0.0])
        entry[0] += 1
        entry[1] += seconds

    def timed(self, label: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.stack.append(label)
            name = "/".join(self.stack)
            t = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - t)
                self.stack.pop()
        return wrapper

    def wrap(self, owner: Any, name: str, label: str | None = None) -> None:
        setattr(owner, name, self.timed(label or name, getattr(owner, name)))

    def wrap_tools(self, module: Any) -> None:
        """Time each host tool a module runs (through composer.run.run), by the tool's name."""
        real = module.run

        def run(args: Sequence[Any], **kwargs: Any) -> Any:
            return self.timed(Path(str(args[0])).name, real)(args, **kwargs)
        module.run = run


def instrument(phases: Phases) -> None:
    """Wrap the pipeline's steps so a build reports where its time went. The product steps do not nest:
    each builder computes the intermediates it needs before it calls its maker."""
    from composer.compose import build as pipeline
    from composer.compose import layout
    from composer.image import workshop as artifacts
    from composer.image.formats import fat, fs, gpt, iso, pe
    for name in ("tool_versions", "from_cache", "fetch_locked", "install", "configure", "to_cache",
                 "write_records"):
        phases.wrap(pipeline, name)
    phases.wrap(layout, "switch", "swap_in")
    phases.wrap(artifacts.Workshop, "initramfs")
    phases.wrap(artifacts, "entries_from_tree", "scan tree")
    phases.wrap(artifacts, "write_cpio")
    for module, name in ((pe, "make_uki"), (fat, "make_fat"), (fs, "make_ext4"), (iso, "make_iso"),
                         (gpt, "write_gpt"), (fs, "to_qcow2")):
        phases.wrap(module, name)
    phases.wrap_tools(fs)
    phases.wrap_tools(fat)
    phases.wrap(os, "fsync")  # our outputs are made durable; the raw tools' are not


def extra_blob(rng: random.Random, size: int, pool: list[bytes]) -> bytes:
    """About 40 % fresh random bytes, 60 % recurring fragments: zstd compresses it roughly 2x."""
    out = bytearray()
    while len(out) < size:
        out += rng.randbytes(rng.randint(256, 4096)) if rng.random() < 0.4 else rng.choice(pool)
    return bytes(out[:size])


def add_extra(root: Path, megabytes: float, seed: int) -> int:
    """Deterministic files (16 KiB-4 MiB) under usr/share/bench-extra; returns the count."""
    rng = random.Random(seed)
    pool = [rng.randbytes(rng.randint(256, 4096)) for _ in range(64)]
    budget, i = int(megabytes * MB), 0
    while budget > 0:
        size = min(budget, rng.randint(16 * 1024, 4 * MIB))
        path = root / "usr" / "share" / "bench-extra" / f"d{i % 16:02d}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(extra_blob(rng, size, pool))
        budget -= size
        i += 1
    return i


def op_build(a: dict[str, Any], phases: Phases) -> dict[str, Any]:
    """What `vcomp build PROFILE --arch A` does after its imports: load (profile, lock, repositories,
    staleness) and build_arch, with the image cache given."""
    from composer.compose.build import build_profile
    from composer.compose.layout import locked
    from composer.solve.relock import load_locked
    t = time.perf_counter()
    profile, lock, lock_digest, sources = load_locked(Path(a["profile"]))
    phases.add("load profile+lock+repos", time.perf_counter() - t)
    t = time.perf_counter()
    said: list[str] = []
    with locked(Path(a["images"]), profile.name) as top:
        (r,) = build_profile(top, profile, lock, lock_digest, sources, {a["arch"]: ()}, Path(a["cache"]),
                             epoch=a["epoch"], say=said.append)
    phases.add("build_arch", time.perf_counter() - t)
    files = {f["path"]: {"sha256": f["sha256"], "size": f["size"]} for o in r.manifest["outputs"] for f in o["files"]}
    return {"cached": list(r.cached), "outputs": [p.name for p in r.products], "files": files}


def op_prepare(a: dict[str, Any], phases: Phases) -> dict[str, Any]:
    """A cold build of STEP_ARCH (this also fills the repository cache) that keeps its installed, configured
    root and every intermediate the Workshop made (initramfs, UKIs, ESPs, ext4) for the per-step runs."""
    from composer.arch import get_arch
    from composer.compose import build as pipeline
    keep = Path(a["keep"])
    real = pipeline.build_products
    params: dict[str, Any] = {}

    def capture(shop: Any, targets: Sequence[Any], out: Path) -> Any:
        extra = add_extra(shop.root, a["extra_mb"], a["seed"]) if a["extra_mb"] else 0
        products = real(shop, targets, out)
        if not hasattr(shop, "_made"):
            raise SystemExit("bench: artifacts.Workshop has no _made cache any more: update bench/image.py")
        roles = {"initramfs": shop.initramfs(), "uki": shop.uki(shop.cmdline, "bench"),  # made already: no work
                 "esp": shop.esp(shop.cmdline, "bench"), "ext4": shop.root_image("ext4")}
        root = keep / "root"
        shutil.move(str(shop.root), root)
        kernel = keep / "kernel"  # a copy beside the root (the build reads it from the root, confined)
        shutil.copyfile(shop.kernel, kernel)
        (keep / "made").mkdir()
        made: dict[str, str] = {}
        for key, path in shop._made.items():
            made[key] = str(keep / "made" / path.name)
            shutil.move(str(path), made[key])
        by_path = {v: k for k, v in shop._made.items()}
        params.update(
            arch=shop.arch.name, root=str(root), kernel=str(kernel), epoch=shop.epoch,
            seed=shop.seed, cmdline=shop.cmdline, boot_files=dict(shop.boot_files), made=made,
            role_keys={role: by_path[path] for role, path in roles.items()},
            roles={role: made[by_path[path]] for role, path in roles.items()},
            targets=[{"name": t.name, "type": t.type, "options": dict(t.options), "firmware": list(t.firmware)}
                     for t in targets],
            efi_boot_name=get_arch(shop.arch.name).efi_boot_name, extra_files=extra)
        return products

    pipeline.build_products = capture
    out = op_build(a, phases)
    files = [p for p in Path(params["root"]).rglob("*")]
    params.update(root_entries=len(files), root_bytes=sum(p.lstat().st_size for p in files if p.is_file()
                                                         and not p.is_symlink()))
    (keep / "params.json").write_text(json.dumps(params, indent=1))
    return {**out, "params": str(keep / "params.json")}


def op_step(a: dict[str, Any], phases: Phases) -> dict[str, Any]:
    """One product step over the prepared root, with the pipeline's own code: a Workshop whose cache holds
    every intermediate the prepare build made except the one this step makes."""
    from composer.arch import get_arch
    from composer.image import workshop as artifacts
    from composer.image.outputs import OUTPUT_TYPES
    p = json.loads(Path(a["params"]).read_text())
    step, work, out = a["step"], Path(a["work"]), Path(a["out"])
    root = Path(p["root"])
    shop = artifacts.Workshop(root=root, arch=get_arch(p["arch"]), work=work, epoch=p["epoch"], seed=p["seed"],
                              cmdline=p["cmdline"], boot_files=p["boot_files"], kernel=Path(p["kernel"]))
    own = p["role_keys"].get(STEPS[step] or "")
    shop._made.update({k: Path(v) for k, v in p["made"].items() if k != own})
    before = set(shop._made)
    t = time.perf_counter()
    if step == "initramfs":
        path = shop.initramfs()
    elif step == "uki":
        path = shop.uki(shop.cmdline, "bench")
    elif step == "esp":
        path = shop.esp(shop.cmdline, "bench")
    elif step == "ext4":
        path = shop.root_image("ext4")
    else:
        spec = next(x for x in p["targets"] if x["type"] == step)
        target = artifacts.OutputJob(name=spec["name"], type=spec["type"], options=spec["options"],
                                  firmware=tuple(spec["firmware"]))
        path = OUTPUT_TYPES[step].builder(shop, target, out).files[0]
    phases.add(step, time.perf_counter() - t)
    if set(shop._made) - before != ({own} if own else set()):
        raise SystemExit(f"bench: step {step} made {sorted(set(shop._made) - before)}, expected only {own}: the "
                         "Workshop's keys changed; update bench/image.py")
    return {"path": str(path)}


def child_main(op: str, a: dict[str, Any]) -> int:
    import resource

    def cpu() -> float:
        s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

    # Everything `vcomp build` imports, before the clock starts.
    import composer.cli.image
    import composer.compose.build
    import composer.image.workshop
    import composer.package.build
    import composer.profile.load
    import composer.solve.lock  # noqa: F401
    from composer.errors import ComposerError
    import_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    phases = Phases()
    if op != "import":
        instrument(phases)
    ops: dict[str, Callable[[dict[str, Any], Phases], dict[str, Any]]] = {
        "build": op_build, "prepare": op_prepare, "step": op_step, "import": lambda _a, _p: {}}
    t0, c0 = time.perf_counter(), cpu()
    try:
        out = ops[op](a, phases)
    except ComposerError as exc:
        hint = getattr(exc, "hint", None)
        print(f"bench: {op}: {exc}" + (f"\n  hint: {hint}" if hint else ""), file=sys.stderr)
        return 3
    out.update(seconds=time.perf_counter() - t0, cpu=cpu() - c0, import_kib=import_kib,
               peak_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, phases=phases.data)
    print(json.dumps(out))
    return 0


# ================================================================= measuring (parent side)

class Result(harness.Result):
    def digests(self) -> list[str]:
        return [s.extra["sha256"] for s in self.samples if "sha256" in s.extra]

    def same_bytes(self) -> bool | None:
        d = self.digests()
        return None if len(d) < 2 else len(set(d)) == 1

    def phase_medians(self) -> dict[str, tuple[float, float]]:
        names = {n for s in self.samples for n in s.extra.get("phases", {})}
        return {n: (statistics.median(s.extra["phases"].get(n, [0, 0.0])[0] for s in self.samples),
                    statistics.median(s.extra["phases"].get(n, [0, 0.0])[1] for s in self.samples))
                for n in sorted(names)}

    def to_json(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 4), "cpu_seconds": round(self.cpu, 4),
                "peak_rss_mib": round(self.peak_mib, 1), "samples": [round(s.seconds, 4) for s in self.samples],
                "same_bytes": self.same_bytes()}


def _process_note(last: Sample) -> str:
    return f"  (process {last.extra['process_wall']:.3f} s)" if "process_wall" in last.extra else ""


def measure(ops: dict[str, Callable[[], Sample]], repeat: int) -> dict[str, Result]:
    """Every op ``repeat`` times, round-robin (drift of the machine hits all ops alike)."""
    results: dict[str, Result] = harness.measure(ops, repeat, result=Result, note=_process_note)
    return results


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def describe_file(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"sha256": sha256_of(path), "size": st.st_size, "allocated": st.st_blocks * 512}


def tool_version(argv: Sequence[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    lines = [ln.strip() for ln in (r.stdout + r.stderr).splitlines() if any(c.isdigit() for c in ln)]
    return lines[0] if lines else "?"


def raw_commands(p: dict[str, Any], scratch: Path) -> dict[str, Callable[[Path], str]]:
    """For each step a function of the output path giving a bash command doing the step with the raw tools,
    on the same inputs as ours (sizes and layouts copied from ours; files prepared here, untimed)."""
    from composer.image.formats import fat, gpt, syslinux
    q = shlex.quote
    root, roles = Path(p["root"]), {k: Path(v) for k, v in p["roles"].items()}
    kernel = root / p["kernel"]
    boot = {k: root / v for k, v in p["boot_files"].items()}
    cmdline, cfg = scratch / "cmdline.txt", scratch / "isolinux.cfg"
    cmdline.write_text(p["cmdline"])
    cfg.write_text(syslinux.boot_config(p["cmdline"]))
    osrel = root / "etc" / "os-release"
    fat_mib = roles["esp"].stat().st_size // MIB
    ext4_mib = roles["ext4"].stat().st_size // MIB

    # the disk: the layout write_gpt computes for the same two images, written by sfdisk
    def guid(label: str) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"bench-raw:{label}")
    parts = [gpt.Partition(name="ESP", type_guid=gpt.ESP_TYPE, guid=guid("esp"), image=roles["esp"]),
             gpt.Partition(name="root", type_guid=gpt.ROOT_TYPES[p["arch"]], guid=guid("root"), image=roles["ext4"])]
    layout = gpt.plan_table([(x, x.image.stat().st_size) for x in parts], disk_guid=guid("disk"))
    script = scratch / "disk.sfdisk"
    script.write_text(f"label: gpt\nlabel-id: {layout.disk_guid}\nunit: sectors\nfirst-lba: 34\n" + "".join(
        f"start={e.first_lba}, size={e.last_lba - e.first_lba + 1}, type={e.type_guid}, uuid={e.guid}, "
        f'name="{e.name}"\n' for e in layout.entries))
    dd = " && ".join(f"dd if={q(str(x.image))} of=\"$d\" bs=1M seek={e.first_lba * 512 // MIB} conv=notrunc,sparse "
                     "status=none" for x, e in zip(parts, layout.entries, strict=True))
    iso_hybrid = f"-isohybrid-mbr {q(str(boot['isohdpfx']))} " if "isohdpfx" in boot else ""
    grafts = {"/boot/vmlinuz": kernel, "/boot/initrd.img": roles["initramfs"],
              "/isolinux/isolinux.bin": boot.get("isolinux"), "/isolinux/ldlinux.c32": boot.get("ldlinux"),
              "/isolinux/isolinux.cfg": cfg, "/EFI/efiboot.img": roles["esp"]}
    uki_args = " ".join(f"--add-section {name}={q(str(src))} --change-section-vma {name}={vma:#x}"
                        for (name, vma), src in zip(UKI_VMAS, (osrel, cmdline, kernel, roles["initramfs"]),
                                                    strict=True))
    return {
        "initramfs": lambda out: (f"cd {q(str(root))} && find . -mindepth 1 -path './boot/*' -prune -o -print "
                                  f"| LC_ALL=C sort | cpio -o -H newc --reproducible -R 0:0 --quiet "
                                  f"| zstd -{ZSTD_LEVEL} -T1 -q -f -o {q(str(out))}"),
        "uki": lambda out: f"objcopy {uki_args} {q(str(boot['uki-stub']))} {q(str(out))}",
        "esp": lambda out: (f"export MTOOLS_SKIP_CHECK=1; mkfs.fat -C -F {fat.fat_bits(fat_mib)} -n ESP {q(str(out))} "
                            f"{fat_mib * 1024} > /dev/null && mmd -i {q(str(out))} ::/EFI ::/EFI/BOOT && "
                            f"mcopy -i {q(str(out))} {q(str(roles['uki']))} ::/EFI/BOOT/{p['efi_boot_name']}"),
        # -b/-I/-i: the geometry ours pins; below 512 MiB mke2fs would otherwise pick its "small" type (1 KiB
        # blocks, an inode per 4 KiB): another, slower file system
        "ext4": lambda out: f"mke2fs -q -t ext4 -b 4096 -I 256 -i 16384 -d {q(str(root))} -F {q(str(out))} {ext4_mib}M",
        "iso": lambda out: ("xorriso -as mkisofs -quiet -iso-level 3 -R -J -V VERIDIAN -o " + q(str(out)) +
                            " -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 "
                            "-boot-info-table -eltorito-alt-boot -e EFI/efiboot.img -no-emul-boot "
                            "-isohybrid-gpt-basdat " + iso_hybrid + "-graft-points " +
                            " ".join(q(f"{k}={v}") for k, v in grafts.items() if v is not None)),
        "disk": lambda out: (f"d={q(str(out.with_suffix('.raw')))}; truncate -s {layout.sectors * 512} \"$d\" && "
                             f"sfdisk -q --no-reread --no-tell-kernel \"$d\" < {q(str(script))} > /dev/null && {dd} "
                             f"&& qemu-img convert -f raw -O qcow2 \"$d\" {q(str(out))}"),
    }


RAW_EXT = {"initramfs": ".cpio.zst", "uki": ".efi", "esp": ".fat", "ext4": ".ext4", "iso": ".iso", "disk": ".qcow2"}


# ================================================================= the benchmark

def main(argv: Sequence[str] | None = None) -> int:
    ap = harness.parser(__doc__)
    harness.add_repeat(ap)
    ap.add_argument("--arch", action="append", help="end to end: only this architecture (repeatable; default: all "
                                                     "of the profile's, as `vcomp build` does)")
    ap.add_argument("--extra-mb", type=float, default=0,
                    help="add this many MB of generated files to the root of the per-step runs (default 0: the "
                         "profile's root as it is)")
    ap.add_argument("--seed", type=int, default=20240601, help="seed of the --extra-mb files")
    ap.add_argument("--no-e2e", action="store_true", help="skip the end-to-end builds")
    ap.add_argument("--no-steps", action="store_true", help="skip the per-step comparison")
    harness.add_json(ap, "also write every number to this JSON file")
    harness.add_tmpdir(ap)
    ap.add_argument("--child", nargs=2, metavar=("OP", "ARGS"), help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    if opts.child:
        return child_main(opts.child[0], json.loads(opts.child[1]))
    if opts.repeat < 1:
        ap.error("--repeat must be at least 1")
    if not (SAMPLE_REPO / "metadata").is_dir():
        raise SystemExit(f"bench: the sample repository {SAMPLE_REPO.relative_to(PROJECT)} is missing: run `make demo` "
                         "first (or: .venv/bin/python scripts/sample_repo.py images/repo images/packages)")
    with tempfile.TemporaryDirectory(prefix="vcomp-bench-image-", dir=opts.tmpdir) as tmp_s:
        tmp = Path(tmp_s)
        launcher = Launcher(tmp)
        try:
            return bench(opts, tmp, launcher)
        finally:
            launcher.close()


def bench(opts: argparse.Namespace, tmp: Path, launcher: Launcher) -> int:
    from composer.profile.load import load_profile
    arches = opts.arch or list(load_profile(PROFILE).architectures)
    (tmp / "t").mkdir()
    base = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATE_EPOCH", "VCOMP_CACHE")}
    env = {**base, "SOURCE_DATE_EPOCH": str(EPOCH), "VCOMP_CACHE": str(tmp / "vcache"), "TMPDIR": str(tmp / "t"),
           "PYTHONHASHSEED": "0"}
    raw_env = {**base, "TMPDIR": str(tmp / "t")}  # the raw tools as a user types them: no SOURCE_DATE_EPOCH
    counter = iter(range(1_000_000))

    def child(op: str, args: dict[str, Any]) -> Sample:
        res, text = launcher.run([sys.executable, str(Path(__file__).resolve()), "--child", op, json.dumps(args)],
                                 env, f"child '{op}'")
        out = json.loads(text.strip().splitlines()[-1])
        out["process_wall"] = res["wall"]
        out["wait4_peak_kib"] = res["maxrss"]
        return Sample(seconds=out.pop("seconds"), cpu=out.pop("cpu"), peak_kib=out.pop("peak_kib"), extra=out)

    # ---- prepare: one cold x86_64 build that keeps its root and intermediates (untimed; warms every cache)
    print(f"preparing: a cold build of {PROFILE.relative_to(PROJECT)} for {STEP_ARCH}, keeping its root"
          + (f" (+{opts.extra_mb:g} MB of generated files)" if opts.extra_mb else ""), flush=True)
    keep = tmp / "prepared"
    keep.mkdir()
    prep = child("prepare", {"profile": str(PROFILE), "arch": STEP_ARCH, "images": str(tmp / "prep-images"),
                             "cache": str(tmp / "prep-cache"), "epoch": EPOCH, "keep": str(keep),
                             "extra_mb": opts.extra_mb, "seed": opts.seed})
    params = json.loads(Path(prep.extra["params"]).read_text())
    print(f"  root: {params['root_entries']} entries, {params['root_bytes'] / MB:.1f} MB"
          + (f" (of which {params['extra_files']} generated files)" if params["extra_files"] else "")
          + f"; the prepare build took {prep.seconds:.2f} s", flush=True)

    ops: dict[str, Callable[[], Sample]] = {}
    # ---- end to end
    state: dict[str, Path] = {}

    def build(arch: str, cold: bool) -> Sample:
        if cold:
            state[arch] = tmp / "e2e" / arch / f"r{next(counter)}"
        d = state[arch]
        s = child("build", {"profile": str(PROFILE), "arch": arch, "images": str(d / "images"),
                            "cache": str(d / "cache"), "epoch": EPOCH})
        if cold and s.extra["cached"]:
            raise SystemExit(f"bench: the cold {arch} build took {s.extra['cached']} from its fresh cache")
        if not cold:
            if sorted(s.extra["cached"]) != sorted(s.extra["outputs"]):
                rebuilt = set(s.extra["outputs"]) - set(s.extra["cached"])
                raise SystemExit(f"bench: the warm {arch} build rebuilt {sorted(rebuilt)}")
            shutil.rmtree(d)
        return s

    if not opts.no_e2e:
        for arch in arches:
            ops[f"build {arch}, cold image cache"] = lambda a=arch: build(a, True)
            ops[f"build {arch}, warm image cache"] = lambda a=arch: build(a, False)
        ops["python start + imports only"] = lambda: child("import", {})

    # ---- per step
    notes: list[str] = []
    raw = raw_commands(params, tmp)

    def ours(step: str) -> Sample:
        d = tmp / "steps" / f"ours-{step}-{next(counter)}"
        (d / "work").mkdir(parents=True)
        (d / "out").mkdir()
        s = child("step", {"params": Path(prep.extra["params"]).as_posix(), "step": step, "work": str(d / "work"),
                           "out": str(d / "out")})
        s.extra.update(describe_file(Path(s.extra["path"])))
        shutil.rmtree(d)
        return s

    def theirs(step: str) -> Sample:
        d = tmp / "steps" / f"raw-{step}-{next(counter)}"
        d.mkdir(parents=True)
        out = d / f"{step}{RAW_EXT[step]}"
        command = raw[step](out)
        res, _ = launcher.run(["bash", "-c", "set -o pipefail; " + command], raw_env, f"raw {step}")
        s = Sample(seconds=res["wall"], cpu=res["cpu"], peak_kib=res["maxrss"],
                   extra={**describe_file(out), "command": command})
        shutil.rmtree(d)
        return s

    steps_run: list[str] = []
    if not opts.no_steps:
        for step in STEPS:
            ops[f"{step}: ours"] = lambda st=step: ours(st)
            missing = [t for t in RAW_TOOLS[step] if shutil.which(t) is None]
            if missing:
                notes.append(f"{step}: raw row skipped: {', '.join(missing)} not installed (apt-get install "
                             f"{' '.join(sorted({TOOL_PACKAGES.get(t, t) for t in missing}))})")
            else:
                ops[f"{step}: raw"] = lambda st=step: theirs(st)
            steps_run.append(step)

    print(f"\nmeasuring, {opts.repeat} runs each, round-robin (median reported)", flush=True)
    res = measure(ops, opts.repeat)
    return report(opts, tmp, arches, prep, params, res, steps_run, notes)


# ================================================================= reporting

PHASE_ORDER = ("load profile+lock+repos", "tool_versions", "from_cache", "fetch_locked", "install", "configure",
               "initramfs", "make_uki", "make_fat", "make_ext4", "make_iso", "write_gpt", "to_qcow2", "to_cache",
               "write_records", "swap_in")


def phase_rows(r: Result) -> tuple[list[list[str]], dict[str, Any]]:
    ph = r.phase_medians()
    total = ph.get("load profile+lock+repos", (0, 0.0))[1] + ph.get("build_arch", (0, 0.0))[1]
    rows: list[list[str]] = []
    doc: dict[str, Any] = {}
    top = 0.0
    names = [n for n in PHASE_ORDER if n in ph] + sorted(n for n in ph if "/" not in n and n not in PHASE_ORDER
                                                           and n != "build_arch")
    for name in names:
        calls, secs = ph[name]
        top += secs
        rows.append([name, f"{calls:g}", f"{secs:.3f}", f"{100 * secs / total:.0f} %"])
        doc[name] = {"calls": calls, "seconds": round(secs, 4)}
        for sub in sorted(n for n in ph if n.startswith(name + "/")):
            c, s = ph[sub]
            rows.append(["  " * sub.count("/") + "of which " + sub.rsplit("/", 1)[1], f"{c:g}", f"{s:.3f}",
                         f"{100 * s / total:.0f} %"])
            doc[sub] = {"calls": c, "seconds": round(s, 4)}
    other = total - top
    rows.append(["other (reading inputs, writing UKIs, copies, clean-up)", "", f"{other:.3f}",
                 f"{100 * other / total:.0f} %"])
    rows.append(["total (load + build_arch)", "", f"{total:.3f}", "100 %"])
    doc["other"], doc["total"] = round(other, 4), round(total, 4)
    return rows, doc


# the build's product makers (phase, calls counted by this phase) -> the step row doing the same work
MAKERS = (("initramfs", "initramfs/write_cpio", "initramfs"), ("make_uki", "make_uki", "uki"),
          ("make_fat", "make_fat", "esp"), ("make_ext4", "make_ext4", "ext4"), ("make_iso", "make_iso", "iso"),
          ("write_gpt", "write_gpt", "disk"), ("to_qcow2", None, None))


def build_vs_raw(cold: Result, res: dict[str, Result]) -> dict[str, Any]:
    """The cold build's product steps against the raw rows for the same outputs (each row times the number of
    times the build ran that maker: two UKIs and two ESPs for x86_64, one per command line)."""
    ph = cold.phase_medians()
    ours = sum(ph.get(phase, (0, 0.0))[1] for phase, _, _ in MAKERS)
    raw = sum(ph.get(counter, (0, 0.0))[0] * res[f"{step}: raw"].seconds for _, counter, step in MAKERS
              if counter and step)
    counts = {step: ph.get(counter, (0, 0.0))[0] for _, counter, step in MAKERS if counter and step}
    total = cold.seconds
    print(f"\nthe cold {STEP_ARCH} build against the raw tools making the same outputs "
          f"({', '.join(f'{n:g} x {s}' for s, n in counts.items())}):")
    print(f"  product steps inside the build {ours:.3f} s, raw rows {raw:.3f} s: {ours / raw:.2f}x; the whole cold "
          f"build ({total:.3f} s, with fetch, install, configure, cache and records) is {total / raw:.2f}x the raw "
          "tools")
    return {"counts": counts, "ours_product_steps": round(ours, 4), "raw": round(raw, 4),
            "ratio_product_steps": round(ours / raw, 3), "cold_build": round(total, 4),
            "ratio_cold_build": round(total / raw, 3)}


def report(opts: argparse.Namespace, tmp: Path, arches: list[str], prep: Sample, params: dict[str, Any],
           res: dict[str, Result], steps_run: list[str], notes: list[str]) -> int:
    from importlib.metadata import version

    import pycdlib  # noqa: F401
    versions = {
        "mke2fs": tool_version(["mke2fs", "-V"]), "mkfs.fat": tool_version(["mkfs.fat", "--help"]),
        "mtools": tool_version(["mcopy", "--version"]), "qemu-img": tool_version(["qemu-img", "--version"]),
        "objcopy": tool_version(["objcopy", "--version"]), "xorriso": tool_version(["xorriso", "-version"]),
        "cpio": tool_version(["cpio", "--version"]), "zstd": tool_version(["zstd", "--version"]),
        "sfdisk": tool_version(["sfdisk", "--version"]), "pycdlib": version("pycdlib"),
        "python-zstandard": version("zstandard"),
    }
    print(f"\n== {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; temp on {fs_of(tmp)}")
    print("tools: " + "; ".join(f"{k} {v}" for k, v in versions.items()))
    doc: dict[str, Any] = {
        "machine": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "temp_fs": fs_of(tmp)},
        "params": {"repeat": opts.repeat, "arches": arches, "extra_mb": opts.extra_mb, "seed": opts.seed,
                   "epoch": EPOCH, "profile": str(PROFILE.relative_to(PROJECT))},
        "tools": versions, "notes": notes,
        "root": {"entries": params["root_entries"], "bytes": params["root_bytes"],
                 "extra_files": params["extra_files"]},
    }
    ok = True

    # ---- end to end
    if not opts.no_e2e:
        imp = res["python start + imports only"]
        print(f"\nend to end: {PROFILE.relative_to(PROJECT)} through build_arch as `vcomp build` calls it, one child "
              f"per build; median of {opts.repeat}; *op s* after the imports, *process s* the whole child\n")
        rows, e2e_doc = [], {}
        for arch in arches:
            for kind in ("cold", "warm"):
                r = res[f"build {arch}, {kind} image cache"]
                last = r.samples[-1].extra
                size = sum(f["size"] for f in last["files"].values())
                rows.append([f"vcomp build {arch}, {kind} image cache", f"{r.seconds:.3f}", f"{r.cpu:.3f}",
                             f"{r.median_extra('process_wall'):.3f}",
                             f"{max(s.extra['import_kib'] for s in r.samples) / 1024:.1f}", f"{r.peak_mib:.1f}",
                             f"{len(last['files'])} files, {size / MIB:.1f} MiB"])
                e2e_doc[f"{arch} {kind}"] = {**r.to_json(), "outputs": last["files"],
                                             "process_seconds": round(r.median_extra("process_wall"), 4)}
        rows.append(["python start + imports only", "-", "-",
                     f"{imp.median_extra('process_wall'):.3f}",
                     f"{imp.samples[0].extra['import_kib'] / 1024:.1f}", f"{imp.peak_mib:.1f}", ""])
        print(table(rows, ["build", "op s", "cpu s", "process s", "RSS after imports MiB", "peak RSS MiB", "outputs"]))
        print()
        repro: dict[str, Any] = {}
        for arch in arches:
            cold, warm = res[f"build {arch}, cold image cache"], res[f"build {arch}, warm image cache"]
            sets = [{k: v["sha256"] for k, v in s.extra["files"].items()} for s in cold.samples + warm.samples]
            n_cold = len(cold.samples)
            same = all(x == sets[0] for x in sets)
            ok &= same
            digests = ", ".join(f"{k} {v[:12]}" for k, v in sorted(sets[0].items()))
            if same:
                verdict = (f"{n_cold} cold build{'s' if n_cold > 1 else ''} (each from an empty image cache) and "
                           f"{len(warm.samples)} warm gave identical sha256: {digests}")
            else:
                verdict = "outputs DIFFER between builds: " + json.dumps(sets)
            if n_cold < 2 and same:
                verdict += " (only one cold build: use --repeat 2 or more to compare two)"
            print(f"reproducible, {arch}: {verdict}")
            repro[arch] = {"identical": same, "builds": sets}
        for arch in arches:
            rows, phases_doc = phase_rows(res[f"build {arch}, cold image cache"])
            print(f"\nwhere the time goes: cold {arch} build (median per step; *calls* per build)\n")
            print(table(rows, ["step", "calls", "seconds", "share"]))
            e2e_doc[f"{arch} cold"]["phases"] = phases_doc
            rows, phases_doc = phase_rows(res[f"build {arch}, warm image cache"])
            e2e_doc[f"{arch} warm"]["phases"] = phases_doc
            if arch == arches[0]:
                print(f"\nwhere the time goes: warm {arch} build\n")
                print(table(rows, ["step", "calls", "seconds", "share"]))
        doc["end_to_end"], doc["reproducible_builds"] = e2e_doc, repro

    # ---- per step
    if steps_run:
        print(f"\nper step, {STEP_ARCH}, on the root of the prepare build ({params['root_entries']} entries, "
              f"{params['root_bytes'] / MB:.1f} MB): ours in a fresh child (seconds after its imports, fsync of the "
              f"output included), raw as one bash command; median of {opts.repeat}\n")
        rows, size_rows, steps_doc = [], [], {}
        sum_ours = sum_raw = 0.0

        def yn(v: bool | None) -> str:
            return "n/a" if v is None else ("yes" if v else "NO")
        for step in steps_run:
            o, r = res[f"{step}: ours"], res.get(f"{step}: raw")
            split = {k.split("/", 1)[1]: v[1] for k, v in o.phase_medians().items() if "/" in k}
            fsync = sum(v for k, v in split.items() if k.endswith("fsync"))
            if r is not None:
                sum_ours += o.seconds
                sum_raw += r.seconds
            rows.append([step, f"{o.seconds:.3f}", f"{fsync:.3f}", f"{r.seconds:.3f}" if r else "skipped",
                         f"{o.seconds / r.seconds:.2f}x" if r else "-", f"{o.cpu:.3f}", f"{r.cpu:.3f}" if r else "-",
                         f"{o.peak_mib:.1f}", f"{r.peak_mib:.1f}" if r else "-",
                         f"{yn(o.same_bytes())} / {yn(r.same_bytes()) if r else '-'}"])
            lo, lr = o.samples[-1].extra, (r.samples[-1].extra if r else None)
            size_rows.append([step, f"{lo['size'] / MIB:.2f}", f"{lo['allocated'] / MIB:.2f}",
                              f"{lr['size'] / MIB:.2f}" if lr else "-", f"{lr['allocated'] / MIB:.2f}" if lr else "-"])
            steps_doc[step] = {"ours": {**o.to_json(), "size": lo["size"], "allocated": lo["allocated"],
                                        "sha256": lo["sha256"], "what": STEP_TITLES[step][0],
                                        "of_which": {k: round(v, 4) for k, v in split.items()}},
                               "raw": {**r.to_json(), "size": lr["size"], "allocated": lr["allocated"],
                                       "sha256": lr["sha256"], "what": STEP_TITLES[step][1], "command": lr["command"],
                                       "depends_on": RAW_NOTES[step]} if r and lr else None}
            if o.same_bytes() is False:
                ok = False
        print(table(rows, ["step", "ours s", "of which fsync", "raw s", "ours/raw", "ours cpu", "raw cpu",
                           "ours peak MiB", "raw peak MiB", "same bytes ours / raw"]))
        print(f"\nsum of the steps with a raw row: ours {sum_ours:.3f} s, raw {sum_raw:.3f} s"
              + (f" ({sum_ours / sum_raw:.2f}x)" if sum_raw else ""))
        print("\nrows (ours | raw), and where our time goes (median seconds):")
        for step in steps_run:
            split = {k.split("/", 1)[1]: v[1] for k, v in res[f"{step}: ours"].phase_medians().items() if "/" in k}
            print(f"  {step:<10} {STEP_TITLES[step][0]} | "
                  + (STEP_TITLES[step][1] if f"{step}: raw" in res else "(raw skipped)"))
            if split:
                print(f"  {'':<10} of which " + ", ".join(f"{k} {v:.3f}" for k, v in split.items()))
        print("\n*same bytes*: every run of the row gave the same sha256. Ours are also independent of the clock and "
              "of the tree's owners and times; what the raw bytes depend on:")
        for step in steps_run:
            if f"{step}: raw" in res:
                print(f"  {step:<10} {RAW_NOTES[step]}")
        print()
        print(table(size_rows, ["output MiB", "ours", "ours allocated", "raw", "raw allocated"]))
        doc["steps"] = steps_doc
        doc["steps_sum"] = {"ours": round(sum_ours, 4), "raw": round(sum_raw, 4)}
        cold = res.get(f"build {STEP_ARCH}, cold image cache")
        if cold is not None and all(f"{st}: raw" in res for st in STEPS):
            doc["build_vs_raw"] = build_vs_raw(cold, res)
    for n in notes:
        print(f"note: {n}")
    doc["samples"] = {name: [s.to_dict() for s in r.samples] for name, r in res.items()}
    if opts.json:
        write_json(opts.json, doc, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
