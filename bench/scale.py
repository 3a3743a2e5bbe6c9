"""The scale simulation (issue 20): what one change costs in a repository of 10k, 100k (and 1M) packages.

    python bench/scale.py [--sizes 10000,100000] [--cache DIR] [--json FILE]

For each size N, a synthetic repository of N metadata-only packages (``bench/repo.py``'s synthetic metadata:
names, versions, dependencies, provides; no payload) built through the real path: every package written and
signed by ``write_package``, added with ``edit.add_many`` (verification, delegation checks, the developer
role signed), published. It is cached under ``$VCOMP_CACHE/bench-scale/N`` (or ``--cache``) between runs; a run
works on a copy (targets and metadata hard-linked: they are immutable or replaced by rename; the state copied).

Measured on that copy, in one run, for every size:

* ``add 1``        ``repo add`` of one more package (lock, repair, checks, one state transaction, role signed)
* ``publish``      ``repo publish`` after it (the indexes rebuilt from the state, index/snapshot/timestamp)
* ``refresh``      a warm client's refresh + index after that change: seconds and bytes downloaded
* ``cold``         a new client's refresh + index: seconds and bytes
* ``dev refetch``  the developer metadata (its role, its hash bins) a client that had installed a package before
                   the add downloads to install the added one: the whole role unbinned, one bin binned
* ``mirror``       ``vcomp repo mirror``'s verified copy of the whole repository to a new directory
* baselines, same run: one SQLite insert into a copy of the state (``add 1``'s floor for the state part),
  the old per-add cost (load the whole state and rewrite it as ``state.json``, what every add did before
  ``state.db``) and a raw copy (``shutil.copytree``) of metadata/ and targets/ (``mirror``'s floor).

It prints every figure per size, the growth factor per 10x of size, and the ratios against the baselines.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repo import ARCHES, DEV_PATTERNS, DEV_ROLE, EPOCH, CountingClient, synthetic_metadata

from composer.fsutil import atomic_write
from composer.package.archive import read_header, write_package
from composer.repo import edit
from composer.repo.mirror import mirror
from composer.repo.store import RepoStore
from composer.trust.keys import generate, load_public_key, load_signing_key

KEYS = ("root", "targets", "index", "snapshot", "timestamp", "dev")
CHUNK = 2000
DONE = "complete"


@dataclass
class Figures:
    """One size's measurements (seconds, bytes)."""

    size: int
    seconds: dict[str, float] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)


def default_cache() -> Path:
    return Path(os.environ.get("VCOMP_CACHE", Path.home() / ".cache" / "vcomp")) / "bench-scale"


# ---------------------------------------------------------------- the cached synthetic repository

def build_repository(cache: Path, n: int, seed: int, log: Callable[[str], None]) -> Path:
    """``cache/N``: keys/, repo/ (N packages, published) and extra.vpk (package N, not added); built once."""
    home = cache / str(n)
    if (home / DONE).is_file():
        return home
    shutil.rmtree(home, ignore_errors=True)
    keys = {name: generate(name, home / "keys")[0] for name in KEYS}
    dev = load_signing_key(keys["dev"])
    rng = random.Random(seed)
    t0 = time.perf_counter()
    pkgs = home / "pkgs"
    paths = []
    for i in range(n + 1):
        meta = synthetic_metadata(i, rng)
        path = (home / "extra.vpk") if i == n else pkgs / f"{meta.nva}.vpk"
        write_package(path, metadata=meta, staged=[], key=dev, epoch=EPOCH)
        paths.append(path)
        if (i + 1) % 10000 == 0:
            log(f"  {n}: wrote {i + 1} packages ({time.perf_counter() - t0:.0f} s)")
    log(f"  {n}: {n + 1} packages written and signed in {time.perf_counter() - t0:.1f} s")
    online = {role: [load_signing_key(keys[role])] for role in ("index", "snapshot", "timestamp")}
    offline = [load_signing_key(keys["targets"])]
    repo = home / "repo"
    edit.init(repo, root_keys=[load_signing_key(keys["root"])], root_threshold=1, targets_keys=offline,
              online=online, online_paths={role: [str(keys[role])] for role in online}, architectures=ARCHES)
    edit.delegate(RepoStore(repo), DEV_ROLE, [load_public_key(keys["dev"].with_suffix(".pub"))],
                  list(DEV_PATTERNS), targets_keys=offline)
    t1 = time.perf_counter()
    edit.add_many(RepoStore(repo), paths[:n], [dev], jobs=2, chunk=CHUNK,
                  progress=lambda done, total: log(f"  {n}: added {done}/{total} ({time.perf_counter() - t1:.0f} s)")
                  if done % 20000 == 0 or done == total else None)
    edit.publish(RepoStore(repo))
    log(f"  {n}: repository built (add {time.perf_counter() - t1:.1f} s)")
    shutil.rmtree(pkgs)
    (home / DONE).write_text(f"{n}\n")
    return home


def working_copy(home: Path, dest: Path) -> Path:
    """The cached repository, as a copy a run may change: targets/ and metadata/ hard-linked (never
    rewritten in place), every top-level file (repo.toml, state.db, the lock) copied."""
    src = home / "repo"
    dest.mkdir(parents=True)
    for entry in src.iterdir():
        if entry.is_dir():
            shutil.copytree(entry, dest / entry.name, copy_function=os.link)
        else:
            shutil.copy2(entry, dest / entry.name)
    # repo.toml names its online keys relative to itself (../keys/...): point them at the cached keys
    (dest / "repo.toml").write_text((src / "repo.toml").read_text().replace('"../keys/', f'"{home / "keys"}/'))
    return dest


def tree_bytes(top: Path) -> int:
    return sum(p.stat().st_size for p in top.rglob("*") if p.is_file())


# ---------------------------------------------------------------- one size

def measure(home: Path, work: Path, *, with_mirror: bool = True) -> Figures:
    repo = working_copy(home, work / "repo")
    keys = home / "keys"
    dev = load_signing_key(keys / "dev.key")
    root = (repo / "metadata" / "1.root.json").read_bytes()
    url = repo.resolve().as_uri()
    figures = Figures(size=RepoStore(repo).writable_state().count())

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        figures.seconds[name] = time.perf_counter() - t0
        return out

    warm = CountingClient(url, root, work / "client")
    timed("cold", lambda: (warm.refresh(), warm.index("x86_64")))
    figures.bytes["cold"] = sum(f.bytes for f in warm.take())
    figures.bytes["state.db"] = sum(p.stat().st_size for p in repo.glob("state.db*"))
    figures.bytes["dev role"] = max((p for p in (repo / "metadata").glob(f"*.{DEV_ROLE}.json")),
                                    key=lambda p: int(p.name.split(".")[0])).stat().st_size

    scratch = work / "insert.db"   # baseline: one row into a copy of the state, one transaction
    shutil.copy2(repo / "state.db", scratch)
    conn = sqlite3.connect(scratch)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    row = ("packages/zz/zz-1-x86_64.vpk", "zz", "x86_64", "0" * 64, json.dumps({"path": "x" * 400}))
    timed("sqlite insert", lambda: conn.execute("INSERT INTO packages VALUES (?, ?, ?, ?, ?)", row)
          and conn.commit())
    conn.close()

    def old_state_write() -> None:   # what every add cost before state.db: load and rewrite the whole state.json
        state = RepoStore(repo).read_state()
        atomic_write(work / "state.json", json.dumps(state, sort_keys=True, separators=(",", ":")).encode())
    timed("state.json rewrite", old_state_write)
    figures.bytes["state.json"] = (work / "state.json").stat().st_size

    warm.fetch(warm.index("x86_64")[0])   # a client that installed a package: it holds the developer metadata
    warm.take()
    timed("add 1", lambda: edit.add(RepoStore(repo), [home / "extra.vpk"], [dev]))
    timed("publish", lambda: edit.publish(RepoStore(repo)))
    warm = CountingClient(url, root, work / "client")
    timed("refresh", lambda: (warm.refresh(), warm.index("x86_64")))
    figures.bytes["refresh"] = sum(f.bytes for f in warm.take())
    # installing the new package: the developer metadata (role, bins) the client fetches again
    added = read_header(home / "extra.vpk").metadata
    warm.fetch(warm.metadata(added.name, "x86_64", added.version))
    figures.bytes["dev refetch"] = sum(f.bytes for f in warm.take()
                                       if f.url.startswith("metadata/") and f".{DEV_ROLE}." in f.url)

    if not with_mirror:
        return figures
    cold = CountingClient(url, root, work / "mirror-client")
    timed("mirror", lambda: mirror(cold, work / "mirror", list(ARCHES)))
    figures.bytes["mirror"] = tree_bytes(work / "mirror")
    timed("raw copy", lambda: [shutil.copytree(repo / d, work / "raw" / d) for d in ("metadata", "targets")])
    return figures


# ---------------------------------------------------------------- report

ROWS = (("add 1", "s"), ("publish", "s"), ("refresh", "s"), ("refresh", "B"), ("cold", "s"), ("cold", "B"),
        ("mirror", "s"), ("mirror", "B"), ("sqlite insert", "s"), ("state.json rewrite", "s"), ("raw copy", "s"),
        ("state.db", "B"), ("state.json", "B"), ("dev role", "B"), ("dev refetch", "B"))
RATIOS = (("add 1", "sqlite insert"), ("mirror", "raw copy"))


def value(f: Figures, name: str, unit: str) -> float:
    return f.seconds.get(name, math.nan) if unit == "s" else float(f.bytes.get(name, math.nan))


def show(v: float, unit: str) -> str:
    if v != v:
        return "-"
    if unit == "s":
        return f"{v * 1000:.1f} ms" if v < 1 else f"{v:.2f} s"
    return f"{v / 1e6:.2f} MB" if v >= 1e6 else f"{v / 1e3:.1f} kB"


def report(all_figures: Sequence[Figures]) -> str:
    sizes = [f.size for f in all_figures]
    steps = list(itertools.pairwise(sizes))
    head = ["figure", *[f"{n:,}" for n in sizes], *[f"{a:,} -> {b:,}" for a, b in steps]]
    lines = [head]
    for name, unit in ROWS:
        vals = [value(f, name, unit) for f in all_figures]
        growth = [f"x{(b / a) ** (1 / math.log10(m / n)):.2f}/10x" if a and a == a and b == b and m > n else "-"
                  for (a, b), (n, m) in zip(itertools.pairwise(vals), steps, strict=True)]
        lines.append([f"{name} ({'time' if unit == 's' else 'bytes'})", *[show(v, unit) for v in vals], *growth])
    for num, den in RATIOS:
        shares = [value(f, num, "s") / value(f, den, "s") for f in all_figures]
        lines.append([f"{num} / {den}", *[f"{r:.0f}x" if r == r else "-" for r in shares],
                      *["" for _ in sizes[1:]]])
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines)


def run(sizes: Sequence[int], cache: Path, seed: int, log: Callable[[str], None] = print, *,
        mirror_max: int = 1_000_000) -> list[Figures]:
    out = []
    for n in sizes:
        t0 = time.perf_counter()
        home = build_repository(cache, n, seed, log)
        with tempfile.TemporaryDirectory(prefix="vcomp-scale-", dir=cache) as tmp:
            out.append(measure(home, Path(tmp), with_mirror=n <= mirror_max))
        log(f"  {n}: measured in {time.perf_counter() - t0:.1f} s")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated package counts (default 10000,100000)")
    ap.add_argument("--cache", type=Path, default=None, help="where the synthetic repositories are kept "
                                                              "(default $VCOMP_CACHE/bench-scale)")
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--json", type=Path, help="also write every figure as JSON")
    ap.add_argument("--mirror-max", type=int, default=1_000_000,
                    help="measure the full mirror only up to this size (it is the slowest figure)")
    opts = ap.parse_args(argv)
    sizes = sorted({int(s) for s in opts.sizes.split(",") if s.strip()})
    cache = opts.cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    figures = run(sizes, cache, opts.seed, mirror_max=opts.mirror_max)
    print(report(figures))
    if opts.json:
        opts.json.write_text(json.dumps([f.__dict__ for f in figures], indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
