#!/usr/bin/env python3
"""Benchmark image updates: bytes transferred and time for realistic changes of the minimal profile's disk
image, by full download, our chunk store, ``zstd --patch-from`` and ``rsync``, in one run.

    .venv/bin/python bench/update.py [--repo images/repo] [--json FILE] [--tmpdir DIR]

Builds profiles/minimal.yaml's x86_64 disk (raw GPT, ESP with the UKI + ext4 root; UEFI only, see below) four
times from the sample repository, each from its own lock: as resolved (``new``); with one small package pinned a
version older (``base-files``: a copy of the repository also serves it one patch version up, e.g. 13.0.0 ->
13.0.1, the recipe rebuilt with one more line in /etc/issue and signed with the committed sample keys); with the
kernel and its drivers pinned a build older (``linux`` and ``driver-*`` 6.12.117); and with another hostname.
Each scenario updates a device from the old image to the new one:

    small package   old: base-files X.Y.Z                     new: as resolved (X.Y.Z+1)
    kernel update   old: linux + driver-* 6.12.117           new: as resolved (6.12.118)
    hostname        old: as resolved                          new: hostname changed

For each, per method: bytes transferred, the server's preparation time and the device's time to write the new
image. *full (raw)* copies the image; *full (zstd -10)* sends it compressed; *chunks (ours)* publishes the new
image into a store that already holds the old image's chunks and assembles it over loopback HTTP, seeded from
the old image located by its own index, kept by the device (index + compressed missing chunks are the bytes);
*zstd --patch-from* (-19) makes a patch from old to new; *rsync* is ``rsync --no-whole-file --ignore-times
--stats`` of the new image onto a copy of the old (bytes: its ``Literal data``, and all it sent). Needs zstd
and rsync. See bench/README.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
from harness import table, write_json

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from composer.repo.client import RepositoryClient, load_trusted_root  # noqa: E402
from composer.repo.deltas import LEVEL, MAX_RATIO, apply_delta, delta_name, pairs, write_deltas  # noqa: E402
from composer.repo.index import IndexEntry  # noqa: E402
from composer.repo.publish import stored_target  # noqa: E402
from composer.repo.serve import serve_in_thread  # noqa: E402
from composer.repo.store import RepoStore  # noqa: E402
from composer.update.assemble import Seed, assemble  # noqa: E402
from composer.update.index import ChunkIndex  # noqa: E402
from composer.update.remote import chunk_fetcher  # noqa: E402
from composer.update.store import chunk_image  # noqa: E402

EPOCH = "1700000000"
ARCH = "x86_64"
SMALL_PACKAGE = "base-files"      # noarch, 9 KB: rebuilt one patch version up with one more line in /etc/issue
KEYS = PROJECT / "keys" / "sample"
KERNEL_PACKAGES = re.compile(r"^(linux|driver-.*)$")
SCENARIOS = (("small package", "small-old", "new"), ("kernel update", "kernel-old", "new"),
             ("hostname", "new", "hostname"))


# ================================================================= the images

def bench_profile(src: Path, dest: Path, repo: Path, hostname: str) -> Path:
    """profiles/minimal.yaml for x86_64, one raw disk output, UEFI only, pointing at ``repo``."""
    text = (src / "minimal.yaml").read_text()
    text = re.sub(r"architectures: \[[^\]]*\]", f"architectures: [{ARCH}]", text, count=1)
    text = re.sub(r"\noutputs:\n(?:  .*\n|    .*\n)*", "\noutputs:\n  - type: disk\n    options: {format: raw, "
                  "filesystem: ext4, firmware: [uefi]}\n", text)
    text = re.sub(r"url: \S+", f"url: {repo}", text, count=1)
    text = re.sub(r"\nhostname: \S+", f"\nhostname: {hostname}", text)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "trust", dest / "trust", dirs_exist_ok=True)
    path = dest / "minimal.yaml"
    path.write_text(text)
    return path


def vcomp(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "composer", *args], check=True, env=env, cwd=PROJECT,
                   stdout=subprocess.DEVNULL)


def pinned(profile: Path, names: re.Pattern[str], index: dict[str, list[str]], lock: dict[str, Any]) -> None:
    """Add to ``profile``'s packages a pin to the version before the locked one of each package matching
    ``names`` (a Debian relation: ``(= 6.12.117-1)``)."""
    pins = []
    for p in lock["architectures"][ARCH]:
        if names.match(p["name"]):
            versions = [v for v in index.get(p["name"], []) if v != p["version"]]
            if not versions:
                raise SystemExit(f"the repository serves one version of {p['name']}: no older one to use")
            pins.append(f'  - name: {p["name"]}\n    version: "(= {versions[-1]})"\n')
    text = profile.read_text()
    text = re.sub(rf"(?m)^  - (?:{names.pattern.strip('^$')})\n", "", text)     # the unpinned entries
    at = text.index("\npackages:\n") + len("\npackages:\n")
    profile.write_text(text[:at] + "".join(pins) + text[at:])


def small_upgrade(work: Path, repo: Path, env: dict[str, str]) -> Path:
    """A copy of ``repo`` that also serves base-files one patch version up (one line more in /etc/issue),
    signed with the committed sample developer key and published with the sample online keys."""
    copy = work / "repo"
    shutil.copytree(repo, copy, symlinks=True)
    config = (copy / "repo.toml").read_text()
    for role in ("index", "snapshot", "timestamp"):
        config = re.sub(rf"(?m)^{role} = \[\n.*\n\]", f'{role} = ["{KEYS}/INSECURE-SAMPLE-{role}.key"]', config)
    (copy / "repo.toml").write_text(config)
    recipe = work / "recipes" / SMALL_PACKAGE
    shutil.copytree(PROJECT / "recipes" / SMALL_PACKAGE, recipe)
    toml = recipe / "recipe.toml"
    text = toml.read_text()
    found = re.search(r'(?m)^version = "(.*)\.(\d+)"', text)
    if found is None:
        raise SystemExit(f"{toml}: no version X.Y.Z to count up")
    version = f"{found.group(1)}.{int(found.group(2)) + 1}"       # 13.0.0 -> 13.0.1
    toml.write_text(text[:found.start()] + f'version = "{version}"' + text[found.end():])
    issue = recipe / "files" / "etc" / "issue"
    issue.write_text(issue.read_text() + "Updated by bench/update.py\n")
    key = str(KEYS / "INSECURE-SAMPLE-developer.key")
    vcomp("pkg", "build", str(recipe), "--key", key, "--out", str(work / "packages"), env=env)
    vcomp("repo", "add", str(copy), *map(str, (work / "packages").glob("*.vpk")), "--key", key, env=env)
    vcomp("repo", "publish", str(copy), env=env)
    return copy


def build_images(work: Path, repo: Path, env: dict[str, str]) -> dict[str, Path]:
    """Build the four variants; return variant -> raw disk image."""
    repo = small_upgrade(work, repo, env)
    root = load_trusted_root(PROJECT / "profiles" / "trust" / "sample-root.json")
    client = RepositoryClient(str(repo), root, work / "client-cache", offline=False)
    index: dict[str, list[str]] = {}
    for e in sorted(client.index(ARCH), key=lambda e: e.order_key()):
        index.setdefault(e.name, []).append(e.version_text)
    images: dict[str, Path] = {}
    variants = {"new": ("minimal", None), "small-old": ("minimal", re.compile(f"^{SMALL_PACKAGE}$")),
                "kernel-old": ("minimal", KERNEL_PACKAGES), "hostname": ("minimal-renamed", None)}
    base_lock: dict[str, Any] = {}
    for variant, (hostname, names) in variants.items():
        profiles = work / "profiles" / variant
        profile = bench_profile(PROJECT / "profiles", profiles, repo, hostname)
        if names is not None:
            pinned(profile, names, index, base_lock)
        vcomp("lock", str(profile), env=env)
        lock = {p["name"]: p["version"] for p in json.loads(profile.with_suffix(".lock").read_text())
                ["architectures"][ARCH]}
        if variant == "new":
            base_lock = json.loads(profile.with_suffix(".lock").read_text())
        base = {p["name"]: p["version"] for p in base_lock["architectures"][ARCH]}
        moved = ", ".join(f"{n} {v}" for n, v in sorted(lock.items()) if base.get(n) != v)
        out = work / "out" / variant
        start = time.monotonic()
        vcomp("build", str(profile), "--arch", ARCH, "--images", str(out), env=env)
        disk = next((out / "minimal" / ARCH).glob("disk.*"))
        images[variant] = disk
        print(f"   built {variant}: {disk.stat().st_size} bytes in {time.monotonic() - start:.1f} s"
              f"{' (' + moved + ')' if moved else ''}{'' if hostname == 'minimal' else ', hostname ' + hostname}")
    return images


# ================================================================= the methods

@dataclass
class Row:
    method: str
    transferred: int
    prepare: float = 0.0
    apply: float = 0.0
    note: str = ""


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def sh(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True)


def same(a: Path, b: Path) -> bool:
    return hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def full_raw(old: Path, new: Path, tmp: Path) -> Row:
    _, t = timed(lambda: shutil.copyfile(new, tmp / "out"))
    return Row("full (raw)", new.stat().st_size, apply=t)


def full_zstd(old: Path, new: Path, tmp: Path) -> Row:
    _, prep = timed(lambda: sh("zstd", "-q", "-10", "-T1", "-f", new, "-o", tmp / "new.zst"))
    _, t = timed(lambda: sh("zstd", "-q", "-d", "-f", tmp / "new.zst", "-o", tmp / "out"))
    assert same(tmp / "out", new)
    return Row("full (zstd -10)", (tmp / "new.zst").stat().st_size, prep, t)


def chunks(old: Path, new: Path, tmp: Path) -> Row:
    store = tmp / "repo" / "targets"
    running = chunk_image(old, store).index              # published before: the device runs it, keeps its index
    stored, prep = timed(lambda: chunk_image(new, store))
    index_bytes = stored.index.to_bytes()
    server, url = serve_in_thread(tmp / "repo")
    try:
        index = ChunkIndex.from_bytes(index_bytes, "bench")
        report, t = timed(lambda: assemble(index, [Seed(path=old, index=running)], chunk_fetcher(url), tmp / "out",
                                           origin=url))
    finally:
        server.shutdown()
        server.server_close()
    assert same(tmp / "out", new)
    return Row("chunks (ours)", len(index_bytes) + report.transferred_bytes, prep, t,
               f"{report.fetched_chunks}/{report.chunks} chunks fetched, index {len(index_bytes)} B")


def patch_from(old: Path, new: Path, tmp: Path) -> Row:
    _, prep = timed(lambda: sh("zstd", "-q", "-19", "-T1", "-f", f"--patch-from={old}", new, "-o", tmp / "patch"))
    _, t = timed(lambda: sh("zstd", "-q", "-d", "-f", f"--patch-from={old}", tmp / "patch", "-o", tmp / "out"))
    assert same(tmp / "out", new)
    return Row("zstd --patch-from", (tmp / "patch").stat().st_size, prep, t)


def stat(text: str, name: str) -> int:
    """A number of rsync --stats (``Literal data: 1,234 bytes``)."""
    found = re.search(rf"{name}: ([\d,]+)", text)
    if found is None:
        raise SystemExit(f"rsync --stats printed no '{name}': {text[-300:]}")
    return int(found.group(1).replace(",", ""))


def rsync(old: Path, new: Path, tmp: Path) -> Row:
    dest = tmp / "dest" / "disk.raw"
    dest.parent.mkdir()
    shutil.copyfile(old, dest)
    shutil.copyfile(new, tmp / "disk.raw")    # same name: rsync compares it with dest/disk.raw
    result, t = timed(lambda: sh("rsync", "--no-whole-file", "--ignore-times", "--stats", tmp / "disk.raw",
                                 dest.parent))
    literal, sent, received = (stat(result.stdout, name) for name in ("Literal data", "Total bytes sent",
                                                                      "Total bytes received"))
    assert same(dest, new)
    return Row("rsync --no-whole-file", literal, 0.0, t, f"sent {sent} + received {received} B in all")


METHODS = (full_raw, full_zstd, chunks, patch_from, rsync)
DELTA_PACKAGES = ("base-files", "driver-virtio-blk", "linux")


def package_deltas(repo: Path) -> list[dict[str, Any]]:
    """``vcomp repo deltas`` on the x86_64/noarch versions of DELTA_PACKAGES: sizes and times."""
    store = RepoStore(repo)
    entries = [IndexEntry.from_dict(e) for e in store.read_state()["packages"].values()
               if e["name"] in DELTA_PACKAGES and e["arch"] in (ARCH, "noarch")]
    out = []
    for old, new in pairs(entries):
        start = time.monotonic()
        (delta,) = write_deltas(store, [old, new])
        made = time.monotonic() - start
        patch = store.targets_dir / (delta_name(old.sha256, new.sha256) + ("" if delta.size else ".none"))
        old_bytes = (store.targets_dir / stored_target(old.path, old.sha256)).read_bytes()
        start = time.monotonic()
        if delta.size:
            apply_delta(old_bytes, patch.read_bytes(), new.size, origin=str(patch))
        out.append({"package": new.name, "from": old.version_text, "to": new.version_text, "package-bytes": new.size,
                    "delta-bytes": delta.size, "make-s": made, "apply-s": time.monotonic() - start})
    return out


def main() -> int:
    ap = harness.parser(__doc__)
    ap.add_argument("--repo", type=Path, default=PROJECT / "images" / "repo", help="the sample repository "
                    "(made by `make demo`; default images/repo)")
    harness.add_json(ap)
    harness.add_tmpdir(ap)
    args = ap.parse_args()
    for tool in ("zstd", "rsync"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench/update.py needs {tool}: apt-get install {tool}")
    if not (args.repo / "metadata" / "timestamp.json").is_file():
        raise SystemExit(f"{args.repo} is not a repository: run `make demo` first (or pass --repo DIR)")
    doc: dict[str, Any] = {"scenarios": {}}
    with tempfile.TemporaryDirectory(prefix="vcomp-bench-update-", dir=args.tmpdir) as tmp_name:
        work = Path(tmp_name)
        env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH, "PYTHONPATH": str(PROJECT)}
        print(f"== building 4 variants of the minimal {ARCH} disk (cache: {env.get('VCOMP_CACHE', 'default')})")
        images = build_images(work, args.repo.resolve(), env)
        for title, old_name, new_name in SCENARIOS:
            old, new = images[old_name], images[new_name]
            size = new.stat().st_size
            rows = []
            for method in METHODS:
                scratch = work / "scratch"
                shutil.rmtree(scratch, ignore_errors=True)
                scratch.mkdir()
                rows.append(method(old, new, scratch))
            shutil.rmtree(work / "scratch", ignore_errors=True)
            print(f"\n== {title}: {old_name} -> {new_name}, image {size} bytes ({size / 2**20:.1f} MiB)")
            print(table([[r.method, f"{r.transferred:,}", f"{100 * r.transferred / size:.2f} %",
                          f"{r.prepare:.2f}", f"{r.apply:.2f}", r.note] for r in rows],
                        ["method", "bytes", "of image", "prepare s", "apply s", "note"]))
            ours = next(r for r in rows if r.method == "chunks (ours)")
            print(table([[f"chunks / {r.method}", f"{ours.transferred / max(r.transferred, 1):.3f}x"]
                         for r in rows if r is not ours], ["bytes ratio", "value"]))
            doc["scenarios"][title] = {"image-bytes": size, "methods": [vars(r) for r in rows]}
        doc["package-deltas"] = package_deltas(work / "repo")
        print(f"\n== package deltas (vcomp repo deltas: zstd -{LEVEL} with the older .vpk as prefix; kept below "
              f"{MAX_RATIO:.0%} of the package)")
        print(table([[d["package"], f"{d['from']} -> {d['to']}", f"{d['package-bytes']:,}",
                      f"{d['delta-bytes']:,}" if d["delta-bytes"] else "not kept",
                      f"{100 * d['delta-bytes'] / d['package-bytes']:.1f} %" if d["delta-bytes"] else "-",
                      f"{d['make-s']:.2f}",
                      f"{d['apply-s']:.3f}"] for d in doc["package-deltas"]],
                    ["package", "versions", ".vpk bytes", "delta bytes", "of .vpk", "make s", "apply s"]))
    write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
