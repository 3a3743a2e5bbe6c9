#!/usr/bin/env python3
"""Benchmark building and verifying a ``.vpk`` against plain tar|zstd and sha256 baselines.

    python bench/package.py [--size-mb 100] [--repeat 3] [--json FILE] [--profile]

Generates a deterministic payload tree (seeded), builds a signed package from it with the library's
``build()`` and verifies it with ``verify_package()``, each in a fresh child Python process so its peak
RSS can be read, and times the same bytes through ``tar | zstd -9 -T1``, ``sha256sum``, hashlib and
``zstd -d | tar``. Everything lives in one temporary directory that is removed at the end.
See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness import Launcher, Sample, fs_of, ratio_table, table, write_json

MB = 1_000_000          # throughput and sizes: decimal megabytes
MIB = 1 << 20           # memory: mebibytes (ru_maxrss is in KiB on Linux)
EPOCH = 1_700_000_000   # SOURCE_DATE_EPOCH for every build
ARCH = "x86_64"
RSS_CLAIM_MIB = 100
ZSTD_LEVEL = 9          # composer.package.archive.ZSTD_LEVEL; the baseline uses the same

RECIPE = """\
[package]
name = "bench-payload"
version = "1.0.0"
description = "Benchmark payload"
license = "MIT"
type = "application"
authors = ["bench"]

[[source]]
kind = "tree"
path = "files"
"""

# The measured operation runs in a fresh interpreter (forked by the launcher below, see there why); it
# reports the operation's own time and CPU, and its RUSAGE_SELF peak after imports and at the end.
CHILD = r"""
import json, resource, sys, time
from pathlib import Path

def rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

op, a = sys.argv[1], json.loads(sys.argv[2])
from composer.package.archive import verify_package, write_package
from composer.package.build import assemble_metadata, build, epoch_for, output_name, scan_staging
from composer.package.recipe import load_recipe
from composer.package.sources import SourceResult
from composer.trust.keys import load_public_key, load_signing_key
import_kib = rss_kib()
prof = None
if a.get("profile"):
    import cProfile
    prof = cProfile.Profile()
out = {}
if op == "build":
    key = load_signing_key(Path(a["key"]))
    t0, c0 = time.perf_counter(), time.process_time()
    if prof: prof.enable()
    built = build(Path(a["recipe"]), a["arch"], key, Path(a["out"]), cache=Path(a["cache"]))
    if prof: prof.disable()
    out["path"] = str(built.path)
elif op == "pack":
    # build() minus the copy of the tree into its staging folder: scan, ELF check, write_package.
    key = load_signing_key(Path(a["key"]))
    t0, c0 = time.perf_counter(), time.process_time()
    if prof: prof.enable()
    recipe = load_recipe(Path(a["recipe"]), a["arch"])
    epoch = epoch_for(recipe)
    meta = assemble_metadata(recipe, [SourceResult(provenance=[{"kind": "tree", "path": "files"}])], epoch)
    staged = scan_staging(Path(a["recipe"]) / "files", {})
    import composer.package.build as B
    if hasattr(B, "check_binaries"):  # the ELF architecture check build() runs since the builder's revision 2
        B.check_binaries(staged, meta.arch, recipe, ())
    path = Path(a["out"]) / output_name(meta)
    write_package(path, metadata=meta, staged=staged, key=key, epoch=epoch)
    if prof: prof.disable()
    out["path"] = str(path)
elif op == "verify":
    pub = load_public_key(Path(a["pub"]))
    t0, c0 = time.perf_counter(), time.process_time()
    if prof: prof.enable()
    v = verify_package(Path(a["path"]), pub)
    if prof: prof.disable()
    out["files"], out["bytes"] = v.files, v.bytes
elif op == "import":
    t0, c0 = time.perf_counter(), time.process_time()
else:
    raise SystemExit(f"unknown op {op}")
out["seconds"] = time.perf_counter() - t0
out["cpu"] = time.process_time() - c0
if prof:
    prof.dump_stats(a["profile"])
out["import_kib"], out["peak_kib"] = import_kib, rss_kib()
print(json.dumps(out))
"""


# ---------------------------------------------------------------- payload

WORDS = [a + b + c for a in ("", "s", "t", "pr", "con", "re", "de", "in", "ex", "str")
         for b in ("a", "e", "i", "o", "u", "ai", "ou") for c in ("", "n", "t", "r", "ll", "st", "ng", "ction")]


def binary_blob(rng: random.Random, size: int) -> bytes:
    """Executable-like bytes: ~12% random (packed data), ~50% low-entropy 'code', recurring fragments,
    zero padding. zstd -9 compresses it roughly 2.5x."""
    alphabet = bytes(rng.sample(range(256), 24))
    table = bytes(alphabet[min(int(rng.expovariate(0.25)), len(alphabet) - 1)] for _ in range(256))
    pool = [rng.randbytes(rng.randint(8, 200)) for _ in range(256)]
    out = bytearray()
    while len(out) < size:
        r, n = rng.random(), rng.randint(256, 8192)
        if r < 0.12:
            out += rng.randbytes(n)
        elif r < 0.62:
            out += rng.randbytes(n).translate(table)
        elif r < 0.88:
            while n > 0:
                frag = rng.choice(pool)
                out += frag
                n -= len(frag)
        else:
            out += bytes(n)
    return bytes(out[:size])


def text_blob(rng: random.Random, size: int) -> bytes:
    """Docs/config/data-like text: lines of words, some key = value lines, some indentation."""
    lines: list[str] = []
    total = 0
    while total < size:
        kind = rng.random()
        if kind < 0.2:
            line = f"{rng.choice(WORDS)}_{rng.choice(WORDS)} = {rng.randint(0, 99999)}"
        elif kind < 0.3:
            line = ""
        else:
            line = "    " * rng.randint(0, 2) + " ".join(rng.choices(WORDS, k=rng.randint(3, 14)))
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()[:size]


@dataclass
class Payload:
    root: Path
    files: int = 0
    dirs: int = 0
    bytes: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind -> [files, bytes]

    def add(self, rel: str, data: bytes, kind: str, mode: int = 0o644) -> None:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.chmod(p, mode)
        self.files += 1
        self.bytes += len(data)
        k = self.by_kind.setdefault(kind, [0, 0])
        k[0] += 1
        k[1] += len(data)


def generate_payload(root: Path, size_mb: float, seed: int) -> Payload:
    """A deterministic tree of about ``size_mb`` MB: 55% large executables (1-12 MB), 15% libraries
    (64 KB-1 MB), 30% small text files (1-20 KB) spread over a few levels of folders."""
    rng = random.Random(seed)
    total = int(size_mb * MB)
    pay = Payload(root=root)
    budget = int(total * 0.55)
    i = 0
    while budget > 0:
        size = min(budget, rng.randint(1 * MB, 12 * MB))
        where = rng.choice(["usr/bin", "usr/sbin", "usr/libexec/veridian", "opt/veridian/bin"])
        pay.add(f"{where}/tool{i:03d}", binary_blob(rng, size), "binary", 0o755)
        budget -= size
        i += 1
    budget = int(total * 0.15)
    i = 0
    while budget > 0:
        size = min(budget, rng.randint(64 * 1024, 1024 * 1024))
        sub = rng.choice(["", "veridian/", "veridian/plugins/", "veridian/plugins/codecs/"])
        pay.add(f"usr/lib/x86_64-linux-gnu/{sub}lib{rng.choice(WORDS)}{i}.so.{rng.randint(0, 9)}",
                binary_blob(rng, size), "library")
        budget -= size
        i += 1
    budget = total - pay.bytes
    i = 0
    while budget > 0:
        size = min(budget, rng.randint(1024, 20 * 1024))
        top = rng.choice(["usr/share/doc/veridian", "usr/share/veridian/data", "usr/share/veridian/locale",
                          "usr/share/man/man1", "etc/xdg/veridian"])  # /etc/veridian is reserved
        parts = [rng.choice(WORDS[:5]) for _ in range(rng.randint(0, 3))]
        ext = rng.choice([".txt", ".conf", ".json", ".md", ".1", ".po"])
        pay.add("/".join([top, *parts, f"{rng.choice(WORDS)}{i}{ext}"]), text_blob(rng, size), "text")
        budget -= size
        i += 1
    pay.dirs = sum(1 for p in root.rglob("*") if p.is_dir())
    return pay


# ---------------------------------------------------------------- measuring

def run_cmd(launcher: Launcher, cmd: str, env: dict[str, str]) -> Sample:
    """A bash pipeline with pipefail."""
    res, _ = launcher.run(["bash", "-c", "set -o pipefail; " + cmd], env)
    return Sample(seconds=res["wall"], cpu=res["cpu"], peak_kib=res["maxrss"])


def run_child(launcher: Launcher, op: str, args: dict[str, Any], env: dict[str, str]) -> Sample:
    """One library operation in a fresh interpreter. Time and CPU are the child's own figures for the
    operation (no interpreter start-up or imports); peak RSS is wait4()'s, checked against the child's
    own RUSAGE_SELF figure."""
    res, text = launcher.run([sys.executable, "-c", CHILD, op, json.dumps(args)], env)
    out = json.loads(text.strip().splitlines()[-1])
    out["process_wall"] = res["wall"]
    out["self_peak_kib"] = out.pop("peak_kib")
    if abs(out["self_peak_kib"] - res["maxrss"]) > 1024:
        print(f"bench: warning: '{op}' peak RSS {res['maxrss']} KiB from wait4, {out['self_peak_kib']} KiB from "
              "RUSAGE_SELF (a subprocess of the operation used more memory?)", file=sys.stderr)
    return Sample(seconds=out.pop("seconds"), cpu=out.pop("cpu"), peak_kib=res["maxrss"], extra=out)


def hashlib_all(files: Sequence[Path]) -> Sample:
    t0, c0 = time.perf_counter(), time.process_time()
    for p in files:
        with p.open("rb") as f:
            hashlib.file_digest(f, "sha256")
    return Sample(seconds=time.perf_counter() - t0, cpu=time.process_time() - c0)


class Result(harness.Result):
    """Median of the samples of one operation."""

    def to_json(self, payload_bytes: int) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 4), "cpu_seconds": round(self.cpu, 4),
            "mb_per_s": round(payload_bytes / MB / self.seconds, 2),
            "peak_rss_mib": round(self.peak_mib, 1) if any(s.peak_kib for s in self.samples) else None,
            "samples": [round(s.seconds, 4) for s in self.samples],
        }


def measure(ops: dict[str, Callable[[], Sample]], repeat: int) -> dict[str, Result]:
    """Run every op ``repeat`` times, round-robin (so drift in the machine hits all ops alike)."""
    results: dict[str, Result] = harness.measure(ops, repeat, result=Result)
    return results


# ---------------------------------------------------------------- reporting

def print_profile(path: Path, title: str, top: int = 15) -> None:
    import pstats
    print(f"\n--- cProfile: {title} (top {top} by own time) ---")
    pstats.Stats(str(path), stream=sys.stdout).sort_stats("tottime").print_stats(top)


def main(argv: Sequence[str] | None = None) -> int:
    ap = harness.parser(__doc__)
    ap.add_argument("--size-mb", type=float, default=100, help="payload size in MB (default 100)")
    ap.add_argument("--small-mb", type=float, default=None,
                    help="second payload size for the memory check (default size/4)")
    harness.add_repeat(ap)
    ap.add_argument("--seed", type=int, default=20240601)
    harness.add_json(ap)
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of one build and one verify")
    ap.add_argument("--many-files", type=int, default=0, metavar="N",
                    help="also build+verify a package of N 512-byte files once, to show how peak RSS grows with "
                         "the number of files (e.g. 50000)")
    ap.add_argument("--tmpdir", type=Path, default=None,
                    help="where the temporary folder goes (default: $TMPDIR or /tmp); e.g. /dev/shm to take the disk "
                         "out of the figures")
    opts = ap.parse_args(argv)
    small_mb = opts.small_mb if opts.small_mb is not None else opts.size_mb / 4

    with tempfile.TemporaryDirectory(prefix="vcomp-bench-", dir=opts.tmpdir) as tmp_s:
        tmp = Path(tmp_s)
        launcher = Launcher(tmp, capture_stderr=False)
        try:
            return bench(opts, small_mb, tmp, launcher)
        finally:
            launcher.close()


def bench(opts: argparse.Namespace, small_mb: float, tmp: Path, launcher: Launcher) -> int:
    from composer.trust.keys import generate

    env = {**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH), "VCOMP_CACHE": str(tmp / "cache"), "PYTHONHASHSEED": "0"}
    env.pop("VCOMP_KEY_PASSPHRASE", None)
    key_path, pub_path, _ = generate("bench", tmp / "keys")
    common = {"key": str(key_path), "pub": str(pub_path), "arch": ARCH, "cache": str(tmp / "cache")}
    q = shlex.quote

    def setup(label: str, size_mb: float) -> tuple[Path, Payload]:
        recipe = tmp / label / "recipe"
        (recipe / "files").mkdir(parents=True)
        (recipe / "recipe.toml").write_text(RECIPE)
        t0 = time.perf_counter()
        pay = generate_payload(recipe / "files", size_mb, opts.seed)
        kinds = ", ".join(f"{k} {n} files/{b / MB:.1f} MB" for k, (n, b) in pay.by_kind.items())
        print(f"payload '{label}': {pay.files} files in {pay.dirs} folders, {pay.bytes} bytes ({pay.bytes / MB:.1f} MB)"
              f" [{kinds}], generated in {time.perf_counter() - t0:.1f} s", flush=True)
        return recipe, pay

    def our_build(recipe: Path) -> Sample:
        return run_child(launcher, "build", {**common, "recipe": str(recipe), "out": str(recipe.parent / "out")}, env)

    def our_verify(recipe: Path, pay: Payload) -> Sample:
        vpk = next((recipe.parent / "out").glob("*.vpk"))
        s = run_child(launcher, "verify", {**common, "path": str(vpk)}, env)
        if (s.extra["files"], s.extra["bytes"]) != (pay.files + pay.dirs, pay.bytes):
            raise SystemExit(f"bench: verify saw {s.extra['files']} entries/{s.extra['bytes']} bytes, expected "
                             f"{pay.files + pay.dirs}/{pay.bytes}")
        return s

    recipe, pay = setup("main", opts.size_mb)
    tree = recipe / "files"
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    tarzst = tmp / "main" / "out.tar.zst"
    t, z = q(str(tree)), q(str(tarzst))
    print(f"\nmeasuring {pay.bytes / MB:.1f} MB, {opts.repeat} runs each (median reported)", flush=True)
    ops: dict[str, Callable[[], Sample]] = {
        "build (vcomp build())": lambda: our_build(recipe),
        "pack only (no staging copy)": lambda: run_child(launcher, "pack", {**common, "recipe": str(recipe),
                                                                     "out": str(tmp / "main" / "pack")}, env),
        "verify (verify_package)": lambda: our_verify(recipe, pay),
        "A: tar | zstd -9 -T1": lambda: run_cmd(launcher, f"tar -cf - -C {t} . | zstd -{ZSTD_LEVEL} -T1 -q -f -o {z}",
                                                env),
        "B1: sha256sum (find|xargs)": lambda: run_cmd(launcher, f"find {t} -type f -print0 | xargs -0 sha256sum "
                                                      "> /dev/null", env),
        "B2: hashlib sha256 (in-proc)": lambda: hashlib_all(files),
        "C1: zstd -d | tar -t": lambda: run_cmd(launcher, f"zstd -d -q -c {z} | tar -tf - > /dev/null", env),
        "C2: zstd -d | tar -xO | sha256sum": lambda: run_cmd(launcher, f"zstd -d -q -c {z} | tar -xOf - | sha256sum "
                                                             "> /dev/null", env),
        "import composer only": lambda: run_child(launcher, "import", {}, env),
        "spawn floor (/bin/true)": lambda: run_cmd(launcher, "/bin/true", env),
    }
    res = measure(ops, opts.repeat)
    vpk = next((recipe.parent / "out").glob("*.vpk"))
    vpk_size, tarzst_size = vpk.stat().st_size, tarzst.stat().st_size
    reproducible = (tmp / "main" / "pack" / vpk.name).read_bytes() == vpk.read_bytes()

    profiles: dict[str, Path] = {}
    if opts.profile:
        for op, extra in (("build", {"recipe": str(recipe), "out": str(tmp / "main" / "prof")}),
                          ("verify", {"path": str(vpk)})):
            profiles[op] = tmp / f"{op}.prof"
            run_child(launcher, op, {**common, **extra, "profile": str(profiles[op])}, env)

    # ---- the memory check at a second size
    small_recipe, small_pay = setup("small", small_mb)
    small = measure({"build (small)": lambda: our_build(small_recipe),
                     "verify (small)": lambda: our_verify(small_recipe, small_pay)}, opts.repeat)

    many: dict[str, Result] = {}
    if opts.many_files:
        many_recipe = tmp / "many" / "recipe"
        (many_recipe / "files").mkdir(parents=True)
        (many_recipe / "recipe.toml").write_text(RECIPE)
        many_pay = Payload(root=many_recipe / "files")
        rng = random.Random(opts.seed)
        for i in range(opts.many_files):
            many_pay.add(f"d{i // 500:04d}/f{i:06d}.txt", rng.randbytes(512), "tiny")
        many_pay.dirs = opts.many_files // 500 + (1 if opts.many_files % 500 else 0)
        print(f"payload 'many': {many_pay.files} files of 512 bytes in {many_pay.dirs} folders", flush=True)
        many = measure({"build (many files)": lambda: our_build(many_recipe),
                        "verify (many files)": lambda: our_verify(many_recipe, many_pay)}, 1)

    for op, path in profiles.items():
        print_profile(path, op)

    # ---- report
    b = pay.bytes
    build_r, verify_r, a_r = res["build (vcomp build())"], res["verify (verify_package)"], res["A: tar | zstd -9 -T1"]
    b1, c1 = res["B1: sha256sum (find|xargs)"], res["C1: zstd -d | tar -t"]
    c2, imp = res["C2: zstd -d | tar -xO | sha256sum"], res["import composer only"]
    floor = res["spawn floor (/bin/true)"]
    small_build, small_verify = small["build (small)"], small["verify (small)"]
    c_wall, c_cpu = c1.seconds + b1.seconds, c1.cpu + b1.cpu
    rows = [[name, f"{r.seconds:.3f}", f"{r.cpu:.3f}", f"{b / MB / r.seconds:.1f}",
             f"{r.peak_mib:.1f}" if any(s.peak_kib for s in r.samples) else "-"]
            for name, r in res.items() if name not in ("import composer only", "spawn floor (/bin/true)")]
    rows.append(["C: C1 + B1 (decompress + hash)", f"{c_wall:.3f}", f"{c_cpu:.3f}", f"{b / MB / c_wall:.1f}", "-"])
    print(f"\n== {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{subprocess.run(['zstd', '--version'], capture_output=True, text=True).stdout.strip()}")
    print(f"payload: {pay.files} files, {pay.dirs} folders, {b / MB:.1f} MB; median of {opts.repeat} runs; "
          f"MB = 10^6 bytes, MiB = 2^20; temp on {fs_of(tmp)}\n")
    print(table(rows, ["operation", "wall s", "cpu s", "MB/s", "peak RSS MiB"]))

    ratios = {
        "build / A (wall)": build_r.seconds / a_r.seconds,
        "build / A (cpu)": build_r.cpu / a_r.cpu,
        "pack only / A (wall)": res["pack only (no staging copy)"].seconds / a_r.seconds,
        "verify / C (wall)": verify_r.seconds / c_wall,
        "verify / C (cpu)": verify_r.cpu / c_cpu,
        "verify / C2 (cpu)": verify_r.cpu / c2.cpu,
    }
    print()
    print(ratio_table(ratios, 2))
    print(f"\nsizes: .vpk {vpk_size} bytes, .tar.zst {tarzst_size} bytes: vpk/tar.zst = {vpk_size / tarzst_size:.3f}; "
          f"payload/vpk = {b / vpk_size:.2f}x compression")
    print(f"pack-only output byte-identical to build() output: {reproducible}")

    def mem_row(label: str, r: Result) -> list[str]:
        return [label, f"{r.import_mib:.1f}", f"{r.peak_mib:.1f}", f"{r.peak_mib - r.import_mib:.1f}"]

    print()
    print(table([
        ["spawn floor (/bin/true)", "-", f"{floor.peak_mib:.1f}", "-"],
        ["import composer only", f"{imp.import_mib:.1f}", f"{imp.peak_mib:.1f}", "-"],
        mem_row(f"build @ {b / MB:.0f} MB", build_r), mem_row(f"build @ {small_pay.bytes / MB:.0f} MB", small_build),
        mem_row(f"verify @ {b / MB:.0f} MB", verify_r),
        mem_row(f"verify @ {small_pay.bytes / MB:.0f} MB", small_verify),
        *([mem_row(f"build, {opts.many_files} x 512 B files", many["build (many files)"]),
           mem_row(f"verify, {opts.many_files} x 512 B files", many["verify (many files)"])] if many else []),
    ], ["peak RSS (MiB)", "after imports", "peak", "op adds"]))
    d_build, d_verify = build_r.peak_mib - small_build.peak_mib, verify_r.peak_mib - small_verify.peak_mib
    worst = max(build_r.peak_mib, verify_r.peak_mib, small_build.peak_mib, small_verify.peak_mib)
    claim = worst < RSS_CLAIM_MIB
    print(f"\npeak RSS from {small_pay.bytes / MB:.0f} MB ({small_pay.files} files) to {b / MB:.0f} MB ({pay.files} "
          f"files): build {d_build:+.1f} MiB, verify {d_verify:+.1f} MiB")
    print(f"claim 'peak memory stays under ~{RSS_CLAIM_MIB} MB whatever the package size': "
          f"{'holds' if claim else 'DOES NOT HOLD'} for these payloads (worst peak {worst:.1f} MiB)")
    per_file: dict[str, float] = {}
    if many:
        for op, big, ref, n_ref in (("build", many["build (many files)"], build_r, pay.files + pay.dirs),
                                    ("verify", many["verify (many files)"], verify_r, pay.files + pay.dirs)):
            n_many = opts.many_files + opts.many_files // 500 + 1
            per_file[op] = (big.peak_mib - ref.peak_mib) * 1024 / (n_many - n_ref) if n_many != n_ref else 0.0
        print(f"with {opts.many_files} small files: build {many['build (many files)'].peak_mib:.1f} MiB, verify "
              f"{many['verify (many files)'].peak_mib:.1f} MiB: about {per_file['build']:.2f} KiB (build) and "
              f"{per_file['verify']:.2f} KiB (verify) per package entry")

    if opts.json:
        doc = {
            "machine": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                        "temp_fs": fs_of(tmp)},
            "params": {"size_mb": opts.size_mb, "small_mb": small_mb, "repeat": opts.repeat, "seed": opts.seed,
                       "zstd_level": ZSTD_LEVEL, "source_date_epoch": EPOCH},
            "payload": {"files": pay.files, "dirs": pay.dirs, "bytes": b, "by_kind": pay.by_kind},
            "small_payload": {"files": small_pay.files, "dirs": small_pay.dirs, "bytes": small_pay.bytes},
            "results": {name.strip(): r.to_json(b) for name, r in res.items()},
            "small_results": {name: r.to_json(small_pay.bytes) for name, r in small.items()},
            "baseline_c": {"seconds": round(c_wall, 4), "cpu_seconds": round(c_cpu, 4),
                           "mb_per_s": round(b / MB / c_wall, 2)},
            "ratios": {k: round(v, 3) for k, v in ratios.items()},
            "sizes": {"vpk": vpk_size, "tar_zst": tarzst_size, "vpk_over_tar_zst": round(vpk_size / tarzst_size, 4)},
            "reproducible": reproducible,
            "memory_mib": {
                "spawn_floor": round(floor.peak_mib, 1), "import_only": round(imp.peak_mib, 1),
                "build": round(build_r.peak_mib, 1), "verify": round(verify_r.peak_mib, 1),
                "build_small": round(small_build.peak_mib, 1), "verify_small": round(small_verify.peak_mib, 1),
                "build_growth": round(d_build, 1), "verify_growth": round(d_verify, 1),
                "claim_limit": RSS_CLAIM_MIB, "claim_holds": claim,
            },
            "many_files": {"files": opts.many_files, "kib_per_entry": {k: round(v, 3) for k, v in per_file.items()},
                           **{name: r.to_json(opts.many_files * 512) for name, r in many.items()}} if many else None,
            "samples": {name.strip(): [s.to_dict() for s in r.samples] for name, r in {**res, **small, **many}.items()},
        }
        write_json(opts.json, doc, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
