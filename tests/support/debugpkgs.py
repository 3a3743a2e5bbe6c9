"""A C program with its debug information split the GNU way, packed into NAME and NAME-dbg packages, and a
signed repository serving them (until the builder splits -dbg packages itself, issue 18 item 2).

``build_crasher(base, arch)`` compiles :data:`CRASHER` with ``-g`` (host gcc or the cross gcc), splits it
(``objcopy --only-keep-debug``; the runtime binary ``--strip-debug --add-gnu-debuglink``), puts the debug file at
``usr/lib/debug/.build-id/xx/yyyy.debug`` and its source at ``usr/src/debug/crasher/crasher.c`` (compiled with
``-fdebug-prefix-map`` to that place), and builds both packages with the real builder.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from composer.debug.buildid import debug_path_of, read_build_id
from composer.package.build import build
from composer.repo import edit
from composer.repo.store import RepoStore
from composer.trust.keys import SigningKey
from tests.conftest import write_recipe
from tests.repo_fixtures import ONLINE, Keys, make_keys

CRASHER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int crash_depth;

__attribute__((noinline)) static void veridian_crash_here(int *where)
{
    *where = 42;                         /* the NULL write: SIGSEGV */
}

__attribute__((noinline)) void veridian_outer(int n, int *where)
{
    crash_depth = n;
    if (n > 0) {
        veridian_outer(n - 1, where);
        return;
    }
    veridian_crash_here(where);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "crash") == 0) {
        printf("VERIDIAN-CRASHER: crashing\n");
        fflush(stdout);
        veridian_outer(2, NULL);
    }
    if (argc > 1 && strcmp(argv[1], "wait") == 0) {
        printf("VERIDIAN-CRASHER: waiting\n");
        fflush(stdout);
        for (;;)
            veridian_outer(-1, &crash_depth), crash_depth = 0;
    }
    printf("VERIDIAN-CRASHER: hello\n");
    return 0;
}
"""

RECIPE = """
    [package]
    name = "{name}"
    version = "1.0.0"
    description = "{name}: the crashing test program of the debugging tests"
    authors = ["Debug Tester"]
    license = "MIT"
    type = "{type}"

    [security]
    context = "system_t"

    [[source]]
    kind = "tree"
    path = "files"
"""

GCC = {"x86_64": "x86_64-linux-gnu-gcc", "aarch64": "aarch64-linux-gnu-gcc", "riscv64": "riscv64-linux-gnu-gcc"}
SOURCE_PLACE = "/usr/src/debug/crasher"


@dataclass(frozen=True, slots=True, kw_only=True)
class Crasher:
    build_id: str
    binary: Path        # the stripped runtime binary
    debug: Path         # the detached debug file
    unstripped: Path
    package: Path       # crasher-1.0.0-ARCH.vpk
    dbg_package: Path   # crasher-dbg-1.0.0-ARCH.vpk


def compile_split(base: Path, arch: str, *, static: bool = False) -> tuple[Path, Path, Path, str]:
    """Compile :data:`CRASHER` and split it: (stripped, debug file, unstripped, build-id)."""
    base.mkdir(parents=True, exist_ok=True)
    src = base / "crasher.c"
    src.write_text(textwrap.dedent(CRASHER))
    full = base / "crasher.full"
    flags = ["-g", "-O1", "-fno-omit-frame-pointer", "-Wl,--build-id=sha1",
             f"-fdebug-prefix-map={base}={SOURCE_PLACE}", *(["-static"] if static else [])]
    subprocess.run([GCC[arch], *flags, "-o", str(full), str(src)], check=True, cwd=base)
    debug, stripped = base / "crasher.debug", base / "crasher"
    objcopy = GCC[arch].removesuffix("gcc") + "objcopy"   # the target's own (the host's knows only its own)
    subprocess.run([objcopy, "--only-keep-debug", str(full), str(debug)], check=True)
    subprocess.run([objcopy, "--strip-debug", "--strip-unneeded", f"--add-gnu-debuglink={debug}", str(full),
                    str(stripped)], check=True)
    with full.open("rb") as f:
        build_id = read_build_id(f)
    assert build_id, "gcc wrote no build-id"
    return stripped, debug, full, build_id


CRASH_CHECK = """#!/bin/sh
# a boot check that makes a core dump (vcomp.cores=1 carries it over the console), then passes
/usr/bin/crasher crash
sleep 3
exit 0
"""


def build_crasher(base: Path, arch: str, key: SigningKey, *, static: bool = False,
                  crash_at_boot: bool = False) -> Crasher:
    """``crash_at_boot``: the package also ships a boot check that runs ``crasher crash``."""
    stripped, debug, full, build_id = compile_split(base / "src", arch, static=static)
    out = base / "packages"
    files: dict[str, str | bytes] = {"files/usr/bin/crasher": stripped.read_bytes()}
    if crash_at_boot:
        files["files/etc/veridian/checks.d/50-crash"] = CRASH_CHECK
    runtime = write_recipe(base / "recipes" / "crasher", RECIPE.format(name="crasher", type="application"),
                           files, executable=("files/usr/bin/crasher", "files/etc/veridian/checks.d/50-crash"))
    dbg = write_recipe(base / "recipes" / "crasher-dbg", RECIPE.format(name="crasher-dbg", type="development"),
                       {f"files/{debug_path_of(build_id)}": debug.read_bytes(),
                        "files/usr/src/debug/crasher/crasher.c": (base / "src" / "crasher.c").read_bytes()})
    pkg = build(runtime, arch, key, out, cache=base / "cache").path
    dbg_pkg = build(dbg, arch, key, out, cache=base / "cache").path
    return Crasher(build_id=build_id, binary=stripped, debug=debug, unstripped=full, package=pkg,
                   dbg_package=dbg_pkg)


# The live-debugging program: the same source built by a real recipe (a command source calling the target's
# gcc) whose [split] dbg = true makes crasher-live-dbg (composer/package/split.py), and a service running it
# under Debian's gdbserver on the guest's port 2345, stopped at its first instruction until gdb connects.
LIVE_PORT = 2345
LIVE_RECIPE = """
    [package]
    name = "crasher-live"
    version = "1.0.0"
    description = "crasher-live: the test program of the live debugging test, under gdbserver"
    authors = ["Debug Tester"]
    license = "MIT"
    type = "application"

    [relations]
    requires = ["gdbserver"]

    [security]
    context = "system_t"

    [build]
    architectures = ["x86_64", "aarch64", "riscv64"]

    [split]
    dbg = true

    [[source]]
    kind = "command"
    workdir = "src"
    tools = ["{triple}-gcc", "as", "ld"]
    run = '''
    mkdir -p "$DESTDIR/usr/bin"
    "$CC" -static -g -O1 -fno-omit-frame-pointer -Wl,--build-id=sha1 \\
      -fdebug-prefix-map="$PWD"=/usr/src/debug/crasher-live -o "$DESTDIR/usr/bin/crasher-live" crasher.c
    '''

    [[actions.services]]
    name = "gdbserver"
    command = ["/usr/bin/gdbserver", "0.0.0.0:PORT", "/usr/bin/crasher-live", "wait"]
    restart = "always"
    readiness = "tcp:PORT"
    after = ["network"]
""".replace("PORT", str(LIVE_PORT))


def build_live(base: Path, arch: str, key: SigningKey) -> tuple[Path, Path]:
    """crasher-live and crasher-live-dbg built from :data:`LIVE_RECIPE` by the builder: their paths."""
    recipe = write_recipe(base / "recipes" / "crasher-live", LIVE_RECIPE,
                          {"src/crasher.c": textwrap.dedent(CRASHER)})
    built = build(recipe, arch, key, base / "packages", cache=base / "cache")
    [dbg] = [b.path for b in built.split if b.metadata.name == "crasher-live-dbg"]
    return built.path, dbg


@dataclass(frozen=True, slots=True, kw_only=True)
class DebugRepo:
    dir: Path
    root: Path          # the pinned trust root
    keys: Keys
    crasher: Crasher
    live: tuple[Path, ...] = ()   # crasher-live and crasher-live-dbg (make_debug_repo(live=True))


def make_debug_repo(base: Path, arch: str = "x86_64", *, static: bool = False,
                    crash_at_boot: bool = False, live: bool = False) -> DebugRepo:
    """A signed repository (alice may publish crasher*) holding crasher and crasher-dbg for ``arch`` (``live``:
    and crasher-live, crasher-live-dbg)."""
    keys = make_keys(base / "keys")
    crasher = build_crasher(base / "crasher", arch, keys.alice, static=static, crash_at_boot=crash_at_boot)
    live_packages = build_live(base / "live", arch, keys.alice) if live else ()
    repo = base / "repo"
    online = {role: [keys.by_name[role]] for role in ONLINE}
    edit.init(repo, root_keys=[keys.root1], root_threshold=1, targets_keys=[keys.targets], online=online,
              online_paths={role: [str(keys.path(role))] for role in online}, architectures=[arch])
    store = RepoStore(repo)
    edit.delegate(store, "alice", [keys.alice.public], ["crasher*"], targets_keys=[keys.targets])
    edit.add(store, [crasher.package, crasher.dbg_package, *live_packages], [keys.alice])
    edit.publish(store)
    root = base / "root.json"
    shutil.copyfile(repo / "metadata" / "1.root.json", root)
    return DebugRepo(dir=repo, root=root, keys=keys, crasher=crasher, live=tuple(live_packages))
