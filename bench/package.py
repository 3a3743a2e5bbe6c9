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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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

# The measured operation runs in a fresh interpreter; it reports its own time and peak RSS
# (RUSAGE_SELF is per process, so earlier children cannot leak into the figure).
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
    # build() minus the copy of the tree into its staging folder: scan + write_package only.
    key = load_signing_key(Path(a["key"]))
    t0, c0 = time.perf_counter(), time.process_time()
    if prof: prof.enable()
    recipe = load_recipe(Path(a["recipe"]), a["arch"])
    epoch = epoch_for(recipe)
    meta = assemble_metadata(recipe, [SourceResult(provenance=[{"kind": "tree", "path": "files"}])], epoch)
    staged = scan_staging(Path(a["recipe"]) / "files", {})
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
                          "usr/share/man/man1", "etc/veridian"])
        parts = [rng.choice(WORDS[:24]) for _ in range(rng.randint(0, 3))]
        ext = rng.choice([".txt", ".conf", ".json", ".md", ".1", ".po"])
        pay.add("/".join([top, *parts, f"{rng.choice(WORDS)}{i}{ext}"]), text_blob(rng, size), "text")
        budget -= size
        i += 1
    pay.dirs = sum(1 for p in root.rglob("*") if p.is_dir())
    return pay


# ---------------------------------------------------------------- measuring

@dataclass
class Sample:
    seconds: float      # wall time of the operation
    cpu: float          # user+sys CPU seconds of the operation (all processes of a pipeline)
    peak_kib: int = 0   # peak RSS (the largest process of a pipeline, or the Python child)
    extra: dict[str, Any] = field(default_factory=dict)


def run_cmd(cmd: str, env: dict[str, str] | None = None) -> Sample:
    """Run a bash pipeline (pipefail); wall time, CPU and peak RSS from wait4(), which covers the
    shell and every process it waited for."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(["bash", "-c", "set -o pipefail; " + cmd], env=env)
    _, status, ru = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"bench: command failed ({proc.returncode}): {cmd}")
    return Sample(seconds=seconds, cpu=ru.ru_utime + ru.ru_stime, peak_kib=ru.ru_maxrss)


def run_child(op: str, args: dict[str, Any], env: dict[str, str]) -> Sample:
    """Run one library operation in a fresh interpreter; it reports its own time and RUSAGE_SELF peak."""
    proc = subprocess.run([sys.executable, "-c", CHILD, op, json.dumps(args)], env=env, capture_output=True,
                          text=True, check=False)
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"bench: child '{op}' failed ({proc.returncode})")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return Sample(seconds=out.pop("seconds"), cpu=out.pop("cpu"), peak_kib=out.pop("peak_kib"), extra=out)


def hashlib_all(files: Sequence[Path]) -> Sample:
    t0, c0 = time.perf_counter(), time.process_time()
    for p in files:
        with p.open("rb") as f:
            hashlib.file_digest(f, "sha256")
    return Sample(seconds=time.perf_counter() - t0, cpu=time.process_time() - c0)


@dataclass
class Result:
    """Median of the samples of one operation."""

    name: str
    samples: list[Sample]

    @property
    def seconds(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def peak_mib(self) -> float:
        return max(s.peak_kib for s in self.samples) / 1024

    @property
    def import_mib(self) -> float:
        return max(s.extra.get("import_kib", 0) for s in self.samples) / 1024

    def to_json(self, payload_bytes: int) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 4), "cpu_seconds": round(self.cpu, 4),
            "mb_per_s": round(payload_bytes / MB / self.seconds, 2),
            "peak_rss_mib": round(self.peak_mib, 1) if any(s.peak_kib for s in self.samples) else None,
            "samples": [round(s.seconds, 4) for s in self.samples],
        }


def measure(ops: dict[str, Callable[[], Sample]], repeat: int) -> dict[str, Result]:
    """Run every op ``repeat`` times, round-robin (so drift in the machine hits all ops alike)."""
    results = {name: Result(name, []) for name in ops}
    for r in range(repeat):
        for name, fn in ops.items():
            results[name].samples.append(fn())
            print(f"  [{r + 1}/{repeat}] {name:<28} {results[name].samples[-1].seconds:8.3f} s", flush=True)
    return results


# ---------------------------------------------------------------- reporting

def print_profile(path: Path, title: str, top: int = 15) -> None:
    import pstats
    print(f"\n--- cProfile: {title} (top {top} by own time) ---")
    pstats.Stats(str(path), stream=sys.stdout).sort_stats("tottime").print_stats(top)


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    def fmt(r: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                                          strict=True)))
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=float, default=100, help="payload size in MB (default 100)")
    ap.add_argument("--small-mb", type=float, default=None,
                    help="second payload size for the memory check (default size/4)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one build and one verify")
    opts = ap.parse_args(argv)
    small_mb = opts.small_mb if opts.small_mb is not None else opts.size_mb / 4

    from composer.trust.keys import generate  # after argparse so --help is fast

    with tempfile.TemporaryDirectory(prefix="vcomp-bench-") as tmp_s:
        tmp = Path(tmp_s)
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH), "VCOMP_CACHE": str(tmp / "cache"),
               "PYTHONHASHSEED": "0"}
        env.pop("VCOMP_KEY_PASSPHRASE", None)
        key_path, pub_path, keyid = generate("bench", tmp / "keys")

        def setup(label: str, size_mb: float) -> tuple[Path, Payload]:
            recipe = tmp / label / "recipe"
            (recipe / "files").mkdir(parents=True)
            (recipe / "recipe.toml").write_text(RECIPE)
            t0 = time.perf_counter()
            pay = generate_payload(recipe / "files", size_mb, opts.seed)
            kinds = ", ".join(f"{k}: {n} files {b / MB:.1f} MB" for k, (n, b) in pay.by_kind.items())
            print(f"payload '{label}': {pay.files} files in {pay.dirs} folders, {pay.bytes} bytes "
                  f"({pay.bytes / MB:.1f} MB) [{kinds}] generated in {time.perf_counter() - t0:.1f} s")
            return recipe, pay

        recipe, pay = setup("main", opts.size_mb)
        tree = recipe / "files"
        files = sorted(p for p in tree.rglob("*") if p.is_file())
        out_dir, pack_dir = tmp / "main" / "out", tmp / "main" / "pack"
        tarzst = tmp / "main" / "out.tar.zst"
        q = shlex.quote
        common = {"key": str(key_path), "pub": str(pub_path), "arch": ARCH, "cache": str(tmp / "cache")}
        vpk_holder: dict[str, str] = {}

        def our_build(recipe_dir: Path, out: Path) -> Sample:
            s = run_child("build", {**common, "recipe": str(recipe_dir), "out": str(out)}, env)
            vpk_holder[str(recipe_dir)] = s.extra["path"]
            return s

        def our_verify(recipe_dir: Path) -> Sample:
            s = run_child("verify", {**common, "path": vpk_holder[str(recipe_dir)]}, env)
            if s.extra["files"] != pay_of[recipe_dir].files + pay_of[recipe_dir].dirs or \
                    s.extra["bytes"] != pay_of[recipe_dir].bytes:
                raise SystemExit(f"bench: verify saw {s.extra} for {pay_of[recipe_dir]}")
            return s

        pay_of = {recipe: pay}
        print(f"\nmeasuring {pay.bytes / MB:.1f} MB, {opts.repeat} runs each (median reported)")
        ops: dict[str, Callable[[], Sample]] = {
            "build (vcomp build())": lambda: our_build(recipe, out_dir),
            "pack (scan+write_package)": lambda: run_child("pack", {**common, "recipe": str(recipe),
                                                                    "out": str(pack_dir)}, env),
            "verify (verify_package)": lambda: our_verify(recipe),
            "A: tar | zstd -9 -T1": lambda: run_cmd(
                f"tar -cf - -C {q(str(tree))} . | zstd -{ZSTD_LEVEL} -T1 -q -f -o {q(str(tarzst))}"),
            "B1: sha256sum (find|xargs)": lambda: run_cmd(
                f"find {q(str(tree))} -type f -print0 | xargs -0 sha256sum > /dev/null"),
            "B2: hashlib sha256 (1 proc)": lambda: hashlib_all(files),
            "C1: zstd -d | tar -t": lambda: run_cmd(f"zstd -d -q -c {q(str(tarzst))} | tar -tf - > /dev/null"),
            "C2: zstd -d | tar -xO | sha256": lambda: run_cmd(
                f"zstd -d -q -c {q(str(tarzst))} | tar -xOf - | sha256sum > /dev/null"),
            "import composer only": lambda: run_child("import", {}, env),
        }
        res = measure(ops, opts.repeat)
        vpk = Path(vpk_holder[str(recipe)])
        vpk_size, tarzst_size = vpk.stat().st_size, tarzst.stat().st_size
        pack_vpk = pack_dir / vpk.name
        same_bytes = pack_vpk.read_bytes() == vpk.read_bytes()

        profiles: dict[str, Path] = {}
        if opts.profile:
            for op, extra in (("build", {"recipe": str(recipe), "out": str(out_dir)}),
                              ("verify", {"path": str(vpk)})):
                profiles[op] = tmp / f"{op}.prof"
                run_child(op, {**common, **extra, "profile": str(profiles[op])}, env)

        # ---- the memory check at a second size
        small_recipe, small_pay = setup("small", small_mb)
        pay_of[small_recipe] = small_pay
        small = measure({
            "build (small)": lambda: our_build(small_recipe, tmp / "small" / "out"),
            "verify (small)": lambda: our_verify(small_recipe),
        }, opts.repeat)

        if profiles:
            for op, path in profiles.items():
                print_profile(path, op)

        # ---- report
        b = pay.bytes
        build_r, verify_r, a_r = res["build (vcomp build())"], res["verify (verify_package)"], res["A: tar | zstd -9 -T1"]
        b1, c1, c2 = res["B1: sha256sum (find|xargs)"], res["C1: zstd -d | tar -t"], res["C2: zstd -d | tar -xO | sha256"]
        imp = res["import composer only"]
        c_wall, c_cpu = c1.seconds + b1.seconds, c1.cpu + b1.cpu
        rows = []
        for name, r in res.items():
            if name == "import composer only":
                continue
            rows.append([name, f"{r.seconds:.3f}", f"{r.cpu:.3f}", f"{b / MB / r.seconds:.1f}",
                         f"{r.peak_mib:.1f}" if any(s.peak_kib for s in r.samples) else "-"])
        rows.append(["C: C1 + B1 (decompress + hash)", f"{c_wall:.3f}", f"{c_cpu:.3f}", f"{b / MB / c_wall:.1f}", "-"])
        print(f"\n== {platform.node()} | {platform.machine()} | {os.cpu_count()} CPUs | Python "
              f"{platform.python_version()} | zstd CLI level {ZSTD_LEVEL} -T1")
        print(f"payload: {pay.files} files, {pay.dirs} folders, {b / MB:.1f} MB; median of {opts.repeat}\n")
        print(table(rows, ["operation", "wall s", "cpu s", "MB/s", "peak RSS MiB"]))

        ratios = {
            "build / A (wall)": build_r.seconds / a_r.seconds,
            "build / A (cpu)": build_r.cpu / a_r.cpu,
            "pack / A (wall)": res["pack (scan+write_package)"].seconds / a_r.seconds,
            "verify / C (wall)": verify_r.seconds / c_wall,
            "verify / C (cpu)": verify_r.cpu / c_cpu,
            "verify / C2 (cpu)": verify_r.cpu / c2.cpu,
        }
        print()
        print(table([[k, f"{v:.2f}x"] for k, v in ratios.items()], ["ratio", "value"]))
        print(f"\nsizes: .vpk {vpk_size} bytes ({vpk_size / MB:.2f} MB), .tar.zst {tarzst_size} bytes "
              f"({tarzst_size / MB:.2f} MB), vpk/tar.zst {vpk_size / tarzst_size:.3f}, "
              f"payload/vpk {b / vpk_size:.2f}x compression")
        print(f"pack output identical to build output (reproducible): {same_bytes}")

        mem_rows = [
            ["import composer only", "-", f"{imp.peak_mib:.1f}", "-"],
            [f"build @ {b / MB:.0f} MB", f"{build_r.import_mib:.1f}", f"{build_r.peak_mib:.1f}",
             f"{build_r.peak_mib - build_r.import_mib:.1f}"],
            [f"build @ {small_pay.bytes / MB:.0f} MB", f"{small['build (small)'].import_mib:.1f}",
             f"{small['build (small)'].peak_mib:.1f}",
             f"{small['build (small)'].peak_mib - small['build (small)'].import_mib:.1f}"],
            [f"verify @ {b / MB:.0f} MB", f"{verify_r.import_mib:.1f}", f"{verify_r.peak_mib:.1f}",
             f"{verify_r.peak_mib - verify_r.import_mib:.1f}"],
            [f"verify @ {small_pay.bytes / MB:.0f} MB", f"{small['verify (small)'].import_mib:.1f}",
             f"{small['verify (small)'].peak_mib:.1f}",
             f"{small['verify (small)'].peak_mib - small['verify (small)'].import_mib:.1f}"],
        ]
        print()
        print(table(mem_rows, ["peak RSS (MiB)", "after import", "peak", "op adds"]))
        d_build = build_r.peak_mib - small["build (small)"].peak_mib
        d_verify = verify_r.peak_mib - small["verify (small)"].peak_mib
        worst = max(build_r.peak_mib, verify_r.peak_mib, small["build (small)"].peak_mib,
                    small["verify (small)"].peak_mib)
        claim = worst < RSS_CLAIM_MIB
        print(f"\npeak RSS growth from {small_pay.bytes / MB:.0f} MB to {b / MB:.0f} MB: build {d_build:+.1f} MiB, "
              f"verify {d_verify:+.1f} MiB")
        print(f"claim 'peak memory stays under ~{RSS_CLAIM_MIB} MB whatever the package size': "
              f"{'holds' if claim else 'DOES NOT HOLD'} (worst peak {worst:.1f} MiB)")

        if opts.json:
            doc = {
                "machine": {"node": platform.node(), "machine": platform.machine(), "cpus": os.cpu_count(),
                            "python": platform.python_version()},
                "params": {"size_mb": opts.size_mb, "small_mb": small_mb, "repeat": opts.repeat,
                           "seed": opts.seed, "zstd_level": ZSTD_LEVEL, "source_date_epoch": EPOCH},
                "payload": {"files": pay.files, "dirs": pay.dirs, "bytes": b, "by_kind": pay.by_kind},
                "small_payload": {"files": small_pay.files, "dirs": small_pay.dirs, "bytes": small_pay.bytes},
                "results": {name: r.to_json(b) for name, r in res.items()},
                "small_results": {name: r.to_json(small_pay.bytes) for name, r in small.items()},
                "baseline_c": {"seconds": round(c_wall, 4), "cpu_seconds": round(c_cpu, 4),
                               "mb_per_s": round(b / MB / c_wall, 2)},
                "ratios": {k: round(v, 3) for k, v in ratios.items()},
                "sizes": {"vpk": vpk_size, "tar_zst": tarzst_size, "vpk_over_tar_zst": round(vpk_size / tarzst_size, 4)},
                "reproducible": same_bytes,
                "memory": {
                    "import_only_mib": round(imp.peak_mib, 1),
                    "build_peak_mib": round(build_r.peak_mib, 1),
                    "verify_peak_mib": round(verify_r.peak_mib, 1),
                    "build_small_peak_mib": round(small["build (small)"].peak_mib, 1),
                    "verify_small_peak_mib": round(small["verify (small)"].peak_mib, 1),
                    "build_growth_mib": round(d_build, 1), "verify_growth_mib": round(d_verify, 1),
                    "claim_under_mib": RSS_CLAIM_MIB, "claim_holds": claim,
                },
                "samples": {name: [asdict(s) for s in r.samples] for name, r in {**res, **small}.items()},
            }
            opts.json.write_text(json.dumps(doc, indent=2) + "\n")
            print(f"\nwrote {opts.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
