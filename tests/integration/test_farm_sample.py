"""The build farm on the sample set (issue 20 item 6, docs/farm.md): a `dask scheduler` and two `dask worker`s
started as separate processes on 127.0.0.1 build every recipe of recipes/ for x86_64 into a shared cache, and
the packages are byte-identical to the sample repository's serial build (the session's sample_repo_base); then
a third run, a machine with a cold local cache and an empty output folder, reads the shared cache from a plain
static HTTP server and downloads everything, building nothing.

In `make test`: the sample set's x86_64 recipes take tens of seconds on two workers once the session's download
cache holds their Debian sources (the sample repository fixture fills it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.farm import cache as shared
from composer.farm import engine
from composer.repo.sample import SampleCheckout
from composer.trust.keys import load_signing_key
from tests.conftest import REPO
from tests.daskcluster import dask_cluster
from tests.httpserve import serving

pytestmark = pytest.mark.integration


def test_two_worker_processes_build_the_sample_set_and_a_cold_machine_downloads_it_all(
        sample_repo_base: Path, tmp_path: Path) -> None:
    from distributed import Client
    key = load_signing_key(SampleCheckout(root=REPO).key("developer"))
    serial = sample_repo_base / "images" / "packages" / "x86_64"
    expected = sorted(p.name for p in serial.glob("*.vpk"))
    assert len(expected) > 20, expected
    store = shared.DirStore(tmp_path / "shared")
    with dask_cluster(tmp_path, ("arch-x86_64=1", "arch-x86_64=1")) as scheduler_file, \
            Client(scheduler_file=scheduler_file, timeout=60) as client:  # type: ignore[no-untyped-call]
        client.wait_for_workers(2, timeout=60)
        stored: list[str] = []
        first = engine.farm_build_all(REPO / "recipes", "x86_64", key, tmp_path / "farm", client=client,
                                      store=store, progress=lambda name, status: stored.append(f"{name}: {status}"))
        assert not [line for line in stored if "shared cache" in line], stored
        assert first.counts["fetched"] == 0 and first.counts["built"] == len(first.placed) > 20, first.counts
        assert set(first.placed.values()) == {"w0", "w1"}, "both workers built"
        lines: list[str] = []
        with serving(tmp_path / "shared") as url:
            cold = engine.farm_build_all(REPO / "recipes", "x86_64", key, tmp_path / "cold", client=client,
                                         cache=tmp_path / "cold-cache",
                                         store=shared.open_store(url, read_only=True),
                                         progress=lambda name, status: lines.append(f"{name}: {status}"))
    assert cold.counts == {"built": 0, "fetched": first.counts["built"], "unchanged": 0}, \
        (cold.counts, [line for line in lines if "fetched" not in line])
    for out in ("farm", "cold"):
        assert sorted(p.name for p in (tmp_path / out).glob("*.vpk")) == expected, out
        for name in expected:
            assert (tmp_path / out / name).read_bytes() == (serial / name).read_bytes(), (out, name)
    print(f"farm: {first.counts['built']} recipes built on 2 workers in {first.seconds:.1f} s; "
          f"cold machine: {cold.counts['fetched']} fetched in {cold.seconds:.1f} s")
