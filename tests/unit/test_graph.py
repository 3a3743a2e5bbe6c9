"""Dependency graphs and size breakdowns (composer.graph): resolution through provides and alternatives, reverse
dependencies, depth, hostile names in dot, and the same bytes whatever the order of the index."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import pytest

from composer.graph import model, render, sizes
from composer.package.manifest import Entry, Manifest
from composer.repo.index import IndexEntry, package_target_path


def entry(name: str, version: str = "1.0.0", arch: str = "x86_64", *, deps: Mapping[str, str] | None = None,
          relations: Mapping[str, tuple[str, ...]] | None = None, provides: Sequence[str] = ()) -> IndexEntry:
    return IndexEntry(name=name, version=version, arch=arch, type="application", description=f"{name} it is",
                      license="MIT", dependencies=dict(deps or {}), provides=tuple(provides), conflicts=(),
                      features={}, capabilities={}, driver={}, size=10, installed_size=len(name) * 100,
                      sha256=hashlib.sha256(f"{name} {version} {arch}".encode()).hexdigest(),
                      path=package_target_path(name, version, arch), signer="00",
                      relations=MappingProxyType(dict(relations or {})))


ENTRIES = [
    entry("app", deps={"libc6": "2"}, relations={"requires": ("busybox-sysv | busybox-lean", "sh"),
                                                 "recommends": ("nano (>= 1.0)",)}),
    entry("libc6", "2.41.0", provides=("libc",)), entry("libc6", "2.36.0"),          # the newest is drawn
    entry("busybox-lean", "1.0.0", "noarch", provides=("sh", "editor = 1")),
    entry("nano", deps={"libc": "1"}, provides=("editor",)),
    entry("other", arch="aarch64", deps={"app": "1"}),                                 # another architecture
    entry("tool", deps={"app": "1", "missing": "1"}),
]


def test_dependencies_resolve_through_alternatives_and_provides() -> None:
    u = model.universe(ENTRIES, "x86_64")
    assert sorted(u.packages) == ["app", "busybox-lean", "libc6", "nano", "tool"]
    assert u.packages["libc6"].version == "2.41.0"
    g = model.graph(u, ["app"], title="app")
    assert [(e.source, e.target, e.kind) for e in g.edges] == [
        ("app", "busybox-lean", "depends"), ("app", "libc6", "depends"), ("app", "nano", "recommends"),
        ("nano", "libc6", "depends")]
    assert [n.name for n in g.nodes] == ["app", "busybox-lean", "libc6", "nano"] and g.roots == ("app",)


def test_reverse_dependencies_and_depth() -> None:
    u = model.universe(ENTRIES, "x86_64")
    r = model.graph(u, ["libc6"], title="libc6", reverse=True)
    assert [n.name for n in r.nodes] == ["app", "libc6", "nano", "tool"]
    one = model.graph(u, ["libc6"], title="libc6", reverse=True, depth=1)
    assert [n.name for n in one.nodes] == ["app", "libc6", "nano"]
    assert [n.name for n in model.graph(u, ["app"], title="app", depth=0).nodes] == ["app"]


def test_same_graph_bytes_whatever_the_index_order() -> None:
    outputs = set()
    for seed in range(5):
        shuffled = list(ENTRIES)
        random.Random(seed).shuffle(shuffled)
        u = model.universe(shuffled, "x86_64")
        outputs.add((render.to_dot(model.whole(u, title="t", roots=["app"])),
                     str(render.to_json(model.graph(u, ["app"], title="app")))))
    assert len(outputs) == 1


def test_hostile_names_are_labels_never_dot_syntax() -> None:
    evil = entry('x" -> y; z [label="pwn', deps={"a\\": "1"})
    dot = render.to_dot(model.whole(model.universe([evil, entry("a\\")], "x86_64"), title='t"}'))
    assert 'digraph "t\\"}" {' in dot
    assert 'label="x\\" -> y; z [label=\\"pwn 1.0.0"' in dot and 'label="a\\\\ 1.0.0"' in dot
    assert "n1 -> n0;" in dot   # ids, not names, in the edges


@pytest.mark.integration
def test_svg_is_graphviz_and_deterministic() -> None:
    g = model.graph(model.universe(ENTRIES, "x86_64"), ["app"], title="app <&>")
    first, second = render.to_svg(g), render.to_svg(g)
    assert first == second and b"<svg" in first and b"app &lt;&amp;&gt;" in first


def test_size_breakdown_sorts_packages_and_files() -> None:
    def manifest(*files: tuple[str, int]) -> Manifest:
        return Manifest(entries=(*(Entry(path=p, type="file", mode=0o644, size=s, sha256="0" * 64)
                                   for p, s in files), Entry(path="usr", type="dir", mode=0o755)),
                        payload_sha256="0" * 64, payload_size=1)
    b = sizes.breakdown("minimal", "x86_64", {("linux", "6.1"): manifest(("boot/vmlinuz", 900), ("boot/cfg", 5)),
                                              ("busybox", "1.37"): manifest(("usr/bin/busybox", 300)),
                                              ("<evil>", "1"): manifest(("usr/share/x", 5))}, top=3)
    assert b.total == 1210 and [p.name for p in b.packages] == ["linux", "busybox", "<evil>"]
    assert [f.path for f in b.files] == ["boot/vmlinuz", "usr/bin/busybox", "boot/cfg"]
    svg = sizes.to_svg(b)
    assert "&lt;evil&gt;" in svg and "<evil>" not in svg and svg == sizes.to_svg(b)
    assert b.to_dict()["largest_files"][0] == {"path": "/boot/vmlinuz", "package": "linux", "size": 900}


def test_cli_errors_are_one_line_with_a_hint(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from composer.cli.main import main
    assert main(["graph", "nano"]) == 1
    err = capsys.readouterr().err
    assert "'nano' is a package name: which repository?" in err and "--repo" in err and "Traceback" not in err
    assert main(["graph", "nano", "--repo", str(tmp_path)]) == 1
    assert "which trust root?" in capsys.readouterr().err
    assert main(["graph", str(tmp_path / "none.yaml"), "--depth", "-1"]) == 1
    assert "--depth -1: must be 0 or more" in capsys.readouterr().err
    assert main(["size", "nano"]) == 1
    assert "a size breakdown is of a profile's lock" in capsys.readouterr().err
    assert main(["repo", "stats", str(tmp_path / "missing.log")]) == 1
    assert "which repository do the logs belong to?" in capsys.readouterr().err


def test_a_graph_too_large_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    u = model.universe(ENTRIES, "x86_64")
    monkeypatch.setattr(model, "MAX_NODES", 2)
    with pytest.raises(model.GraphTooLarge):
        model.graph(u, ["app"], title="app")
    assert len(model.graph(u, ["app"], title="app", depth=0).nodes) == 1
