"""Which .debs make the SDK's Rust and Go (I/O edge: asks the Debian archive; the tables are
composer.sdk.toolchain).

Rust: the runtime closure of rustc, cargo and libstd-rust-dev for the build host from trixie (their libraries
included, run by the closure's own ld.so), plus the target's libstd-rust-dev at the rustc's exact version. Go:
bookworm's golang-1.19-go and its sources (GOROOT; the standard library is compiled for GOARCH on first use).
"""

from __future__ import annotations

from composer.arch import Arch
from composer.errors import UserError
from composer.package.debian import DebianArchive, DebRef
from composer.sdk.toolchain import GO_PACKAGES, RUST_ROOTS, RUST_STD, runtime_closure_step

MAX_CLOSURE = 200       # packages: a bound on a hostile or broken index (the real closure is ~50)
MAX_DEPTH = 16


def rust_host_plan(archive: DebianArchive, host: Arch) -> list[DebRef]:
    """rustc, cargo and the host's libstd-rust-dev with every runtime library they need, at candidate versions."""
    archive.update(host)
    seen: set[str] = set()
    todo, depth = sorted(RUST_ROOTS), 0
    while todo:
        if depth >= MAX_DEPTH or len(seen) + len(todo) > MAX_CLOSURE:
            raise UserError(f"rustc's runtime closure in Debian {archive.suite} ({host.deb}) is deeper than "
                            f"{MAX_DEPTH} or larger than {MAX_CLOSURE} packages",
                            hint="the Debian index changed: check composer/sdk/langplan.py's bounds")
        sections = archive._sections(host, "depends", todo)
        seen.update(todo)
        found = {d for n in todo for d in runtime_closure_step(sections.get(n, ""), RUST_ROOTS)}
        todo, depth = sorted(found - seen), depth + 1
    refs = [archive.resolve(host, name) for name in sorted(seen)]
    versions = {r.name: r.version for r in refs}
    if versions["rustc"] != versions[RUST_STD]:
        raise UserError(f"Debian {archive.suite}: rustc {versions['rustc']} and {RUST_STD} {versions[RUST_STD]} "
                        "differ", hint="the archive is mid-update: run vcomp sdk build again later")
    return refs


def rust_target_plan(archive: DebianArchive, target: Arch, rustc_version: str) -> list[DebRef]:
    """The target's standard library (rlibs under usr/lib/rustlib/TRIPLE) at the rustc's version."""
    return [archive.resolve(target, RUST_STD, version=rustc_version)]


def go_plan(archive: DebianArchive, host: Arch) -> list[DebRef]:
    return [archive.resolve(host, name) for name in GO_PACKAGES]
