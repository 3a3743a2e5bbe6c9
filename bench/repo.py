#!/usr/bin/env python3
"""Benchmark a signed package repository (composer.repo) with N synthetic packages, against ed25519, sha256,
zstd and header-reading baselines on the same data.

    python bench/repo.py [--packages 10000] [--repeat 3] [--json FILE] [--profile] [--tmpdir DIR]

Writes N tiny signed ``.vpk`` packages with ``write_package`` (timed apart, not part of the figures), then,
``--repeat`` times into a fresh repository: init + delegate, ``add`` of all N, ``publish``, a client's cold
refresh + index + search, a warm refresh (counting what the fetcher downloads), ``repo refresh`` and the client
refresh after it, ``fetch`` of packages, and an incremental upload of one more package; each round ends with the
baselines. Medians are reported. Everything
lives in one temporary directory that is removed at the end. See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import os
import platform
import pstats
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
import zstandard
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from harness import Sample, fs_of, ratio_table, table, write_json
from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import Targets
from tuf.ngclient import FetcherInterface

from composer.errors import ComposerError
from composer.package.archive import Staged, read_header, verify_package, write_package
from composer.package.manifest import Entry
from composer.package.metadata import Dependency, Metadata, Security
from composer.repo import edit
from composer.repo.client import RepositoryClient
from composer.repo.index import INDEX_LEVEL, index_target_path
from composer.repo.store import RepoStore
from composer.repo.transports import UrlFetcher
from composer.trust.keys import SIGNATURE_PREFIX, SigningKey, generate, load_public_key, load_signing_key

EPOCH = 1_700_000_000          # SOURCE_DATE_EPOCH of every package
ARCHES = ("x86_64", "aarch64")  # served by the benchmark repository
QUERY, QUERY_ARCH = "pkg-09", "x86_64"
DEV_ROLE = "bench-dev"
# The developer's delegation: the package names and the names they provide (add checks both).
DEV_PATTERNS = ("pkg-*", "cmd:pkg-*", "lib:pkg-*", "bench-group-*")
CLAIM = "a client refresh that changes nothing downloads only the timestamp"

WORDS = ("fast", "small", "secure", "portable", "modular", "static", "shared", "tiny", "robust", "simple",
         "parser", "codec", "daemon", "toolkit", "runtime", "library", "utility", "driver", "helper", "server")
LICENSES = ("MIT", "Apache-2.0", "GPL-3.0-or-later", "BSD-3-Clause", "MPL-2.0", "LGPL-2.1-or-later")
CAPABILITIES = ("filesystem", "network", "display", "audio", "clock", "usb")
REQUIREMENTS = ("^1.2", "~1.4.0", ">=1.0, <3", "1.1", "^2", "=1.0.3", ">=0.9", "*")


# ---------------------------------------------------------------- synthetic packages

@dataclass
class Corpus:
    paths: list[Path]      # the N packages
    metas: list[Metadata]
    bytes: int
    seconds: float
    extra: Path            # one more package (pkg-N), uploaded alone to the full repository
    extra_meta: Metadata


def synthetic_metadata(i: int, rng: random.Random) -> Metadata:
    """Package ``pkg-NNNNN``: 2-4 Cargo-style dependencies on earlier packages (one with a feature), provides,
    capabilities; 80 % x86_64, 10 % aarch64, 10 % noarch."""
    name = f"pkg-{i:05d}"
    arch = "noarch" if i % 10 == 0 else "aarch64" if i % 10 == 5 else "x86_64"
    typ = "library" if i % 3 == 0 else "application"
    deps: list[Dependency] = []
    features: dict[str, tuple[str, ...]] = {}
    for j, d in enumerate(sorted(rng.sample(range(i), min(i, rng.randint(2, 4))))):
        dep = f"pkg-{d:05d}"
        if j == 0 and i % 4 == 0:
            deps.append(Dependency(name=dep, requirement="^1", features=("extra",), optional=True))
            features["extra"] = (f"{dep}/extra",)
        else:
            deps.append(Dependency(name=dep, requirement=rng.choice(REQUIREMENTS)))
    provides = [f"cmd:{name}" if typ == "application" else f"lib:{name}"]
    if i % 7 == 0:
        provides.append(f"bench-group-{i % 50}")
    caps = rng.sample(CAPABILITIES, 3)
    return Metadata(
        name=name, version=f"{rng.randint(0, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
        description=f"{' '.join(rng.sample(WORDS, 3)).capitalize()} component number {i} for the repository "
                    "benchmark", license=rng.choice(LICENSES), type=typ, arch=arch,
        authors=("Bench Maintainers <bench@example.org>",), homepage=f"https://example.org/{name}",
        provides=tuple(provides), conflicts=(f"pkg-{i + 1:05d}",) if i % 20 == 19 else (),
        dependencies=tuple(sorted(deps, key=lambda d: d.name)), features=features,
        capabilities_required=tuple(sorted(caps[:1])), capabilities_optional=tuple(sorted(caps[1:])),
        security=Security(context="system_t"), provenance={"source-date-epoch": EPOCH})


def generate_corpus(out: Path, n: int, key: SigningKey, seed: int) -> Corpus:
    """N + 1 signed packages, each with one small file (a script in usr/bin or a README in usr/share/doc)."""
    rng = random.Random(seed)
    src = out / "src"
    src.mkdir(parents=True)
    paths, metas, total = [], [], 0
    t0 = time.perf_counter()
    for i in range(n + 1):
        meta = synthetic_metadata(i, rng)
        body = f"#!/bin/sh\n# {meta.description}\nexec echo '{meta.name} {meta.version}' \"$@\"\n"
        if meta.type == "application":
            entry = Entry(path=f"usr/bin/{meta.name}", type="file", mode=0o755, role="binary")
        else:
            entry = Entry(path=f"usr/share/doc/{meta.name}/README", type="file", mode=0o644, role="doc")
            body = f"{meta.name} {meta.version}\n\n{meta.description}.\n" + "See the docs.\n" * rng.randint(0, 8)
        f = src / meta.name
        f.write_text(body)
        path = out / "pkgs" / f"{meta.nva}.vpk"
        signed, _ = write_package(path, metadata=meta, staged=[Staged(entry=entry, source=f)], key=key, epoch=EPOCH)
        f.unlink()
        paths.append(path)
        metas.append(signed)
        total += path.stat().st_size if i < n else 0
        if (i + 1) % 2000 == 0:
            print(f"  generated {i + 1}/{n} packages ({time.perf_counter() - t0:.1f} s)", flush=True)
    src.rmdir()
    return Corpus(paths=paths[:n], metas=metas[:n], bytes=total, seconds=time.perf_counter() - t0, extra=paths[n],
                  extra_meta=metas[n])


# ---------------------------------------------------------------- a client that counts downloads

@dataclass
class Fetch:
    url: str
    status: int = 200
    bytes: int = 0


class CountingFetcher(UrlFetcher):
    """The client's own fetcher, recording every URL it is asked for, the status and the bytes handed over."""

    def __init__(self, log: list[Fetch]) -> None:
        super().__init__()
        self.log = log

    def _fetch(self, url: str) -> Iterator[bytes]:
        rec = Fetch(url)
        self.log.append(rec)
        try:
            chunks = super()._fetch(url)
        except tuf_exc.DownloadHTTPError as exc:
            rec.status = exc.status_code
            raise
        return self._count(chunks, rec)

    @staticmethod
    def _count(chunks: Iterator[bytes], rec: Fetch) -> Iterator[bytes]:
        for chunk in chunks:
            rec.bytes += len(chunk)
            yield chunk


class CountingClient(RepositoryClient):
    """RepositoryClient whose updaters get a CountingFetcher (through the client's ``_fetcher()`` hook, so the
    Updater is built exactly as the client builds it)."""

    def __init__(self, url: str, trusted_root: bytes, cache: Path) -> None:
        super().__init__(url, trusted_root, cache)
        self.fetches: list[Fetch] = []

    def _fetcher(self) -> FetcherInterface:
        return CountingFetcher(self.fetches)

    def take(self) -> list[Fetch]:
        """The fetches since the last call, URLs relative to the repository."""
        out = [Fetch(f.url.removeprefix(self.urls[0] + "/"), f.status, f.bytes) for f in self.fetches]
        self.fetches.clear()
        return out


def describe_fetches(fetches: Sequence[Fetch]) -> str:
    if not fetches:
        return "nothing"
    return ", ".join(f"{f.url} ({f.bytes} B)" if f.status == 200 else f"{f.url} ({f.status}, {f.bytes} B)"
                     for f in fetches)


# ---------------------------------------------------------------- measuring

class Result(harness.Result):
    def to_json(self, per: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"seconds": round(self.seconds, 5), "cpu_seconds": _num(self.cpu, 5),
                               "sys_seconds": _num(self.sys, 5), "samples": [round(s.seconds, 5) for s in self.samples],
                               "cpu_samples": [_num(s.cpu, 5) for s in self.samples],
                               "sys_samples": [_num(s.sys, 5) for s in self.samples]}
        if per:
            out["per_package_ms"] = round(self.seconds / per * 1000, 4)
        return out


_num = harness.rounded  # NaN (not measured) -> null


class Timer:
    """``with timer("name"): ...`` appends one sample (wall, CPU, system CPU of this process) to the named result;
    with ``profiles``, each operation also runs under its own cProfile profiler."""

    def __init__(self, results: dict[str, Result], profiles: dict[str, cProfile.Profile] | None = None) -> None:
        self.results, self.profiles = results, profiles
        self.current = ""  # the operation started last (named in the message if it fails)

    def __call__(self, name: str) -> _Timing:
        return _Timing(self, name)


class _Timing:
    def __init__(self, timer: Timer, name: str) -> None:
        self.timer, self.name = timer, name
        self.prof: cProfile.Profile | None = None

    def __enter__(self) -> _Timing:
        gc.collect()  # start every operation without garbage left by the previous ones
        self.timer.current = self.name
        if self.timer.profiles is not None:
            self.prof = self.timer.profiles.setdefault(self.name, cProfile.Profile())
            self.prof.enable()
        self.s0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        seconds, cpu = time.perf_counter() - self.t0, time.process_time() - self.c0
        sys_cpu = resource.getrusage(resource.RUSAGE_SELF).ru_stime - self.s0
        if self.prof is not None:
            self.prof.disable()
        self.timer.results.setdefault(self.name, Result(self.name)).samples.append(
            Sample(seconds=seconds, cpu=cpu, sys=sys_cpu))


# Row names, in report order.
ADD, PUBLISH, REFRESH_REPO = "add (N packages)", "publish (2 indexes + sign)", "repo refresh (re-sign timestamp)"
INIT = "repo init + delegate"
COLD = "client cold: refresh + index + search"
COLD_REFRESH, COLD_INDEX, COLD_SEARCH = "  of which refresh", "  of which index download+parse", "  of which search"
WARM = "client warm refresh (nothing changed)"
WARM_SEARCH = "client warm refresh + search (cached index)"
AFTER = "client refresh after repo refresh"
FETCH1 = "fetch 1st package (+ delegated role)"
FETCH2 = "fetch 2nd package"
ADD1 = "add 1 package to the full repository"
PUBLISH1 = "publish after adding 1"
AFTER_ADD1 = "client refresh + index after that publish"
FETCH_NEW = "fetch the new package (+ delegated role)"
B_ED, B_SHA, B_HDR, B_ZSTD = ("ed25519 verify x N (cryptography)", "sha256 of N package files (hashlib)",
                              "read_header x N", f"zstd -{INDEX_LEVEL} of the index JSON (2 arches)")
C_VERIFY = "verify_package x N (add's first step)"
BASELINES = (B_ED, B_SHA, B_HDR, B_ZSTD)
FETCH_ROWS = (COLD, WARM, WARM_SEARCH, AFTER, FETCH1, FETCH2, AFTER_ADD1, FETCH_NEW)
ROWS = (INIT, ADD, PUBLISH, COLD, COLD_REFRESH, COLD_INDEX, COLD_SEARCH, WARM, WARM_SEARCH, REFRESH_REPO, AFTER, FETCH1,
        FETCH2, ADD1, PUBLISH1, AFTER_ADD1, FETCH_NEW)


def run_round(tmp: Path, r: int, corpus: Corpus, keys: dict[str, Path], timer: Timer, *,
              expected_hits: int, baselines: bool) -> dict[str, Any]:
    """One repository from scratch through every measured operation; returns what was downloaded and sizes."""
    repo_dir, cache = tmp / f"repo{r}", tmp / f"cache{r}"
    online = {role: [load_signing_key(keys[role])] for role in ("index", "snapshot", "timestamp")}
    offline = [load_signing_key(keys["targets"])]
    dev = load_signing_key(keys["dev"])
    fetched: dict[str, list[Fetch]] = {}

    with timer(INIT):
        root_json = edit.init(repo_dir, root_keys=[load_signing_key(keys["root"])], root_threshold=1,
                              targets_keys=offline, online=online,
                              online_paths={role: [str(keys[role])] for role in online}, architectures=ARCHES)
        edit.delegate(RepoStore(repo_dir), DEV_ROLE, [load_public_key(keys["dev.pub"])], list(DEV_PATTERNS),
                      targets_keys=offline)
    root_bytes = root_json.read_bytes()

    with timer(ADD):
        added = edit.add(RepoStore(repo_dir), corpus.paths, [dev])
    if len(added) != len(corpus.paths) or not all(a.new for a in added):
        raise SystemExit(f"bench: add stored {len(added)} packages, expected {len(corpus.paths)} new ones")
    del added  # each client below is dropped when done too: a real command would not hold them
    with timer(PUBLISH):
        published = edit.publish(RepoStore(repo_dir))
    if published["packages"] != len(corpus.paths):
        raise SystemExit(f"bench: publish reports {published['packages']} packages")
    indexes = published_indexes(repo_dir)  # what this publish compressed: the input of the zstd baseline
    sizes = repo_sizes(repo_dir, indexes)

    url = repo_dir.resolve().as_uri()
    client = CountingClient(url, root_bytes, cache)
    with timer(COLD):
        t0 = time.perf_counter()
        client.refresh()
        t1 = time.perf_counter()
        client.index(QUERY_ARCH)
        t2 = time.perf_counter()
        hits = client.search(QUERY, QUERY_ARCH)
        t3 = time.perf_counter()
    for name, s in ((COLD_REFRESH, t1 - t0), (COLD_INDEX, t2 - t1), (COLD_SEARCH, t3 - t2)):
        timer.results.setdefault(name, Result(name)).samples.append(Sample(seconds=s, cpu=float("nan")))
    fetched[COLD] = client.take()
    del client
    if len(hits) != expected_hits:
        raise SystemExit(f"bench: search('{QUERY}', {QUERY_ARCH}) found {len(hits)}, expected {expected_hits}")

    warm = CountingClient(url, root_bytes, cache)
    with timer(WARM):
        warm.refresh()
    fetched[WARM] = warm.take()
    del warm

    warm2 = CountingClient(url, root_bytes, cache)
    with timer(WARM_SEARCH):
        warm2.refresh()
        if len(warm2.search(QUERY, QUERY_ARCH)) != expected_hits:
            raise SystemExit("bench: the warm search found a different number of packages")
    fetched[WARM_SEARCH] = warm2.take()
    del warm2

    with timer(REFRESH_REPO):
        edit.refresh(RepoStore(repo_dir))
    after = CountingClient(url, root_bytes, cache)
    with timer(AFTER):
        after.refresh()
    fetched[AFTER] = after.take()

    first, second = (hits or after.index(QUERY_ARCH))[0], (hits or after.index(QUERY_ARCH))[-1]
    after.take()
    with timer(FETCH1):
        p1 = after.fetch(first)
    fetched[FETCH1] = after.take()
    with timer(FETCH2):
        p2 = after.fetch(second)
    fetched[FETCH2] = after.take()
    for p, e in ((p1, first), (p2, second)):
        if hashlib.sha256(p.read_bytes()).hexdigest() != e.sha256:
            raise SystemExit(f"bench: fetched {p} does not match its index entry")
    del after

    # An incremental upload: one more package into the full repository, published, seen by the warm client.
    with timer(ADD1):
        edit.add(RepoStore(repo_dir), [corpus.extra], [dev])
    with timer(PUBLISH1):
        edit.publish(RepoStore(repo_dir))
    arch = corpus.extra_meta.arch if corpus.extra_meta.arch != "noarch" else QUERY_ARCH
    later = CountingClient(url, root_bytes, cache)
    with timer(AFTER_ADD1):
        later.refresh()
        new = [e for e in later.index(arch) if e.name == corpus.extra_meta.name]
    fetched[AFTER_ADD1] = later.take()
    if len(new) != 1:
        raise SystemExit(f"bench: the index does not list the package added last ({corpus.extra_meta.name})")
    with timer(FETCH_NEW):
        later.fetch(new[0])
    fetched[FETCH_NEW] = later.take()

    if baselines:
        run_baselines([raw for raw, _ in indexes.values()], corpus, timer)
    out = {"fetched": fetched, "sizes": sizes, "hits": len(hits), "index_json": [raw for raw, _ in indexes.values()]}
    shutil.rmtree(repo_dir)
    shutil.rmtree(cache)
    return out


def published_indexes(repo_dir: Path) -> dict[str, tuple[bytes, int]]:
    """arch -> (raw JSON, compressed size) of the indexes the current targets metadata lists: exactly the bytes
    publish compressed (older index versions stay in targets/index/, content-addressed)."""
    targets = RepoStore(repo_dir).load("index", Targets).signed
    dctx = zstandard.ZstdDecompressor()
    out = {}
    for arch in ARCHES:
        path = index_target_path(arch)
        directory, base = path.rsplit("/", 1)
        data = (repo_dir / "targets" / directory / f"{targets.targets[path].hashes['sha256']}.{base}").read_bytes()
        out[arch] = (dctx.decompress(data, max_output_size=1 << 30), len(data))
    return out


def run_baselines(raws: Sequence[bytes], corpus: Corpus, timer: Timer) -> None:
    # Inputs prepared outside the timed parts: signed bytes, raw signatures, one public key object.
    signed = [m.signed_bytes() for m in corpus.metas]
    sigs = [_raw_signature(m.security.signature) for m in corpus.metas]
    pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(corpus.metas[0].security.public_key.split(":", 1)[1]))
    with timer(B_ED):
        for sig, data in zip(sigs, signed, strict=True):
            pub.verify(sig, data)
    with timer(B_SHA):
        for p in corpus.paths:
            with p.open("rb") as f:
                hashlib.file_digest(f, "sha256")
    with timer(B_HDR):
        for p in corpus.paths:
            read_header(p)
    with timer(B_ZSTD):
        for raw in raws:
            zstandard.ZstdCompressor(level=INDEX_LEVEL, write_checksum=True).compress(raw)
    with timer(C_VERIFY):  # not a baseline: the library call add() makes first, to split add's time
        for p in corpus.paths:
            verify_package(p)


def zstd_levels(raws: Sequence[bytes], levels: Sequence[int] = (3, 9, 12, 16, INDEX_LEVEL)) -> dict[int, Any]:
    """For the suggestion in the report: the same index JSON at other zstd levels (one run each)."""
    out = {}
    for level in levels:
        t0 = time.perf_counter()
        size = sum(len(zstandard.ZstdCompressor(level=level, write_checksum=True).compress(r)) for r in raws)
        out[level] = {"seconds": round(time.perf_counter() - t0, 4), "bytes": size}
    return out


def _raw_signature(sig: str) -> bytes:
    import base64
    return base64.b64decode(sig.removeprefix(SIGNATURE_PREFIX))


def repo_sizes(repo_dir: Path, indexes: dict[str, tuple[bytes, int]]) -> dict[str, Any]:
    meta = repo_dir / "metadata"
    store = RepoStore(repo_dir)
    out: dict[str, Any] = {"timestamp.json": (meta / "timestamp.json").stat().st_size}
    for role in ("snapshot", "targets", "index", DEV_ROLE):
        v = store.current_version(role)
        out[f"{role}.json (v{v})"] = (meta / f"{v}.{role}.json").stat().st_size
    for arch, (raw, zst) in indexes.items():
        out[f"index {arch}"] = {"json": len(raw), "zst": zst}
    out["state.db"] = sum(p.stat().st_size for p in repo_dir.glob("state.db*"))
    return out


# ---------------------------------------------------------------- reporting

def print_profiles(profiles: dict[str, cProfile.Profile], top: int, min_seconds: float = 0.05) -> None:
    """Each profiled operation that took at least ``min_seconds`` (under the profiler): top functions by own
    time, then by cumulative time."""
    for name, prof in profiles.items():
        stats = pstats.Stats(prof, stream=sys.stdout)
        if stats.total_tt < min_seconds:  # type: ignore[attr-defined]
            print(f"\n--- cProfile: {name}: {stats.total_tt:.3f} s, not listed ---")  # type: ignore[attr-defined]
            continue
        for order in ("tottime", "cumulative"):
            print(f"\n--- cProfile: {name} (top {top} by {order}) ---")
            stats.strip_dirs().sort_stats(order).print_stats(top)


def claim_check(fetches: Sequence[Fetch]) -> tuple[bool, bool, str]:
    """(literal, content, text): literally one request, for the timestamp; or: the only file with content is the
    timestamp, every other request being a 404 for the next root version (TUF's root-rotation probe)."""
    got = [f for f in fetches if f.status == 200]
    probes = [f for f in fetches if f.status != 200]
    content = [f.url for f in got] == ["metadata/timestamp.json"] and all(
        f.status == 404 and f.url.endswith(".root.json") and f.bytes == 0 for f in probes)
    literal = [f.url for f in fetches] == ["metadata/timestamp.json"]
    text = (f"{len(fetches)} requests, {len(got)} file(s) with content ({sum(f.bytes for f in got)} B): "
            + describe_fetches(fetches))
    return literal, content, text


def main(argv: Sequence[str] | None = None) -> int:
    ap = harness.parser(__doc__)
    ap.add_argument("--packages", type=int, default=10_000, help="number of synthetic packages (default 10000)")
    harness.add_repeat(ap, "rounds")
    ap.add_argument("--seed", type=int, default=20240601)
    harness.add_json(ap)
    ap.add_argument("--profile", action="store_true",
                    help="after the measured rounds, run one more under cProfile and print where the time goes")
    ap.add_argument("--profile-top", type=int, default=15, help="rows per cProfile listing (default 15)")
    ap.add_argument("--tmpdir", type=Path, default=None,
                    help="where the temporary folder goes (default: $TMPDIR or /tmp); e.g. /dev/shm for tmpfs")
    opts = ap.parse_args(argv)
    if opts.packages < 2 or opts.repeat < 1:
        ap.error("--packages must be at least 2 and --repeat at least 1")
    os.environ.pop("VCOMP_KEY_PASSPHRASE", None)  # the benchmark's keys are not encrypted
    with tempfile.TemporaryDirectory(prefix="vcomp-bench-repo-", dir=opts.tmpdir) as tmp_s:
        return bench(opts, Path(tmp_s))


def bench(opts: argparse.Namespace, tmp: Path) -> int:
    t_start = time.perf_counter()
    n = opts.packages
    keys: dict[str, Path] = {}
    for name in ("root", "targets", "index", "snapshot", "timestamp", "dev"):
        keys[name], pub, _ = generate(name, tmp / "keys")
        keys[f"{name}.pub"] = pub
    dev = load_signing_key(keys["dev"])

    print(f"generating {n} packages ...", flush=True)
    corpus = generate_corpus(tmp / "corpus", n, dev, opts.seed)
    print(f"generated {n} packages, {corpus.bytes} bytes ({corpus.bytes / n:.0f} B each) in {corpus.seconds:.1f} s "
          f"({corpus.seconds / n * 1000:.2f} ms each; not part of the figures)", flush=True)
    gc.collect()
    gc.freeze()  # the corpus lives through the whole run: keep it out of the collector's work in the measured parts
    q = QUERY.lower()
    expected = sum(1 for m in corpus.metas if m.arch in (QUERY_ARCH, "noarch") and (
        q in m.name.lower() or q in m.description.lower() or any(q in p for p in m.provides)))

    results: dict[str, Result] = {}
    timer = Timer(results)
    rounds = []
    for r in range(opts.repeat):
        t0 = time.perf_counter()
        try:
            rounds.append(run_round(tmp, r, corpus, keys, timer, expected_hits=expected, baselines=True))
        except ComposerError as exc:
            done = [f"{name.strip()} {res.samples[-1].seconds:.3f} s" for name, res in results.items()
                    if len(res.samples) == r + 1 and name != timer.current]
            print(f"bench: round {r + 1} failed in '{timer.current}': {exc}" + (f"\n  hint: {exc.hint}" if exc.hint
                  else "") + f"\n  measured before that: {', '.join(done) or 'nothing'}", file=sys.stderr)
            return 1
        print(f"  [{r + 1}/{opts.repeat}] add {results[ADD].samples[-1].seconds:.2f} s, publish "
              f"{results[PUBLISH].samples[-1].seconds:.2f} s, cold client {results[COLD].samples[-1].seconds:.2f} s; "
              f"round {time.perf_counter() - t0:.1f} s", flush=True)
    profiles: dict[str, cProfile.Profile] = {}
    if opts.profile:
        print("profiling one more round ...", flush=True)
        run_round(tmp, opts.repeat, corpus, keys, Timer({}, profiles), expected_hits=expected, baselines=False)

    # ---- report
    fetched = rounds[0]["fetched"]
    same = all(r["fetched"] == fetched for r in rounds[1:])
    sizes = rounds[-1]["sizes"]

    def fetch_cols(name: str) -> list[str]:
        fs = fetched.get(name)
        if fs is None:
            return ["", ""]
        return [str(len(fs)), str(sum(f.bytes for f in fs))]

    rows = []
    for name in ROWS:
        res = results[name]
        cpu, sys_cpu = ("-" if x != x else f"{x:.3f}" for x in (res.cpu, res.sys))
        per = f"{res.seconds / n * 1000:.3f}" if name in (ADD, PUBLISH) else ""
        rows.append([name, f"{res.seconds:.3f}", cpu, sys_cpu, per, *fetch_cols(name)])
    base_rows = [[name, f"{results[name].seconds:.3f}", f"{results[name].cpu:.3f}", f"{results[name].sys:.3f}",
                  f"{results[name].seconds / n * 1000:.3f}" if name != B_ZSTD else "", "", ""]
                 for name in (*BASELINES, C_VERIFY)]
    base_rows.insert(len(BASELINES), ["component of add:", "", "", "", "", "", ""])

    print(f"\n== {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"python-zstandard {zstandard.__version__}; temp on {fs_of(tmp)}")
    print(f"{n} packages ({corpus.bytes / n:.0f} B each, {sum(m.arch == 'x86_64' for m in corpus.metas)} x86_64, "
          f"{sum(m.arch == 'aarch64' for m in corpus.metas)} aarch64, {sum(m.arch == 'noarch' for m in corpus.metas)} "
          f"noarch); median of {opts.repeat} rounds; 'fetches' = requests the client's fetcher got, 'bytes' = what it "
          "downloaded\n")
    print(table([*rows, ["baselines, same data:", "", "", "", "", "", ""], *base_rows],
                ["operation", "wall s", "cpu s", "sys s", "ms/pkg", "fetches", "bytes"]))

    add_pp = results[ADD].seconds / n
    ed_pp, sha_pp, hdr_pp, ver_pp = (results[k].seconds / n for k in (B_ED, B_SHA, B_HDR, C_VERIFY))
    ratios = {
        "add / (ed25519 verify + sha256), per package": add_pp / (ed_pp + sha_pp),
        "add / read_header, per package": add_pp / hdr_pp,
        "verify_package / (ed25519 verify + sha256), per package": ver_pp / (ed_pp + sha_pp),
        f"publish / zstd -{INDEX_LEVEL} of the index JSON": results[PUBLISH].seconds / results[B_ZSTD].seconds,
    }
    print(f"\nper package (ms): add {add_pp * 1000:.3f} = verify_package {ver_pp * 1000:.3f} + the rest "
          f"{(add_pp - ver_pp) * 1000:.3f};  baselines: ed25519 verify {ed_pp * 1000:.4f} + sha256 "
          f"{sha_pp * 1000:.4f} = {(ed_pp + sha_pp) * 1000:.4f};  read_header {hdr_pp * 1000:.3f}")
    print(ratio_table(ratios, 1))

    levels = zstd_levels(rounds[-1]["index_json"])
    print(f"index JSON ({sum(len(r) for r in rounds[-1]['index_json'])} B, both arches) at other zstd levels: "
          + ", ".join(f"-{lv}: {v['seconds']:.2f} s, {v['bytes']} B" for lv, v in levels.items()))
    print("\nsizes (bytes): " + ", ".join(
        f"{k} {v['json']} JSON -> {v['zst']} zst" if isinstance(v, dict) else f"{k} {v}" for k, v in sizes.items()))

    print(f"\nwhat the client downloaded (round 1{'; identical in every round' if same else '; ROUNDS DIFFER'}):")
    for name in FETCH_ROWS:
        print(f"  {name.strip()}: {describe_fetches(fetched[name])}")
    literal, content, text = claim_check(fetched[WARM])
    _, _, after_text = claim_check(fetched[AFTER])
    verdict = ("HOLDS" if literal else "holds for content, not literally" if content else "DOES NOT HOLD")
    print(f"\nclaim '{CLAIM}': {verdict}\n  warm refresh: {text}")
    if content and not literal:
        print("  the other request is ngclient asking for the next root version (TUF spec 5.3.2), answered 404")
    print(f"  after repo refresh: {after_text}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = time.perf_counter() - t_start
    print(f"\npeak RSS of the benchmark process: {rss:.0f} MiB; whole run {total:.0f} s")

    if profiles:
        print_profiles(profiles, opts.profile_top)

    if opts.json:
        doc = {
            "machine": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                        "zstandard": zstandard.__version__, "temp_fs": fs_of(tmp)},
            "params": {"packages": n, "repeat": opts.repeat, "seed": opts.seed, "query": QUERY, "arch": QUERY_ARCH,
                       "index_level": INDEX_LEVEL},
            "corpus": {"bytes": corpus.bytes, "generate_seconds": round(corpus.seconds, 3),
                       "arches": {a: sum(m.arch == a for m in corpus.metas) for a in (*ARCHES, "noarch")}},
            "results": {name.strip(): results[name].to_json(n if name in (ADD, PUBLISH) else None) for name in ROWS},
            "baselines": {name: results[name].to_json(n if name != B_ZSTD else None) for name in BASELINES},
            "components": {C_VERIFY: results[C_VERIFY].to_json(n)},
            "per_package_ms": {"add": round(add_pp * 1000, 4), "verify_package": round(ver_pp * 1000, 4),
                               "ed25519_verify": round(ed_pp * 1000, 5),
                               "sha256": round(sha_pp * 1000, 5), "read_header": round(hdr_pp * 1000, 4)},
            "ratios": {k: round(v, 2) for k, v in ratios.items()},
            "sizes": sizes,
            "index_zstd_levels": levels,
            "search_hits": rounds[-1]["hits"],
            "fetched": {name.strip(): [vars(f) for f in fs] for name, fs in fetched.items()},
            "fetched_identical_in_every_round": same,
            "claim": {"text": CLAIM, "literal": literal, "content_only_timestamp": content, "detail": text},
            "peak_rss_mib": round(rss, 1),
            "run_seconds": round(total, 1),
        }
        write_json(opts.json, doc, indent=2)
    if not content:
        print(f"bench: the claim '{CLAIM}' does not hold", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
