"""``vcomp sdk build``: sysroot + toolchain + generated files + manifest + SBOM, in one directory.

I/O edge of composer.sdk: fetching .debs (composer.package.debian), copying trees, writing files. What goes in is
decided by :func:`sysroot_plan` from the profile's lock and the Debian index; the text files are
composer.sdk.files; the manifest and SBOM composer.sdk.manifest.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from composer.arch import Arch, get_arch
from composer.errors import ComposerError, UserError
from composer.fsutil import atomic_write, canonical_json
from composer.package.debian import DEFAULT_SUITE, DebianArchive, DebRef
from composer.package.sources import SdkProvider, SdkRef
from composer.sdk import manifest
from composer.sdk import toolchain as tables
from composer.sdk.files import SdkLayout, generated
from composer.sdk.langfiles import Langs
from composer.sdk.langplan import go_plan, rust_host_plan, rust_target_plan
from composer.sdk.toolchain import HOST_SUITE, toolchain_for
from composer.solve.lock import lock_path, read_lock
from composer.solve.lockmodel import LockedPackage

MERGED_USR = ("bin", "lib", "lib64", "sbin")
PRUNE = ("usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian", "usr/share/bug")
DEV_SUFFIX = "-dev"
MAX_DEV_DEPTH = 4       # dev packages pulled in by dev packages (libc6-dev -> linux-libc-dev, libcrypt-dev)
MANIFEST = "sdk-manifest.json"
SBOM = "sdk.spdx.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class Sdk:
    path: Path
    arch: str
    manifest: manifest.SdkManifest


def sdk_libraries(packages: Sequence[LockedPackage]) -> list[LockedPackage]:
    """The locked packages that are Debian libraries at a Debian version (the sysroot's runtime half)."""
    return sorted((p for p in packages if p.version_scheme == "deb" and p.name.startswith("lib")),
                  key=lambda p: p.name)


def reverse_dev(rdepends: Sequence[str]) -> list[str]:
    """The ``-dev`` names among the packages depending on a library."""
    return sorted({n for n in rdepends if n.endswith(DEV_SUFFIX)})


def depends_names(depends: str) -> list[str]:
    """Every name a package's ``apt-cache depends`` section requires (first alternative of each clause)."""
    names, alternative = set(), False
    for line in depends.splitlines():
        found = re.match(r"^\s+(\|?)Depends:\s*(\S+)", line)
        if found is None:
            alternative = False
            continue
        if not alternative:
            names.add(found.group(2))
        alternative = bool(found.group(1))   # "|Depends: a" then "Depends: b": b is a's alternative
    return sorted(names)


def sysroot_plan(archive: DebianArchive, arch: Arch, locked: Sequence[LockedPackage]) -> list[DebRef]:
    """The .debs of the sysroot: each locked library at its locked version, the ``-dev`` packages built from the
    same source at that same version (Debian's convention: libssl-dev 3.5.9-1 requires libssl3t64 (= 3.5.9-1)),
    the ``-dev`` packages those need (at the suite's candidate version) and every locked package a ``-dev``
    package requires (libssl-dev's libcrypto.so needs zlib1g's libz.so.1 to link)."""
    archive.update(arch)
    libs = sdk_libraries(locked)
    by_name = {p.name: p for p in locked if p.version_scheme == "deb"}
    rdeps = archive.rdepends(arch, [p.name for p in libs]) if libs else {}
    wanted: dict[str, str] = {p.name: p.version for p in libs}
    candidates = sorted({(d, p.version) for p in libs for d in reverse_dev(rdeps.get(p.name, []))})
    archive.prefetch(arch, [(d, "") for d, _ in candidates])
    devs: dict[str, str] = {}
    for name, version in candidates:
        try:
            archive.resolve(arch, name, version=version)
        except ComposerError:
            continue            # another source's -dev, or not at this version: not this library's
        devs[name] = version
    todo, depth = sorted(devs), 0
    while todo and depth < MAX_DEV_DEPTH:
        sections = archive._sections(arch, "depends", todo)
        needed = {d for n in todo for d in depends_names(sections.get(n, ""))}
        wanted.update({n: by_name[n].version for n in needed if n in by_name})
        todo = sorted({d for d in needed if d.endswith(DEV_SUFFIX)} - set(devs) - set(wanted))
        for name in todo:
            devs[name] = archive.resolve(arch, name).version
        depth += 1
    wanted.update(devs)
    return [DebRef(name=n, version=v, arch=arch.deb) for n, v in sorted(wanted.items())]


def _unpack_into(archive: DebianArchive, arch: Arch, refs: Sequence[DebRef], dest: Path,
                 progress: Callable[[str], None]) -> list[DebRef]:
    fetched = []
    for ref in refs:
        progress(f"{ref.name} {ref.version}")
        got, deb = archive.download(arch, ref)
        tree = archive.unpack(deb, got.sha256)
        shutil.copytree(tree, dest, symlinks=True, dirs_exist_ok=True)
        fetched.append(got)
    return fetched


def relocate_links(root: Path) -> int:
    """Absolute symlinks inside ``root`` become relative ones (a sysroot must not point into the host)."""
    changed = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            full = Path(dirpath) / name
            if not full.is_symlink():
                continue
            target = os.readlink(full)
            if target.startswith("/"):
                rel = os.path.relpath(root / target.lstrip("/"), full.parent)
                full.unlink()
                os.symlink(rel, full)
                changed += 1
    return changed


def merge_usr(root: Path) -> None:
    """``bin``, ``lib``, ``lib64``, ``sbin`` as links into ``usr`` (Debian's merged-/usr layout), for the
    absolute paths in linker scripts such as libc.so (``/lib/TRIPLE/libc.so.6``)."""
    for name in MERGED_USR:
        top, usr = root / name, root / "usr" / name
        if top.is_symlink() or not usr.is_dir():
            continue
        if top.is_dir():
            shutil.copytree(top, usr, symlinks=True, dirs_exist_ok=True)
            shutil.rmtree(top)
        os.symlink(f"usr/{name}", top)


def prune(root: Path) -> None:
    for rel in PRUNE:
        shutil.rmtree(root / rel, ignore_errors=True)


def link_assembler(toolchain_root: Path, triple: str, cc: str) -> None:
    """Let gcc find ``as`` and ``ld`` beside cc1 (a native gcc would otherwise run the host's from PATH)."""
    dirs = [*toolchain_root.glob(f"usr/libexec/gcc*/{triple}/*"), *toolchain_root.glob(f"usr/lib/gcc*/{triple}/*")]
    for libexec in sorted(dirs):
        if not (libexec / "cc1").exists():
            continue
        for tool in ("as", "ld"):
            link = libexec / tool
            target = toolchain_root / "usr" / "bin" / f"{triple}-{tool}"
            if not link.exists() and target.exists():
                os.symlink(os.path.relpath(target, libexec), link)
    if not (toolchain_root / "usr" / "bin" / cc).exists():
        raise UserError(f"the toolchain has no usr/bin/{cc} after unpacking",
                        hint="the Debian toolchain packages changed: update composer/sdk/toolchain.py")


def _unpack_langs(archive: DebianArchive, arch: Arch, host: Arch, tmp: Path,
                  progress: Callable[[str], None]) -> tuple[list[DebRef], list[DebRef]]:
    """Rust (rustc's trixie closure for the host, the target's standard library) into rust/, Go into go/."""
    rust_archive = archive.for_suite(tables.RUST_SUITE)
    host_refs = rust_host_plan(rust_archive, host)
    rust = _unpack_into(rust_archive, host, host_refs, tmp / "rust", progress)
    if arch.name != host.name:
        rustc = next(r.version for r in host_refs if r.name == "rustc")
        rust += _unpack_into(rust_archive, arch, rust_target_plan(rust_archive, arch, rustc), tmp / "rust", progress)
    go_archive = archive.for_suite(tables.GO_SUITE)
    go = _unpack_into(go_archive, host, go_plan(go_archive, host), tmp / "go", progress)
    return rust, go


SDK_REVISION = 5    # bumped when the same lock gives another SDK (invalidates cached SDKs)


def cached_sdk(profile: Path, arch_name: str, *, cache: Path) -> Sdk:
    """The SDK of ``profile`` for ``arch_name`` from ``cache/sdk/``, built there when missing."""
    import json

    from composer.fsutil import sha256_bytes
    path = lock_path(profile)
    try:
        lock_bytes = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{profile}: no lock ({path.name})", hint=f"run: vcomp lock {profile}") from None
    key = sha256_bytes(canonical_json({"lock": sha256_bytes(lock_bytes), "arch": arch_name,
                                       "revision": SDK_REVISION}))[:24]
    out = cache / "sdk" / f"{profile.stem}-{arch_name}-{key}"
    if (out / MANIFEST).is_file():
        doc = json.loads((out / MANIFEST).read_text())
        return Sdk(path=out, arch=arch_name, manifest=manifest.SdkManifest.from_dict(doc))
    out.parent.mkdir(parents=True, exist_ok=True)
    return build_sdk(profile, arch_name, out, cache=cache)


def provider(cache: Path) -> SdkProvider:
    """The builder's view of :func:`cached_sdk` (composer.package.sources.SdkProvider)."""
    def get(profile: Path, arch: str) -> SdkRef:
        sdk = cached_sdk(profile, arch, cache=cache)
        return SdkRef(path=sdk.path, name=f"{sdk.manifest.profile}-{arch}", tree_sha256=sdk.manifest.tree_sha256)
    return get


def build_sdk(profile: Path, arch_name: str, out: Path, *, cache: Path,
              progress: Callable[[str], None] = lambda what: None) -> Sdk:
    arch = get_arch(arch_name)
    host = get_arch(os.uname().machine)
    lock = read_lock(lock_path(profile))
    if lock is None:
        raise UserError(f"{profile}: no lock ({lock_path(profile).name})", hint=f"run: vcomp lock {profile}")
    locked = lock.packages(arch.name)
    if not locked:
        raise UserError(f"{lock_path(profile)}: no packages for {arch.name}",
                        hint=f"add {arch.name} to the profile's architectures and run: vcomp lock {profile}")
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise UserError(f"{out}: exists and is not an SDK", hint="choose an empty or new --out directory")
    target_archive = DebianArchive(cache, suite=DEFAULT_SUITE)
    host_archive = target_archive.for_suite(HOST_SUITE)
    tc = toolchain_for(arch, host)
    langs = Langs(arch=arch, toolchain=tc, rust=tables.rust_target(arch),
                  rust_host=tables.rust_host(host), go=tables.go_target(arch))
    layout = SdkLayout(arch=arch, toolchain=tc, langs=langs)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        progress("resolving the sysroot's packages")
        plan = sysroot_plan(target_archive, arch, locked)
        sysroot = _unpack_into(target_archive, arch, plan, tmp / "sysroot", progress)
        tool_refs = [host_archive.resolve(host, name) for name in tc.packages]
        tools = _unpack_into(host_archive, host, tool_refs, tmp / "toolchain", progress)
        rust, go = _unpack_langs(target_archive, arch, host, tmp, progress)
        for root in (tmp / "sysroot", tmp / "toolchain", tmp / "rust", tmp / "go"):
            prune(root)
            merge_usr(root)
            relocate_links(root)
        link_assembler(tmp / "toolchain", arch.triple, tc.cc)
        for rel, (text, mode) in sorted(generated(layout).items()):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)
            os.chmod(tmp / rel, mode)
        doc = manifest.make(profile=lock.profile, arch=arch.name, host=host.name, suite=DEFAULT_SUITE,
                            host_suite=HOST_SUITE, sysroot=sysroot, toolchain=tools, root=tmp,
                            rust=rust, go=go)
        atomic_write(tmp / MANIFEST, canonical_json(doc.to_dict()) + b"\n")
        atomic_write(tmp / SBOM, canonical_json(manifest.spdx(doc)) + b"\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Sdk(path=out, arch=arch.name, manifest=doc)
