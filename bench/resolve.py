"""Resolution at scale: `vcomp lock`'s resolution, cold and warm, against raw libsolv on the same synthetic index.

    .venv/bin/python bench/resolve.py [--packages 100000] [--requests 100] [--repeat 3] [--json FILE]
    .venv/bin/python bench/resolve.py --archive [--repeat 3] [--phases raw,apt] [--json FILE]

Every phase runs in a fresh child interpreter (so its peak RSS is its own). "gen" writes the
deterministic index (zstd JSON, as a repository publishes it). "cold" is a lock with an empty pool
cache: parse the index, build the libsolv pool, write the cache, solve, make the lock rows. "warm" is
the same lock again (--repeat times, each from the cache file). "raw" translates the same index into
plain libsolv tuples (untimed) and times pool build and solve alone: the floor. The TUF refresh and the
interpreter start are not in these figures (see bench/README.md).

--archive runs the same phases on the real Debian archive (bookworm + -updates + -security, amd64, read
from DebianArchive's private apt state; network on the first run) for the requests of design14 §5.2, plus
"apt" (apt-get -s per request after a warm-up): per request warm/raw ratio, cold, apt time and ours/apt,
and peak RSS per phase, all in the same run (ratios: the machine is shared).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness

ARCH = "x86_64"


# ---------------------------------------------------------------- synthetic index


def index_loader(index_file: str | None) -> Any:
    """Loads the index for SolvIndex.cached; None: a warm run, where the pool cache must answer."""
    from composer.repo.index import decode_index
    from composer.solve.pool import IndexData

    def load() -> IndexData:
        if index_file is None:
            raise SystemExit("warm run: the pool cache missed")
        with open(index_file, "rb") as f:
            return IndexData(*decode_index(f.read(), index_file))
    return load

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

def raw_problem(dicts: list[dict[str, Any]]) \
        -> tuple[list[tuple[Any, ...]], dict[str, list[tuple[int, int]]], dict[tuple[str, str], str]]:
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
    version_of = {(name, f"{r:08d}"): v for (name, v), r in rank.items()}
    return solvables, star, version_of


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

def plain_load_s(cache: str, repeat: int) -> float:
    """Median time plain libsolv takes to open the pool cache's ``.solv`` (``add_solv`` + ``createwhatprovides``,
    no checks, no clause table, no entries): the floor under the pool part of a warm lock."""
    import glob

    import solv

    (path,) = glob.glob(os.path.join(cache, "*.solv"))
    times = []
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        pool = solv.Pool()
        pool.setarch(ARCH)
        repo = pool.add_repo("index")
        f = solv.xfopen(path)
        repo.add_solv(f)
        f.close()
        pool.createwhatprovides()
        times.append(time.perf_counter() - t)
        del repo, pool
    return statistics.median(times)


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def lock_once(index_file: str | None, cache: str, requested: list[str]) -> tuple[float, list[tuple[str, str]]]:
    """What `vcomp lock` does per architecture after the TUF refresh: the pool (cached, or parsed and
    built and cached), the solve, the lock rows. index_file None means the cache must answer."""
    from pathlib import Path

    from composer.solve.pool import SolvIndex
    from composer.solve.resolve import Request, Resolver

    load = index_loader(index_file)

    t = time.perf_counter()
    index = SolvIndex.cached(Path(cache), ARCH, [("bench", "synthetic-digest", load)])
    chosen = Resolver(index).solve([Request(name=n) for n in requested])
    rows = [{"name": c.entry.name, "version": c.entry.version, "sha256": c.entry.sha256, "size": c.entry.size,
             "repository": c.origin, "signer": c.entry.signer, "reason": c.reason} for c in chosen]
    took = time.perf_counter() - t
    return took, sorted((r["name"], r["version"]) for r in rows)


def child(side: str, args: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {"side": side}
    t = time.perf_counter()
    if side in ("cold", "warm"):
        import composer.solve.lock  # noqa: F401  (what `vcomp lock` imports)
    else:
        import solv  # noqa: F401
    res["import_s"] = time.perf_counter() - t
    if side == "gen":
        from composer.repo.index import build_index
        dicts, requested = generate(args.packages, args.requests, args.seed)
        blob = build_index(ARCH, entries_of(dicts))
        with open(args.index_file, "wb") as f:
            f.write(blob)
        res.update(packages=len(dicts), names=len({d["name"] for d in dicts}), index_bytes=len(blob),
                   requested=requested)
        return res
    if side == "cold":
        res["lock_s"], res["result"] = lock_once(args.index_file, args.cache, args.requested)
        res["cache_bytes"] = sum(os.path.getsize(os.path.join(args.cache, f)) for f in os.listdir(args.cache))
    elif side == "warm":
        runs = [lock_once(None, args.cache, args.requested) for _ in range(args.repeat)]
        res["lock_s"], res["result"] = [r[0] for r in runs], runs[0][1]
        res["plain_load_s"] = plain_load_s(args.cache, args.repeat)
    else:
        dicts, requested = generate(args.packages, args.requests, args.seed)
        t = time.perf_counter()
        solvables, star, version_of = raw_problem(dicts)
        res["translate_s"] = time.perf_counter() - t
        del dicts
        gc.collect()
        builds, solves = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            raw = Raw(solvables)
            builds.append(time.perf_counter() - t)
            t = time.perf_counter()
            found = raw.solve(requested, star)
            solves.append(time.perf_counter() - t)
        res.update(build_s=builds, solve_s=solves, result=sorted((n, version_of[(n, evr)]) for n, evr in found))
    res["peak_rss_mib"] = maxrss_mib()
    return res


def run_child(side: str, args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", side, "--packages", str(args.packages), "--requests",
           str(args.requests), "--repeat", str(args.repeat), "--seed", str(args.seed),
           "--index-file", args.index_file, "--cache", args.cache]
    if "requested" in extra:
        cmd += ["--requested", ",".join(extra["requested"])]
    if args.archive:
        cmd += ["--archive", "--plan", args.plan]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"child {side} failed:\n{proc.stderr}")
    res: dict[str, Any] = json.loads(proc.stdout)
    res["process_wall_s"] = time.perf_counter() - t
    return res


# ---------------------------------------------------------------- report

def report(gen: dict[str, Any], cold: dict[str, Any], warm: dict[str, Any], raw: dict[str, Any],
           args: argparse.Namespace) -> dict[str, Any]:
    med = statistics.median
    r_b, r_s = med(raw["build_s"]), med(raw["solve_s"])
    w = med(warm["lock_s"])
    same = [tuple(x) for x in cold["result"]] == [tuple(x) for x in raw["result"]] == \
        [tuple(x) for x in warm["result"]]
    print(f"index: {gen['packages']} packages, {gen['names']} names, {gen['index_bytes']} bytes zstd; "
          f"{len(gen['requested'])} requested names -> {len(cold['result'])} packages locked "
          f"(raw libsolv: {len(raw['result'])}; same solution: {'yes' if same else 'NO'})")
    print(f"each side in its own child interpreter; warm and raw: median of {args.repeat} runs\n")
    print(f"{'':40} {'seconds':>9} {'vs raw solve':>13}")
    print(f"{'raw libsolv: solve':40} {r_s:9.3f} {1.0:12.1f}x")
    print(f"{'raw libsolv: pool build (from tuples)':40} {r_b:9.3f} {r_b / r_s:12.1f}x")
    pl = warm["plain_load_s"]
    print(f"{'raw libsolv: load the same .solv':40} {pl:9.3f}")
    print(f"{'raw libsolv: load .solv + solve':40} {pl + r_s:9.3f} {(pl + r_s) / r_s:12.1f}x")
    print(f"{'vcomp lock, warm (cached pool + solve)':40} {w:9.3f} {w / r_s:12.1f}x   (target <= 2x; "
          f"{w / (pl + r_s):.2f}x load+solve)")
    print(f"{'vcomp lock, cold (parse+build+cache+solve)':40} {cold['lock_s']:9.3f} {cold['lock_s'] / r_s:12.1f}x"
          f"   (target < 3 s)")
    print(f"{'pool cache file':40} {cold['cache_bytes'] / 2**20:8.1f}M")
    print(f"{'import composer.solve.lock (per process)':40} {cold['import_s']:9.3f}")
    print()
    print(f"{'peak RSS MiB':40} {'':>9}")
    for label, side in (("vcomp lock cold", cold), ("vcomp lock warm", warm), ("raw libsolv", raw)):
        print(f"{label:40} {side['peak_rss_mib']:9.0f}   (target < 1024)")
    out = {"args": {k: v for k, v in vars(args).items() if k != "requested"}, "same_solution": same,
           "summary": {"raw_solve_s": r_s, "raw_build_s": r_b, "warm_lock_s": w, "cold_lock_s": cold["lock_s"],
                       "warm_vs_raw_solve": w / r_s, "plain_load_s": pl, "warm_vs_load_solve": w / (pl + r_s),
                       "cache_bytes": cold["cache_bytes"],
                       "peak_rss_mib": {"cold": cold["peak_rss_mib"], "warm": warm["peak_rss_mib"],
                                        "raw": raw["peak_rss_mib"]}},
           "children": {k: {x: y for x, y in v.items() if x != "result"}
                        for k, v in (("gen", gen), ("cold", cold), ("warm", warm), ("raw", raw))}}
    with contextlib.suppress(OSError):
        out["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                       cwd=__file__.rsplit("/", 2)[0], check=False).stdout.strip()
    return out


# ================================================================ --archive: the real Debian archive (design14 §6)
#
# Phases, each in its own child interpreter: "agen" (bookworm + -updates + -security from DebianArchive's state,
# mapped through the importer into index entries, written as a repository publishes its index: untimed set-up),
# "cold" (empty pool cache: index parse, pool build, cache write, then every request solved), "warm" (each
# request as its own lock from the cache, --repeat times), "raw" (plain libsolv: the same stanzas translated
# into tuples untimed, then pool build and each solve timed), "apt" (apt-get -s per request after a warm-up).

def _support() -> Any:
    """tests/support/aptagree.py: the harness shared with the archive test."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests.support import aptagree
    return aptagree


def _archive_requests(essential: list[str]) -> list[tuple[str, list[Any]]]:
    from composer.package.debfixture import REQUESTS
    ag = _support()
    return [(r.label, ag.our_requests(r, essential)) for r in REQUESTS]


def archive_gen(args: argparse.Namespace) -> dict[str, Any]:
    from composer import settings
    from composer.package.debian import DebianArchive
    from composer.repo.index import build_index
    ag = _support()
    t = time.perf_counter()
    suites = ag.read_suites(ag.suite_packages(DebianArchive(settings.cache_dir(), suite=_support().RELEASE)))
    read_s = time.perf_counter() - t
    entries = ag.entries_of(suites.stanzas)
    t = time.perf_counter()
    blob = build_index(ARCH, entries.entries)
    index_s = time.perf_counter() - t
    with open(args.index_file, "wb") as f:
        f.write(blob)
    essential = list(ag.essential_names(suites.stanzas))
    with open(args.plan, "w") as f:
        json.dump({"essential": essential}, f)
    return {"stanzas": dict(suites.counts), "entries": len(entries.entries), "index_bytes": len(blob),
            "read_s": read_s, "map_s": entries.seconds, "index_build_s": index_s,
            "map_ms_per_package": 1000 * entries.seconds / max(1, len(entries.entries))}


def _archive_lock(index_file: str | None, cache: str, requests: list[Any]) -> tuple[float, list[tuple[str, str]]]:
    """One `vcomp lock` of one request's names (after the TUF refresh): the pool from the cache (or parsed,
    built and cached), the solve; a refusal is an answer too (its time counts)."""
    from composer.errors import UserError
    from composer.solve.pool import SolvIndex
    from composer.solve.resolve import Resolver

    load = index_loader(index_file)

    t = time.perf_counter()
    index = SolvIndex.cached(Path(cache), ARCH, [("debian", "archive-digest", load)])
    LOADS.append(time.perf_counter() - t)
    try:
        chosen = Resolver(index).solve(requests)
        result = sorted((c.entry.name, c.entry.version_text) for c in chosen)
    except UserError:
        result = [("(fails)", "")]
    return time.perf_counter() - t, result


LOADS: list[float] = []   # the pool part (cache load, or parse + build + cache) of each _archive_lock


def archive_child(side: str, args: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {"side": side}
    if side == "agen":
        res.update(archive_gen(args))
        res["peak_rss_mib"] = maxrss_mib()
        return res
    with open(args.plan) as f:
        essential = json.load(f)["essential"]
    requests = _archive_requests(essential)
    if side == "cold":
        t = time.perf_counter()
        first, result = _archive_lock(args.index_file, args.cache, requests[0][1])
        res["first_lock_s"] = first
        per, results = {requests[0][0]: first}, {requests[0][0]: result}
        for label, reqs in requests[1:]:
            per[label], results[label] = _archive_lock(None, args.cache, reqs)
        res.update(lock_s=time.perf_counter() - t, per_request_s=per, result=results,
                   cache_bytes=sum(os.path.getsize(os.path.join(args.cache, f)) for f in os.listdir(args.cache)))
    elif side == "warm":
        runs: dict[str, list[float]] = {label: [] for label, _ in requests}
        results = {}
        for _ in range(args.repeat):
            for label, reqs in requests:
                took, results[label] = _archive_lock(None, args.cache, reqs)
                runs[label].append(took)
        res.update(per_request_s=runs, result=results, load_s=statistics.median(LOADS),
                   plain_load_s=plain_load_s(args.cache, args.repeat))
    else:
        res.update(archive_raw(args, requests))
    res["peak_rss_mib"] = maxrss_mib()
    return res


# ---------------------------------------------------------------- raw libsolv on the archive

def archive_raw(args: argparse.Namespace, requests: list[tuple[str, list[Any]]]) -> dict[str, Any]:
    """design14 §2.2-2.3's encoding in plain libsolv (the prototype design14-ref/rawsolv2.py, on the importer's
    parsed relations): letters-only EVRs, every versioned alternative an explicit OR of exact candidates,
    favors for first alternatives by BFS depth, Priority and real-over-provider. Translation, favors and the
    stanza reading are not timed; pool build and each solve are."""
    import solv

    from composer import settings
    from composer.package import deb822
    from composer.package.debian import DebianArchive
    from composer.solve.evr import deb_evr
    from composer.version import dpkg_compare
    ag = _support()
    t = time.perf_counter()
    suites = ag.read_suites(ag.suite_packages(DebianArchive(settings.cache_dir(), suite=_support().RELEASE)))
    st = [s.fields for s in suites.stanzas if s.fields["Architecture"] in ("amd64", "all")]
    ok = {"<<": lambda c: c < 0, "<=": lambda c: c <= 0, "=": lambda c: c == 0, ">=": lambda c: c >= 0,
          ">>": lambda c: c > 0}
    real: dict[str, list[tuple[str, int]]] = {}
    prov: dict[str, list[tuple[int, str | None]]] = {}
    rels: list[dict[str, list[list[Any]]]] = []
    provides: list[list[Any]] = []
    for i, s in enumerate(st):
        real.setdefault(s["Package"], []).append((s["Version"], i))
        p = [c[0] for c in deb822.parse_relations(s.get("Provides", ""), "Provides")]
        provides.append(p)
        for a in p:
            prov.setdefault(a.name, []).append((i, a.version))
        rels.append({f: deb822.parse_relations(s.get(f, ""), f)
                     for f in ("Depends", "Pre-Depends", "Conflicts", "Breaks") if f in s})
    translate_s = time.perf_counter() - t

    def build() -> tuple[Any, Any, Any]:
        pool = solv.Pool()
        pool.setarch(ARCH)
        repo = pool.add_repo("debian")
        s2i = pool.str2id
        exact = [pool.rel2id(s2i(s["Package"]), s2i(deb_evr(s["Version"])), solv.REL_EQ) for s in st]
        memo: dict[Any, int] = {}

        def alt_dep(a: Any) -> int:
            key = (a.name, a.arch, a.op, a.version)
            if key in memo:
                return memo[key]
            if a.arch and a.arch not in ("any", "amd64", "native"):
                d = s2i(f"{a.name}:{a.arch}")
            elif not a.op:
                d = s2i(a.name)
            else:
                op = {"<": "<=", ">": ">="}.get(a.op, a.op)
                cands = [i for v, i in real.get(a.name, ()) if ok[op](dpkg_compare(v, a.version))]
                cands += [i for i, pv in prov.get(a.name, ()) if pv and ok[op](dpkg_compare(pv, a.version))]
                d = s2i(f"{a.name} ({a.op} {a.version})") if not cands else exact[cands[0]]
                for i in cands[1:]:
                    d = pool.rel2id(d, exact[i], solv.REL_OR)
            memo[key] = d
            return d

        keys = {"Depends": solv.SOLVABLE_REQUIRES, "Pre-Depends": solv.SOLVABLE_REQUIRES,
                "Conflicts": solv.SOLVABLE_CONFLICTS, "Breaks": solv.SOLVABLE_CONFLICTS}
        for i, s in enumerate(st):
            x = repo.add_solvable()
            x.name, x.evr, x.arch = s["Package"], deb_evr(s["Version"]), ARCH if s["Architecture"] == "amd64" \
                else "noarch"
            x.add_deparray(solv.SOLVABLE_PROVIDES, exact[i])
            for a in provides[i]:
                x.add_deparray(solv.SOLVABLE_PROVIDES, pool.rel2id(s2i(a.name), s2i(deb_evr(a.version)), solv.REL_EQ)
                               if a.version else s2i(a.name))
            for f, clauses in rels[i].items():
                for clause in clauses:
                    d = alt_dep(clause[0])
                    for a in clause[1:]:
                        d = pool.rel2id(d, alt_dep(a), solv.REL_OR)
                    x.add_deparray(keys[f], d)
        repo.internalize()
        pool.createwhatprovides()
        return pool, repo, alt_dep

    prio = {"required": 4, "important": 3, "standard": 2}
    # Priority favors name the NEWEST version of a name only: favoring every version (the prototype, one suite)
    # lets an older bookworm-security build listed later win over main's newer point release (libc-bin
    # 2.36-9+deb12u7 instead of +deb12u14: the later favor wins).
    newest: dict[str, int] = {}
    for name, versions in real.items():
        best = versions[0]
        for v in versions[1:]:
            if dpkg_compare(v[0], best[0]) > 0:
                best = v
        newest[name] = best[1]
    prioritized = sorted((prio[st[i]["Priority"]], i) for i in newest.values() if st[i].get("Priority") in prio)

    def favors(pool: Any, alt_dep: Any, names: list[str]) -> list[Any]:
        order: list[tuple[int, Any]] = []
        realfav: list[tuple[int, str]] = []
        seen: set[int] = set()
        queue = [(n, 0) for n in names]
        while queue:
            n, depth = queue.pop(0)
            for i in [i for _, i in real.get(n, ())] + [i for i, _ in prov.get(n, ())]:
                if i in seen:
                    continue
                seen.add(i)
                for f in ("Depends", "Pre-Depends"):
                    for clause in rels[i].get(f, ()):
                        first = next((a for a in clause if a.name in real or a.name in prov), None)
                        if len(clause) > 1 and first is not None:
                            order.append((depth, first))
                        for a in clause:
                            queue.append((a.name, depth + 1))
                            if a.name in real and a.name in prov:
                                realfav.append((depth, a.name))
        jobs = [pool.Job(solv.Job.SOLVER_FAVOR | solv.Job.SOLVER_SOLVABLE, i + 2)
                for _, i in prioritized]
        jobs += [pool.Job(solv.Job.SOLVER_FAVOR | solv.Job.SOLVER_SOLVABLE_NAME, pool.str2id(n))
                 for _, n in sorted(realfav, key=lambda t: -t[0])]
        jobs += [pool.Job(solv.Job.SOLVER_FAVOR | solv.Job.SOLVER_SOLVABLE_PROVIDES, alt_dep(a))
                 for _, a in sorted(order, key=lambda t: -t[0])]
        return jobs

    builds, solves = [], {label: [] for label, _ in requests}
    results: dict[str, list[tuple[str, str]]] = {}
    for _ in range(args.repeat):
        gc.collect()
        t = time.perf_counter()
        pool, _repo, alt_dep = build()
        builds.append(time.perf_counter() - t)
        for label, reqs in requests:
            names = [r.name for r in reqs]
            jobs = [pool.Job(solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_SOLVABLE_PROVIDES, pool.str2id(n))
                    for n in names]
            jobs += favors(pool, alt_dep, names)   # untimed: part of the problem, not of libsolv's work
            t = time.perf_counter()
            solver = pool.Solver()
            solver.set_flag(solv.Solver.SOLVER_FLAG_IGNORE_RECOMMENDED, 1)
            solver.set_flag(solv.Solver.SOLVER_FLAG_FOCUS_BEST, 1)
            problems = solver.solve(jobs)
            new = [] if problems else solver.transaction().newsolvables()
            solves[label].append(time.perf_counter() - t)
            results[label] = ([("(fails)", "")] if problems else
                              sorted((s.name, st[s.id - 2]["Version"]) for s in new))
        del pool
    return {"translate_s": translate_s, "build_s": builds, "solve_s": solves, "result": results,
            "solvables": len(st)}


# ---------------------------------------------------------------- apt, and the report

def archive_apt(args: argparse.Namespace) -> dict[str, Any]:
    from composer import settings
    from composer.package.aptsim import AptSimulator
    from composer.package.debfixture import REQUESTS
    from composer.package.debian import DebianArchive
    with open(args.plan) as f:
        essential = json.load(f)["essential"]
    sim = AptSimulator.for_archive(DebianArchive(settings.cache_dir(), suite=_support().RELEASE), _support().ARCH)
    t = time.perf_counter()
    sim.install(("bash",))
    warmup = time.perf_counter() - t
    per: dict[str, float] = {}
    results: dict[str, list[tuple[str, str]]] = {}
    for r in REQUESTS:
        t = time.perf_counter()
        answer = sim.install(r.all_names(essential))
        per[r.label] = time.perf_counter() - t
        results[r.label] = (sorted(answer.versions().items()) if answer.ok else [("(fails)", "")])
    return {"warmup_s": warmup, "per_request_s": per, "result": results}


def _load_average() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def archive_report(gen: dict[str, Any], cold: dict[str, Any], warm: dict[str, Any], raw: dict[str, Any] | None,
                   apt: dict[str, Any] | None, args: argparse.Namespace, loads: list[str]) -> dict[str, Any]:
    med = statistics.median
    print(f"index: {sum(gen['stanzas'].values())} stanzas {gen['stanzas']}, {gen['entries']} entries "
          f"({gen['map_ms_per_package']:.3f} ms/package to map), index {gen['index_bytes'] / 2**20:.1f} MiB zstd")
    print(f"load average (1/5/15 min) at the start, middle and end: {' | '.join(loads)}; "
          f"warm and raw: median of {args.repeat}\n")
    pl = warm["plain_load_s"]
    head = (f"{'request':20} {'pkgs':>5} {'warm s':>8} {'raw s':>8} {'warm/raw':>9} {'ld+raw s':>8} "
            f"{'warm/ld+raw':>11} {'cold s':>8} "
            f"{'apt s':>7} {'ours/apt':>9} {'=apt':>5} {'raw pkgs':>8} {'raw=apt':>8}")
    print(head)
    rows = {}
    for label, times in warm["per_request_s"].items():
        w = med(times)
        r = med(raw["solve_s"][label]) if raw else float("nan")
        a = apt["per_request_s"][label] if apt else float("nan")
        ours_set = [tuple(x) for x in warm["result"][label]]
        same_apt = "" if apt is None else ("yes" if ours_set == [tuple(x) for x in apt["result"][label]] else "NO")
        raw_apt = "" if apt is None or raw is None else \
            ("yes" if [tuple(x) for x in raw["result"][label]] == [tuple(x) for x in apt["result"][label]] else "NO")
        n = "fail" if ours_set == [("(fails)", "")] else str(len(ours_set))
        raw_set = [tuple(x) for x in raw["result"][label]] if raw else []
        rn = "" if raw is None else "fail" if raw_set == [("(fails)", "")] else str(len(raw_set))
        print(f"{label:20} {n:>5} {w:8.3f} {r:8.4f} {w / r:9.1f} {pl + r:8.4f} {w / (pl + r):11.2f} "
              f"{cold['per_request_s'][label]:8.3f} "
              f"{a:7.2f} {w / a:9.3f} {same_apt:>5} {rn:>8} {raw_apt:>8}")
        rows[label] = {"packages": n, "warm_s": w, "raw_solve_s": r, "warm_vs_raw": w / r,
                       "load_raw_s": pl + r, "warm_vs_load_raw": w / (pl + r),
                       "cold_s": cold["per_request_s"][label], "apt_s": a, "ours_vs_apt": w / a,
                       "same_as_apt": same_apt, "raw_packages": rn,
                       "raw_same_as_apt": raw_apt}
    if apt:
        print("\ndifferences with apt (ours: explained by tests/archive/test_apt_agreement.py; raw: the prototype):")
        print(_differences("ours", warm, apt) + (_differences("raw", raw, apt) if raw else ""))
    print()
    print(f"{'vcomp lock, cold (parse+build+cache+first solve)':52} {cold['first_lock_s']:8.2f} s   (goal < 3 s)")
    print(f"{'vcomp lock, cold, all requests':52} {cold['lock_s']:8.2f} s")
    print(f"{'vcomp lock, warm: the pool from the cache (median)':52} {warm['load_s']:8.3f} s   (in every warm lock)")
    print(f"{'raw libsolv: add_solv + createwhatprovides, same .solv':52} {pl:8.3f} s   (ld in ld+raw)")
    if raw:
        print(f"{'raw libsolv: pool build from tuples (median)':52} {med(raw['build_s']):8.2f} s")
    print(f"{'pool cache file':52} {cold['cache_bytes'] / 2**20:8.1f} MiB")
    if apt:
        print(f"{'apt-get -s warm-up (pkgcache.bin build)':52} {apt['warmup_s']:8.2f} s")
    print()
    for label, side in (("gen (read + map, set-up)", gen), ("vcomp lock cold", cold), ("vcomp lock warm", warm),
                        ("raw libsolv", raw)):
        if side:
            print(f"peak RSS {label:40} {side['peak_rss_mib']:8.0f} MiB")
    return {"mode": "archive", "load_average": loads, "requests": rows,
            "summary": {"cold_first_lock_s": cold["first_lock_s"], "cold_all_s": cold["lock_s"],
                        "warm_pool_load_s": warm["load_s"], "plain_load_s": pl,
                        "raw_build_s": med(raw["build_s"]) if raw else None, "cache_bytes": cold["cache_bytes"],
                        "peak_rss_mib": {k: v["peak_rss_mib"] for k, v in (("gen", gen), ("cold", cold),
                                                                            ("warm", warm), ("raw", raw)) if v}},
            "children": {k: {x: y for x, y in v.items() if x != "result"}
                         for k, v in (("gen", gen), ("cold", cold), ("warm", warm), ("raw", raw), ("apt", apt)) if v}}


def _outcome(result: list[list[str]]) -> Any:
    ag = _support()
    pairs = [tuple(x) for x in result]
    if pairs == [("(fails)", "")]:
        return ag.Outcome(ok=False)
    return ag.Outcome(ok=True, packages=dict(pairs))


def _differences(side: str, mine: dict[str, Any], apt: dict[str, Any], limit: int = 8) -> str:
    """The (name, version) differences of one side with apt, per request (at most ``limit`` each)."""
    ag = _support()
    lines = []
    for label, result in mine["result"].items():
        diffs = ag.compare(label, _outcome(result), _outcome(apt["result"][label]))
        diffs = [d for d in diffs if d.package != ag.MESSAGE]   # messages are not kept by the children
        if diffs:
            more = f" (+{len(diffs) - limit} more)" if len(diffs) > limit else ""
            lines.append(f"  {side} {label}: " + "; ".join(str(d) for d in diffs[:limit]) + more)
    return "\n".join(lines) + ("\n" if lines else "")


def archive_main(args: argparse.Namespace) -> int:
    phases = set(args.phases.split(","))
    with tempfile.TemporaryDirectory(prefix="vcomp-bench-archive-") as tmp:
        args.index_file, args.cache = os.path.join(tmp, "index.json.zst"), os.path.join(tmp, "pools")
        args.plan = os.path.join(tmp, "plan.json")
        os.mkdir(args.cache)
        loads = [_load_average()]
        gen = run_child("agen", args)
        raw = run_child("raw", args) if "raw" in phases else None
        cold = run_child("cold", args)
        loads.append(_load_average())
        warm = run_child("warm", args)
        apt = archive_apt(args) if "apt" in phases else None
        loads.append(_load_average())
    out = archive_report(gen, cold, warm, raw, apt, args, loads)
    harness.write_json(Path(args.json) if args.json else None, out, indent=1, say=False)
    return 0


def main() -> int:
    ap = harness.parser(__doc__, raw=True)
    ap.add_argument("--packages", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--archive", action="store_true",
                    help="the real Debian archive (bookworm + -updates + -security, amd64) and apt, not synthetic")
    ap.add_argument("--phases", default="raw,apt", help="with --archive: optional phases to run (raw, apt)")
    ap.add_argument("--child", choices=("gen", "agen", "cold", "warm", "raw"), help=argparse.SUPPRESS)
    ap.add_argument("--plan", help=argparse.SUPPRESS)
    ap.add_argument("--index-file", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    ap.add_argument("--requested", type=lambda s: s.split(","), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        json.dump(archive_child(args.child, args) if args.archive else child(args.child, args), sys.stdout)
        return 0
    if args.archive:
        return archive_main(args)
    with tempfile.TemporaryDirectory(prefix="vcomp-bench-resolve-") as tmp:
        args.index_file, args.cache = os.path.join(tmp, "index.json.zst"), os.path.join(tmp, "pools")
        os.mkdir(args.cache)
        gen = run_child("gen", args)
        raw = run_child("raw", args)
        cold = run_child("cold", args, requested=gen["requested"])
        warm = run_child("warm", args, requested=gen["requested"])
    out = report(gen, cold, warm, raw, args)
    harness.write_json(Path(args.json) if args.json else None, out, indent=1, say=False)
    return 0 if out["same_solution"] else 1


if __name__ == "__main__":
    sys.exit(main())
