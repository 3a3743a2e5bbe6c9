"""Hostile roots: nothing a root, its state files or a package contains makes vcomp act outside the root.

Every attack runs against a real root (installed with the image installer from real signed packages) with a
sentinel directory OUTSIDE it; the sentinel is snapshotted fully (paths, types, modes, owners, contents,
mtimes) before the attack and must be identical after it. Refusals must be one clear error naming the place.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from composer.cli.main import main
from composer.errors import ComposerError, UnsafeArchive, UserError
from composer.pkgmgr import db
from composer.pkgmgr.configure import configure
from composer.pkgmgr.install import Fetched, install
from composer.pkgmgr.transaction import RootChange, TransactionError, apply, recover, stage_dir
from composer.profile.load import load_profile
from composer.rootfs import Root, UnsafePath, path_problem
from composer.trust.keys import SigningKey
from tests.conftest import REPO
from tests.hostile import directory, fetched, file, hostile_package, new_key, symlink

EPOCH = 1_700_000_000
Snapshot = dict[str, tuple[Any, ...]]


def snapshot(base: Path) -> Snapshot:
    """Paths, types, modes, owners, contents (or link targets) and mtimes of everything below ``base``."""
    out: Snapshot = {}

    def record(p: Path) -> None:
        st = p.lstat()
        body: Any = None
        if stat.S_ISLNK(st.st_mode):
            body = os.readlink(p)
        elif stat.S_ISREG(st.st_mode):
            body = hashlib.sha256(p.read_bytes()).hexdigest()
        out[os.path.relpath(p, base)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                                         st.st_mtime_ns, body)

    record(base)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in sorted(dirnames + filenames):
            record(Path(dirpath) / name)
    out.pop("var/lib/vpk/lock", None)  # the root's lock file (issue 12) and the staging tree's traces in the
    if "var/lib/vpk" in out:           # mtime of its directory are not the root's state
        out["var/lib/vpk"] = (*out["var/lib/vpk"][:4], 0, None)
    return out


@dataclass
class World:
    tmp: Path
    root: Path
    sentinel: Path
    key: SigningKey

    def package(self, name: str, version: str, members: list[Any]) -> Fetched:
        return fetched(self.tmp / "pkgs", self.key, name, version, members)

    def records(self) -> dict[str, Any]:
        return {k: dict(v) for k, v in db.load(self.root).packages.items()}

    def apply(self, *changes: RootChange) -> None:
        apply(self.root, changes, operation="test", cause="test", epoch=EPOCH)


APP_V1 = [directory("usr"), directory("usr/share"), directory("usr/share/app"),
          file("usr/share/app/a", b"one\n"), file("usr/share/app/b", b"bee\n"), directory("etc"),
          file("etc/app.conf", b"conf\n")]
APP_V2 = [*APP_V1[:3], file("usr/share/app/a", b"two\n"), file("usr/share/app/c", b"sea\n"), APP_V1[5], APP_V1[6]]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    sentinel = tmp_path / "sentinel"
    (sentinel / "app").mkdir(parents=True)
    (sentinel / "a").write_text("precious\n")
    (sentinel / "app" / "a").write_text("precious too\n")
    (sentinel / "victim").mkdir()
    (sentinel / "link").symlink_to("/etc/hostname")
    os.chmod(sentinel / "a", 0o600)
    w = World(tmp=tmp_path, root=tmp_path / "root", sentinel=sentinel, key=new_key())
    install(w.root, [w.package("app", "1.0.0", APP_V1)], profile_digest="p", lock_digest="l", epoch=EPOCH)
    before = snapshot(sentinel)
    yield w
    assert snapshot(sentinel) == before, "the sentinel outside the root changed"


def _replace_by_link(w: World, rel: str, target: str) -> None:
    path = w.root / rel
    if path.is_dir() and not path.is_symlink():
        for child in sorted(path.rglob("*"), reverse=True):
            child.rmdir() if child.is_dir() and not child.is_symlink() else child.unlink()
        path.rmdir()
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(target)


def _one_line(exc: ComposerError) -> str:
    assert "\n" not in exc.message, exc.message
    return exc.message


# ---------------------------------------------------------------- symlinked components: install, upgrade, remove


LINKS = [("usr", "abs"), ("usr/share", "abs"), ("usr/share/app", "abs"), ("usr/share/app", "rel"),
         ("usr", "rel")]


def _target(w: World, rel: str, how: str) -> str:
    if how == "abs":
        return str(w.sentinel)
    depth = rel.count("/")
    return "../" * depth + "../sentinel"


@pytest.mark.parametrize(("rel", "how"), LINKS)
def test_upgrade_through_a_symlinked_component_is_refused(world: World, rel: str, how: str) -> None:
    _replace_by_link(world, rel, _target(world, rel, how))
    before = world.records()
    new = world.package("app", "2.0.0", APP_V2)
    with pytest.raises(ComposerError, match="is a symlink") as info:
        world.apply(RootChange(name="app", action="upgrade", old=before["app"], new=new))
    assert f"'{rel}'" in _one_line(info.value)
    assert world.records() == before
    assert not stage_dir(world.root).exists()


@pytest.mark.parametrize(("rel", "how"), LINKS)
def test_remove_through_a_symlinked_component_is_refused(world: World, rel: str, how: str) -> None:
    _replace_by_link(world, rel, _target(world, rel, how))
    before = world.records()
    with pytest.raises(ComposerError, match="is a symlink"):
        world.apply(RootChange(name="app", action="remove", old=before["app"]))
    assert world.records() == before


def test_install_of_a_new_package_below_a_planted_symlink_is_refused(world: World) -> None:
    """The reported case: ``ln -s /somewhere R/usr/share/nano`` then ``install nano``."""
    (world.root / "usr/share/nano").symlink_to(world.sentinel)
    nano = world.package("nano", "8.0.0", [directory("usr"), directory("usr/share"), directory("usr/share/nano"),
                                         *(file(f"usr/share/nano/{i}.nanorc", b"x") for i in range(43))])
    with pytest.raises(TransactionError, match="'usr/share/nano' is a symlink where the package has a directory"):
        world.apply(RootChange(name="nano", action="install", new=nano, manual=True))
    assert "nano" not in world.records()


def test_a_file_that_is_a_symlink_to_outside_is_replaced_not_written_through(world: World) -> None:
    _replace_by_link(world, "usr/share/app/a", str(world.sentinel / "a"))
    before = world.records()
    world.apply(RootChange(name="app", action="upgrade", old=before["app"], new=world.package("app", "2.0.0", APP_V2)))
    assert (world.root / "usr/share/app/a").read_text() == "two\n"
    assert not (world.root / "usr/share/app/a").is_symlink()


def test_a_downgrade_as_rollback_runs_it_through_a_symlink_is_refused(world: World) -> None:
    records = world.records()
    world.apply(RootChange(name="app", action="upgrade", old=records["app"], new=world.package("app", "2.0.0", APP_V2)))
    _replace_by_link(world, "usr/share", str(world.sentinel))
    after = world.records()
    with pytest.raises(ComposerError, match="is a symlink"):
        world.apply(RootChange(name="app", action="downgrade", old=after["app"],
                           new=world.package("app", "1.0.0", APP_V1)))
    assert world.records() == after


def test_a_directory_where_a_package_has_a_file_is_not_replaced(world: World) -> None:
    (world.root / "usr/share/app/c").mkdir()
    (world.root / "usr/share/app/c/admin-data").write_text("mine\n")
    before = world.records()
    with pytest.raises(TransactionError, match="'usr/share/app/c' is a directory in the root"):
        world.apply(RootChange(name="app", action="upgrade", old=before["app"],
                               new=world.package("app", "2.0.0", APP_V2)))
    assert (world.root / "usr/share/app/c/admin-data").read_text() == "mine\n"


def test_a_hard_link_to_an_outside_file_is_replaced_not_written_through(world: World) -> None:
    (world.root / "usr/share/app/a").unlink()
    os.link(world.sentinel / "a", world.root / "usr/share/app/a")
    before = world.records()
    world.apply(RootChange(name="app", action="upgrade", old=before["app"], new=world.package("app", "2.0.0", APP_V2)))
    assert (world.sentinel / "a").read_text() == "precious\n"
    assert (world.root / "usr/share/app/a").read_text() == "two\n"


# ---------------------------------------------------------------- reserved paths


@pytest.mark.parametrize("path", ["var/lib/vpk/db.json", "var/lib/vpk/journal.json", "var/lib/vpk/repositories.json",
                                  "etc/veridian/capabilities", "etc/veridian/modules.load"])
def test_a_package_shipping_a_reserved_path_is_refused(world: World, path: str) -> None:
    parts = path.split("/")
    members = [*(directory("/".join(parts[:i])) for i in range(1, len(parts))), file(path, b"{}")]
    evil = world.package("evil", "1.0.0", members)
    before = snapshot(world.root)
    with pytest.raises(UnsafeArchive, match="belongs to vcomp"):
        world.apply(RootChange(name="evil", action="install", new=evil, manual=True))
    assert snapshot(world.root) == before
    with pytest.raises(UnsafeArchive, match="belongs to vcomp"):
        install(world.tmp / "fresh", [evil], profile_digest="p", lock_digest="l", epoch=EPOCH)


def test_a_package_replacing_var_lib_by_a_symlink_is_refused(world: World) -> None:
    evil = world.package("evil", "1.0.0", [directory("var"), symlink("var/lib", str(world.sentinel))])
    with pytest.raises(UnsafeArchive, match="where vcomp needs the directory /var/lib"):
        world.apply(RootChange(name="evil", action="install", new=evil, manual=True))


# ---------------------------------------------------------------- crafted state files


def _db(w: World) -> dict[str, Any]:
    return dict(json.loads((w.root / "var/lib/vpk/db.json").read_bytes()))


def _write_db(w: World, doc: Any) -> None:
    (w.root / "var/lib/vpk/db.json").write_text(json.dumps(doc))


@pytest.mark.parametrize(("value", "why"), [
    ("../../sentinel/a", "has a '..' component"), ("/etc/passwd", "is absolute"), ("a\x00b", "NUL"),
    (5, "is a int, not a string"), ("usr//x", "empty component"), ("var/lib/vpk/db.json", "belongs to vcomp"),
])
def test_a_crafted_database_path_is_one_error_naming_file_and_entry(world: World, value: Any, why: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    doc = _db(world)
    doc["packages"]["app"]["files"][3]["path"] = value
    _write_db(world, doc)
    with pytest.raises(UserError, match="db.json: packages.app.files\\[3\\].path") as info:
        db.load(world.root)
    assert why in _one_line(info.value)
    assert main(["pkg", "--root", str(world.root), "remove", "app"]) != 0
    err = capsys.readouterr().err
    assert "db.json: packages.app.files[3].path" in err.splitlines()[0] and "Traceback" not in err


@pytest.mark.parametrize(("mutate", "where"), [
    (lambda d: d.update(packages=[]), "packages is list, not an object"),
    (lambda d: d.update(transaction="7"), "transaction is str, not an integer"),
    (lambda d: d["packages"]["app"].update(files={"x": 1}), "packages.app.files is dict, not an array"),
    (lambda d: d["packages"]["app"]["files"][0].update(type="door"), "packages.app.files[0].type 'door'"),
    (lambda d: d["packages"]["app"]["files"][0].update(mode="rwx"), "packages.app.files[0].mode"),
    (lambda d: d["packages"]["app"]["config"].update({"../x": "0" * 64}), "packages.app.config key '../x'"),
    (lambda d: d["packages"].update({"../x": d["packages"]["app"]}), "packages key '../x' is not a package name"),
    (lambda d: d["packages"]["app"]["metadata"].update(dependencies=["x"]), "packages.app.metadata.dependencies"),
    (lambda d: d["packages"]["app"].update(manual="yes"), "packages.app.manual is str, not a bool"),
    (lambda d: d["packages"]["app"]["files"].append({"path": "usr/h", "type": "hardlink", "mode": "0644",
                                                     "target": "/etc/shadow"}), "packages.app.files[7].target"),
])
def test_a_crafted_database_structure_is_one_error(world: World, mutate: Callable[[dict[str, Any]], None],
                                                   where: str) -> None:
    doc = _db(world)
    mutate(doc)
    _write_db(world, doc)
    with pytest.raises(UserError) as info:
        db.load(world.root)
    assert where in _one_line(info.value) and "var/lib/vpk/db.json" in info.value.message


def test_a_deeply_nested_database_is_a_limit_error(world: World) -> None:
    (world.root / "var/lib/vpk/db.json").write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(UserError, match="max_depth"):
        db.load(world.root)


@pytest.mark.parametrize(("name", "doc", "where"), [
    ("history.json", [{"id": "1"}], "history.json: [0].id is str"),
    ("history.json", {"id": 1}, "history.json: the document is dict, not an array"),
    ("history.json", [{"id": 2, "packages": [{"name": "../x"}]}], "history.json: [0].packages[0].name"),
    ("repositories.json", [{"name": "x", "url": 5, "root": {}}], "repositories.json: [0].url is int"),
    ("repositories.json", "x", "repositories.json: the document is str"),
])
def test_crafted_history_and_repositories_are_one_error(world: World, name: str, doc: Any, where: str) -> None:
    (world.root / "var/lib/vpk" / name).write_text(json.dumps(doc))
    with pytest.raises(UserError) as info:
        db.load(world.root)
    assert where in _one_line(info.value)


def _journal(w: World, ops: list[Any], transaction: Any = 99) -> None:
    (w.root / "var/lib/vpk/journal.json").write_text(json.dumps({"transaction": transaction, "ops": ops}))


@pytest.mark.parametrize(("ops", "where"), [
    ([{"op": "delete", "path": "../sentinel/a"}], "ops[0].path '../sentinel/a' has a '..' component"),
    ([{"op": "place", "path": "/etc/passwd", "package": "app", "source": "x"}],
     "ops[0].path '/etc/passwd' is absolute"),
    ([{"op": "mkdir", "path": "a", "mode": "0755"}, {"op": "exec", "path": "x"}], "ops[1].op 'exec' is not one of"),
    ([{"op": "place", "path": "usr/x", "package": "app", "source": "../../../sentinel/a"}], "ops[0].source"),
    ([{"op": "place", "path": "usr/x", "package": "../app", "source": "x"}], "ops[0].package"),
    ([{"op": "rmdir", "path": "usr/x", "mode": 493}], "ops[0].mode is int"),
    ([{"op": "delete", "path": "usr\x00x"}], "ops[0].path"),
    ("all", "ops is str, not an array"),
])
def test_a_crafted_journal_is_one_error_and_nothing_is_done(world: World, ops: Any, where: str) -> None:
    _journal(world, ops)
    before = snapshot(world.root)
    with pytest.raises(UserError) as info:
        recover(world.root)
    assert f"{world.root}/var/lib/vpk/journal.json: {where}" in _one_line(info.value)
    assert snapshot(world.root) == before


def test_a_journal_with_a_non_integer_transaction_is_refused(world: World) -> None:
    _journal(world, [], transaction="1; rm -rf /")
    with pytest.raises(UserError, match="journal.json: transaction is str, not an integer"):
        recover(world.root)


@pytest.mark.parametrize("op", [
    {"op": "mkdir", "path": "usr/share/app/victim", "mode": "0755"},
    {"op": "place", "path": "usr/share/app/a", "package": "app", "source": "usr/share/app/a"},
    {"op": "rmdir", "path": "usr/share/app/gone", "mode": "0755"},
    {"op": "save", "path": "usr/share/app/a"},
])
def test_recovery_never_undoes_through_a_symlink(world: World, op: dict[str, Any]) -> None:
    """A journal that is valid, but whose paths now lead through a symlink planted after the crash."""
    _replace_by_link(world, "usr/share/app", str(world.sentinel))
    _journal(world, [op])
    with pytest.raises(UnsafePath, match="'usr/share/app' is a symlink"):
        recover(world.root)


def test_a_legacy_journal_with_host_paths_never_uses_them(world: World) -> None:
    """The old journal format carried host paths (src, backup): they are ignored, the locations are derived."""
    victim = world.sentinel / "a"
    _journal(world, [{"op": "delete", "path": "usr/share/app/b", "backup": str(victim)},
                     {"op": "place", "path": "usr/share/app/z", "package": "app", "source": "usr/share/app/z",
                      "src": str(victim), "backup": str(world.sentinel / "app")}])
    assert "rolled back" in (recover(world.root) or "")
    assert (world.root / "usr/share/app/b").read_text() == "bee\n"


# ---------------------------------------------------------------- verify


def test_verify_does_not_read_through_a_planted_symlink(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    _replace_by_link(world, "usr/share/app", str(world.sentinel / "app"))
    assert main(["pkg", "--root", str(world.root), "verify"]) != 0
    out = capsys.readouterr().out
    assert "missing /usr/share/app/a" in out and "not followed" not in out.splitlines()[-1]


# ---------------------------------------------------------------- the layer itself


def test_chmod_and_chown_never_act_through_a_symlink_or_a_shared_hard_link(world: World) -> None:
    (world.root / "etc/link").symlink_to(world.sentinel / "a")
    os.link(world.sentinel / "app" / "a", world.root / "etc/hard")
    _replace_by_link(world, "usr/share/app", str(world.sentinel / "app"))
    with Root.open(world.root) as r:
        for rel in ("etc/link", "etc/hard", "usr/share/app/a"):
            with pytest.raises(UnsafePath):
                r.chmod(rel, 0o777)
            with pytest.raises(UnsafePath):
                r.chown(rel, 1234, 1234)
        with pytest.raises(UnsafePath, match="is a symlink"):
            r.utime("usr/share/app/a", (0, 0))
        r.utime("etc/link", (0, 0))  # the link's own times, never the target's
    (world.root / "etc/hard").unlink()  # back to one link: the sentinel is compared with its own nlink


@pytest.mark.parametrize("rel", ["", ".", "..", "../x", "/etc", "a//b", "a/./b", "a\x00", "a\\b", "x" * 256,
                                 "a/" * 2100 + "a"])
def test_the_one_path_check_refuses(rel: str) -> None:
    assert path_problem(rel) is not None


def test_every_root_operation_refuses_a_symlinked_component(world: World) -> None:
    _replace_by_link(world, "usr/share/app", str(world.sentinel / "app"))
    calls: list[Callable[[Root], object]] = [
        lambda r: r.write_bytes("usr/share/app/new", b"x"), lambda r: r.read_bytes("usr/share/app/a"),
        lambda r: r.mkdir("usr/share/app/d"), lambda r: r.makedirs("usr/share/app/d/e"),
        lambda r: r.unlink("usr/share/app/a"), lambda r: r.rmdir("usr/share/app/victim"),
        lambda r: r.rmtree("usr/share/app/victim"), lambda r: r.rename("usr/share/app/a", "etc/x"),
        lambda r: r.rename("etc/app.conf", "usr/share/app/a"), lambda r: r.symlink("/x", "usr/share/app/l"),
        lambda r: r.link("etc/app.conf", "usr/share/app/h"), lambda r: r.listdir("usr/share/app"),
        lambda r: r.sha256("usr/share/app/a"), lambda r: r.readlink("usr/share/app/link"),
        lambda r: r.lstat("usr/share/app/a"), lambda r: r.subdir("usr/share/app"),
    ]
    with Root.open(world.root) as r:
        for call in calls:
            with pytest.raises(UnsafePath, match="'usr/share/app' is a symlink"):
                call(r)


def test_the_layer_works_on_plain_paths_and_rmtree_never_follows(world: World) -> None:
    with Root.open(world.root) as r:
        assert r.makedirs("opt/x/y", 0o750) == ["opt", "opt/x", "opt/x/y"]
        r.write_bytes("opt/x/y/f", b"data", mode=0o600)
        assert (r.read_bytes("opt/x/y/f"), r.sha256("opt/x/y/f")) == (b"data", hashlib.sha256(b"data").hexdigest())
        assert stat.S_IMODE(r.lstat("opt/x/y/f").st_mode) == 0o600  # type: ignore[union-attr]
        r.chmod("opt/x/y/f", 0o644)
        r.utime("opt/x/y/f", (EPOCH * 10**9, EPOCH * 10**9))
        assert (world.root / "opt/x/y/f").stat().st_mtime == EPOCH
        r.symlink(str(world.sentinel), "opt/x/y/out")
        r.symlink(str(world.sentinel / "a"), "opt/x/file-out")
        assert r.listdir("opt/x") == ["file-out", "y"]
        assert r.readlink("opt/x/y/out") == str(world.sentinel)
        r.link("opt/x/y/f", "opt/f2")
        r.rename("opt/f2", "opt/f3")
        r.rmtree("opt/x")  # the links inside are unlinked, their targets are untouched
        assert r.listdir("opt") == ["f3"]
        with pytest.raises(UnsafePath, match="is not a regular file"):
            r.read_bytes("opt")


def test_a_rename_never_replaces_a_directory_by_a_file(world: World) -> None:
    with Root.open(world.root) as r:
        with pytest.raises(UnsafePath, match="'usr/share' is a directory"):
            r.rename("etc/app.conf", "usr/share")
        with pytest.raises(UnsafePath, match="not a relative path inside the root"):
            r.rename("etc/app.conf", "../sentinel/a")
        with pytest.raises(UnsafePath, match="not a relative path inside the root"):
            r.link("../sentinel/a", "etc/stolen")
    assert (world.root / "usr/share/app/a").read_text() == "one\n"


def test_resolve_in_root_never_leaves_the_root(world: World) -> None:
    (world.root / "etc/abs").symlink_to("/etc/app.conf")
    (world.root / "etc/up").symlink_to("../../../../../../etc/app.conf")
    (world.root / "etc/out").symlink_to(str(world.sentinel / "a"))
    with Root.open(world.root) as r:
        assert r.resolve("etc/abs") == "etc/app.conf"
        assert r.read_in_root("etc/up") == b"conf\n"
        assert r.resolve("etc/out") == str(world.sentinel / "a").lstrip("/")  # inside the root, not the host's
        with pytest.raises(UserError, match="No such file or directory") as info:
            r.read_in_root("etc/out")
        assert isinstance(info.value, FileNotFoundError) or getattr(info.value, "errno", None) == 2


# ---------------------------------------------------------------- profile content


PROFILE = """name: t
architectures: [x86_64]
repositories: [{name: sample, url: ../repo, root: sample-root.json}]
packages: [base-files]
outputs: [{type: rootfs}]
"""


def _profile(w: World, extra: str) -> Any:
    import shutil
    shutil.copy(REPO / "profiles" / "trust" / "sample-root.json", w.tmp)
    (w.tmp / "t.yaml").write_text(PROFILE + extra)
    return load_profile(w.tmp / "t.yaml")


def _configure(w: World, extra: str) -> None:
    configure(w.root, _profile(w, extra), "x86_64", w.records())


@pytest.mark.parametrize(("home", "why"), [("/home/../../x", "'..' component"), ("home/x", "relative"),
                                           ("/home//x", "empty component")])
def test_a_home_outside_the_root_is_refused(world: World, home: str, why: str) -> None:
    from composer.pkgmgr import configure as content
    with Root.open(world.root) as r, pytest.raises(UserError, match=why):
        content.add_users(r, [{"name": "eve", "home": home, "ssh-keys": ["ssh-ed25519 AAAA e"]}], [])


@pytest.mark.parametrize("field", ["shell", "password-hash", "name", "home"])
def test_a_newline_or_colon_in_a_passwd_field_is_refused(world: World, field: str) -> None:
    from composer.pkgmgr import configure as content
    user = {"name": "eve", field: "x\nroot2::0:0::/:/bin/sh"}
    with Root.open(world.root) as r, pytest.raises(UserError, match=f"users\\[0\\].{field}"):
        content.add_users(r, [user], [])
    assert not (world.root / "etc/passwd").exists()


def test_a_symlinked_home_parent_is_refused(world: World) -> None:
    (world.root / "home").symlink_to(world.sentinel)
    with pytest.raises(UnsafePath, match="'home' is a symlink"):
        _configure(world, "users: [{name: eve, uid: 1000, ssh-keys: ['ssh-ed25519 "
                          "AAAAC3NzaC1lZDI1NTE5AAAAIGJqyXMLUCVyQD/bK8iUi9E1vjdIcowRm0l9x4ZZqxxT e']}]\n")


def test_hostname_and_etc_veridian_through_a_symlinked_etc_are_refused(world: World) -> None:
    _replace_by_link(world, "etc", str(world.sentinel))
    with pytest.raises(UnsafePath, match="'etc' is a symlink"):
        _configure(world, "hostname: box\n")


def test_an_overlay_keeps_its_symlinks_as_links_and_never_reads_through_them(world: World) -> None:
    overlay = world.tmp / "overlay"
    (overlay / "etc").mkdir(parents=True)
    (overlay / "etc" / "motd").write_text("hi\n")
    (overlay / "etc" / "secrets").symlink_to(world.sentinel)  # a directory outside the overlay
    (overlay / "etc" / "one").symlink_to(world.sentinel / "a")
    _configure(world, "files: overlay\n")
    assert os.readlink(world.root / "etc/secrets") == str(world.sentinel)
    assert os.readlink(world.root / "etc/one") == str(world.sentinel / "a")
    assert (world.root / "etc/motd").read_text() == "hi\n"


def test_an_overlay_through_a_symlinked_directory_in_the_root_is_refused(world: World) -> None:
    overlay = world.tmp / "overlay"
    (overlay / "usr" / "share" / "app").mkdir(parents=True)
    (overlay / "usr" / "share" / "app" / "a").write_text("mine\n")
    _replace_by_link(world, "usr/share/app", str(world.sentinel / "app"))
    with pytest.raises(UnsafePath, match="'usr/share/app' is a symlink"):
        _configure(world, "files: overlay\n")


def test_the_database_records_the_signer_that_was_verified(world: World) -> None:
    other = new_key()
    f = world.package("signed", "1.0.0", [directory("opt"), file("opt/s", b"s")])
    lying = Fetched(locked=replace(f.locked, signer=other.keyid), path=f.path, key=f.key)
    install(world.tmp / "fresh", [lying], profile_digest="p", lock_digest="l", epoch=EPOCH)
    assert db.load(world.tmp / "fresh").packages["signed"]["signer"] == world.key.keyid


# ---------------------------------------------------------------- the disk and ISO builders


@pytest.mark.parametrize(("rel", "link"), [
    ("boot/stub.efi", "/etc/hostname"), ("boot/stub.efi", "../../../../etc/hostname"),
    ("../../../../etc/hostname", None), ("/etc/hostname", None)])
def test_a_boot_file_never_reads_a_host_file(world: World, rel: str, link: str | None) -> None:
    from composer.arch import get_arch
    from composer.image.workshop import MissingBootFile, Workshop
    (world.root / "boot").mkdir()
    if link is not None:
        (world.root / rel).symlink_to(link)
    shop = Workshop(root=world.root, arch=get_arch("x86_64"), work=world.tmp / "work", epoch=EPOCH, seed="s",
                    cmdline="", boot_files={"uki-stub": rel}, kernel=world.root / "boot" / "vmlinuz")
    (world.root / "etc" / "hostname").write_text("in the root\n")
    try:
        copy = shop.boot_file("uki-stub", "disk")
    except MissingBootFile:
        assert ".." in rel  # a path that is not inside the root is refused, not resolved on the host
        return
    assert copy.read_bytes() == b"in the root\n"
    assert copy.is_relative_to(world.tmp / "work")


@pytest.mark.parametrize(("members", "refused"), [
    ([directory("var"), directory("var/lib"), directory("var/lib/vpk"), file("var/lib/vpk/db.json", b"{}")], True),
    ([directory("etc"), directory("etc/veridian"), file("etc/veridian/capabilities", b"all\n")], True),
    ([directory("etc"), symlink("etc/veridian", "/tmp")], True),
    ([file("var", b"not a directory")], True),
    ([directory("etc"), directory("etc/veridian"), directory("etc/veridian/checks.d"),
      file("etc/veridian/checks.d/20-mine", b"#!/bin/sh\n", mode=0o755)], False),
])
def test_reserved_paths_at_extraction_and_at_upload(tmp_path: Path, members: list[Any], refused: bool) -> None:
    from composer.package.extract import check_entries, extract_package
    key = new_key()
    pkg = hostile_package(tmp_path / "p.vpk", members, key=key)
    (tmp_path / "root").mkdir()
    entries = [m.entry() for m in members]
    if refused:
        with pytest.raises(UnsafeArchive, match="vcomp"):
            extract_package(pkg, tmp_path / "root", trusted=key.public)
        with pytest.raises(UnsafeArchive, match="vcomp"):
            check_entries(entries, "p.vpk")
        assert os.listdir(tmp_path / "root") == []
    else:
        extract_package(pkg, tmp_path / "root", trusted=key.public)
        check_entries(entries, "p.vpk")


@pytest.mark.parametrize("name", ["history.json", "repositories.json"])
def test_a_state_file_that_is_a_directory_or_a_symlink_is_one_clear_error(world: World, name: str,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = world.root / "var/lib/vpk" / name
    if path.exists():
        path.unlink()
    path.mkdir()
    assert main(["pkg", "--root", str(world.root), "list"]) != 0
    err = capsys.readouterr().err
    assert f"'var/lib/vpk/{name}' is not a regular file" in err.splitlines()[0] and "internal error" not in err
    path.rmdir()
    path.symlink_to(world.sentinel / "a")
    assert main(["pkg", "--root", str(world.root), "list"]) != 0
    err = capsys.readouterr().err
    assert f"'var/lib/vpk/{name}' is a symlink" in err.splitlines()[0] and "internal error" not in err
