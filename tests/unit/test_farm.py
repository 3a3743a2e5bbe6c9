"""The build farm (issue 20 item 6, docs/farm.md): [build] requires, Dask workers, the signed shared cache.

The farm test starts a real `dask scheduler` and two `dask worker`s as processes on 127.0.0.1.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.errors import UserError
from composer.farm import cache as shared
from composer.farm import engine
from composer.fsutil import sha256_file
from composer.package import graph
from composer.package.build import build_all
from composer.package.extract import extract_package
from composer.trust.keys import SigningKey, load_signing_key
from tests.daskcluster import dask_cluster
from tests.httpserve import Quiet, serving

RECIPES = Path(__file__).resolve().parents[1] / "data" / "farm"
REPO = Path(__file__).resolve().parents[2]
# w1 also builds aarch64 "natively": every aarch64 build must go there, x86_64 builds to either
RESOURCES = ("arch-x86_64=1", "arch-x86_64=1,arch-aarch64=1")
NAMES = ["greeter-1.0.0-x86_64.vpk", "libgreet-1.0.0-x86_64.vpk", "libgreet-dev-1.0.0-x86_64.vpk",
         "motd-1.0.0-x86_64.vpk"]


def node(recipe: str, requires: tuple[str, ...] = (), dev: bool = False) -> graph.Node:
    return graph.Node(recipe=recipe, provides=(recipe, *((recipe + "-dev",) if dev else ())), requires=requires)


def test_the_order_puts_a_dependency_first_and_keeps_the_rest_sorted() -> None:
    g = graph.plan([node("a", ("z-dev",)), node("m"), node("z", dev=True)])
    assert g.order == ("z", "a", "m")
    assert g.needs["a"] == ("z",)
    assert g.dependents("z") == ("a",)


def test_a_cycle_is_one_line_naming_it() -> None:
    with pytest.raises(UserError) as err:
        graph.plan([node("a", ("b",)), node("b", ("c",)), node("c", ("a",))])
    assert err.value.message == "build dependency cycle: a -> b -> c -> a"


def test_a_requirement_no_recipe_builds_is_reported_for_that_recipe(tmp_path: Path, dev_key: SigningKey) -> None:
    recipes = tmp_path / "recipes"
    shutil.copytree(RECIPES, recipes)
    toml = recipes / "greeter" / "recipe.toml"
    toml.write_text(toml.read_text().replace('"libgreet-dev"', '"libnope-dev"'))
    with pytest.raises(UserError) as err:
        build_all(recipes, "x86_64", dev_key, tmp_path / "out", cache=tmp_path / "cache")
    assert "greeter: " in err.value.message and "no recipe in the set builds libnope-dev" in err.value.message
    assert sorted(p.name for p in (tmp_path / "out").glob("*.vpk")) == NAMES[1:]   # the rest was built


def test_a_cycle_in_a_recipe_folder_stops_build_all_with_one_line(tmp_path: Path, dev_key: SigningKey) -> None:
    recipes = tmp_path / "recipes"
    shutil.copytree(RECIPES, recipes)
    toml = recipes / "libgreet" / "recipe.toml"
    toml.write_text(toml.read_text().replace("source-date-epoch = 1700000000",
                                             'source-date-epoch = 1700000000\nrequires = ["greeter"]'))
    with pytest.raises(UserError) as err:
        build_all(recipes, "x86_64", dev_key, tmp_path / "out", cache=tmp_path / "cache")
    assert err.value.message == "build dependency cycle: greeter -> libgreet -> greeter"
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.vpk"))


def test_an_entry_signed_by_another_key_or_with_a_changed_blob_is_refused(tmp_path: Path, dev_key: SigningKey,
                                                                          keydir: Path) -> None:
    store = shared.DirStore(tmp_path / "shared")
    digest = "ab" * 32
    shared.push(store, digest, [("x-1.0.0-x86_64.vpk", b"package bytes")], dev_key)
    (tmp_path / "a").mkdir()
    assert shared.fetch(store, digest, dev_key.public, tmp_path / "a")[1] == ""
    assert (tmp_path / "a" / "x-1.0.0-x86_64.vpk").read_bytes() == b"package bytes"
    other = load_signing_key(keydir / "other.key")
    assert shared.fetch(store, digest, other.public, tmp_path)[1] == "unsigned or signed by another key"
    assert shared.fetch(store, "cd" * 32, dev_key.public, tmp_path)[1] == "absent"
    blob = next((tmp_path / "shared" / "blobs").iterdir())
    blob.write_bytes(b"evil bytes")
    assert shared.fetch(store, digest, dev_key.public, tmp_path)[1] == "x-1.0.0-x86_64.vpk does not match its " \
                                                                        "signed sha256"


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[str]:
    """A `dask scheduler` and two `dask worker`s (processes) on 127.0.0.1; yields the scheduler file."""
    with dask_cluster(tmp_path, RESOURCES) as scheduler_file:
        yield scheduler_file


def test_two_workers_build_the_graph_and_a_cold_machine_downloads_everything(
        cluster: str, tmp_path: Path, dev_key: SigningKey) -> None:
    from distributed import Client
    serial = tmp_path / "serial"
    build_all(RECIPES, "x86_64", dev_key, serial, cache=tmp_path / "cache")
    lines: list[tuple[str, str]] = []
    with Client(scheduler_file=cluster, timeout=60) as client:  # type: ignore[no-untyped-call]
        client.wait_for_workers(2, timeout=60)
        assert engine.native_resources(client, "x86_64") == {"arch-x86_64": 1}
        assert engine.native_resources(client, "riscv64") == {}       # cross builds run anywhere
        native = engine.farm_build_all(RECIPES, "aarch64", dev_key, tmp_path / "aarch64", client=client,
                                       cache=tmp_path / "cache")
        assert set(native.placed.values()) == {"w1"}, native.placed
        store = shared.DirStore(tmp_path / "shared")
        first = engine.farm_build_all(RECIPES, "x86_64", dev_key, tmp_path / "farm", client=client,
                                      cache=tmp_path / "cache", store=store,
                                      progress=lambda n, s: lines.append((n, s)))
        assert first.counts == {"built": 3, "fetched": 0, "unchanged": 0}
        # the dependency finished before its dependent started
        assert lines.index(("libgreet", next(s for n, s in lines if n == "libgreet" and s.startswith("built")))) \
            < lines.index(("greeter", "building"))
        # a second machine with a cold cache: the shared cache served by a plain static HTTP server, read-only
        with serving(tmp_path / "shared") as url:
            cold = engine.farm_build_all(RECIPES, "x86_64", dev_key, tmp_path / "cold", client=client,
                                         cache=tmp_path / "cold-cache",
                                         store=shared.open_store(url, read_only=True))
        assert cold.counts == {"built": 0, "fetched": 3, "unchanged": 0}
        # a tampered entry is refused and that recipe is rebuilt, never used
        tampered = tmp_path / "tampered"
        shutil.copytree(tmp_path / "shared", tampered)
        (tampered / "blobs" / sha256_file(serial / "motd-1.0.0-x86_64.vpk")).write_bytes(b"not the package")
        again = engine.farm_build_all(RECIPES, "x86_64", dev_key, tmp_path / "again", client=client,
                                      cache=tmp_path / "cache", store=shared.ReadOnly(shared.DirStore(tampered)))
        assert again.counts == {"built": 1, "fetched": 2, "unchanged": 0}
        # a failing recipe: one line for it and one for what needs it; the rest is built
        broken = tmp_path / "broken"
        shutil.copytree(RECIPES, broken)
        toml = broken / "libgreet" / "recipe.toml"
        toml.write_text(toml.read_text().replace("mkdir -p", "false; mkdir -p", 1))
        with pytest.raises(UserError) as err:
            engine.farm_build_all(broken, "x86_64", dev_key, tmp_path / "broken-out", client=client,
                                  cache=tmp_path / "cache")
        shown = [line.strip() for line in err.value.message.splitlines()]
        assert shown[0] == "2 of the recipes in " + str(broken) + " failed to build", shown
        assert any(line.startswith("greeter: not built: it needs libgreet, which failed") for line in shown)
        assert any(line.startswith("libgreet: ") and "(command)" in line for line in shown), shown
        assert [p.name for p in (tmp_path / "broken-out").glob("*.vpk")] == ["motd-1.0.0-x86_64.vpk"]
    for out in ("farm", "cold", "again"):
        assert sorted(p.name for p in (tmp_path / out).glob("*.vpk")) == NAMES
        for name in NAMES:
            assert (tmp_path / out / name).read_bytes() == (serial / name).read_bytes(), (out, name)
    root = tmp_path / "root"
    root.mkdir()
    extract_package(tmp_path / "cold" / "greeter-1.0.0-x86_64.vpk", root, trusted=dev_key.public)
    assert (root / "usr/share/greeter/greeting").read_text() == '#define GREETING "hello from libgreet"\n'


class PutHandler(Quiet):
    """A static server that also accepts PUT (as a WebDAV server would) into its directory."""

    def do_PUT(self) -> None:
        target = Path(self.directory) / self.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(201)
        self.end_headers()


def test_an_http_cache_is_written_by_put_and_read_by_get(tmp_path: Path, dev_key: SigningKey) -> None:
    (tmp_path / "served").mkdir()
    (tmp_path / "out").mkdir()
    digest = "12" * 32
    with serving(tmp_path / "served", handler=PutHandler) as url:
        store = shared.open_store(url)
        shared.push(store, digest, [("x-1.0.0-x86_64.vpk", b"bytes")], dev_key)
        assert shared.fetch(store, digest, dev_key.public, tmp_path / "out")[1] == ""
        shared.push(shared.open_store(url, read_only=True), "34" * 32, [("y-1.0.0-x86_64.vpk", b"y")], dev_key)
    assert (tmp_path / "out" / "x-1.0.0-x86_64.vpk").read_bytes() == b"bytes"
    assert not (tmp_path / "served" / "entries" / f"{'34' * 32}.json").exists()   # read-only: never written
    with pytest.raises(UserError, match="cannot connect"):
        shared.open_store(url).get("entries/x.json", 100)     # the server is gone: one line


def test_building_one_recipe_that_needs_others_says_to_use_build_all(tmp_path: Path, dev_key: SigningKey) -> None:
    from composer.package.build import build
    with pytest.raises(UserError, match=r"greeter/recipe.toml:\d+:\d+: recipe 'greeter' builds against packages "
                                        r"of other recipes \(libgreet-dev\)") as err:
        build(RECIPES / "greeter", "x86_64", dev_key, tmp_path / "out", cache=tmp_path / "cache")
    assert "pkg build-all" in err.value.hint


def test_file_names_with_an_epoch_are_kept_and_paths_refused(tmp_path: Path, dev_key: SigningKey) -> None:
    store = shared.DirStore(tmp_path / "shared")
    epoch = "busybox-1%3a1.37.0-6+b9-x86_64.vpk"     # an epoch's colon, as package file names write it
    shared.push(store, "ef" * 32, [(epoch, b"epoch")], dev_key)
    assert shared.fetch(store, "ef" * 32, dev_key.public, tmp_path / "a")[1] == ""
    assert (tmp_path / "a" / epoch).read_bytes() == b"epoch"
    for bad in ("../x.vpk", "a/b.vpk", "x.tar", ".vpk"):
        shared.push(store, "fe" * 32, [(bad, b"up")], dev_key)
        assert shared.fetch(store, "fe" * 32, dev_key.public, tmp_path / "b")[1] == "bad file list", bad
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_an_s3_cache_is_written_and_read_through_a_real_s3_server(tmp_path: Path, dev_key: SigningKey,
                                                                 s3: str) -> None:
    """--shared-cache s3://BUCKET/PREFIX (moto's S3 server on 127.0.0.1, boto3 as for repo publish --to s3://)."""
    (tmp_path / "out").mkdir()
    digest = "56" * 32
    store = shared.open_store(f"s3://{s3}/farm/cache")
    assert shared.fetch(store, digest, dev_key.public, tmp_path / "out")[1] == "absent"
    shared.push(store, digest, [("x-1.0.0-x86_64.vpk", b"bytes"), ("x-dev-1.0.0-x86_64.vpk", b"dev")], dev_key)
    assert shared.fetch(store, digest, dev_key.public, tmp_path / "out")[1] == ""
    assert (tmp_path / "out" / "x-dev-1.0.0-x86_64.vpk").read_bytes() == b"dev"
    shared.push(shared.open_store(f"s3://{s3}/farm/cache", read_only=True), "78" * 32,
                [("y-1.0.0-x86_64.vpk", b"y")], dev_key)
    assert shared.fetch(store, "78" * 32, dev_key.public, tmp_path / "out")[1] == "absent"   # never written
    with pytest.raises(UserError, match="NoSuchBucket"):
        shared.open_store("s3://no-such-bucket/x").put("entries/x.json", b"{}")
    with pytest.raises(UserError, match="not an S3 URL"):
        shared.open_store("s3:///nobucket")
