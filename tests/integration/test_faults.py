"""Every fault is one clear line: the CLI walked over a table of (command x fault), each fault made for real.

ENOSPC is a tiny tmpfs filled to the last block, EROFS a tmpfs remounted read-only, EACCES the command run as
``nobody`` on root's 0755 directories, EXDEV a root that is a mount point, ENOTDIR a regular file where a
directory belongs, EMFILE a low RLIMIT_NOFILE, corrupt state files truncated / garbage / nested too deep / of
the wrong type, a missing tool a PATH without it. For each row the test asserts: the documented exit code
(1), stderr ends in ONE ``error:`` line (+ an optional ``hint:`` line) naming the place, never ``internal
error`` or ``Traceback``, and the previous state intact (a digest of what the command may write).

The world (keys, packages, a signed repository, a locked profile, its built images and root, a warm cache) is
built once per module at a fixed path and copied back before each row, so absolute URLs stay valid.
``FAULTS_FULL=1`` adds every corruption kind to every state file (the default runs a sample of them) and the
rows marked ``full`` (a code path a default row covers already),
``FAULTS_SHOW=1`` (with ``-s``) prints every row's command and output, ``FAULTS_DEBUG=1`` adds ``--debug``.
Rows that fail because of code another slice owns are ``xfail(strict=True)`` naming the owner.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from composer.package.build import build
from composer.repo import edit
from composer.repo.store import RepoStore
from composer.trust.keys import generate, load_signing_key
from tests.conftest import REPO, skip_unless_nobody_can_run_vcomp, write_recipe

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="real faults need root (mounts, setpriv)")]

FULL = os.environ.get("FAULTS_FULL", "") not in ("", "0")
NOBODY = 65534
FILLER = ".vcomp-faults-filler"
ROLES = ("root", "targets", "index", "snapshot", "timestamp", "dev")
RECIPE = """
[package]
name = "{name}"
version = "{version}"
description = "{name} for the fault table"
authors = ["tests"]
license = "MIT"
type = "{type}"
arch = "{arch}"
{extra}
[security]
context = "system_t"

[[source]]
kind = "tree"
path = "files"
"""


# ----------------------------------------------------------------- the world

@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    """Everything at ``w`` (a fixed path), with a pristine copy at ``pristine`` to restore from."""

    w: Path
    pristine: Path

    def __truediv__(self, rel: str) -> Path:
        return self.w / rel

    def restore(self) -> None:
        if self.w.exists():
            shutil.rmtree(self.w)
        shutil.copytree(self.pristine, self.w, symlinks=True)


def _recipe(base: Path, name: str, version: str, type_: str, files: dict[str, str], arch: str = "noarch",
            extra: str = "") -> Path:
    return write_recipe(base / f"{name}-{version}", textwrap.dedent(RECIPE.format(
        name=name, version=version, type=type_, arch=arch, extra=extra)), {f"files/{k}": v for k, v in files.items()})


def _vcomp(w: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "composer", *argv], cwd=w / "site", capture_output=True, text=True,
                          env={**_env(w), **(env or {})}, timeout=120, check=False)


def _env(w: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("VCOMP_")}
    return {**keep, "VCOMP_CACHE": str(w / "cache"), "PYTHONPATH": str(REPO), "HOME": str(w / "home"),
            "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": str(w / "tmp")}


def make_world(w: Path) -> None:
    for d in ("keys", "spool", "home", "site/profiles/trust", "out", "dl", "tmp"):
        (w / d).mkdir(parents=True)
    (w / "tmp").chmod(0o1777)  # the commands' TMPDIR, also for nobody; checked empty after each row
    for role in ROLES:
        generate(role, w / "keys")
    keys = {r: load_signing_key(w / "keys" / f"{r}.key") for r in ROLES}
    recipes = w / "recipes"
    built = [build(_recipe(recipes, "hello", "1.0.0", "application", {"usr/share/hello/README": "hi\n"}),
                   "x86_64", keys["dev"], w / "pkgs").path,
             build(_recipe(recipes, "tool", "1.0.0", "application", {"usr/share/tool/a/README": "tool\n"}),
                   "x86_64", keys["dev"], w / "pkgs").path,
             build(_recipe(recipes, "linux", "1.0.0", "system", {"boot/vmlinuz": "not a kernel\n"}, "x86_64"),
                   "x86_64", keys["dev"], w / "pkgs").path,
             build(_recipe(recipes, "stub", "1.0.0", "system", {"usr/lib/stub.efi": "not a stub\n"}, "x86_64",
                           'provides = ["bootloader:uefi-uki"]\n\n[boot]\nuki-stub = "usr/lib/stub.efi"\n'),
                   "x86_64", keys["dev"], w / "pkgs").path]
    build(_recipe(recipes, "hello", "1.1.0", "application", {"usr/share/hello/README": "hi 1.1\n"}),
          "x86_64", keys["dev"], w / "pkgs")  # a spare: what 'repo add' adds
    online = ("index", "snapshot", "timestamp")
    edit.init(w / "repo", root_keys=[keys["root"]], root_threshold=1, targets_keys=[keys["targets"]],
              online={r: [keys[r]] for r in online}, online_paths={r: [str(w / "keys" / f"{r}.key")] for r in online},
              architectures=["x86_64"])
    store = RepoStore(w / "repo")
    edit.delegate(store, "dev", [keys["dev"].public], ["*"], targets_keys=[keys["targets"]])
    edit.add(store, built, [keys["dev"]])
    edit.publish(store)
    trust = w / "site" / "profiles" / "trust" / "root.json"
    trust.write_bytes((w / "repo" / "metadata" / "1.root.json").read_bytes())
    head = f"""architectures: [x86_64]
repositories:
  - name: test
    url: {(w / 'repo').as_uri()}
    root: trust/root.json
packages: [hello]
kernel: {{package: linux}}
"""
    (w / "site" / "profiles" / "box.yaml").write_text(f"name: box\n{head}outputs:\n  - type: rootfs\n")
    (w / "site" / "profiles" / "esp.yaml").write_text(f"name: esp\n{head}outputs:\n  - type: esp\n")
    for profile in ("box", "esp"):
        r = _vcomp(w, "lock", f"profiles/{profile}.yaml")
        assert r.returncode == 0, r.stderr
    r = _vcomp(w, "build", "profiles/box.yaml", "--images", str(w / "site" / "images"))
    assert r.returncode == 0, r.stderr
    with tarfile.open(w / "site" / "images" / "box" / "x86_64" / "rootfs.tar") as tar:
        tar.extractall(w / "root", filter="fully_trusted")
    git = ["git", "-c", "user.name=faults", "-c", "user.email=faults@example.org"]
    for argv in (["init", "-q"], ["add", "profiles"], ["commit", "-qm", "profiles"]):  # plan and diff need git
        subprocess.run([*git, *argv], cwd=w / "site", check=True, capture_output=True)
    r = _vcomp(w, "pkg", "--root", str(w / "root"), "list")
    assert r.returncode == 0 and "hello" in r.stdout, r.stderr
    for p in (w / "keys").iterdir():  # nobody (the EACCES rows) reads the keys; the directories stay root's
        p.chmod(0o644)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    base = Path(tempfile.mkdtemp(prefix="vcomp-faults-"))
    base.chmod(0o755)  # nobody must traverse it
    probe = base / "probe"
    probe.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True,
                      check=False).returncode != 0:
        shutil.rmtree(base)
        pytest.skip("real faults need mounts (root with CAP_SYS_ADMIN)")
    subprocess.run(["umount", str(probe)], check=True)
    try:
        w = base / "w"
        make_world(w)
        shutil.copytree(w, base / "pristine", symlinks=True)
        yield World(w=w, pristine=base / "pristine")
    finally:
        for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
            mnt = line.split()[1]
            if mnt.startswith(str(base)):
                subprocess.run(["umount", "-l", mnt], check=False)
        shutil.rmtree(base, ignore_errors=True)


# ----------------------------------------------------------------- faults

@dataclass(slots=True, kw_only=True)
class Setup:
    """What a fault did to the world: how to run the command, and how to undo the mounts."""

    prefix: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    preexec: Callable[[], None] | None = None
    mounts: list[Path] = field(default_factory=list)
    clearable: bool = False    # the fault can be taken away (unmount keeping the files, run as root, no rlimit)
    undo: list[Callable[[], None]] = field(default_factory=list)

    def clear(self, *, keep: bool) -> None:
        """Unmount (``keep``: the files written there stay, without the fillers) and forget the rest."""
        for mnt in reversed(self.mounts):
            kept = mnt.with_name(mnt.name + ".kept")
            if keep:
                shutil.copytree(mnt, kept, symlinks=True, ignore=shutil.ignore_patterns(f"{FILLER}*"))
            subprocess.run(["umount", "-l", str(mnt)], check=False)
            if keep:
                mnt.rmdir()
                kept.rename(mnt)
        self.mounts.clear()
        self.prefix, self.env, self.preexec = [], {}, None
        while self.undo:
            self.undo.pop()()


Fault = Callable[[World, Setup], None]


def _mount_tmpfs(at: Path, setup: Setup, *, size: str = "64k") -> None:
    """A tmpfs at ``at`` holding what was there (``at`` is created when missing). Its inodes are not filled:
    new files can be made, their data cannot be written (a disk full of data, the common case)."""
    aside = at.with_name(at.name + ".aside")
    if at.exists():
        at.rename(aside)
    at.mkdir(parents=True)
    inodes = 64 + sum(1 + len(d) + len(f) for _, d, f in os.walk(aside))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},nr_inodes={inodes},mode=0755", "tmpfs", str(at)],
                   check=True)
    setup.mounts.append(at)
    if aside.exists():
        shutil.copytree(aside, at, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(aside)


def _fill(at: Path) -> None:
    with (at / FILLER).open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def enospc(rel: str, size: str = "4m", *, cold: bool = False) -> Fault:
    """A full tmpfs at ``rel`` holding what was there (``cold``: emptied first, e.g. a cache to refill)."""
    def fault(world: World, setup: Setup) -> None:
        if cold and (world / rel).exists():
            shutil.rmtree(world / rel)
        _mount_tmpfs(world / rel, setup, size=size)
        _fill(world / rel)
        setup.clearable = True
    fault.__name__ = f"ENOSPC({rel}{', cold' if cold else ''})"
    return fault


def erofs(rel: str) -> Fault:
    def fault(world: World, setup: Setup) -> None:
        _mount_tmpfs(world / rel, setup, size="16m")
        subprocess.run(["mount", "-o", "remount,ro", str(world / rel)], check=True)
        setup.clearable = True
    fault.__name__ = f"EROFS({rel})"
    return fault


def exdev_mountpoint(rel: str) -> Fault:
    def fault(world: World, setup: Setup) -> None:
        _mount_tmpfs(world / rel, setup, size="64m")
    fault.__name__ = f"EXDEV({rel} is a mount point)"  # on its own file system: renames from elsewhere fail
    return fault


def _chown(top: Path, uid: int) -> None:
    for dirpath, _, files in os.walk(top):
        os.chown(dirpath, uid, uid)
        for name in files:
            os.chown(Path(dirpath) / name, uid, uid, follow_symlinks=False)


def eacces(*writable: str) -> Fault:
    """Run as nobody: root's 0755 directories refuse it; ``writable`` (and the cache and home) are its own."""
    def fault(world: World, setup: Setup) -> None:
        skip_unless_nobody_can_run_vcomp()
        for rel in ("cache", "home", *writable):
            _chown(world / rel, NOBODY)
            setup.undo.append(lambda top=world / rel: _chown(top, 0))  # root refuses a cache owned by another
        setup.prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        setup.clearable = True
    fault.__name__ = "EACCES(as nobody)"
    return fault


def enotdir(rel: str) -> Fault:
    def fault(world: World, setup: Setup) -> None:
        target = world / rel
        if target.is_dir():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("a regular file where a directory belongs\n")
    fault.__name__ = f"ENOTDIR({rel})"
    return fault


def emfile(limit: int, *, cold: bool = False) -> Fault:
    """RLIMIT_NOFILE=limit in the command (``cold``: with an empty cache, so that it fetches)."""
    def fault(world: World, setup: Setup) -> None:
        if cold:
            shutil.rmtree(world / "cache")
            (world / "cache").mkdir()
        setup.preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
        setup.clearable = True
    fault.__name__ = f"EMFILE(nofile={limit}{', cold' if cold else ''})"
    return fault


def _deep(kind: str) -> bytes:
    return b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n" if kind == "toml" else \
        b"[" * 100_000 + b"]" * 100_000


CORRUPTIONS: dict[str, Callable[[bytes, str], bytes]] = {
    "truncated": lambda data, kind: data[: max(1, len(data) // 2)],
    "garbage": lambda data, kind: b"\x00\xff\xfe garbage \x1b[31m\n" * 8,
    "deep": lambda data, kind: _deep(kind),
    "empty": lambda data, kind: b"",
}


def corrupt(rel: str, how: str, replacement: bytes | None = None) -> Fault:
    def fault(world: World, setup: Setup) -> None:
        path = world / rel
        data = path.read_bytes() if path.exists() else b""
        kind = "toml" if rel.endswith(".toml") else "json"
        path.write_bytes(replacement if replacement is not None else CORRUPTIONS[how](data, kind))
    fault.__name__ = f"corrupt({rel}: {how})"
    return fault


def empty_index() -> Fault:
    """The repository publishes an index with no package in it (state emptied, then 'repo publish')."""
    def fault(world: World, setup: Setup) -> None:
        store = RepoStore(world / "repo")
        store.write_state({"packages": {}})
        edit.publish_unlocked(store)  # the locked publish would repair the state first
    fault.__name__ = "empty index"
    return fault


def missing_tool() -> Fault:
    def fault(world: World, setup: Setup) -> None:
        empty = world / "emptybin"
        empty.mkdir(exist_ok=True)
        setup.env["PATH"] = str(empty)
    fault.__name__ = "missing tool (empty PATH)"
    return fault


# ----------------------------------------------------------------- the table

@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    name: str
    argv: tuple[str, ...]          # {w} stands for the world's path
    fault: Fault
    watch: tuple[str, ...]         # what must be unchanged afterwards (relative to the world)
    names: tuple[str, ...]         # what the error line must name ({w} expanded)
    codes: tuple[int, ...] = (1,)
    full: bool = False             # only with FAULTS_FULL=1 (the same code path as a row of the default run)

    def param(self) -> object:
        reason = next((why for pattern, why in XFAIL.items() if re.fullmatch(pattern, self.name)), "")
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        return pytest.param(self, id=self.name, marks=marks)

    @property
    def strict(self) -> bool:
        """A root is compared exactly; elsewhere a new empty directory (``mkdir -p`` of an output) is no change."""
        return self.watch == ROOT_STATE or any(w.startswith(DB) for w in self.watch)


KEYGEN = ("key", "generate", "newkey", "--dir", "{w}/spool/keys")
PKG_BUILD = ("pkg", "build", "{w}/recipes/hello-1.1.0", "--arch", "x86_64", "--key", "{w}/keys/dev.key",
             "--out", "{w}/out")
REPO_INIT = ("repo", "init", "{w}/spool/newrepo", "--root-key", "{w}/keys/root.key", "--targets-key",
             "{w}/keys/targets.key", "--index-key", "{w}/keys/index.key", "--snapshot-key",
             "{w}/keys/snapshot.key", "--timestamp-key", "{w}/keys/timestamp.key")
REPO_ADD = ("repo", "add", "{w}/repo", "{w}/pkgs/hello-1.1.0-noarch.vpk", "--key", "{w}/keys/dev.key")
REPO_PUBLISH = ("repo", "publish", "{w}/repo")
LOCK = ("lock", "profiles/box.yaml")
BUILD = ("build", "profiles/box.yaml", "--images", "{w}/site/images")
INSTALL = ("pkg", "--root", "{w}/root", "install", "tool")
REMOVE = ("pkg", "--root", "{w}/root", "remove", "hello")
LIST = ("pkg", "--root", "{w}/root", "list")
VERIFY = ("pkg", "--root", "{w}/root", "verify")
HISTORY = ("pkg", "--root", "{w}/root", "history")
REPO_ARGS = ("--repo", "{w}/repo", "--root", "profiles/trust/root.json")
SEARCH = ("search", "hello", *REPO_ARGS)
INFO = ("info", "hello", *REPO_ARGS)
FETCH = ("fetch", "hello", "--out", "{w}/dl", *REPO_ARGS)
PLAN = ("plan", "profiles/box.yaml", "--images", "{w}/site/images")
BUILT = "{w}/site/images/box/x86_64"
DIFF = ("diff", BUILT, BUILT)

DB = "root/var/lib/vpk"
IMAGES = "site/images"
ROOT_STATE = ("root",)
REPO_STATE = ("repo",)


def _rows() -> list[Row]:
    rows = [
        # ---- key generate
        Row(name="key-generate/ENOSPC", argv=KEYGEN, fault=enospc("spool", "64k"), watch=("spool",),
            names=("{w}/spool/keys",)),
        Row(name="key-generate/EROFS", argv=KEYGEN, fault=erofs("spool"), watch=("spool",),
            names=("{w}/spool",), full=True),
        Row(name="key-generate/EACCES", argv=KEYGEN, fault=eacces(), watch=("spool",), names=("{w}/spool",), full=True),
        Row(name="key-generate/ENOTDIR", argv=KEYGEN, fault=enotdir("spool/keys"), watch=("spool",),
            names=("{w}/spool/keys",)),
        # ---- pkg build
        Row(name="pkg-build/ENOSPC-out", argv=PKG_BUILD, fault=enospc("out"), watch=("out",),
            names=("{w}/out",)),
        Row(name="pkg-build/EROFS-out", argv=PKG_BUILD, fault=erofs("out"), watch=("out",), names=("{w}/out",),
            full=True),
        Row(name="pkg-build/EACCES-out", argv=PKG_BUILD, fault=eacces(), watch=("out",), names=("{w}/out",)),
        Row(name="pkg-build/ENOTDIR-out", argv=PKG_BUILD, fault=enotdir("out"), watch=("out",),
            names=("{w}/out",)),
        # ---- repo init
        Row(name="repo-init/ENOSPC", argv=REPO_INIT, fault=enospc("spool", "256k"), watch=("spool",),
            names=("{w}/spool/newrepo",)),
        Row(name="repo-init/EROFS", argv=REPO_INIT, fault=erofs("spool"), watch=("spool",),
            names=("{w}/spool",), full=True),
        Row(name="repo-init/EACCES", argv=REPO_INIT, fault=eacces(), watch=("spool",), names=("{w}/spool",), full=True),
        # ---- repo add / publish
        Row(name="repo-add/ENOSPC", argv=REPO_ADD, fault=enospc("repo"), watch=REPO_STATE, names=("{w}/repo",)),
        Row(name="repo-add/EROFS", argv=REPO_ADD, fault=erofs("repo"), watch=REPO_STATE, names=("{w}/repo",)),
        Row(name="repo-add/EACCES", argv=REPO_ADD, fault=eacces(), watch=REPO_STATE, names=("{w}/repo",)),
        Row(name="repo-add/ENOTDIR", argv=REPO_ADD, fault=enotdir("repo"), watch=REPO_STATE,
            names=("{w}/repo",)),
        Row(name="repo-publish/ENOSPC", argv=REPO_PUBLISH, fault=enospc("repo"), watch=REPO_STATE,
            names=("{w}/repo",)),
        Row(name="repo-publish/EROFS", argv=REPO_PUBLISH, fault=erofs("repo"), watch=REPO_STATE,
            names=("{w}/repo",), full=True),
        # ---- lock
        Row(name="lock/EROFS-profiles", argv=LOCK, fault=erofs("site/profiles"), watch=("site/profiles",),
            names=("profiles/box.lock",)),
        Row(name="lock/ENOSPC-profiles", argv=LOCK, fault=enospc("site/profiles", "64k"),
            watch=("site/profiles",), names=("profiles/box.lock",)),
        Row(name="lock/ENOTDIR-cache", argv=LOCK, fault=enotdir("cache"), watch=("cache", "site/profiles"),
            names=("{w}/cache",)),
        Row(name="lock/EROFS-cache", argv=LOCK, fault=erofs("cache"), watch=("cache", "site/profiles"),
            names=("{w}/cache",)),
        # ---- build
        Row(name="build/ENOSPC-images", argv=BUILD, fault=enospc(IMAGES, "256k"), watch=(IMAGES,),
            names=("{w}/site/images",)),
        Row(name="build/EROFS-images", argv=BUILD, fault=erofs(IMAGES), watch=(IMAGES,),
            names=("{w}/site/images",)),
        Row(name="build/EACCES-images", argv=BUILD, fault=eacces(), watch=(IMAGES,), names=("{w}/site/images",)),
        Row(name="build/ENOTDIR-images", argv=BUILD, fault=enotdir(IMAGES), watch=(IMAGES,),
            names=("{w}/site/images",)),
        Row(name="build/ENOTDIR-cache", argv=BUILD, fault=enotdir("cache"), watch=("cache", IMAGES),
            names=("{w}/cache",)),
        Row(name="build/ENOSPC-cache", argv=BUILD, fault=enospc("cache", "64k", cold=True), watch=("cache", IMAGES),
            names=("{w}/cache",)),
        Row(name="build/EMFILE", argv=BUILD, fault=emfile(8, cold=True), watch=(IMAGES,), names=()),
        Row(name="build/EMFILE-while-writing-the-pool", argv=BUILD, fault=emfile(5, cold=True), watch=(IMAGES,),
            names=()),
        Row(name="build/missing-tool", argv=("build", "profiles/esp.yaml", "--images", "{w}/site/images"),
            fault=missing_tool(), watch=(IMAGES,), names=("mkfs.fat", "apt-get install dosfstools")),
        # ---- pkg --root: transactions
        Row(name="install/EROFS-root", argv=INSTALL, fault=erofs("root"), watch=ROOT_STATE, names=("{w}/root",)),
        Row(name="install/ENOSPC-root", argv=INSTALL, fault=enospc("root", "2m"), watch=ROOT_STATE,
            names=("{w}/root",)),
        Row(name="install/EACCES-root", argv=INSTALL, fault=eacces(), watch=ROOT_STATE, names=("{w}/root",)),
        Row(name="install/EXDEV-root-is-a-mount-point", argv=INSTALL, fault=exdev_mountpoint("root"),
            watch=(), names=(), codes=(0,)),
        # EXDEV: a directory on another file system than the cache, the packages and the working directory works
        Row(name="build/EXDEV-images-elsewhere", argv=BUILD, fault=exdev_mountpoint(IMAGES), watch=(), names=(),
            codes=(0,)),
        Row(name="build/EXDEV-cache-elsewhere", argv=BUILD, fault=exdev_mountpoint("cache"), watch=(), names=(),
            codes=(0,), full=True),
        Row(name="repo-add/EXDEV-repo-elsewhere", argv=REPO_ADD, fault=exdev_mountpoint("repo"), watch=(), names=(),
            codes=(0,)),
        Row(name="pkg-build/EXDEV-out-elsewhere", argv=PKG_BUILD, fault=exdev_mountpoint("out"), watch=(),
            names=(), codes=(0,), full=True),
        Row(name="install/ENOTDIR-root", argv=INSTALL, fault=enotdir("root"), watch=ROOT_STATE,
            names=("{w}/root",)),
        Row(name="install/ENOTDIR-cache", argv=INSTALL, fault=enotdir("cache"), watch=("cache", *ROOT_STATE),
            names=("{w}/cache",)),
        Row(name="install/EMFILE", argv=INSTALL, fault=emfile(6), watch=ROOT_STATE, names=("{w}/root",)),
        # readers of a read-only root work (they write nothing, so they need no writable lock or journal)
        Row(name="list/EROFS-root", argv=LIST, fault=erofs("root"), watch=ROOT_STATE, names=(), codes=(0,)),
        Row(name="verify/EROFS-root", argv=VERIFY, fault=erofs("root"), watch=ROOT_STATE, names=(), codes=(0,)),
        Row(name="list/EACCES-root", argv=LIST, fault=eacces(), watch=ROOT_STATE, names=(), codes=(0,)),
        Row(name="verify/EACCES-root", argv=VERIFY, fault=eacces(), watch=ROOT_STATE, names=(), codes=(0,), full=True),
        Row(name="history/EROFS-root", argv=HISTORY, fault=erofs("root"), watch=ROOT_STATE, names=(), codes=(0,),
            full=True),
        Row(name="remove/EROFS-root", argv=REMOVE, fault=erofs("root"), watch=ROOT_STATE, names=("{w}/root",)),
        Row(name="remove/ENOSPC-root", argv=REMOVE, fault=enospc("root", "2m"), watch=ROOT_STATE,
            names=("{w}/root",), full=True),
        # ---- repository readers
        Row(name="search/ENOTDIR-cache", argv=SEARCH, fault=enotdir("cache"), watch=("cache",),
            names=("{w}/cache",)),
        Row(name="info/EROFS-cache", argv=INFO, fault=erofs("cache"), watch=("cache",), names=("{w}/cache",)),
        Row(name="fetch/EROFS-out", argv=FETCH, fault=erofs("dl"), watch=("dl",), names=("{w}/dl",)),
        Row(name="fetch/ENOSPC-out", argv=FETCH, fault=enospc("dl", "64k"), watch=("dl",), names=("{w}/dl",)),
        Row(name="fetch/ENOTDIR-out", argv=FETCH, fault=enotdir("dl"), watch=("dl",), names=("{w}/dl",), full=True),
        Row(name="lock/empty-index", argv=LOCK, fault=empty_index(), watch=("site/profiles",), names=("hello",)),
        Row(name="install/empty-index", argv=INSTALL, fault=empty_index(), watch=ROOT_STATE, names=("tool",)),
        Row(name="plan/garbage-box.lock", argv=PLAN, fault=corrupt("site/profiles/box.lock", "garbage"),
            watch=("site/profiles",), names=("box",)),
        Row(name="diff/garbage-contents.json", argv=DIFF,
            fault=corrupt(f"{IMAGES}/box/x86_64/contents.json", "garbage"), watch=(IMAGES,), names=("contents.json",)),
        Row(name="diff/deep-manifest.json", argv=DIFF,
            fault=corrupt(f"{IMAGES}/box/x86_64/manifest.json", "deep"), watch=(IMAGES,), names=("manifest.json",)),
        Row(name="search/corrupt-timestamp", argv=SEARCH,
            fault=corrupt("repo/metadata/timestamp.json", "garbage"), watch=("repo",), names=("timestamp",)),
    ]
    rows += _corrupt_rows()
    return rows


# state file -> (commands that read it, what the error must name)
STATE_FILES: dict[str, tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]] = {
    f"{DB}/db.json": ((LIST, INSTALL, VERIFY), ("{w}/root/var/lib/vpk/db.json",)),
    f"{DB}/history.json": ((HISTORY, REMOVE), ("{w}/root/var/lib/vpk/history.json",)),
    f"{DB}/repositories.json": ((INSTALL,), ("{w}/root/var/lib/vpk/repositories.json",)),
    f"{DB}/journal.json": ((INSTALL,), ("{w}/root/var/lib/vpk/journal.json", "recover")),
    "repo/repo.toml": ((REPO_ADD, REPO_PUBLISH), ("{w}/repo/repo.toml",)),
    # repo/state.db is derived: a writer rebuilds it from the signed roles (test_repo_reliability.py)
    "repo/metadata/1.dev.json": ((REPO_ADD,), ("dev",)),
    "site/profiles/box.lock": ((BUILD, LOCK), ("box.lock",)),
    "site/profiles/box.yaml": ((LOCK, BUILD), ("box.yaml",)),
    "site/profiles/trust/root.json": ((LOCK, SEARCH), ("root.json",)),
}


def _corrupt_rows() -> list[Row]:
    """FAULTS_FULL: every kind of corruption of every state file under every command that reads it; else one
    (kind, command) per file, rotating so that each kind and each command comes up."""
    rows = []
    kinds = list(CORRUPTIONS)
    for i, (rel, (commands, names)) in enumerate(STATE_FILES.items()):
        watch = (str(Path(rel).parent),)
        for j, how in enumerate(kinds):
            for k, argv in enumerate(commands):
                if not FULL and (j != i % len(kinds) or k != (i // len(kinds)) % len(commands)):
                    continue
                verb = "-".join(a for a in argv[:4] if not a.startswith(("{", "-", "profiles"))) or argv[0]
                rows.append(Row(name=f"{verb}/{how}-{Path(rel).name}", argv=argv, fault=corrupt(rel, how),
                                watch=watch, names=names))
    # wrong types and values where the document parses
    rows += [
        Row(name="list/db-without-packages", argv=LIST, fault=corrupt(f"{DB}/db.json", "", b'{"format": 1}'),
            watch=(DB,), names=("{w}/root/var/lib/vpk/db.json",)),
        Row(name="list/db-nan", argv=LIST, fault=corrupt(f"{DB}/db.json", "", b'{"format": 1, "transaction": NaN, '
                                                                          b'"packages": {}}'),
            watch=(DB,), names=("{w}/root/var/lib/vpk/db.json", "NaN")),
        Row(name="install/db-packages-a-list", argv=INSTALL,
            fault=corrupt(f"{DB}/db.json", "", b'{"format": 1, "transaction": 1, "packages": []}'),
            watch=(DB,), names=("{w}/root/var/lib/vpk/db.json",)),
        Row(name="history/id-not-a-number", argv=HISTORY,
            fault=corrupt(f"{DB}/history.json", "", b'[{"id": "one", "time": 0, "operation": "install", '
                                                    b'"packages": []}]'),
            watch=(DB,), names=("{w}/root/var/lib/vpk/history.json",)),
        # readers keep working with a journal they cannot read (a note on stderr; they change nothing)
        Row(name="list/garbage-journal.json", argv=LIST, fault=corrupt(f"{DB}/journal.json", "", b"\xff{"),
            watch=(DB,), names=(), codes=(0,)),
        Row(name="install/journal-not-an-object", argv=INSTALL, fault=corrupt(f"{DB}/journal.json", "", b"[1, 2]"),
            watch=(DB,), names=("{w}/root/var/lib/vpk/journal.json", "recover")),
    ]
    return rows


# Rows that fail because of code another slice owns (pattern over row names -> "<owner>: <what fails>").
TXN, REPO_HELPER, IMAGES_HELPER = "txn (composer/pkgmgr)", "repo (composer/repo)", "images (composer/image)"
XFAIL: dict[str, str] = {
}
ROWS = [r for r in _rows() if FULL or not r.full]


# ----------------------------------------------------------------- the check

def digest(world: World, rels: Sequence[str]) -> dict[str, tuple[object, ...]]:
    """Type, mode and content of every path under ``rels`` (the fillers and released lock files excepted)."""
    out: dict[str, tuple[object, ...]] = {}

    def one(p: Path) -> None:
        rel = str(p.relative_to(world.w))
        st = p.lstat()
        if p.name.startswith(FILLER) or ("lock" in p.name and stat.S_ISREG(st.st_mode) and st.st_size == 0):
            return
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(p))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", stat.S_IMODE(st.st_mode))
        else:
            out[rel] = ("file", stat.S_IMODE(st.st_mode), hashlib.sha256(p.read_bytes()).hexdigest())

    for rel in rels:
        top = world / rel
        if not top.exists() and not top.is_symlink():
            out[rel] = ("absent",)
            continue
        one(top)
        if top.is_dir() and not top.is_symlink():
            for dirpath, dirnames, filenames in os.walk(top):
                for name in sorted(dirnames + filenames):
                    one(Path(dirpath) / name)
    return out


def _expand(items: Sequence[str], w: Path) -> list[str]:
    return [s.replace("{w}", str(w)) for s in items]


def _files_below(p: Path) -> bool:
    return any(files for _, _, files in os.walk(p))


def run_row(row: Row, world: World, setup: Setup) -> subprocess.CompletedProcess[str]:
    debug = ["--debug"] if os.environ.get("FAULTS_DEBUG") else []  # a traceback instead of the line
    argv = [*setup.prefix, sys.executable, "-m", "composer", *debug, *_expand(row.argv, world.w)]
    return subprocess.run(argv, cwd=world / "site", capture_output=True, text=True, timeout=120, check=False,
                          env={**_env(world.w), **setup.env}, preexec_fn=setup.preexec)


def _shown(r: subprocess.CompletedProcess[str]) -> str:
    argv = r.args if isinstance(r.args, list) else [str(r.args)]
    return f"$ {' '.join(argv)}\nexit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"


def check(row: Row, world: World) -> None:
    """The row's command under its fault: one clear line, the old state; then, the fault taken away, it works."""
    world.restore()
    setup = Setup()
    try:
        row.fault(world, setup)
        before = digest(world, row.watch)
        r = run_row(row, world, setup)
        left = sorted(p.name for p in (world / "tmp").iterdir())
        after = digest(world, row.watch)
        if not row.strict:  # a new directory with no file in it is no change (an output's mkdir -p)
            after = {k: v for k, v in after.items() if k in before or v[0] != "dir" or _files_below(world / k)}
        clearable = setup.clearable and row.codes == (1,)
        setup.clear(keep=clearable)
    finally:
        setup.clear(keep=False)
    shown = _shown(r)
    if os.environ.get("FAULTS_SHOW"):  # pytest -s: every row's command and output, for reading the lines
        print(f"\n[{row.name}]\n{shown}")
    assert r.returncode in row.codes, shown
    for stream in (r.stdout, r.stderr):
        assert "internal error" not in stream and "Traceback" not in stream, shown
    if row.codes != (0,):
        lines = r.stderr.rstrip("\n").splitlines()
        errors = [i for i, line in enumerate(lines) if line.startswith("error: ")]
        assert len(errors) == 1, shown
        block = lines[errors[0]:]  # the error, its indented details when it lists several problems, the hint
        assert block[-1].startswith("  hint: ") and len(block[-1]) > len("  hint: "), shown
        assert all(line.startswith("  ") and not line.startswith("  hint:") for line in block[1:-1]), shown
        for name in _expand(row.names, world.w):
            assert any(name in line for line in block), f"the error does not name {name!r}\n{shown}"
    assert after == before, f"the previous state changed\n{shown}"
    assert not left, f"temporary files left in TMPDIR: {left}\n{shown}"
    if clearable:
        again = run_row(row, world, setup)
        assert again.returncode == 0, f"the fault gone, the command still fails\n{shown}\n\n{_shown(again)}"


@pytest.mark.parametrize("row", [r.param() for r in ROWS])
def test_every_fault_is_one_clear_line(row: Row, world: World) -> None:
    check(row, world)
