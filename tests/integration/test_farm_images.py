"""Image builds on the farm (issue 20 item 6, docs/farm.md "Image builds"): a `dask scheduler` and two
`dask worker`s started as processes on 127.0.0.1 build the outputs of the build sweeps' small ``tiny`` profile
(rootfs and initramfs, x86_64 and aarch64: four jobs) into a shared cache; then `vcomp build` on a machine with a
cold cache (a new VCOMP_CACHE) and the shared cache read only (a .pub key) takes every output from it and builds
nothing, with outputs identical to the workers'; a tampered blob is refused and that output built instead."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest

from composer.farm import images
from composer.trust.keys import generate
from tests.conftest import REPO
from tests.daskcluster import dask_cluster
from tests.reliability.killsweep import VCOMP
from tests.reliability.scenarios_build import PROFILE, vcomp, world

pytestmark = pytest.mark.integration


def test_two_workers_build_a_profiles_outputs_and_a_cold_machine_takes_them_from_the_shared_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from distributed import Client
    work = tmp_path / "w"
    world(work, packages=True)   # tiny, locked; its packages cached; no image in the cache
    key, pub, _ = generate("farm", tmp_path / "keys")
    shared = tmp_path / "shared"
    monkeypatch.setenv("VCOMP_CACHE", str(work / "cache"))           # the workers' cache (they inherit it)
    monkeypatch.setenv("VCOMP_SHARED_CACHE", str(shared))
    monkeypatch.setenv("VCOMP_SHARED_CACHE_KEY", str(key))
    profile = str((work / PROFILE).resolve())
    jobs = [images.ImageJob(profile=profile, arch=a, output=o) for a in ("x86_64", "aarch64")
            for o in ("rootfs", "initramfs")]
    lines: list[str] = []
    with dask_cluster(tmp_path, ("arch-x86_64=1", "arch-x86_64=1")) as scheduler_file, \
            Client(scheduler_file=scheduler_file, timeout=60) as client:  # type: ignore[no-untyped-call]
        client.wait_for_workers(2, timeout=60)
        results = images.farm_images(client, jobs, progress=lines.append)
        assert [r.ok for r in results] == [True] * 4, lines
        assert not any(r.cached for r in results), lines
        assert {r.worker for r in results} == {"w0", "w1"}, f"both workers built: {lines}"
        # again through the CLI, from a `vcomp plan --matrix` document: nothing built
        matrix = tmp_path / "matrix.json"
        matrix.write_text(json.dumps({"include": [{"profile": j.profile, "arch": j.arch, "output": j.output}
                                                  for j in jobs]}))
        address = json.loads(Path(scheduler_file).read_text())["address"]
        r = vcomp(work, "build-matrix", str(matrix), "--scheduler", address, "--json",
                  env={"VCOMP_CACHE": str(work / "cache")})
        assert r.returncode == 0, r.stdout + r.stderr
        doc = json.loads(r.stdout)
        jsonschema.validate(doc, json.loads((REPO / "schemas" / "build-matrix.schema.json").read_text()))
        assert [j["cached"] for j in doc["jobs"]] == [True] * 4, doc
    entries = sorted((shared / "images").glob("*.json"))
    assert len(entries) == 4, entries

    # a cold machine: its own empty cache (packages too), the shared cache read only
    cold = {"VCOMP_CACHE": str(tmp_path / "cold-cache"), "VCOMP_SHARED_CACHE": str(shared),
            "VCOMP_SHARED_CACHE_KEY": str(pub)}
    r = vcomp(work, "build", PROFILE, "--images", "cold-out", env=cold)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (r.stdout + r.stderr).count("taken from the shared cache") == 4, r.stdout + r.stderr
    signed = {(f[0], f[1]) for e in entries for f in json.loads(e.read_text())["signed"]["files"]}
    for arch in ("x86_64", "aarch64"):
        manifest = json.loads((work / "cold-out" / "tiny" / arch / "manifest.json").read_text())
        for o in manifest["outputs"]:
            for f in o["files"]:
                assert (f["path"], f["sha256"]) in signed, (arch, f)   # the bytes the workers built

    # a tampered blob: refused, said once, that output built here instead
    sha = next(f[1] for e in entries for f in json.loads(e.read_text())["signed"]["files"] if f[0] != "contents.json")
    blob = shared / "blobs" / sha   # one output's own file (contents.json is shared by an arch's outputs)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 1
    blob.write_bytes(bytes(data))
    r = vcomp(work, "build", PROFILE, "--images", "cold-out2", env={**cold, "VCOMP_CACHE": str(tmp_path / "c2")})
    assert r.returncode == 0, r.stdout + r.stderr
    text = r.stdout + r.stderr
    assert text.count("does not match its signed sha256; building instead") == 1, text
    assert text.count("taken from the shared cache") == 3, text

    # vcomp reconcile --workers 1 in a git checkout: the plan's four jobs run on a local cluster first (its worker
    # builds the output whose blob was tampered with, and shares it), then reconcile builds nothing and boots
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    subprocess.run([*git, "add", "profiles"], check=True)
    subprocess.run([*git, "commit", "-qm", "tiny"], check=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "VCOMP_CACHE": str(tmp_path / "c3"),
           "VCOMP_SHARED_CACHE": str(shared), "VCOMP_SHARED_CACHE_KEY": str(key)}
    r = subprocess.run([*VCOMP, "reconcile", PROFILE, "--images", "rec-out", "--workers", "1"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=900, check=False)
    text = r.stdout + r.stderr
    assert r.returncode in (0, 2), text   # 2: a generation recorded (docs/exit-codes)
    # (the local cluster's worker shares this machine's cache: the build here finds the four outputs there)
    assert "farm: 4 image jobs, 1 built, 3 already built (cached)" in text, text
    assert text.count("unchanged: taken from the") == 4 and "generation 1 recorded" in text, text
    assert os.environ["VCOMP_SHARED_CACHE"] == str(shared)
