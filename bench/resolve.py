"""Resolution at scale: our Resolver (what `vcomp lock` runs) against raw libsolv on the same synthetic index.

    .venv/bin/python bench/resolve.py [--packages 100000] [--requests 100] [--repeat 3] [--json FILE] [--profile]

Each side runs in a fresh child interpreter (so peak RSS is its own): the child regenerates the same
deterministic index, then builds the pool and solves the same job --repeat times. Run 1 is "cold"
(first build in the process), the median of all runs is reported next to it. There is no pool cache yet,
so "warm" is only a second build + solve in the same process. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

ARCH = "x86_64"


# ---------------------------------------------------------------- synthetic index

def _version(rng: random.Random, used: set[str]) -> str:
    while True:
        v = f"{rng.choice((0, 0, 1, 1, 1, 2, 2, 3))}.{rng.randrange(10)}.{rng.randrange(10)}"
        if rng.random() < 0.05:
            v += rng.choice(("-rc.1", "-alpha.2", "-beta"))
        if v not in used:
            used.add(v)
            return v


def _key(v: str) -> tuple[int, int, int, int, str]:
    core, _, pre = v.partition("-")
    a, b, c = (int(x) for x in core.split("."))
    return (a, b, c, 0 if pre else 1, pre)  # enough for the versions made here (the bench checks with ours)


def generate(n: int, n_requests: int, seed: int) -> tuple[list[dict[str, Any]], list[str]]:
    """About n package dicts (~n/3 names, 1-5 versions each) and n_requests names with a satisfiable closure."""
    rng = random.Random(seed)
    names: list[str] = []
    best: list[tuple[int, int, int]] = []  # newest release (no pre-release) of each name
    safe: list[bool] = []  # the closure of the newest release is satisfiable by newest releases only
    n_virtual = max(1, n // 1000)
    out: list[dict[str, Any]] = []
    while len(out) < n:
        i = len(names)
        name = f"pkg{i:06d}"
        used: set[str] = set()
        versions = sorted((_version(rng, used) for _ in range(rng.randint(1, 5))), key=_key)
        releases = [v for v in versions if "-" not in v]
        if not releases:
            releases = [f"{versions[-1].partition('-')[0]}"]
            versions = sorted({*versions, releases[0]}, key=_key)
        top = _key(releases[-1])[:3]
        name_safe = True
        for v in versions:
            deps: dict[str, str] = {}
            for _ in range(rng.randint(0, 4) if i else 0):
                j = rng.randrange(i)
                bm, bn, _bp = best[j]
                x = rng.random()
                if x < 0.03:
                    dep, req = f"virt{rng.randrange(n_virtual)}", "*"
                elif x < 0.88:  # permissive: the dependency's newest release matches
                    dep = names[j]
                    req = rng.choice(("*", f"^{bm}.{bn}", f">={bm}", f">={bm}, <{bm + 2}", f"~{bm}.{bn}", f"{bm}"))
                else:  # anything
                    dep = names[j]
                    m, k = rng.randrange(4), rng.randrange(10)
                    req = rng.choice((f"^{m}.{k}", f"~{m}.{k}", f">={m}, <{m + 1}", f"<{m}.{k}", f"={m}.{k}.0"))
                deps[dep] = req
            d: dict[str, Any] = {"name": name, "version": v, "deps": deps,
                                 "arch": "noarch" if rng.random() < 0.05 else ARCH}
            if rng.random() < 0.02:
                d["provides"] = [f"virt{rng.randrange(n_virtual)}"]
            if rng.random() < 0.005 and i:
                d["conflicts"] = [names[rng.randrange(i)]]
            if v == releases[-1]:
                ok = "conflicts" not in d
                for dep, req in deps.items():
                    if dep.startswith("virt"):
                        ok = False
                        continue
                    j = int(dep[3:])
                    bm, bn, _bp = best[j]
                    ok = ok and safe[j] and (req in ("*", f"^{bm}.{bn}", f">={bm}", f">={bm}, <{bm + 2}",
                                                     f"~{bm}.{bn}", f"{bm}"))
                name_safe = ok
            out.append(d)
        names.append(name)
        best.append(top)
        safe.append(name_safe)
    candidates = [nm for nm, s in zip(names, safe, strict=True) if s]
    requested = sorted(random.Random(seed + 1).sample(candidates, min(n_requests, len(candidates))))
    return out, requested


def entries_of(dicts: list[dict[str, Any]]) -> list[Any]:
    from composer.repo.index import IndexEntry
    return [IndexEntry(name=d["name"], version=d["version"], arch=d["arch"], type="application",
                       description=d["name"], license="MIT", dependencies=d["deps"],
                       provides=tuple(d.get("provides", ())), conflicts=tuple(d.get("conflicts", ())),
                       features={}, capabilities={}, driver={}, size=1, installed_size=1, sha256="0" * 64,
                       path=f"packages/{d['name']}/x.vpk", signer="k") for d in dicts]


# ---------------------------------------------------------------- the same problem, as plain libsolv relations

def raw_problem(dicts: list[dict[str, Any]]) -> tuple[list[tuple[Any, ...]], dict[str, list[tuple[int, int]]]]:
    """Solvables as (name, evr, arch, provides, conflicts, requires); requires are (name, [(lo, hi) rank runs])
    or (name, None) for a virtual name. Ranks and candidate sets come from composer.version, so libsolv gets
    exactly the problem our Resolver builds; this translation is not timed."""
    from composer.version import Requirement, Version
    by_name: dict[str, list[str]] = {}
    for d in dicts:
        if d["arch"] in (ARCH, "noarch"):
            by_name.setdefault(d["name"], []).append(d["version"])
    parsed: dict[str, list[tuple[str, Any]]] = {}
    rank: dict[tuple[str, str], int] = {}
    for name, vs in by_name.items():
        ordered = sorted(((v, Version.parse(v)) for v in set(vs)), key=lambda p: p[1].precedence_key())
        parsed[name] = ordered
        for i, (v, _) in enumerate(ordered):
            rank[(name, v)] = i + 1
    memo: dict[tuple[str, str], list[tuple[int, int]] | None] = {}

    def runs(name: str, req: str) -> list[tuple[int, int]] | None:
        if (name, req) not in memo:
            if name not in by_name:
                memo[(name, req)] = None
            else:
                r = Requirement.parse(req)
                out: list[tuple[int, int]] = []
                for i, (_v, pv) in enumerate(parsed[name], 1):
                    if r.matches(pv):
                        if out and out[-1][1] == i - 1:
                            out[-1] = (out[-1][0], i)
                        else:
                            out.append((i, i))
                memo[(name, req)] = out
        return memo[(name, req)]

    solvables = []
    for d in sorted((d for d in dicts if d["arch"] in (ARCH, "noarch")),
                    key=lambda d: (d["name"], rank[(d["name"], d["version"])], d["arch"])):
        reqs = [(dep, runs(dep, req)) for dep, req in sorted(d["deps"].items())]
        solvables.append((d["name"], f"{rank[(d['name'], d['version'])]:08d}", d["arch"],
                          tuple(d.get("provides", ())), tuple(d.get("conflicts", ())), reqs))
    star = {name: runs(name, "*") or [] for name in by_name}
    return solvables, star


class Raw:
    def __init__(self, solvables: list[tuple[Any, ...]]) -> None:
        import solv
        self.solv = solv
        pool = self.pool = solv.Pool()
        pool.setarch(ARCH)
        repo = self.repo = pool.add_repo("index")
        self.rels: dict[tuple[str, tuple[tuple[int, int], ...] | None], int] = {}
        made = []
        for name, evr, arch, provides, conflicts, reqs in solvables:
            s = repo.add_solvable()
            s.name, s.evr, s.arch = name, evr, arch
            s.add_deparray(solv.SOLVABLE_PROVIDES, pool.rel2id(s.nameid, s.evrid, solv.REL_EQ))
            for p in provides:
                s.add_deparray(solv.SOLVABLE_PROVIDES, pool.str2id(p))
            made.append((s, conflicts, reqs))
        for s, conflicts, reqs in made:
            for name, rr in reqs:
                s.add_deparray(solv.SOLVABLE_REQUIRES, self.dep(name, rr))
            for c in conflicts:
                s.add_deparray(solv.SOLVABLE_CONFLICTS, pool.str2id(c))
        repo.internalize()
        pool.createwhatprovides()

    def dep(self, name: str, rr: list[tuple[int, int]] | None) -> int:
        """name >= lo WITH name <= hi, one per run of candidate ranks, ORed (one run in nearly all cases)."""
        solv, pool = self.solv, self.pool
        key = (name, None if rr is None else tuple(rr))
        if key in self.rels:
            return self.rels[key]
        nid = pool.str2id(name)
        if rr is None:
            dep = nid
        elif not rr:
            dep = pool.str2id(f"{name} (nothing matches)")
        else:
            dep = 0
            for lo, hi in rr:
                one = pool.rel2id(pool.rel2id(nid, pool.str2id(f"{lo:08d}"), solv.REL_GT | solv.REL_EQ),
                                  pool.rel2id(nid, pool.str2id(f"{hi:08d}"), solv.REL_LT | solv.REL_EQ),
                                  solv.REL_WITH)
                dep = one if dep == 0 else pool.rel2id(dep, one, solv.REL_OR)
        self.rels[key] = int(dep)
        return int(dep)

    def solve(self, requested: list[str], star: dict[str, list[tuple[int, int]]]) -> list[tuple[str, str]]:
        solv, pool = self.solv, self.pool
        jobs = [pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE_PROVIDES, self.dep(n, star[n]))
                for n in requested]
        solver = pool.Solver()
        problems = solver.solve(jobs)
        if problems:
            raise SystemExit(f"raw libsolv: {len(problems)} problems: {problems[0]}")
        return sorted((s.name, s.evr) for s in solver.transaction().newsolvables())


# ---------------------------------------------------------------- children

def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def rss_mib() -> float:
    """Current resident set (VmRSS), to see what a phase keeps after the setup's high-water mark."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration):
        return float("nan")


def solv_cache(pool: Any, repo: Any, repeat: int) -> dict[str, Any]:
    """What a pool cache would cost: repo.write() once, then a fresh Pool + add_solv + createwhatprovides."""
    import os
    import tempfile

    import solv
    fd, path = tempfile.mkstemp(suffix=".solv")
    os.close(fd)
    try:
        t = time.perf_counter()
        f = solv.xfopen(path, "w")
        repo.write(f)
        f.close()
        write_s = time.perf_counter() - t
        loads = []
        for _ in range(repeat):
            t = time.perf_counter()
            p = solv.Pool()
            p.setarch(ARCH)
            f = solv.xfopen(path)
            ok = p.add_repo("index").add_solv(f)
            f.close()
            p.createwhatprovides()
            loads.append(time.perf_counter() - t)
            assert ok and len(p.solvables) > 2, "add_solv failed"
            del p
        return {"cache_bytes": os.path.getsize(path), "cache_write_s": write_s, "cache_load_s": loads}
    finally:
        os.unlink(path)


def child(side: str, args: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {"side": side, "rss_start_mib": maxrss_mib()}
    t = time.perf_counter()
    if side == "ours":
        from composer.solve.resolve import Request, Resolver
    else:
        import solv  # noqa: F401
    res["import_s"] = time.perf_counter() - t
    t = time.perf_counter()
    dicts, requested = generate(args.packages, args.requests, args.seed)
    res["generate_s"] = time.perf_counter() - t
    res["packages"], res["names"] = len(dicts), len({d["name"] for d in dicts})
    res["requested"] = len(requested)
    if side == "ours":
        from composer.repo.index import build_index, parse_index
        blob = build_index(ARCH, entries_of(dicts))
        del dicts
        gc.collect()
        res["index_bytes"] = len(blob)
        res["rss_after_setup_mib"] = maxrss_mib()
        res["vmrss_before_parse_mib"] = rss_mib()
        t = time.perf_counter()
        entries = parse_index(blob, "bench")
        res["parse_index_s"] = time.perf_counter() - t
        res["rss_after_parse_mib"] = maxrss_mib()
        res["vmrss_after_parse_mib"] = rss_mib()
        requests = [Request(name=n) for n in requested]
    else:
        t = time.perf_counter()
        solvables, star = raw_problem(dicts)
        res["translate_s"] = time.perf_counter() - t
        del dicts
        gc.collect()
        res["rss_after_setup_mib"] = maxrss_mib()
        res["vmrss_before_parse_mib"] = res["vmrss_after_parse_mib"] = rss_mib()
    builds, solves, rss_build, rss_solve = [], [], [], []
    result: list[tuple[str, str]] = []
    for _ in range(args.repeat):
        gc.collect()
        t = time.perf_counter()
        obj: Any = Resolver(entries, ARCH) if side == "ours" else Raw(solvables)
        builds.append(time.perf_counter() - t)
        rss_build.append(maxrss_mib())
        res.setdefault("vmrss_after_build_mib", rss_mib())
        t = time.perf_counter()
        if side == "ours":
            chosen = obj.solve(requests)
            solves.append(time.perf_counter() - t)
            result = sorted((c.entry.name, obj.evr[(c.entry.name, c.entry.version)]) for c in chosen)
        else:
            result = obj.solve(requested, star)
            solves.append(time.perf_counter() - t)
        rss_solve.append(maxrss_mib())
        if "cache_bytes" not in res:
            res.update(solv_cache(obj.pool, obj.repo, args.repeat))
        del obj
    res.update(build_s=builds, solve_s=solves, rss_after_build_mib=rss_build, rss_after_solve_mib=rss_solve,
               installed=len(result), result=result)
    if args.profile and side == "ours":
        import cProfile
        import io
        import pstats
        prof = cProfile.Profile()
        prof.enable()
        Resolver(entries, ARCH).solve(requests)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
        res["profile"] = buf.getvalue()
    return res


def run_child(side: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", side, "--packages", str(args.packages), "--requests",
           str(args.requests), "--repeat", str(args.repeat), "--seed", str(args.seed)]
    if args.profile:
        cmd.append("--profile")
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"child {side} failed:\n{proc.stderr}")
    res: dict[str, Any] = json.loads(proc.stdout)
    res["process_wall_s"] = time.perf_counter() - t
    return res


# ---------------------------------------------------------------- report

def report(ours: dict[str, Any], raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    med = statistics.median
    o_b, o_s, r_b, r_s = (med(x) for x in (ours["build_s"], ours["solve_s"], raw["build_s"], raw["solve_s"]))
    o_cold = ours["parse_index_s"] + ours["build_s"][0] + ours["solve_s"][0]
    o_warm = med(b + s for b, s in zip(ours["build_s"][1:], ours["solve_s"][1:], strict=True)) \
        if args.repeat > 1 else float("nan")
    same = ours["result"] == raw["result"]
    print(f"index: {ours['packages']} packages, {ours['names']} names, {ours['index_bytes']} bytes zstd; "
          f"{ours['requested']} requested names -> {ours['installed']} packages installed "
          f"(raw: {raw['installed']}; same solution: {'yes' if same else 'NO'})")
    print(f"median of {args.repeat} runs, each side in its own child interpreter\n")
    print(f"{'phase':34} {'ours s':>9} {'raw s':>9} {'ours/raw':>9}")
    for label, a, b in (("pool build", o_b, r_b), ("solve", o_s, r_s), ("build + solve", o_b + o_s, r_b + r_s)):
        print(f"{label:34} {a:9.3f} {b:9.3f} {a / b:9.1f}x")
    print()
    print(f"{'ours: import composer.solve.resolve':34} {ours['import_s']:9.3f}")
    print(f"{'ours: parse_index (zstd + JSON)':34} {ours['parse_index_s']:9.3f}")
    print(f"{'ours cold: parse + build + solve':34} {o_cold:9.3f}   (run 1; target < 3 s)")
    print(f"{'ours warm: build + solve, runs 2..':34} {o_warm:9.3f}   "
          f"{o_warm / (r_b + r_s):.1f}x raw build+solve, {o_warm / r_s:.0f}x raw solve  (no pool cache yet)")
    print(f"{'raw: translate (untimed setup)':34} {raw['translate_s']:9.3f}")
    o_load, r_load = med(ours["cache_load_s"]), med(raw["cache_load_s"])
    print(f"{'pool from .solv (add_solv) load':34} {o_load:9.3f} {r_load:9.3f}   "
          f"({ours['cache_bytes'] / 2**20:.1f} / {raw['cache_bytes'] / 2**20:.1f} MiB; "
          f"write {ours['cache_write_s']:.3f} / {raw['cache_write_s']:.3f} s)")
    print()
    print(f"{'peak RSS MiB':34} {'ours':>9} {'raw':>9}")
    for label, key in (("after setup (index in memory)", "rss_after_setup_mib"),):
        print(f"{label:34} {ours[key]:9.0f} {raw[key]:9.0f}")
    print(f"{'ours: after parse_index':34} {ours['rss_after_parse_mib']:9.0f}")
    print(f"{'current RSS before build':34} {ours['vmrss_after_parse_mib']:9.0f} {raw['vmrss_after_parse_mib']:9.0f}")
    print(f"{'current RSS after 1st build':34} {ours['vmrss_after_build_mib']:9.0f} "
          f"{raw['vmrss_after_build_mib']:9.0f}")
    print(f"{'after 1st build':34} {ours['rss_after_build_mib'][0]:9.0f} {raw['rss_after_build_mib'][0]:9.0f}")
    print(f"{'peak (after last solve)':34} {ours['rss_after_solve_mib'][-1]:9.0f} "
          f"{raw['rss_after_solve_mib'][-1]:9.0f}   (target < 1024)")
    if ours.get("profile"):
        print("\ncProfile of one Resolver build + solve (tottime):\n" + ours["profile"])
    out = {"args": vars(args), "same_solution": same,
           "ours": {k: v for k, v in ours.items() if k not in ("result",)},
           "raw": {k: v for k, v in raw.items() if k not in ("result",)},
           "summary": {"ours_build_s": o_b, "ours_solve_s": o_s, "raw_build_s": r_b, "raw_solve_s": r_s,
                       "ours_cold_s": o_cold, "ours_warm_s": o_warm, "solve_ratio": o_s / r_s,
                       "build_ratio": o_b / r_b, "total_ratio": (o_b + o_s) / (r_b + r_s),
                       "warm_vs_raw_total": o_warm / (r_b + r_s),
                       "ours_peak_rss_mib": ours["rss_after_solve_mib"][-1],
                       "raw_peak_rss_mib": raw["rss_after_solve_mib"][-1],
                       "ours_cache_load_s": o_load, "raw_cache_load_s": r_load}}
    with contextlib.suppress(OSError):
        out["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                       cwd=__file__.rsplit("/", 2)[0], check=False).stdout.strip()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packages", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--profile", action="store_true", help="also cProfile one Resolver build + solve (top 15)")
    ap.add_argument("--child", choices=("ours", "raw"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        json.dump(child(args.child, args), sys.stdout)
        return 0
    raw = run_child("raw", args)
    ours = run_child("ours", args)
    out = report(ours, raw, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0 if out["same_solution"] else 1


if __name__ == "__main__":
    sys.exit(main())
