"""`vcomp build`: a locked profile becomes images/NAME/ARCH/ (outputs, manifest, SBOM, provenance).

Steps per architecture: refuse a stale lock; derive the build's seed (sha256 of the canonical inputs:
builder revision, architecture, profile bytes, overlay files, locked packages, outputs, epoch, tool
versions); take every output whose key is in the content-addressed cache (files checked against their
recorded sha256; a damaged entry is rebuilt); for the rest fetch and verify the locked packages,
install them into a fresh root, configure it from the profile and build the outputs; write the
manifest, the SPDX SBOM and the in-toto provenance; swap the new directory in. A failure leaves the
previous images/NAME/ARCH/ untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.arch import get_arch
from composer.errors import ToolError, UserError
from composer.fsutil import atomic_write, canonical_json, sha256_file
from composer.image import attest
from composer.image.artifacts import Product, Target, Workshop, build_products
from composer.image.content import configure
from composer.image.install import fetch_locked, install, installed, locked_packages
from composer.pkgmgr.db import save_repositories
from composer.profile.outputs import OUTPUT_TYPES
from composer.profile.validate import Profile
from composer.rootfs import Root
from composer.run import require_tool, run

BUILD_REVISION = 1
MANIFEST = "manifest.json"
CONTENTS = "contents.json"  # every installed package with its files (for vcomp diff)

# Host tools each output type runs (checked before any work), by output type and option.
TOOLS: Mapping[str, tuple[str, ...]] = {
    "rootfs": (), "initramfs": (), "uki": (), "esp": ("mkfs.fat", "mcopy", "mmd"),
    "iso": ("mkfs.fat", "mcopy", "mmd"), "disk": ("mkfs.fat", "mcopy", "mmd", "qemu-img"),
}
FS_TOOLS: Mapping[str, tuple[str, ...]] = {"ext4": ("mke2fs", "debugfs"), "erofs": ("mkfs.erofs",),
                                           "squashfs": ("mksquashfs",)}
VERSION_COMMANDS: Mapping[str, tuple[str, ...]] = {
    "mke2fs": ("mke2fs", "-V"), "mkfs.fat": ("mkfs.fat", "--help"), "mtools": ("mcopy", "--version"),
    "qemu-img": ("qemu-img", "--version"), "mkfs.erofs": ("mkfs.erofs", "--help"),
    "mksquashfs": ("mksquashfs", "-version"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchBuild:
    arch: str
    directory: Path
    products: tuple[Product, ...]
    cached: tuple[str, ...]      # outputs taken from the cache
    manifest: Mapping[str, Any]


def targets_for(profile: Profile, arch: str, only: Sequence[str] = ()) -> list[Target]:
    names = [o.name for o in profile.outputs]
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise UserError(f"no output named {', '.join(unknown)} in {profile.path}", hint=f"outputs: {', '.join(names)}")
    return [Target(name=o.name, type=o.type, options=o.options,
                   firmware=OUTPUT_TYPES[o.type].firmware_for(arch, o.options))
            for o in profile.outputs if arch in o.architectures and (not only or o.name in only)]


def check_tools(targets: Sequence[Target]) -> None:
    for t in targets:
        for tool in (*TOOLS[t.type], *(FS_TOOLS[str(t.options.get("filesystem", "ext4"))] if t.type == "disk" else ())):
            require_tool(tool)


def tool_versions() -> dict[str, str]:
    out = {}
    for name, cmd in sorted(VERSION_COMMANDS.items()):
        try:
            r = run(cmd, check=False)
        except ToolError:
            out[name] = "missing"
            continue
        text = (r.stdout + r.stderr).decode(errors="replace").strip().splitlines()
        out[name] = next((line.strip() for line in text if any(c.isdigit() for c in line)), "unknown")
    from importlib.metadata import version

    import pycdlib  # noqa: F401  (its version decides ISO bytes too)
    out["pycdlib"] = version("pycdlib")
    return out


def tree_digest(path: Path) -> str:
    """sha256 over the relative paths, modes and contents of a directory (the profile's overlay).

    Never follows a symlink: os.walk does not descend into one, and a symlink (to a file or a directory) is
    hashed as its target text, as the overlay copy writes it."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        links = [d for d in dirnames if (Path(dirpath) / d).is_symlink()]
        for name in sorted([*filenames, *links]):
            full = Path(dirpath) / name
            rel = full.relative_to(path).as_posix()
            body = os.readlink(full).encode() if full.is_symlink() else full.read_bytes()
            h.update(f"{rel}\0{full.lstat().st_mode:o}\0{len(body)}\0".encode() + body)
    return h.hexdigest()


def code_digest() -> str:
    """sha256 of this package's own sources: a change to how images are made invalidates the cache."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def build_seed(profile: Profile, lock: Mapping[str, Any], arch: str, epoch: int,
               tools: Mapping[str, str] | None = None) -> str:
    """The digest of a build's inputs. Without ``tools`` it is the id seed (UUIDs, volume ids: they
    follow the content only); with them, and this package's code, it keys the cache."""
    overlay = profile.raw.get("files")
    inputs = {"revision": BUILD_REVISION, "arch": arch, "profile": profile.digest, "epoch": epoch,
              "tools": None if tools is None else {**tools, "vcomp-image-code": code_digest()},
              "overlay": tree_digest(profile.path.parent / overlay) if overlay else None,
              "packages": [[p.name, p.version, p.sha256] for p in locked_packages(lock, arch)]}
    return hashlib.sha256(canonical_json(inputs)).hexdigest()


def output_key(seed: str, t: Target) -> str:
    spec = {"seed": seed, "name": t.name, "type": t.type, "options": dict(t.options), "firmware": list(t.firmware)}
    return hashlib.sha256(canonical_json(spec)).hexdigest()


# ---------------------------------------------------------------- the cache


def from_cache(cache: Path, key: str, out: Path) -> Product | None:
    """The cached product of ``key`` copied into ``out``, or None (missing or damaged: rebuild)."""
    entry = cache / key
    try:
        meta = json.loads((entry / "product.json").read_bytes())
    except (OSError, ValueError):
        return None
    files = []
    for f in meta["files"]:
        src = entry / f["path"]
        if not src.is_file() or src.stat().st_size != f["size"] or sha256_file(src) != f["sha256"]:
            return None
        files.append(out / f["path"])
        shutil.copyfile(src, files[-1])
    return Product(name=meta["name"], type=meta["type"], files=tuple(files), firmware=tuple(meta["firmware"]),
                   boot=meta["boot"])


def to_cache(cache: Path, key: str, product: Product) -> None:
    entry = cache / key
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:12]}.", dir=cache))
    try:
        for f in product.files:
            shutil.copyfile(f, tmp / f.name)
        (tmp / "product.json").write_bytes(canonical_json(describe(product)))
        if entry.exists():
            shutil.rmtree(entry)
        tmp.rename(entry)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # a cache that cannot be written is not an error


def describe(product: Product) -> dict[str, Any]:
    return {"name": product.name, "type": product.type, "firmware": list(product.firmware),
            "boot": dict(product.boot),
            "files": [{"path": f.name, "sha256": sha256_file(f), "size": f.stat().st_size} for f in product.files]}


# ---------------------------------------------------------------- the build


def build_arch(profile: Profile, lock: Mapping[str, Any], lock_digest: str, sources: Any, arch_name: str,
               images: Path, cache: Path, *, only: Sequence[str] = (), epoch: int,
               say: Callable[[str], None] = lambda _m: None) -> ArchBuild:
    get_arch(arch_name)  # an unknown architecture is a clear error before any work
    targets = targets_for(profile, arch_name, only)
    if not targets:
        raise UserError(f"no outputs for {arch_name} in {profile.path}", hint="add one under 'outputs:'")
    check_tools(targets)
    tools = tool_versions()
    seed = build_seed(profile, lock, arch_name, epoch, tools)  # keys the cache
    ids = build_seed(profile, lock, arch_name, epoch)  # derives UUIDs and volume ids
    final = images / profile.name / arch_name
    final.parent.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{arch_name}.staging-", dir=final.parent))
    staging.chmod(0o755)
    try:
        products: dict[str, Product] = {}
        cached = []
        if only:  # the outputs not asked for stay when they were built from the same inputs (else: left out)
            previous = read_manifest(final) if (final / MANIFEST).is_file() else {}
            kept = {o["name"]: o for o in previous.get("outputs", []) if previous.get("inputs") == seed}
            for t in targets_for(profile, arch_name):
                if t.name not in only and t.name in kept:
                    products[t.name] = carry(final, staging, kept[t.name])
        for t in targets:
            if t.name in products:
                continue
            hit = from_cache(cache, output_key(seed, t), staging)
            if hit is not None:
                products[t.name] = hit
                cached.append(t.name)
                say(f"{arch_name}: {t.name} ({t.type}) unchanged: taken from the cache")
        missing = [t for t in targets if t.name not in products]
        contents = cache / f"contents-{seed}.json"
        if not missing and contents.is_file():
            shutil.copyfile(contents, staging / CONTENTS)
        elif not missing and (final / CONTENTS).is_file():
            shutil.copyfile(final / CONTENTS, staging / CONTENTS)
        if missing:
            for p in make_products(profile, lock, lock_digest, sources, arch_name, missing, staging, seed=ids,
                                   epoch=epoch, say=say):
                products[p.name] = p
                to_cache(cache, output_key(seed, next(t for t in targets if t.name == p.name)), p)
            with contextlib.suppress(OSError):
                shutil.copyfile(staging / CONTENTS, contents)
        ordered = tuple(products[t.name] for t in targets_for(profile, arch_name) if t.name in products)
        manifest = write_records(staging, profile, lock, lock_digest, arch_name, ordered, seed=seed, tools=tools,
                                 epoch=epoch)
        swap_in(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    moved = tuple(Product(name=p.name, type=p.type, files=tuple(final / f.name for f in p.files),
                          firmware=p.firmware, boot=p.boot) for p in ordered)
    return ArchBuild(arch=arch_name, directory=final, products=moved, cached=tuple(cached), manifest=manifest)


def carry(final: Path, staging: Path, output: Mapping[str, Any]) -> Product:
    """An output of the previous build, moved into the new directory unchanged (its digest checked)."""
    files = []
    for f in output["files"]:
        src, dst = final / f["path"], staging / f["path"]
        if sha256_file(src) != f["sha256"]:
            raise UserError(f"{src} changed since it was built", hint="rebuild every output: vcomp build PROFILE")
        shutil.copyfile(src, dst)
        files.append(dst)
    return Product(name=output["name"], type=output["type"], files=tuple(files), firmware=tuple(output["firmware"]),
                   boot=output["boot"])


def make_products(profile: Profile, lock: Mapping[str, Any], lock_digest: str, sources: Any, arch_name: str,
                  targets: Sequence[Target], out: Path, *, seed: str, epoch: int,
                  say: Callable[[str], None]) -> list[Product]:
    arch = get_arch(arch_name)
    packages = locked_packages(lock, arch_name)
    with tempfile.TemporaryDirectory(prefix=f"vcomp-build-{arch_name}-") as tmp:
        work = Path(tmp)
        root = work / "root"
        say(f"{arch_name}: fetching and verifying {len(packages)} locked packages")
        fetched = fetch_locked(sources, packages, arch_name)
        say(f"{arch_name}: installing into a fresh root")
        install(root, fetched, profile_digest=profile.digest, lock_digest=lock_digest, epoch=epoch)
        records = installed(root)
        raw_repos = {r["name"]: r for r in profile.raw["repositories"]}  # URLs as written: no build paths
        save_repositories(root, [{"name": r.name, "url": raw_repos[r.name]["url"],
                                  "mirrors": list(raw_repos[r.name].get("mirrors", [])),
                                  "root": json.loads(r.root.read_bytes()),
                                  **({"priority": r.priority} if r.priority else {}),
                                  **({"packages": list(r.packages)} if r.packages else {})}
                                 for r in profile.repositories])
        atomic_write(out / CONTENTS, canonical_json(contents_of(records)) + b"\n")
        configure(root, profile, arch_name, records)
        kernel_pkg = profile.raw.get("kernel", {}).get("package", "linux")
        kernel = kernel_path(records, kernel_pkg, root, work / "boot-files" / "kernel")
        boot_files = {role: rel for r in records.values() for role, rel in r["metadata"].get("boot", {}).items()}
        cmdline = f"console={arch.console} {profile.raw.get('kernel', {}).get('cmdline', '')}".strip()
        shop = Workshop(root=root, arch=arch, work=work, epoch=epoch, seed=seed, cmdline=cmdline,
                        boot_files=boot_files, kernel=kernel)
        for t in targets:
            say(f"{arch_name}: building {t.name} ({t.type}{', ' + '+'.join(t.firmware) if t.firmware else ''})")
        return build_products(shop, targets, out)


def contents_of(records: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {name: {"version": r["version"], "size": r["size"],
                   "files": {f["path"]: [f.get("size", 0), f.get("sha256", f.get("target", f["type"]))]
                             for f in r["files"] if f["type"] != "dir"}}
            for name, r in sorted(records.items())}


def kernel_path(records: Mapping[str, Mapping[str, Any]], package: str, root: Path, copy: Path) -> Path:
    """A copy (at ``copy``) of the kernel package's ``boot/vmlinu*``, read through the confined layer (no
    symlink followed), so the image builders never read a host file through the root."""
    record = records.get(package)
    files = [f["path"] for f in (record or {}).get("files", []) if f["type"] == "file"
             and f["path"].startswith("boot/vmlinu")]
    if not files:
        raise UserError(f"the kernel package '{package}' is not in the lock or has no boot/vmlinuz",
                        hint="set kernel.package in the profile to a kernel package and relock")
    with Root.open(root) as tree:
        atomic_write(copy, tree.read_bytes(str(files[0])), durable=False)
    return copy


def write_records(staging: Path, profile: Profile, lock: Mapping[str, Any], lock_digest: str, arch: str,
                  products: Sequence[Product], *, seed: str, tools: Mapping[str, str], epoch: int) -> dict[str, Any]:
    outputs = [describe(p) for p in products]
    manifest = {"format": 1, "profile": profile.name, "arch": arch, "profile-digest": profile.digest,
                "lock-digest": lock_digest, "inputs": seed, "epoch": epoch, "tools": dict(tools), "outputs": outputs,
                "boot-tests": profile.raw.get("boot-tests", [])}
    atomic_write(staging / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")
    packages = locked_packages(lock, arch)
    sbom = attest.spdx(profile.name, arch, packages, outputs, seed=seed, epoch=epoch)
    atomic_write(staging / "sbom.spdx.json", json.dumps(sbom, indent=2, sort_keys=True).encode() + b"\n")
    prov = attest.provenance(profile, arch, packages, outputs, seed=seed, lock_digest=lock_digest, epoch=epoch)
    atomic_write(staging / "provenance.intoto.json", json.dumps(prov, indent=2, sort_keys=True).encode() + b"\n")
    return manifest


def swap_in(staging: Path, final: Path) -> None:
    """Replace ``final`` by ``staging`` with two renames; the old directory is removed last."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        final.rename(old)
    try:
        staging.rename(final)
    except OSError:
        if old.exists():
            old.rename(final)
        raise
    with contextlib.suppress(OSError):
        shutil.rmtree(old)


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads((directory / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise UserError(f"{directory} has no {MANIFEST}: not a built image directory",
                        hint="build it first: vcomp build PROFILE") from None
    except ValueError as exc:
        raise UserError(f"{directory / MANIFEST}: corrupt ({exc})", hint="rebuild: vcomp build PROFILE") from None
    return doc
