"""Package database queries over synthetic records, and verify against a real temporary root."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from composer.errors import UserError
from composer.pkgmgr import query

# ---------------------------------------------------------------- building records


def ent(path: str, type: str = "file", *, mode: int | None = None, data: bytes = b"", target: str = "",
        role: str = "asset") -> dict[str, Any]:
    """A manifest entry as ``Entry.to_dict()`` writes it; ``data`` is the file's content (kept for materialise)."""
    default = {"dir": 0o755, "symlink": 0o777}.get(type, 0o644)
    out: dict[str, Any] = {"path": path, "type": type, "mode": f"{default if mode is None else mode:04o}"}
    if type == "file":
        out.update(size=len(data), sha256=hashlib.sha256(data).hexdigest(), role=role, data=data)
    if type in ("symlink", "hardlink"):
        out["target"] = target
    return out


def rec(name: str, *, files: Iterable[dict[str, Any]] = (), deps: Mapping[str, Any] | None = None,
        provides: Iterable[str] = (), manual: bool = True, reason: str = "requested",
        features: Mapping[str, list[str]] | None = None, enabled: Iterable[str] | None = None) -> dict[str, Any]:
    """A record shaped like ``package_record``'s (metadata in ``Metadata.to_dict()`` layout)."""
    entries = sorted(files, key=lambda e: e["path"])
    pkg: dict[str, Any] = {"name": name, "version": "1.0.0", "description": f"the {name} package",
                           "license": "MIT", "type": "app", "arch": "x86_64"}
    if provides:
        pkg["provides"] = list(provides)
    metadata: dict[str, Any] = {"package": pkg, "security": {"context": "app"}}
    if deps:
        metadata["dependencies"] = dict(deps)
    if features:
        metadata["features"] = dict(features)
    out: dict[str, Any] = {
        "name": name, "version": "1.0.0", "arch": "x86_64", "metadata": metadata,
        "reason": reason if manual else f"dependency of {reason}", "manual": manual, "repository": "main",
        "signer": "dev", "sha256": "ab" * 32, "size": 1234, "capabilities": ["net"],
        "files": [{k: v for k, v in e.items() if k != "data"} for e in entries],
        "config": {e["path"]: e["sha256"] for e in entries if e["type"] == "file" and e["role"] == "config"},
    }
    if enabled is not None:
        out["features"] = list(enabled)
    return out


def db(*records: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in records}


def materialise(root: Path, *records_files: Iterable[dict[str, Any]]) -> None:
    """Create the entries (with ``data``) in ``root``, as the installer would."""
    for entries in records_files:
        for e in sorted(entries, key=lambda e: e["path"]):
            p, mode = root / e["path"], int(e["mode"], 8)
            if e["type"] == "dir":
                p.mkdir(exist_ok=True)
                p.chmod(mode)
            elif e["type"] == "file":
                p.write_bytes(e["data"])
                p.chmod(mode)
            elif e["type"] == "symlink":
                p.symlink_to(e["target"])
            elif e["type"] == "hardlink":
                os.link(root / e["target"], p)


# ---------------------------------------------------------------- list, info, files, owns


def sample() -> dict[str, dict[str, Any]]:
    return db(
        rec("app", files=[ent("usr", "dir"), ent("usr/bin", "dir"), ent("usr/bin/app", mode=0o755, data=b"app"),
                          ent("etc", "dir"), ent("etc/app.conf", data=b"x=1", role="config")],
            deps={"libc": "^2", "mta": "*", "extra": {"version": "1", "optional": True}}),
        rec("libc", files=[ent("usr", "dir"), ent("usr/lib", "dir"), ent("usr/lib/libc.so", data=b"libc"),
                           ent("usr/lib/libc.so.6", "symlink", target="libc.so")], manual=False, reason="app"),
        rec("postfix", provides=["mta"], files=[ent("usr", "dir"), ent("usr/bin", "dir"),
                                                ent("usr/bin/sendmail", data=b"s")], manual=False, reason="app"),
    )


def test_list_packages_sorted_and_filtered() -> None:
    rows = query.list_packages(sample())
    assert [r.name for r in rows] == ["app", "libc", "postfix"]
    assert rows[1] == query.PackageRow(name="libc", version="1.0.0", arch="x86_64", manual=False,
                                       reason="dependency of app")
    assert [r.name for r in query.list_packages(sample(), manual=True)] == ["app"]
    assert [r.name for r in query.list_packages(sample(), manual=False)] == ["libc", "postfix"]
    assert rows[0].to_dict() == {"name": "app", "version": "1.0.0", "arch": "x86_64", "manual": True,
                                 "reason": "requested"}


def test_info_summarises_the_record() -> None:
    i = query.info(sample(), "app")
    assert (i.name, i.description, i.license, i.manual, i.repository, i.signer) == \
        ("app", "the app package", "MIT", True, "main", "dev")
    assert i.files == 5 and i.installed_size == 6 and i.size == 1234
    assert i.config_files == ("/etc/app.conf",) and i.capabilities == ("net",)
    assert [d.name for d in i.dependencies] == ["extra", "libc", "mta"]
    assert query.info(sample(), "postfix").provides == ("mta",)
    d = i.to_dict()
    assert d["dependencies"] == {"extra": {"version": "1", "optional": True}, "libc": "^2", "mta": "*"}
    json.dumps(d)


def test_info_prefers_a_recorded_installed_size() -> None:
    records = db({**rec("a", files=[ent("a", data=b"123")]), "installed_size": 99})
    assert query.info(records, "a").installed_size == 99


def test_info_reads_flat_metadata_too() -> None:
    flat = {**rec("a"), "metadata": {"description": "flat", "license": "GPL", "provides": ["x"]}}
    i = query.info(db(flat), "a")
    assert (i.description, i.license, i.provides) == ("flat", "GPL", ("x",))


def test_unknown_package_says_did_you_mean() -> None:
    for call in (query.info, query.files, query.depends, query.rdepends):
        with pytest.raises(UserError) as exc:
            call(sample(), "ap")
        assert "'ap' is not installed" in exc.value.message and "app" in exc.value.hint


def test_files_are_sorted_absolute_with_types() -> None:
    rows = query.files(sample(), "libc")
    assert [(r.path, r.type, r.target) for r in rows] == [
        ("/usr", "dir", ""), ("/usr/lib", "dir", ""), ("/usr/lib/libc.so", "file", ""),
        ("/usr/lib/libc.so.6", "symlink", "libc.so")]


@pytest.mark.parametrize("path", ["/usr/bin/app", "usr/bin/app", "//usr//bin/./app", "/usr/lib/../bin/app",
                                  "./usr/bin/app"])
def test_owns_normalises_the_path(path: str) -> None:
    assert query.owns(sample(), path) == query.Owners(path="/usr/bin/app", packages=("app",))


def test_owns_a_directory_shared_by_packages() -> None:
    assert query.owns(sample(), "/usr/bin/").packages == ("app", "postfix")
    assert query.owns(sample(), "/usr").packages == ("app", "libc", "postfix")


def test_owns_an_unknown_path_is_an_error() -> None:
    with pytest.raises(UserError) as exc:
        query.owns(sample(), "/usr/bin/ap")
    assert exc.value.message == "no package owns /usr/bin/ap" and "/usr/bin/app" in exc.value.hint
    with pytest.raises(UserError) as exc:
        query.owns(sample(), "/usr/lib/python3/zzzzzz")
    assert exc.value.message == "no package owns /usr/lib/python3/zzzzzz" and "/usr/lib" in exc.value.hint
    with pytest.raises(UserError, match="no package owns /$"):
        query.owns(sample(), "/")


@given(st.lists(st.sampled_from(["", ".", "a", "b", ".."]), max_size=6), st.booleans())
def test_normalise_is_idempotent_and_relative(parts: list[str], lead: bool) -> None:
    once = query.normalise(("/" if lead else "") + "/".join(parts))
    assert query.normalise(once) == once and not once.startswith("/") and ".." not in once.split("/")


# ---------------------------------------------------------------- dependencies


def test_depends_resolves_by_name_and_provides_and_lists_unresolved_apart() -> None:
    records = sample()
    records["app"]["metadata"]["dependencies"]["gone"] = ">=1"
    d = query.depends(records, "app")
    assert d.resolved == (query.Need(dependency="libc", requirement="^2", providers=("libc",)),
                          query.Need(dependency="mta", requirement="*", providers=("postfix",)))
    assert d.unresolved == (query.Need(dependency="gone", requirement=">=1"),)  # 'extra' is optional: not in force
    json.dumps(d.to_dict())


def test_optional_dependencies_count_when_a_feature_enables_them() -> None:
    features = {"full": ["tls"], "tls": ["openssl/fips"]}
    deps = {"openssl": {"version": "3", "optional": True}}
    app = rec("app", deps=deps, features=features, enabled=["full"])
    records = db(app, rec("openssl", manual=False))
    assert [n.dependency for n in query.depends(records, "app").resolved] == ["openssl"]
    assert query.orphans(records) == ()
    records["app"] = rec("app", deps=deps, features=features)
    assert query.depends(records, "app").resolved == ()
    assert [r.name for r in query.orphans(records)] == ["openssl"]


def test_rdepends_by_name_and_by_provides() -> None:
    records = sample()
    assert query.rdepends(records, "postfix").dependents == (
        query.Dependent(package="app", dependency="mta", requirement="*"),)
    assert [d.package for d in query.rdepends(records, "libc").dependents] == ["app"]
    assert query.rdepends(records, "app").dependents == ()


def test_orphans_chain_without_a_root() -> None:
    records = db(rec("a", deps={"b": "*"}, manual=False), rec("b", deps={"c": "*"}, manual=False),
                 rec("c", manual=False), rec("m"))
    assert [r.name for r in query.orphans(records)] == ["a", "b", "c"]


def test_orphans_keeps_what_a_root_reaches_through_a_chain() -> None:
    records = db(rec("m", deps={"a": "*"}), rec("a", deps={"b": "*"}, manual=False),
                 rec("b", deps={"c": "*"}, manual=False), rec("c", manual=False), rec("lone", manual=False))
    assert [r.name for r in query.orphans(records)] == ["lone"]


def test_orphans_cycle_unreachable_and_reachable() -> None:
    cycle = db(rec("x", deps={"y": "*"}, manual=False), rec("y", deps={"x": "*"}, manual=False), rec("m"))
    assert [r.name for r in query.orphans(cycle)] == ["x", "y"]
    cycle["m"] = rec("m", deps={"y": "*"})
    assert query.orphans(cycle) == ()


def test_orphans_through_provides() -> None:
    records = db(rec("app", deps={"mta": "*"}), rec("postfix", provides=["mta"], deps={"libdb": "*"}, manual=False),
                 rec("libdb", manual=False), rec("exim", manual=False))
    assert [r.name for r in query.orphans(records)] == ["exim"]


names = st.sampled_from([f"p{i}" for i in range(8)])
wanted = st.sampled_from([f"p{i}" for i in range(8)] + ["v1", "v2"])


@given(st.dictionaries(names, st.tuples(st.booleans(), st.lists(wanted, max_size=3),
                                        st.lists(st.sampled_from(["v1", "v2"]), max_size=1))))
def test_orphans_properties(graph: dict[str, tuple[bool, list[str], list[str]]]) -> None:
    records = db(*(rec(n, manual=m, deps={d: "*" for d in ds}, provides=pv) for n, (m, ds, pv) in graph.items()))
    found = query.orphans(records)
    orphaned = {r.name for r in found}
    assert [r.name for r in found] == sorted(orphaned)
    assert not any(records[n]["manual"] for n in orphaned)
    kept = {n: r for n, r in records.items() if n not in orphaned}
    assert query.orphans(kept) == ()  # nothing kept depended on an orphan
    for name in orphaned:  # an orphan is needed by no kept package
        assert not [d for d in query.rdepends(records, name).dependents if d.package in kept]


# ---------------------------------------------------------------- verify


def installed(root: Path, *records: dict[str, Any], files: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    materialise(root, *files.values())
    return db(*records)


@pytest.fixture
def base() -> dict[str, list[dict[str, Any]]]:
    return {
        "app": [ent("opt", "dir"), ent("opt/app", "dir"), ent("opt/app/run", mode=0o755, data=b"#!/bin/sh\n"),
                ent("opt/app/data", data=b"data"), ent("opt/app/current", "symlink", target="run"),
                ent("opt/app/run2", "hardlink", target="opt/app/run", mode=0o755),
                ent("opt/app/app.conf", data=b"a=1\n", role="config"), ent("dev", "dir"),
                ent("dev/null", "chardev", mode=0o666)],
        "lib": [ent("opt", "dir"), ent("opt/lib.so", data=b"lib")],
    }


def make(root: Path, files: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    root.mkdir(exist_ok=True)
    return installed(root, *(rec(n, files=f) for n, f in files.items()), files=files)


def test_verify_clean_root(tmp_path: Path, base: dict[str, list[dict[str, Any]]]) -> None:
    records = make(tmp_path / "root", base)
    report = query.verify(tmp_path / "root", records)
    assert report.clean and [p.name for p in report.packages] == ["app", "lib"]
    assert report.packages[0] == query.PackageCheck(name="app")
    assert json.loads(json.dumps(report.to_dict()))["clean"] is True


def test_verify_finds_every_kind_of_difference(tmp_path: Path, base: dict[str, list[dict[str, Any]]]) -> None:
    root = tmp_path / "root"
    records = make(root, base)
    (root / "opt/app/data").write_bytes(b"DATA")  # same size, other hash
    (root / "opt/lib.so").write_bytes(b"longer")  # other size
    (root / "opt/app/run").chmod(0o700)
    (root / "opt/app/current").unlink()
    (root / "opt/app/current").symlink_to("/bin/sh")
    (root / "opt/app/run2").unlink()
    (root / "opt/app/run2").write_bytes(b"#!/bin/sh\n")
    (root / "opt/app/app.conf").write_bytes(b"a=2\n")
    (root / "opt/app/stray").write_bytes(b"?")  # opt/app is app's alone: reported
    (root / "opt/stray").write_bytes(b"?")  # opt is shared: not reported
    (root / "dev").rmdir()
    report = query.verify(root, records)
    app, lib = report.packages
    assert app.changed == (
        query.Problem(path="/opt/app/current", detail="points to /bin/sh, expected run"),
        query.Problem(path="/opt/app/data", detail="sha256 differs"),
        query.Problem(path="/opt/app/run", detail="mode 0700, expected 0755"),
        query.Problem(path="/opt/app/run2", detail="is no longer a hard link to /opt/app/run"))
    assert app.missing == (query.Problem(path="/dev", detail="not found"),)  # /dev/null: never created, skipped
    assert app.config_changed == (query.Problem(path="/opt/app/app.conf", detail="sha256 differs"),)
    assert app.extra == ("/opt/app/stray",)
    assert lib.changed == (query.Problem(path="/opt/lib.so", detail="size 6, expected 3"),)
    assert not report.clean and not app.clean and not lib.clean
    assert query.verify(root, records, ["lib"]).packages == (lib,)


def test_verify_a_changed_config_file_alone_leaves_the_package_clean(
        tmp_path: Path, base: dict[str, list[dict[str, Any]]]) -> None:
    root = tmp_path / "root"
    records = make(root, base)
    (root / "opt/app/app.conf").unlink()
    (root / "opt/app/app.conf").write_bytes(b"edited by the admin\n")
    app = query.verify(root, records, ["app"]).packages[0]
    assert app.config_changed == (query.Problem(path="/opt/app/app.conf", detail="size 20, expected 4"),)
    assert app.clean and not app.changed


def test_verify_missing_file_and_type_change(tmp_path: Path, base: dict[str, list[dict[str, Any]]]) -> None:
    root = tmp_path / "root"
    records = make(root, base)
    (root / "opt/app/data").unlink()
    (root / "opt/lib.so").unlink()
    (root / "opt/lib.so").mkdir()
    app, lib = query.verify(root, records).packages
    assert app.missing == (query.Problem(path="/opt/app/data", detail="not found"),)
    assert lib.changed == (query.Problem(path="/opt/lib.so", detail="is a dir, expected a file"),)


def test_verify_unknown_names_are_an_error(tmp_path: Path, base: dict[str, list[dict[str, Any]]]) -> None:
    records = make(tmp_path / "root", base)
    with pytest.raises(UserError, match="not installed in this root: ap, zzz") as exc:
        query.verify(tmp_path / "root", records, ["zzz", "app", "ap"])
    assert "app" in exc.value.hint


def test_verify_never_follows_a_parent_symlink_out_of_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_bytes(b"root:x:0:0\n")  # what the record expects: following would find it intact
    (outside / "shadow").write_bytes(b"secret")  # following would list it as extra
    files = {"base": [ent("etc", "dir"), ent("etc/passwd", data=b"root:x:0:0\n")]}
    root = tmp_path / "root"
    records = make(root, files)
    (root / "etc/passwd").unlink()
    (root / "etc").rmdir()
    (root / "etc").symlink_to(outside)
    base = query.verify(root, records).packages[0]
    assert base.changed == (query.Problem(path="/etc", detail="is a symlink, expected a dir"),)
    assert base.missing == (query.Problem(
        path="/etc/passwd", detail="not reachable: /etc is a symlink, not a directory (not followed)"),)
    assert base.extra == ()


def test_verify_does_not_read_through_etc_pointing_at_slash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[str, int | None]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        opened.append((os.fsdecode(path), dir_fd))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    files = {"base": [ent("etc", "dir"), ent("etc/hostname", data=b"x"), ent("usr", "dir"),
                      ent("usr/tool", data=b"tool")]}
    root = tmp_path / "root"
    records = make(root, files)
    (root / "etc/hostname").unlink()
    (root / "etc").rmdir()
    (root / "etc").symlink_to("/")
    (root / "usr/tool").unlink()
    (root / "usr/tool").symlink_to("/etc/hostname")  # the final component: never opened through
    monkeypatch.setattr(os, "open", spy)
    base = query.verify(root, records).packages[0]
    assert [(p.path, p.detail) for p in base.changed] == [("/etc", "is a symlink, expected a dir"),
                                                          ("/usr/tool", "is a symlink, expected a file")]
    assert base.missing == (query.Problem(
        path="/etc/hostname", detail="not reachable: /etc is a symlink, not a directory (not followed)"),)
    assert opened and all(dir_fd is not None or path == str(root) for path, dir_fd in opened)
    assert ("hostname", None) not in opened and not any(path.startswith("/etc") for path, _ in opened)


def test_verify_unopenable_root_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot open the directory"):
        query.verify(tmp_path / "nope", {})


def test_verify_on_a_running_system(tmp_path: Path, base: dict[str, list[dict[str, Any]]]) -> None:
    """vpk verify on /: the modes the packages' tmpfiles give are expected, what a run-time directory or /var
    holds is not extra and a mount point's mode is its file system's (docs/updates/vpk-on-device.md)."""
    root = tmp_path / "root"
    base["app"] += [ent("run", "dir"), ent("tmp", "dir"), ent("var", "dir"), ent("var/lib", "dir"),
                    ent("var/lib/app", "dir")]
    records = make(root, base)
    (root / "run" / "pid").write_text("1")
    (root / "var/lib/app/state").write_text("the service's data")
    (root / "tmp").chmod(0o1777)
    (root / "opt/app/run").chmod(0o2755)
    (root / "opt/app").chmod(0o700)
    assert query.verify(root, records).packages[0].changed == (
        query.Problem(path="/opt/app", detail="mode 0700, expected 0755"),
        query.Problem(path="/opt/app/run", detail="mode 2755, expected 0755"))
    records["app"]["metadata"]["actions"] = {"tmpfiles": [
        {"type": "z", "path": "/opt/app/run", "mode": "2755", "user": "root", "group": "root"},
        {"type": "d", "path": "/opt/app", "mode": "0700"}]}
    report = query.verify(root, records)
    assert report.clean, report
